"""Retry policies for activities and child workflows, evaluated during deterministic replay.

``RetryPolicy`` takes the same keyword arguments as the Dapr Python SDK's
``dapr.ext.workflow.RetryPolicy`` so existing Dapr code ports unchanged, plus optional
tenacity-style ``wait`` / ``stop`` / ``retry`` strategies and ``non_retryable_error_types``.

We mirror tenacity's *names* (``wait_exponential``, ``stop_after_attempt`` ...) because tenacity's
jitter draws from the global ``random`` module, which would give a different delay on every replay.
Here the only randomness is the ``seed`` the engine derives from history, hashed with the attempt
number, so the same history always yields the same schedule. tenacity's own deterministic strategy
objects are accepted too (adapted by ``tenacity_compat``, which refuses the jittered ones).
Everything in this module is pure: no I/O, no clock, no global state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, replace
from datetime import timedelta
from typing import Any

from .errors import OrchestratorError

Wait = Callable[["RetryState"], float]  # seconds to wait
Predicate = Callable[["RetryState"], bool]
_MASK64 = (1 << 64) - 1
_MAX_SECONDS = 86_399_999_999_999.0  # just under timedelta.max, exactly representable


@dataclass(frozen=True)
class RetryState:
    """What a strategy may look at: failed attempts so far (1-based), the last error's type
    name, time since the first attempt was scheduled, and the replay-stable jitter seed."""

    attempt: int
    error_type: str
    elapsed: timedelta
    seed: int


class NonRetryableError(OrchestratorError):
    """Raise from an activity to fail it without retrying, whatever the policy says."""


def _splitmix64(x: int) -> int:
    """One splitmix64 step: a cheap, well-mixed 64-bit hash that is identical on every run."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(seed: int, salt: int) -> int:
    """Derive an independent 64-bit seed from ``seed`` and ``salt`` (negatives wrap mod 2**64)."""
    return _splitmix64((seed & _MASK64) ^ _splitmix64(salt & _MASK64))


def _uniform01(state: RetryState) -> float:
    """A float in [0, 1) fixed by (seed, attempt): the only jitter source, so replay is stable."""
    return (_mix(state.seed, state.attempt) >> 11) * (1.0 / (1 << 53))


