"""How a step's activities are split into messages (worker/activities.py ``batches``)."""

from __future__ import annotations

import pytest

from orchestrator.worker.activities import batches


def records(n: int) -> list[dict]:
    return [{"seq": i} for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 5, 128])
def test_up_to_the_parallelism_every_activity_has_its_own_message(n):
    assert list(batches(records(n), 128, 32)) == [[r] for r in records(n)]


def test_a_batch_size_of_one_never_batches():
    assert len(list(batches(records(1000), 128, 1))) == 1000


@pytest.mark.parametrize("n, parallelism, size, messages", [
    (1000, 128, 32, 128),    # spread over the parallelism: 7 or 8 each
    (10000, 128, 32, 313),   # more messages than the parallelism, to keep at most 32 each
    (129, 128, 32, 128),     # just over: one message carries two
])
def test_wide_fan_outs_are_split_into_near_equal_consecutive_groups(n, parallelism, size, messages):
    groups = list(batches(records(n), parallelism, size))
    assert len(groups) == messages
    assert [r for g in groups for r in g] == records(n)  # every activity once, in order
    sizes = {len(g) for g in groups}
    assert max(sizes) <= size and max(sizes) - min(sizes) <= 1
