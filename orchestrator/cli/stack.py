"""Commands that run processes: ``worker`` (a pool), ``serve`` (the HTTP API), ``dev`` (Redis + a
pool + the API in one command) and ``demo`` (the README's first command).

``dev`` and ``demo`` share two helpers: :func:`redis_for_dev` (the Redis at ``REDIS_URL``, or an
embedded ``redis-server`` with AOF in a local data directory when it is unset) and
:class:`PoolProcess` (``orchestrator worker MODULE`` as a child). Children run in their own sessions,
so a terminal's Ctrl-C reaches only this process, which then stops them in order: the API, then the
pool (warm shutdown: running tasks finish), then Redis (SIGTERM flushes the AOF).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..core.vocabulary import Status
from ..logs import FORMATS, configure_logging
from ..runtime import WorkflowRuntime, runtimes
from ..settings import clear_dev_stack, write_dev_stack
from .common import settings

EXAMPLE_MODULE = "workers.examples"


def load_runtime(module: str) -> WorkflowRuntime:
    """Import MODULE (``pkg.mod`` or ``pkg.mod:attr``) and return the WorkflowRuntime it defines."""
    module_name, _, attr = module.partition(":")
    sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.ClickException(f"cannot import {module_name!r}: {exc}") from exc
    if attr:
        runtime = getattr(mod, attr, None)
        if not isinstance(runtime, WorkflowRuntime):
            raise click.ClickException(f"{module}: {attr!r} is not a WorkflowRuntime")
        return runtime
    found = [v for v in vars(mod).values() if isinstance(v, WorkflowRuntime)]
    found = found or [r for r in runtimes() if r.registry.workflows or r.registry.activities]
    if not found:
        raise click.ClickException(f"{module_name!r} defines no WorkflowRuntime (e.g. wfr = WorkflowRuntime())")
    return found[0]


def log_format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--log-format", type=click.Choice(FORMATS), default=None,
                        help="Log lines as text or one JSON object each (default: setting log_format).")(fn)


def _log_format(given: str | None) -> str:
    fmt = given or settings().log_format
    if fmt not in FORMATS:
        raise click.UsageError(f"log_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    os.environ["ORCH_LOG_FORMAT"] = fmt  # child processes log the same way
    return fmt


# -- helpers shared by dev and demo ------------------------------------------------------------------
def _embedded_redis(data_dir: Path, port: int | None = None) -> Any:
    from ..embedded import EmbeddedRedis

    class OwnSessionRedis(EmbeddedRedis):
        """The embedded server in its own session: Ctrl-C in the terminal must not stop Redis
        before the pool that still uses it; we stop it last."""

        def _command(self) -> list[str]:
            return [sys.executable, "-c", "import os, sys; os.setsid(); os.execv(sys.argv[1], sys.argv[1:])",
                    *super()._command()]

    return OwnSessionRedis(data_dir, port=port)


DEV_REDIS_PORT = 6390  # the embedded dev Redis's first choice of port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def dev_redis_port(data_dir: Path) -> int:
    """A stable port for the data directory's embedded Redis: the one it used last (kept in
    ``<data_dir>/port``), else 6390, else any free port, whichever is free first."""
    from ..embedded import free_port

    remembered = data_dir / "port"
    try:
        last = int(remembered.read_text().strip())
    except (OSError, ValueError):
        last = 0
    port = next((p for p in (last, DEV_REDIS_PORT) if p and _port_free(p)), 0) or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{port}\n")
    return port


@contextlib.contextmanager
def redis_for_dev(data_dir: str) -> Iterator[tuple[str, bool]]:
    """Yield ``(url, embedded)``: ``REDIS_URL`` when set, else an embedded server stopped on exit."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, False
        return
    embedded = _embedded_redis(Path(data_dir), dev_redis_port(Path(data_dir))).start()
    try:
        yield embedded.url, True
    finally:
        embedded.stop()


