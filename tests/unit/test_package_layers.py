"""The package's public names load lazily, so the pure core can be imported without any transport."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orchestrator


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_importing_the_replay_core_loads_no_transport() -> None:
    loaded = _modules_after("import orchestrator.core.replay")
    assert "orchestrator.core.replay" in loaded
    assert not {"celery", "kombu", "redis", "msgpack"} & loaded


def test_every_public_name_resolves() -> None:
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None, name
    assert orchestrator.WorkflowActivityContext is orchestrator.ActivityContext
    assert set(orchestrator.__all__) <= set(dir(orchestrator))


def test_an_unknown_name_raises_attribute_error() -> None:
    try:
        orchestrator.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("orchestrator.NoSuchThing resolved")


def test_no_module_outside_the_store_imports_redis() -> None:
    root = Path(orchestrator.__file__).parent
    pattern = re.compile(r"^\s*(import redis$|import redis\.|from redis[ .])", re.M)
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "store" not in p.relative_to(root).parts[:1] and pattern.search(p.read_text()))
    assert found == ["worker/broker.py"]  # kombu's Redis transport (the broker's side), see pyproject.toml


def test_the_readme_module_map_names_every_module() -> None:
    root = Path(orchestrator.__file__).parent
    readme = (root.parent / "README.md").read_text()
    start = readme.index("## How it works")
    block = readme[readme.index("```", start) + 3:]
    block = block[:block.index("```")]
    modules = {p.name for p in root.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    missing = sorted(m for m in modules if m not in block)
    assert missing == []
