"""Settings: config/orchestrator.toml documents every field with settings.py's default, and the
precedence defaults < ORCH_CONFIG file < environment < keyword arguments holds."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from orchestrator.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config" / "orchestrator.toml"
COMMENTED_KEY = re.compile(r"^#\s*([a-z_]+)\s*=", re.MULTILINE)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ORCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", "/nonexistent-state-dir")  # no dev stack record
    for f in dataclasses.fields(Settings):
        monkeypatch.delenv(f"ORCH_{f.name.upper()}", raising=False)


def test_config_file_documents_every_setting_with_its_default() -> None:
    text = CONFIG.read_text()
    active = tomllib.loads(text)
    commented = set(COMMENTED_KEY.findall(text))
    defaults = {f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
                for f in dataclasses.fields(Settings)}
    assert set(active) | commented == set(defaults), "config/orchestrator.toml and Settings list different settings"
    assert not set(active) & commented, "a setting is both set and commented out"
    for name, value in active.items():
        assert value == defaults[name] and type(value) is type(defaults[name]), (name, value, defaults[name])
    # Only settings whose default is "unset" may be left commented out (TOML has no null).
    assert {n for n in commented} == {n for n, v in defaults.items() if v is None}


def test_loading_the_documented_file_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONFIG", str(CONFIG))
    assert load_settings() == Settings()


def test_precedence_file_then_environment_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.toml"
    path.write_text('concurrency = 7\napp_id = "from-file"\nstale_after = 3.5\napi_token = "t-from-file"\n')
    monkeypatch.setenv("ORCH_CONFIG", str(path))
    s = load_settings()
    assert (s.concurrency, s.app_id, s.stale_after, s.api_token) == (7, "from-file", 3.5, "t-from-file")
    monkeypatch.setenv("ORCH_CONCURRENCY", "9")
    monkeypatch.setenv("ORCH_INLINE_STEPS", "off")
    monkeypatch.setenv("REDIS_URL", "redis://env:6379/1")
    s = load_settings()
    assert (s.concurrency, s.inline_steps, s.redis_url, s.app_id) == (9, False, "redis://env:6379/1", "from-file")
    s = load_settings(concurrency=11, app_id=None)  # None means "not given"
    assert (s.concurrency, s.app_id) == (11, "from-file")


def test_bad_values_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_API_PORT", "eighty")
    with pytest.raises(ValueError, match="ORCH_API_PORT.*'eighty'"):
        load_settings()
    monkeypatch.delenv("ORCH_API_PORT")
    path = tmp_path / "o.toml"
    path.write_text("concurency = 3\n")
    monkeypatch.setenv("ORCH_CONFIG", str(path))
    with pytest.raises(ValueError, match="unknown settings .*concurency"):
        load_settings()


def test_activity_time_limits_turn_fan_out_batching_off():
    """Celery's time limits apply to a whole message: a batch would share one activity's limit."""
    assert Settings().effective_batch_size == 32
    assert Settings(activity_time_limit=60.0).effective_batch_size == 1
    assert Settings(activity_soft_time_limit=30.0).effective_batch_size == 1
    assert Settings(activity_batch_size=0).effective_batch_size == 1


def test_activity_time_limits_turn_eager_activities_off():
    """An eager chain runs inside one Celery message, whose time limit would cover the whole chain."""
    assert Settings().effective_eager_hops == 16
    assert Settings(activity_time_limit=60.0).effective_eager_hops == 0
    assert Settings(eager_activity_hops=-1).effective_eager_hops == 0


def test_a_running_dev_stack_is_the_default_redis_and_anything_explicit_wins(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from orchestrator.settings import clear_dev_stack, dev_stack_path, write_dev_stack

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert load_settings().redis_url == "redis://localhost:6379/0"
    path = write_dev_stack("redis://127.0.0.1:6390/0", str(tmp_path / "data"))
    assert path == dev_stack_path() == tmp_path / "orchestrator" / "dev-stack.json"
    assert load_settings().redis_url == "redis://127.0.0.1:6390/0"
    config = tmp_path / "o.toml"
    config.write_text('redis_url = "redis://from-file:1/0"\n')
    monkeypatch.setenv("ORCH_CONFIG", str(config))
    assert load_settings().redis_url == "redis://from-file:1/0"
    monkeypatch.delenv("ORCH_CONFIG")
    monkeypatch.setenv("REDIS_URL", "redis://from-env:1/0")
    assert load_settings().redis_url == "redis://from-env:1/0"
    monkeypatch.delenv("REDIS_URL")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pid": 2**22 + 12345}))  # a process that is gone: ignored
    assert load_settings().redis_url == "redis://localhost:6379/0"
    path.write_text(json.dumps(record))
    clear_dev_stack()
    assert not path.exists() and record["pid"] == os.getpid()


def test_the_dev_redis_keeps_its_port_across_restarts(tmp_path: Path) -> None:
    import socket

    from orchestrator.cli.stack import dev_redis_port

    first = dev_redis_port(tmp_path / "data")
    assert dev_redis_port(tmp_path / "data") == first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        moved = dev_redis_port(tmp_path / "data")
    assert moved != first and dev_redis_port(tmp_path / "data") == moved  # the new one sticks
