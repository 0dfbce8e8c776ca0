"""The dashboard: JSON endpoints against a real redis-server and real worker pools, served by a real
uvicorn, and the pages driven in headless Chromium (Debian's ``chromium``) through Playwright.

Screenshots of every page the browser tests visit are saved under ``tests/artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from fastapi import FastAPI

from orchestrator import InstanceFinishedError, WorkflowStatus
from orchestrator.core.history import ExecutionStarted, StepStarted, TaskCompleted, TaskScheduled
from orchestrator.dashboard import mount
from orchestrator.embedded import free_port
from orchestrator.store.redis_store import RedisStore
from orchestrator.store.step_io import Commit
from tests.support.waiting import wait_until

APP = "tests.apps.dashboard_app"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


# -- serving and calling ---------------------------------------------------------------------------
@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """A real uvicorn on a free port, in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None, action: bool = True) -> tuple[int, Any, dict]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if action:
            headers["X-Orchestrator-Dashboard"] = "1"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as err:
            raw, status, hdrs = err.read(), err.code, dict(err.headers)
        try:
            return status, json.loads(raw), hdrs
        except ValueError:
            return status, raw.decode(errors="replace"), hdrs

    def get(self, path: str) -> Any:
        status, body, _ = self.request("GET", path, action=False)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: Any = None, action: bool = True) -> tuple[int, Any]:
        status, payload, _ = self.request("POST", path, body if body is not None else {}, action)
        return status, payload


@pytest.fixture
def dash(client) -> Iterator[Http]:
    """The dashboard router on a bare FastAPI app (as the HTTP app mounts it), served by uvicorn."""
    app = FastAPI()
    mount(app, client)
    with serve(app) as base:
        yield Http(base + "/dashboard")


def finished(client, instance_id: str, status: WorkflowStatus = WorkflowStatus.COMPLETED):
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    assert state.runtime_status == status, (instance_id, state.runtime_status, state.failure_details)
    return state


def waiting_for_event(client, instance_id: str) -> None:
    """Until the instance is blocked on its external event (its first activity done)."""
    wait_until(lambda: any(e["kind"] == "TaskCompleted" for e in client.get_workflow_history(instance_id))
               and not client.store.redis.zscore(client.store.keys.shard_of(instance_id).ready, instance_id), what=f"{instance_id} to wait")


def by_id(model: dict) -> dict[str, dict]:
    return {n["id"]: n for n in model["nodes"]}


# -- JSON endpoints ---------------------------------------------------------------------------------
def test_overview_counts_stats_and_the_filtered_paged_list(client, start_pool, dash):
    start_pool(APP)
    for workflow, iid, value in [("fan_out_report", "fan-a", 3), ("fan_out_report", "fan-b", 3),
                                 ("checkout", "checkout-x", {"id": 9}), ("waiter", "waiter-x", None)]:
        client.schedule_new_workflow(workflow, input=value, instance_id=iid)
        time.sleep(0.005)  # distinct creation times, so "newest first" has one answer
    for iid in ("fan-a", "fan-b"):
        finished(client, iid)
    finished(client, "checkout-x", WorkflowStatus.FAILED)
    waiting_for_event(client, "waiter-x")

    overview = dash.get("/api/overview?window=3600")
    assert overview["counts"] == {"RUNNING": 1, "COMPLETED": 2, "FAILED": 1, "TERMINATED": 0, "SUSPENDED": 0,
                                  "PENDING": 0, "TOTAL": 4}
    types = {t["name"]: t for t in overview["stats"]["types"]}
    fan = types["fan_out_report"]
    assert fan["counts"]["COMPLETED"] == 2 and fan["success_rate"] == 1.0 and fan["measured"] == 2
    durations = [client.get_workflow_state(i).completed_at - client.get_workflow_state(i).created_at for i in ("fan-a", "fan-b")]
    assert fan["p50_ms"] == min(int(d.total_seconds() * 1000) for d in durations)
    assert fan["p95_ms"] == max(int(d.total_seconds() * 1000) for d in durations)
    assert types["checkout"]["success_rate"] == 0.0 and types["checkout"]["counts"]["FAILED"] == 1
    assert types["waiter"]["success_rate"] is None and types["waiter"]["counts"]["RUNNING"] == 1
    series = overview["stats"]["series"]
    assert sum(b["completed"] for b in series) == 2 and sum(b["failed"] for b in series) == 1

    everything = dash.get("/api/runs")
    assert [r["instance_id"] for r in everything["items"]] == ["waiter-x", "checkout-x", "fan-b", "fan-a"]
    assert everything["total"] == 4 and not everything["has_more"]
    assert [r["instance_id"] for r in dash.get("/api/runs?status=failed")["items"]] == ["checkout-x"]
    assert [r["instance_id"] for r in dash.get("/api/runs?name=fan_out_report&status=COMPLETED")["items"]] == ["fan-b", "fan-a"]
    assert [r["instance_id"] for r in dash.get("/api/runs?id=fan-")["items"]] == ["fan-b", "fan-a"]
    created_b = everything["items"][2]["created"]
    recent = dash.get(f"/api/runs?since={created_b}")
    assert [r["instance_id"] for r in recent["items"]] == ["waiter-x", "checkout-x", "fan-b"]
    assert [r["instance_id"] for r in dash.get(f"/api/runs?until={created_b - 1}")["items"]] == ["fan-a"]
    page = dash.get("/api/runs?limit=2&offset=2")
    assert [r["instance_id"] for r in page["items"]] == ["fan-b", "fan-a"] and page["total"] == 4
    assert dash.get("/api/runs?limit=1")["has_more"] is True
    status, body, _ = dash.request("GET", "/api/runs?status=DONE", action=False)
    assert status == 400 and "unknown status 'DONE'" in body["detail"]
    assert set(dash.get("/api/workflows")["names"]) >= {"fan_out_report", "checkout", "waiter", "race"}


