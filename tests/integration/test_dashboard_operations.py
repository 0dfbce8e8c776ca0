"""Operating runs from the dashboard, in headless Chromium (Debian's ``chromium``) through Playwright,
against real worker pools: the execution picture drawn from the recorded yields, progress of a wide
fan-out mid-run, a long chain that fits its card, failures in the runs list, times with date and zone,
rerun and batch actions. Screenshots are kept under ``tests/artifacts/``.
"""

from __future__ import annotations

import re

from orchestrator import WorkflowStatus
from tests.integration import test_dashboard as base
from tests.integration.test_dashboard import APP, by_id, finished, open_run, shot
from tests.support.waiting import wait_until

# The dashboard tests' fixtures: the served dashboard, one Chromium per module, a page per test.
browser, dash, page = base.browser, base.dash, base.page

DATED = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{3})? UTC([+−]\d{2}:\d{2})?")


def flags(pg) -> list[str]:
    return pg.eval_on_selector_all("#diagram [data-flag]", "els => els.map(e => e.dataset.flag)")


def test_browser_awaiting_one_of_two_calls_is_drawn_without_a_race_and_a_real_when_any_is(client, start_pool, dash, page):
    start_pool(APP, concurrency=3)
    client.schedule_new_workflow("a_b_c", input=None, instance_id="abc")
    client.schedule_new_workflow("race", input=None, instance_id="race-1")
    finished(client, "abc")
    finished(client, "race-1")

    model = dash.get("/api/runs/abc/execution")
    nodes = by_id(model)
    assert model["exact"] is True
    first, second = model["stages"]
    a, b = first["branches"]
    (c,) = second["branches"]
    assert second["triggers"] == [a] and b in model["finish"]["triggers"] and c in model["finish"]["triggers"]
    assert not any(n["won"] or n["lost"] for n in nodes.values())

    open_run(page, dash.base, "abc")
    page.wait_for_selector('#diagram [data-terminal="completed"]')
    text = page.inner_text("#diagram")
    assert flags(page) == [] and "won" not in text and "not awaited" not in text and "when_any" not in text
    assert page.locator('#diagram g.node[data-status="completed"]').count() == 3
    shot(page, "run-a-b-c")

    open_run(page, dash.base, "race-1")
    page.wait_for_selector('#diagram [data-terminal="completed"]')
    assert sorted(flags(page)) == ["lost race", "won"]
    assert "when_any" in page.inner_text("#diagram")
    loser = page.locator('#diagram g.node.lost')
    assert loser.count() == 1 and loser.get_attribute("data-status") == "lost"
    shot(page, "run-when-any")


def test_browser_a_fan_out_of_80_shows_its_progress_mid_run(client, start_pool, dash, page):
    start_pool(APP, concurrency=3)
    client.schedule_new_workflow("wide_fan_out", input=80, instance_id="fan-80")

    def mid_run() -> bool:
        progress = dash.get("/api/runs/fan-80/execution")["progress"]
        return progress.get("completed", 0) >= 6 and progress.get("queued", 0) >= 20

    wait_until(mid_run, timeout=60, what="fan-80 to be part done")
    open_run(page, dash.base, "fan-80")
    page.wait_for_selector("#progress-text")
    line = page.inner_text("#progress-text")
    counts = {k: int(v.replace(",", "")) for v, k in re.findall(r"([\d,]+) (completed|failed|running|queued)", line)}
    assert counts["completed"] >= 6 and counts["queued"] >= 1 and sum(counts.values()) == 80, line
    assert "of 80 calls" in line
    label = page.text_content('#diagram .stage-label[data-stage="1"]')
    assert "80 in parallel" in label and "queued" in label and "completed" in label, label
    more = page.text_content("#diagram g.node.more")
    assert "+ 73 more branches" in more
    # queued and running branches look different: different status classes and dash patterns
    assert page.locator('#diagram g.node[data-status="queued"]').count() + page.locator(
        '#diagram g.node[data-status="running"]').count() >= 1
    shot(page, "run-fan-out-80-mid-run")
    finished(client, "fan-80")


def test_browser_a_50_step_chain_fits_its_card_with_its_end_in_view(client, start_pool, dash, page):
    start_pool(APP)
    client.schedule_new_workflow("long_chain", input=50, instance_id="chain-50")
    assert finished(client, "chain-50").output == 50
    open_run(page, dash.base, "chain-50")
    end = page.wait_for_selector('#diagram [data-terminal="completed"]')
    card = page.query_selector("#execution").bounding_box()
    svg = page.query_selector("#diagram svg").bounding_box()
    box = end.bounding_box()
    assert svg["width"] <= card["width"], (svg, card)
    assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"], (box, card)
    assert page.locator("#diagram g.node").count() == 50
    assert page.locator("#execution .pager").count() == 0  # one page: nothing to page through
    page.query_selector("#execution").scroll_into_view_if_needed()
    shot(page, "run-chain-50")