class PoolProcess:
    """``orchestrator worker MODULE`` as a child process in its own session."""

    def __init__(self, module: str, url: str, concurrency: int = 2, loglevel: str = "WARNING") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "worker", module, "-c", str(concurrency), "-l", loglevel],
            env={**os.environ, "REDIS_URL": url}, start_new_session=True)

    def wait_for_registration(self, client: Any, names: list[str], timeout: float = 30) -> None:
        """Until the pool has announced one of ``names`` (it does so as it starts)."""
        deadline = time.monotonic() + timeout
        while not any(client.serving_app(n) for n in names):
            if self.proc.poll() is not None:
                raise click.ClickException(f"the worker pool exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise click.ClickException("the worker pool did not start in time")
            time.sleep(0.1)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (warm shutdown: running tasks finish), then SIGKILL the group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class _Stop(Exception):
    """SIGTERM: stop like Ctrl-C."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


@dataclass(frozen=True)
class ApiServer:
    """How ``serve`` and ``dev`` run the HTTP API. The command line does not import the HTTP package
    (the edges are independent): ``orchestrator.main``, the program's composition point, plugs it in."""

    serve: Callable[..., None]  # (settings, host, port, *, log_format) -> None, until stopped
    check_exposure: Callable[[str, str | None], None]  # raises ``exposure_error`` when unsafe
    exposure_error: type[Exception]


_api_server: ApiServer | None = None


def use_api_server(server: ApiServer) -> None:
    global _api_server
    _api_server = server


def _server() -> ApiServer:
    if _api_server is None:
        raise click.ClickException("this program has no HTTP API plugged in: run `orchestrator` or "
                                   "`python -m orchestrator` (orchestrator.main)")
    return _api_server


def _run_api(s: Any, host: str, port: int, log_format: str) -> None:
    try:
        _server().serve(s, host, port, log_format=log_format)
    except ImportError as exc:
        raise click.ClickException(
            f"the HTTP API needs the 'http' extra (pip install 'orchestrator[http]'): {exc}") from exc


def _check_exposure(host: str, token: str | None) -> None:
    server = _server()
    try:
        server.check_exposure(host, token)
    except server.exposure_error as exc:
        raise click.UsageError(str(exc)) from exc


# -- commands ----------------------------------------------------------------------------------------
@click.command()
@click.argument("module")
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default: setting 'concurrency').")
@click.option("--app-id", default=None, help="The application this pool serves (its queue: orchestrator.<app-id>).")
@click.option("--queues", "-Q", default=None, help="Comma-separated queues to consume instead of the app's.")
@click.option("--pool", default="prefork", type=click.Choice(["prefork", "threads", "solo"]), show_default=True)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@log_format_option
def worker(module: str, concurrency: int | None, app_id: str | None, queues: str | None, pool: str, loglevel: str,
           log_format: str | None) -> None:
    """Run a worker pool for the workflows and activities MODULE registers."""
    json_logs = _log_format(log_format) == "json"
    if json_logs:
        configure_logging("json", loglevel)  # Celery keeps a root logger that already has a handler
    if app_id:
        os.environ["ORCH_APP_ID"] = app_id  # before import, so the module's runtime picks it up
    runtime = load_runtime(module)
    if app_id:
        runtime.settings = runtime.settings.replace(app_id=app_id)
    runtime.run_worker(concurrency=concurrency, queues=queues.split(",") if queues else None,
                       loglevel=loglevel, pool=pool, json_logs=json_logs)


@click.command()
@click.option("--host", default=None, help="Address to bind (default: setting api_host, 127.0.0.1). "
              "Anything but loopback requires api_token.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: setting api_port, 8080).")
@log_format_option
def serve(host: str | None, port: int | None, log_format: str | None) -> None:
    """Serve the HTTP API (Dapr's workflow routes, /api queries, /metrics, /docs)."""
    s = settings()
    host, port = host or s.api_host, port or s.api_port
    _check_exposure(host, s.api_token)
    fmt = _log_format(log_format)
    configure_logging(fmt, "INFO")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        _run_api(s, host, port, fmt)


