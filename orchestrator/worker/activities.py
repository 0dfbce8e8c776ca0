"""Running activity attempts: one per message, several per message for wide fan-outs, or eagerly.

A Celery message costs the worker's consumer about as much as a no-op activity costs to run, so a
fan-out of 1,000 activities spends most of its time moving messages. A step that schedules more
than ``fanout_parallelism`` activities for one app therefore packs them into that many messages
(more if needed to keep at most ``activity_batch_size`` in each). A batch runs its attempts one
after another and delivers their results together, in one pipelined round trip. So that a batch of
slow activities does not serialise work other processes could share, a batch that has run for
``message_budget_seconds`` sends what remains back to the queue as single messages.

Eager activities (after Temporal's eager activity execution) take the message away altogether for
sequential chains: when an activity's result wakes its workflow here and the step that follows
schedules exactly one activity this pool serves, that activity runs here right after the commit,
up to ``eager_activity_hops`` in a row and within ``message_budget_seconds`` of the message's
start. The commit marks it in the instance's task hash. If the process dies mid-way, Celery
redelivers the message it was running; that redelivery finds the mark and queues the activity
(``Duties.requeue_eager``, worker/duties.py). The activity index sweeper covers a lost redelivery as well.

Every attempt keeps its own identity (task key, activity index entry, delivery), so a batch lost
with its worker is redelivered by kombu or republished per attempt by the sweeper like any message,
and what was already delivered is skipped.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import metrics
from ..core.errors import FailureDetails
from ..core.history import TaskCompleted, TaskFailed
from ..core.interceptors import ExecuteActivityRequest, compose_runtime_chain, no_metadata
from ..core.payload import coerce, from_payload, input_annotation
from ..core.propagation import PropagatedHistory
from ..core.registry import Registry
from ..core.retry import NonRetryableError
from ..core.vocabulary import member, task_token
from ..store.records import ActivityRecord, activity_task_key
from ..store.redis_store import RedisStore
from ..store.scripts import DeliverCode, TakeCode
from ..store.step_io import Snapshot
from . import heartbeats, tracing
from .budget import MessageBudget
from .cache import ExecutionCache
from .circuit import CircuitBreaker
from .guards import check_payload
from .liveness import LivenessHolder
from .publisher import Publisher
from .ride_out import ride_out


class ActivityHost(Protocol):
    """What running attempts needs of the engine (worker/engine.py implements it)."""

    store: RedisStore
    registry: Registry
    app_id: str
    circuit: CircuitBreaker | None
    max_payload_bytes: int
    redis_retry_seconds: float
    budget: MessageBudget
    executions: ExecutionCache
    outgoing: Publisher
    clock: Callable[[], int]
    liveness: LivenessHolder
    lost_attempt_retries: int

    @property
    def process_id(self) -> str: ...

    def reap_if_dead_here(self, process_id: str) -> bool: ...

    def served_elsewhere(self, activity: str) -> bool: ...

    def runs_here(self, app: str | None, workflow: str | None) -> bool: ...

    def wake(self, instance_id: str, app: str | None, workflow: str | None = None,
             prefetched: Snapshot | None = None) -> None: ...

log = logging.getLogger("orchestrator.engine")


@dataclass
class ActivityContext:
    """What an activity sees (Dapr's ``WorkflowActivityContext``), plus Temporal's heartbeats:
    ``heartbeat(details)`` while it works (worker/heartbeats.py) and ``heartbeat_details``, the last
    details the call's previous attempt sent (None for the first)."""

    workflow_id: str
    task_id: int
    attempt: int = 1
    heartbeat_details: Any = None
    _beat: Callable[[Any], None] | None = field(default=None, repr=False, compare=False)

    def heartbeat(self, details: Any = None) -> None:
        """Report progress: keeps an attempt with a ``heartbeat_timeout`` alive, and ``details``
        (JSON-compatible) reach the next attempt if this one fails or its process dies."""
        if self._beat is not None:
            self._beat(details)
    propagated: Any = field(default=None, repr=False)  # the history its workflow handed on (core/propagation.py)

    def get_propagated_history(self) -> PropagatedHistory | None:
        """The calling workflow's history, when it called with ``propagation=`` (else None)."""
        return PropagatedHistory.from_payload(self.propagated)


@dataclass(frozen=True)
class Woken:
    """A delivery woke its instance, whose step the deliverer runs next (with the snapshot it read)."""

    instance_id: str
    app: str
    workflow: str
    snapshot: Snapshot | None


@dataclass
class Outcome:
    record: ActivityRecord
    result: Any = None
    failure: FailureDetails | None = None
    run_ms: int | None = None  # how long the function ran (recorded with the result)
    woken: Woken | None = None  # the step its delivery woke, for the caller to run


task_key = activity_task_key  # the attempt's task key ``<run>.<gen>.<seq>``


def batches(records: list[ActivityRecord], parallelism: int, batch_size: int) -> Iterator[list[ActivityRecord]]:
    """Split one step's activities for one app into messages: one each up to ``parallelism``
    activities, else ``max(parallelism, ceil(n / batch_size))`` near-equal consecutive groups."""
    n = len(records)
    if batch_size <= 1 or n <= parallelism:
        for rec in records:
            yield [rec]
        return
    count = max(parallelism, -(-n // batch_size))
    size, extra = divmod(n, count)
    start = 0
    for i in range(count):
        end = start + size + (i < extra)
        yield records[start:end]
        start = end


def run_one(host: ActivityHost, rec: ActivityRecord) -> Outcome | None:
    """Run one attempt and deliver its outcome (``woken``: the step it woke, for the caller to run);
    None when it was no longer awaited (skipped)."""
    # Checked even for a message sent a moment ago: an attempt still queued when its instance was
    # terminated (or its call timed out) must not run at all.
    if not elsewhere(host, [rec]):
        return None
    code = take(host, [rec])[0]
    if code != TakeCode.TAKEN and code != TakeCode.LOST_LIMIT:
        return None
    outcome = lost_too_often(host, rec) if code == TakeCode.LOST_LIMIT else execute(host, rec)
    heartbeats.disarm(host.store.liveness, [rec])
    deliver_outcome(host, outcome)
    return outcome


def run_claimed(host: ActivityHost, rec: ActivityRecord) -> Outcome:
    """Run an eager attempt, which the commit that kept it claimed for this process (no start
    check: it was recorded a moment ago); its outcome is not delivered yet (Engine.run_step)."""
    heartbeats.arm(host.store.liveness, [rec], host.clock())
    outcome = execute(host, rec)
    heartbeats.disarm(host.store.liveness, [rec])
    return outcome


def deliver_outcome(host: ActivityHost, outcome: Outcome) -> None:
    """Deliver an attempt's outcome (``outcome.woken``: the step it woke, for the caller to run)."""
    rec = outcome.record
    # The result is in hand: keep it through Redis trouble rather than run the attempt again.
    outcome.woken = ride_out(lambda: deliver(host, rec, outcome.result, outcome.failure, run_ms=outcome.run_ms),
                             f"result of activity {rec['name']!r} of {rec['id']}", host.redis_retry_seconds)


def result_event(outcome: Outcome, now: int) -> TaskCompleted | TaskFailed:
    """The history event of an attempt's outcome."""
    return _event(outcome.record, outcome.result, outcome.failure, now, outcome.run_ms)


def run_batch(host: ActivityHost, records: list[ActivityRecord]) -> list[Outcome]:
    """Run a batch message's attempts in order; past the time budget, requeue the rest singly.
    Returns the outcomes of the attempts it ran."""
    records = elsewhere(host, records)
    codes = take(host, records)
    awaited = [c in (TakeCode.TAKEN, TakeCode.LOST_LIMIT) for c in codes]
    prerun = _run_async_together(host, [r for r, c in zip(records, codes) if c == TakeCode.TAKEN])
    taken = [i for i, c in enumerate(codes) if c == TakeCode.TAKEN]
    ran = {taken[j]: r for j, r in prerun.items()}  # by index in records
    done: list[Outcome] = []
    for i, (rec, ok) in enumerate(zip(records, awaited)):
        if i and host.budget.over():
            # Async attempts already ran with the others: their outcomes are delivered, not requeued.
            done.extend(execute(host, records[j], ran[j]) for j in range(i, len(records)) if j in ran)
            _deliver_many(host, done)  # before requeueing: the requeued may be needed by the same wake
            rest = [r for j, (r, still) in enumerate(zip(records, awaited)) if j >= i and still and j not in ran]
            host.store.liveness.release([member(r["id"], task_key(r)) for r in rest])
            log.info("activity batch ran %.1f s; sent %d remaining attempts back to the queue singly",
                     host.budget.elapsed() or 0.0, len(rest))
            with host.outgoing.batch():
                for r in rest:
                    host.outgoing.send_activity(r, r["app"])
            return done
        if ok:
            lost = codes[i] == TakeCode.LOST_LIMIT
            done.append(lost_too_often(host, rec) if lost else execute(host, rec, ran.get(i)))
    _deliver_many(host, done)
    heartbeats.disarm(host.store.liveness, records)
    return done


MAX_HOPS = 20


def elsewhere(host: ActivityHost, records: list[ActivityRecord]) -> list[ActivityRecord]:
    """Send back to the queue the attempts of activities this pool lacks but another live process of
    its app registers (pools of one app id deployed with different modules, a rolling deploy);
    the rest, to run here (an activity nobody registers fails with ActivityNotRegisteredError)."""
    keep = []
    for rec in records:
        hops = rec.get("hops", 0)
        if rec["name"] in host.registry.activities or hops >= MAX_HOPS or not host.served_elsewhere(rec["name"]):
            keep.append(rec)
            continue
        log.info("activity %r is not registered in this process; sending %s (task %s) back to the queue of app %r "
                 "for a process that registers it", rec["name"], rec["id"], task_key(rec), rec["app"])
        host.outgoing.send_activity({**rec, "hops": hops + 1}, rec["app"])
    return keep


def take(host: ActivityHost, records: list[ActivityRecord]) -> list[TakeCode]:
    """Claim the attempts for this process (worker/liveness.py); the ones not taken are logged."""
    def attempt() -> list[tuple[TakeCode, str]]:
        return host.store.liveness.take_attempts(host.process_id, [(r["id"], task_key(r)) for r in records],
                                                 host.clock(), host.liveness.get().alive_since(),
                                                 host.lost_attempt_retries)

    replies = attempt()
    # A holder that died here (a prefork child killed by its activity: its pool requeued the message
    # at once) is reaped now rather than after its heartbeat expires; then the attempts are taken again.
    busy = {holder for code, holder in replies if code == TakeCode.BUSY}
    if busy and any([host.reap_if_dead_here(holder) for holder in busy]):
        replies = attempt()
    heartbeats.arm(host.store.liveness, [r for r, (c, _) in zip(records, replies) if c == TakeCode.TAKEN],
                   host.clock())
    for rec, (code, holder) in zip(records, replies):
        if code == TakeCode.NOT_AWAITED:
            _skipped(rec)
        elif code == TakeCode.BUSY:
            log.info("activity %s (task %s) of %s is running in live process %s; this copy is skipped",
                     rec["name"], task_key(rec), rec["id"], holder)
    return [code for code, _ in replies]


def lost_too_often(host: ActivityHost, rec: ActivityRecord) -> Outcome:
    """The outcome of an attempt whose processes died holding it too often: a failed attempt."""
    times = host.lost_attempt_retries + 1
    failure = FailureDetails(
        f"activity {rec['name']!r} (task {task_key(rec)}, attempt {rec.get('attempt', 1)}) of {rec['id']} was lost "
        f"{times} times with the worker process running it (it died, was killed or stopped heartbeating); "
        "counted as a failed attempt", "ActivityWorkerLostError")
    log.error("%s", failure.message, extra={"instance_id": rec["id"], "activity": rec["name"]})
    return Outcome(rec, failure=failure)


def execute(host: ActivityHost, rec: ActivityRecord, ran: _Ran | None = None) -> Outcome:
    """Run one attempt (unless unregistered or its circuit is open); failures become the outcome.
    ``ran``: an async attempt a batch already ran (``_run_async_together``): only its outcome is taken."""
    name, seq = rec["name"], rec["seq"]
    fn = host.registry.activities.get(name)
    outcome = Outcome(rec)
    began, began_ns = time.perf_counter(), time.time_ns()
    breaker = host.circuit if host.circuit is not None and host.circuit.enabled else None
    refused_for = breaker.blocked_for(name, host.clock()) if breaker is not None and fn is not None else 0
    if fn is None:
        outcome.failure = FailureDetails(
            f"activity {name!r} is not registered in app {host.app_id!r}", "ActivityNotRegisteredError")
    elif refused_for:
        assert breaker is not None
        outcome.failure = breaker.refusal(name, refused_for)  # not run, so not counted by the breaker
    else:
        unhealthy = False
        beat = heartbeats.Heartbeat(host.store.liveness, rec, host.clock,
                                    lambda d: check_payload(d, f"heartbeat details of activity {name!r}",
                                                            host.max_payload_bytes))
        try:
            if ran is not None and ran.error is not None:
                raise ran.error
            ctx = ActivityContext(rec["id"], seq, rec.get("attempt", 1),
                                  heartbeats.previous_details(host.store.liveness, rec), beat, propagated=rec.get("ph"))
            chain = host.registry.interceptors.runtime
            value = ran.value if ran is not None else call_activity(fn, ctx, rec["input"], chain)
            outcome.result = check_payload(value, f"output of activity {name!r}", host.max_payload_bytes)
        except Exception as exc:  # noqa: BLE001 - the activity's failure is delivered, not raised
            outcome.result, outcome.failure = None, FailureDetails.from_exception(exc)
            unhealthy = not isinstance(exc, NonRetryableError)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt... from the activity's own code
            if is_shutdown(exc):
                raise
            outcome.result, outcome.failure = None, FailureDetails.from_exception(exc)
            unhealthy = True
        beat.close()
        if outcome.failure is not None:
            beat.flush()  # the latest details, for the next attempt
        if breaker is not None and (unhealthy or outcome.failure is None):
            breaker.record(name, ok=outcome.failure is None, now_ms=host.clock())
    seconds = ran.seconds if ran is not None else time.perf_counter() - began
    outcome.run_ms = int(seconds * 1000)
    metrics.record_activity(host.store, name, seconds, failed=outcome.failure is not None)
    fields = {"instance_id": rec["id"], "workflow": rec.get("wf"), "activity": name, "task_id": task_key(rec),
              "attempt": rec.get("attempt", 1), "duration_ms": round(seconds * 1000, 1)}
    if outcome.failure is None:
        log.info("activity completed", extra=fields)
    else:
        # The error itself, so a log search finds why an attempt failed (the stack stays in history).
        log.warning("activity failed: %s: %s", outcome.failure.error_type, outcome.failure.message,
                    extra={**fields, "error_type": outcome.failure.error_type, "error": outcome.failure.message})
    tracing.activity_attempt(rec, began_ns, outcome.failure)
    return outcome


def deliver(host: ActivityHost, rec: ActivityRecord, result: Any, failure: FailureDetails | None,
            *, inline: bool = True, run_ms: int | None = None) -> Woken | None:
    """Hand an attempt's outcome to its instance; the step it woke, when the caller is to run it here.
    Also used when Celery's hard time limit killed the attempt (then from the worker's main process,
    which must not run steps: ``inline=False`` publishes the step). ``run_ms`` is recorded with it."""
    now = host.clock()
    event, key, failed = _event(rec, result, failure, now, run_ms), task_key(rec), failure is not None
    if inline and host.runs_here(rec["wapp"], rec["wf"]):
        # The step this delivery may wake runs next, here: have the delivery read it too.
        code, snap = host.store.deliver_and_load(rec["id"], event, token=task_token(key), task_key=key, now=now,
                                                 failure=failed, after_version=host.executions.version_of(rec["id"]))
        if code == DeliverCode.WAKE:
            return Woken(rec["id"], rec["wapp"], rec["wf"], snap)
    else:
        code = host.store.deliver(rec["id"], event, token=task_token(key), task_key=key, now=now, failure=failed)
    _after_delivery(host, rec, code, inline)
    return None


def _deliver_many(host: ActivityHost, outcomes: list[Outcome]) -> None:
    if outcomes:
        ride_out(lambda: _deliver_batch(host, outcomes), f"{len(outcomes)} activity results",
                 host.redis_retry_seconds)


def _deliver_batch(host: ActivityHost, outcomes: list[Outcome]) -> None:
    now = host.clock()
    codes = host.store.deliver_many([
        (o.record["id"], _event(o.record, o.result, o.failure, now, o.run_ms), task_token(task_key(o.record)),
         task_key(o.record), o.failure is not None) for o in outcomes], now)
    for outcome, code in zip(outcomes, codes):
        _after_delivery(host, outcome.record, code, True)


def _after_delivery(host: ActivityHost, rec: ActivityRecord, code: int, inline: bool) -> None:
    if code == DeliverCode.DUPLICATE:
        log.info("dropped the result of activity %s (task %s, attempt %s) of %s: no longer awaited "
                 "(timed out or already delivered)", rec["name"], task_key(rec), rec.get("attempt", 1), rec["id"])
    elif code == DeliverCode.WAKE and inline:
        host.wake(rec["id"], rec["wapp"], rec["wf"])
    elif code == DeliverCode.WAKE:
        host.outgoing.send_step(rec["id"], rec["wapp"])


def _event(rec: ActivityRecord, result: Any, failure: FailureDetails | None, now: int,
           run_ms: int | None = None) -> TaskCompleted | TaskFailed:
    seq = rec["seq"]
    return (
        TaskCompleted(ts=now, seq=seq, result=result, run_ms=run_ms)
        if failure is None
        else TaskFailed(ts=now, seq=seq, failure=failure, run_ms=run_ms)
    )


def is_shutdown(exc: BaseException) -> bool:
    """Is this the worker itself stopping (Celery's WorkerShutdown / WorkerTerminate, or the SystemExit
    a prefork child's SIGTERM handler raises), rather than the code it runs raising SystemExit or
    KeyboardInterrupt? The worker's own stop is not the activity's failure: the attempt is lost with
    its process and comes back (worker/liveness.py)."""
    if type(exc).__name__ in ("WorkerShutdown", "WorkerTerminate"):
        return True
    try:
        from billiard.common import terminate_handler_fired
    except ImportError:  # pragma: no cover - billiard comes with celery
        return False
    return bool(terminate_handler_fired())


def _skipped(rec: ActivityRecord) -> None:
    # Already delivered, or the instance finished, was terminated or continued as new since the
    # message was sent: running the activity now would do work nobody awaits.
    log.info("activity %s of %s is no longer awaited; skipped", rec["name"], rec["id"])


def _takes_input(fn: Callable[..., Any]) -> bool:
    """Is the activity ``fn(ctx, input)`` rather than ``fn(ctx)``?"""
    return len(inspect.signature(fn).parameters) >= 2


_takes_input_cached = functools.lru_cache(maxsize=4096)(_takes_input)  # inspect is slow: once per function


_input_type_cached = functools.lru_cache(maxsize=4096)(input_annotation)


def _invoke(fn: Callable[..., Any], ctx: ActivityContext, payload: Any, interceptors: Sequence[Any] = ()) -> Any:
    """Call ``fn`` with its input as Dapr hands it: objects with attributes (``from_payload``), or the
    model or dataclass its input parameter is annotated with (``coerce``); through the runtime
    interceptors' ``execute_activity`` when there are any (for an ``async def`` activity, ``next``
    returns its coroutine, which the runner awaits)."""
    try:
        takes_input = _takes_input_cached(fn)
        annotation = _input_type_cached(fn) if takes_input else None
    except TypeError:  # an unhashable callable object
        takes_input = _takes_input(fn)
        annotation = input_annotation(fn) if takes_input else None
    if not interceptors:
        return fn(ctx, coerce(annotation, from_payload(payload))) if takes_input else fn(ctx)

    def call(request: ExecuteActivityRequest[Any]) -> Any:
        no_metadata(request, "execution of an activity")
        return fn(request.ctx, coerce(annotation, request.input)) if takes_input else fn(request.ctx)

    return compose_runtime_chain(interceptors, call)(ExecuteActivityRequest(ctx, from_payload(payload)))


def call_activity(fn: Callable[..., Any], ctx: ActivityContext, payload: Any, interceptors: Sequence[Any] = ()) -> Any:
    """Run ``fn`` (an ``async def`` one on an event loop of its own) and return its result."""
    result = _invoke(fn, ctx, payload, interceptors)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


@dataclass
class _Ran:
    """An ``async def`` attempt of a batch, already run with the others on one event loop."""

    value: Any
    error: Exception | None
    seconds: float


def _run_async_together(host: ActivityHost, records: list[ActivityRecord]) -> dict[int, _Ran]:
    """The ``async def`` attempts of a batch message run at once on one event loop (``asyncio.gather``),
    as Dapr's worker runs async activities; by their index in ``records``. The rest run in turn."""
    jobs: list[tuple[int, Callable[..., Any], ActivityRecord]] = []
    breaker = host.circuit if host.circuit is not None and host.circuit.enabled else None
    for i, rec in enumerate(records):
        fn = host.registry.activities.get(rec["name"])
        watched = rec.get("hb") or rec.get("stc")  # heartbeats or a start-to-close limit: run one by one
        is_async = fn is not None and inspect.iscoroutinefunction(getattr(fn, "__wrapped__", fn))
        refused = breaker is not None and bool(breaker.blocked_for(rec["name"], host.clock()))
        if fn is not None and is_async and not watched and not refused:
            jobs.append((i, fn, rec))
    if len(jobs) < 2:
        return {}

    async def one(fn: Callable[..., Any], rec: ActivityRecord) -> _Ran:
        began = time.perf_counter()
        try:
            ctx = ActivityContext(rec["id"], rec["seq"], rec.get("attempt", 1), propagated=rec.get("ph"))
            value = await _invoke(fn, ctx, rec["input"], host.registry.interceptors.runtime)
            return _Ran(value, None, time.perf_counter() - began)
        except Exception as exc:  # noqa: BLE001 - the attempt's failure, delivered by execute()
            return _Ran(None, exc, time.perf_counter() - began)

    async def together() -> list[_Ran]:
        return list(await asyncio.gather(*(one(fn, rec) for _, fn, rec in jobs)))

    return {i: ran for (i, _, _), ran in zip(jobs, asyncio.run(together()))}


__all__ = ["ActivityContext", "ActivityHost", "Woken", "batches", "call_activity", "deliver", "deliver_outcome",
           "execute", "is_shutdown", "result_event", "run_batch", "run_claimed", "run_one"]
