"""Circuit breaker: stop calling an activity that keeps failing, across every instance and pool.

State lives in Redis (``P:circuit:<app>:<activity>``, see store/keys.py), so all pools of an app share
it. After ``threshold`` consecutive failures of one activity name the circuit opens for ``cooldown``
seconds: attempts dispatched meanwhile do not run; the worker delivers a ``CircuitOpenError`` failure
whose ``retry_after_ms`` is the rest of the cool-down. That failure enters history like any other, so
replay stays deterministic: the retry policy decides whether to retry (the refused attempt counts as
an attempt) and waits at least ``retry_after_ms`` on a durable timer; a call without a policy fails
fast. After the cool-down the circuit is half-open: attempts run again, the first failure reopens it
at once, the first success closes it. What counts as a failure: any exception the activity raises,
except ``NonRetryableError`` (a business "no" says nothing about the dependency's health).
"""

from __future__ import annotations

import logging
from typing import Any

from ..core.errors import FailureDetails
from ..store import monitoring

log = logging.getLogger("orchestrator.circuit")


class CircuitBreaker:
    """Consecutive-failure breaker per activity name of one app; ``threshold`` 0 disables it."""

    def __init__(self, store: Any, app_id: str, threshold: int, cooldown: float) -> None:
        """``store``: the RedisStore whose ``<prefix>:circuit:*`` hashes hold the state."""
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"circuit_failure_threshold must be an int >= 0 (0 disables), got {threshold!r}")
        if not isinstance(cooldown, (int, float)) or not cooldown > 0:
            raise ValueError(f"circuit_cooldown must be a positive number of seconds, got {cooldown!r}")
        self.store = store
        self.app_id = app_id
        self.threshold = threshold
        self.cooldown_ms = int(cooldown * 1000)

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    def blocked_for(self, activity: str, now_ms: int) -> int:
        """Milliseconds the circuit of ``activity`` stays open; 0 when calls may run."""
        if not self.enabled:
            return 0
        open_until = monitoring.circuit_open_until(self.store, self.app_id, activity)
        return max(0, open_until - now_ms) if open_until is not None else 0

    def refusal(self, activity: str, wait_ms: int) -> FailureDetails:
        """The failure delivered for an attempt refused by the open circuit."""
        return FailureDetails(
            message=(f"circuit breaker for activity {activity!r} is open after {self.threshold} consecutive "
                     f"failures; calls resume in {wait_ms / 1000:.1f} s"),
            error_type="CircuitOpenError",
            retry_after_ms=wait_ms,
        )

    def record(self, activity: str, ok: bool, now_ms: int) -> None:
        """Count one finished attempt: a success closes the circuit, a failure may open it."""
        if not self.enabled:
            return
        if ok:
            monitoring.circuit_reset(self.store, self.app_id, activity)
            return
        opened = monitoring.circuit_failure(self.store, self.app_id, activity, now_ms, self.threshold, self.cooldown_ms)
        if opened:
            log.warning("circuit for activity %r opened for %.1f s after %d consecutive failures",
                        activity, self.cooldown_ms / 1000, self.threshold)

    def state(self, activity: str) -> dict[str, int]:
        """``failures``, ``open_until`` (ms, 0 if never opened) and ``opened`` (times), for ops and tests."""
        return monitoring.circuit_state(self.store, self.app_id, activity)


__all__ = ["CircuitBreaker"]
