"""Each capability of Dapr's workflow SDK, proved by a Dapr-style program (tests/compat/programs/)."""

from __future__ import annotations

import re

from tests.compat.conftest import Run, lines


def test_order_with_a_dataclass_input_reaches_code_as_an_object(run_program: Run) -> None:
    out = lines(run_program("order_dataclass"))
    assert "workflow got O-1: 3 x lamp at 12.5" in out
    assert any(line.startswith("activity reserve_inventory of order-O-1 task ") and line.endswith("lamp x 3")
               for line in out), out
    assert "receipt O-1 total=37.5 note=from north" in out
    assert "custom status: charged" in out  # a string custom status reads back as that string
    assert "created_at naive: True" in out
    assert "state json keys: ['created_at', 'failure_details', 'instance_id', 'last_updated_at', 'name', " \
           "'runtime_status', 'serialized_custom_status', 'serialized_input', 'serialized_output']" in out


def test_a_pydantic_pipeline_receives_models_by_annotation(run_program: Run) -> None:
    out = lines(run_program("pydantic_pipeline"))
    assert "score got Applicant ada" in out and "decide got Score approved=True" in out
    assert "final ada ratio=0.25 approved=True status=COMPLETED" in out
    assert "purged: True" in out


def test_the_async_client_pauses_resumes_raises_and_purges(run_program: Run) -> None:
    out = lines(run_program("aio_client_flow"))
    assert "after pause: SUSPENDED" in out
    assert "suspended with the event queued: SUSPENDED" in out
    assert "after resume: RUNNING" in out  # resume_workflow returns with the instance RUNNING (Dapr's)
    assert 'completed: True output={"counter": 111, "approved_by": "grace"}' in out
    assert "purged: True" in out
    assert [line for line in out if line.startswith("New counter")] == [
        "New counter value is: 1!", "New counter value is: 11!", "New counter value is: 111!"]


def test_async_activities_fanned_out_run_at_once_on_their_event_loops(run_program: Run) -> None:
    out = lines(run_program("async_fanout"))
    skus = [f"sku-{'x' * i}" for i in range(8)]
    total = sum(len(s) * 10 for s in skus)
    assert f'output {{"total": {total}, "skus": {str(skus).replace(chr(39), chr(34))}}}' in out
    ran = next(line for line in out if line.startswith("activities ran: "))
    assert ran.startswith("activities ran: 8;")
    assert int(ran.split("at most ")[1].split()[0]) >= 2, ran  # recorded spans overlap: several at once


def test_a_versioned_workflow_stalls_without_its_version_and_resumes_when_a_pool_has_it(run_program: Run) -> None:
    first = lines(run_program("versioning_stall", "part1"))
    assert first[0] == "Received workflow call for version1"
    assert "Workflow is stalled" in first  # not FAILED: WorkflowStatus.STALLED
    assert "Finished stalled version1 workflow" not in first  # version 2's pool never ran version 1's code
    assert "new instance ran version 2" in first  # new instances run the is_latest version
    second = lines(run_program("versioning_stall", "part2", timeout=180))
    assert "Finished stalled version1 workflow" in second
    assert "stalled instance resumed: COMPLETED output 1" in second


def test_a_monitor_reuses_its_instance_id_and_continue_as_new_keeps_event_order(run_program: Run) -> None:
    out = lines(run_program("monitor_reuse"))
    assert 'run 1: COMPLETED "job1 unhealthy after checks" unhealthy' in out
    assert 'run 2: COMPLETED "job1 unhealthy after checks" unhealthy' in out  # the id was reused (Dapr's default)
    assert "checks: 6" in out
    assert "collected in order: [1, 2, 3, 4, 5]" in out  # carried-over events first: per-name FIFO


