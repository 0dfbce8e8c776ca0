"""The names a worker pool serves: workflow and activity functions by registered name.

A workflow name may have several named versions (``add_workflow(fn, name, version="2")``): new
instances run the latest one, running instances keep the version recorded in their
``ExecutionStarted``. "Latest" is the highest version in natural order ("2" < "10", "v2" < "v10");
a registration without a version is the oldest, unless one registration says ``is_latest`` (Dapr's
``versioned_workflow(name=..., is_latest=True)``): then that one. ``workflows[name]`` is always the
latest function.

Registering a function a second time (under any name) or a name twice raises ``ValueError``
("already registered"), as Dapr's runtime does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .context import NAME_ATTRIBUTE, registered_name
from .flow import FlowPolicy, activity_scope, workflow_scope
from .identifiers import name_problem, validate_name
from .interceptors import Interceptors

UNVERSIONED = ""


def version_key(version: str) -> tuple[Any, ...]:
    """Natural sort key of a version name: digit runs compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", version) if part)


class Registry:
    def __init__(self) -> None:
        self.workflows: dict[str, Callable[..., Any]] = {}
        self.activities: dict[str, Callable[..., Any]] = {}
        self.workflow_versions: dict[str, dict[str, Callable[..., Any]]] = {}  # name -> {version: fn}
        self.latest: dict[str, str] = {}  # name -> the version registered with is_latest=True
        self._names: dict[int, tuple[str, str]] = {}  # id(fn) -> (what, name) it is registered as
        self.flow: dict[str, FlowPolicy] = {}  # core/flow.py scope ("w:<name>" / "a:<name>") -> its limits
        self.interceptors = Interceptors()  # the runtime and outbound interceptors its code runs under

    def set_flow(self, kind: str, name: str, policy: FlowPolicy | None) -> None:
        """The limits of workflow (``kind`` "workflow") or activity ``name`` (None: none)."""
        scope = workflow_scope(name) if kind == "workflow" else activity_scope(name)
        if policy is None:
            self.flow.pop(scope, None)
        else:
            self.flow[scope] = policy

    def workflow_flow(self, name: str) -> FlowPolicy | None:
        return self.flow.get(workflow_scope(name))

    def activity_flow(self, name: str) -> FlowPolicy | None:
        return self.flow.get(activity_scope(name))

    def _claim(self, fn: Callable[..., Any], what: str, key: str) -> None:
        """Refuse a function registered before (Dapr: "Workflow f already registered as n")."""
        seen = self._names.get(id(fn))
        if seen is not None and seen[0] == what:
            label = getattr(fn, "__name__", repr(fn))
            raise ValueError(f"{what.capitalize()} {label} already registered as {seen[1]}")
        self._names[id(fn)] = (what, key)

    def add_workflow(self, fn: Callable[..., Any], name: str | None = None, version: str | None = None,
                     is_latest: bool | None = None) -> str:
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, (str, int)) or name_problem(str(version)):
                raise ValueError(f"invalid workflow version {version!r}: use a non-empty string such as \"2\"")
            version = str(version)
        if not callable(fn):
            raise TypeError(f"a workflow must be a function, got {type(fn).__name__}")
        key = validate_name(name or registered_name(fn), "workflow name")
        seen = self._names.get(id(fn))
        if seen is not None and seen[0] == "workflow":
            raise ValueError(f"Workflow {getattr(fn, '__name__', repr(fn))} already registered as {seen[1]}")
        versions = self.workflow_versions.setdefault(key, {})
        existing = versions.get(version or UNVERSIONED)
        if existing is not None:
            label = f"workflow {key!r} version {version!r}" if version else f"workflow name {key!r}"
            raise ValueError(f"{label} is already registered to {existing!r}")
        self._claim(fn, "workflow", key)
        versions[version or UNVERSIONED] = fn
        if is_latest and version:
            self.latest[key] = version
        self.workflows[key] = versions[self._latest_key(key)]
        try:
            setattr(fn, NAME_ATTRIBUTE, key)
        except (AttributeError, TypeError):
            pass  # builtins and bound methods cannot carry the attribute; lookup by name still works
        return key

    def latest_version(self, name: str) -> str | None:
        """The version new instances of ``name`` run (None: unversioned, or not registered)."""
        if not self.workflow_versions.get(name):
            return None
        return self._latest_key(name) or None

    def _latest_key(self, name: str) -> str:
        versions = self.workflow_versions[name]
        chosen = self.latest.get(name)
        return chosen if chosen in versions else max(versions, key=version_key)

    def workflow(self, name: str, version: str | None) -> Callable[..., Any] | None:
        """The function an instance of ``name`` recorded with ``version`` runs, or None."""
        versions = self.workflow_versions.get(name)
        if versions is None:
            return self.workflows.get(name) if not version else None
        return versions.get(version or UNVERSIONED)

    def describe_versions(self, name: str) -> str:
        versions = sorted(self.workflow_versions.get(name, {}), key=version_key)
        return ", ".join(repr(v) if v else "unversioned" for v in versions) or "none"

    def add_activity(self, fn: Callable[..., Any], name: str | None = None) -> str:
        return self._add(self.activities, "activity", fn, name)

    def names_of(self, fn: Callable[..., Any]) -> str | None:
        """The workflow name ``fn`` is registered under here, if any."""
        seen = self._names.get(id(fn))
        return seen[1] if seen is not None else None

    @staticmethod
    def _claim_in(table: dict[str, Callable[..., Any]], fn: Callable[..., Any], what: str, key: str) -> None:
        taken = next((name for name, other in table.items() if other is fn), None)
        if taken is not None:
            raise ValueError(f"{what.capitalize()} {getattr(fn, '__name__', repr(fn))} already registered as {taken}")

    @staticmethod
    def _add(table: dict[str, Callable[..., Any]], what: str, fn: Callable[..., Any], name: str | None) -> str:
        if not callable(fn):
            raise TypeError(f"a {what} must be a function, got {type(fn).__name__}")
        key = validate_name(name or registered_name(fn), f"{what} name")
        Registry._claim_in(table, fn, what, key)
        existing = table.get(key)
        if existing is not None:
            raise ValueError(f"{what} name {key!r} is already registered to {existing!r}")
        table[key] = fn
        try:
            setattr(fn, NAME_ATTRIBUTE, key)
        except (AttributeError, TypeError):
            pass  # builtins and bound methods cannot carry the attribute; lookup by name still works
        return key
