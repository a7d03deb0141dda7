"""The regimen planner: which sessions fall due when. Pure functions of (config, time).

All schedule times are local wall-clock times in the unit's time zone, and the result is
expressed as aware UTC instants so that the rest of the unit never does local-time
arithmetic. Rules (documented for nurses in docs/behaviour.md):

* The awake window starts each local day at ``awake.start`` and lasts until ``awake.end``,
  crossing midnight when the end is not after the start; start == end is awake all day.
* Hourly sessions fall at ``awake.start + k * every_minutes`` in local wall-clock terms,
  start included, end excluded.
* Routine sessions fall at each ``routine.at`` time every day; one that coincides with an
  hourly session replaces it.
* A session due outside the awake window is *deferred*: it is offered when the window next
  opens. Sessions offered at the same instant are merged into one prompt (a routine wins
  over an hourly session, then the later due time wins); the others are recorded as
  deferred and merged, never as missed.
* A local time that does not exist (spring-forward gap) moves to the end of the gap; a
  local time that exists twice (autumn) means its first occurrence. Two times that land on
  one instant this way are merged like held-over sessions: one prompt, the later time
  (a routine before an hourly session); the other is recorded as merged into it.
* Which hourly and routine sessions a local date has comes from the regimen's stage for
  that date's post-operative day (``episodes.rules``); ``ep`` is the open episode, or None.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from bedside.core.config import Config, Exercise
from bedside.core.episodes import Episode, rules
from bedside.core.memo import DAYS_KEPT, Span

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)

HOURLY = "hourly"
ROUTINE = "routine"
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Session:
    """One session the unit plans to offer (the report's account of what became of it is
    ``report.adherence.SessionOutcome``)."""

    id: str                     # stable across restarts: local nominal time and kind
    kind: str                   # HOURLY | ROUTINE
    due: datetime               # aware UTC: when it was scheduled
    offer: datetime             # aware UTC: when it is offered (== due unless held over the night)
    exercises: tuple[Exercise, ...]
    merged_into: str | None = None

    @property
    def deferred(self) -> bool:
        return self.offer != self.due

    @property
    def reps(self) -> int:
        """Total repetitions the guide walks through (both feet counted)."""
        return sum(e.reps * e.sets * (2 if e.per_foot else 1) for e in self.exercises)


def session_id(local: datetime, kind: str) -> str:
    return f"{local:%Y-%m-%dT%H:%M} {kind}"


# --- local time -> instant -----------------------------------------------------------

def to_instant(naive_local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time, resolving DST gaps and folds."""
    first = naive_local.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive_local:
        return utc
    # In a spring-forward gap: fold=1 applies the later offset (an earlier instant),
    # fold=0 the earlier one; the transition lies between them. Find it to the second.
    lo = naive_local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = utc
    if lo > hi:
        lo, hi = hi, lo
    off = lo.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == off:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def local(t: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall-clock time of an aware instant."""
    return t.astimezone(tz).replace(tzinfo=None)


# --- the awake window in minutes of the day: the one place for its arithmetic ---------
# (the planner's days, the daily self-test's time, the FHIR care plan's times of day)

DAY_MINUTES = 24 * 60


def _minute_of_day(t: time) -> int:
    return t.hour * 60 + t.minute


def window_minutes(start: time, end: time) -> int:
    """How long the awake window from ``start`` to ``end`` lasts, in minutes: across midnight
    when the end is not after the start, the whole day when they are equal."""
    return (_minute_of_day(end) - _minute_of_day(start)) % DAY_MINUTES or DAY_MINUTES


def window_middle(start: time, end: time) -> time:
    """The minute in the middle of the awake window from ``start`` to ``end``, as a time of day."""
    mid = (_minute_of_day(start) + window_minutes(start, end) // 2) % DAY_MINUTES
    return time(mid // 60, mid % 60)


def window_times(start: time, end: time, every: int) -> list[time]:
    """The times of day from ``start`` every ``every`` minutes while the window lasts (start
    included, end excluded): an hourly session's nominal times."""
    first = _minute_of_day(start)
    minutes = ((first + k) % DAY_MINUTES for k in range(0, window_minutes(start, end), every))
    return [time(m // 60, m % 60) for m in minutes]


def _window_naive(cfg: Config, d: date) -> tuple[datetime, datetime]:
    start = datetime.combine(d, cfg.awake_start)
    return start, start + timedelta(minutes=window_minutes(cfg.awake_start, cfg.awake_end))


@lru_cache(maxsize=DAYS_KEPT)
def window(cfg: Config, d: date) -> tuple[datetime, datetime]:
    """The awake window that opens on local date ``d``, as UTC instants [open, close)."""
    a, b = _window_naive(cfg, d)
    return to_instant(a, cfg.tz), to_instant(b, cfg.tz)


_awake: Span[tuple[datetime, datetime]] = Span()


def awake_window_at(cfg: Config, t: datetime) -> tuple[datetime, datetime] | None:
    """The awake window containing instant ``t``, or None at night."""
    known = _awake.get(cfg, t)
    if known is not None:
        return known
    d = local(t, cfg.tz).date()
    for day in (d, d - _DAY):
        a, b = window(cfg, day)
        if a <= t < b:
            return _awake.put(cfg, a, b, (a, b))
    return None


def is_awake(cfg: Config, t: datetime) -> bool:
    return awake_window_at(cfg, t) is not None


def next_opening(cfg: Config, t: datetime) -> datetime:
    """The first window opening strictly after instant ``t``."""
    d = local(t, cfg.tz).date() - _DAY
    while True:
        a, _ = window(cfg, d)
        if a > t:
            return a
        d += _DAY


def care_day(cfg: Config, t: datetime) -> tuple[datetime, datetime]:
    """The patient's day around ``t``: from the latest window opening at or before t to the next.

    Counts such as "today 3 of 5" use this rather than the calendar date, so that a
    window crossing midnight is still one day for the patient.
    """
    known = _care_day.get(cfg, t)
    if known is not None:
        return known
    d = local(t, cfg.tz).date() + _DAY
    while True:
        a, _ = window(cfg, d)
        if a <= t:
            b = window(cfg, d + _DAY)[0]
            return _care_day.put(cfg, a, b, (a, b))
        d -= _DAY


_care_day: Span[tuple[datetime, datetime]] = Span()


# --- sessions ------------------------------------------------------------------------

@lru_cache(maxsize=DAYS_KEPT)
def _raw_day(cfg: Config, d: date, ep: Episode | None) -> tuple[Session, ...]:
    """Sessions whose nominal local time falls on date ``d``, before merging."""
    tz = cfg.tz
    r = rules(cfg, ep, d)
    # Keyed by instant and nominal time: a routine replaces the hourly session of the same
    # time, while two nominal times that a spring-forward gap maps onto one instant are both
    # kept (``_day`` merges them into one prompt, and the other is recorded, never dropped).
    out: dict[tuple[datetime, datetime], Session] = {}
    for t in r.routine_at:
        naive = datetime.combine(d, t)
        due = to_instant(naive, tz)
        out.setdefault((due, naive), Session(session_id(naive, ROUTINE), ROUTINE, due, due, r.routine_exercises))
    if r.every_minutes:
        step = timedelta(minutes=r.every_minutes)
        for start_day in (d - _DAY, d):
            naive, end = _window_naive(cfg, start_day)
            while naive < end:
                if naive.date() == d:
                    due = to_instant(naive, tz)
                    out.setdefault((due, naive), Session(session_id(naive, HOURLY), HOURLY, due, due,
                                                         r.hourly_exercises))
                naive += step
    sessions = []
    for (due, _), s in sorted(out.items()):
        offer = due if is_awake(cfg, due) else next_opening(cfg, due)
        sessions.append(replace(s, offer=offer) if offer != due else s)
    return tuple(sessions)


def _priority(s: Session) -> tuple[int, datetime, str]:
    # Last, the nominal time (the id): of two times a DST gap joined, the later one leads.
    return (1 if s.kind == ROUTINE else 0, s.due, s.id)


@lru_cache(maxsize=DAYS_KEPT)
def _day(cfg: Config, d: date, ep: Episode | None) -> tuple[Session, ...]:
    """Sessions with nominal local date ``d``, with merges of shared offer instants applied."""
    # Deferred sessions reach at most a day ahead to the next opening, so neighbours suffice.
    around = [s for day in (d - _DAY, d, d + _DAY) for s in _raw_day(cfg, day, ep)]
    by_offer: dict[datetime, list[Session]] = {}
    for s in around:
        by_offer.setdefault(s.offer, []).append(s)
    out = []
    for s in _raw_day(cfg, d, ep):
        group = by_offer[s.offer]
        lead = max(group, key=_priority)
        out.append(s if lead is s else replace(s, merged_into=lead.id))
    return tuple(out)


def sessions_between(cfg: Config, start: datetime, end: datetime, ep: Episode | None = None) -> list[Session]:
    """Every session whose due instant lies in [start, end), in due order."""
    if end <= start:
        return []
    tz = cfg.tz
    d, last = local(start, tz).date() - _DAY, local(end, tz).date() + _DAY
    out: list[Session] = []
    while d <= last:
        out.extend(s for s in _day(cfg, d, ep) if start <= s.due < end)
        d += _DAY
    return out


def offered_between(cfg: Config, start: datetime, end: datetime, ep: Episode | None = None) -> list[Session]:
    """Sessions (merged ones included) whose offer instant lies in [start, end), in offer order."""
    found = sessions_between(cfg, start - 2 * _DAY, end, ep)
    return sorted((s for s in found if start <= s.offer < end), key=lambda s: (s.offer, _priority(s)))


def next_event_after(cfg: Config, t: datetime, horizon_days: int = 3, ep: Episode | None = None) -> datetime | None:
    """The first instant after ``t`` at which a session is due or offered, among the sessions
    due in [t - 2 days, t + horizon_days); None if there is none."""
    # The loop asks before every sleep; the answer changes a few times a day. An answer x found
    # for t holds for every t' in [t, x) as long as x is within the horizon of t: no event lies
    # between them, and x's own due is within two days of t' (an offer is at most a night after its due).
    key = (cfg, ep, horizon_days)
    known = _next_event.get(key, t)
    if known is not None:
        return known
    lo, hi = t - 2 * _DAY, t + horizon_days * _DAY
    events = _events_near(cfg, ep, t.astimezone(UTC).date(), horizon_days)
    for x, due in events[bisect_right(events, (t, _FAR_FUTURE)):]:
        if lo <= due < hi:
            if x <= hi:
                _next_event.put(key, t, x, x)
            return x
    return None


_next_event: Span[datetime] = Span()


@lru_cache(maxsize=8)
def _events_near(cfg: Config, ep: Episode | None, day: date, horizon_days: int
                 ) -> tuple[tuple[datetime, datetime], ...]:
    """(instant, due) of every due and offer of the sessions due within days of the UTC ``day``,
    sorted: a superset of what ``next_event_after`` looks at for any instant of that day."""
    anchor = datetime(day.year, day.month, day.day, tzinfo=UTC)
    found = sessions_between(cfg, anchor - 3 * _DAY, anchor + (horizon_days + 2) * _DAY, ep)
    return tuple(sorted((x, s.due) for s in found for x in (s.due, s.offer)))
