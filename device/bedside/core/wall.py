"""Wall-clock values read from outside the running unit: only those a clock can give.

A time in a file, an export line or a kept record was written by some clock, or by someone
who wants it to look so. A value no clock gives (a leap second such as ``23:59:60``: Linux
never shows one, it repeats ``23:59:59``; a date before this software existed or in the
next century; a time without its offset) is refused here, at the boundary, with a reason a
person can read, and the caller records the refusal. Spans have the same limit: no stay on a
ward lasts longer than ``LONGEST_SPAN``, so a report or a reserve that claims one is refused
or cut there, and says so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from bedside.core.errors import BedsideError

# Before this, no unit's clock can be right: the software did not exist yet.
PLAUSIBLE_FROM = datetime(2026, 1, 1, tzinfo=UTC)
# Anything from 2100 on is a clock fault, not a date a unit in service writes.
PLAUSIBLE_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)
# The longest span one record of care can cover (a year and a bit): longer is a clock fault.
LONGEST_SPAN = timedelta(days=400)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TEXT = 40                         # "2026-11-24T09:00:00.000000+00:00" is 32 characters

_SECOND = re.compile(r"T\d{2}:\d{2}:(\d{2})")


class ImpossibleTime(BedsideError, ValueError):
    """A time value no clock gives; the message names what is wrong with it."""


def aware(v: object) -> datetime | None:
    """An ISO string's time with its offset kept (the unit's local time), or None for anything
    else: a lenient read for showing a field, where ``clock_value`` is the boundary's check."""
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None

# One offset object per offset: two aware times with the same tzinfo object compare field by
# field, while equal offsets in two objects make each comparison ask both for their offsets
# (about ten times the cost; a ward compares every record's time). At most ``_ZONES_KEPT``.
_ZONES: dict[tzinfo, tzinfo] = {}
_ZONES_KEPT = 64
# The last value read (one tuple, replaced whole, so threads never see half of one): a laptop's
# checker and then its report read each record's time in turn. The first key equals no text.
_LAST: list[tuple[object, datetime]] = [(object(), _EPOCH)]


def clock_value(text: object) -> datetime:
    """An ISO 8601 time with its offset (kept) that some clock could show, whatever its year;
    ``ImpossibleTime`` for anything else (not text, too long, a leap second, no offset)."""
    last = _LAST[0]
    if text is last[0] or (type(text) is str and text == last[0]):
        return last[1]
    t = _clock_value(text)
    assert isinstance(text, str) and t.tzinfo is not None
    zone = _ZONES.get(t.tzinfo)
    if zone is None and len(_ZONES) < _ZONES_KEPT:
        zone = _ZONES.setdefault(t.tzinfo, t.tzinfo)
    if zone is not None and zone is not t.tzinfo:
        t = t.replace(tzinfo=zone)
    _LAST[0] = (text, t)
    return t


def _clock_value(text: object) -> datetime:
    if not isinstance(text, str):
        raise ImpossibleTime(f"a time must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ImpossibleTime(f"a time is at most {MAX_TEXT} characters, not {len(text)}")
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        m = _SECOND.search(text)          # only to say why: fromisoformat refuses second 60 too
        if m and m[1] == "60":
            raise ImpossibleTime(f"{text} is a leap second: no unit's clock shows one") from None
        raise ImpossibleTime(f"{text!r} is not a time (YYYY-MM-DDTHH:MM:SS+HH:MM)") from None
    if t.tzinfo is None:
        raise ImpossibleTime(f"{text} has no offset from UTC")
    if t.year in (1, 9999):
        try:
            t.astimezone(UTC)
        except OverflowError:             # an offset that takes the first or last year off the calendar
            raise ImpossibleTime(f"{text} is off the calendar") from None
    return t


def parse(text: object, *, earliest: datetime | None = None) -> datetime:
    """``clock_value`` within the years a unit's clock can show; ``ImpossibleTime`` otherwise.

    ``earliest``: the lower bound (default 1970: a unit without a clock that kept time
    honestly writes 1970 and marks it ``distrusted``)."""
    t = clock_value(text)
    if earliest is None and _EPOCH.year < t.year < PLAUSIBLE_UNTIL.year - 1:
        return t          # inside the range whatever its offset (at most a day): no comparison needed
    low = earliest if earliest is not None else _EPOCH
    if not low <= t < PLAUSIBLE_UNTIL:
        raise ImpossibleTime(f"{text} is outside the range a unit's clock can give "
                             f"({low:%Y-%m-%d} to {PLAUSIBLE_UNTIL:%Y-%m-%d})")
    return t


def not_after(t: datetime, limit: datetime, what: str = "the time") -> datetime:
    """``t`` if it is not later than ``limit`` (with a minute's grace), else ``ImpossibleTime``."""
    if t > limit + timedelta(minutes=1):
        raise ImpossibleTime(f"{what} {t.isoformat()} is later than {limit.isoformat()}, when it was read")
    return t


def span_ok(first: datetime, last: datetime) -> bool:
    """Whether ``first`` .. ``last`` is a span a stay can have (never negative, at most ``LONGEST_SPAN``)."""
    return timedelta(0) <= last - first <= LONGEST_SPAN
