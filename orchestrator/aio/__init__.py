"""``orchestrator.aio``: Dapr's ``dapr.ext.workflow.aio``, the asynchronous ``DaprWorkflowClient``.

Every method of the synchronous client, awaited. The reads and waits (``get_workflow_state``,
``wait_for_workflow_start`` / ``_completion``) run on redis-py's asyncio client and poll with
``asyncio.sleep``, so an async web app waits for thousands of instances without a thread each. The
writes (start, raise, terminate, pause, resume, purge) run the store's atomic scripts and publish
steps through the synchronous client, in the default executor: each is one short round trip, and
one code path for them keeps the two clients' semantics the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..client import WorkflowClient
from ..core.errors import InstanceNotFoundError
from ..settings import Settings
from ..state import WorkflowState, WorkflowStatus
from ..store.aio import AsyncStoreReader

_FINISHED = {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED}


class DaprWorkflowClient:
    """The asynchronous client; takes the synchronous client's arguments (``host``, ``port``,
    ``logger_options``, ``settings=``, ``redis_url=``, setting names)."""

    def __init__(self, host: str | Settings | None = None, port: str | None = None, **options: Any) -> None:
        self.sync = WorkflowClient(host, port, **options)
        self.settings = self.sync.settings
        self._reader = AsyncStoreReader(self.settings.redis_url, self.settings.key_prefix)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    # -- the writes (the synchronous client's scripts, off the event loop) -------------------------
    async def schedule_new_workflow(self, workflow: Callable[..., Any] | str, *, input: Any = None,
                                    instance_id: str | None = None, start_at: datetime | None = None,
                                    reuse_id_policy: str | None = None, app_id: str | None = None,
                                    version: str | None = None) -> str:
        return str(await self._call(self.sync.schedule_new_workflow, workflow, input=input, instance_id=instance_id,
                                    start_at=start_at, reuse_id_policy=reuse_id_policy, app_id=app_id,
                                    version=version))

    async def raise_workflow_event(self, instance_id: str, event_name: str, *, data: Any = None,
                                   idempotency_key: str | None = None) -> None:
        await self._call(self.sync.raise_workflow_event, instance_id, event_name, data=data,
                         idempotency_key=idempotency_key)

    async def terminate_workflow(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        await self._call(self.sync.terminate_workflow, instance_id, output=output, recursive=recursive)

    async def pause_workflow(self, instance_id: str) -> None:
        await self._call(self.sync.pause_workflow, instance_id)

    suspend_workflow = pause_workflow

    async def resume_workflow(self, instance_id: str) -> None:
        await self._call(self.sync.resume_workflow, instance_id)

    async def purge_workflow(self, instance_id: str, recursive: bool = True) -> bool:
        return bool(await self._call(self.sync.purge_workflow, instance_id, recursive))

    # -- the reads and waits (redis-py asyncio) ----------------------------------------------------
    async def get_workflow_state(self, instance_id: str, *, fetch_payloads: bool = True) -> WorkflowState | None:
        meta = await self._reader.get_meta(instance_id)
        return WorkflowState(meta, fetch_payloads) if meta is not None else None

    async def wait_for_workflow_start(self, instance_id: str, *, fetch_payloads: bool = False,
                                      timeout_in_seconds: float = 0) -> WorkflowState | None:
        return await self._wait(instance_id, fetch_payloads, timeout_in_seconds,
                                lambda s: s.runtime_status != WorkflowStatus.PENDING)

    async def wait_for_workflow_completion(self, instance_id: str, *, fetch_payloads: bool = True,
                                           timeout_in_seconds: float = 0) -> WorkflowState | None:
        return await self._wait(instance_id, fetch_payloads, timeout_in_seconds,
                                lambda s: s.runtime_status in _FINISHED)

    async def _wait(self, instance_id: str, fetch_payloads: bool, timeout: float,
                    done: Callable[[WorkflowState], bool]) -> WorkflowState:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < float("inf"):
            raise ValueError(f"timeout_in_seconds must be a non-negative number of seconds, got {timeout!r}")
        deadline = time.monotonic() + timeout if timeout else float("inf")
        delay = 0.005
        while True:
            state = await self.get_workflow_state(instance_id, fetch_payloads=fetch_payloads)
            if state is None:
                raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
            if done(state):
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"instance {instance_id!r} is still {state.runtime_status.name} after {timeout}s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    async def get_workflow_history(self, instance_id: str) -> list[dict[str, Any]]:
        return list(await self._call(self.sync.get_workflow_history, instance_id))

    async def list_workflows(self, **filters: Any) -> list[WorkflowState]:
        return list(await self._call(self.sync.list_workflows, **filters))

    async def close(self) -> None:
        """Release the connections (Dapr's ``close``)."""
        await self._reader.close()
        self.sync.close()

    async def __aenter__(self) -> DaprWorkflowClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()



__all__ = ["DaprWorkflowClient"]
