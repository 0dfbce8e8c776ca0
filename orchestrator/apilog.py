"""The API log: every workflow API call that changes something, kept in a capped Redis stream.

Who started, raised, terminated, suspended, resumed or purged which instance, when, and with what
result: the question an operator asks first when a run did something unexpected. Each call is one
entry of the stream ``<prefix>:apilog`` (``XADD ... MAXLEN ~ 10000``, so it never grows without
bound) with the fields ``ts`` (ms since epoch), ``caller`` (``client``, ``cli``, ``http``,
``dashboard``, ...), ``op``, ``instance``, ``result`` (``ok`` or ``<ErrorType>: <message>``) and, when
there is one, ``detail`` (the workflow name of a start, the event name of a raise).

Reads (get state, list, history) are not logged: dashboards and waiters poll them many times a
second and would push the calls that matter out of the capped stream.

Hook point: ``@logged("op")`` on a ``WorkflowClient`` method records the call. The caller is the
client's ``caller`` attribute unless code runs inside ``as_caller(name)`` (a context variable, so it
is safe per request in a threaded or async server). ``add_listener(fn)`` lets a process observe every
entry it writes (for example to stream them); a failing listener or an unreachable Redis never makes
the API call itself fail.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .core.context import registered_name
from .core.text import storable
from .store import monitoring
from .store.connection import StoreError
from .store.keys import KeySchema

log = logging.getLogger("orchestrator.apilog")
MAXLEN = monitoring.API_LOG_MAXLEN
FIELDS = ("ts", "caller", "op", "instance", "result", "detail")
F = TypeVar("F", bound=Callable[..., Any])

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("orchestrator_apilog_caller", default=None)
_listeners: list[Callable[[dict[str, str]], None]] = []


def stream_key(prefix: str) -> str:
    return KeySchema(prefix).apilog


@contextlib.contextmanager
def as_caller(name: str) -> Iterator[None]:
    """Attribute the API calls made inside this block to ``name`` (e.g. "dashboard", "http")."""
    token = _caller.set(name)
    try:
        yield
    finally:
        _caller.reset(token)


def add_listener(fn: Callable[[dict[str, str]], None]) -> None:
    """Call ``fn(entry)`` after each entry this process writes."""
    _listeners.append(fn)


def remove_listener(fn: Callable[[dict[str, str]], None]) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(fn)


def write(store: Any, *, caller: str, op: str, instance: str, result: str,
          detail: str = "", ts: int | None = None) -> dict[str, str]:
    """Append one entry; returns it (with its stream ``id`` when the write succeeded)."""
    # What a call was given is logged before it is validated: keep every field storable and short.
    entry = {"ts": str(ts if ts is not None else int(time.time() * 1000)), "caller": storable(caller[:100]),
             "op": op, "instance": storable(instance[:200]), "result": storable(result[:500]),
             "detail": storable(detail[:200])}
    try:
        entry["id"] = monitoring.append_api_log(store, entry)
    except StoreError as exc:
        log.warning("could not write the API log entry %s: %s", entry, exc)
    for listener in list(_listeners):
        try:
            listener(entry)
        except Exception:  # noqa: BLE001 - an observer must not break the API call
            log.exception("API log listener failed")
    return entry


def read(store: Any, *, after: str | None = None, before: str | None = None,
         limit: int = 100) -> list[dict[str, str]]:
    """Newest first. ``after``: only entries newer than that stream id (for live polling);
    ``before``: only entries older than it (for paging back)."""
    if limit < 1 or limit > 1000:
        raise ValueError(f"limit must be between 1 and 1000, got {limit}")
    high = f"({before}" if before else "+"
    low = f"({after}" if after else "-"
    return monitoring.read_api_log(store, high=high, low=low, limit=limit)


def _describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def logged(op: str) -> Callable[[F], F]:
    """Decorate a WorkflowClient method so each call is logged with its outcome.

    The instance is the method's ``instance_id`` argument, or its return value for a start; the
    detail is the ``event_name`` argument, or the workflow's name for a start."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(self, *args, **kwargs).arguments
            except TypeError:
                return fn(self, *args, **kwargs)  # let the method raise its own, clearer, error
            instance, detail = bound.get("instance_id") or bound.get("schedule_id"), bound.get("event_name", "")
            if "workflow" in bound:
                try:
                    detail = registered_name(bound["workflow"])
                except TypeError:
                    detail = repr(bound["workflow"])
            try:
                value = fn(self, *args, **kwargs)
            except Exception as exc:
                _record(self, op, str(instance or ""), _describe_error(exc), str(detail or ""))
                raise
            if op == "start":
                instance = value
            _record(self, op, str(instance or ""), "ok", str(detail or ""))
            return value

        return wrapper  # type: ignore[return-value]

    return decorate


def _record(client: Any, op: str, instance: str, result: str, detail: str) -> None:
    store = getattr(client, "store", None)
    if store is None:
        return
    caller = _caller.get() or getattr(client, "caller", None) or "client"
    write(store, caller=caller, op=op, instance=instance, result=result, detail=detail)


__all__ = ["MAXLEN", "FIELDS", "stream_key", "as_caller", "add_listener", "remove_listener", "write", "read",
           "logged"]