def test_run_page_models_fan_out_retries_races_events_and_children(client, start_pool, dash):
    start_pool(APP, concurrency=3)
    client.schedule_new_workflow("fan_out_report", input=4, instance_id="fan")
    client.schedule_new_workflow("retrying", input="payments", instance_id="retry")
    client.schedule_new_workflow("race", input=None, instance_id="race")
    client.schedule_new_workflow("approval", input={"id": 1}, instance_id="appr")
    client.schedule_new_workflow("parent", input=2, instance_id="par")
    wait_until(lambda: any(e["kind"] == "TimerCreated" for e in client.get_workflow_history("appr")), what="approval timer")
    client.raise_workflow_event("appr", "approve", data={"by": "ann"})
    for iid in ("fan", "retry", "race", "appr", "par"):
        finished(client, iid)

    fan = dash.get("/api/runs/fan/execution")
    first, second = fan["stages"]
    assert len(first["branches"]) == 4 and first["triggers"] == ["start"] and not first["race"]
    assert sorted(second["triggers"]) == sorted(first["branches"]) and len(second["branches"]) == 1
    nodes = by_id(fan)
    assert [nodes[c]["name"] for c in first["branches"]] == ["work"] * 4 and nodes[second["branches"][0]]["name"] == "summarize"
    for n in fan["nodes"]:
        assert n["status"] == "completed" and n["end"] >= n["start"] and n["duration"] == n["end"] - n["start"]
    assert fan["finish"]["status"] == "COMPLETED" and fan["counts"]["max_parallel"] == 4

    retry = dash.get("/api/runs/retry/execution")
    (chain,) = retry["calls"].values()
    kinds = [(by_id(retry)[i]["kind"], by_id(retry)[i]["status"], by_id(retry)[i]["attempt"]) for i in chain]
    assert kinds == [("activity", "failed", 1), ("retry_timer", "fired", 1), ("activity", "completed", 2)]
    assert by_id(retry)[chain[0]]["error"].startswith("ConnectionError: payments: transient failure")

    race = by_id(dash.get("/api/runs/race/execution"))
    assert sorted((n["won"], n["lost"], n["status"]) for n in race.values()) == [
        (False, True, "lost"), (True, False, "completed")]

    appr = dash.get("/api/runs/appr/execution")
    race_stage = appr["stages"][0]
    assert race_stage["race"] is True
    event, timer = (by_id(appr)[c] for c in sorted(race_stage["branches"], key=lambda c: by_id(appr)[c]["kind"]))
    assert (event["kind"], event["name"], event["won"]) == ("event", "approve", True)
    assert (timer["kind"], timer["lost"]) == ("timer", True)

    par = dash.get("/api/runs/par")
    assert [c["instance_id"] for c in par["children"]] == ["par:1", "par:2"] and par["child_count"] == 2
    assert {c["status"] for c in par["children"]} == {"COMPLETED"}
    child = dash.get("/api/runs/par:1")
    assert child["parent"] == "par" and child["parent_summary"]["name"] == "parent"
    assert {n["child"] for n in dash.get("/api/runs/par/execution")["nodes"]} == {"par:1", "par:2"}


