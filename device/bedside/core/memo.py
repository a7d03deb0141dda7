"""The last answer of a question whose answer holds for a span of time.

The loop asks some questions on every turn (is the patient awake, which care day is it, when
is the next plan event, how does today stand) whose answers change a few times a day. A
``Span`` remembers the last answer with the key it was asked for and the span [a, b) of
instants over which it holds. A memo, not a state: the same question gives the same answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

_V = TypeVar("_V")

FAR_PAST = datetime.min.replace(tzinfo=UTC)
# How many days' answers a per-day memo (``lru_cache`` keyed by date) keeps. The unit asks
# about the days around now, and a start about at most a few weeks back; 256 let the unit's
# memory creep up for most of a year as each new day's plan was added.
DAYS_KEPT = 64


class Span(Generic[_V]):
    """One remembered answer. Kept as one tuple and replaced whole, so a thread that asks while
    another replaces it sees the old answer or the new one, never a mix."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[object, datetime, datetime, _V | None] = (None, FAR_PAST, FAR_PAST, None)

    def get(self, key: object, t: datetime) -> _V | None:
        """The answer remembered for ``key`` (compared by value) if ``t`` is in its span, else None."""
        k, a, b, value = self.last
        if a <= t < b and (k is key or k == key):
            return value
        return None

    def forget(self) -> None:
        self.last = (None, FAR_PAST, FAR_PAST, None)

    def put(self, key: object, a: datetime, b: datetime, value: _V) -> _V:
        """Remember ``value`` as the answer for ``key`` at every instant of [a, b)."""
        self.last = (key, a, b, value)
        return value
