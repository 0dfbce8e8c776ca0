"""Controls applied where they are raised: terminate, suspend and resume, without the workflow's code.

The client delivers a control event to the instance's inbox and then applies it at once, here,
instead of leaving it to a step message that would queue behind the app's backlog of activities
(which keep starting meanwhile): a terminate ends the instance (and its children, recursively); a
suspend is recorded. Both need no code, so this runs the step loop with an empty registry. When the
pending events do need the code (a resume, or results that arrived meanwhile), the step goes to the
app's queue as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.errors import WorkflowNotRegisteredError
from ..core.registry import Registry
from ..settings import Settings
from ..store.records import ActivityRecord
from ..store.redis_store import RedisStore
from .cache import ExecutionCache
from .dispatch import Dispatcher
from .flow import FlowGate
from .planner import StepPlanner
from .publisher import SendingPublisher, full_publisher
from .steps import StepRunner

CONTROL_APP = "client"  # the app id the control steps run as (named in errors and logs only)


class Controller:
    def __init__(self, store: RedisStore, publisher: SendingPublisher, clock: Callable[[], int],
                 settings: Settings | None = None) -> None:
        s = settings or Settings()
        self.store = store
        self.outgoing = full_publisher(publisher)
        self.dispatch = Dispatcher(store, self.outgoing, clock, fanout_parallelism=s.fanout_parallelism,
                                   activity_batch_size=1, may_run_eagerly=self._never, wake=self._wake,
                                   apply_controls=self.apply)
        planner = StepPlanner(Registry(), CONTROL_APP, clock, s.max_payload_bytes, store.child_ids,
                              self.dispatch.route_activities)
        gate = FlowGate(store, Registry(), self.outgoing, clock)  # releases the slot of what it terminates
        self.steps = StepRunner(store, planner, ExecutionCache(0), clock, self.dispatch.publish_outbox,
                                s.history_warn_events, finished=gate.finished_instance)

    def apply(self, instance_id: str) -> None:
        """Apply the controls pending in the instance's inbox; queue its step if the code is needed."""
        try:
            self.steps.run(instance_id)
        except WorkflowNotRegisteredError:
            self._wake(instance_id, None)

    def publish_outbox(self, instance_id: str, entries: dict[str, bytes]) -> None:
        self.dispatch.publish_outbox(instance_id, entries)

    def _wake(self, instance_id: str, app: str | None) -> None:
        if app is None:
            meta = self.store.get_meta(instance_id)
            if meta is None:
                return
            app = meta.app
        self.outgoing.send_step(instance_id, app)

    @staticmethod
    def _never(record: ActivityRecord) -> bool:
        return False


__all__ = ["Controller"]
