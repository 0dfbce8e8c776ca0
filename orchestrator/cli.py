"""The ``orchestrator`` command line (click): worker pools and the one-command demo.

Exit codes: 0 success, 1 the operation failed (the workflow failed, an instance is missing, ...),
2 bad usage (click's own).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from .runtime import WorkflowRuntime, runtimes


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


@click.group()
@click.version_option(package_name="orchestrator")
def main() -> None:
    """Durable workflows on Celery and Redis."""


@main.command()
@click.argument("module")
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default: setting 'concurrency').")
@click.option("--app-id", default=None, help="The application this pool serves (its queue: orchestrator.<app-id>).")
@click.option("--queues", "-Q", default=None, help="Comma-separated queues to consume instead of the app's.")
@click.option("--pool", default="prefork", type=click.Choice(["prefork", "threads", "solo"]), show_default=True)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker(module: str, concurrency: int | None, app_id: str | None, queues: str | None, pool: str, loglevel: str) -> None:
    """Run a worker pool for the workflows and activities MODULE registers."""
    if app_id:
        os.environ["ORCH_APP_ID"] = app_id  # before import, so the module's runtime picks it up
    runtime = load_runtime(module)
    if app_id:
        runtime.settings = runtime.settings.replace(app_id=app_id)
    runtime.run_worker(concurrency=concurrency, queues=queues.split(",") if queues else None,
                       loglevel=loglevel, pool=pool)


@main.command()
@click.option("--items", default=5, show_default=True, help="Order lines to fan out over.")
@click.option("--data-dir", default=".data/redis", show_default=True, type=click.Path(file_okay=False),
              help="Embedded Redis data directory (used when REDIS_URL is not set).")
def demo(items: int, data_dir: str) -> None:
    """Start Redis (embedded unless REDIS_URL is set), a worker pool, and run an example workflow."""
    from .client import WorkflowClient
    from .embedded import EmbeddedRedis

    embedded = None
    url = os.environ.get("REDIS_URL")
    if not url:
        embedded = EmbeddedRedis(Path(data_dir)).start()
        url = embedded.url
        click.echo(f"embedded Redis at {url} (data in {data_dir}, AOF on)")
    env = {**os.environ, "REDIS_URL": url}
    pool = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "workers.examples", "-c", "2",
                             "-l", "WARNING"], env=env)
    try:
        client = WorkflowClient(redis_url=url)
        _wait_for_registration(client, "order_pipeline", pool)
        order = {"items": [{"sku": f"sku-{i}", "qty": i + 1, "unit_price": 9.5} for i in range(items)]}
        instance_id = client.schedule_new_workflow("order_pipeline", input=order)
        click.echo(f"started order_pipeline as {instance_id}")
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
        assert state is not None
        click.echo(f"{state.runtime_status.name}: {json.dumps(state.output)}")
        history = client.get_workflow_history(instance_id)
        click.echo(f"history: {len(history)} events, "
                   f"{sum(e['kind'] == 'TaskCompleted' for e in history)} activity results")
        if state.runtime_status.name != "COMPLETED":
            raise SystemExit(1)
    finally:
        pool.send_signal(signal.SIGTERM)
        try:
            pool.wait(15)
        except subprocess.TimeoutExpired:
            pool.kill()
        if embedded is not None:
            embedded.stop()


def _wait_for_registration(client: Any, name: str, pool: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.store.workflow_app(name) is None:
        if pool.poll() is not None:
            raise click.ClickException(f"the worker pool exited with code {pool.returncode}")
        if time.monotonic() > deadline:
            raise click.ClickException("the worker pool did not start in time")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
