"""What every command shares: settings, the client, JSON arguments, output and exit codes.

Exit codes scripts can rely on: 0 success; 1 the operation failed (an instance is missing or in the
wrong state, the workflow failed or was terminated, a wait timed out, Redis is unreachable);
2 bad usage (unknown option, malformed JSON argument: click's usage errors); 130 a wait was
interrupted with Ctrl-C (the instance is not touched).

With ``--json`` a command prints exactly one JSON document on stdout (errors too:
``{"error": {"type": ..., "message": ...}}``); messages for people go to stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ..core.payload import parse_json
from ..errors import OrchestratorError, PayloadError, StoreError  # without loading the client
from ..settings import Settings, load_settings, redact_url

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class JsonArg(click.ParamType):
    """A command-line argument holding a JSON value (``'{"a": 1}'``, ``'42'``, ``'"text"'``)."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("@"):
            try:
                with open(value[1:], encoding="utf-8") as fh:
                    value = fh.read()
            except OSError as exc:
                self.fail(f"cannot read {value[1:]!r}: {exc.strerror}", param, ctx)
        try:
            return parse_json(value, "the value")  # the payload rules, as the client and the HTTP API apply them
        except PayloadError as exc:
            shown = value if len(value) <= 200 else f"{value[:200]}... ({len(value)} characters)"
            hint = " Quote strings as JSON, e.g. '\"text\"'." if "not valid JSON" in str(exc) else ""
            self.fail(f"{exc}: {shown!r}.{hint}", param, ctx)


JSON = JsonArg()


def settings() -> Settings:
    """Settings for this invocation (the group's options have already set the environment)."""
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    if not isinstance(obj, dict) or "settings" not in obj:
        try:
            loaded = load_settings()
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"bad configuration: {exc}") from exc
        ctx.find_root().obj = obj = {**(obj or {}), "settings": loaded}
    return obj["settings"]


def client() -> Any:
    """A WorkflowClient for the configured Redis; its calls are logged as made by the CLI."""
    from ..client import WorkflowClient

    c = WorkflowClient(settings=settings()).strict()  # an operator is told (WorkflowClient.strict)
    c.caller = "cli"
    return c


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(fn)  # type: ignore[return-value]


def emit(as_json: bool, data: Any, human: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON, or the human-readable text."""
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        click.echo(human() if callable(human) else human)


class Failed(click.ClickException):
    """An operation failed: exit 1, message on stderr (and as JSON on stdout with --json)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, kind: str = "Failed", data: Any = None) -> None:
        super().__init__(message)
        self.kind, self.data = kind, data


def operation(fn: F) -> F:
    """Turn the engine's errors into exit code 1 with a message (JSON too under ``--json``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except Failed as exc:
            _report(as_json, exc.kind, exc.message, exc.data)
        except (OrchestratorError, ValueError, TimeoutError) as exc:
            _report(as_json, type(exc).__name__, str(exc))
        except StoreError as exc:
            _report(as_json, type(exc).__name__, f"cannot use Redis at {redact_url(settings().redis_url)}: {exc}")
        raise SystemExit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def _report(as_json: bool, kind: str, message: str, data: Any = None) -> None:
    if as_json:
        out: dict[str, Any] = {"error": {"type": kind, "message": message}}
        if data is not None:
            out["result"] = data
        click.echo(json.dumps(out, default=str))
    click.echo(f"Error: {message}", err=True)


def fmt_time(value: datetime | int | None) -> str:
    """ISO 8601 in UTC with milliseconds and its zone: ``2026-12-02T01:12:40.123Z`` (epoch ms or datetime)."""
    if value is None:
        return "-"
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # naive datetimes in this package are UTC
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# History fields holding epoch milliseconds: the command line shows them as ISO times.
TIME_FIELDS = ("ts", "fire_at")


def iso_times(event: dict[str, Any]) -> dict[str, Any]:
    """A history event's JSON form with its times as ISO 8601 strings."""
    return {k: fmt_time(v) if k in TIME_FIELDS and isinstance(v, int) else v for k, v in event.items()}


class IsoTime(click.ParamType):
    """A command-line time: ISO 8601 (``2026-12-02T10:00:00Z``, ``2026-12-02 10:00+01:00``, a date);
    without a zone it is UTC."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"not an ISO 8601 time: {value!r} (e.g. 2026-12-02T10:00:00Z)", param, ctx)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


ISO_TIME = IsoTime()


def compact(value: Any, width: int = 100) -> str:
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [headers, *rows]]
    return "\n".join(lines)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
