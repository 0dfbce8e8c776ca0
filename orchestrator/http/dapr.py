"""Dapr's workflow HTTP API (``/v1.0/workflows/...``): the same URLs, status codes and JSON fields.

A client written against a Dapr sidecar works against this server by changing the base URL. Start
answers ``202 Accepted`` with ``{"instanceID": ...}`` plus, for the async request-reply pattern, a
``Location`` header with the status URL and ``Retry-After: 1``; the client polls that URL until
``runtimeStatus`` is final. Raise event, terminate, pause, resume and purge answer ``202`` with an
empty body, as Dapr does. Where Dapr answers 500 for a refusal this server can name (unknown
instance 404, finished instance 409, unknown workflow 404, bad JSON 400, oversized body 413), it
answers the 4xx with Dapr's error body and a message naming the problem.

The component segment is ``dapr`` in Dapr; this server accepts ``dapr`` and ``orchestrator``.
Request bodies (workflow input, event data, terminate output) are JSON; an empty body is ``null``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from ..core.errors import PayloadError
from ..core.payload import parse_json
from ..state import WorkflowState
from .app import ApiError, call

COMPONENTS = ("dapr", "orchestrator")
router = APIRouter(prefix="/v1.0/workflows", tags=["Dapr workflow API"])
_JSON_BODY: dict[str, Any] = {"requestBody": {"required": False, "content": {"application/json": {"schema": {}}}}}


class StartResponse(BaseModel):
    instanceID: str = Field(description="The id of the started instance.")


class WorkflowResponse(BaseModel):
    instanceID: str
    workflowName: str
    createdAt: str | None = Field(description="RFC 3339, UTC")
    lastUpdatedAt: str | None = Field(description="RFC 3339, UTC")
    runtimeStatus: str = Field(description="RUNNING, COMPLETED, FAILED, TERMINATED, PENDING or SUSPENDED")
    properties: dict[str, str] = Field(description=(
        "dapr.workflow.input / .output / .custom_status (JSON text) and, for a failed instance, "
        "dapr.workflow.failure.error_type / .error_message / .stack_trace"))


class ErrorResponse(BaseModel):
    errorCode: str
    message: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse} for code in codes}


def _component(component: str) -> None:
    if component not in COMPONENTS:
        raise ApiError(400, "ERR_WORKFLOW_COMPONENT_NOT_FOUND",
                       f"unknown workflow component {component!r}; use one of {', '.join(COMPONENTS)}")


async def read_json(request: Request, what: str) -> Any:
    """The request body parsed as JSON (``None`` when empty) under the payload rules (core/payload.py);
    400 naming the problem otherwise (the parse error and its position, NaN, a 65-bit integer, depth)."""
    body = await request.body()
    if not body.strip():
        return None
    try:
        return parse_json(body, what)
    except PayloadError as exc:
        raise ApiError(400, "ERR_MALFORMED_REQUEST", str(exc)) from exc


def _iso(dt: Any) -> str | None:
    """ISO 8601 with ``Z`` (the client's times are naive UTC, as Dapr's SDK)."""
    return dt.replace(tzinfo=None).isoformat() + "Z" if dt is not None else None


def dapr_state(state: WorkflowState) -> dict[str, Any]:
    """An instance in Dapr's GetWorkflow shape (payloads as JSON text in ``properties``)."""
    props = {"dapr.workflow.custom_status": state.serialized_custom_status or ""}
    if state.serialized_input is not None:
        props["dapr.workflow.input"] = state.serialized_input
    failure = state.failure_details
    if failure is not None:
        props["dapr.workflow.failure.error_type"] = failure.error_type
        props["dapr.workflow.failure.error_message"] = failure.message
        if failure.stack_trace:
            props["dapr.workflow.failure.stack_trace"] = failure.stack_trace
    elif state.serialized_output is not None:
        props["dapr.workflow.output"] = state.serialized_output
    return {
        "instanceID": state.instance_id,
        "workflowName": state.name,
        "createdAt": _iso(state.created_at),
        "lastUpdatedAt": _iso(state.last_updated_at),
        "runtimeStatus": state.runtime_status.name,
        "properties": props,
    }


