"""The dashboard's read-only queries over the listing indexes, and payload clipping."""

from __future__ import annotations

import fakeredis
import pytest

from orchestrator.dashboard.present import clip
from orchestrator.store.queries import StoreQueries, percentile
from orchestrator.store.redis_store import RedisStore


def seed(store: RedisStore, rows):
    """rows: (id, name, status, created, completed) written as the store's scripts write them."""
    r, k = store.redis, store.keys
    for instance_id, name, status, created, completed in rows:
        meta = {"name": name, "app": "default", "status": status, "created": created, "updated": completed or created}
        if completed:
            meta["completed"] = completed
        r.hset(k.instance(instance_id).meta, mapping=meta)
        shard = k.shard_of(instance_id)  # each instance in its own shard's indexes, as the scripts keep them
        r.zadd(shard.index_all, {instance_id: created})
        r.zadd(shard.status_index(status), {instance_id: created})
        r.zadd(shard.name_index(name), {instance_id: created})
        r.zadd(shard.name_status_index(name, status), {instance_id: created})
        r.sadd(shard.index_names, name)


@pytest.fixture
def q():
    store = RedisStore(fakeredis.FakeRedis(), "orch")
    rows = []
    for i in range(30):
        name = "billing" if i % 3 == 0 else "shipping"
        status = "FAILED" if i % 5 == 0 else "COMPLETED" if i % 2 == 0 else "RUNNING"
        done = 1000 + i * 10 + (50 + i if status == "COMPLETED" else 20) if status != "RUNNING" else None
        rows.append((f"{'ord' if i < 20 else 'inv'}-{i:03d}", name, status, 1000 + i * 10, done))
    seed(store, rows)
    return StoreQueries(store)


def ids(page):
    return [item["instance_id"] for item in page["items"]]


def test_counts_by_status_and_total(q):
    counts = q.status_totals()
    assert counts["TOTAL"] == 30
    assert counts["FAILED"] == 6 and counts["COMPLETED"] == 12 and counts["RUNNING"] == 12
    assert counts["PENDING"] == counts["SUSPENDED"] == counts["TERMINATED"] == 0


def test_unfiltered_list_is_newest_first_and_paged_with_exact_total(q):
    first = q.list_runs(limit=4)
    assert ids(first) == ["inv-029", "inv-028", "inv-027", "inv-026"]
    assert first["total"] == 30 and first["has_more"] is True
    last = q.list_runs(offset=28, limit=4)
    assert ids(last) == ["ord-001", "ord-000"] and last["has_more"] is False
    assert last["items"][0] == {"instance_id": "ord-001", "name": "shipping", "app_id": "default", "status": "RUNNING",
                                "created": 1010, "updated": 1010, "completed": None, "parent": None, "error": None}


def test_status_name_time_range_and_prefix_combine(q):
    failed_billing = q.list_runs(status="failed", name="billing")
    assert ids(failed_billing) == ["ord-015", "ord-000"]  # i % 15 == 0
    assert failed_billing["total"] == 2
    in_range = q.list_runs(status="COMPLETED", since=1100, until=1200)
    assert ids(in_range) == ["ord-018", "ord-016", "ord-014", "ord-012"]
    prefixed = q.list_runs(prefix="inv-", status="RUNNING", limit=3)
    assert ids(prefixed) == ["inv-029", "inv-027", "inv-023"] and prefixed["has_more"] is True
    assert prefixed["total"] == 4  # the walk read the whole (small) index, so the count is exact
    everything = q.list_runs(prefix="inv-", status="RUNNING", limit=50)
    assert ids(everything) == ["inv-029", "inv-027", "inv-023", "inv-021"]
    assert everything["total"] == 4 and not everything["has_more"]


def test_bad_filters_are_refused_with_the_reason(q):
    with pytest.raises(ValueError, match="unknown status 'DONE'"):
        q.list_runs(status="DONE")
    with pytest.raises(ValueError, match="invalid id prefix"):
        q.list_runs(prefix="a b")
    with pytest.raises(ValueError, match="'since' is after 'until'"):
        q.list_runs(since=10, until=5)
    with pytest.raises(ValueError, match="limit must be between"):
        q.list_runs(limit=0)


def test_stats_per_type_success_rate_percentiles_and_series(q):
    st = q.stats(now=1400, window_ms=400, buckets=4)  # created in [1000, 1400]
    types = {t["name"]: t for t in st["types"]}
    billing = types["billing"]  # i in 0,3,...,27: failed 0,15; completed 6,12,18,24; running 3,9,21,27
    assert billing["counts"]["FAILED"] == 2 and billing["counts"]["COMPLETED"] == 4 and billing["counts"]["RUNNING"] == 4
    assert billing["success_rate"] == pytest.approx(4 / 6)
    assert billing["p50_ms"] == 56 and billing["p95_ms"] == 74  # durations: 20, 20 (failed), 56, 62, 68, 74
    assert sum(b["completed"] for b in st["series"]) == 12
    assert sum(b["failed"] for b in st["series"]) == 6
    assert [b["t"] for b in st["series"]] == [1000, 1100, 1200, 1300]
    assert [b["failed"] for b in st["series"]] == [2, 2, 2, 0]  # finished at 1020, 1070, 1120, 1170, 1220, 1270
    assert st["sampled"] is False
    small = q.stats(now=1400, window_ms=400, buckets=4, sample=2)  # counts stay exact, durations sampled
    assert {t["name"]: t["total"] for t in small["types"]} == {"billing": 10, "shipping": 20}
    assert small["sampled"] is True and sum(t["measured"] for t in small["types"]) == 4


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile([7], 95) == 7
    assert percentile([], 50) is None


def test_clip_keeps_small_payloads_whole_and_cuts_large_ones():
    assert clip(None) is None
    small = clip({"a": "<b>"})
    assert small == {"text": '{\n  "a": "<b>"\n}', "size": 16, "truncated": False}
    big = clip("x" * 10_000, limit=100)
    assert big["truncated"] and len(big["text"]) == 100 and big["size"] == 10_002


def test_failed_runs_carry_their_error_and_filter_by_error_type():
    from orchestrator.codec import pack_value
    from orchestrator.core.errors import FailureDetails

    store = RedisStore(fakeredis.FakeRedis(), "orch")
    q = StoreQueries(store)
    for i, (error_type, message) in enumerate([("ValueError", "bad input"), ("app.errors.PaymentDeclined", "no"),
                                               ("ValueError", "worse input")]):
        iid = f"f-{i}"
        store.redis.hset(store.keys.instance(iid).meta, mapping={
            "name": "orders", "app": "default", "status": "FAILED", "created": 100 + i, "updated": 100 + i,
            "failure": pack_value(FailureDetails(message, error_type).to_list())})
        store.redis.zadd(store.keys.shard_of(iid).index_all, {iid: 100 + i})
        store.redis.zadd(store.keys.shard_of(iid).status_index("FAILED"), {iid: 100 + i})
    page = q.list_runs(status="FAILED")
    assert [r["error"] for r in page["items"]] == [{"error_type": "ValueError", "message": "worse input"},
                                                   {"error_type": "app.errors.PaymentDeclined", "message": "no"},
                                                   {"error_type": "ValueError", "message": "bad input"}]
    assert [r["instance_id"] for r in q.list_runs(error_type="ValueError")["items"]] == ["f-2", "f-0"]
    declined = q.list_runs(status="FAILED", error_type="PaymentDeclined")  # the short name matches
    assert [r["instance_id"] for r in declined["items"]] == ["f-1"] and declined["total"] == 1