@click.command()
@click.argument("module", default=EXAMPLE_MODULE)
@click.option("--host", default=None, help="API address (default: setting api_host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="API port (default: setting api_port, 8080).")
@click.option("--concurrency", "-c", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--data-dir", default=".data/redis", show_default=True, type=click.Path(file_okay=False),
              help="Embedded Redis data directory (used when REDIS_URL is not set).")
@click.option("--example/--no-example", default=True, show_default=True,
              help=f"With {EXAMPLE_MODULE}: start one order_pipeline instance to look at.")
@log_format_option
def dev(module: str, host: str | None, port: int | None, concurrency: int, data_dir: str, example: bool,
        log_format: str | None) -> None:
    """Redis (embedded unless REDIS_URL is set) + a worker pool for MODULE + the HTTP API, in one
    command. Ctrl-C stops all three cleanly."""
    from ..client import WorkflowClient

    s = settings()
    host, port = host or s.api_host, port or s.api_port
    _check_exposure(host, s.api_token)
    fmt = _log_format(log_format)
    configure_logging(fmt, "INFO")
    names = sorted(load_runtime(module).registry.workflows)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    stopped = ["API", "worker pool"]
    try:
        with redis_for_dev(data_dir) as (url, embedded):
            if embedded:
                stopped.append("embedded Redis")
            where = f"embedded, data in {data_dir}, AOF on" if embedded else "REDIS_URL"
            click.echo(f"Redis        {url} ({where})", err=True)
            if embedded:
                # Other terminals' `orchestrator ...` and `orchestrator worker` use it while this runs.
                record = write_dev_stack(url, data_dir)
                click.echo(f"             other terminals use it while this runs (recorded in {record})", err=True)
            pool = PoolProcess(module, url, concurrency)
            try:
                s = s.replace(redis_url=url)
                client = WorkflowClient(settings=s)
                client.caller = "cli"
                pool.wait_for_registration(client, names)
                click.echo(f"worker pool  {module} ({concurrency} processes): {', '.join(names)}", err=True)
                base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
                click.echo(f"HTTP API     {base}  (docs {base}/docs, metrics {base}/metrics)", err=True)
                if importlib.util.find_spec("orchestrator.dashboard") is not None:
                    click.echo(f"dashboard    {base}/", err=True)
                if example and module == EXAMPLE_MODULE and "order_pipeline" in names:
                    order = {"items": [{"sku": f"sku-{i}", "qty": i + 1, "unit_price": 9.5} for i in range(3)]}
                    instance_id = client.schedule_new_workflow("order_pipeline", input=order)
                    click.echo(f"example      order_pipeline started as {instance_id}: curl {base}/v1.0/workflows/"
                               f"dapr/{instance_id}", err=True)
                click.echo("Ctrl-C stops everything.", err=True)
                _run_api(s, host, port, fmt)
            finally:
                pool.stop()
                clear_dev_stack()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"stopped: {', '.join(stopped)}", err=True)


@click.command()
@click.option("--items", default=5, show_default=True, help="Order lines to fan out over.")
@click.option("--data-dir", default=".data/redis", show_default=True, type=click.Path(file_okay=False),
              help="Embedded Redis data directory (used when REDIS_URL is not set).")
def demo(items: int, data_dir: str) -> None:
    """Start Redis (embedded unless REDIS_URL is set), a worker pool, and run an example workflow."""
    from ..client import WorkflowClient

    with redis_for_dev(data_dir) as (url, embedded):
        if embedded:
            click.echo(f"embedded Redis at {url} (data in {data_dir}, AOF on)")
        pool = PoolProcess(EXAMPLE_MODULE, url, concurrency=2)
        try:
            client = WorkflowClient(redis_url=url)
            client.caller = "cli"
            pool.wait_for_registration(client, ["order_pipeline"])
            order = {"items": [{"sku": f"sku-{i}", "qty": i + 1, "unit_price": 9.5} for i in range(items)]}
            instance_id = client.schedule_new_workflow("order_pipeline", input=order)
            click.echo(f"started order_pipeline as {instance_id}")
            state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
            assert state is not None
            click.echo(f"{state.runtime_status.name}: {json.dumps(state.output)}")
            history = client.get_workflow_history(instance_id)
            click.echo(f"history: {len(history)} events, "
                       f"{sum(e['kind'] == 'TaskCompleted' for e in history)} activity results")
            if state.runtime_status.name != Status.COMPLETED:
                raise SystemExit(1)
            if embedded:
                s = settings()
                click.echo(f"see it in the dashboard: run `orchestrator dev` (the same data directory), then open "
                           f"http://{s.api_host}:{s.api_port}/dashboard/#/run/{instance_id}")
        finally:
            pool.stop()


COMMANDS = [worker, serve, dev, demo]
