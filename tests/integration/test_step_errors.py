"""Issue 19, class 2: every error while deciding a step fails the instance (or the call) with an error
naming what and where; nothing is left PENDING or RUNNING with the cause only in a log (DESIGN §8).

One real pool with the engine's default settings runs ``tests.apps.hardening_app``'s ``hard_bad``,
which misbehaves as its input says. Each case asserts the instance's final state and error, that
the pool is alive and that another instance still runs to completion on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from orchestrator import WorkflowStatus
from orchestrator.core.errors import FailureDetails
from tests.support.defaults import default_stack
from tests.support.waiting import finish

APP = "tests.apps.hardening_app"
PAYLOAD = "orchestrator.core.errors.PayloadError"
RANGE = r"beyond the 64-bit range payloads can hold \(-9223372036854775808 \.\. 18446744073709551615\)"
SURROGATE = r"holds the lone surrogate '\\ud800' at position 0, which is not valid Unicode text"
DEEP = r"\[0\]\[0\]\[0\]\[0\]\.\.\.\(\d+ more levels\)\.\.\.\[0\]\[0\] nests lists and dicts more than 100 levels deep"

# case -> (error type, a regex the failure message must match from its start)
WORKFLOW_CASES = {
    "activity_input_bigint": (PAYLOAD, rf"input of activity 'hard_echo'\['n'\] is the integer {2**70}, {RANGE}"),
    "activity_input_surrogate": (PAYLOAD, rf"input of activity 'hard_echo' {SURROGATE}"),
    "activity_input_deep": (PAYLOAD, rf"input of activity 'hard_echo'{DEEP}"),
    "custom_status_bigint": (PAYLOAD, rf"custom status\['progress'\] is the integer {2**70}, {RANGE}"),
    "continue_as_new_surrogate": (PAYLOAD, rf"continue_as_new input\['case'\] {SURROGATE}"),
    "output_bigint": (PAYLOAD, rf"output of workflow 'hard_bad' is the integer {-(2**63) - 1}, {RANGE}"),
    "output_surrogate": (PAYLOAD, r"output of workflow 'hard_bad' has a key that holds the lone surrogate '\\udc80'"),
    "output_deep": (PAYLOAD, rf"output of workflow 'hard_bad'{DEEP}"),
    "raises_unprintable": ("tests.apps.hardening_app.UnprintableError",
                           r"<UnprintableError object: its __str__ raised RuntimeError>$"),
    "yields_unrepresentable": ("TypeError", r"workflow 'hard_bad' yielded <Unrepresentable object: its __repr__ "
                                            r"raised RuntimeError> \(Unrepresentable\); a workflow must yield tasks"),
    "child_id_invalid": ("ValueError", r"invalid instance id of child workflow 'hard_ok' 'bad id\{\}': use 1-200 "
                                       r"characters from letters, digits and _ \. : @ -"),
    "child_id_newline": ("ValueError", r"invalid instance id of child workflow 'hard_ok' 'child-1\\n'"),
    "event_name_newline": ("ValueError", r"event name 'approval\\n' contains the control character '\\n' at "
                                         r"position 8"),
    "activity_name_huge": ("ValueError", r"activity name 'a{80}\.\.\.' is 5000 characters long, over the limit "
                                         r"of 200"),
    "app_id_surrogate": ("ValueError", r"app id 'billing\\ud800' contains the lone surrogate '\\ud800' at "
                                       r"position 7 \(not valid Unicode text\)"),
    "retry_wait_raises": ("ZeroDivisionError", r"step \d+ of workflow 'hard_bad' \(instance 'bad-retry_wait_raises'\) "
                                               r"could not be decided: ZeroDivisionError: division by zero"),
}
# Activity code that misbehaves: the call fails with the attempt's error, and the (uncaught) failure
# fails the workflow with the same details.
ACTIVITY_CASES = {
    "activity_raises_unprintable": ("tests.apps.hardening_app.UnprintableError",
                                    r"<UnprintableError object: its __str__ raised RuntimeError>$"),
    "activity_raises_surrogate": ("ValueError", r"bad text \\ud800 here$"),
    "activity_raises_huge": ("ValueError", r"x{32768}\.\.\. \[cut: 4967232 more characters\]$"),
    "activity_returns_bigint": (PAYLOAD, rf"output of activity 'hard_misbehave'\['n'\] is the integer {2**64}, {RANGE}"),
    "activity_returns_surrogate": (PAYLOAD, r"output of activity 'hard_misbehave'\[0\] holds the lone surrogate "
                                            r"'\\udfff'"),
    "activity_returns_deep": (PAYLOAD, rf"output of activity 'hard_misbehave'{DEEP}"),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with default_stack(tmp_path_factory.mktemp("step_errors"), concurrency=2) as running:
        yield running


def failed_clearly(stack: SimpleNamespace, case: str, error_type: str, message: str) -> list[dict]:
    c = stack.client
    iid = c.schedule_new_workflow("hard_bad", input=case, instance_id=f"bad-{case}")
    failure = finish(c, iid, WorkflowStatus.FAILED, timeout=60).failure_details
    assert error_type in (failure.error_type, failure.qualified_type), failure
    chained = failure.message.startswith("Activity task #")  # Dapr's TaskFailedError text
    if chained:  # the activity's own failure, recorded in history, is the message checked
        failure = next(FailureDetails.from_dict(e["failure"]) for e in c.get_workflow_history(iid)
                       if e["kind"] == "TaskFailed")
    assert re.match(message, failure.message), failure.message[:500]
    assert failure.stack_trace, "the failure keeps a stack trace"
    # Other instances run on, on the same live pool.
    other = c.schedule_new_workflow("hard_ok", input=case)
    assert finish(c, other).output == case
    assert stack.pool.proc.poll() is None, stack.pool.log_tail()
    return c.get_workflow_history(iid)


@pytest.mark.parametrize("case", sorted(WORKFLOW_CASES))
def test_workflow_code_that_decides_what_cannot_be_recorded_fails_the_instance_naming_it(stack, case):
    error_type, message = WORKFLOW_CASES[case]
    history = failed_clearly(stack, case, error_type, message)
    kinds = [e["kind"] for e in history]
    if case.startswith(("activity_input", "activity_name", "app_id", "child_id")):
        # Refused at the call: the bad call is never scheduled, nothing half-written.
        assert "TaskScheduled" not in kinds and "ChildScheduled" not in kinds, kinds
    if case != "retry_wait_raises":
        assert kinds[-1] == "ExecutionCompleted" and history[-1]["status"] == "FAILED"


@pytest.mark.parametrize("case", sorted(ACTIVITY_CASES))
def test_activity_code_that_produces_what_cannot_be_recorded_fails_the_call_naming_it(stack, case):
    error_type, message = ACTIVITY_CASES[case]
    history = failed_clearly(stack, case, error_type, message)
    [failed] = [e for e in history if e["kind"] == "TaskFailed"]
    assert error_type in (failed["failure"]["error_type"], failed["failure"].get("qualified_type"))


def test_an_engine_failure_keeps_history_and_inbox_as_they_were(stack):
    """``retry_wait_raises``: the retry policy's wait raises while the step is decided. The instance
    fails with that error; the delivered failure that woke it stays in the inbox, unapplied."""
    c = stack.client
    iid = "bad-retry_wait_raises"
    if c.get_workflow_state(iid) is None:
        failed_clearly(stack, "retry_wait_raises", *WORKFLOW_CASES["retry_wait_raises"])
    history = c.get_workflow_history(iid)
    assert [e["kind"] for e in history].count("TaskFailed") == 0
    entries, total = c.queries.inbox(iid)
    assert [e["kind"] for e in entries] == ["TaskFailed"] and total == 1
    # The pool logs the failure once, though the failed attempt ran eagerly and its step was first
    # tried with the failure in hand (that try falls back to the delivery and the usual step).
    logged = stack.pool.log_path.read_text(errors="replace")
    assert logged.count(f"(instance '{iid}') could not be decided") == 1, stack.pool.log_tail()
