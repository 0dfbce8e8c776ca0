"""The inventory application of the multi-app tests: run with ``--app-id inventory``.

Its activities report which app's pool ran them (``ORCH_APP_ID``, set by ``orchestrator worker
--app-id``) and count starts/finishes in Redis, so a test can kill the pool mid-call.
"""

from __future__ import annotations

import os
import time

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()


_redis = app_redis


@wfr.activity(name="reserve")
def reserve(ctx: WorkflowActivityContext, req: dict) -> dict:
    r = _redis()
    r.incr("test:reserve:started")
    time.sleep(req.get("hold", 0))
    r.incr("test:reserve:finished")
    return {"sku": req["sku"], "reserved": req["qty"], "app": os.environ.get("ORCH_APP_ID")}


@wfr.activity(name="order_from_supplier")
def order_from_supplier(ctx: WorkflowActivityContext, req: dict) -> dict:
    return {"sku": req["sku"], "ordered": req["qty"] * 2, "app": os.environ.get("ORCH_APP_ID")}


@wfr.workflow(name="restock")
def restock(ctx: DaprWorkflowContext, req: dict):
    order = yield ctx.call_activity(order_from_supplier, input=req)
    return {**order, "workflow_app": os.environ.get("ORCH_APP_ID")}
