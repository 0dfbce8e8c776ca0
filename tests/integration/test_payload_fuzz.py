"""Issue 19: generated JSON-like values, edges included, through client -> workflow -> activity -> output.

Each value either comes back exactly (same types, same numbers, same text, same key order) or is
refused with a ``PayloadError`` at the first boundary, the client; never a hang, never a value that
the client takes and a later boundary refuses. The expectation is computed here, independently of
the engine's validator, from the documented rules (docs/bad-input.md): JSON types with string keys,
integers within 64 bits, finite floats, valid Unicode text, at most 100 levels of nesting, at most
``max_payload_bytes`` (1 MiB by default) packed.

A real pool with the engine's default settings runs ``hard_ok`` (the workflow passes its input to
an activity and returns the activity's result).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import PayloadError, Settings, WorkflowStatus
from tests.support.defaults import default_stack

APP = "tests.apps.hardening_app"
LIMIT = Settings().max_payload_bytes
EDGE_INTS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 2**100, -(2**100), 0, -1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with default_stack(tmp_path_factory.mktemp("payload_fuzz"), concurrency=2) as running:
        yield running


# -- values -------------------------------------------------------------------------------------------
def _deep(levels: int, leaf: Any) -> Any:
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"d": value}
    return value


surrogate_text = st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), st.sampled_from(["\ud800", "\udfff", "\udc80"]),
                           st.text(max_size=4))
texts = st.one_of(st.text(max_size=20), st.text(st.characters(codec="utf-8"), max_size=8), surrogate_text)
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
odd_keys = st.one_of(texts, st.sampled_from(["", " ", "\x00", "__proto__", "constructor", "é", "🙂", "a" * 300]),
                     st.integers(), st.none(), st.booleans())
json_like = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(odd_keys, inner, max_size=4),
), max_leaves=12)
edges = st.one_of(
    st.builds(_deep, st.integers(min_value=97, max_value=103), scalars),  # around the depth limit
    st.builds(_deep, st.just(5000), st.just(1)),
    # Strings whose packed size is within a few bytes of the limit (str32 header: 5 bytes).
    st.builds(lambda n: "x" * n, st.integers(min_value=LIMIT - 40, max_value=LIMIT + 8)),
    st.builds(lambda n: {"blob": "y" * n}, st.integers(min_value=LIMIT - 40, max_value=LIMIT + 8)),
)
values = st.one_of(json_like, json_like, json_like, edges)


# -- the rules, independently ---------------------------------------------------------------------------
def acceptable(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value <= 2**64 - 1
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return depth < 100 and all(acceptable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return depth < 100 and all(isinstance(k, str) and acceptable(k) and acceptable(v, depth + 1)
                                   for k, v in value.items())
    return False


def fits(value: Any) -> bool:
    return len(msgpack.packb(value, use_bin_type=True)) <= LIMIT


def same(a: Any, b: Any) -> bool:
    """Equal with the same types (True is not 1, 1.0 is not 1), the same float sign, the same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(value=values)
def test_a_value_round_trips_exactly_or_is_refused_at_the_client(stack, value):
    valid = acceptable(value) and fits(value)
    try:
        iid = stack.client.schedule_new_workflow("hard_ok", input=value)
    except PayloadError:
        assert not valid, "the client refused a value the rules allow"
        return
    assert valid, "the client took a value the rules refuse"
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=60)  # never a hang
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert same(state.output, value)
    assert same(stack.client.get_workflow_state(iid).input, value)
    assert stack.pool.proc.poll() is None, stack.pool.log_tail()
