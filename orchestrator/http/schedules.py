"""Durable schedules over HTTP (``/api/schedules``): the client's schedule calls (docs/schedules.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from ..core.errors import ScheduleExistsError, ScheduleNotFoundError
from .app import ApiError, call
from .dapr import ErrorResponse, read_json

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse} for c in (400, 401, 404, 409)}


class ScheduleRequest(BaseModel):
    schedule_id: str
    workflow: str
    cron: str | None = Field(None, description="cron expression (5 fields, or 6 with seconds first)")
    every_seconds: float | None = Field(None, description="fixed interval, instead of cron")
    input: Any = None
    timezone: str = "UTC"
    jitter_seconds: float = 0
    start_at: datetime | None = None
    end_at: datetime | None = None
    overlap: str = Field("skip", description="skip, buffer_one, allow_all, cancel_other or terminate_other")
    catchup_window_seconds: float = 60
    app_id: str | None = None
    note: str = ""
    paused: bool = False
    replace: bool = Field(False, description="replace the spec of an existing schedule of that id")


class BackfillRequest(BaseModel):
    start: datetime
    end: datetime


def _model(body: Any, model: type[BaseModel], what: str) -> Any:
    try:
        return model.model_validate(body if body is not None else {})
    except ValueError as exc:
        raise ApiError(400, "ERR_MALFORMED_REQUEST", f"bad {what}: {exc}") from exc


async def _schedule_call(op_code: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``call``, with a missing schedule answered 404 and a taken id 409."""
    def guarded() -> Any:
        try:
            return ("ok", fn(*args, **kwargs))
        except ScheduleNotFoundError as exc:
            return ("missing", str(exc))
        except ScheduleExistsError as exc:
            return ("exists", str(exc))
    kind, value = await call(op_code, guarded)
    if kind == "missing":
        raise ApiError(404, "ERR_SCHEDULE_NOT_FOUND", value)
    if kind == "exists":
        raise ApiError(409, "ERR_SCHEDULE_EXISTS", value)
    return value


@router.post("/api/schedules", status_code=201, responses=_ERRORS, tags=["Schedules"],
             summary="Create a durable schedule (cron or interval)")
async def create_schedule(request: Request, response: Response) -> Any:
    spec = _model(await read_json(request, "the schedule"), ScheduleRequest, "schedule")
    client = request.app.state.client
    info = await _schedule_call(
        "ERR_CREATE_SCHEDULE", client.create_schedule, spec.schedule_id, spec.workflow, cron=spec.cron,
        every=spec.every_seconds, input=spec.input, timezone=spec.timezone, jitter=spec.jitter_seconds,
        start_at=spec.start_at, end_at=spec.end_at, overlap=spec.overlap, catchup_window=spec.catchup_window_seconds,
        app_id=spec.app_id, note=spec.note, paused=spec.paused, replace=spec.replace)
    response.headers["Location"] = f"/api/schedules/{spec.schedule_id}"
    return info.to_dict()


@router.get("/api/schedules", responses=_ERRORS, tags=["Schedules"], summary="Schedules with next and last runs")
async def list_schedules(request: Request, offset: int = Query(0, ge=0),
                         limit: int = Query(100, ge=1, le=1000)) -> Any:
    items = await _schedule_call("ERR_LIST_SCHEDULES", request.app.state.client.list_schedules, offset=offset,
                                 limit=limit)
    return {"items": [i.to_dict() for i in items]}


@router.get("/api/flow", tags=["Schedules"],
            summary="Flow control: every limited workflow type and activity, running and waiting by key")
async def flow_status(request: Request) -> Any:
    return {"scopes": await call("ERR_FLOW_STATUS", request.app.state.client.flow_control_status)}


@router.get("/api/schedules/{schedule_id}", responses=_ERRORS, tags=["Schedules"], summary="One schedule")
async def get_schedule(request: Request, schedule_id: str) -> Any:
    return (await _schedule_call("ERR_GET_SCHEDULE", request.app.state.client.get_schedule, schedule_id)).to_dict()


@router.delete("/api/schedules/{schedule_id}", status_code=204, responses=_ERRORS, tags=["Schedules"],
               summary="Delete a schedule (its runs stay)")
async def delete_schedule(request: Request, schedule_id: str) -> Response:
    await _schedule_call("ERR_DELETE_SCHEDULE", request.app.state.client.delete_schedule, schedule_id)
    return Response(status_code=204)


@router.post("/api/schedules/{schedule_id}/pause", responses=_ERRORS, tags=["Schedules"], summary="Pause")
async def pause_schedule(request: Request, schedule_id: str) -> Any:
    body = await read_json(request, "the pause request")
    note = body.get("note") if isinstance(body, dict) else None
    if note is not None and not isinstance(note, str):
        raise ApiError(400, "ERR_MALFORMED_REQUEST", "note must be text")
    return (await _schedule_call("ERR_PAUSE_SCHEDULE", request.app.state.client.pause_schedule, schedule_id,
                                 note=note)).to_dict()


@router.post("/api/schedules/{schedule_id}/resume", responses=_ERRORS, tags=["Schedules"],
             summary="Resume from now (times that passed while paused do not run)")
async def resume_schedule(request: Request, schedule_id: str) -> Any:
    return (await _schedule_call("ERR_RESUME_SCHEDULE", request.app.state.client.resume_schedule,
                                 schedule_id)).to_dict()


@router.post("/api/schedules/{schedule_id}/trigger", responses=_ERRORS, tags=["Schedules"],
             summary="Start a run now; instance_id null when the overlap policy skips it")
async def trigger_schedule(request: Request, schedule_id: str) -> Any:
    body = await read_json(request, "the trigger request")
    overlap = body.get("overlap") if isinstance(body, dict) else None
    started = await _schedule_call("ERR_TRIGGER_SCHEDULE", request.app.state.client.trigger_schedule, schedule_id,
                                   overlap=overlap)
    return {"schedule_id": schedule_id, "instance_id": started}


@router.post("/api/schedules/{schedule_id}/backfill", responses=_ERRORS, tags=["Schedules"],
             summary="Run every nominal time in [start, end] that has not run yet")
async def backfill_schedule(request: Request, schedule_id: str) -> Any:
    spec = _model(await read_json(request, "the backfill request"), BackfillRequest, "backfill request")
    return await _schedule_call("ERR_BACKFILL_SCHEDULE", request.app.state.client.backfill_schedule, schedule_id,
                                spec.start, spec.end)


__all__ = ["router"]