def test_multi_app_calls_retry_and_report_failures_across_apps(run_program: Run, start_program) -> None:
    start_program("multi_app_services", "app2", app_id="app2")
    start_program("multi_app_services", "app3", app_id="app3")
    out = lines(run_program("multi_app_orders", app_id="app1", timeout=180))
    assert 'ok: COMPLETED {"id": "A", "stock": {"reserved": 2}, ' \
           '"shipment": {"shipped": "A", "label": "LBL-A"}}' in out  # retried twice in app2
    refused = next(line for line in out if line.startswith("refused: COMPLETED"))
    # the last of the 4 attempts (each attempt and backoff timer is a task of its own)
    assert re.search(r"Activity task #\d+ \('reserve_stock'\) failed: only 10 in stock, asked 50", refused), refused
    assert "unhandled: FAILED None" in out
    assert "unhandled failure: ValueError | Activity task #1 ('reserve_stock') failed: only 10 in stock, asked 99" \
        in out  # Dapr's chained TaskFailedError message, the root cause's bare type
    assert "unhandled raise_if_failed: WorkflowFailedError" in out


def test_the_runtime_surface_dapr_code_relies_on(run_program: Run) -> None:
    out = lines(run_program("runtime_surface"))
    assert "TypeError: WorkflowRuntime() got unexpected keyword argument 'maximum_concurent_activity_work_items'" in out
    assert "before any worker: PENDING" in out
    assert "pool size: 4" in out
    assert "decorated names: greet shout" in out
    assert "ValueError: Workflow greet already registered as greet" in out
    assert "ready: True" in out
    assert 'first: "HELLO ADA (first runtime)"' in out
    assert "late: 6" in out
    assert 'second: "hello bob (second runtime)"' in out  # each runtime runs its own code


def test_history_propagation_to_a_child_and_an_activity(run_program: Run) -> None:
    out = lines(run_program("history_propagation"))
    assert 'workflow completed: status=COMPLETED output={"child": "paid merchant-42", "audit": "logged", ' \
           '"without": "no-history"}' in out
    assert "log_summary: scope=LINEAGE apps=['default'] parent=merchant_checkout validate completed=True " \
           'output={"merchant_id": "merchant-42", "valid": true} child completed=True' in out
    assert "log_summary: never_called not found" in out


def test_a_wide_async_fan_out_runs_a_message_s_attempts_at_once_on_one_thread(run_program: Run) -> None:
    [line] = [ln for ln in lines(run_program("async_wide_fanout")) if ln.startswith("sum ")]
    assert line.startswith(f"sum {sum(range(400))}; ran 400;"), line
    assert int(line.split("at most ")[1].split()[0]) >= 2, line  # recorded spans overlap on a one-thread pool


def test_client_runtime_and_outbound_interceptors_carry_a_tenant(run_program: Run) -> None:
    out = lines(run_program("tenant_interceptors"))
    assert "client: scheduling tenant_order for acme" in out
    assert "runtime: workflow tenant-sync tenant=acme" in out
    # the outbound interceptor put the tenant into the child's input; the runtime one saw the child run
    assert any(line.startswith("runtime: workflow tenant-sync:") and line.endswith(" tenant=acme") for line in out), out
    assert 'sync: COMPLETED {"workflow_tenant": "acme", "invoice": "invoice 15 for acme (child sees tenant acme)"}' \
        in out
    assert 'stored input: {"item": "lamp", "qty": 3, "tenant": "acme"}' in out  # rewritten before it was stored
    assert any(line.startswith("runtime: activity task ") and "of tenant-sync" in line
               and line.endswith("tenant=acme -> 5") for line in out), out
    assert 'aio: COMPLETED {"workflow_tenant": "acme", "invoice": "invoice 5 for acme (child sees tenant acme)"}' \
        in out  # the async client runs the same client interceptors
    assert "lookups: 3" in out  # the first lookup failed and was retried by the policy the interceptor added
    assert "TypeError: interceptors: object has none of execute_workflow, execute_activity, call_activity, " \
           "call_child_workflow" in out
