"""The program: the command line with the HTTP API plugged in.

The edges (``cli``, ``http``, ``dashboard``) do not import each other; ``orchestrator serve`` and
``orchestrator dev`` still run the HTTP API because this module, the one composition point above
them (named as such in the import contracts, pyproject.toml), hands the command line the server.
The ``orchestrator`` console script and ``python -m orchestrator`` start here.
"""

from __future__ import annotations

from .cli import main
from .cli.stack import ApiServer, use_api_server
from .http.server import ExposureError, check_exposure, serve

use_api_server(ApiServer(serve=serve, check_exposure=check_exposure, exposure_error=ExposureError))

__all__ = ["main"]
