"""Dapr compatibility: programs written as the Dapr Python SDK's examples are, with only their import
line changed, run as their users run them (``python program.py``) against a private redis-server with
the engine's default settings. Each test asserts on what the program printed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.defaults import default_env
from tests.support.redis_proc import EmbeddedRedis, start_redis

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = start_redis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_program(redis_server: EmbeddedRedis) -> Run:
    """Run ``programs/<name>.py`` with its arguments to the end; fails with its output if it fails."""
    def run(name: str, *args: str, timeout: float = 120, app_id: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **default_env(), "REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
        if app_id is not None:
            env["ORCH_APP_ID"] = app_id
        done = subprocess.run([sys.executable, str(PROGRAMS / f"{name}.py"), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
        return done
    return run


@pytest.fixture
def start_program(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``programs/<name>.py`` in the background (a worker app); killed at the end of the test."""
    started: list[subprocess.Popen[str]] = []

    def start(name: str, *args: str, app_id: str | None = None) -> subprocess.Popen[str]:
        env = {**os.environ, **default_env(), "REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
        if app_id is not None:
            env["ORCH_APP_ID"] = app_id
        log = open(tmp_path / f"{name}-{len(started)}.log", "w")
        proc = subprocess.Popen([sys.executable, str(PROGRAMS / f"{name}.py"), *args], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.strip()]
