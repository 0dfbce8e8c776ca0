"""Payloads: workflow and activity inputs/outputs are JSON-compatible values.

Checking at the call site (rather than when msgpack or json happens to choke later) turns a bad
value into an error that names the offending path, and keeps every payload readable by the HTTP API,
the CLI and the dashboard. Dataclasses are converted to dicts (``dataclasses.asdict``), which is the
documented converter for typed inputs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import PayloadError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024


def to_json_compatible(value: Any, what: str = "payload") -> Any:
    """Return ``value`` as plain JSON types (dataclasses become dicts, tuples lists) or raise."""
    return _convert(value, what)


def _convert(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise PayloadError(f"{path} is {value!r}, which JSON cannot represent")
        return value
    if isinstance(value, (list, tuple)):
        return [_convert(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(f"{path} has a key {key!r} of type {type(key).__name__}; JSON keys are strings")
            out[key] = _convert(item, f"{path}[{key!r}]")
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert(dataclasses.asdict(value), path)
    raise PayloadError(
        f"{path} is a {type(value).__module__}.{type(value).__qualname__}, which is not JSON-compatible; "
        "pass dicts, lists, strings, numbers, booleans, None or dataclasses"
    )
