"""Instance queries for dashboards and scripts (``/api/...``), health and Prometheus metrics.

``GET /api/instances`` pages with ``offset``/``limit`` (newest first) and answers ``next_offset``
(``null`` on the last page), so a client can walk every instance without holding a cursor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from ..query import MAX_PAGE
from . import prometheus
from .app import ApiError, call, error_body
from .dapr import ErrorResponse, StartResponse, read_json

router = APIRouter()


class InstanceModel(BaseModel):
    instance_id: str
    name: str
    app_id: str
    runtime_status: str
    created_at: str | None
    last_updated_at: str | None
    completed_at: str | None
    parent_instance_id: str | None
    workflow_version: str | None = None
    rerun_of: str | None = Field(None, description="the instance this one reruns")
    input: Any = None
    output: Any = None
    custom_status: Any = None
    failure_details: dict[str, Any] | None = None


class InstancePage(BaseModel):
    items: list[InstanceModel]
    total: int = Field(description="instances matching the filters")
    offset: int
    limit: int
    next_offset: int | None = Field(description="offset of the next page, null on the last one")


class HistoryResponse(BaseModel):
    instance_id: str
    events: list[dict[str, Any]] = Field(description="history events, oldest first: kind, ts (ms) and fields")


class NameCounts(BaseModel):
    total: int
    by_status: dict[str, int]


class CountsResponse(BaseModel):
    total: int
    by_status: dict[str, int]
    by_name: dict[str, NameCounts] = Field(description="workflow names that have instances")


_ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse} for c in (400, 401, 404)}


@router.get("/api/instances", response_model=InstancePage, responses=_ERRORS, tags=["Instances"],
            summary="List instances, newest first, filtered by status, workflow name, parent and creation time")
async def list_instances(request: Request,
                         status: str | None = Query(None, description="RUNNING, COMPLETED, FAILED, ..."),
                         name: str | None = Query(None, description="workflow name"),
                         parent_instance_id: str | None = Query(None, description="only this instance's children"),
                         created_from: datetime | None = Query(None, description="ISO 8601, inclusive (UTC if naive)"),
                         created_to: datetime | None = Query(None, description="ISO 8601, inclusive (UTC if naive)"),
                         offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=MAX_PAGE),
                         fetch_payloads: bool = Query(False, description="include input, output and custom status")
                         ) -> Any:
    page = await call("ERR_LIST_WORKFLOWS", request.app.state.client.query_workflows, status=status, name=name,
                      parent_instance_id=parent_instance_id, created_from=created_from, created_to=created_to,
                      offset=offset, limit=limit, fetch_payloads=fetch_payloads)
    return page.to_dict()


class RerunRequest(BaseModel):
    from_step: int = Field(1, ge=1, description="the call (counted from 1) to run again; earlier results are reused")
    input: Any = Field(None, description="a new input (omit the field to keep the original's)")
    new_instance_id: str | None = Field(None, description="the new instance's id (default: a random one)")


class BatchRequest(BaseModel):
    status: str | None = None
    name: str | None = None
    error_type: str | None = Field(None, description="failed runs with this error type (short or qualified name)")
    id_prefix: str | None = None
    created_from: datetime | None = Field(None, description="ISO 8601, inclusive (UTC if naive)")
    created_to: datetime | None = Field(None, description="ISO 8601, inclusive (UTC if naive)")
    limit: int = Field(1000, ge=1, le=10_000)
    dry_run: bool = Field(False, description="only count the matching instances")


class BatchResponse(BaseModel):
    operation: str
    matched: int
    capped: bool = Field(description="more instances match than limit")
    done: list[str]
    skipped: dict[str, str] = Field(description="instance -> why the operation does not apply to it")
    failed: dict[str, str]
    new_ids: dict[str, str] = Field(description="rerun: instance -> the new instance")


# Declared before the per-instance routes: /api/instances/{instance_id}/... would take "batch" for an id.
@router.post("/api/instances/batch/{operation}", response_model=BatchResponse, responses=_ERRORS,
             tags=["Instances"], summary="Terminate, purge or rerun every instance the filters match")
async def batch(request: Request, operation: str) -> Any:
    body = await read_json(request, "the batch filters")
    try:
        spec = BatchRequest.model_validate(body if body is not None else {})
    except ValueError as exc:
        raise ApiError(400, "ERR_MALFORMED_REQUEST", f"bad batch filters: {exc}") from exc
    if not any(v is not None for v in (spec.status, spec.name, spec.error_type, spec.id_prefix,
                                       spec.created_from, spec.created_to)):
        raise ApiError(400, "ERR_MALFORMED_REQUEST", "give at least one filter: a batch never acts on every instance")
    return await call("ERR_BATCH_WORKFLOWS", request.app.state.client.batch_workflows, operation,
                      **spec.model_dump())


@router.post("/api/instances/{instance_id}/rerun", status_code=202, response_model=StartResponse,
             responses=_ERRORS | {409: {"model": ErrorResponse}}, tags=["Instances"],
             summary="Start a new instance from a finished one, from a step (the async request-reply pattern)")
async def rerun(request: Request, response: Response, instance_id: str) -> Any:
    body = await read_json(request, "the rerun request")
    try:
        spec = RerunRequest.model_validate(body if body is not None else {})
    except ValueError as exc:
        raise ApiError(400, "ERR_MALFORMED_REQUEST", f"bad rerun request: {exc}") from exc
    options: dict[str, Any] = {"from_step": spec.from_step, "new_instance_id": spec.new_instance_id}
    if isinstance(body, dict) and "input" in body:
        options["input"] = spec.input
    new_id = await call("ERR_RERUN_WORKFLOW", request.app.state.client.rerun_workflow, instance_id, **options)
    response.headers["Location"] = str(request.url_for("get_instance", instance_id=new_id))
    response.headers["Retry-After"] = "1"
    return {"instanceID": new_id}


@router.get("/api/instances/{instance_id}", response_model=InstanceModel, responses=_ERRORS, tags=["Instances"],
            name="get_instance", summary="One instance with its input, output, custom status and failure")
async def get_instance(request: Request, instance_id: str) -> Any:
    state = await call("ERR_GET_WORKFLOW", request.app.state.client.get_workflow_state, instance_id)
    if state is None:
        raise ApiError(404, "ERR_INSTANCE_ID_NOT_FOUND", f"no workflow instance with id {instance_id!r}")
    return state.to_dict()


@router.get("/api/instances/{instance_id}/history", response_model=HistoryResponse, responses=_ERRORS,
            tags=["Instances"], summary="An instance's history events, oldest first")
async def get_history(request: Request, instance_id: str) -> Any:
    events = await call("ERR_GET_WORKFLOW", request.app.state.client.get_workflow_history, instance_id)
    return {"instance_id": instance_id, "events": events}


@router.get("/api/counts", response_model=CountsResponse, responses=_ERRORS, tags=["Instances"],
            summary="Instances by status, and by workflow name and status")
async def counts(request: Request,
                 created_from: datetime | None = Query(None, description="ISO 8601, inclusive (UTC if naive)"),
                 created_to: datetime | None = Query(None, description="ISO 8601, inclusive (UTC if naive)")) -> Any:
    return await call("ERR_COUNT_WORKFLOWS", request.app.state.client.count_workflows,
                      created_from=created_from, created_to=created_to)


@router.get("/api/pools", responses=_ERRORS, tags=["Operations"],
            summary="The worker processes (app id, host, pid, registered names, claimed work, last heartbeat) "
                    "and, per app id whose pools register different names, what each lacks")
async def list_pools(request: Request, include_dead: bool = Query(False, description="also expired, unreaped ones"),
                     app: str | None = Query(None, description="only this app id's processes")) -> Any:
    """``{"items": [...], "mismatches": [...]}``, the same as the dashboard's ``/dashboard/api/pools``."""
    return await call("ERR_LIST_POOLS", request.app.state.client.list_pools, include_dead=include_dead, app=app)


@router.get("/healthz", tags=["Operations"], summary="200 when Redis answers, 503 otherwise (no token needed)")
async def healthz(request: Request) -> Any:
    try:
        await call("ERR_HEALTH", request.app.state.client.ping)
    except ApiError as exc:
        return JSONResponse(error_body(exc.code, exc.message), status_code=503)
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse, tags=["Operations"],
            summary="Prometheus metrics, aggregated over every worker process (see orchestrator.metrics)")
async def metrics_endpoint(request: Request) -> Any:
    client = request.app.state.client
    try:
        body = await call("ERR_METRICS", prometheus.render, client.recorded_metrics, client.backlog,
                          client.count_workflows, client.queue_lengths)
    except prometheus.MetricsUnavailable as exc:  # pragma: no cover - only without the extra
        raise ApiError(501, "ERR_METRICS_UNAVAILABLE", str(exc)) from exc
    return PlainTextResponse(body, media_type=prometheus.CONTENT_TYPE)


__all__ = ["router"]
