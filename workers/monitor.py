"""The monitor pattern: a recurring check that sleeps, then starts over with continue-as-new.

Run a pool with ``orchestrator worker workers.monitor`` and start one monitor per endpoint::

    client.schedule_new_workflow("monitor", input={"url": "http://service/health"},
                                 instance_id="monitor-service")
    client.raise_workflow_event("monitor-service", "stop")     # graceful termination

Each round checks the endpoint, alerts on a healthy -> unhealthy change, then sleeps: long while
healthy, short while unhealthy (a dynamic interval). ``continue_as_new`` restarts the instance with
fresh history after every round, so it can run for years in constant memory. ``save_events=True``
carries over a 'stop' that arrived while the check was running, so a stop is never lost.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_any

wfr = WorkflowRuntime()
celery_app = wfr.celery_app

DEFAULTS = {"healthy_every_s": 60.0, "unhealthy_every_s": 5.0, "timeout_s": 5.0}


@wfr.activity(name="check_endpoint")
def check_endpoint(ctx: WorkflowActivityContext, spec: dict) -> dict:
    """GET the URL: healthy means a 2xx answer within the timeout."""
    try:
        with urllib.request.urlopen(spec["url"], timeout=spec["timeout_s"]) as response:
            return {"healthy": 200 <= response.status < 300, "status": response.status}
    except urllib.error.HTTPError as err:
        return {"healthy": False, "status": err.code}
    except (urllib.error.URLError, OSError) as err:
        return {"healthy": False, "status": None, "error": str(err)}


@wfr.activity(name="send_alert")
def send_alert(ctx: WorkflowActivityContext, alert: dict) -> None:
    """Where a real deployment pages someone; here, the worker log."""
    print(f"ALERT {alert['url']} is unhealthy (status {alert['status']})", flush=True)


@wfr.workflow(name="monitor")
def monitor(ctx: DaprWorkflowContext, state: dict):
    state = {**DEFAULTS, "checks": 0, "alerts": 0, "was_healthy": True, **state}
    result = yield ctx.call_activity(check_endpoint, input=state)
    state["checks"] += 1
    if not result["healthy"] and state["was_healthy"]:
        yield ctx.call_activity(send_alert, input={"url": state["url"], "status": result["status"]})
        state["alerts"] += 1
    state["was_healthy"] = result["healthy"]
    interval = state["healthy_every_s"] if result["healthy"] else state["unhealthy_every_s"]
    ctx.set_custom_status({"checks": state["checks"], "alerts": state["alerts"], "healthy": result["healthy"],
                           "next_check_in_s": interval})
    stop = ctx.wait_for_external_event("stop")
    winner = yield when_any([stop, ctx.create_timer(timedelta(seconds=interval))])
    if winner == stop:
        return {"checks": state["checks"], "alerts": state["alerts"], "stopped": True}
    ctx.continue_as_new(state, save_events=True)
