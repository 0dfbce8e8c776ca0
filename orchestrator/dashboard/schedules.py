"""The dashboard's schedules page: every schedule with its next and last runs; pause, resume, trigger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from ..core.errors import ScheduleNotFoundError


def schedule_routes(router: APIRouter, client: Any, act: Any) -> None:
    """Reads through ``client``; actions through ``act`` (routes._act: the header check, the API log)."""
    @router.get("/api/schedules")
    def schedules() -> dict[str, Any]:
        return {"items": [i.to_dict() for i in client.list_schedules(limit=1000)]}

    @router.get("/api/flow")
    def flow() -> dict[str, Any]:
        return {"scopes": client.flow_control_status()}

    @router.get("/api/schedules/{schedule_id}")
    def schedule(schedule_id: str) -> dict[str, Any]:
        try:
            return dict(client.get_schedule(schedule_id).to_dict())
        except ScheduleNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    def guarded(request: Request, what: Any) -> dict[str, Any]:
        return dict(act(request, what))

    @router.post("/api/schedules/{schedule_id}/pause")
    def pause(schedule_id: str, request: Request) -> dict[str, Any]:
        return guarded(request, lambda: _found(lambda: client.pause_schedule(schedule_id).to_dict()))

    @router.post("/api/schedules/{schedule_id}/resume")
    def resume(schedule_id: str, request: Request) -> dict[str, Any]:
        return guarded(request, lambda: _found(lambda: client.resume_schedule(schedule_id).to_dict()))

    @router.post("/api/schedules/{schedule_id}/trigger")
    def trigger(schedule_id: str, request: Request) -> dict[str, Any]:
        return guarded(request, lambda: _found(lambda: client.trigger_schedule(schedule_id)))


def _found(fn: Any) -> Any:
    try:
        return fn()
    except ScheduleNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


__all__ = ["schedule_routes"]
