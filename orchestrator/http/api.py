"""Instance queries for dashboards and scripts (``/api/...``), health and Prometheus metrics.

``GET /api/instances`` pages with ``offset``/``limit`` (newest first) and answers ``next_offset``
(``null`` on the last page), so a client can walk every instance without holding a cursor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from ..query import MAX_PAGE
from . import prometheus
from .app import ApiError, call, error_body
from .dapr import ErrorResponse

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
                         offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=MAX_PAGE)) -> Any:
    page = await call("ERR_LIST_WORKFLOWS", request.app.state.client.query_workflows, status=status, name=name,
                      parent_instance_id=parent_instance_id, created_from=created_from, created_to=created_to,
                      offset=offset, limit=limit)
    return page.to_dict()


@router.get("/api/instances/{instance_id}", response_model=InstanceModel, responses=_ERRORS, tags=["Instances"],
            summary="One instance with its input, output, custom status and failure")
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
