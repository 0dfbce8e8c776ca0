"""Dapr's workflow interceptors, where Dapr code imports them (``dapr.ext.workflow.interceptors``).

The definitions live in the pure core (``orchestrator/core/interceptors.py``), which says how each
kind is wired and what differs from Dapr (``metadata`` is not carried; docs/dapr-compat.md).
"""

from __future__ import annotations

from .core.interceptors import (
    ActivityExecutionInfo,
    BaseClientInterceptor,
    BaseRuntimeInterceptor,
    BaseWorkflowOutboundInterceptor,
    CallActivityRequest,
    CallChildWorkflowRequest,
    ClientInterceptor,
    ContinueAsNewRequest,
    ExecuteActivityRequest,
    ExecuteWorkflowRequest,
    RuntimeInterceptor,
    ScheduleWorkflowRequest,
    WorkflowExecutionInfo,
    WorkflowOutboundInterceptor,
    compose_client_chain,
    compose_runtime_chain,
    compose_workflow_outbound_chain,
)

__all__ = [
    "ActivityExecutionInfo", "BaseClientInterceptor", "BaseRuntimeInterceptor", "BaseWorkflowOutboundInterceptor",
    "CallActivityRequest", "CallChildWorkflowRequest", "ClientInterceptor", "ContinueAsNewRequest",
    "ExecuteActivityRequest",
    "ExecuteWorkflowRequest", "RuntimeInterceptor", "ScheduleWorkflowRequest", "WorkflowExecutionInfo",
    "WorkflowOutboundInterceptor", "compose_client_chain", "compose_runtime_chain", "compose_workflow_outbound_chain",
]
