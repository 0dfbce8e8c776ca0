"""The web dashboard: every run visible, its execution drawn, its history and data inspectable.

``create_dashboard(client)`` returns a FastAPI router serving the page at ``/dashboard`` and its JSON
API at ``/dashboard/api``; ``mount(app, client)`` adds it to an app (the HTTP API calls it) and points
``/`` at it. The page is plain HTML, CSS and JavaScript shipped in ``static/`` (no CDN, no build step).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import RedirectResponse

from .routes import ACTION_HEADER, create_dashboard


def mount(app: Any, client: Any, prefix: str = "/dashboard") -> None:
    """Serve the dashboard from ``app`` (a FastAPI app) at ``prefix``; ``/`` redirects to it."""
    app.include_router(create_dashboard(client, prefix=prefix))

    def home() -> RedirectResponse:
        return RedirectResponse(f"{prefix}/", status_code=307)

    app.add_api_route("/", home, include_in_schema=False)


__all__ = ["create_dashboard", "mount", "ACTION_HEADER"]
