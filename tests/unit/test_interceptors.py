"""Dapr's interceptor chains: order, next-calling, rewriting, and the outbound chain inside replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchestrator.core.history import ExecutionStarted, TaskScheduled
from orchestrator.core.interceptors import (
    BaseClientInterceptor,
    BaseRuntimeInterceptor,
    BaseWorkflowOutboundInterceptor,
    CallActivityRequest,
    CallChildWorkflowRequest,
    ContinueAsNewRequest,
    ExecuteActivityRequest,
    ExecuteWorkflowRequest,
    Interceptors,
    ScheduleWorkflowRequest,
    check_interceptors,
    compose_client_chain,
    compose_runtime_chain,
    compose_workflow_outbound_chain,
)
from orchestrator.core.replay import replay
from orchestrator.core.retry import RetryPolicy


class Tagging(BaseClientInterceptor[Any]):
    def __init__(self, tag: str, seen: list[str]) -> None:
        self.tag, self.seen = tag, seen

    def schedule_new_workflow(self, input: ScheduleWorkflowRequest[Any], next: Any) -> Any:
        self.seen.append(f"enter {self.tag}")
        input.input = [*input.input, self.tag]
        result = next(input)
        self.seen.append(f"exit {self.tag}")
        return f"{result}+{self.tag}"


def test_the_first_interceptor_is_outermost_and_each_calls_next() -> None:
    seen: list[str] = []
    chain = compose_client_chain([Tagging("a", seen), Tagging("b", seen)],
                                 lambda req: (seen.append(f"terminal {req.input}"), "id")[1])
    out = chain(ScheduleWorkflowRequest("wf", [], None, None, None))
    assert seen == ["enter a", "enter b", "terminal ['a', 'b']", "exit b", "exit a"]
    assert out == "id+b+a"


def test_an_empty_chain_is_the_terminal_and_a_base_interceptor_passes_through() -> None:
    terminal = compose_runtime_chain([], lambda req: req.input * 2)
    assert terminal(ExecuteActivityRequest(None, 21)) == 42
    through = compose_runtime_chain([BaseRuntimeInterceptor()], lambda req: req.input * 2)
    assert through(ExecuteWorkflowRequest(None, 4)) == 8


def test_an_interceptor_that_does_not_call_next_short_circuits() -> None:
    class Refuse(BaseWorkflowOutboundInterceptor[Any, Any]):
        def call_activity(self, input: CallActivityRequest[Any], next: Any) -> Any:
            return CallActivityRequest("stub", None, None)

    calls: list[Any] = []
    chain = compose_workflow_outbound_chain([Refuse()], lambda req: calls.append(req) or req)
    assert chain(CallActivityRequest("real", 1, None)).activity_name == "stub"
    assert calls == []


def test_each_request_goes_to_the_method_of_its_kind() -> None:
    class Only(BaseWorkflowOutboundInterceptor[Any, Any]):
        def call_child_workflow(self, input: CallChildWorkflowRequest[Any], next: Any) -> Any:
            input.input = "child-rewritten"
            return next(input)

    chain = compose_workflow_outbound_chain([Only()], lambda req: req.input)
    assert chain(CallChildWorkflowRequest("c", "x", None)) == "child-rewritten"
    assert chain(CallActivityRequest("a", "x", None)) == "x"  # the base class passes activities on


def test_interceptor_lists_are_checked_by_kind() -> None:
    class Grpc:
        def intercept_unary_unary(self, *args: Any) -> None: ...

    with pytest.raises(TypeError, match="gRPC interceptor"):
        check_interceptors([Grpc()], "client", "interceptors")
    with pytest.raises(TypeError, match="has none of schedule_new_workflow"):
        check_interceptors([BaseRuntimeInterceptor()], "client", "interceptors")
    with pytest.raises(TypeError, match="must be a list"):
        check_interceptors(BaseClientInterceptor(), "client", "interceptors")
    assert check_interceptors(None, "runtime", "x") == []


class Tenant(BaseWorkflowOutboundInterceptor[Any, Any]):
    def call_activity(self, input: CallActivityRequest[Any], next: Any) -> Any:
        input.input = {**input.input, "tenant": "acme"}
        input.activity_name = f"{input.activity_name}_v2"
        input.retry_policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2)
        return next(input)


def order_workflow(ctx: Any, order: Any) -> Any:
    result = yield ctx.call_activity("charge", input={"id": order["id"]})
    return result


def test_outbound_interceptors_rewrite_what_a_workflow_records() -> None:
    step = replay(order_workflow, "i1", [], [ExecutionStarted(ts=0, name="wf", input={"id": 7})],
                  interceptors=Interceptors(outbound=[Tenant()]))
    [scheduled] = [a for a in step.actions if isinstance(a, TaskScheduled)]
    assert scheduled.name == "charge_v2" and scheduled.input == {"id": 7, "tenant": "acme"}


def test_runtime_interceptors_wrap_every_replay_and_may_rewrite_the_input() -> None:
    runs: list[tuple[bool, Any]] = []

    class Shape(BaseRuntimeInterceptor[Any, Any]):
        def execute_workflow(self, input: ExecuteWorkflowRequest[Any], next: Any) -> Any:
            runs.append((input.ctx.is_replaying, input.input))
            input.input = {"id": input.input["id"] + 1}
            return next(input)

    started = ExecutionStarted(ts=0, name="wf", input={"id": 1})
    chains = Interceptors(runtime=[Shape()])
    first = replay(order_workflow, "i1", [], [started], interceptors=chains)
    [scheduled] = [a for a in first.actions if isinstance(a, TaskScheduled)]
    assert scheduled.input == {"id": 2}
    replay(order_workflow, "i1", [started, scheduled], [], interceptors=chains)  # a replay runs it again
    assert len(runs) == 2 and runs[1][1] == {"id": 1}


def test_metadata_is_refused_rather_than_dropped() -> None:
    class Meta(BaseWorkflowOutboundInterceptor[Any, Any]):
        def call_activity(self, input: CallActivityRequest[Any], next: Any) -> Any:
            input.metadata = {"tenant": "acme"}
            return next(input)

    step = replay(order_workflow, "i1", [], [ExecutionStarted(ts=0, name="wf", input={"id": 1})],
                  interceptors=Interceptors(outbound=[Meta()]))
    assert step.completion is not None and "metadata is not carried" in step.completion.failure.message


def test_an_input_annotated_any_is_passed_as_it_is() -> None:
    step = replay(order_workflow, "i1", [], [ExecutionStarted(ts=0, name="wf", input={"id": 3})])
    assert step.completion is None and step.actions[0].input == {"id": 3}


def test_continue_as_new_goes_through_the_outbound_chain() -> None:
    class Carry(BaseWorkflowOutboundInterceptor[Any, Any]):
        def continue_as_new(self, input: ContinueAsNewRequest[Any], next: Any) -> Any:
            input.input = {**input.input, "tenant": "acme"}
            return next(input)

    def again(ctx: Any, n: Any) -> Any:
        ctx.continue_as_new({"n": n["n"] + 1})
        return None

    step = replay(again, "i1", [], [ExecutionStarted(ts=0, name="wf", input={"n": 1})],
                  interceptors=Interceptors(outbound=[Carry()]))
    assert step.completion is not None and step.completion.input == {"n": 2, "tenant": "acme"}
