"""The dashboard's HTTP surface: its page, its static files and its JSON endpoints.

Reads go through ``client.queries`` (the store's read-only queries); actions call the ``WorkflowClient`` inside
``apilog.as_caller("dashboard")`` so the API log names the dashboard as their caller. Actions only
accept JSON requests that carry the ``X-Orchestrator-Dashboard`` header: a cross-site form cannot
set it, so another web page open in the same browser cannot terminate a run through the dashboard.
Handlers are plain ``def``: FastAPI runs them in its thread pool, fine for redis-py's blocking calls.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from .. import apilog
from ..client import StoreError, StoreQueries
from ..core.errors import InstanceNotFoundError, OrchestratorError, PayloadError
from .execution import build_execution
from .present import call_names, event_full, event_view, instance_payload, instance_view, step_numbers
from .schedules import schedule_routes

ACTION_HEADER = "x-orchestrator-dashboard"
STATIC = resources.files(__package__) / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
MAX_WINDOW_S = 90 * 24 * 3600


def _now_ms() -> int:
    return int(time.time() * 1000)


def _static_files() -> dict[str, Any]:
    """name -> file, for every file shipped under static/ (the only paths ever served)."""
    found: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif any(child.name.endswith(ext) for ext in MEDIA_TYPES):
                found[f"{prefix}{child.name}"] = child
    walk(STATIC, "")
    return found


def _not_found(instance_id: str) -> HTTPException:
    return HTTPException(404, f"no workflow instance with id {instance_id!r}")


def create_dashboard(client: Any, *, prefix: str = "/dashboard",
                     dependencies: Sequence[Callable[..., Any]] = ()) -> APIRouter:
    """A router serving the dashboard UI at ``prefix`` and its JSON API at ``prefix/api``.

    ``client`` is a ``WorkflowClient``; ``dependencies`` (e.g. a token check) guard every route.
    Mount it with ``app.include_router(create_dashboard(client))``."""
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must start with '/' and not end with it, got {prefix!r}")
    q = client.queries
    files = _static_files()
    router = APIRouter(prefix=prefix, dependencies=[Depends(d) for d in dependencies], tags=["dashboard"])

    _page_routes(router, prefix, files)
    _list_routes(router, q)
    _run_routes(router, q)
    _history_routes(router, q, client)
    _operation_routes(router, client)
    _action_routes(router, client)
    _apilog_routes(router, client)
    schedule_routes(router, client, _act)

    @router.get("/api/pools")
    def pools(include_dead: bool = False, app: str | None = None) -> dict[str, Any]:
        """The worker processes and their mismatches, through the client: the same JSON as ``GET /api/pools``."""
        return client.list_pools(include_dead=include_dead, app=app)

    return router


def _page_routes(router: APIRouter, prefix: str, files: dict[str, Any]) -> None:
    """The page and its static files."""
    @router.get("", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{prefix}/", status_code=307)

    @router.get("/", include_in_schema=False)
    def index() -> Response:
        return _file(files, "index.html")

    @router.get("/static/{path:path}", include_in_schema=False)
    def static(path: str) -> Response:
        if path not in files:
            raise HTTPException(404, f"no such dashboard file {path!r}")
        return _file(files, path)


def _list_routes(router: APIRouter, q: StoreQueries) -> None:
    """Overview, workflow names and the runs list."""
    @router.get("/api/overview")
    def overview(window: int = Query(86400, ge=60, le=MAX_WINDOW_S, description="seconds"),
                 buckets: int = Query(24, ge=1, le=200)) -> dict[str, Any]:
        with _bad_request():
            return {"counts": q.status_totals(),
                    "stats": q.stats(now=_now_ms(), window_ms=window * 1000, buckets=buckets)}

    @router.get("/api/workflows")
    def workflows() -> dict[str, Any]:
        return {"names": q.workflow_names()}

    @router.get("/api/runs")
    def runs(status: str | None = None, name: str | None = None, prefix: str | None = Query(None, alias="id"),
             error: str | None = Query(None, description="error type of failed runs (short or qualified name)"),
             since: int | None = None, until: int | None = None,
             offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        with _bad_request():
            return q.list_runs(status=status or None, name=name or None, since=since, until=until,
                               prefix=prefix or None, error_type=error or None, offset=offset, limit=limit)


def _run_routes(router: APIRouter, q: StoreQueries) -> None:
    """One run: its state, history, execution model."""
    @router.get("/api/runs/{instance_id}")
    def run(instance_id: str) -> dict[str, Any]:
        meta = q.meta(instance_id)
        if meta is None:
            raise _not_found(instance_id)
        children, child_count = q.children(instance_id)
        children.sort(key=lambda c: (c.get("created") or 0, c["instance_id"]))
        inbox, inbox_count = q.inbox(instance_id)
        parents = q.summaries([meta.parent]) if meta.parent else []
        waiting = None if meta.is_terminal else q.waiting_for(instance_id)
        return {**instance_view(meta), "children": children, "child_count": child_count,
                "parent_summary": parents[0] if parents else None, "inbox": inbox, "inbox_count": inbox_count,
                "waiting_for": waiting}

    @router.get("/api/runs/{instance_id}/version")
    def version(instance_id: str) -> dict[str, Any]:
        found = q.version(instance_id)
        if found is None:
            raise _not_found(instance_id)
        return {"version": found[0], "state": found[1]}

    @router.get("/api/runs/{instance_id}/payload/{field}")
    def payload(instance_id: str, field: str) -> dict[str, Any]:
        meta = q.meta(instance_id)
        if meta is None:
            raise _not_found(instance_id)
        with _bad_request():
            return {"field": field, "value": instance_payload(meta, field)}


def _history_routes(router: APIRouter, q: StoreQueries, client: Any) -> None:
    """One run's history (pages, download, one event) and its execution model."""
    @router.get("/api/runs/{instance_id}/history")
    def history(instance_id: str, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000),
                kind: str | None = None) -> Response:
        events = _history(q, instance_id)
        steps = step_numbers(events)
        names = call_names(events)
        indexed = [(i, e) for i, e in enumerate(events) if not kind or e.kind == kind]
        page = indexed[offset:offset + limit]
        return _json({"total": len(indexed), "offset": offset, "limit": limit,
                      "events": [event_view(i, steps[i], e, names) for i, e in page]})

    @router.get("/api/runs/{instance_id}/history.json")
    def download(instance_id: str) -> Response:
        meta = q.meta(instance_id)
        if meta is None:
            raise _not_found(instance_id)
        events = q.history(instance_id)
        body = {"instance_id": instance_id, "name": meta.name, "status": meta.status,
                "generation": meta.generation, "events": [event_full(i, e) for i, e in enumerate(events)]}
        filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in instance_id)
        return _json(body, headers={"Content-Disposition": f'attachment; filename="history-{filename}.json"'})

    @router.get("/api/runs/{instance_id}/history/{index}")
    def event(instance_id: str, index: int) -> dict[str, Any]:
        events = _history(q, instance_id)
        if not 0 <= index < len(events):
            raise HTTPException(404, f"instance {instance_id!r} has {len(events)} history events; no index {index}")
        return event_full(index, events[index])

    @router.get("/api/runs/{instance_id}/execution")
    def execution(instance_id: str) -> Response:
        meta = q.meta(instance_id)
        if meta is None:
            raise _not_found(instance_id)
        progress = {} if meta.is_terminal else _progress(client, instance_id)
        model = build_execution(q.history(instance_id), now=_now_ms(), status=meta.status, progress=progress)
        model["version"] = meta.version
        return _json(model)


