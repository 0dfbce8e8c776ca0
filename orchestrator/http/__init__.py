"""The HTTP API: Dapr's workflow routes, instance queries, health and Prometheus metrics.

Built with FastAPI (served by uvicorn): request parsing and an OpenAPI schema (``/openapi.json``,
browsable at ``/docs``) come from the route signatures, so the published schema cannot drift from
the code. Install with the ``http`` extra. Run it with ``orchestrator serve`` (or ``orchestrator dev``);
embed it in another ASGI app with :func:`create_app`.
"""

from .app import create_app

__all__ = ["create_app"]
