"""Offline replay of exported histories against changed code (orchestrator.replayer).

Histories are produced by the real engine (the in-process test environment), exported with
``client.export_history`` to JSON files, then replayed without any store.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from orchestrator import WorkflowRuntime
from orchestrator.history_export import FORMAT
from orchestrator.testing import Replayer, WorkflowTestEnvironment, assert_replays


def make_runtime(pipeline, version=None):
    wfr = WorkflowRuntime()
    for name in ("validate", "charge", "charge_card", "ship"):
        wfr.register_activity(lambda ctx, x, _n=name: f"{_n}:{x}", name=name)
    wfr.register_activity(lambda ctx, x: (_ for _ in ()).throw(ValueError("card declined")), name="decline")
    wfr.register_workflow(pipeline, name="pipeline", version=version)
    return wfr


def pipeline_v1(ctx, order):
    yield ctx.call_activity("validate", input=order)
    yield ctx.call_activity("decline" if order == "bad" else "charge", input=order)
    yield ctx.create_timer(timedelta(hours=1))
    return (yield ctx.call_activity("ship", input=order))


def pipeline_v2_renamed_charge(ctx, order):
    yield ctx.call_activity("validate", input=order)
    yield ctx.call_activity("decline" if order == "bad" else "charge_card", input=order)
    yield ctx.create_timer(timedelta(hours=1))
    return (yield ctx.call_activity("ship", input=order))


def pipeline_v1_new_ending(ctx, order):
    result = yield from pipeline_v1(ctx, order)
    raise RuntimeError(f"refusing to return {result}")


@pytest.fixture
def exported(tmp_path):
    """Three instances recorded by v1 (completed, waiting on its timer, failed), exported to files."""
    directory = tmp_path / "histories"
    directory.mkdir()
    with WorkflowTestEnvironment(make_runtime(pipeline_v1)) as env:
        env.start("pipeline", input="a", instance_id="done")
        env.advance(timedelta(hours=1))
        env.start("pipeline", input="b", instance_id="waiting")
        env.start("pipeline", input="bad", instance_id="failed")
        assert [env.state(i).runtime_status.name for i in ("done", "waiting", "failed")] == \
            ["COMPLETED", "RUNNING", "FAILED"]
        for instance_id in ("done", "waiting", "failed"):
            (directory / f"{instance_id}.json").write_text(json.dumps(env.export_history(instance_id)))
        yield directory


def test_unchanged_code_replays_every_exported_history(exported):
    report = assert_replays(exported, workflows=make_runtime(pipeline_v1))
    assert [r.instance_id for r in report.results] == ["done", "failed", "waiting"]
    assert report.ok and report.summary() == "replayed 3 histories against the current code: 3 ok"


def test_changed_code_is_reported_at_the_exact_step_for_every_history(exported):
    report = Replayer(make_runtime(pipeline_v2_renamed_charge)).replay_all(exported)
    by_id = {r.instance_id: r for r in report.results}
    assert report.summary() == "replayed 3 histories against the current code: 1 ok, 2 nondeterminism"
    assert by_id["failed"].ok  # its charge step was "decline", which did not change
    for instance_id in ("done", "waiting"):
        r = by_id[instance_id]
        assert (r.problem, r.step, r.event_index) == ("nondeterminism", 2, 6)
        assert r.recorded == "activity 'charge' (call #2)"
        assert r.requested == "asked for activity 'charge_card' (call #2)"
    text = str(report)
    assert "FAIL " + str(exported / "done.json") in text and "at step 2 (history event #6)" in text
    with pytest.raises(AssertionError, match="2 nondeterminism"):
        assert_replays(exported, workflows=make_runtime(pipeline_v2_renamed_charge))


def test_a_different_ending_is_reported_where_history_recorded_the_end(exported):
    report = Replayer({"pipeline": pipeline_v1_new_ending}).replay_all(exported / "done.json")
    [result] = report.results
    assert result.problem == "outcome" and result.step == 5
    assert result.recorded == "the workflow COMPLETED"
    assert result.requested.startswith("FAILED (RuntimeError: refusing to return ship:a)")


def test_versions_are_replayed_with_the_function_of_their_version(exported, tmp_path):
    with WorkflowTestEnvironment(make_runtime(pipeline_v2_renamed_charge, version="2")) as env:
        env.start("pipeline", input="c", instance_id="v2-run")
        doc = env.export_history("v2-run")
    assert doc["instance"]["workflow_version"] == "2" and doc["format"] == FORMAT
    both = WorkflowRuntime()
    both.register_workflow(pipeline_v1, name="pipeline")  # unversioned: the instances that predate versions
    both.register_workflow(pipeline_v2_renamed_charge, name="pipeline", version="2")
    assert Replayer(both).replay_all([doc, *sorted(exported.iterdir())]).ok
    [missing] = Replayer({"pipeline": pipeline_v1}).replay_all([doc]).results
    assert missing.problem == "not_registered" and "version '2'" in missing.message


def test_bad_files_are_reported_without_hiding_the_others(exported):
    (exported / "junk.json").write_text("{not json")
    (exported / "other.json").write_text(json.dumps({"format": "something else"}))
    report = Replayer(make_runtime(pipeline_v1)).replay_all(exported)
    problems = {r.source.rsplit("/", 1)[-1]: r.problem for r in report.results}
    assert problems == {"done.json": "", "failed.json": "", "waiting.json": "", "junk.json": "error",
                        "other.json": "error"}
    assert "not valid JSON" in next(r.message for r in report.results if r.source.endswith("junk.json"))
    empty = exported.parent / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no exported histories"):
        Replayer(make_runtime(pipeline_v1)).replay_all(empty)
    with pytest.raises(ValueError, match="no workflows"):
        Replayer({})
