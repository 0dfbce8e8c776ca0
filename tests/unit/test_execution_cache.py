"""Incremental replay: a held WorkflowExecution advanced step by step decides exactly what a
replay from scratch decides, and catches up from history it did not see itself."""

from orchestrator.core.history import ExecutionStarted, StepStarted, TaskCompleted
from orchestrator.core.replay import WorkflowExecution, replay
from orchestrator.worker.engine import ExecutionCache

T0 = 1_700_000_000_000


def chain(ctx, n):
    total = 0
    for i in range(n):
        total = yield ctx.call_activity("add", input=[total, i])
    return total


def run_steps(n_steps):
    """History of a chain, built step by step with one held execution; returns (history, results)."""
    held = WorkflowExecution(chain, "i")
    history, results = [], []
    new = [StepStarted(ts=T0), ExecutionStarted(ts=T0, name="chain", input=n_steps)]
    for step in range(n_steps + 1):
        result = held.step(new)
        results.append(result)
        history += new + result.actions + ([result.completion] if result.completion else [])
        held.committed()
        if result.completion:
            break
        seq = result.actions[0].seq
        new = [StepStarted(ts=T0 + step + 1), TaskCompleted(ts=T0, seq=seq, result=result.actions[0].input[0] + result.actions[0].input[1])]
    return history, results


def test_held_execution_matches_replay_from_scratch_at_every_step():
    history, results = run_steps(6)
    assert results[-1].completion.result == sum(range(6))
    # Re-derive each step from scratch and compare decisions.
    cut = 0
    for i, expected in enumerate(results):
        # find the slice of history that belongs to step i
        starts = [k for k, e in enumerate(history) if isinstance(e, StepStarted)]
        begin, end = starts[i], (starts[i + 1] if i + 1 < len(starts) else len(history))
        consumed = [e for e in history[begin:end] if isinstance(e, (StepStarted, ExecutionStarted, TaskCompleted))]
        fresh = replay(chain, "i", history[:begin], consumed)
        assert fresh.actions == expected.actions and fresh.completion == expected.completion
        cut = end
    assert cut == len(history)


def test_execution_catches_up_on_steps_another_process_committed():
    history, results = run_steps(5)
    starts = [k for k, e in enumerate(history) if isinstance(e, StepStarted)]
    # This process saw the first two steps, another process committed steps 3 and 4.
    held = WorkflowExecution(chain, "i")
    held.catch_up(history[:starts[2]])
    held.catch_up(history[starts[2]:starts[4]])
    last = history[starts[4]:]
    consumed = [e for e in last if isinstance(e, (StepStarted, TaskCompleted))]
    assert held.step(consumed).actions == results[4].actions
    assert held.history_length == starts[4] + len(consumed)


def test_cache_is_bounded_and_take_removes():
    cache = ExecutionCache(2)
    for name in "abc":
        cache.put(name, WorkflowExecution(chain, name), 1)
    assert cache.take("a") is None  # evicted, least recently used
    assert cache.take("c").version == 1
    assert cache.take("c") is None  # taken: a second thread cannot share the generator