def _check_int(value: Any, name: str, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def _normalize(obj: Any, *names: str) -> None:
    """Store a frozen strategy's durations as float seconds; like tenacity, accept int, float
    or timedelta (None stays None). Bools, NaN and negatives are rejected."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, timedelta):
            value = value.total_seconds()
        elif value is None:
            continue
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds or a timedelta, got {value!r}")
        if math.isnan(value) or value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
        object.__setattr__(obj, name, float(value))


def _to_timedelta(seconds: float) -> timedelta:
    """Clamp a wait's result into a timedelta: negative -> 0, huge or inf -> ~timedelta.max."""
    if math.isnan(seconds):
        raise ValueError("wait strategy returned NaN")
    return timedelta(seconds=min(max(seconds, 0.0), _MAX_SECONDS))


def _type_name(t: Any, name: str) -> str:
    """Name a type the way failures record it; builtins stay bare ("ValueError")."""
    if isinstance(t, str) and t:
        return t
    if isinstance(t, type) and issubclass(t, BaseException):
        return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    raise TypeError(f"{name} takes exception classes or non-empty type names, got {t!r}")


def type_name_matches(pattern: str, error_type: str) -> bool:
    """Bare names match any qualification ("ValueError" ~ "mod.ValueError", both ways);
    two qualified names must be equal, since they then name distinct classes."""
    if pattern == error_type:
        return True
    if "." in pattern and "." in error_type:
        return False
    return pattern.rsplit(".", 1)[-1] == error_type.rsplit(".", 1)[-1]


@dataclass(frozen=True, init=False)
class _Parts:
    """Shared shape of the combinators: an ordered tuple of callables."""

    parts: tuple[Callable[[RetryState], Any], ...]

    def __init__(self, *parts: Callable[[RetryState], Any]) -> None:
        if not parts or not all(callable(p) for p in parts):
            raise TypeError(f"{type(self).__name__} needs one or more callables")
        object.__setattr__(self, "parts", parts)


# --- wait strategies: return seconds, like tenacity -------------------------------------------

class WaitStrategy:
    """Base for waits; ``a + b`` sums them, as in tenacity."""

    def __call__(self, state: RetryState) -> float:
        raise NotImplementedError

    def __add__(self, other: Wait) -> wait_combine:
        return wait_combine(self, other)

    def __radd__(self, other: Any) -> Any:
        return self if other == 0 else wait_combine(other, self)  # 0: lets sum([...]) work


@dataclass(frozen=True)
class wait_fixed(WaitStrategy):
    seconds: float

    def __post_init__(self) -> None:
        _normalize(self, "seconds")

    def __call__(self, state: RetryState) -> float:
        return self.seconds


@dataclass(frozen=True)
class wait_exponential(WaitStrategy):
    """``multiplier * exp_base ** (attempt - 1)`` clamped to [min, max]. The bounds are
    keyword-only because tenacity's positional order (multiplier, max, exp_base, min) is easy to
    get wrong."""

    multiplier: float = 1
    _: KW_ONLY
    min: float = 0
    max: float | None = None
    exp_base: float = 2

    def __post_init__(self) -> None:
        _normalize(self, "multiplier", "min", "max", "exp_base")
        if self.max is not None and self.max < self.min:
            raise ValueError("max must be >= min")

    def __call__(self, state: RetryState) -> float:
        try:  # float base: overflow raises instead of building a huge int
            result = self.multiplier * self.exp_base ** (state.attempt - 1)
        except OverflowError:
            result = math.inf
        return max(self.min, min(result, math.inf if self.max is None else self.max))


@dataclass(frozen=True)
class wait_random_exponential(wait_exponential):
    """Full jitter: uniform in [min, wait_exponential(...)), drawn from the replay seed."""

    def __call__(self, state: RetryState) -> float:
        high = super().__call__(state)
        return self.min + _uniform01(state) * (high - self.min)


@dataclass(frozen=True)
class wait_random(WaitStrategy):
    min: float = 0
    max: float = 1

    def __post_init__(self) -> None:
        _normalize(self, "min", "max")
        if self.max < self.min:
            raise ValueError("max must be >= min")

    def __call__(self, state: RetryState) -> float:
        return self.min + _uniform01(state) * (self.max - self.min)


class wait_chain(_Parts, WaitStrategy):
    """Use the n-th strategy for attempt n; the last one repeats."""

    def __call__(self, state: RetryState) -> float:
        return float(self.parts[min(max(state.attempt, 1), len(self.parts)) - 1](state))


class wait_combine(_Parts, WaitStrategy):
    """Sum of waits; each part gets its own derived seed so two jitters stay independent."""

    def __init__(self, *parts: Wait) -> None:
        flat = (q for p in parts for q in (p.parts if isinstance(p, wait_combine) else (p,)))
        super().__init__(*flat)

    def __call__(self, state: RetryState) -> float:
        seeds = (_mix(state.seed, i) for i in range(1, len(self.parts) + 1))
        return float(sum(p(replace(state, seed=s)) for p, s in zip(self.parts, seeds)))


@dataclass(frozen=True)
class wait_capped(WaitStrategy):
    """Cap any wait (e.g. a sum with jitter) at ``max_seconds``."""

    strategy: Wait
    max_seconds: float

    def __post_init__(self) -> None:
        if not callable(self.strategy):
            raise TypeError("strategy must be callable")
        _normalize(self, "max_seconds")

    def __call__(self, state: RetryState) -> float:
        return min(self.strategy(state), self.max_seconds)


# --- stop strategies (True = give up) and retry-if predicates (True = retry) ----------------

class StopStrategy:
    """Base for stops; ``a | b`` stops when either does, ``a & b`` only when both do."""

    def __call__(self, state: RetryState) -> bool:
        raise NotImplementedError

    def __or__(self, other: Predicate) -> stop_any:
        return stop_any(self, other)

    def __and__(self, other: Predicate) -> stop_all:
        return stop_all(self, other)


class RetryStrategy:
    """Base for retry-if predicates; ``a | b`` retries if either says so, ``a & b`` if both do."""

    def __call__(self, state: RetryState) -> bool:
        raise NotImplementedError

    def __or__(self, other: Predicate) -> retry_any:
        return retry_any(self, other)

    def __and__(self, other: Predicate) -> retry_all:
        return retry_all(self, other)


@dataclass(frozen=True)
class stop_after_attempt(StopStrategy):
    max_attempt_number: int

    def __post_init__(self) -> None:
        _check_int(self.max_attempt_number, "max_attempt_number", minimum=1)

    def __call__(self, state: RetryState) -> bool:
        return state.attempt >= self.max_attempt_number


@dataclass(frozen=True)
class stop_after_delay(StopStrategy):
    """Stop once ``elapsed`` reaches ``max_delay`` seconds (checked before waiting, as tenacity)."""

    max_delay: float

    def __post_init__(self) -> None:
        _normalize(self, "max_delay")

    def __call__(self, state: RetryState) -> bool:
        return state.elapsed.total_seconds() >= self.max_delay


class stop_any(_Parts, StopStrategy):
    def __call__(self, state: RetryState) -> bool:
        return any(p(state) for p in self.parts)


class stop_all(_Parts, StopStrategy):
    def __call__(self, state: RetryState) -> bool:
        return all(p(state) for p in self.parts)


class retry_any(_Parts, RetryStrategy):
    def __call__(self, state: RetryState) -> bool:
        return any(p(state) for p in self.parts)


class retry_all(_Parts, RetryStrategy):
    def __call__(self, state: RetryState) -> bool:
        return all(p(state) for p in self.parts)


@dataclass(frozen=True, init=False)
class retry_if_exception_type(RetryStrategy):
    """Retry only for the listed types (classes or names, matched by name as in
    type_name_matches); no arguments means any error, like tenacity's default ``Exception``."""

    type_names: tuple[str, ...]

    def __init__(self, *types: str | type[BaseException]) -> None:
        names = tuple(_type_name(t, type(self).__name__) for t in types)
        object.__setattr__(self, "type_names", names)

    def _matches(self, error_type: str) -> bool:
        return not self.type_names or any(type_name_matches(p, error_type) for p in self.type_names)

    def __call__(self, state: RetryState) -> bool:
        return self._matches(state.error_type)


class retry_if_not_exception_type(retry_if_exception_type):
    """Retry for every type except the listed ones (no arguments: never retry)."""

    def __call__(self, state: RetryState) -> bool:
        return not self._matches(state.error_type)


# --- the policy -----------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Dapr-compatible retry policy; frozen, so every field is a read-only attribute."""

    first_retry_interval: timedelta
    max_number_of_attempts: int
    backoff_coefficient: float | None = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None
    wait: Wait | None = None
    stop: Predicate | None = None
    retry: Predicate | None = None
    non_retryable_error_types: Iterable[str] = ()

    def __post_init__(self) -> None:
        for name in ("first_retry_interval", "max_retry_interval", "retry_timeout"):
            value = getattr(self, name)
            required = name == "first_retry_interval"
            if not isinstance(value, timedelta) and (value is not None or required):
                raise TypeError(f"{name} must be a timedelta, got {value!r}")
        if self.first_retry_interval < timedelta(0):  # zero is Dapr's "retry at once"
            raise ValueError("first_retry_interval must be >= 0")
        _check_int(self.max_number_of_attempts, "max_number_of_attempts", minimum=1)
        coefficient = self.backoff_coefficient
        if coefficient is not None:
            if isinstance(coefficient, bool) or not isinstance(coefficient, (int, float)):
                raise TypeError(f"backoff_coefficient must be a number, got {coefficient!r}")
            if not coefficient >= 1:  # also rejects NaN
                raise ValueError(f"backoff_coefficient must be >= 1, got {coefficient!r}")
        cap = self.max_retry_interval
        if cap is not None and cap < timedelta(0):  # below first_retry_interval is accepted, as Dapr: it caps
            raise ValueError("max_retry_interval must be >= 0")
        if self.retry_timeout is not None and self.retry_timeout < timedelta(0):
            raise ValueError("retry_timeout must be >= 0")
        from .tenacity_compat import adapt  # imported here: it builds on this module

        for name in ("wait", "stop", "retry"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable or None")
            object.__setattr__(self, name, adapt(name, getattr(self, name)))
        types = self.non_retryable_error_types
        if isinstance(types, (str, bytes)) or not isinstance(types, Iterable):
            raise TypeError("non_retryable_error_types must be an iterable of type names")
        names = tuple(_type_name(t, "non_retryable_error_types") for t in types)
        object.__setattr__(self, "non_retryable_error_types", names)

    @property
    def obj(self) -> RetryPolicy:
        """Dapr's ``RetryPolicy.obj`` (the engine's own policy object): this policy itself."""
        return self

    def is_non_retryable(self, error_type: str) -> bool:
        """NonRetryableError and the listed types fail at once (names only: subclasses of
        NonRetryableError cannot be recognised from a recorded type name)."""
        patterns = ("NonRetryableError", *self.non_retryable_error_types)
        return any(type_name_matches(p, error_type) for p in patterns)

    def _backoff(self, attempt: int) -> timedelta:
        """Dapr's delay: first_retry_interval * coefficient ** (attempt - 1), capped."""
        coefficient = 1.0 if self.backoff_coefficient is None else float(self.backoff_coefficient)
        try:
            delay = self.first_retry_interval * coefficient ** (attempt - 1)
        except OverflowError:  # float power or timedelta range exceeded
            delay = timedelta.max
        if self.max_retry_interval is not None:
            delay = min(delay, self.max_retry_interval)
        return delay

    def next_delay(
        self, attempt: int, error_type: str, elapsed: timedelta, seed: int
    ) -> timedelta | None:
        """After ``attempt`` failed attempts (the last failing with ``error_type``, ``elapsed``
        after the first was scheduled), the delay before the next attempt, or None to give up.

        Pure, so replay reproduces it; ``seed`` is the only jitter source. Order: the
        max_number_of_attempts cap, non-retryable types, ``retry``, then ``stop`` if given (it
        replaces the retry_timeout rule), then ``wait`` if given (it replaces the Dapr backoff,
        max_retry_interval included). Without ``stop``, give up if elapsed + delay > retry_timeout.
        """
        _check_int(attempt, "attempt", minimum=1)
        _check_int(seed, "seed")
        if not isinstance(error_type, str) or not isinstance(elapsed, timedelta):
            raise TypeError("error_type must be a str and elapsed a timedelta")
        if elapsed < timedelta(0):
            raise ValueError(f"elapsed must be >= 0, got {elapsed!r}")
        if attempt >= self.max_number_of_attempts or self.is_non_retryable(error_type):
            return None
        state = RetryState(attempt, error_type, elapsed, seed)
        if self.retry is not None and not self.retry(state):
            return None
        if self.stop is not None and self.stop(state):
            return None
        if self.wait is None:
            delay = self._backoff(attempt)
        else:
            delay = _to_timedelta(float(self.wait(state)))
        timeout = self.retry_timeout
        if self.stop is None and timeout is not None:
            # i.e. elapsed + delay > timeout, arranged so huge timedeltas cannot overflow
            if elapsed > timeout or delay > timeout - elapsed:
                return None
        return delay
