"""The FastAPI application: Dapr's workflow routes, the dashboard's queries, health and metrics.

Guards that apply to every route (the dashboard's too) sit in one ASGI middleware: the token (when
``api_token`` is set; ``Authorization: Bearer <token>``, or HTTP Basic with the token as password so
a browser can open the dashboard) and the request-body limit (``max_payload_bytes``, checked against the
Content-Length header first and then against the bytes actually received, so a chunked or lying
client cannot stream more). ``/healthz`` and the OpenAPI documents stay public so load balancers and
humans can reach them; everything that reads or changes instances needs the token.

Errors answer with Dapr's error body, ``{"errorCode": "ERR_...", "message": "..."}``, where the
message names the problem (the unknown workflow, the JSON parse error and its position, the size and
the limit, the missing instance).

Mount point for the dashboard: if the package ``orchestrator.dashboard`` exists and defines
``mount(app, client)``, :func:`create_app` calls it, so the dashboard adds its routes (and static
files) to this same app, behind the same guards. Without it, ``/`` redirects to the API docs.
"""

from __future__ import annotations

import base64
import hmac
import importlib
import importlib.util
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ..client import StoreError, WorkflowClient
from ..core.errors import (
    IdempotencyKeyReusedError,
    InstanceAlreadyExistsError,
    InstanceFinishedError,
    InstanceNotFoundError,
    InstanceRunningError,
    OrchestratorError,
    PayloadError,
    PayloadTooLargeError,
    WorkflowNotRegisteredError,
)
from ..core.payload import parse_json
from ..settings import Settings, load_settings
from .browsers import allowed_hosts, forgery_refusal, host_refusal, is_json
from .server import is_loopback

log = logging.getLogger("orchestrator.http")
PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ApiError(Exception):
    """An error answered as ``{"errorCode", "message"}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class BodyTooLarge(Exception):
    def __init__(self, received: int, limit: int) -> None:
        super().__init__(f"request body is over {received - 1} bytes, over the limit of {limit} "
                         "(setting max_payload_bytes)")


def error_body(code: str, message: str) -> dict[str, str]:
    return {"errorCode": code, "message": message}


async def call(op_code: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a (blocking) client call in the thread pool and turn its errors into API errors.

    ``op_code`` is Dapr's code for the operation (``ERR_START_WORKFLOW``, ...), used for the errors
    that are specific to it; a missing instance is always ``ERR_INSTANCE_ID_NOT_FOUND`` (404)."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except InstanceNotFoundError as exc:
        raise ApiError(404, "ERR_INSTANCE_ID_NOT_FOUND", str(exc)) from exc
    except WorkflowNotRegisteredError as exc:
        raise ApiError(404, op_code, str(exc)) from exc
    except (InstanceFinishedError, InstanceRunningError, InstanceAlreadyExistsError) as exc:
        raise ApiError(409, op_code, str(exc)) from exc
    except PayloadTooLargeError as exc:
        raise ApiError(413, "ERR_PAYLOAD_TOO_LARGE", str(exc)) from exc
    except PayloadError as exc:  # the payload rules (core/payload.py): NaN, 64-bit integers, depth, text
        raise ApiError(400, "ERR_MALFORMED_REQUEST", str(exc)) from exc
    except IdempotencyKeyReusedError as exc:
        raise ApiError(422, "ERR_IDEMPOTENCY_KEY_REUSED", str(exc)) from exc
    except ValueError as exc:
        code = "ERR_INSTANCE_ID_INVALID" if "instance id" in str(exc) else "ERR_MALFORMED_REQUEST"
        raise ApiError(400, code, str(exc)) from exc
    except OrchestratorError as exc:  # any other refusal the client names (e.g. not purgeable yet)
        raise ApiError(409, op_code, str(exc)) from exc
    except StoreError as exc:
        raise ApiError(503, "ERR_STORE_UNAVAILABLE", f"the Redis store is unavailable: {exc}") from exc


class GuardMiddleware:
    """For every HTTP request (pure ASGI): the Host check of a loopback bind and the forgery check
    (http/browsers.py), the bearer token, the body-size limit, and the payload rules on JSON bodies."""

    def __init__(self, app: Any, token: str | None, max_body: int, *, loopback: bool = False,
                 allowed_hosts: frozenset[str] = frozenset()) -> None:
        self.app, self.token, self.max_body = app, token or None, max_body
        self.loopback, self.allowed_hosts = loopback, allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = host_refusal(headers.get("host"), self.allowed_hosts) if self.loopback else None
        if refusal is not None:
            await _reply(scope, receive, send, 421, "ERR_HOST_NOT_ALLOWED", refusal)
            return
        forged = forgery_refusal(scope.get("method", "GET"), headers)
        if forged is not None:
            await _reply(scope, receive, send, forged[0], "ERR_FORGEABLE_REQUEST", forged[1])
            return
        if self.token and scope.get("path") not in PUBLIC_PATHS and not self._authorized(headers):
            # Browsers (the dashboard) cannot send a bearer token: they get a Basic challenge and
            # the token as password works there; programs are told about the bearer scheme.
            browser = "text/html" in headers.get("accept", "")
            await _reply(scope, receive, send, 401, "ERR_UNAUTHORIZED",
                         "missing or wrong bearer token: send 'Authorization: Bearer <api_token>'",
                         {"WWW-Authenticate": 'Basic realm="orchestrator"' if browser else "Bearer"})
            return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(scope, receive, send, 400, "ERR_MALFORMED_REQUEST",
                             f"invalid Content-Length header {length!r}")
                return
            if int(length) > self.max_body:
                await _reply(scope, receive, send, 413, "ERR_PAYLOAD_TOO_LARGE",
                             f"request body is {length} bytes, over the limit of {self.max_body} "
                             "(setting max_payload_bytes)")
                return
        received = 0

        async def limited_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(received, self.max_body)
            return message

        if is_json(headers.get("content-type")) and scope.get("method", "GET") not in ("GET", "HEAD"):
            await self._checked_json(scope, limited_receive, send)
            return
        await self.app(scope, limited_receive, send)

    async def _checked_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a JSON body whole (it is within the limit) and hold it to the payload rules before any
        route parses it: a body nested 100,000 deep, with an integer beyond 64 bits or with NaN is a
        400 naming the problem, on every route (Dapr's, the API's, the dashboard's)."""
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except BodyTooLarge as exc:
            await _reply(scope, receive, send, 413, "ERR_PAYLOAD_TOO_LARGE", str(exc))
            return
        body = b"".join(chunks)
        if body.strip():
            try:
                parse_json(body, "the request body")
            except PayloadError as exc:
                await _reply(scope, receive, send, 400, "ERR_MALFORMED_REQUEST", str(exc))
                return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        """``Bearer <token>``, or ``Basic`` with the token as password (any user name)."""
        scheme, _, given = headers.get("authorization", "").partition(" ")
        assert self.token is not None
        scheme, given = scheme.lower(), given.strip()
        if scheme == "basic":
            try:
                given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        elif scheme != "bearer":
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())


