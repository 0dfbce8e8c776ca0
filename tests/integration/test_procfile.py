"""Deployment files: the Procfile runs a workflow end to end under honcho (against a private Redis),
and docker-compose.yml / Procfile only name real CLI commands with options the CLI accepts.

``docker compose config`` runs too when a docker CLI with the compose plugin is installed; this
machine has none, so there the structural checks (PyYAML + click's own parser) stand in for it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import yaml

from orchestrator.cli import main
from tests.support.redis_proc import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "procfile-token-0123456789abcdef"
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)  # honcho's and Heroku's line format
        if m:
            entries[m.group(1)] = m.group(2)
    return entries


def assert_valid_cli(argv: list[str]) -> click.Command:
    """``argv`` (after ``orchestrator``) names a real command and parses with its real options."""
    assert argv, "empty command"
    command = main.commands.get(argv[0])
    assert command is not None, f"unknown command {argv[0]!r}; the CLI has {sorted(main.commands)}"
    command.make_context(argv[0], list(argv[1:]), resilient_parsing=False)  # raises on bad options
    return command


def test_procfile_names_real_commands() -> None:
    entries = procfile()
    assert set(entries) == {"web", "worker"}
    for line in entries.values():
        argv = shlex.split(DEFAULT.sub(lambda m: m.group(2), line))
        assert argv[0] == "orchestrator", line
        assert_valid_cli(argv[1:])
    assert "--host 0.0.0.0" in entries["web"] and "${PORT" in entries["web"]


def test_compose_file_is_wired_as_documented() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "worker", "api"}
    redis = services["redis"]
    assert "./config/redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]
    assert any(v.startswith("redis-data:") for v in redis["volumes"]) and "redis-data" in compose["volumes"]
    assert "/usr/local/etc/redis/redis.conf" in " ".join(redis["command"])
    assert (ROOT / "config" / "redis.conf").is_file()
    # `--scale worker=N` needs a worker without a fixed name or host port.
    worker, api = services["worker"], services["api"]
    assert "container_name" not in worker and "ports" not in worker
    for service in (worker, api):
        assert service["build"] == "." and service["command"][0] == "orchestrator"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"].endswith("@redis:6379/0")
    assert assert_valid_cli(worker["command"][1:]).name == "worker"
    assert assert_valid_cli(api["command"][1:]).name == "serve"
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert "ORCH_API_TOKEN" in api["environment"] and "${ORCH_API_TOKEN:?" in api["environment"]["ORCH_API_TOKEN"]
    # The image they build: the Dockerfile copies what exists and installs the http extra.
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \./?\S*$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
    assert '.[http]' in dockerfile


def _docker_compose() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0:
            return cmd
    return None


@pytest.mark.skipif(_docker_compose() is None, reason="no docker compose CLI on this machine")
def test_docker_compose_config_accepts_the_file() -> None:
    cmd = _docker_compose()
    assert cmd is not None
    env = {**os.environ, "REDIS_PASSWORD": "pw", "ORCH_API_TOKEN": TOKEN}
    run = subprocess.run([*cmd, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr


def test_procfile_stack_under_honcho_runs_a_workflow(redis_server: Any, tmp_path: Path) -> None:
    honcho = Path(sys.executable).parent / "honcho"
    port = free_port()
    log = tmp_path / "honcho.log"
    env = {**os.environ, "REDIS_URL": redis_server.url, "ORCH_API_TOKEN": TOKEN, "ORCH_CONCURRENCY": "2",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("ORCH_WORKER_MODULE", None)  # the Procfile's default: workers.examples
    proc = subprocess.Popen([str(honcho), "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        started = None
        while started is None or started.status_code != 202:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
            try:  # 404 until the worker pool has registered its workflows
                started = httpx.post(f"{base}/v1.0/workflows/dapr/count_to/start", json=4, headers=auth)
            except httpx.TransportError:
                started = None
        while True:
            state = httpx.get(started.headers["location"], headers=auth).json()
            if state["runtimeStatus"] == "COMPLETED":
                break
            assert time.monotonic() < deadline, (state, log.read_text())
            time.sleep(0.1)
        assert state["properties"]["dapr.workflow.output"] == "4"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # honcho stops every process it started
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log.read_text()
    assert "web.1" in text and "worker.1" in text
