"""Pools with the engine's default settings: the hardening tests (issue 19) prove behaviour as users meet it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import Settings


def default_env(**extra: str) -> dict[str, str]:
    """Environment that sets the recovery settings ``tests/conftest.py`` shortens back to their defaults."""
    from tests.conftest import FAST_RECOVERY

    defaults = Settings()
    env = {name: str(getattr(defaults, name.removeprefix("ORCH_").lower())) for name in FAST_RECOVERY}
    return {**env, **extra}


def default_pool(module: str, url: str, log_path: Path, concurrency: int = 3, **extra: str) -> Any:
    """A started, ready pool of ``module`` on ``url`` with default settings (``extra``: more environment)."""
    from tests.conftest import Pool

    return Pool(module, url, "default", concurrency, log_path, default_env(**extra)).start().wait_ready()


# How tests talk to the HTTP API in-process, as a program does: the loopback Host a local client sends
# and the header that marks a request as not forged by a web page (orchestrator/http/browsers.py).
API_CLIENT: dict[str, Any] = {"base_url": "http://localhost", "headers": {"X-Orchestrator-Client": "tests"}}