async def _reply(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
    await JSONResponse(error_body(code, message), status_code=status, headers=headers)(scope, receive, send)


def create_app(settings: Settings | None = None, client: WorkflowClient | None = None) -> FastAPI:
    """The API app. ``settings`` default to :func:`load_settings`; ``client`` to one built from them."""
    settings = settings or (client.settings if client is not None else load_settings())
    client = (client or WorkflowClient(settings=settings)).strict()  # operators are told (client.strict)
    client.caller = "http"  # whom the API log names for calls made through this app
    app = FastAPI(
        title="orchestrator",
        version=_version(),
        summary="Durable workflows on Celery and Redis: Dapr's workflow HTTP API, plus instance queries.",
        openapi_tags=[
            {"name": "Dapr workflow API", "description": "Dapr's /v1.0/workflows routes: same URLs, codes and JSON."},
            {"name": "Instances", "description": "Listing, history and counts (for dashboards and scripts)."},
            {"name": "Operations", "description": "Health and Prometheus metrics."},
        ],
    )
    app.state.client = client
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(error_body("ERR_PAYLOAD_TOO_LARGE", str(exc)), status_code=413)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse(error_body("ERR_MALFORMED_REQUEST", problems or "invalid request"), status_code=400)

    from . import api, dapr, schedules

    app.include_router(dapr.router)
    app.include_router(api.router)
    app.include_router(schedules.router)
    app.add_middleware(GuardMiddleware, token=settings.api_token, max_body=settings.max_payload_bytes,
                       loopback=is_loopback(settings.api_host), allowed_hosts=allowed_hosts(settings.api_allowed_hosts))
    if not _mount_dashboard(app, client):
        @app.get("/", include_in_schema=False)
        def _root() -> RedirectResponse:
            return RedirectResponse("/docs")
    return app


def _mount_dashboard(app: FastAPI, client: WorkflowClient) -> bool:
    """Let ``orchestrator.dashboard`` (when installed) add its routes: ``mount(app, client)``."""
    if importlib.util.find_spec("orchestrator.dashboard") is None:
        return False
    dashboard = importlib.import_module("orchestrator.dashboard")
    mount = getattr(dashboard, "mount", None)
    if mount is None:
        return False
    mount(app, client)
    return True


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("orchestrator")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0"


__all__ = ["ApiError", "GuardMiddleware", "call", "create_app", "error_body"]