def test_history_pages_payloads_clip_and_download_whole(client, start_pool, dash):
    start_pool(APP)
    big = XSS + "x" * 20_000
    client.schedule_new_workflow("echo", input=big, instance_id="big")
    client.schedule_new_workflow("checkout", input={"id": 5}, instance_id="fails")
    finished(client, "big")
    finished(client, "fails", WorkflowStatus.FAILED)

    run = dash.get("/api/runs/big")
    assert run["input"]["truncated"] is True and run["input"]["size"] == len(json.dumps(big))
    assert run["input"]["text"].startswith(json.dumps(XSS)[:-1])
    assert dash.get("/api/runs/big/payload/input")["value"] == big
    assert dash.get("/api/runs/big/payload/output")["value"] == big
    status, body, _ = dash.request("GET", "/api/runs/big/payload/secrets", action=False)
    assert status == 400 and "unknown payload 'secrets'" in body["detail"]

    history = client.get_workflow_history("big")
    page = dash.get("/api/runs/big/history?offset=1&limit=1")
    assert page["total"] == len(history) and [e["index"] for e in page["events"]] == [1]
    (started,) = page["events"]
    assert started["kind"] == "ExecutionStarted" and started["payloads"]["input"]["truncated"] is True
    assert dash.get("/api/runs/big/history/1")["input"] == big
    status, body, headers = dash.request("GET", "/api/runs/big/history.json", action=False)
    assert status == 200 and 'attachment; filename="history-big.json"' == headers["content-disposition"]
    assert [{k: v for k, v in e.items() if k != "index"} for e in body["events"]] == history

    failed = dash.get("/api/runs/fails")
    assert failed["status"] == "FAILED" and failed["failure"]["error_type"] == "ValueError"
    assert failed["failure"]["message"] == "Activity task #2 ('charge_card') failed: card declined for order 5"
    assert "charge_card" in failed["failure"]["stack_trace"]["text"]
    only_failures = dash.get("/api/runs/fails/history?kind=TaskFailed")
    (task_failed,) = only_failures["events"]
    assert task_failed["fields"]["error_type"] == "ValueError" and task_failed["fields"]["message"] == "card declined for order 5"
    assert "charge_card" in task_failed["payloads"]["stack_trace"]["text"] and only_failures["total"] == 1
    status, body, _ = dash.request("GET", "/api/runs/nope", action=False)
    assert status == 404 and "nope" in body["detail"]


def write_long_history(client, instance_id: str, activities: int) -> int:
    """An instance whose history holds 3 events per activity (10,000+ events), written through the
    store's own create and commit scripts, as a long-running chain would leave it."""
    store = client.store
    now = int(time.time() * 1000) - activities * 10
    started = ExecutionStarted(ts=now, name="long_chain", input={"n": activities})
    store.create_instance(instance_id, "long_chain", "nobody", started, {"n": activities}, now)
    snap = store.load(instance_id)
    events = [StepStarted(ts=now), started, TaskScheduled(ts=now, seq=1, name="step", input=0)]
    for i in range(1, activities):
        t = now + i * 10
        events += [StepStarted(ts=t), TaskCompleted(ts=t - 2, seq=i, result=i), TaskScheduled(ts=t, seq=i + 1, name="step", input=i)]
    result = store.commit(instance_id, Commit(version=0, now=now, status="RUNNING", consumed=[e.entry_id for e in snap.inbox],
                                              events=events, wait_mode="any", wait_tokens=[f"t:{activities}"]))
    assert result.ok
    return len(events)


def test_long_history_is_paged_and_modelled(client, dash):
    total = write_long_history(client, "long", 3_400)
    assert total >= 10_000
    started = time.perf_counter()
    last = dash.get(f"/api/runs/long/history?offset={total - 100}&limit=100")
    page_s = time.perf_counter() - started
    assert last["total"] == total and [e["index"] for e in last["events"]] == list(range(total - 100, total))
    started = time.perf_counter()
    model = dash.get("/api/runs/long/execution")
    model_s = time.perf_counter() - started
    assert len(model["stages"]) == 3_400 and model["counts"]["activities"] == 3_400
    assert model["nodes"][-1]["status"] == "running"
    print(f"\n10,201-event history: last page {page_s * 1000:.0f} ms, execution model {model_s * 1000:.0f} ms")


