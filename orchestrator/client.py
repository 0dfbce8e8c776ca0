"""WorkflowClient (alias DaprWorkflowClient): start, observe and steer workflow instances.

Every call validates its input before touching Redis, so a bad call fails at the call site with an
error that names the problem, instead of leaving a hung instance behind.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from . import apilog
from .codec import check_payload
from .core.context import registered_name, to_ms
from .core.errors import (
    IdempotencyKeyReusedError,
    InstanceAlreadyExistsError,
    InstanceFinishedError,
    InstanceNotFoundError,
    InstanceRunningError,
    OrchestratorError,
    WorkflowNotRegisteredError,
)
from .core.flow import validate_priority
from .core.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    event_to_dict,
)
from .core.identifiers import validate_instance_id, validate_name
from .core.interceptors import ScheduleWorkflowRequest, check_interceptors, compose_client_chain, no_metadata
from .core.rerun import KEEP_INPUT, plan_rerun
from .core.vocabulary import CONTROL_TOKEN, event_token
from .history_export import export_document
from .logger import apply_logger_options, setting_options
from .operations import OperationsReads
from .query import InstancePage, InstanceQuery, parse_status
from .scheduling import ScheduleCalls
from .settings import Settings, load_settings
from .state import WorkflowState, WorkflowStatus
from .store import records
from .store.connection import StoreError, StoreUnavailable
from .store.flow import FlowStore
from .store.queries import StoreQueries
from .store.records import InstanceMeta
from .store.redis_store import FINISHED, KEY_REUSED, UNKNOWN, WAKE, RedisStore
from .store.step_io import Seed
from .worker.celery_app import PUBLISH_ERRORS, CeleryPublisher, create_celery_app
from .worker.control import Controller
from .worker.publisher import SendingPublisher, full_publisher

log = logging.getLogger("orchestrator.client")


def _now_ms() -> int:
    return int(time.time() * 1000)


APP_LOOKUP_TTL = 5.0  # seconds a client trusts its lookup of which app serves a workflow
BATCH_OPERATIONS = ("terminate", "purge", "rerun")
BATCH_LIMIT = 10_000  # instances one batch call acts on at most (repeat it for more)
DEDUP_CREATE_GRACE = 0.2  # seconds a deduplicated start waits for a concurrent start to create its instance


class WorkflowClient(OperationsReads, ScheduleCalls):
    def __init__(self, host: str | Settings | None = None, port: str | None = None, *,
                 settings: Settings | None = None, store: RedisStore | None = None,
                 publisher: SendingPublisher | None = None, clock: Callable[[], int] | None = None,
                 redis_url: str | None = None, logger_options: Any = None, interceptors: Any = None,
                 **options: Any) -> None:
        """``WorkflowClient()`` reads the settings (``load_settings``); ``WorkflowClient(settings)`` or
        ``settings=`` uses those. Dapr's ``DaprWorkflowClient(host, port, logger_options, interceptors)``
        arguments are accepted: ``host``/``port`` name the Dapr sidecar, which this client does not use
        (it talks to Redis, ``redis_url``); ``logger_options`` (Dapr's ``LoggerOptions``) sets the
        level and handler of this client's logger. Settings may be given by name (``strict_events=True``,
        ``reuse_finished_ids=False``, ...); any other keyword raises ``TypeError`` naming it.

        The injection seams, for tests and embedders: ``store`` (a ``RedisStore``; default: one on
        ``settings.redis_url``), ``publisher`` (how steps and activities are sent; default: Celery on
        ``settings.broker``), ``clock`` (ms since the epoch; default: the wall clock), the one clock
        every timestamp this client writes comes from."""
        if isinstance(host, Settings):
            settings, host = host, None
        self.interceptors = check_interceptors(interceptors, "client", "interceptors")
        self.settings = (settings or load_settings()).replace(redis_url=redis_url, **setting_options(options,
                                                                                                     "DaprWorkflowClient"))
        apply_logger_options(log, logger_options)
        self.store = store if store is not None else RedisStore.from_url(self.settings.redis_url,
                                                                         self.settings.key_prefix,
                                                                         self.settings.shards)
        self.store.retention_ms = int(self.settings.retention_seconds * 1000)
        self._publisher: SendingPublisher = publisher if publisher is not None else \
            CeleryPublisher(create_celery_app(self.settings), direct=self.settings.broker_is_store)
        self._outgoing = full_publisher(self._publisher)
        self.clock: Callable[[], int] = clock if clock is not None else _now_ms
        self._apps: dict[str, tuple[float, str]] = {}  # workflow name -> (looked up at, app id)
        self._queries: StoreQueries | None = None
        self._broker: Any = None  # the broker's Redis client, for queue lengths (built on first use)
        self.caller = "client"  # who the API log names for this client's calls (the CLI/HTTP set theirs)

    # -- starting -------------------------------------------------------------------------------
    @apilog.logged("start")
    def schedule_new_workflow(self, workflow: Callable[..., Any] | str, *, input: Any = None,
                              instance_id: str | None = None, start_at: datetime | None = None,
                              reuse_id_policy: str | None = None, app_id: str | None = None,
                              version: str | None = None, priority: int | None = None,
                              dedup_id: str | None = None) -> str:
        """Start an instance now (or at ``start_at``) and return its id.

        ``reuse_id_policy``: None follows the setting ``reuse_finished_ids`` (default True, Dapr's: the
        id of a finished instance starts a new run under it); "replace" replaces a finished instance;
        "error" refuses any id that exists. A running instance's id is always refused. ``app_id``
        routes the start to that app's pool; by default the app whose pools announced the workflow
        name, else (nothing announced it yet: a web app deployed before its workers, a fresh store)
        this client's ``app_id`` setting, where the instance waits PENDING until a pool that
        registers the name starts, as in Dapr (setting ``strict_start``: raise instead). ``version``
        (our extension) runs that registered version of the workflow instead of the latest.

        Flow control (our extensions, docs/flow-control.md): ``priority`` 0 (first, the default) to 9 (last)
        orders its steps and activities in the queues; ``dedup_id``: while an instance of this
        workflow started with the same id is not finished, the start returns that instance's id and
        starts nothing.

        ``interceptors`` (Dapr's client interceptors, ``orchestrator.interceptors``) wrap this call: each
        gets a ``ScheduleWorkflowRequest`` and ``next``; the extensions above pass through unchanged."""
        if not self.interceptors:
            return self._schedule_new(workflow, input=input, instance_id=instance_id, start_at=start_at,
                                      reuse_id_policy=reuse_id_policy, app_id=app_id, version=version,
                                      priority=priority, dedup_id=dedup_id)

        def schedule(request: ScheduleWorkflowRequest[Any]) -> str:
            no_metadata(request, f"start of workflow {request.workflow_name!r}")
            return self._schedule_new(request.workflow_name, input=request.input, instance_id=request.instance_id,
                                      start_at=request.start_at, reuse_id_policy=request.reuse_id_policy,
                                      app_id=app_id, version=version, priority=priority, dedup_id=dedup_id)

        request = ScheduleWorkflowRequest(registered_name(workflow), input, instance_id, start_at, reuse_id_policy)
        return cast(str, compose_client_chain(self.interceptors, schedule)(request))

    def _schedule_new(self, workflow: Callable[..., Any] | str, *, input: Any, instance_id: str | None,
                      start_at: datetime | None, reuse_id_policy: str | None, app_id: str | None,
                      version: str | None, priority: int | None, dedup_id: str | None) -> str:
        if priority is not None:
            validate_priority(priority)
        if dedup_id is not None:
            validate_name(dedup_id, "dedup_id")
            return self._start_deduplicated(workflow, dedup_id, input=input, instance_id=instance_id,
                                            start_at=start_at, reuse_id_policy=reuse_id_policy, app_id=app_id,
                                            version=version, priority=priority)
        return self._start(workflow, input=input, instance_id=instance_id, start_at=start_at,
                           reuse_id_policy=reuse_id_policy, app_id=app_id, version=version, priority=priority)

    def _start_deduplicated(self, workflow: Callable[..., Any] | str, dedup_id: str, *,
                            instance_id: str | None, **options: Any) -> str:
        name = validate_name(registered_name(workflow), "workflow name")
        new_id = validate_instance_id(instance_id) if instance_id is not None else uuid.uuid4().hex
        flow = FlowStore.of(self.store)
        for _ in range(20):
            holder = flow.claim_dedup(name, dedup_id, new_id)
            if holder in ("", new_id):
                return self._start(workflow, instance_id=new_id, **options)
            meta = self.store.get_meta(holder)
            if meta is None:  # claimed a moment ago by a start still creating it: give it a moment
                time.sleep(DEDUP_CREATE_GRACE)
                meta = self.store.get_meta(holder)
            if meta is not None and not meta.is_terminal:
                return holder  # the live instance this dedup id belongs to
            if flow.claim_dedup(name, dedup_id, new_id, replacing=holder) in ("", new_id):  # finished: free again
                return self._start(workflow, instance_id=new_id, **options)
        raise OrchestratorError(f"dedup_id {dedup_id!r} of workflow {name!r} kept changing hands; try again")

    def _start(self, workflow: Callable[..., Any] | str, *, input: Any, instance_id: str | None,
               start_at: datetime | None, reuse_id_policy: str | None, app_id: str | None,
               version: str | None, priority: int | None) -> str:
        if version is not None:
            validate_name(version, "version")
        name = validate_name(registered_name(workflow), "workflow name")
        if app_id is not None:
            validate_name(app_id, "app_id")
        app = app_id or self._app_of(name)
        if app is None and not self.settings.strict_start:
            app = self.settings.app_id
        if app is None:
            raise WorkflowNotRegisteredError(
                f"no worker pool has registered workflow {name!r}; start a pool whose module registers it "
                "(orchestrator worker MODULE) or pass app_id= to route it explicitly"
            )
        instance_id = validate_instance_id(instance_id) if instance_id is not None else uuid.uuid4().hex
        payload = self._payload(input, f"input of workflow {name!r}")
        if reuse_id_policy not in (None, "error", "replace"):
            raise ValueError(f"reuse_id_policy must be 'error' or 'replace', got {reuse_id_policy!r}")
        due = to_ms(start_at, "start_at") if start_at is not None else 0
        now = self.clock()
        started = ExecutionStarted(ts=now, name=name, input=payload, version=version)
        # The first step's message, pushed by the store iff the start is due now (when the publisher can build it).
        step = self._outgoing.step_message(instance_id, app, priority)
        replace = reuse_id_policy == "replace" or (reuse_id_policy is None and self.settings.reuse_finished_ids)
        code, status = self.store.create_instance(instance_id, name, app, started, payload, now,
                                                  start_at=due, replace=replace, step_message=step, priority=priority)
        if code == -1:
            hint = ("; only a finished instance's id can be reused" if replace
                    else "; pass reuse_id_policy='replace' to replace a finished one")
            raise InstanceAlreadyExistsError(f"an instance with id {instance_id!r} already exists ({status}){hint}")
        if code == WAKE and step is None:
            self._wake(instance_id, app, priority)
        return instance_id

    def _app_of(self, workflow: str) -> str | None:
        """The app serving ``workflow``, as its pools announced it; remembered for a few seconds, so
        a burst of starts does not ask Redis each time."""
        seen = self._apps.get(workflow)
        if seen is not None and time.monotonic() - seen[0] < APP_LOOKUP_TTL:
            return seen[1]
        app = self.store.workflow_app(workflow)
        if app is not None:
            self._apps[workflow] = (time.monotonic(), app)
        return app

    # -- observing ------------------------------------------------------------------------------
    def get_workflow_state(self, instance_id: str, *, fetch_payloads: bool = True) -> WorkflowState | None:
        meta = self.store.get_meta(instance_id)
        return WorkflowState(meta, fetch_payloads) if meta else None

    def wait_for_workflow_start(self, instance_id: str, *, fetch_payloads: bool = False,
                                timeout_in_seconds: float = 0) -> WorkflowState | None:
        """Wait until the instance has started (is not PENDING). ``timeout_in_seconds=0`` (the default,
        Dapr's) waits without limit; past a positive timeout, ``TimeoutError``."""
        return self._wait(instance_id, fetch_payloads, timeout_in_seconds,
                          lambda s: s.runtime_status != WorkflowStatus.PENDING)

    def wait_for_workflow_completion(self, instance_id: str, *, fetch_payloads: bool = True,
                                     timeout_in_seconds: float = 0) -> WorkflowState | None:
        """Wait until the instance is COMPLETED, FAILED or TERMINATED. ``timeout_in_seconds=0`` (the
        default, Dapr's) waits without limit; past a positive timeout, ``TimeoutError``."""
        finished = {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED}
        return self._wait(instance_id, fetch_payloads, timeout_in_seconds, lambda s: s.runtime_status in finished)

    def _wait(self, instance_id: str, fetch_payloads: bool, timeout: float,
              done: Callable[[WorkflowState], bool]) -> WorkflowState | None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < float("inf"):
            raise ValueError(f"timeout_in_seconds must be a non-negative number of seconds, got {timeout!r}")
        deadline = time.monotonic() + timeout if timeout else float("inf")
        delay = 0.005
        while True:
            state = self.get_workflow_state(instance_id, fetch_payloads=fetch_payloads)
            if state is None:
                raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
            if done(state):
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"instance {instance_id!r} is still {state.runtime_status.name} after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def get_workflow_history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's history as JSON-friendly dicts, oldest first."""
        if self.store.get_meta(validate_instance_id(instance_id)) is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return [event_to_dict(e) for e in self.store.get_history(instance_id)]

    def export_history(self, instance_id: str) -> dict[str, Any]:
        """The instance's metadata and history as one versioned JSON document (format
        ``orchestrator.history`` 1, see ``orchestrator.history_export``): ``json.dump`` it to a file
        and replay it against new code with ``orchestrator.testing.Replayer`` / ``assert_replays``."""
        snap = self.store.load(instance_id)  # metadata and history of the same version
        if snap is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        info = {**WorkflowState(snap.meta).to_dict(), "generation": snap.meta.generation,
                "history_version": snap.meta.version}
        return export_document(info, snap.history)

    @apilog.logged("rerun")
    def rerun_workflow(self, instance_id: str, *, from_step: int, input: Any = KEEP_INPUT,
                       new_instance_id: str | None = None) -> str:
        """Start a new instance from a finished one, reusing the results of its first ``from_step``-1
        calls and running call ``from_step`` and everything after it again; returns the new id.

        A step is a call (``call_activity`` / ``call_child_workflow``, counted from 1 in the order the
        workflow made them; retries are part of their call). ``input`` replaces the original input
        (omit it to keep that). The new instance runs the original's workflow version and records
        ``rerun_of``. See ``orchestrator.core.rerun`` for what is reused exactly. The new instance is
        created already holding the reused history, in one atomic write."""
        snap = self.store.load(instance_id)
        if snap is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        meta = snap.meta
        if not meta.is_terminal:
            raise InstanceRunningError(f"instance {instance_id!r} is {meta.status}; only a finished instance "
                                       "(COMPLETED, FAILED or TERMINATED) can be rerun")
        if input is not KEEP_INPUT:
            input = self._payload(input, f"input of workflow {meta.name!r}")
        plan = plan_rerun(snap.history, from_step, input=input)
        new_id = validate_instance_id(new_instance_id) if new_instance_id is not None else uuid.uuid4().hex
        seed = Seed(history=plan.history, inbox=plan.inbox,
                    fields=records.rerun_fields(instance_id, from_step, plan.started.version),
                    timers=[(t.fire_at, t.seq) for t in plan.timers])
        step = self._outgoing.step_message(new_id, meta.app)
        code, status = self.store.create_instance(new_id, meta.name, meta.app, plan.started, plan.started.input,
                                                  self.clock(), seed=seed, step_message=step)
        if code == -1:
            raise InstanceAlreadyExistsError(f"an instance with id {new_id!r} already exists ({status})")
        if code == WAKE and step is None:
            self._wake(new_id, meta.app)
        return new_id

    def list_workflows(self, *, status: str | WorkflowStatus | None = None, name: str | None = None,
                       offset: int = 0, limit: int = 50, parent_instance_id: str | None = None,
                       created_from: datetime | None = None, created_to: datetime | None = None,
                       fetch_payloads: bool = False) -> list[WorkflowState]:
        """Instances, newest first, filtered by status, workflow name, parent and creation time
        (inclusive). ``parent_instance_id`` lists that instance's children. See ``query_workflows``
        for the total count and the next page's offset."""
        return self.query_workflows(status=status, name=name, offset=offset, limit=limit,
                                    parent_instance_id=parent_instance_id, created_from=created_from,
                                    created_to=created_to, fetch_payloads=fetch_payloads).items

    def query_workflows(self, *, status: str | WorkflowStatus | None = None, name: str | None = None,
                        offset: int = 0, limit: int = 50, parent_instance_id: str | None = None,
                        created_from: datetime | None = None, created_to: datetime | None = None,
                        fetch_payloads: bool = False) -> InstancePage:
        """One page of ``list_workflows`` with ``total`` (all matching) and ``next_offset``."""
        return InstanceQuery(self.queries).page(
            status=status, name=name, parent=parent_instance_id, offset=offset, limit=limit,
            created_from=to_ms(created_from, "created_from") if created_from is not None else None,
            created_to=to_ms(created_to, "created_to") if created_to is not None else None,
            fetch_payloads=fetch_payloads)

    def count_workflows(self, *, created_from: datetime | None = None,
                        created_to: datetime | None = None) -> dict[str, Any]:
        """``{"total", "by_status": {S: n}, "by_name": {name: {"total", "by_status"}}}``, optionally
        for instances created in a time range; each figure is one index read, however many exist."""
        return InstanceQuery(self.queries).counts(
            created_from=to_ms(created_from, "created_from") if created_from is not None else None,
            created_to=to_ms(created_to, "created_to") if created_to is not None else None).to_dict()

    def get_pending_calls(self, instance_id: str) -> list[dict[str, Any]]:
        """What a running instance is waiting for: activities (and the app that must run them),
        child workflows (and their status), timers. Empty for a finished instance."""
        if self.store.get_meta(instance_id) is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return InstanceQuery(self.queries).pending_calls(instance_id)

    @property
    def queries(self) -> StoreQueries:
        """The store's read-only queries (listing, counts, stats, one instance's inbox and waits): what
        the CLI, the HTTP API and the dashboard read through."""
        if self._queries is None or self._queries.store is not self.store:
            self._queries = StoreQueries(self.store)
        return self._queries

    def serving_app(self, workflow: str) -> str | None:
        """The app whose pools announced they serve ``workflow`` (None: no pool has yet)."""
        return self.store.workflow_app(workflow)

    def api_log(self, *, after: str | None = None, before: str | None = None, limit: int = 100) -> list[dict[str, str]]:
        """The API log's entries, newest first (see ``orchestrator.apilog.read``)."""
        return apilog.read(self.store, after=after, before=before, limit=limit)

    def get_call_progress(self, instance_id: str) -> dict[int, dict[str, Any]]:
        """The live state of the calls a running instance awaits, by sequence number: ``queued``,
        ``running`` (``started`` ms), or delivered (``completed`` / ``failed``, ``ts``) and waiting
        for the step that consumes it; children by their own status. What the dashboard's
        progress counts and ``orchestrator wait``'s progress bar show. Empty once finished."""
        if self.store.get_meta(instance_id) is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return self.queries.call_progress(instance_id)

    def batch_workflows(self, operation: str, *, status: str | WorkflowStatus | None = None, name: str | None = None,
                        error_type: str | None = None, id_prefix: str | None = None,
                        created_from: datetime | None = None, created_to: datetime | None = None,
                        limit: int = BATCH_LIMIT, dry_run: bool = False) -> dict[str, Any]:
        """Apply ``operation`` ("terminate", "purge" or "rerun" from the first step) to every instance
        the filters match (newest first, at most ``limit``); ``dry_run`` only counts them.

        Returns ``{"operation", "matched", "capped", "done", "skipped", "failed", "new_ids"}``: the
        ids acted on, ``{id: reason}`` for those the operation does not apply to (terminating a
        finished run, purging or rerunning a running one), ``{id: "Type: message"}`` for errors, and
        for a rerun ``{id: new id}``. One instance's refusal never stops the others."""
        if operation not in BATCH_OPERATIONS:
            raise ValueError(f"unknown batch operation {operation!r}; expected one of {', '.join(BATCH_OPERATIONS)}")
        if not isinstance(limit, int) or not 1 <= limit <= BATCH_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {BATCH_LIMIT}, got {limit!r}")
        found = self.queries.select(
            status=parse_status(status), name=name, error_type=error_type, id_prefix=id_prefix,
            created_from=to_ms(created_from) if created_from is not None else None,
            created_to=to_ms(created_to) if created_to is not None else None, limit=limit + 1)
        ids = found.ids[:limit]
        out: dict[str, Any] = {"operation": operation, "matched": len(ids), "capped": len(found.ids) > limit,
                               "done": [], "skipped": {}, "failed": {}, "new_ids": {}}
        if dry_run:
            return out
        for instance_id in ids:
            try:
                if operation == "terminate":
                    self.terminate_workflow(instance_id)
                elif operation == "purge":
                    self.purge_workflow(instance_id)
                else:
                    out["new_ids"][instance_id] = self.rerun_workflow(instance_id, from_step=1)
            except (InstanceFinishedError, InstanceRunningError) as exc:
                out["skipped"][instance_id] = str(exc)
                continue
            except InstanceNotFoundError:
                out["skipped"][instance_id] = "purged meanwhile"
                continue
            except (OrchestratorError, ValueError) as exc:
                out["failed"][instance_id] = f"{type(exc).__name__}: {exc}"
                continue
            out["done"].append(instance_id)
        return out

    # -- steering -------------------------------------------------------------------------------
    @apilog.logged("raise_event")
    def raise_workflow_event(self, instance_id: str, event_name: str, *, data: Any = None,
                             idempotency_key: str | None = None) -> None:
        """Deliver an external event. An event raised to a finished instance is discarded, as Dapr
        documents (setting ``strict_events``: ``InstanceFinishedError`` instead); to an unknown
        instance, ``InstanceNotFoundError``. ``idempotency_key`` (our extension): the instance keeps the keys
        it has received until it is purged, and a raise with a key it has seen does nothing, so a
        caller may retry a raise whose outcome it did not learn (a timeout, Redis lost mid-call)."""
        validate_name(event_name, "event name")
        if idempotency_key is not None:
            validate_name(idempotency_key, "idempotency_key")
        payload = self._payload(data, f"data of event {event_name!r}")
        self._send(instance_id, EventRaised(ts=self.clock(), name=event_name, data=payload),
                   token=event_token(event_name), control=False, what=f"raise event {event_name!r} to",
                   idempotency_key=idempotency_key or "", discard_if_finished=not self.settings.strict_events)

    @apilog.logged("terminate")
    def terminate_workflow(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        payload = self._payload(output, "terminate output")
        self._send(instance_id, ExecutionTerminated(ts=self.clock(), output=payload, recursive=recursive),
                   token=CONTROL_TOKEN, control=True, what="terminate")
        self._controller().apply(instance_id)

    @apilog.logged("suspend")
    def pause_workflow(self, instance_id: str) -> None:
        self._send(instance_id, ExecutionSuspended(ts=self.clock()), token=CONTROL_TOKEN, control=True, what="suspend")
        self._controller().apply(instance_id)

    @apilog.logged("resume")
    def resume_workflow(self, instance_id: str) -> None:
        """Resume a suspended instance; it reads RUNNING when this returns (Dapr's), and its step
        (with whatever arrived while it was suspended) is queued for the app."""
        self._send(instance_id, ExecutionResumed(ts=self.clock()), token=CONTROL_TOKEN, control=True, what="resume")
        self._controller().apply(instance_id)
        meta = self.store.get_meta(instance_id)
        if meta is not None and not meta.is_terminal:
            self._wake(instance_id, meta.app)

    def close(self) -> None:
        """Release this client's connections (Dapr's ``close``); the client cannot be used afterwards."""
        for closer in (getattr(self.store.redis, "close", None), getattr(self._broker, "close", None)):
            if callable(closer):
                try:
                    closer()
                except Exception as exc:  # noqa: BLE001 - closing is best effort
                    log.debug("closing the client: %s", exc)

    def __enter__(self) -> WorkflowClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    suspend_workflow = pause_workflow

    def set_workflow_retention(self, name: str, seconds: float | None) -> None:
        """Keep finished instances of workflow ``name`` for ``seconds`` after they finish, then purge
        them with their children (0: forever; None: back to the setting ``retention_seconds``). Applies
        to instances that finish from now on (worker/retention.py)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"workflow name must be a non-empty string, got {name!r}")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or seconds < 0):
            raise ValueError(f"retention must be 0 (keep forever), a positive number of seconds or None, "
                             f"got {seconds!r}")
        self.store.set_retention(name, seconds)

    def workflow_retention(self, name: str) -> float:
        """The retention in seconds finished instances of ``name`` get (0: kept forever)."""
        ms = self.store.retention_of(name)
        return (self.store.retention_ms if ms is None else ms) / 1000

    @apilog.logged("purge")
    def purge_workflow(self, instance_id: str, recursive: bool = True) -> bool:
        """Delete every key of a finished instance and, by default, of its children (recursively).

        With ``recursive`` the whole tree is checked first: if any instance in it is still running,
        nothing is deleted and ``InstanceRunningError`` names it. Children go before their parent, so
        a purge interrupted half-way can simply be repeated."""
        tree = self._instance_tree(validate_instance_id(instance_id)) if recursive else \
            [validate_instance_id(instance_id)]
        for member in reversed(tree):
            code, rest = self.store.purge(member)
            if code == -3:
                # Finished, but its last dispatches (parent notification, child terminations) were
                # not published yet: publish them here (they are idempotent), then purge.
                self._controller().publish_outbox(member, self.store.read_outbox(member))
                code, rest = self.store.purge(member)
            if code == -1 and member != instance_id:
                continue  # a child that was never created, or purged already
            if code == -1:
                raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
            if code == -2:
                raise InstanceRunningError(
                    f"instance {member!r} is {rest[0]}; only finished instances can be purged"
                    + (f" (it is a descendant of {instance_id!r})" if member != instance_id else ""))
            if code == -3:
                raise InstanceRunningError(
                    f"instance {member!r} has finished but its last dispatches (parent notification or "
                    "child termination) are still being published; retry in a moment")
        return True

    def _instance_tree(self, instance_id: str) -> list[str]:
        """``instance_id`` and its descendants, parents before children; raises if one is running."""
        meta = self.store.get_meta(instance_id)
        if meta is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        order, queue, seen = [], [meta], {instance_id}
        while queue:
            current = queue.pop(0)
            if not current.is_terminal:
                raise InstanceRunningError(
                    f"instance {current.instance_id!r} is {current.status}; only finished instances can be "
                    "purged" + (f" (it is a descendant of {instance_id!r})" if current is not meta else ""))
            order.append(current.instance_id)
            for child_id in self.store.child_ids(current.instance_id):
                child = self.store.get_meta(child_id) if child_id not in seen else None
                seen.add(child_id)
                if child is not None and child.parent == current.instance_id:
                    queue.append(child)
        return order

    def strict(self) -> WorkflowClient:
        """This client with the strict forms of Dapr's lenient semantics (``strict_events``,
        ``strict_start``, no id reuse by default): what the CLI, the HTTP API and the dashboard use,
        so an operator is told instead of an event or a start silently going nowhere."""
        twin = WorkflowClient(settings=self.settings.replace(strict_events=True, strict_start=True,
                                                             reuse_finished_ids=False),
                              store=self.store, publisher=self._publisher, clock=self.clock)
        twin.caller = self.caller
        return twin

    def _controller(self) -> Controller:
        """Terminate and suspend need no workflow code, so they take effect when the call returns
        instead of queueing behind the app's backlog (see worker/control.py)."""
        return Controller(self.store, self._publisher, self.clock, self.settings)

    def _send(self, instance_id: str, event: HistoryEvent, *, token: str, control: bool, what: str,
              idempotency_key: str = "", discard_if_finished: bool = False) -> None:
        validate_instance_id(instance_id)
        code = self.store.deliver(instance_id, event, token=token, now=self.clock(), control=control,
                                  idempotency_key=idempotency_key)
        if code == KEY_REUSED:
            raise IdempotencyKeyReusedError(
                f"cannot {what} instance {instance_id!r}: idempotency key {idempotency_key!r} was already used "
                "for an event of another name; nothing was stored. Use a new key for a new event")
        if code == UNKNOWN:
            raise InstanceNotFoundError(f"cannot {what} instance {instance_id!r}: no such instance")
        if code == FINISHED and discard_if_finished:
            log.info("discarded %s instance %s: it has already finished", what, instance_id)
            return
        if code == FINISHED:
            raise InstanceFinishedError(f"cannot {what} instance {instance_id!r}: it has already finished")
        if code == WAKE:
            meta = self.store.get_meta(instance_id)
            if meta is not None:
                self._wake(instance_id, meta.app)

    def _wake(self, instance_id: str, app: str, priority: int | None = None) -> None:
        """Publish the step for a change already stored. The store marked the instance ready in the
        same script, so when the broker cannot take the message now, a pool's sweeper publishes the
        step within ``stale_after`` seconds: the call has succeeded and must not invite a retry."""
        try:
            if priority is None:
                self._publisher.send_step(instance_id, app)
            else:
                self._outgoing.send_priority_step(instance_id, app, priority)
        except PUBLISH_ERRORS as exc:
            log.warning("instance %s: could not publish its step (%s); a sweeper will", instance_id, exc)

    def _payload(self, value: Any, what: str) -> Any:
        return check_payload(value, what, self.settings.max_payload_bytes)


DaprWorkflowClient = WorkflowClient
# What a call raises when the store cannot be used (redis-py's errors; see store/connection.py), for the
# edges (CLI, HTTP, dashboard) to catch without importing the store.
__all__ = ["DaprWorkflowClient", "InstanceMeta", "StoreError", "StoreQueries", "StoreUnavailable", "WorkflowClient"]
