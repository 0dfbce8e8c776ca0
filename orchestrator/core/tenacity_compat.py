"""tenacity's own strategy objects in ``RetryPolicy(wait=..., stop=..., retry=...)``, where replay allows.

A policy is evaluated during replay, from history alone: the attempt number, the recorded error's
type *name*, the time since the first attempt, and a seed. tenacity strategies read a live
``RetryCallState`` instead, so each one is checked when the policy is built:

* deterministic waits and stops (``wait_fixed``, ``wait_none``, ``wait_incrementing``,
  ``wait_exponential``, ``wait_chain``, ``wait_combine``, ``stop_after_attempt``,
  ``stop_after_delay``, ``stop_never``, ``stop_any``, ``stop_all``) run unchanged against a small shim
  state carrying ``attempt_number`` and ``seconds_since_start``;
* ``retry_if_exception_type`` / ``retry_if_not_exception_type`` / ``retry_always`` / ``retry_never`` /
  ``retry_any`` / ``retry_all`` are translated to this package's name-matching predicates
  (``Exception`` and ``BaseException`` mean "any error"; other classes match by name, so a base class
  does not catch its subclasses: list the concrete types);
* everything else is refused with an error saying why. Jittered waits (``wait_random``,
  ``wait_random_exponential``, ``wait_exponential_jitter``) draw from the global ``random`` module and
  would compute another delay on every replay: use the mirrored names in ``orchestrator.core.retry``,
  whose jitter is seeded from history. Predicates on the exception object, its message or cause, on
  results, ``stop_before_delay`` (needs the upcoming sleep) and ``stop_when_event_set`` (reads a
  thread event) cannot be replayed either.

tenacity is imported only when such an object is passed, so the core does not depend on it otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .retry import (
    RetryState,
    StopStrategy,
    WaitStrategy,
    retry_all,
    retry_any,
    retry_if_exception_type,
    retry_if_not_exception_type,
)

_DETERMINISTIC_WAITS = (
    "wait_fixed",
    "wait_none",
    "wait_incrementing",
    "wait_exponential",
    "wait_chain",
    "wait_combine",
)
_DETERMINISTIC_STOPS = ("stop_after_attempt", "stop_after_delay", "_stop_never", "stop_any", "stop_all")
_JITTER_ADVICE = {
    "wait_random": "orchestrator.core.retry.wait_random(min, max)",
    "wait_random_exponential": "orchestrator.core.retry.wait_random_exponential(multiplier, max=...)",
    "wait_exponential_jitter": ("orchestrator.core.retry.wait_capped(wait_exponential(initial, max=...) + "
                                "wait_random(0, jitter), max_seconds)"),
}


def is_tenacity(value: Any) -> bool:
    """A tenacity strategy, or a subclass of one (told by module, so tenacity need not be imported)."""
    return any(cls.__module__.split(".")[0] == "tenacity" for cls in type(value).__mro__)


class _ShimState:
    """The parts of tenacity's ``RetryCallState`` its deterministic strategies read."""

    __slots__ = ("attempt_number", "seconds_since_start")

    def __init__(self, state: RetryState) -> None:
        self.attempt_number = state.attempt
        self.seconds_since_start = state.elapsed.total_seconds()


@dataclass(frozen=True)
class tenacity_wait(WaitStrategy):
    """A deterministic tenacity wait, run against the shim state; composes with ``+`` like ours."""

    strategy: Any

    def __call__(self, state: RetryState) -> float:
        return float(self.strategy(_ShimState(state)))


@dataclass(frozen=True)
class tenacity_stop(StopStrategy):
    """A deterministic tenacity stop, run against the shim state; composes with ``|`` / ``&``."""

    strategy: Any

    def __call__(self, state: RetryState) -> bool:
        return bool(self.strategy(_ShimState(state)))


@dataclass(frozen=True)
class _constant:
    """tenacity's ``retry_always`` / ``retry_never``."""

    value: bool

    def __call__(self, state: RetryState) -> bool:
        return self.value


def _refuse(kind: str, obj: Any, why: str) -> TypeError:
    return TypeError(f"RetryPolicy({kind}=...) cannot use tenacity's {type(obj).__name__}: {why}")


def _check_wait(obj: Any) -> None:
    name = type(obj).__name__
    if name in _JITTER_ADVICE:
        raise _refuse("wait", obj, "it draws from the global random module, so every replay would compute a "
                      f"different delay; use {_JITTER_ADVICE[name]}, whose jitter is seeded from history")
    if not is_tenacity(obj) or name not in _DETERMINISTIC_WAITS:
        what = "a non-tenacity part inside a tenacity combinator" if not is_tenacity(obj) else "it is not replayable"
        raise _refuse("wait", obj, f"{what}; supported: {', '.join(_DETERMINISTIC_WAITS)}")
    for part in getattr(obj, "wait_funcs", ()) + getattr(obj, "strategies", ()):
        _check_wait(part)


def _check_stop(obj: Any) -> None:
    name = type(obj).__name__
    if not is_tenacity(obj) or name not in _DETERMINISTIC_STOPS:
        what = "a non-tenacity part inside a tenacity combinator" if not is_tenacity(obj) else "it is not replayable"
        raise _refuse("stop", obj, f"{what}; supported: stop_after_attempt, stop_after_delay, stop_never, "
                      "stop_any, stop_all")
    for part in getattr(obj, "stops", ()):
        _check_stop(part)


def _type_names(types: Any) -> tuple[Any, ...]:
    types = types if isinstance(types, tuple) else (types,)
    return () if any(t in (Exception, BaseException) for t in types) else types


def _translate_retry(obj: Any) -> Any:
    name = type(obj).__name__
    if name == "retry_if_exception_type":
        return retry_if_exception_type(*_type_names(obj.exception_types))
    if name == "retry_if_not_exception_type":
        types = _type_names(obj.exception_types)
        return retry_if_not_exception_type(*types) if types else _constant(False)
    if name in ("_retry_always", "_retry_never"):
        return _constant(name == "_retry_always")
    if name in ("retry_any", "retry_all"):
        parts = [_translate_retry(p) if is_tenacity(p) else _foreign_part(p) for p in obj.retries]
        return (retry_any if name == "retry_any" else retry_all)(*parts)
    raise _refuse("retry", obj, "replay knows a failed attempt only by its recorded error type name, not by the "
                  "exception object, its message or cause, or a result; supported: retry_if_exception_type, "
                  "retry_if_not_exception_type, retry_always, retry_never, retry_any, retry_all")


def _foreign_part(part: Any) -> Any:
    raise TypeError(f"RetryPolicy(retry=...): tenacity's retry_any/retry_all cannot hold {part!r}; "
                    "combine this package's predicates with | and & instead")


def adapt(kind: str, value: Any) -> Any:
    """``value`` unchanged unless it is a tenacity strategy: then its replayable equivalent, or TypeError."""
    if value is None or not is_tenacity(value):
        return value
    if kind == "wait":
        _check_wait(value)
        return tenacity_wait(value)
    if kind == "stop":
        _check_stop(value)
        return tenacity_stop(value)
    if kind == "retry":
        return _translate_retry(value)
    raise ValueError(f"unknown strategy kind {kind!r}")


__all__ = ["adapt", "is_tenacity", "tenacity_wait", "tenacity_stop"]