def _act(request: Request, what: Callable[[], Any]) -> dict[str, Any]:
    """Run a dashboard action through the client; its refusals become HTTP errors."""
    if request.headers.get(ACTION_HEADER) != "1":
        raise HTTPException(403, f"dashboard actions need the {ACTION_HEADER} header (sent by the dashboard page)")
    try:
        with apilog.as_caller("dashboard"):
            result = what()
    except InstanceNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except (ValueError, TypeError, PayloadError) as exc:
        raise HTTPException(400, str(exc)) from None
    except OrchestratorError as exc:  # finished / still running / any other refusal the client names
        raise HTTPException(409, str(exc)) from None
    except StoreError as exc:
        raise HTTPException(503, f"the Redis store is unavailable: {exc}") from None
    return {"ok": True, "result": result}


def _operation_routes(router: APIRouter, client: Any) -> None:
    """Start a run, rerun one from a step, act on every run a filter matches: through the client.
    Declared before the per-run actions, whose /api/runs/{instance_id}/... would take 'batch' for an id."""
    @router.post("/api/start")
    def start(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Start a run: ``{name, input?, instance_id?, reuse_id_policy?, app_id?}``."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HTTPException(400, "the run needs a workflow 'name'")
        return _act(request, lambda: client.schedule_new_workflow(
            name.strip(), input=body.get("input"), instance_id=body.get("instance_id") or None,
            reuse_id_policy=body.get("reuse_id_policy") or None, app_id=body.get("app_id") or None))

    @router.post("/api/runs/batch/{operation}")
    def batch(operation: str, request: Request, body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        """Terminate, purge or rerun every run the runs list's filters match (``dry_run``: count them)."""
        since, until = body.get("since"), body.get("until")
        return _act(request, lambda: client.batch_workflows(
            operation, status=body.get("status") or None, name=body.get("name") or None,
            error_type=body.get("error_type") or None, id_prefix=body.get("id_prefix") or None,
            created_from=_moment(since), created_to=_moment(until), dry_run=bool(body.get("dry_run"))))

    @router.post("/api/runs/{instance_id}/rerun")
    def rerun(instance_id: str, request: Request, body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        step = body.get("from_step", 1)
        if isinstance(step, bool) or not isinstance(step, int):
            raise HTTPException(400, f"from_step must be a whole number from 1, got {step!r}")
        options: dict[str, Any] = {"from_step": step, "new_instance_id": body.get("new_instance_id") or None}
        if "input" in body:
            options["input"] = body["input"]
        return _act(request, lambda: client.rerun_workflow(instance_id, **options))


def _action_routes(router: APIRouter, client: Any) -> None:
    """Terminate, suspend, resume, purge, raise: through the client, logged as the dashboard's."""
    @router.post("/api/runs/{instance_id}/terminate")
    def terminate(
        instance_id: str, request: Request, body: dict[str, Any] = Body(default_factory=dict)
    ) -> dict[str, Any]:
        return _act(request, lambda: client.terminate_workflow(instance_id, output=body.get("output"),
                                                              recursive=bool(body.get("recursive", True))))

    @router.post("/api/runs/{instance_id}/suspend")
    def suspend(instance_id: str, request: Request) -> dict[str, Any]:
        return _act(request, lambda: client.pause_workflow(instance_id))

    @router.post("/api/runs/{instance_id}/resume")
    def resume(instance_id: str, request: Request) -> dict[str, Any]:
        return _act(request, lambda: client.resume_workflow(instance_id))

    @router.post("/api/runs/{instance_id}/purge")
    def purge(instance_id: str, request: Request) -> dict[str, Any]:
        return _act(request, lambda: client.purge_workflow(instance_id))

    @router.post("/api/runs/{instance_id}/raise")
    def raise_event(instance_id: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HTTPException(400, "the event needs a non-empty 'name'")
        return _act(request, lambda: client.raise_workflow_event(instance_id, name.strip(), data=body.get("data")))


def _apilog_routes(router: APIRouter, client: Any) -> None:
    """The API log."""
    @router.get("/api/apilog")
    def api_log(after: str | None = None, before: str | None = None,
                limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        for label, value in (("after", after), ("before", before)):
            if value is not None and not _is_stream_id(value):
                raise HTTPException(400, f"{label} must be a stream id like 1700000000000-0, got {value!r}")
        return {"entries": client.api_log(after=after, before=before,
                                       limit=limit)}



def _moment(ms: Any) -> datetime | None:
    if ms is None:
        return None
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise ValueError(f"a time must be milliseconds since the epoch, got {ms!r}")
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _progress(client: Any, instance_id: str) -> dict[int, dict[str, Any]]:
    try:
        return dict(client.get_call_progress(instance_id))
    except InstanceNotFoundError:
        return {}


def _json(body: Any, headers: dict[str, str] | None = None) -> Response:
    """Large JSON answers (histories, execution models) serialized directly, skipping FastAPI's
    per-value encoder, which costs more than the query itself for thousands of events."""
    text = json.dumps(body, ensure_ascii=False, default=str, separators=(",", ":"))
    return Response(text, media_type="application/json", headers=headers)


@contextlib.contextmanager
def _bad_request() -> Iterator[None]:
    try:
        yield
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def _is_stream_id(value: str) -> bool:
    ms, _, seq = value.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())


def _history(q: StoreQueries, instance_id: str) -> list[Any]:
    if q.meta(instance_id) is None:
        raise _not_found(instance_id)
    return q.history(instance_id)


def _file(files: dict[str, Any], name: str) -> Response:
    node = files[name]
    ext = "." + name.rsplit(".", 1)[-1]
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if name.endswith(".html"):
        # The page loads only its own files: no inline script, no third-party origin.
        headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                              "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
    return Response(node.read_bytes(), media_type=MEDIA_TYPES[ext], headers=headers)


__all__ = ["create_dashboard", "ACTION_HEADER"]
