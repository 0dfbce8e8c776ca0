"""Multi-application workflows: two real pools with different app ids (orders + inventory) on one
redis-server; activities and child workflows routed by ``app_id``; a real SIGKILL mid-call."""

from __future__ import annotations

import time
from collections import Counter

from orchestrator import WorkflowStatus
from tests.support.waiting import finish, wait_until

ORDERS, INVENTORY = "tests.apps.orders_app", "tests.apps.inventory_app"


def test_calls_to_an_app_without_a_pool_wait_visibly_and_complete_once_it_runs(client, start_pool, broker_client):
    start_pool(ORDERS, app_id="orders")
    order = client.schedule_new_workflow("place_order", input={"sku": "apple", "qty": 2})
    restock = client.schedule_new_workflow("restock", input={"sku": "pear", "qty": 1}, app_id="inventory")
    pending = wait_until(lambda: client.get_pending_calls(order), what="the routed activity call")
    assert pending == [{"kind": "activity", "seq": 1, "name": "reserve", "app_id": "inventory", "attempt": 1,
                        "scheduled_at": pending[0]["scheduled_at"]}]
    # Several sweeps of the orders pool (stale_after is 2 s here) later: still waiting, nothing lost,
    # and no duplicate messages piled up for the absent app.
    time.sleep(3)
    assert client.get_workflow_state(order).runtime_status == WorkflowStatus.RUNNING
    assert client.get_workflow_state(restock).runtime_status == WorkflowStatus.PENDING
    assert client.get_pending_calls(order) == pending
    assert broker_client.llen("orchestrator.inventory") == 2  # one activity + one step, once each
    assert client.list_workflows(status="PENDING", name="restock")[0].instance_id == restock

    start_pool(INVENTORY, app_id="inventory")
    state = finish(client, order)
    assert state.app_id == "orders"
    assert state.output == {
        "reservation": {"sku": "apple", "reserved": 2, "app": "inventory"},
        "restock": {"sku": "apple", "ordered": 4, "app": "inventory", "workflow_app": "inventory"},
        "payment": {"charged": 20, "app": "orders"},
    }
    child = client.get_workflow_state(f"{order}:2")
    assert child.app_id == "inventory" and child.parent_instance_id == order
    assert finish(client, restock).output["workflow_app"] == "inventory"
    assert client.get_pending_calls(order) == []


def test_killing_the_inventory_pool_mid_call_and_restarting_it_completes(client, start_pool, redis_client):
    start_pool(ORDERS, app_id="orders")
    inventory = start_pool(INVENTORY, app_id="inventory")
    order = client.schedule_new_workflow("place_order", input={"sku": "plum", "qty": 3, "hold": 2.5})
    wait_until(lambda: int(redis_client.get("test:reserve:started") or 0) >= 1, what="reserve to start")
    inventory.kill()  # SIGKILL the whole pool while the activity is running
    assert int(redis_client.get("test:reserve:finished") or 0) == 0
    time.sleep(0.5)
    assert client.get_workflow_state(order).runtime_status == WorkflowStatus.RUNNING
    start_pool(INVENTORY, app_id="inventory")
    state = finish(client, order, timeout=60)
    assert state.output["reservation"] == {"sku": "plum", "reserved": 3, "app": "inventory"}
    assert state.output["payment"] == {"charged": 30, "app": "orders"}
    assert int(redis_client.get("test:reserve:started")) >= 2  # the killed attempt ran again
    history = client.get_workflow_history(order)
    assert Counter(e["seq"] for e in history if e["kind"] == "TaskCompleted") == {1: 1, 3: 1}


def test_an_activity_the_target_app_does_not_register_fails_clearly(client, start_pool):
    start_pool(ORDERS, app_id="orders")
    start_pool(INVENTORY, app_id="inventory")
    instance_id = client.schedule_new_workflow("misrouted_call")
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "ActivityNotRegisteredError"
    assert state.failure_details.message == \
        "Activity task #1 ('charge') failed: activity 'charge' is not registered in app 'inventory'"


def test_two_app_example_in_workers(client, start_pool):
    start_pool("workers.multi_app.orders", app_id="orders")
    start_pool("workers.multi_app.inventory", app_id="inventory")
    order = {"lines": [{"sku": "apple", "qty": 4}, {"sku": "pear", "qty": 2}, {"sku": "plum", "qty": 5}]}
    instance_id = client.schedule_new_workflow("fulfil_order", input=order)
    output = finish(client, instance_id).output
    assert output["reserved"] == [{"sku": "apple", "qty": 4}, {"sku": "plum", "qty": 3}]
    assert output["backordered"] == [{"sku": "pear", "qty": 2}, {"sku": "plum", "qty": 2}]
    assert [po["sku"] for po in output["restock"]["purchase_orders"]] == ["pear", "plum"]
    assert output["bill"]["amount"] == 4 * 2 + 2 * 3 + 5 * 5
    child = client.list_workflows(parent_instance_id=instance_id)
    assert [(c.name, c.app_id, c.runtime_status) for c in child] == [("restock", "inventory", WorkflowStatus.COMPLETED)]
