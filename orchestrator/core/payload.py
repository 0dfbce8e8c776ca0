"""Payloads: workflow and activity inputs, outputs, event data, custom status. The rules, in one place.

A payload is a JSON-compatible value that the store can hold and every edge (HTTP API, CLI,
dashboard) can show. The same rules apply at every boundary a value crosses (the client, workflow
code's calls, an activity's result, the HTTP API and the CLI, which parse JSON with ``parse_json``),
so a bad value is refused where it enters, with an error naming its path, instead of failing later
where msgpack or a JSON parser happens to choke:

* types: ``None``, ``bool``, ``int``, ``float``, ``str``, lists and dicts with string keys (tuples
  become lists). Objects travel as Dapr's SDK sends them: a dataclass, ``SimpleNamespace`` or
  namedtuple becomes a JSON object marked with ``AUTO_OBJECT`` (``"__durabletask_autoobject__": true``),
  which the receiving side reads back as a ``SimpleNamespace`` (``from_payload``); a model object
  (Pydantic and anything with ``model_dump`` / ``model_validate``) becomes its plain JSON dump;
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
import inspect
import json
import math
from types import SimpleNamespace
from typing import Any

from .errors import PayloadError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_DEPTH = 100
# The key Dapr's SDK (durabletask's JSON encoder) adds to an object it encoded from a dataclass,
# SimpleNamespace or namedtuple: the decoder turns such an object back into a SimpleNamespace.
AUTO_OBJECT = "__durabletask_autoobject__"
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
    if isinstance(value, tuple) and hasattr(value, "_fields") and hasattr(value, "_asdict"):
        return _convert({**value._asdict(), AUTO_OBJECT: True}, depth)  # a namedtuple: an object, as Dapr
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
        base = str(value) if isinstance(value, str) else int(value) if isinstance(value, int) else float(value)
        return _scalar(base)
    return _convert_object(value, depth)


def _convert_object(value: Any, depth: int) -> Any:
    """Objects as Dapr's SDK encodes them. Fields are taken one level at a time (never
    ``dataclasses.asdict``, which recurses without limit), so the depth rule holds for objects too."""
    if depth >= MAX_DEPTH:
        raise _Invalid(f"nests lists, dicts and objects more than {MAX_DEPTH} levels deep (the payload limit)")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _convert({**fields, AUTO_OBJECT: True}, depth)
    if isinstance(value, SimpleNamespace):
        return _convert({**vars(value), AUTO_OBJECT: True}, depth)
    if is_model(value):
        try:
            dumped = value.model_dump(mode="json")
        except TypeError:  # a model-like class whose model_dump takes no mode
            dumped = value.model_dump()
        return _convert(dumped, depth)
    raise _Invalid(
        f"is a {type(value).__module__}.{type(value).__qualname__}, which is not JSON-compatible; "
        "pass dicts, lists, strings, numbers, booleans, None, dataclasses, SimpleNamespace or Pydantic models"
    )


def is_model(value: Any) -> bool:
    """A model object or class in Dapr's sense (duck-typed, no Pydantic import): ``model_dump`` and
    ``model_validate``, as Pydantic v2 and SQLModel have."""
    return callable(getattr(value, "model_dump", None)) and callable(getattr(value, "model_validate", None))


def from_payload(value: Any) -> Any:
    """A stored payload as workflow and activity code receive it: objects marked ``AUTO_OBJECT``
    become ``SimpleNamespace`` (attribute access, as in Dapr), everything else is as stored. A new
    value each call (replay never hands code an object an earlier run mutated). Payloads are at most
    ``MAX_DEPTH`` deep, so the recursion is bounded."""
    kind = type(value)
    if kind is dict:
        if AUTO_OBJECT in value:
            fields = {k: from_payload(v) for k, v in value.items() if k != AUTO_OBJECT}
            return SimpleNamespace(**fields) if value[AUTO_OBJECT] else fields
        return {k: from_payload(v) for k, v in value.items()}
    if kind is list:
        return [from_payload(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """``value`` as plain JSON types without the object marker (what a model or dataclass is built from)."""
    kind = type(value)
    if kind is dict:
        return {k: plain(v) for k, v in value.items() if k != AUTO_OBJECT}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    if isinstance(value, SimpleNamespace):
        return {k: plain(v) for k, v in vars(value).items()}
    return value


def coerce(annotation: Any, value: Any) -> Any:
    """``value`` as the type a parameter is annotated with, when that is a model class (Pydantic
    and the like: ``model_validate``) or a dataclass; anything else unchanged. Dapr's SDK does the
    same at the workflow and activity input boundary (its ``pydantic_models`` example)."""
    if value is None or annotation is Any:  # Any is a class since Python 3.11, but not one to isinstance() with
        return value
    origin = getattr(annotation, "__origin__", None)
    args: tuple[Any, ...] = tuple(getattr(annotation, "__args__", ()))
    if origin in (list, tuple, set) and isinstance(value, list) and args:  # list[Model], tuple[Model, ...]
        return [coerce(args[0], item) for item in value]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: coerce(args[1], v) for k, v in value.items()}
    if not isinstance(annotation, type):
        members = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
        return coerce(members[0], value) if len(members) == 1 else value  # Optional[Model]
    if isinstance(value, annotation):
        return value
    if is_model(annotation):
        return getattr(annotation, "model_validate")(plain(value))  # noqa: B009 - duck-typed model class
    if dataclasses.is_dataclass(annotation):
        fields = plain(value)
        if isinstance(fields, dict):
            hints = _field_types(annotation)
            return annotation(**{k: coerce(hints.get(k), v) for k, v in fields.items()})
    return value


def _field_types(cls: type) -> dict[str, Any]:
    try:
        import typing

        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable forward references: build the fields as they are
        return {}


def input_annotation(fn: Any, position: int = 1) -> Any:
    """The annotation of ``fn``'s parameter at ``position`` (the input, after the context), or None.
    String annotations (``from __future__ import annotations``) are resolved in the function's module."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if len(params) <= position:
        return None
    annotation = params[position].annotation
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        try:
            import typing

            annotation = typing.get_type_hints(fn).get(params[position].name)
        except Exception:  # noqa: BLE001 - an annotation that does not resolve is not a type to build
            return None
    return annotation


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


__all__ = ["AUTO_OBJECT", "DEFAULT_MAX_PAYLOAD_BYTES", "INT_MAX", "INT_MIN", "MAX_DEPTH", "coerce", "from_payload",
           "input_annotation", "is_model", "parse_json", "plain", "to_json_compatible"]
