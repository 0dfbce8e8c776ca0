"""The workflow context: the object a workflow function receives as ``ctx``.

It mirrors the Dapr Python SDK's ``DaprWorkflowContext``. Every call that asks for work (an activity,
a timer, a child workflow) takes the next sequence number and records an *action*; replay matches
actions against the history and whatever is left unmatched becomes this step's new decisions. Nothing
here touches a clock, Redis or Celery: "now" is the timestamp recorded at the start of each step.
"""

from __future__ import annotations

import hashlib
import string
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .history import ChildScheduled, EventRaised, HistoryEvent, PatchMarker, TaskScheduled, TimerCreated
from .identifiers import fit_instance_id, validate_instance_id, validate_name
from .interceptors import (
    CallActivityRequest,
    CallChildWorkflowRequest,
    ContinueAsNewRequest,
    compose_workflow_outbound_chain,
    no_metadata,
)
from .payload import to_json_compatible
from .propagation import PropagatedHistory, PropagationScope, scope_of
from .tasks import (
    ActivityTask,
    ChildWorkflowTask,
    CompletableTask,
    ExternalEventTask,
    RetryableTask,
    Task,
    TimedEventTask,
    TimerTask,
)
from .vocabulary import task_key, task_token

NAME_ATTRIBUTE = "__orchestrator_name__"
_UUID_NAMESPACE = uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875")  # fixed: new_uuid must never change


def registered_name(fn_or_name: Callable[..., Any] | str) -> str:
    """The name a workflow/activity is registered and recorded under."""
    if isinstance(fn_or_name, str):
        return fn_or_name
    name = getattr(fn_or_name, NAME_ATTRIBUTE, None) or getattr(fn_or_name, "_dapr_alternate_name", None)
    if name:
        return str(name)
    if callable(fn_or_name) and hasattr(fn_or_name, "__name__"):
        return fn_or_name.__name__
    raise TypeError(f"expected a function or a registered name, got {type(fn_or_name).__name__}")


def to_ms(moment: datetime, what: str = "time") -> int:
    """Milliseconds since the epoch of ``moment`` (a naive one is UTC); ``TypeError`` naming ``what``
    for anything but a ``datetime``."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(moment).__name__} {moment!r:.80}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(round(moment.timestamp() * 1000))


def from_ms(ms: int) -> datetime:
    """Naive UTC datetime, as the Dapr SDK's ``current_utc_datetime`` returns."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