def test_browser_a_failed_run_shows_its_error_in_the_runs_list_and_names_its_call(client, start_pool, dash, page):
    start_pool(APP)
    client.schedule_new_workflow("checkout", input={"id": 41}, instance_id="checkout-41")
    client.schedule_new_workflow("fan_out_report", input=2, instance_id="fine-1")
    finished(client, "checkout-41", WorkflowStatus.FAILED)
    finished(client, "fine-1")

    page.goto(dash.base + "/#/runs")
    row = page.wait_for_selector('#runs-body tr[data-id="checkout-41"] td.error')
    assert "ValueError" in row.inner_text() and "card declined for order 41" in row.inner_text()
    assert page.inner_text('#runs-body tr[data-id="fine-1"] td:nth-child(4)') == ""
    page.fill("#f-error", "ValueError")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#runs-body tr[data-id]')].map(r => r.dataset.id).join() === 'checkout-41'")
    assert "error=ValueError" in page.url
    shot(page, "runs-error-column")

    open_run(page, dash.base, "checkout-41")
    page.wait_for_selector("#failure-call")
    assert page.inner_text("#failure-call") == "activity charge_card (call #2) failed"
    assert "dashboard_app.py" in page.inner_text("#failure-frame") and "charge_card" in page.inner_text("#failure-frame")
    page.click("#failure details summary")
    stack = page.inner_text("#failure pre.stack >> nth=-1")
    assert "engine frame" in stack and "orchestrator/worker" not in stack
    shot(page, "run-failure")

    page.goto(dash.base + "/#/overview")
    top = page.wait_for_selector('#top-errors tr[data-error="ValueError"][data-type="checkout"]')
    assert "card declined for order 41" in top.inner_text()


def test_browser_times_carry_their_date_and_zone_and_toggle_to_utc(client, start_pool, dash, page):
    start_pool(APP)
    client.schedule_new_workflow("approval", input={"id": 3}, instance_id="appr-t")
    wait_until(lambda: any(e["kind"] == "TimerCreated" for e in client.get_workflow_history("appr-t")), what="timer")
    open_run(page, dash.base, "appr-t")
    page.wait_for_selector(".timer-fire")
    created = page.inner_text("#run-facts .fact >> nth=2")
    assert DATED.search(created), created
    fire = page.inner_text(".timer-fire")
    assert DATED.search(fire) and re.search(r"\(in \d+ (s|m \d+ s)\)", fire), fire
    page.click("#zone")
    page.wait_for_function("() => document.getElementById('zone').dataset.zone === 'utc'")
    # The facts are rebuilt on every refresh: the element may be between two renders when polled.
    page.wait_for_function("() => /UTC$/.test(document.querySelector('#run-facts .fact:nth-child(3) .v')?.textContent)")
    assert page.inner_text("#run-facts .fact >> nth=2").endswith("UTC")
    page.wait_for_selector("#history-body tr.ev-row")
    assert DATED.search(page.inner_text("#history-body tr.ev-row >> nth=0"))
    shot(page, "run-times-utc")
    page.click("#zone")  # back to local for the tests after this one (the choice is kept per browser)
    client.raise_workflow_event("appr-t", "approve", data="ok")
    finished(client, "appr-t")


def test_browser_rerun_and_batch_terminate_from_the_dashboard(client, start_pool, dash, page):
    start_pool(APP)
    client.schedule_new_workflow("checkout", input={"id": 7}, instance_id="co-7")
    for i in range(3):
        client.schedule_new_workflow("waiter", input=None, instance_id=f"wait-{i}")
    finished(client, "co-7", WorkflowStatus.FAILED)
    wait_until(lambda: all(client.get_workflow_state(f"wait-{i}").custom_status for i in range(3)), what="waiters")

    open_run(page, dash.base, "co-7")
    page.click("#act-rerun")
    page.fill("#m-from_step", "2")
    page.click('.modal [data-role="confirm"]')
    page.wait_for_function("() => !location.hash.endsWith('/co-7') && document.getElementById('run-id')")
    new_id = page.url.rsplit("/", 1)[1]
    assert client.get_workflow_state(new_id) is not None
    finished(client, new_id, WorkflowStatus.FAILED)  # the same card declines again
    history = client.get_workflow_history(new_id)
    assert sum(e["kind"] == "TaskScheduled" and e["name"] == "work" for e in history) == 1  # step 1 reused

    page.goto(dash.base + "/#/runs?status=RUNNING&name=waiter")
    page.wait_for_selector('#runs-body tr[data-id="wait-0"]')
    page.click("#batch-terminate")
    page.wait_for_selector(".modal")
    assert "Terminate 3 runs?" in page.inner_text(".modal h2")
    shot(page, "runs-batch-terminate")
    page.click('.modal [data-role="confirm"]')
    wait_until(lambda: all(client.get_workflow_state(f"wait-{i}").runtime_status == WorkflowStatus.TERMINATED
                           for i in range(3)), what="batch terminate")
    assert client.get_workflow_state("co-7").runtime_status == WorkflowStatus.FAILED  # outside the filter


def test_browser_starts_a_run_with_an_id_policy_and_an_app(client, start_pool, dash, page):
    start_pool(APP)
    client.schedule_new_workflow("echo", input="first", instance_id="echo-1")
    finished(client, "echo-1")
    page.goto(dash.base + "/#/runs")
    page.click("#start-run")
    page.fill("#m-name", "echo")
    page.fill("#m-input", '{"second": true}')
    page.fill("#m-instance_id", "echo-1")
    page.click('.modal [data-role="confirm"]')
    page.wait_for_selector(".modal .m-error >> text=already exists")  # the id is taken: the dialog says so
    page.fill("#m-reuse_id_policy", "replace")
    page.fill("#m-app_id", "default")
    page.click('.modal [data-role="confirm"]')
    page.wait_for_function("() => location.hash === '#/run/echo-1'")
    assert finished(client, "echo-1").output == {"second": True}
