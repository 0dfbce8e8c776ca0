"""Cron expressions: parse one, and find the next time it matches after a moment, in a time zone.

Five fields (``minute hour day-of-month month day-of-week``) or six with seconds first
(``second minute hour day-of-month month day-of-week``), as in Vixie cron: ``*``, ``?`` (same as
``*``), lists ``1,15``, ranges ``1-5``, steps ``*/10`` / ``5-50/5`` / ``7/2``, month and day names
(``JAN``..``DEC``, ``SUN``..``SAT``; day 7 is Sunday too), and the macros ``@yearly`` (``@annually``),
``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and ``@hourly``. When both day fields are
restricted, a day matches if either does (cron's rule).

Times are wall-clock times of the zone: ``0 9 * * MON-FRI`` in ``Europe/Paris`` is 09:00 Paris time
all year. Across daylight-saving changes a wall time that does not exist that day (the hour the
clocks skip) does not fire, and one that happens twice (the hour repeated) fires once, the first
time. Written here rather than taken from a package: the engine needs only this, and the
computation must be pure (no clock) and identical in every pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MONTHS = {name: i + 1 for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                                                 "OCT", "NOV", "DEC"))}
DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# (name, low, high, names) of the six fields, seconds first.
NO_NAMES: dict[str, int] = {}
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, NO_NAMES), ("minute", 0, 59, NO_NAMES), ("hour", 0, 23, NO_NAMES),
    ("day of month", 1, 31, NO_NAMES),
    ("month", 1, 12, MONTHS), ("day of week", 0, 7, DAYS))
SEARCH_YEARS = 8  # an expression that matches nothing this long (e.g. 30 February) never matches


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message names the field and the problem."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Paris``), or a ``ValueError`` naming it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"time zone must be an IANA zone name such as 'UTC' or 'Europe/Paris', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as 'Europe/Paris')") from exc


def _number(text: str, field: str, low: int, high: int, names: dict[str, int], expr: str) -> int:
    value = names.get(text.upper())
    if value is None:
        if not text.isdigit():
            raise CronError(f"cron expression {expr!r}: {text!r} is not a valid {field}")
        value = int(text)
    if not low <= value <= high:
        raise CronError(f"cron expression {expr!r}: {field} {value} is out of range {low}-{high}")
    return value


def _field(text: str, index: int, expr: str) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it is unrestricted (``*``)."""
    field, low, high, names = FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"cron expression {expr!r}: empty list item in the {field} field")
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"cron expression {expr!r}: step {step_text!r} of the {field} field must be a "
                                "positive number")
            step = int(step_text)
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = (_number(a, field, low, high, names, expr), _number(b, field, low, high, names, expr))
            if start > end:
                raise CronError(f"cron expression {expr!r}: range {body!r} of the {field} field runs backwards")
        else:
            start = _number(body, field, low, high, names, expr)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    if index == 5 and 7 in values:  # Sunday is 0 or 7
        values.discard(7)
        values.add(0)
    return frozenset(values), text in ("*", "?")


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; ``next_after`` finds its matches."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        if not isinstance(expression, str) or not expression.strip():
            raise CronError(f"a cron expression must be a non-empty string, got {expression!r}")
        text = MACROS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        elif len(parts) != 6:
            raise CronError(f"cron expression {expression!r} has {len(parts)} fields; expected 5 (minute hour "
                            "day-of-month month day-of-week) or 6 (with seconds first)")
        fields = [_field(p, i, expression) for i, p in enumerate(parts)]
        return cls(expression, fields[0][0], fields[1][0], fields[2][0], fields[3][0], fields[4][0], fields[5][0],
                   any_day=fields[3][1], any_weekday=fields[5][1])

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7
        if self.any_day or self.any_weekday:
            return day.day in self.days and weekday in self.weekdays
        return day.day in self.days or weekday in self.weekdays

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The first naive wall-clock time at or after ``wall`` (whole seconds) that matches."""
        t = wall
        limit = wall.year + SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        return None

    def next_after(self, after_ms: int, tz: ZoneInfo) -> int | None:
        """The first matching moment strictly after ``after_ms`` (ms since the epoch), in ms; None if none."""
        moment = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
        wall = moment.astimezone(tz).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        for _ in range(100_000):
            found = self._next_wall(wall)
            if found is None:
                return None
            aware = found.replace(tzinfo=tz, fold=0)
            # A wall time in the hour the clocks skip does not exist: it does not round-trip.
            if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == found:
                at = int(aware.astimezone(UTC).timestamp() * 1000)
                if at > after_ms:
                    return at
            wall = found + timedelta(seconds=1)
        return None


__all__ = ["Cron", "CronError", "zone"]
