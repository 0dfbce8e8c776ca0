"""Payloads: workflow and activity inputs, outputs, event data, custom status. The rules, in one place.

A payload is a JSON-compatible value that the store can hold and every edge (HTTP API, CLI,
dashboard) can show. The same rules apply at every boundary a value crosses (the client, workflow
code's calls, an activity's result, the HTTP API and the CLI, which parse JSON with ``parse_json``),
so a bad value is refused where it enters, with an error naming its path, instead of failing later
where msgpack or a JSON parser happens to choke:

* types: ``None``, ``bool``, ``int``, ``float``, ``str``, lists and dicts with string keys (tuples
  become lists; dataclasses become dicts, ``dataclasses.asdict``: the documented converter);
* integers within 64 bits (``-2**63`` .. ``2**64 - 1``: msgpack's range);
* floats finite (no NaN, no infinities: JSON has no spelling for them);
* strings (and keys) valid Unicode text: a lone surrogate cannot be stored as UTF-8;
* nesting at most ``MAX_DEPTH`` (100) levels of lists and dicts (protobuf's default limit; deep
  enough for real documents, far from the recursion limits of the parsers behind every edge);
* size: at most ``max_payload_bytes`` packed (checked by ``codec.check_payload``, which knows the
  bytes; the error is ``PayloadTooLargeError``).

Every refusal is a ``PayloadError`` (a ``TypeError``) whose message starts with what the value is
(``input of activity 'charge'['items'][3]``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .errors import PayloadError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_DEPTH = 100
INT_MIN, INT_MAX = -(2**63), 2**64 - 1


class _Invalid(Exception):
    """Raised inside the walk; the frames it unwinds add their path segments (built only on error)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


def to_json_compatible(value: Any, what: str = "payload") -> Any:
    """``value`` as plain JSON types (dataclasses become dicts, tuples lists), checked against every
    rule above except size; ``PayloadError`` naming the offending path otherwise."""
    try:
        return _convert(value, 0)
    except _Invalid as bad:
        raise PayloadError(f"{what}{_render(bad.path)} {bad.problem}") from None


def _render(path: list[str]) -> str:
    """The path to the offending value (collected innermost first); a very deep one is shortened."""
    segments = path[::-1]
    if len(segments) > 12:
        return "".join(segments[:4]) + f"...({len(segments) - 6} more levels)..." + "".join(segments[-2:])
    return "".join(segments)


def _text_problem(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"holds the lone surrogate {text[exc.start]!r} at position {exc.start}, which is not valid "
                "Unicode text and cannot be stored as UTF-8")
    return None


def _scalar(value: Any) -> Any:
    kind = type(value)
    if kind is int or kind is bool:
        if kind is int and not INT_MIN <= value <= INT_MAX:
            shown = f"the integer {value}" if value.bit_length() <= 128 else f"an integer of {value.bit_length()} bits"
            raise _Invalid(f"is {shown}, beyond the 64-bit range payloads can hold ({INT_MIN} .. {INT_MAX}); "
                           "send it as a string")
        return value
    if kind is float:
        if math.isnan(value) or math.isinf(value):
            raise _Invalid(f"is {value!r}, which JSON cannot represent")
        return value
    problem = _text_problem(value)
    if problem is not None:
        raise _Invalid(problem)
    return value


def _convert(value: Any, depth: int) -> Any:  # noqa: C901 - one branch per JSON type
    if value is None:
        return None
    kind = type(value)
    if kind in (str, int, float, bool):
        return _scalar(value)
    if isinstance(value, (list, tuple, dict)) and depth >= MAX_DEPTH:
        raise _Invalid(f"nests lists and dicts more than {MAX_DEPTH} levels deep (the payload limit)")
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        for i, item in enumerate(value):
            try:
                out.append(_convert(item, depth + 1))
            except _Invalid as bad:
                bad.path.append(f"[{i}]")
                raise
        return out
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"has a key {_short(key)} of type {type(key).__name__}; JSON keys are strings")
            problem = _text_problem(key)
            if problem is not None:
                raise _Invalid(f"has a key that {problem}")
            try:
                result[key] = _convert(item, depth + 1)
            except _Invalid as bad:
                bad.path.append(f"[{_short(key)}]")
                raise
        return result
    if isinstance(value, (str, int, float)):  # subclasses (enums, numpy-like scalars): their plain value
        plain = str(value) if isinstance(value, str) else int(value) if isinstance(value, int) else float(value)
        return _scalar(plain)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            fields = dataclasses.asdict(value)
        except RecursionError:
            raise _Invalid(f"nests dataclasses more than {MAX_DEPTH} levels deep (the payload limit)") from None
        return _convert(fields, depth)
    raise _Invalid(
        f"is a {type(value).__module__}.{type(value).__qualname__}, which is not JSON-compatible; "
        "pass dicts, lists, strings, numbers, booleans, None or dataclasses"
    )


def _short(key: Any) -> str:
    try:
        text = repr(key)
    except Exception:  # noqa: BLE001 - a key whose __repr__ raises is still named by its type
        return f"<{type(key).__name__}>"
    return text if len(text) <= 60 else f"{text[:60]}...'"


def _refuse_constant(name: str) -> Any:
    raise _Invalid(f"holds {name}, which is not JSON (JSON has no NaN or infinities)")


def parse_json(text: str | bytes, what: str) -> Any:
    """A JSON document (the HTTP API's bodies, the CLI's arguments) as a payload, checked by the rules
    above; ``PayloadError`` naming the problem (the parse error and its position, NaN, an integer
    beyond 64 bits, nesting too deep) otherwise. Bytes must be UTF-8."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")  # first: json.loads(bytes) would guess UTF-16/32
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{what} is not UTF-8 text: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except _Invalid as bad:
        raise PayloadError(f"{what} {bad.problem}") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PayloadError(f"{what} nests arrays and objects more than {MAX_DEPTH} levels deep "
                           "(the payload limit)") from None
    except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
        raise PayloadError(f"{what} cannot be read: {exc}") from None
    return to_json_compatible(value, what)


__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "INT_MAX", "INT_MIN", "MAX_DEPTH", "parse_json",
           "to_json_compatible"]
