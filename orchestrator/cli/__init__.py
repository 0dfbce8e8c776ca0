"""The ``orchestrator`` command line (click).

Processes: ``worker`` (a pool), ``serve`` (the HTTP API), ``dev`` (Redis + pool + API in one
command), ``demo``. Instances: ``start``, ``wait``, ``status``, ``list``, ``history``, ``raise-event``,
``terminate``, ``suspend``, ``resume``, ``purge``; schedules: ``schedule create/list/show/pause/
resume/delete/trigger/backfill``; ``pools`` (the live worker processes) (human-readable output,
``--json`` for machines).
Exit codes (see :mod:`orchestrator.cli.common`): 0 ok, 1 the operation or the instance failed,
2 bad usage, 130 a wait interrupted by Ctrl-C.
"""

from __future__ import annotations

import os

import click

from .instances import COMMANDS as INSTANCE_COMMANDS
from .pools import COMMANDS as POOL_COMMANDS
from .schedules import COMMANDS as SCHEDULE_COMMANDS
from .stack import COMMANDS as PROCESS_COMMANDS
from .stack import load_runtime

__all__ = ["load_runtime", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="orchestrator")
@click.option("--redis-url", envvar="REDIS_URL", default=None, metavar="URL",
              help="Redis store and broker (env REDIS_URL; default redis://localhost:6379/0).")
@click.option("--config", "config_path", envvar="ORCH_CONFIG", default=None,
              type=click.Path(exists=True, dir_okay=False), help="TOML settings file (env ORCH_CONFIG).")
def main(redis_url: str | None, config_path: str | None) -> None:
    """Durable workflows on Celery and Redis."""
    # Through the environment, so settings and every child process (pools, dev) see the same.
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    if config_path:
        os.environ["ORCH_CONFIG"] = os.path.abspath(config_path)


for _command in (*PROCESS_COMMANDS, *INSTANCE_COMMANDS, *SCHEDULE_COMMANDS, *POOL_COMMANDS):
    main.add_command(_command)
