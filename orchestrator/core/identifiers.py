"""What an instance id or a name may be: the rules, spelled once, for every boundary that takes one.

* **Instance ids**: 1-200 characters from letters, digits and ``_ . : @ -`` (ASCII). They are part of
  Redis keys (inside the hash tag ``{id}``) and of index members (``<id>|<task key>``), so braces,
  ``|``, spaces and line breaks are refused. The whole string must match: an id ending in a newline
  is refused too (``re.fullmatch``, never ``^...$``, which lets a trailing newline through).
* **Names** (workflows, activities, external events, app ids, versions, patches): 1-200 characters
  of valid Unicode text without control characters (no line breaks, no lone surrogates, which cannot
  be stored as UTF-8) and without ``|`` (the member separator). A 2 MiB event name is refused at the
  call, not stored.
* **Generated child ids** (``ctx.call_child_workflow`` without ``instance_id``, and the ``-attemptN``
  ids of retried children) always fit the id rule, however deep a recursion goes: an id that would
  grow past 200 characters keeps a readable head and ends in a digest of the whole id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_ID_LENGTH = 200
MAX_NAME_LENGTH = 200
INSTANCE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:@\-]{1,200}")
_SHORTENED_HEAD = 150


def is_instance_id(value: object) -> bool:
    return isinstance(value, str) and INSTANCE_ID_PATTERN.fullmatch(value) is not None


def validate_instance_id(instance_id: object, what: str = "instance id") -> str:
    """``instance_id`` when it follows the rule, else ``ValueError`` naming it and the rule."""
    if not is_instance_id(instance_id):
        shown = instance_id if not isinstance(instance_id, str) or len(instance_id) <= 80 else \
            f"{instance_id[:80]}... ({len(instance_id)} characters)"
        raise ValueError(f"invalid {what} {shown!r}: use 1-{MAX_ID_LENGTH} characters from letters, digits "
                         "and _ . : @ -")
    assert isinstance(instance_id, str)
    return instance_id


def name_problem(value: object) -> str | None:
    """Why ``value`` cannot be a name, or None when it can."""
    if not isinstance(value, str):
        return f"is a {type(value).__name__}, not a string"
    if not value or not value.strip():
        return "is empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"is {len(value)} characters long, over the limit of {MAX_NAME_LENGTH}"
    if "|" in value:
        return "contains '|'"
    for i, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"contains the control character {ch!r} at position {i}"
        if category == "Cs":
            return f"contains the lone surrogate {ch!r} at position {i} (not valid Unicode text)"
    return None


def validate_name(value: object, what: str) -> str:
    """``value`` when it is a valid name, else ``ValueError`` naming ``what`` and the problem."""
    problem = name_problem(value)
    if problem is not None:
        shown = value if not isinstance(value, str) or len(value) <= 80 else f"{value[:80]}..."
        raise ValueError(f"{what} {shown!r} {problem}; names are 1-{MAX_NAME_LENGTH} characters of text "
                         "without control characters or '|'")
    assert isinstance(value, str)
    return value


def fit_instance_id(candidate: str) -> str:
    """A generated id (``<parent>:<seq>``, ``<id>-attempt<n>``) cut to the id length: unchanged when it
    fits, else its first characters, ``@`` and a digest of the whole candidate (deterministic, so
    replay derives the same id)."""
    if len(candidate) <= MAX_ID_LENGTH:
        return candidate
    digest = hashlib.sha256(candidate.encode()).hexdigest()[:20]
    return f"{candidate[:_SHORTENED_HEAD]}@{digest}"


__all__ = ["INSTANCE_ID_PATTERN", "MAX_ID_LENGTH", "MAX_NAME_LENGTH", "fit_instance_id", "is_instance_id",
           "name_problem", "validate_instance_id", "validate_name"]
