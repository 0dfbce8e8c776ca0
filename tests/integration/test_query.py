"""Listing and counting instances: filters, paging, counts, on a real redis-server.

The 10,000 instances are written through the store's own scripts (create, then a commit that sets
the status), so the indexes under test are the ones the engine maintains, not hand-made ones.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from orchestrator import WorkflowStatus
from orchestrator.core.history import ExecutionStarted
from orchestrator.store.step_io import Commit

BASE = 1_700_000_000_000  # creation time of instance 0 (ms); instance i is created i seconds later
NAMES = ("alpha", "beta", "gamma", "delta")
FINAL = ("COMPLETED", "FAILED", "TERMINATED", "RUNNING", "PENDING")


def at(i: int) -> datetime:
    return datetime.fromtimestamp((BASE + i * 1000) / 1000, tz=UTC)


def make(store, instance_id: str, name: str, created: int, status: str, **parent) -> None:
    store.create_instance(instance_id, name, "default", ExecutionStarted(ts=created, name=name), None, created,
                          start_at=created + 10**9, **parent)  # a far start: nothing becomes ready
    if status != "PENDING":
        assert store.commit(instance_id, Commit(version=0, now=created, status=status)).ok


@pytest.fixture
def population(client):
    """10,000 instances: name i % 4, status (i // 4) % 5, created i seconds apart."""
    expected = []
    for i in range(10_000):
        name, status = NAMES[i % 4], FINAL[(i // 4) % 5]
        make(client.store, f"inst-{i:05d}", name, BASE + i * 1000, status)
        expected.append((i, name, status))
    return expected


def ids_of(expected, name=None, status=None, lo=None, hi=None):
    rows = [i for i, n, s in expected if (name is None or n == name) and (status is None or s == status)
            and (lo is None or i >= lo) and (hi is None or i <= hi)]
    return [f"inst-{i:05d}" for i in sorted(rows, reverse=True)]


def test_listing_10000_instances_by_status_and_name_pages_fast(client, population):
    cases = [
        {"status": "COMPLETED", "name": "alpha"},
        {"status": "FAILED"},
        {"name": "gamma"},
        {},
        {"status": WorkflowStatus.RUNNING, "name": "delta", "created_from": at(2000), "created_to": at(7999)},
    ]
    worst = 0.0
    for filters in cases:
        want = ids_of(population, filters.get("name"),
                      filters["status"].name if isinstance(filters.get("status"), WorkflowStatus) else filters.get("status"),
                      2000 if "created_from" in filters else None, 7999 if "created_to" in filters else None)
        offsets = sorted({0, 50, len(want) // 2, max(0, len(want) - 50)})
        for offset in offsets:
            began = time.perf_counter()
            page = client.query_workflows(offset=offset, limit=50, **filters)
            elapsed = time.perf_counter() - began
            worst = max(worst, elapsed)
            assert [s.instance_id for s in page.items] == want[offset:offset + 50], (filters, offset)
            assert page.total == len(want)
            assert page.next_offset == (offset + 50 if offset + 50 < len(want) else None)
            assert elapsed < 1.0, f"page {filters} at offset {offset} took {elapsed:.3f}s"
    first = client.list_workflows(status="COMPLETED", name="alpha", limit=3)
    assert all(s.name == "alpha" and s.runtime_status == WorkflowStatus.COMPLETED for s in first)
    newest = ids_of(population, "alpha", "COMPLETED")[0]
    assert first[0].instance_id == newest and first[0].created_at == at(int(newest[5:])).replace(tzinfo=None)
    assert first[0].input is None  # payloads stay in Redis for listings
    print(f"\nslowest page of 50 over 10,000 instances: {worst * 1000:.1f} ms")


def test_counts_by_status_and_name(client, population):
    began = time.perf_counter()
    counts = client.count_workflows()
    elapsed = time.perf_counter() - began
    by_status = Counter(s for _, _, s in population)
    assert counts["total"] == 10_000
    assert counts["by_status"] == {s.name: by_status.get(s.name, 0) for s in WorkflowStatus
                                   if s.name not in ("UNKNOWN", "STALLED")}  # STALLED: derived, never stored
    for name in NAMES:
        split = Counter(s for _, n, s in population if n == name)
        assert counts["by_name"][name]["total"] == 2500
        assert {k: v for k, v in counts["by_name"][name]["by_status"].items() if v} == dict(split)
    ranged = client.count_workflows(created_from=at(100), created_to=at(199))
    assert ranged["total"] == 100 and sum(ranged["by_status"].values()) == 100
    print(f"\ncounts over 10,000 instances: {elapsed * 1000:.1f} ms")


def test_status_changes_move_instances_between_indexes(client):
    store = client.store
    make(store, "mover", "alpha", BASE, "PENDING")
    assert [s.instance_id for s in client.list_workflows(status="PENDING", name="alpha")] == ["mover"]
    assert store.commit("mover", Commit(version=0, now=BASE + 1, status="RUNNING")).ok
    assert client.list_workflows(status="PENDING", name="alpha") == []
    assert [s.instance_id for s in client.list_workflows(status="RUNNING", name="alpha")] == ["mover"]
    assert store.commit("mover", Commit(version=1, now=BASE + 2, status="COMPLETED")).ok
    assert [s.instance_id for s in client.list_workflows(status="COMPLETED", name="alpha")] == ["mover"]
    assert client.count_workflows()["by_name"]["alpha"]["by_status"]["COMPLETED"] == 1
    client.purge_workflow("mover")
    assert client.list_workflows() == [] and client.count_workflows()["by_name"] == {}


def test_list_children_of_a_parent_with_other_filters(client):
    store = client.store
    make(store, "boss", "alpha", BASE, "RUNNING")
    kids = [f"boss:{i}" for i in range(1, 31)]
    assert store.commit("boss", Commit(version=1, now=BASE, status="RUNNING", children=kids)).ok
    for i, kid in enumerate(kids):
        make(store, kid, "beta" if i % 2 else "gamma", BASE + (i + 1) * 1000, "COMPLETED" if i < 20 else "RUNNING",
             parent="boss", parent_key=f"0.{i + 1}", parent_app="default")
    make(store, "stranger", "beta", BASE + 5000, "COMPLETED")
    page = client.query_workflows(parent_instance_id="boss", limit=10)
    assert [s.instance_id for s in page.items] == kids[::-1][:10] and page.total == 30 and page.next_offset == 10
    assert all(s.parent_instance_id == "boss" for s in page.items)
    betas = client.list_workflows(parent_instance_id="boss", name="beta", status="COMPLETED", limit=100)
    assert [s.instance_id for s in betas] == [kids[i] for i in range(19, -1, -1) if i % 2]
    ranged = client.list_workflows(parent_instance_id="boss", created_from=at(5), created_to=at(7))
    assert [s.instance_id for s in ranged] == ["boss:7", "boss:6", "boss:5"]
    assert client.list_workflows(parent_instance_id="stranger") == []


def test_bad_query_arguments_are_refused_with_a_clear_error(client):
    with pytest.raises(ValueError, match="unknown workflow status 'DONE'"):
        client.list_workflows(status="DONE")
    with pytest.raises(ValueError, match="limit"):
        client.list_workflows(limit=0)
    with pytest.raises(ValueError, match="offset"):
        client.list_workflows(offset=-1)
    with pytest.raises(ValueError, match="created_from is after created_to"):
        client.list_workflows(created_from=at(10), created_to=at(5))
    with pytest.raises(ValueError, match="invalid instance id"):
        client.list_workflows(parent_instance_id="has space")
