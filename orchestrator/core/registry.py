"""The names a worker pool serves: workflow and activity functions by registered name.

A workflow name may have several named versions (``add_workflow(fn, name, version="2")``): new
instances run the latest one, running instances keep the version recorded in their
``ExecutionStarted``. "Latest" is the highest version in natural order ("2" < "10", "v2" < "v10");
a registration without a version is the oldest. ``workflows[name]`` is always the latest function.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .context import NAME_ATTRIBUTE, registered_name
from .flow import FlowPolicy, activity_scope, workflow_scope
from .identifiers import name_problem, validate_name

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
        self.flow: dict[str, FlowPolicy] = {}  # core/flow.py scope ("w:<name>" / "a:<name>") -> its limits

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

    def add_workflow(self, fn: Callable[..., Any], name: str | None = None, version: str | None = None) -> str:
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, (str, int)) or name_problem(str(version)):
                raise ValueError(f"invalid workflow version {version!r}: use a non-empty string such as \"2\"")
            version = str(version)
        if not callable(fn):
            raise TypeError(f"a workflow must be a function, got {type(fn).__name__}")
        key = validate_name(name or registered_name(fn), "workflow name")
        versions = self.workflow_versions.setdefault(key, {})
        existing = versions.get(version or UNVERSIONED)
        if existing is not None and existing is not fn:
            label = f"workflow {key!r} version {version!r}" if version else f"workflow name {key!r}"
            raise ValueError(f"{label} is already registered to {existing!r}")
        versions[version or UNVERSIONED] = fn
        self.workflows[key] = versions[max(versions, key=version_key)]
        try:
            setattr(fn, NAME_ATTRIBUTE, key)
        except (AttributeError, TypeError):
            pass  # builtins and bound methods cannot carry the attribute; lookup by name still works
        return key

    def latest_version(self, name: str) -> str | None:
        """The version new instances of ``name`` run (None: unversioned, or not registered)."""
        versions = self.workflow_versions.get(name)
        if not versions:
            return None
        latest = max(versions, key=version_key)
        return latest or None

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

    @staticmethod
    def _add(table: dict[str, Callable[..., Any]], what: str, fn: Callable[..., Any], name: str | None) -> str:
        if not callable(fn):
            raise TypeError(f"a {what} must be a function, got {type(fn).__name__}")
        key = validate_name(name or registered_name(fn), f"{what} name")
        existing = table.get(key)
        if existing is not None and existing is not fn:
            raise ValueError(f"{what} name {key!r} is already registered to {existing!r}")
        table[key] = fn
        try:
            setattr(fn, NAME_ATTRIBUTE, key)
        except (AttributeError, TypeError):
            pass  # builtins and bound methods cannot carry the attribute; lookup by name still works
        return key