class WorkflowContext:
    """What a workflow sees of the engine (Dapr's ``DaprWorkflowContext``)."""

    def __init__(self, instance_id: str, generation: int = 0, run: str = "") -> None:
        self._instance_id = instance_id
        self._generation = generation
        self._run = run  # the run id (vocabulary: task keys and tokens carry it); "" for a run without id
        self._now_ms = 0
        self.is_replaying = True
        self._seq = 0
        self._actions: dict[int, HistoryEvent] = {}  # recorded by code, not yet matched to history
        self._open: dict[int, CompletableTask[Any]] = {}  # leaf tasks by seq, awaiting completion
        self._retries: dict[int, RetryableTask[Any]] = {}  # seq of attempt/backoff timer -> owner
        self._timeouts: dict[int, ActivityTask[Any]] = {}  # seq of a timeout timer -> the attempt it guards
        self._abandoned: list[int] = []  # seqs this step stopped waiting for (the engine drops their keys)
        self._waiters: dict[str, list[ExternalEventTask[Any]]] = {}
        self._buffered: dict[str, deque[EventRaised]] = {}
        self._custom_status: Any = None
        self._continue_as_new: tuple[Any, bool] | None = None
        self._patches: dict[str, bool] = {}  # patch name -> what is_patched answered (first answer holds)
        self._recorded_patches: set[tuple[str, int]] = set()  # (name, position) of PatchMarkers in history
        self._markers: list[PatchMarker] = []  # markers this step records (not yet history)
        self._propagation: dict[int, PropagationScope] = {}  # seq -> the scope its call propagates
        self._propagated: Any = None  # what this instance's caller propagated to it (its ExecutionStarted)
        self._uuids = 0  # new_uuid calls so far in this replay (replay-stable: code asks in the same order)
        self._outbound: list[Any] = []  # workflow outbound interceptors (core/interceptors.py)

    # -- Dapr-compatible properties -------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def current_utc_datetime(self) -> datetime:
        return from_ms(self._now_ms)

    # -- asking for work ------------------------------------------------------------------------
    def call_activity(
        self,
        activity: Callable[..., Any] | str,
        *,
        input: Any = None,
        retry_policy: Any = None,
        app_id: str | None = None,
        timeout: timedelta | None = None,
        propagation: PropagationScope | None = None,
        heartbeat_timeout: timedelta | None = None,
        start_to_close_timeout: timedelta | None = None,
    ) -> Task[Any]:
        """Dapr's signature plus our extensions: ``timeout``: each attempt that has not delivered its
        result ``timeout`` after it was scheduled fails with ``ActivityTimeoutError`` (retried if
        ``retry_policy`` allows) and its late result is dropped (a durable timer, so it survives
        crashes). ``heartbeat_timeout`` (Temporal's): an attempt that goes that long without
        ``ctx.heartbeat()`` fails with ``ActivityHeartbeatTimeoutError``; ``start_to_close_timeout``:
        one running that long after it started fails with ``ActivityStartToCloseTimeoutError``."""
        if self._outbound:
            call = self._intercepted(CallActivityRequest(registered_name(activity), input, retry_policy, self))
            activity, input, retry_policy = call.activity_name, call.input, call.retry_policy
        name = validate_name(registered_name(activity), "activity name")
        _check_app_id(app_id)
        payload = to_json_compatible(input, f"input of activity {name!r}")
        request = {"kind": "activity", "name": name, "input": payload, "app_id": app_id,
                   "propagation": scope_of(propagation)}
        for field, value in (("timeout", timeout), ("heartbeat_timeout", heartbeat_timeout),
                             ("start_to_close_timeout", start_to_close_timeout)):
            if value is not None:
                request[f"{field}_ms"] = _positive_ms(value, f"{field} of activity {name!r}")
        return self._schedule(request, retry_policy)

    def call_child_workflow(
        self,
        workflow: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: Any = None,
        app_id: str | None = None,
        propagation: PropagationScope | None = None,
    ) -> Task[Any]:
        if self._outbound:
            child = self._intercepted(CallChildWorkflowRequest(registered_name(workflow), input, instance_id, self,
                                                               retry_policy=retry_policy))
            workflow, input, instance_id, retry_policy = (child.workflow_name, child.input, child.instance_id,
                                                          child.retry_policy)
        name = validate_name(registered_name(workflow), "child workflow name")
        _check_app_id(app_id)
        if instance_id is not None:
            validate_instance_id(instance_id, f"instance id of child workflow {name!r}")
        payload = to_json_compatible(input, f"input of child workflow {name!r}")
        request = {"kind": "child", "name": name, "input": payload, "app_id": app_id, "instance_id": instance_id,
                   "propagation": scope_of(propagation)}
        return self._schedule(request, retry_policy)

    def create_timer(self, fire_at: datetime | timedelta) -> Task[None]:
        if isinstance(fire_at, timedelta):
            due = self._now_ms + int(fire_at.total_seconds() * 1000)
        elif isinstance(fire_at, datetime):
            due = to_ms(fire_at)
        else:
            raise TypeError(f"create_timer takes a datetime or a timedelta, got {type(fire_at).__name__}")
        return self._new_timer(due, purpose="")

    def wait_for_external_event(self, name: str, *, timeout: timedelta | float | None = None) -> Task[Any]:
        """The next event ``name`` (case-insensitive). With ``timeout`` (a timedelta or seconds), the
        task fails with ``TaskFailedError`` of type ``TimeoutError`` if no such event came in time
        (a durable timer races the wait); the event's waiter is let go, so a later event of that
        name waits for the next ``wait_for_external_event``."""
        event: ExternalEventTask[Any] = ExternalEventTask(validate_name(name, "event name"))
        if timeout is None:
            return event
        if isinstance(timeout, bool) or not isinstance(timeout, (timedelta, int, float)):
            raise TypeError(f"timeout of wait_for_external_event({name!r}) must be a timedelta or seconds, "
                            f"got {timeout!r}")
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        if not seconds >= 0:
            raise ValueError(f"timeout of wait_for_external_event({name!r}) must be >= 0, got {timeout!r}")
        timer = self._new_timer(self._now_ms + int(seconds * 1000), purpose="")
        return TimedEventTask(event, timer, seconds)

    def get_propagated_history(self) -> PropagatedHistory | None:
        """The history the caller propagated to this workflow (``propagation=`` on its
        ``call_child_workflow``), or None."""
        return PropagatedHistory.from_payload(self._propagated)

    # -- deterministic helpers (Dapr's deterministic context mixin) ------------------------------
    def new_uuid(self) -> str:
        """A UUID that is the same on every replay: derived from the instance, its generation and
        how many this run asked for before (durabletask's ``new_uuid``)."""
        self._uuids += 1
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self._instance_id}:{self._generation}:{self._uuids}"))

    def now(self) -> datetime:
        """The step's time (``current_utc_datetime``)."""
        return self.current_utc_datetime

    def random(self) -> ReplayRandom:
        """A PRNG seeded from the instance and the step's time: the same numbers on every replay
        (Dapr's ``ctx.random()``; ``random()``, ``randrange``, ``randint``, ``uniform``, ``choice``,
        ``shuffle``)."""
        seed = hashlib.sha256(f"{self._instance_id}:{self._now_ms // 1000}".encode()).digest()
        return ReplayRandom(int.from_bytes(seed[:8], "big"))

    def uuid4(self) -> uuid.UUID:
        """A random-looking UUID drawn from ``random()`` (replay-stable)."""
        return uuid.UUID(bytes=bytes(self.random().randrange(256) for _ in range(16)), version=4)

    def new_guid(self) -> uuid.UUID:
        return self.uuid4()

    def random_string(self, length: int, *, alphabet: str | None = None) -> str:
        """``length`` characters of ``alphabet`` (default letters and digits), drawn from ``random()``."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        chars = alphabet if alphabet is not None else string.ascii_letters + string.digits
        if not chars:
            raise ValueError("alphabet must not be empty")
        rnd = self.random()
        return "".join(chars[rnd.randrange(len(chars))] for _ in range(length))

    def continue_as_new(self, new_input: Any = None, *, save_events: bool = False) -> None:
        """Restart this instance with fresh history once the workflow function yields or returns
        (through the outbound interceptors' ``continue_as_new``, which may change the new input)."""
        if self._outbound:
            new_input = self._intercepted(ContinueAsNewRequest(new_input, self)).input
        self._continue_as_new = (to_json_compatible(new_input, "continue_as_new input"), save_events)

    def set_custom_status(self, custom_status: Any) -> None:
        self._custom_status = to_json_compatible(custom_status, "custom status")

    # -- versioning -----------------------------------------------------------------------------
    def is_patched(self, patch_name: str) -> bool:
        """Should this instance take the code path of patch ``patch_name``?

        True for an instance that reaches this point while the patch is deployed (the answer is
        recorded in history as a ``PatchMarker``); False for one whose history passed this point
        before the patch existed. The first answer holds for the rest of the run, so every
        ``is_patched`` of one name agrees. Replay answers from history, never from the clock."""
        name = _patch_name(patch_name, "is_patched")
        answer = self._patches.get(name)
        if answer is None:
            answer = self._decide_patch(name)
        return answer

    def deprecate_patch(self, patch_name: str) -> None:
        """Retire a patch once no instance that predates it can still run: replace
        ``if ctx.is_patched(p): new else: old`` with ``ctx.deprecate_patch(p); new``. It records the
        same marker, so workers still running the ``is_patched`` code agree during a rolling
        deploy; remove it once those are gone too (markers the code no longer asks about are ignored)."""
        name = _patch_name(patch_name, "deprecate_patch")
        if name not in self._patches:
            self._decide_patch(name)

    def _decide_patch(self, name: str) -> bool:
        if self.is_replaying:
            answer = (name, self._seq) in self._recorded_patches
        else:
            answer = True
            self._markers.append(PatchMarker(ts=self._now_ms, name=name, position=self._seq))
        self._patches[name] = answer
        return answer

    # -- internals used by replay ---------------------------------------------------------------
    def _intercepted(self, request: Any) -> Any:
        """``request`` as the outbound interceptors leave it (they return what ``next`` returned)."""
        out = compose_workflow_outbound_chain(self._outbound, lambda last: last)(request)
        if not isinstance(out, type(request)):
            raise TypeError(f"a workflow outbound interceptor returned {type(out).__name__}, not the "
                            f"{type(request).__name__} that next() returns")
        no_metadata(out, f"{type(request).__name__} of workflow {self._instance_id!r}")
        return out

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _schedule(self, request: dict[str, Any], retry_policy: Any) -> Task[Any]:
        inner = self._schedule_attempt(request, attempt=1)
        if retry_policy is None:
            return inner
        owner = RetryableTask(inner, retry_policy, self._now_ms, request)
        self._retries[inner.seq] = owner
        return owner

    def _schedule_attempt(self, request: dict[str, Any], attempt: int) -> ActivityTask[Any] | ChildWorkflowTask[Any]:
        seq = self._next_seq()
        name, payload, app_id = request["name"], request["input"], request["app_id"]
        task: ActivityTask[Any] | ChildWorkflowTask[Any]
        if request["kind"] == "activity":
            self._actions[seq] = TaskScheduled(
                ts=self._now_ms, seq=seq, name=name, input=payload, app_id=app_id, attempt=attempt,
                heartbeat_ms=request.get("heartbeat_timeout_ms"),
                start_to_close_ms=request.get("start_to_close_timeout_ms"),
            )
            task = ActivityTask(seq, name, self._token(seq))
            task.attempt = attempt
        else:
            child_id = request["instance_id"] or self._default_child_id(seq)
            if attempt > 1:
                child_id = fit_instance_id(f"{child_id}-attempt{attempt}")
            self._actions[seq] = ChildScheduled(
                ts=self._now_ms, seq=seq, name=name, instance_id=child_id, input=payload, app_id=app_id
            )
            task = ChildWorkflowTask(seq, name, child_id, self._token(seq))
        self._open[seq] = task
        if request.get("propagation") is not None:
            self._propagation[seq] = request["propagation"]
        timeout_ms = request.get("timeout_ms")
        if timeout_ms and isinstance(task, ActivityTask):
            guard = self._new_timer(self._now_ms + timeout_ms, purpose="timeout")
            task.timeout_seq, task.timeout_token, task.timeout_ms = guard.seq, guard.token, timeout_ms
            self._timeouts[guard.seq] = task
        return task

    def _token(self, seq: int) -> str:
        """The wake token of call ``seq`` of this run and generation."""
        return task_token(task_key(self._run, self._generation, seq))

    def _default_child_id(self, seq: int) -> str:
        """``<id>:<seq>`` (``<id>:<gen>:<seq>`` after continue-as-new), kept within the id length however
        deep children start children (``identifiers.fit_instance_id``)."""
        if self._generation:
            return fit_instance_id(f"{self._instance_id}:{self._generation}:{seq}")
        return fit_instance_id(f"{self._instance_id}:{seq}")

    def _new_timer(self, due: int, purpose: str) -> TimerTask:
        seq = self._next_seq()
        self._actions[seq] = TimerCreated(ts=self._now_ms, seq=seq, fire_at=due, purpose=purpose)
        timer = TimerTask(seq, due, self._token(seq))
        self._open[seq] = timer
        return timer


class ReplayRandom:
    """A small deterministic PRNG (splitmix64; the core imports no ``random``, whose global state
    replay could not reproduce) with the ``random.Random`` methods workflows use."""

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK64

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        x = self._state
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        return x ^ (x >> 31)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / (1 << 53))

    def randrange(self, start: int, stop: int | None = None) -> int:
        low, high = (0, start) if stop is None else (start, stop)
        if high <= low:
            raise ValueError(f"empty range for randrange({low}, {high})")
        return low + self._next() % (high - low)

    def randint(self, a: int, b: int) -> int:
        return self.randrange(a, b + 1)

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def choice(self, seq: Any) -> Any:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.randrange(len(seq))]

    def shuffle(self, items: list[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.randrange(i + 1)
            items[i], items[j] = items[j], items[i]


_MASK64 = (1 << 64) - 1


def _patch_name(name: Any, what: str) -> str:
    return validate_name(name, f"the patch name of {what}")


def _positive_ms(value: Any, what: str) -> int:
    if not isinstance(value, timedelta):
        raise TypeError(f"{what} must be a timedelta, got {value!r}")
    if value <= timedelta(0):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return max(1, int(value.total_seconds() * 1000))


def _check_app_id(app_id: Any) -> None:
    if app_id is not None:
        validate_name(app_id, "app id")


# The Dapr SDK's name for the same thing.
DaprWorkflowContext = WorkflowContext