def test_actions_need_the_dashboard_header_and_are_logged_with_their_caller(client, start_pool, dash):
    start_pool(APP)
    for iid in ("w1", "w2", "w3"):
        client.schedule_new_workflow("waiter", input=None, instance_id=iid)
    for iid in ("w1", "w2", "w3"):
        waiting_for_event(client, iid)

    status, body = dash.post("/api/runs/w1/suspend", action=False)
    assert status == 403 and "x-orchestrator-dashboard" in body["detail"]
    assert dash.post("/api/runs/w1/suspend") == (200, {"ok": True, "result": None})
    wait_until(lambda: client.get_workflow_state("w1").runtime_status == WorkflowStatus.SUSPENDED, what="suspended")
    assert dash.post("/api/runs/w1/resume")[0] == 200
    wait_until(lambda: client.get_workflow_state("w1").runtime_status == WorkflowStatus.RUNNING, what="resumed")
    status, body = dash.post("/api/runs/w1/raise", {"name": " "})
    assert status == 400 and "non-empty 'name'" in body["detail"]
    assert dash.post("/api/runs/w1/raise", {"name": "go", "data": {"ok": XSS}})[0] == 200
    assert finished(client, "w1").output == {"ok": XSS}

    assert dash.post("/api/runs/w2/terminate")[0] == 200
    finished(client, "w2", WorkflowStatus.TERMINATED)
    status, body = dash.post("/api/runs/w3/purge")
    assert status == 409 and "only finished instances can be purged" in body["detail"]
    wait_until(lambda: dash.post("/api/runs/w2/purge")[0] == 200, what="purge of w2")
    assert dash.request("GET", "/api/runs/w2", action=False)[0] == 404
    status, body = dash.post("/api/runs/ghost/terminate")
    assert status == 404 and "ghost" in body["detail"]

    entries = dash.get("/api/apilog?limit=100")["entries"]
    mine = [(e["caller"], e["op"], e["instance"], e["result"].split(":")[0]) for e in entries if e["caller"] == "dashboard"]
    assert ("dashboard", "suspend", "w1", "ok") in mine and ("dashboard", "resume", "w1", "ok") in mine
    assert ("dashboard", "raise_event", "w1", "ok") in mine and ("dashboard", "terminate", "w2", "ok") in mine
    assert ("dashboard", "purge", "w3", "InstanceRunningError") in mine and ("dashboard", "purge", "w2", "ok") in mine
    assert ("dashboard", "terminate", "ghost", "InstanceNotFoundError") in mine
    starts = [e for e in entries if e["op"] == "start"]
    assert {(e["caller"], e["instance"], e["detail"], e["result"]) for e in starts} == {
        ("client", i, "waiter", "ok") for i in ("w1", "w2", "w3")}
    newest = entries[0]["id"]
    assert dash.get(f"/api/apilog?after={newest}")["entries"] == []
    client.raise_workflow_event("w3", "go")
    (fresh,) = dash.get(f"/api/apilog?after={newest}")["entries"]
    assert (fresh["caller"], fresh["op"], fresh["instance"], fresh["detail"]) == ("client", "raise_event", "w3", "go")


def bulk_create(client, count: int, batch: int = 2_000, threads: int = 3) -> None:
    """``count`` instances through the store's own create code and CREATE script, pipelined from a few
    threads (one packs a batch while Redis runs another's); no worker runs them."""
    now = int(time.time() * 1000) - count

    def create(part: range) -> None:
        store = RedisStore(redis.Redis.from_url(client.settings.redis_url), client.store.prefix)
        script = store.scripts._create
        for start in range(part.start, part.stop, batch):
            pipe = store.redis.pipeline(transaction=False)
            store.scripts._create = lambda keys, args, pipe=pipe: (script(keys=keys, args=args, client=pipe),
                                                                   (2, b"PENDING"))[1]
            for i in range(start, min(part.stop, start + batch)):
                name = ("orders", "billing", "shipping")[i % 3]
                ts = now + i
                store.create_instance(f"bulk-{i:06d}", name, "default", ExecutionStarted(ts=ts, name=name, input=i), i, ts)
            pipe.execute()

    step = -(-count // threads)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, [range(k, min(count, k + step)) for k in range(0, count, step)]))


def test_first_page_of_100000_instances_answers_in_under_a_second(client, dash):
    started = time.perf_counter()
    bulk_create(client, 100_000)
    create_s = time.perf_counter() - started
    assert client.queries.status_totals()["TOTAL"] == 100_000
    timings = {}
    for label, query in [("unfiltered", ""), ("status", "status=PENDING"), ("type", "name=billing"),
                         ("status+type", "status=PENDING&name=orders"), ("last hour", f"since={int(time.time() * 1000) - 3_600_000}"),
                         ("id prefix", "id=bulk-0999")]:
        t0 = time.perf_counter()
        page = dash.get(f"/api/runs?limit=50&{query}")
        timings[label] = time.perf_counter() - t0
        assert len(page["items"]) == 50 and page["has_more"], label
        assert page["items"][0]["created"] >= page["items"][-1]["created"], label
    assert dash.get("/api/runs?limit=50")["items"][0]["instance_id"] == "bulk-099999"
    assert dash.get("/api/runs?limit=50")["total"] == 100_000
    t0 = time.perf_counter()
    counts = dash.get("/api/overview?window=86400")["counts"]
    overview_s = time.perf_counter() - t0
    assert counts["PENDING"] == 100_000
    print(f"\ncreated 100,000 instances in {create_s:.1f} s; first page: "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()) + f"; overview {overview_s * 1000:.0f} ms")
    for label, seconds in timings.items():
        assert seconds < 1.0, f"first page ({label}) took {seconds:.3f} s"


