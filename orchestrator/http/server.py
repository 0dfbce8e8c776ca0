"""Serving the API with uvicorn, and the rule that keeps it private unless a token is set.

Bound to a loopback address, the API is reachable only from this machine and may run without a
token (a token, when set, is still enforced). Bound anywhere else it refuses to start without
``api_token``: an open workflow API lets anyone start, terminate and purge instances.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from ..core.errors import OrchestratorError
from ..settings import Settings

MIN_TOKEN_LENGTH = 16


class ExposureError(OrchestratorError, ValueError):
    """The API would be reachable from other machines without a (strong enough) token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: assume it resolves to a public interface


def check_exposure(host: str, token: str | None) -> None:
    """Raise :class:`ExposureError` when binding ``host`` without a usable token is unsafe."""
    if is_loopback(host):
        return
    if not token:
        raise ExposureError(
            f"refusing to serve on {host}: the API would be reachable from other machines without a token. "
            "Set api_token (environment ORCH_API_TOKEN, or the config file) and send "
            "'Authorization: Bearer <token>', or bind 127.0.0.1.")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ExposureError(f"api_token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
                            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")


def serve(settings: Settings, host: str, port: int, *, log_format: str = "text", app: Any = None) -> None:
    """Check exposure, then run uvicorn until SIGINT/SIGTERM (it shuts down gracefully)."""
    import uvicorn

    from .app import create_app

    check_exposure(host, settings.api_token)
    # The app's guards know the address it is served on (a loopback bind checks Host: http/browsers.py).
    app = app if app is not None else create_app(settings.replace(api_host=host))
    log_level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    # With JSON logs the root handler (orchestrator.logs) formats uvicorn's records too.
    uvicorn.run(app, host=host, port=port, log_config=None if log_format == "json" else uvicorn.config.LOGGING_CONFIG,
                log_level=log_level if log_level in ("debug", "info", "warning", "error", "critical") else "info",
                access_log=True, server_header=False)


__all__ = ["ExposureError", "MIN_TOKEN_LENGTH", "check_exposure", "is_loopback", "serve"]
