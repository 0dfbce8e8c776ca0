"""Schedules, the pure part (cron, nominal times, overlap policies) and in the test toolkit (time skipping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator import WorkflowRuntime
from orchestrator.core.cron import Cron, CronError, zone
from orchestrator.core.schedule import ScheduleSpec, initial_state, manual_run, plan_tick, run_instance_id
from orchestrator.errors import ScheduleExistsError, ScheduleNotFoundError
from orchestrator.testing import WorkflowTestEnvironment


def ms(*args: int, tz: str = "UTC") -> int:
    return int(datetime(*args, tzinfo=zone(tz)).timestamp() * 1000)  # type: ignore[misc]


def iso(at: int | None, tz: str = "UTC") -> str:
    assert at is not None
    return datetime.fromtimestamp(at / 1000, tz=zone(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


# -- cron -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr, after, expected", [
    ("*/15 * * * *", (2026, 1, 1, 10, 7), "2026-01-01 10:15:00 UTC"),
    ("0 9 * * MON-FRI", (2026, 1, 2, 9, 0), "2026-01-05 09:00:00 UTC"),  # Friday 9:00 -> Monday
    ("0 0 29 2 *", (2026, 1, 1), "2028-02-29 00:00:00 UTC"),
    ("@hourly", (2026, 1, 1, 10, 0), "2026-01-01 11:00:00 UTC"),
    ("30 */10 * * * *", (2026, 1, 1, 10, 0), "2026-01-01 10:00:30 UTC"),  # six fields: seconds first
    ("0 12 1 * 0", (2026, 2, 1, 13), "2026-02-08 12:00:00 UTC"),  # day 1 OR Sunday (cron's rule)
    ("0 0 * * 7", (2026, 1, 1), "2026-01-04 00:00:00 UTC"),  # 7 is Sunday
])
def test_cron_next_after(expr: str, after: tuple[int, ...], expected: str) -> None:
    assert iso(Cron.parse(expr).next_after(ms(*after), zone("UTC"))) == expected


def test_cron_in_a_zone_keeps_wall_time_across_daylight_saving() -> None:
    cron, paris = Cron.parse("0 9 * * *"), zone("Europe/Paris")
    before = cron.next_after(ms(2026, 3, 28, 12, tz="Europe/Paris"), paris)
    after = cron.next_after(before or 0, paris)
    assert iso(before, "Europe/Paris") == "2026-03-29 09:00:00 CEST"  # the day the clocks move forward
    assert iso(after, "Europe/Paris") == "2026-03-30 09:00:00 CEST"
    assert after is not None and before is not None and after - before == 24 * 3600_000


def test_cron_wall_time_in_the_skipped_hour_does_not_fire_that_day() -> None:
    cron, paris = Cron.parse("30 2 * * *"), zone("Europe/Paris")  # 02:30 does not exist on 2026-03-29
    assert iso(cron.next_after(ms(2026, 3, 28, 12, tz="Europe/Paris"), paris), "Europe/Paris") == \
        "2026-03-30 02:30:00 CEST"


def test_cron_repeated_hour_fires_once() -> None:
    cron, paris = Cron.parse("30 2 * * *"), zone("Europe/Paris")  # 02:30 happens twice on 2026-10-25
    first = cron.next_after(ms(2026, 10, 25, 0, tz="Europe/Paris"), paris)
    assert iso(first, "Europe/Paris") == "2026-10-25 02:30:00 CEST"
    assert iso(cron.next_after(first or 0, paris), "Europe/Paris") == "2026-10-26 02:30:00 CET"


@pytest.mark.parametrize("expr, problem", [
    ("* * * *", "has 4 fields"), ("61 * * * *", "minute 61 is out of range"), ("*/0 * * * *", "step"),
    ("5-1 * * * *", "runs backwards"), ("* * * FOO *", "not a valid month"), ("", "non-empty"),
])
def test_cron_errors_name_the_problem(expr: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem):
        Cron.parse(expr)


def test_bad_specs_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="exactly one of cron"):
        ScheduleSpec("s", "wf")
    with pytest.raises(ValueError, match="unknown time zone"):
        ScheduleSpec("s", "wf", cron="* * * * *", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="overlap must be one of"):
        ScheduleSpec("s", "wf", every_ms=1000, overlap="queue")
    with pytest.raises(ValueError, match="at least 1 second"):
        ScheduleSpec("s", "wf", every_ms=10)
    with pytest.raises(ValueError, match="schedule id"):
        ScheduleSpec("bad id", "wf", every_ms=1000)


# -- nominal times and ticks ------------------------------------------------------------------------
def test_interval_with_start_and_end_dates() -> None:
    spec = ScheduleSpec("s", "wf", every_ms=60_000, start_ms=ms(2026, 1, 1, 10, 0, 30), end_ms=ms(2026, 1, 1, 10, 3))
    assert [iso(t) for t in spec.upcoming(ms(2026, 1, 1), 5)] == [
        "2026-01-01 10:00:30 UTC", "2026-01-01 10:01:30 UTC", "2026-01-01 10:02:30 UTC"]
    assert run_instance_id("s", ms(2026, 1, 1, 10, 0, 30)) == "s-20260101T100030Z"


def test_jitter_is_the_same_in_every_pool_and_bounded() -> None:
    spec = ScheduleSpec("s", "wf", every_ms=1000, jitter_ms=500)
    delays = [spec.jitter_of(t) for t in range(0, 100_000, 1000)]
    assert delays == [ScheduleSpec("s", "wf", every_ms=1000, jitter_ms=500).jitter_of(t) for t in range(0, 100_000, 1000)]
    assert all(0 <= d <= 500 for d in delays) and len(set(delays)) > 10


def _ticks(spec: ScheduleSpec, start: int, seconds: int, running_for: int) -> tuple[list[int], object]:
    """Tick every second for ``seconds``; each run lasts ``running_for`` seconds; the nominal times started."""
    state = initial_state(spec, start)
    ends: dict[str, int] = {}
    started: list[int] = []
    for now in range(start, start + seconds * 1000 + 1, 1000):
        tick = plan_tick(spec, state, now, previous_running=bool(state.last_id) and ends[state.last_id] > now)
        for instance_id, nominal in tick.started:
            ends[instance_id] = now + running_for * 1000
            started.append(nominal)
        if tick.state.terminating:
            ends[tick.state.terminating] = now
        state = tick.state
    return [(t - start) // 1000 for t in started], state


@pytest.mark.parametrize("policy, expected", [
    ("allow_all", list(range(1, 11))),
    ("skip", [1, 4, 7, 10]),  # each run lasts 2.5 s: the two nominal seconds in between are skipped
    ("buffer_one", [1, 2, 4, 7]),  # one waits (2, 4, 7) and starts when the run before ends; 3, 5, ... skipped
    ("terminate_other", list(range(1, 11))),
])
def test_overlap_policies(policy: str, expected: list[int]) -> None:
    start = ms(2026, 1, 1)
    spec = ScheduleSpec("s", "wf", every_ms=1000, overlap=policy)
    started, _state = _ticks(spec, start, 10, running_for=3)
    assert started == expected


def test_buffer_one_starts_the_waiting_run_when_the_previous_ends() -> None:
    start = ms(2026, 1, 1)
    spec = ScheduleSpec("s", "wf", every_ms=10_000, overlap="buffer_one")
    state = initial_state(spec, start)
    first = plan_tick(spec, state, start + 10_000, previous_running=False)
    assert [n for _, n in first.started] == [start + 10_000]
    second = plan_tick(spec, first.state, start + 20_000, previous_running=True)
    assert second.started == [] and second.state.buffered_ms == start + 20_000
    assert second.state.due_ms == start + 21_000  # it looks again at its predecessor every second
    third = plan_tick(spec, second.state, start + 25_000, previous_running=False)
    assert third.started == [(run_instance_id("s", start + 20_000), start + 20_000)]


def test_cancel_other_terminates_the_previous_and_waits_for_it() -> None:
    start = ms(2026, 1, 1)
    spec = ScheduleSpec("s", "wf", every_ms=10_000, overlap="cancel_other")
    first = plan_tick(spec, initial_state(spec, start), start + 10_000, previous_running=False)
    second = plan_tick(spec, first.state, start + 20_000, previous_running=True)
    assert second.started == [] and second.state.terminating == first.started[0][0]
    assert second.state.buffered_ms == start + 20_000


def test_catch_up_is_bounded_by_the_window() -> None:
    start = ms(2026, 1, 1)
    spec = ScheduleSpec("s", "wf", every_ms=1000, overlap="allow_all", catchup_window_ms=5000)
    state = initial_state(spec, start)
    tick = plan_tick(spec, state, start + 3600_000, previous_running=False)  # an hour without any pool
    assert [(n - start) // 1000 for _, n in tick.started] == list(range(3595, 3601))
    assert tick.state.missed == 1 and tick.state.next_ms == start + 3601_000


def test_manual_run_follows_the_overlap_policy() -> None:
    spec = ScheduleSpec("s", "wf", every_ms=1000, overlap="skip")
    state = initial_state(spec, 0)
    assert manual_run(spec, state, 5000, previous_running=True).started == []
    assert manual_run(spec, state, 5000, previous_running=True, overlap="allow_all").started == [
        ("s-manual-19700101T000005Z", 5000)]


# -- in the test toolkit ------------------------------------------------------------------------------
wfr = WorkflowRuntime()


@wfr.workflow(name="report")
def report(ctx, day):  # type: ignore[no-untyped-def]
    yield ctx.create_timer(timedelta(minutes=90))
    return f"report {day}"


def test_advance_fires_schedules_in_the_test_environment() -> None:
    with WorkflowTestEnvironment(wfr) as env:
        info = env.client.create_schedule("hourly-report", "report", cron="0 * * * *", input="today",
                                          overlap="skip")
        assert info.next_run is not None and info.next_run.minute == 0
        env.advance(timedelta(hours=6))
        runs = sorted(s.instance_id for s in env.client.list_workflows(name="report"))
        # Each run takes 90 minutes: every other hour is skipped.
        assert len(runs) == 3 and all(r.startswith("hourly-report-") for r in runs)
        got = env.client.get_schedule("hourly-report").to_dict()
        assert got["fired"] == 3 and got["skipped"] == 3
        assert got["last_run"]["instance_id"] == runs[-1]


def test_pause_resume_trigger_backfill_in_the_test_environment() -> None:
    with WorkflowTestEnvironment(wfr) as env:
        env.client.create_schedule("every-minute", "report", every=60, overlap="allow_all")
        with pytest.raises(ScheduleExistsError):
            env.client.create_schedule("every-minute", "report", every=60)
        env.client.pause_schedule("every-minute", note="maintenance")
        env.advance(timedelta(minutes=10))
        assert env.client.list_workflows(name="report") == []
        assert env.client.get_schedule("every-minute").to_dict()["note"] == "maintenance"
        env.client.resume_schedule("every-minute")
        manual = env.client.trigger_schedule("every-minute")
        assert manual is not None and manual.startswith("every-minute-manual-")
        now = env.now
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
        filled = env.client.backfill_schedule("every-minute", start, start + timedelta(minutes=2))
        assert len(filled["started"]) == 3 and filled["existed"] == []
        again = env.client.backfill_schedule("every-minute", start, start + timedelta(minutes=2))
        assert again["started"] == [] and len(again["existed"]) == 3  # each nominal time once
        env.client.delete_schedule("every-minute")
        with pytest.raises(ScheduleNotFoundError):
            env.client.get_schedule("every-minute")
        assert datetime.now(UTC) <= now + timedelta(hours=1)