def test_the_http_app_serves_the_dashboard(client):
    http_app = pytest.importorskip("orchestrator.http.app")
    app = http_app.create_app(client=client)
    with serve(app) as base:
        with urllib.request.urlopen(base + "/", timeout=10) as resp:
            assert resp.url.endswith("/dashboard/") and "text/html" in resp.headers["content-type"]
            page = resp.read().decode()
        assert 'src="static/js/app.js"' in page and "<script>" not in page
        with urllib.request.urlopen(base + "/dashboard/static/js/core.js", timeout=10) as resp:
            assert "text/javascript" in resp.headers["content-type"]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/dashboard/static/../routes.py", timeout=10)
        assert err.value.code == 404


# -- the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.dialogs = []  # any alert() would land here: none may ever fire
    pg.errors = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()
    assert pg.errors == [], f"JavaScript errors on the page: {pg.errors}"
    assert pg.dialogs == [], f"a dialog opened: {pg.dialogs}"


def open_run(pg, base: str, instance_id: str) -> None:
    """Go to a run's page and wait until that run (not the page before) is drawn."""
    pg.goto(f"{base}/#/run/{instance_id}")
    pg.wait_for_function("id => (document.getElementById('run-id') || {}).textContent === id", arg=instance_id)


def shot(pg, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_browser_overview_filter_fan_out_terminate_and_api_log(client, start_pool, dash, page):
    start_pool(APP, concurrency=3)
    client.schedule_new_workflow("fan_out_report", input=6, instance_id="fan-browser")
    client.schedule_new_workflow("retrying", input="payments", instance_id="retry-browser")
    client.schedule_new_workflow("checkout", input={"id": 77}, instance_id="checkout-browser")
    client.schedule_new_workflow("waiter", input={"note": XSS}, instance_id="waiter-browser")
    client.schedule_new_workflow("echo", input=XSS, instance_id="xss-browser")
    for iid in ("fan-browser", "retry-browser", "xss-browser"):
        finished(client, iid)
    finished(client, "checkout-browser", WorkflowStatus.FAILED)
    waiting_for_event(client, "waiter-browser")
    base = dash.base

    # Overview: counters by status and the per-type table.
    page.goto(base + "/#/overview")
    page.wait_for_selector('.counter[data-status="COMPLETED"] .value >> text="3"')
    assert page.inner_text('.counter[data-status="FAILED"] .value') == "1"
    assert page.inner_text('.counter[data-status="RUNNING"] .value') == "1"
    assert page.inner_text('tr[data-type="checkout"] .success-rate') == "0.0%"
    assert page.inner_text('tr[data-type="fan_out_report"] .success-rate') == "100.0%"
    assert page.locator("#chart svg rect").count() >= 2
    shot(page, "overview")

    # Runs list: filter by status, then by id prefix.
    page.click('a[data-nav="runs"]')
    page.wait_for_selector('#runs-body tr[data-id="fan-browser"]')
    page.select_option("#f-status", "FAILED")
    page.wait_for_function("() => [...document.querySelectorAll('#runs-body tr[data-id]')].map(r => r.dataset.id).join() === 'checkout-browser'")
    assert "status=FAILED" in page.url
    shot(page, "runs-failed")
    page.select_option("#f-status", "")
    page.fill("#f-id", "fan-")
    page.wait_for_function("() => [...document.querySelectorAll('#runs-body tr[data-id]')].map(r => r.dataset.id).join() === 'fan-browser'")
    shot(page, "runs-filtered")

    # The fan-out run: six parallel branches, a fan-in, the timeline.
    page.click('#runs-body a[href="#/run/fan-browser"]')
    page.wait_for_selector('#diagram g.node[data-name="summarize"]')
    assert page.locator('#diagram g.node[data-name="work"]').count() == 6
    assert "6 in parallel" in page.inner_text("#diagram")
    assert page.locator("#gantt g.gantt-row").count() == 7
    assert page.inner_text(".run-title .badge") == "completed"
    shot(page, "run-fan-out")
    page.click('#diagram g.node[data-name="summarize"]')
    page.wait_for_selector('#history-body tr.ev-row.target')
    assert "summarize" in page.inner_text("#history-body tr.ev-row.target")

    # A retried activity: attempt 1 failed, a backoff, attempt 2.
    open_run(page, base, "retry-browser")
    page.wait_for_selector('#diagram g.node[data-kind="retry_timer"]')
    assert page.locator('#diagram g.node[data-status="failed"]').count() == 1
    assert "attempt 2" in page.inner_text("#diagram")
    shot(page, "run-retry")

    # Inputs that look like markup are shown as text, never run.
    open_run(page, base, "xss-browser")
    page.wait_for_selector("#data-input pre")
    assert XSS in page.inner_text("#data-input pre") and XSS in page.inner_text("#data-output pre")
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # the page's own module only
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
    shot(page, "run-xss")

    # The failed run shows its failure and stack.
    open_run(page, base, "checkout-browser")
    page.wait_for_selector("#failure")
    assert "ValueError" in page.inner_text("#failure") and "charge_card" in page.inner_text("#failure-frame")
    shot(page, "run-failed")

    # Terminate the running instance from its page, confirmed in the dialog; the page updates live.
    open_run(page, base, "waiter-browser")
    page.wait_for_selector("#live")
    assert 'waiting for go' in page.inner_text("#diagram")
    page.click("#act-terminate")
    page.wait_for_selector(".modal")
    shot(page, "terminate-confirm")
    page.click('.modal [data-role="confirm"]')
    page.wait_for_selector('.run-title .badge.TERMINATED', timeout=15_000)
    assert client.get_workflow_state("waiter-browser").runtime_status == WorkflowStatus.TERMINATED
    assert page.is_enabled("#act-purge") and not page.is_enabled("#act-terminate")
    shot(page, "run-terminated")

    # The API log shows the dashboard's terminate call, the client's starts, live.
    page.click('a[data-nav="apilog"]')
    row = page.wait_for_selector('#apilog-body tr[data-op="terminate"][data-instance="waiter-browser"]')
    assert "dashboard" in row.inner_text() and "ok" in row.inner_text()
    assert page.locator('#apilog-body tr[data-op="start"]').count() == 5
    with pytest.raises(InstanceFinishedError):  # refused (the run has finished; strict_events), and logged
        client.strict().raise_workflow_event("xss-browser", "late")
    late = page.wait_for_selector('#apilog-body tr[data-op="raise_event"][data-instance="xss-browser"]')
    assert "InstanceFinishedError" in late.inner_text()
    shot(page, "api-log")


def test_browser_long_history_is_paged_and_the_timeline_virtualized(client, dash, page):
    total = write_long_history(client, "long-browser", 3_400)
    page.goto(dash.base + "/#/run/long-browser")
    page.wait_for_selector("#history-body tr.ev-row")
    assert page.get_attribute("#gantt", "data-rows") == "3400"
    drawn = page.locator("#gantt g.gantt-row").count()
    assert 0 < drawn < 100, f"{drawn} timeline rows drawn for 3,400 steps"
    assert page.inner_text("#history .pager span").startswith(f"Events 1–100 of {total:,}")
    assert "Stages 3,361–3,400 of 3,400" in page.inner_text("#execution")  # the diagram pages through stages
    page.click("#history >> text=Last »")
    page.wait_for_selector(f'#history-body tr[data-index="{total - 1}"]')
    page.evaluate("document.getElementById('gantt-scroll').scrollTop = 26 * 3000")
    page.wait_for_selector('#gantt g.gantt-row[data-id="n3001"]')
    shot(page, "run-long-history")