@router.post("/{component}/{workflow_name}/start", status_code=202, response_model=StartResponse,
             responses=_errors(400, 401, 404, 409, 413), openapi_extra=_JSON_BODY,
             summary="Start a workflow instance (the body is its JSON input)")
async def start_workflow(request: Request, response: Response, component: str, workflow_name: str,
                         instanceID: str | None = Query(None, description="Optional id for the new instance"),
                         reuseIdPolicy: str | None = Query(None, description=(
                             "Our extension: 'replace' replaces a finished instance with that id (default 'error')")),
                         appId: str | None = Query(None, description=(
                             "Our extension: the app whose pool runs it (default: the app serving the workflow)"))
                         ) -> Any:
    _component(component)
    payload = await read_json(request, "the workflow input")
    client = request.app.state.client
    instance_id = await call("ERR_START_WORKFLOW", client.schedule_new_workflow, workflow_name,
                             input=payload, instance_id=instanceID, reuse_id_policy=reuseIdPolicy, app_id=appId)
    response.headers["Location"] = str(request.url_for("get_workflow", component=component, instance_id=instance_id))
    response.headers["Retry-After"] = "1"
    return {"instanceID": instance_id}


@router.get("/{component}/{instance_id}", response_model=WorkflowResponse, name="get_workflow",
            responses=_errors(400, 401, 404), summary="Get an instance's status, input, output and failure")
async def get_workflow(request: Request, component: str, instance_id: str) -> Any:
    _component(component)
    state = await call("ERR_GET_WORKFLOW", request.app.state.client.get_workflow_state, instance_id)
    if state is None:
        raise ApiError(404, "ERR_INSTANCE_ID_NOT_FOUND", f"no workflow instance with id {instance_id!r}")
    return dapr_state(state)


@router.post("/{component}/{instance_id}/raiseEvent/{event_name}", status_code=202,
             responses=_errors(400, 401, 404, 409, 413), openapi_extra=_JSON_BODY,
             summary="Deliver an external event (the body is its JSON data)")
async def raise_event(request: Request, component: str, instance_id: str, event_name: str,
                      idempotency_key: str | None = Header(None, alias="Idempotency-Key", description=(
                          "Our extension: a second raise with a key this instance has received does "
                          "nothing (and answers 202), so a client may retry safely."))) -> Response:
    _component(component)
    data = await read_json(request, f"the data of event {event_name!r}")
    await call("ERR_RAISE_EVENT_WORKFLOW", request.app.state.client.raise_workflow_event, instance_id,
               event_name, data=data, idempotency_key=idempotency_key)
    return Response(status_code=202)


@router.post("/{component}/{instance_id}/terminate", status_code=202, responses=_errors(400, 401, 404, 409, 413),
             openapi_extra=_JSON_BODY, summary="Terminate an instance and its children (optional body: output)")
async def terminate(request: Request, component: str, instance_id: str) -> Response:
    _component(component)
    output = await read_json(request, "the terminate output")
    await call("ERR_TERMINATE_WORKFLOW", request.app.state.client.terminate_workflow, instance_id, output=output)
    return Response(status_code=202)


@router.post("/{component}/{instance_id}/pause", status_code=202, responses=_errors(400, 401, 404, 409),
             summary="Suspend an instance: it keeps receiving events but runs no step until resumed")
async def pause(request: Request, component: str, instance_id: str) -> Response:
    _component(component)
    await call("ERR_PAUSE_WORKFLOW", request.app.state.client.pause_workflow, instance_id)
    return Response(status_code=202)


@router.post("/{component}/{instance_id}/resume", status_code=202, responses=_errors(400, 401, 404, 409),
             summary="Resume a suspended instance")
async def resume(request: Request, component: str, instance_id: str) -> Response:
    _component(component)
    await call("ERR_RESUME_WORKFLOW", request.app.state.client.resume_workflow, instance_id)
    return Response(status_code=202)


@router.post("/{component}/{instance_id}/purge", status_code=202, responses=_errors(400, 401, 404, 409),
             summary="Delete a finished instance's state and history (and its children's)")
async def purge(request: Request, component: str, instance_id: str) -> Response:
    _component(component)
    await call("ERR_PURGE_WORKFLOW", request.app.state.client.purge_workflow, instance_id)
    return Response(status_code=202)


__all__ = ["COMPONENTS", "dapr_state", "read_json", "router"]
