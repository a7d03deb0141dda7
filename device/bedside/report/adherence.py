"""Adherence from journal records alone: one row per scheduled session, one summary per day.

Pure: exported records (dicts) in, an ``Adherence`` model out. No clock, no files, no
config: a report must be readable from the record by itself, on any laptop, years later.
The definitions here are the ones docs/report.md explains to nurses:

* A session belongs to the local date on which it was *offered* (for a session held over
  the night, the morning it was offered), as the unit's own "3 of 5" counts it.
* **Due** = sessions with an outcome: done (in full or partly) or missed. Sessions merged
  into another session's prompt at night are not due by themselves (the patient had one
  prompt for both); sessions still open when the record ends are not yet decided.
* **Done** includes **partial** sessions (ended early with fewer reps than planned) and
  **interrupted** ones (begun, then cut off by a power cut: reps known up to the unit's last
  sign of life, or unknown), as on the unit's screen; both are counted and shown apart too.
* **Late** = done with ``late_min`` (offer to start) of ``LATE_AFTER_MIN`` or more.
* **Adherence** = done / due.
* A session still open when a patient is admitted or discharged (the unit settles it with
  reason ``discharged``) is **nobody's**: not the leaving patient's, not the next one's.
* At a bed that records admissions, a session no one answered while **no patient was
  admitted** is never "missed": there was nobody to miss it.

Records may come from a file a person edited: every field is read defensively, and an odd
record is skipped rather than trusted or allowed to stop the report (the verdict says
whether the record can be trusted at all).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from bedside.core import wall
from bedside.core.records import OUTCOMES, SESSION_TYPES, T

LATE_AFTER_MIN = 15        # half the default missed window: the patient needed reminding
_OPEN_AT_CHANGE = timedelta(hours=12)   # a prompt older than this with no outcome was lost, not open

# The model's budget: what it holds is bounded by these, whatever the records say (a crafted or
# runaway journal of events or sessions), not by the record count. Past them the report still
# counts every session and event on its day; it lists a stated number and says how many more
# there are (the records themselves are in the journal: ``bedside log export``).
OPEN_AT_MOST = 2048        # sessions followed at once; past it the oldest is settled as it stands
SESSIONS_A_DAY = 120       # sessions listed on one day (hourly every 15 minutes is 96, plus routines)
SESSIONS_LISTED = 60_000   # sessions listed in all: about ten years of the default schedule (16 a day)
EVENTS_A_DAY = 30          # events listed on one day
EVENTS_LISTED = 2_000      # events listed in all
GAPS_LISTED = 2_000        # power cuts and switch-offs listed in all (the rest counted on the day they began)
EPISODES_LISTED = 1_000    # admissions kept apart (a bed of three-day stays has about 130 in 400 days)
MORE_EPISODES = "(later admissions)"   # past them, the later admissions' sessions are counted together here
TALLIES_AT_MOST = 50_000   # (day, admission) pairs counted apart; past them a day's others go with MORE_EPISODES
TEXT_AT_MOST = 200         # characters of a record's text kept (an id, a reason, a problem)
NAMES_AT_MOST = 64         # distinct record types, time qualities and units named; the rest counted together
OTHER = "(other)"          # where the rest of those are counted

# A session's outcome here: the record that settled it (``records.OUTCOMES``, an extra session's
# ``extra``), named as the record is, or what the report makes of the records.
DONE, MISSED, INTERRUPTED = T.DONE, T.MISSED, T.INTERRUPTED
PARTIAL, MERGED, OPEN, WAITING = "partial", "merged", "open", "waiting"
PAUSED = T.PAUSED          # fell inside a nurse's pause: neither due nor missed
EXTRA = T.EXTRA            # done on the patient's request: a session done, never one due
CHANGEOVER = "changeover"  # open when a patient was admitted or discharged: nobody's, neither due nor missed
NO_ONE = "no_one"          # unanswered while no patient was admitted (at a bed that has admissions): not missed
DECIDED = (DONE, PARTIAL, INTERRUPTED, MISSED, PAUSED, EXTRA, CHANGEOVER, NO_ONE)
DONE_LIKE = (DONE, PARTIAL, INTERRUPTED)
# The types this report reads; the others are named as "not used in this report".
KNOWN_TYPES = frozenset({*SESSION_TYPES, T.START, T.STOP, T.POWER_LOSS, T.CLOCK_SET, T.FAULT, T.FAULT_CLEARED,
                         T.ADMIT, T.DISCHARGE, T.REFUSED, T.EXPORT, T.SECRET_SET, T.PAUSE, T.RESUME,
                         T.SOFTWARE_UPDATE, T.SOFTWARE_ROLLBACK, T.SOFTWARE_UPDATE_REFUSED,
                         T.CONFIG_CHANGED, T.SECRET_CHANGED, T.SETTINGS_REFUSED})


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """What became of one planned session, read back from the journal's records: its
    outcome, when it was prompted, started and finished, and how many repetitions were done.
    (``core.planner.Session`` is the session the unit plans; this is the report's account of it.)"""

    id: str
    kind: str
    due: datetime                  # aware, in the offset the unit recorded
    offer: datetime
    outcome: str                   # DONE | PARTIAL | INTERRUPTED | MISSED | PAUSED | MERGED | OPEN | WAITING
    deferred: bool = False         # fell due at night and was held over
    merged_into: str | None = None
    reason: str | None = None      # why it was missed, or what interrupted it
    prompted: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    late_min: int | None = None
    reps: int | None = None
    planned: int | None = None
    snoozes: int = 0
    episode: str | None = None

    @property
    def day(self) -> date:
        return self.offer.date()

    @property
    def late(self) -> bool:
        return self.is_done and (self.late_min or 0) >= LATE_AFTER_MIN

    @property
    def is_done(self) -> bool:
        return self.outcome in (DONE, PARTIAL, INTERRUPTED)


@dataclass(frozen=True, slots=True)
class Gap:
    """A time the unit was not running: cut off (``power_loss``) or stopped cleanly (``unit_off``)."""

    kind: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return max(0, round((self.end - self.start).total_seconds() / 60))


@dataclass(frozen=True, slots=True)
class Event:
    """Something a nurse should see on a day: a clock change, a fault, a download."""

    at: datetime
    # clock_set | fault | fault_cleared | export | admit | discharge | refused | secret_set | software_*
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class RecordedEpisode:
    id: str
    admitted: datetime | None
    surgery: date | None = None
    regimen: str | None = None
    discharged: datetime | None = None

    def pod(self, day: date) -> int | None:
        """Post-operative day: 0 on the day of surgery."""
        return (day - self.surgery).days if self.surgery is not None else None


@dataclass(frozen=True, slots=True)
class Counts:
    due: int = 0
    done: int = 0
    partial: int = 0
    late: int = 0
    snoozed: int = 0               # sessions snoozed at least once
    snoozes: int = 0
    missed: int = 0
    deferred: int = 0              # held over from the night (merged ones included)
    merged: int = 0
    open: int = 0                  # not decided when the record ends
    gaps: int = 0                  # power-loss gaps touching the day
    gap_minutes: int = 0
    missed_reasons: Mapping[str, int] = field(default_factory=dict)
    interrupted: int = 0           # done partly: begun, then cut off by a power cut
    extra: int = 0                 # extra sessions on request: done, not due (not in adherence)
    paused: int = 0                # inside a nurse's pause: not counted as due
    nobody: int = 0                # open at an admission or discharge, or offered with no patient: not due

    @property
    def adherence(self) -> float | None:
        return self.done / self.due if self.due else None

    def __add__(self, o: Counts) -> Counts:
        reasons = Counter(self.missed_reasons)
        reasons.update(o.missed_reasons)
        return Counts(self.due + o.due, self.done + o.done, self.partial + o.partial, self.late + o.late,
                      self.snoozed + o.snoozed, self.snoozes + o.snoozes, self.missed + o.missed,
                      self.deferred + o.deferred, self.merged + o.merged, self.open + o.open,
                      self.gaps + o.gaps, self.gap_minutes + o.gap_minutes, dict(reasons),
                      self.interrupted + o.interrupted, self.extra + o.extra, self.paused + o.paused,
                      self.nobody + o.nobody)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    sessions: tuple[SessionOutcome, ...]
    gaps: tuple[Gap, ...]          # every gap touching this day (whole gaps; clip with ``clip``)
    events: tuple[Event, ...]
    episodes: tuple[RecordedEpisode, ...]
    counts: Counts
    held: tuple[SessionOutcome, ...] = ()   # fell due this night, offered (and counted) on a later day
    more_sessions: int = 0         # counted in ``counts`` but not listed in ``sessions`` (the model's budget)
    more_events: int = 0           # recorded this day but not listed in ``events``
    more_gaps: int = 0             # began this day, counted in ``counts`` but not listed in ``gaps``


NO_PATIENT = "no patient admitted"


@dataclass(frozen=True, slots=True)
class Stay:
    """The sessions of one admission (or of no admission at all): a patient's numbers, never the bed's.

    A day a patient was discharged from at 11:00 counts the morning's sessions for that
    patient and the afternoon's, if the unit still prompted, apart as "no patient admitted".
    """

    episode: RecordedEpisode | None  # None: sessions while no patient was admitted
    days: tuple[Day, ...]          # counts of this stay's sessions only
    totals: Counts

    @property
    def label(self) -> str:
        return f"episode {self.episode.id}" if self.episode is not None else NO_PATIENT

    def pod(self, day: date) -> int | None:
        return self.episode.pod(day) if self.episode is not None else None


@dataclass(frozen=True, slots=True)
class Adherence:
    units: tuple[str, ...]
    first: datetime | None         # first and last record times, as recorded
    last: datetime | None
    sessions: tuple[SessionOutcome, ...]
    days: tuple[Day, ...]
    gaps: tuple[Gap, ...]
    episodes: tuple[RecordedEpisode, ...]
    totals: Counts
    record_count: int
    type_counts: Mapping[str, int]
    unknown_types: Mapping[str, int]
    time_quality: Mapping[str, int]    # records per time quality (``tq``)
    skipped: int                       # records too malformed to use
    episode_filter: str | None = None
    stays: tuple[Stay, ...] = ()       # the record split by admission, in order; no-admission last
    impossible_times: int = 0          # records whose time no clock gives (not counted; core/wall.py)
    impossible_example: str | None = None   # why the first of them was refused
    clock_fault: str | None = None     # the record spans longer than any stay: what the report did about it
    more_sessions: int = 0             # sessions counted on their days but not listed (SESSIONS_A_DAY, SESSIONS_LISTED)
    more_events: int = 0               # events counted on their days but not listed (EVENTS_A_DAY, EVENTS_LISTED)
    settled_open: int = 0              # sessions still open when OPEN_AT_MOST newer ones came: counted open
    more_gaps: int = 0                 # gaps counted on the day they began but not listed (GAPS_LISTED)
    more_episodes: int = 0             # admissions past EPISODES_LISTED, counted together as MORE_EPISODES
    folded: int = 0                    # unlisted sessions counted with MORE_EPISODES (past TALLIES_AT_MOST)

    def stays_on(self, d: date) -> list[tuple[Stay, Day]]:
        """Each stay's part of local date ``d``."""
        return [(st, x) for st in self.stays for x in st.days if x.day == d]


# --- reading fields defensively ------------------------------------------------------

parse_time = wall.aware     # an aware datetime from an ISO string, keeping its offset; else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(v)


def _seconds(v: Any) -> int | None:
    """A duration in seconds no clock can contradict: a whole number of seconds from 0 to
    ``wall.LONGEST_SPAN`` (a crafted one beyond it would overflow the times it is taken from)."""
    n = _int(v)
    return n if n is not None and 0 <= n <= wall.LONGEST_SPAN.total_seconds() else None


def _date(v: Any) -> date | None:
    if not isinstance(v, str):
        return None
    try:
        return date.fromisoformat(v[:10])
    except ValueError:
        return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {_text(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(str(_text(x)) for x in v)
    return str(v)


def _short(v: str) -> str:
    """A record's text as the model keeps it: at most ``TEXT_AT_MOST`` characters."""
    return v if len(v) <= TEXT_AT_MOST else v[:TEXT_AT_MOST - 1] + "…"


def _name(counts: Counter[str], key: str, always: frozenset[str] = frozenset()) -> None:
    """Count ``key``, or ``OTHER`` once ``NAMES_AT_MOST`` other names are counted."""
    if key in always or key in counts or len(counts) < NAMES_AT_MOST + len(always):
        counts[_short(key)] += 1
    else:
        counts[OTHER] += 1


def _due_from_id(sid: str, like: datetime) -> datetime | None:
    """A session id starts with its local scheduled time; the offset is borrowed from a record."""
    try:
        local = datetime.fromisoformat(sid[:16])
    except ValueError:
        return None
    return local.replace(tzinfo=like.tzinfo)


# --- sessions ------------------------------------------------------------------------

@dataclass(slots=True)
class _Acc:
    """What the records say about one session so far."""

    id: str
    first_time: datetime
    kind: str | None = None
    due: datetime | None = None
    offer: datetime | None = None
    deferred: bool = False
    merged_into: str | None = None
    prompted: datetime | None = None
    started: datetime | None = None
    outcome: dict[str, Any] | None = None
    outcome_time: datetime | None = None
    snoozes: int = 0
    episode: str | None = None
    changeover: bool = False       # still open when an admission or discharge was recorded


_SETTLING = (*OUTCOMES, T.EXTRA)     # the records that settle a session, an extra one's included
_OUTCOME_FIELDS = ("type", "snoozes", "reason", "started", "late_min", "reps", "planned", "early", "duration_s",
                   "interrupted")


def _feed(acc: _Acc, rec: Mapping[str, Any], t: datetime) -> None:
    typ = rec.get("type")
    kind = rec.get("kind")
    if typ != T.PRESS and isinstance(kind, str) and acc.kind is None:
        acc.kind = kind
    if acc.due is None:
        acc.due = parse_time(rec.get("due"))
    if typ == T.DEFERRED:
        acc.offer = acc.offer or parse_time(rec.get("offer"))
        # Held over the night, unless only merged into a prompt at its own time (a DST gap,
        # or an hourly session meeting a held-over routine).
        acc.deferred = acc.deferred or acc.offer is None or acc.due is None or acc.offer != acc.due
        merged = rec.get("merged_into")
        if isinstance(merged, str):
            acc.merged_into = merged
    elif typ == T.PROMPT:
        if acc.prompted is None:
            acc.prompted = t
        if rec.get("deferred") is True:
            acc.deferred = True
            acc.offer = acc.offer or t
    elif typ == T.SNOOZE:
        acc.snoozes += 1
    elif typ == T.PRESS and rec.get("action") == "start" and acc.started is None:
        acc.started = t            # the patient began the guide, whatever happened next
    elif typ in _SETTLING and acc.outcome is None:
        # The unit records one outcome per session; anything after it is not believed.
        # Only the fields _session reads: a whole record per session (its hashes, boot, links)
        # made a long export's model several times the size it needs.
        acc.outcome, acc.outcome_time = {k: rec[k] for k in _OUTCOME_FIELDS if k in rec}, t


def _session(acc: _Acc) -> SessionOutcome | None:
    due = acc.due or _due_from_id(acc.id, acc.first_time)
    if due is None:
        return None
    kind = acc.kind or (acc.id.split(" ", 1)[1] if " " in acc.id else "session")
    offer = acc.offer or due
    merged = _short(acc.merged_into) if acc.merged_into is not None else None
    common = {"deferred": acc.deferred, "merged_into": merged, "prompted": acc.prompted,
              "snoozes": acc.snoozes, "episode": acc.episode}

    def make(**fields: Any) -> SessionOutcome:
        # Built once with every field (a ward reads tens of thousands: dataclasses.replace
        # on a first draft cost a third of this function).
        if isinstance(fields.get("reason"), str):
            fields["reason"] = _short(fields["reason"])
        return SessionOutcome(_short(acc.id), _short(kind), due, offer, **{**common, **fields})
    out = acc.outcome
    if acc.changeover or (out is not None and out.get("type") == T.MISSED and out.get("reason") == "discharged"):
        # Open across an admission or discharge: it belongs to neither patient's numbers.
        return make(outcome=CHANGEOVER, reason="discharged" if not acc.changeover else "changeover",
                    finished=acc.outcome_time)
    if out is None:
        if acc.merged_into is not None and acc.prompted is None:
            return make(outcome=MERGED)
        return make(outcome=OPEN if acc.prompted is not None else WAITING)
    snoozes = max(acc.snoozes, _int(out.get("snoozes")) or 0)
    if out.get("type") == T.PAUSED:
        return make(outcome=PAUSED, snoozes=snoozes, finished=acc.outcome_time)
    if out.get("type") == T.MISSED:
        reason = out.get("reason")
        return make(outcome=MISSED, reason=reason if isinstance(reason, str) else "unknown",
                        snoozes=snoozes, finished=acc.outcome_time, started=acc.started)
    if out.get("type") == T.INTERRUPTED:
        # Begun, never finished: reps only as far as they are known (None: unknown), no end time.
        reason = out.get("reason")
        started = acc.started or parse_time(out.get("started"))
        late = _int(out.get("late_min"))
        if late is None and started is not None:
            late = max(0, round((started - offer).total_seconds() / 60))
        return make(outcome=INTERRUPTED, reason=reason if isinstance(reason, str) else "unknown",
                        reps=_int(out.get("reps")), planned=_int(out.get("planned")), started=started,
                        late_min=late, snoozes=snoozes)
    reps, planned = _int(out.get("reps")), _int(out.get("planned"))
    partial = out.get("early") is True and reps is not None and planned is not None and reps < planned
    finished = acc.outcome_time
    duration = _seconds(out.get("duration_s"))
    started = finished - timedelta(seconds=duration) if finished and duration is not None else finished
    late = _int(out.get("late_min"))
    if late is None and started is not None:
        late = max(0, round((started - offer).total_seconds() / 60))
    if out.get("type") == EXTRA:
        if out.get("interrupted") is True:
            # Cut off by a power cut: begun, reps only as far as they are known, no end time.
            reason = out.get("reason")
            return make(outcome=EXTRA, reps=reps, planned=planned, started=parse_time(out.get("started")),
                           reason=reason if isinstance(reason, str) else "unknown")
        return make(outcome=EXTRA, reps=reps, planned=planned, started=started, finished=finished)
    return make(outcome=PARTIAL if partial else DONE, reps=reps, planned=planned, late_min=late,
                    started=started, finished=finished, snoozes=snoozes)


# --- what the model keeps ------------------------------------------------------------

_KEYS = (*DECIDED, MERGED, OPEN, WAITING, "late", "snoozed", "snoozes", "deferred", "more")
_AT = {k: i for i, k in enumerate(_KEYS)}


class _Tally:
    """A day's unlisted sessions of one episode, as ``_count`` counts them ("more": how many),
    in a list of numbers rather than a Counter (a crafted record can have one a day for 47,000 days)."""

    __slots__ = ("n", "reasons")

    def __init__(self) -> None:
        self.n = [0] * len(_KEYS)
        self.reasons: Counter[str] | None = None     # of the missed ones

    def add(self, s: SessionOutcome) -> None:
        n = self.n
        n[_AT[s.outcome]] += 1
        n[_AT["late"]] += s.late
        n[_AT["snoozed"]] += s.snoozes > 0
        n[_AT["snoozes"]] += s.snoozes
        n[_AT["deferred"]] += s.deferred
        n[_AT["more"]] += 1
        if s.outcome == MISSED:
            if self.reasons is None:
                self.reasons = Counter()
            _name(self.reasons, s.reason or "unknown")

    @property
    def more(self) -> int:
        return self.n[_AT["more"]]

    def counter(self) -> Counter[str]:
        return Counter({k: v for k, v in zip(_KEYS, self.n, strict=True) if v})


_Tallies = dict[date, list[_Tally]]


class _Sessions:
    """The settled sessions: listed in full up to ``SESSIONS_A_DAY`` a day and ``SESSIONS_LISTED``
    in all, in the order they were settled; the rest only counted, by offer day and episode, as
    ``_count`` counts them (so each day's numbers and the totals are the whole record's)."""

    def __init__(self) -> None:
        self.listed: list[SessionOutcome] = []
        self.per_day: Counter[date] = Counter()
        self.tally: dict[tuple[date, str | None], _Tally] = {}
        self.more = 0
        self.folded = 0            # counted with MORE_EPISODES: past TALLIES_AT_MOST (day, admission) pairs

    def add(self, s: SessionOutcome | None) -> None:
        if s is None:
            return
        if len(self.listed) < SESSIONS_LISTED and self.per_day[s.day] < SESSIONS_A_DAY:
            self.per_day[s.day] += 1
            self.listed.append(s)
            return
        self.more += 1
        key = (s.day, s.episode)
        t = self.tally.get(key)
        if t is None and len(self.tally) >= TALLIES_AT_MOST:
            # Only a crafted record spreads its sessions over so many days and admissions: the day's
            # numbers stay whole, the stay they count in is the later admissions'.
            self.folded += 1
            key = (s.day, MORE_EPISODES)
            t = self.tally.get(key)
        if t is None:
            t = self.tally[key] = _Tally()
        t.add(s)

    def nobody(self, ids: set[str]) -> None:
        """At a bed that records admissions, what was missed with no patient admitted was nobody's."""
        for (_, ep), t in self.tally.items():
            if ep is None or ep not in ids:
                t.n[_AT[NO_ONE]] += t.n[_AT[MISSED]]
                t.n[_AT[MISSED]] = 0
                t.reasons = None

    def tallies(self, wanted: Any = None) -> _Tallies:
        """The unlisted sessions by day, of the episodes ``wanted`` says yes to (all: None)."""
        out: _Tallies = {}
        for (d, ep), t in self.tally.items():
            if wanted is None or wanted(ep):
                out.setdefault(d, []).append(t)
        return out


class _Events:
    """The notable events: listed up to ``EVENTS_A_DAY`` a day and ``EVENTS_LISTED`` in all; the
    rest counted on their day."""

    def __init__(self) -> None:
        self.listed: list[Event] = []
        self.per_day: Counter[date] = Counter()
        self.more: Counter[date] = Counter()

    def append(self, e: Event) -> None:
        d = e.at.date()
        if len(self.listed) < EVENTS_LISTED and self.per_day[d] < EVENTS_A_DAY:
            self.per_day[d] += 1
            self.listed.append(Event(e.at, e.kind, _short(e.text)))
        else:
            self.more[d] += 1


class _Gaps:
    """The gaps: listed up to ``GAPS_LISTED``; the rest counted on the day they began (a power
    cut's minutes all on that day: a day's numbers stay near, the whole record's totals exact)."""

    def __init__(self) -> None:
        self.listed: list[Gap] = []
        self.more: Counter[date] = Counter()            # unlisted gaps by the day they began
        self.power: Counter[date] = Counter()           # of which power cuts
        self.minutes: Counter[date] = Counter()         # their minutes

    def append(self, g: Gap) -> None:
        if len(self.listed) < GAPS_LISTED:
            self.listed.append(g)
            return
        d = g.start.date()
        self.more[d] += 1
        if g.kind == "power_loss":
            self.power[d] += 1
            self.minutes[d] += g.minutes

    def power_between(self, lo: date, hi: date) -> tuple[int, int]:
        """Unlisted power cuts that began from ``lo`` to ``hi``, and their minutes."""
        days = [d for d in self.power if lo <= d <= hi]
        return sum(self.power[d] for d in days), sum(self.minutes[d] for d in days)


# --- the whole record ----------------------------------------------------------------

def build(records: Iterable[Mapping[str, Any]], *, episode: str | None = None,
          stay_now: bool = False) -> Adherence:
    """The adherence model of a journal's records (in seq order, as exported).

    ``episode`` limits sessions and days to one admission (records between its ``admit``
    and ``discharge``); totals then cover that episode only.

    ``stay_now``: only what a ward's row reads, the bed's stay now (``current_stay``): its
    sessions and its one ``Stay``; ``days`` and ``totals`` are left empty. The row's numbers
    are the same (each stay's days are made from its own sessions); the whole record's days
    and the other stays, which it never reads, are not made.
    """
    accs: dict[str, _Acc] = {}                   # the sessions followed now, oldest first (OPEN_AT_MOST)
    watch: dict[str, _Acc] = {}                  # of those, prompted with no outcome since the last admission
    settled = _Sessions()
    settled_open = 0
    gap_store = _Gaps()
    gaps = gap_store.listed
    events = _Events()
    episodes: dict[str, RecordedEpisode] = {}
    units: list[str] = []
    types: Counter[str] = Counter()
    tq: Counter[str] = Counter()
    first = last = None
    lowest = highest = None
    skipped = impossible = 0
    impossible_example: str | None = None
    current: str | None = None                  # the episode open at this point of the record
    current_name: str | None = None             # its id as recorded (MORE_EPISODES stands for those past the budget)
    more_episodes = 0
    prev_type: str | None = None
    prev_time: datetime | None = None
    count = 0
    for rec in records:
        count += 1
        typ = rec.get("type")
        t = None
        if isinstance(typ, str) and isinstance(rec.get("time"), str):
            try:
                t = wall.parse(rec["time"])      # refused here: a leap second, no offset, a year no unit shows
            except wall.ImpossibleTime as why:
                impossible += 1
                impossible_example = impossible_example or str(why)
                continue
        if not isinstance(typ, str) or t is None:
            skipped += 1
            continue
        lowest = t if lowest is None or t < lowest else lowest
        highest = t if highest is None or t > highest else highest
        _name(types, typ, KNOWN_TYPES)
        if isinstance(rec.get("tq"), str):
            _name(tq, rec["tq"])
        first = first or t
        last = t
        sid = rec.get("session")
        if isinstance(sid, str) and typ in SESSION_TYPES:
            acc = accs.get(sid)
            if acc is None:
                acc = accs[sid] = _Acc(sid, t, episode=current)
                if len(accs) > OPEN_AT_MOST:
                    # The oldest session followed can no longer be answered here (OPEN_AT_MOST newer
                    # ones came since it began): settled as it stands, as at the end of the record.
                    old = accs.pop(next(iter(accs)))
                    watch.pop(old.id, None)
                    gone = _session(old)
                    settled_open += gone is not None and gone.outcome in (OPEN, WAITING)
                    settled.add(gone)
            _feed(acc, rec, t)
            if acc.outcome is None and acc.prompted is not None:
                watch[sid] = acc
            else:
                watch.pop(sid, None)
        elif typ == T.START:
            unit = rec.get("unit")
            if isinstance(unit, str) and _short(unit) not in units and len(units) < NAMES_AT_MOST:
                units.append(_short(unit))
            if prev_type == T.STOP and prev_time is not None:
                gap_store.append(Gap("unit_off", prev_time, t))
        elif typ == T.POWER_LOSS:
            since = parse_time(rec.get("last_known")) or prev_time or t
            gap_store.append(Gap("power_loss", since, max(since, t)))
        elif typ == T.CLOCK_SET:
            events.append(Event(t, typ, _clock_text(rec)))
        elif typ in (T.FAULT, T.FAULT_CLEARED):
            part = _text(rec.get("part")) or "a part"
            problem = _text(rec.get("problem"))
            events.append(Event(t, typ, f"{part}: {problem}" if typ == T.FAULT and problem
                                else f"{part} recovered" if typ == T.FAULT_CLEARED else part))
        elif typ in (T.ADMIT, T.DISCHARGE):
            # Each prompted session is judged once, at the first admission or discharge after it
            # (its next record puts it back): linear, however many admissions there are.
            for acc in watch.values():
                if acc.merged_into is None and (t - acc.first_time) < _OPEN_AT_CHANGE:
                    acc.changeover = True
            watch.clear()
        if typ == T.ADMIT:
            eid = _short(_text(rec.get("episode")) or f"#{rec.get('seq')}")
            if eid in episodes or len(episodes) < EPISODES_LISTED:
                regimen = _text(rec.get("regimen"))
                episodes[eid] = RecordedEpisode(eid, t, _date(rec.get("surgery")),
                                                _short(regimen) if regimen is not None else None)
                current = eid
            else:
                more_episodes += 1
                later = episodes.get(MORE_EPISODES)
                episodes[MORE_EPISODES] = (replace(later, discharged=None) if later
                                           else RecordedEpisode(MORE_EPISODES, t))
                current = MORE_EPISODES
            current_name = eid
            events.append(Event(t, typ, f"Admitted: episode {eid}"))
        elif typ == T.DISCHARGE:
            left = _text(rec.get("episode"))
            left = _short(left) if left is not None else current_name
            if left is not None and left in episodes:
                e = episodes[left]
                episodes[left] = replace(e, discharged=t)
            elif left is not None and left == current_name and current == MORE_EPISODES:
                episodes[MORE_EPISODES] = replace(episodes[MORE_EPISODES], discharged=t)
            if left == current_name:
                current = current_name = None
            events.append(Event(t, typ, f"Discharged: episode {left}"))
        elif typ == T.REFUSED:
            command = _text(rec.get("command")) or "a command"
            events.append(Event(t, typ, f"Not accepted ({command}): {_text(rec.get('problem')) or 'no reason given'}"))
        elif typ == T.EXPORT:
            via = _text(rec.get("via")) or "?"
            events.append(Event(t, typ, f"Record downloaded ({via})"))
        elif typ == T.SECRET_SET:
            events.append(Event(t, typ, "Ward secret changed" if rec.get("replaced") is True else "Ward secret set"))
        elif typ == T.SOFTWARE_UPDATE:
            events.append(Event(t, typ, f"Software updated from {rec.get('old')} to {rec.get('new')}"))
        elif typ == T.SOFTWARE_ROLLBACK:
            events.append(Event(t, typ, f"Software {rec.get('from')} failed its check; back on {rec.get('to')}"))
        elif typ == T.SOFTWARE_UPDATE_REFUSED:
            events.append(Event(t, typ, f"Software update refused ({rec.get('reason')})"))
        elif typ == T.CONFIG_CHANGED:
            what = _text(rec.get("changed")) or "nothing visible"
            events.append(Event(t, typ, f"Ward configuration applied from a stick ({what})"))
        elif typ == T.SECRET_CHANGED:
            events.append(Event(t, typ, "Ward secret changed from a stick"))
        elif typ == T.SETTINGS_REFUSED:
            events.append(Event(t, typ, f"Ward settings from a stick not applied: {_text(rec.get('problem')) or '?'}"))
        prev_type, prev_time = typ, t

    eps = tuple(episodes.values())
    ids = set(episodes)
    now_ep = current_stay(eps) if stay_now else None
    for acc in accs.values():
        settled.add(_session(acc))
    if settled.folded and MORE_EPISODES not in episodes:
        episodes[MORE_EPISODES] = RecordedEpisode(MORE_EPISODES, None, discharged=last)
        eps = tuple(episodes.values())
        ids = set(episodes)
        now_ep = current_stay(eps) if stay_now else None
    if eps:
        settled.nobody(ids)
    wanted = None
    if stay_now:
        # The current stay's sessions alone: its episode's, or with no admission ever recorded
        # every session (no episode at all is open then: the bed's only stay).
        wanted = (lambda ep: ep == now_ep.id) if now_ep is not None else \
            (lambda ep: not eps and (ep is None or ep not in ids))
    elif episode is not None:
        wanted = lambda ep: ep == episode  # noqa: E731
    sessions = sorted((s for s in settled.listed if wanted is None or wanted(s.episode)),
                      key=lambda s: (s.offer, s.due, s.id))
    more = settled.tallies()
    fault = None
    if lowest is not None and highest is not None and not wall.span_ok(lowest, highest):
        # No stay lasts this long: the unit's clock was wrong for part of the record. Only the
        # days that have something on them are shown, so the report stays the record's size.
        fault = (f"The record's times run from {lowest:%d %b %Y} to {highest:%d %b %Y}, longer than any stay: the "
                 "unit's clock was wrong for part of it. Only days with records are shown.")
    if eps:
        # A bed that records admissions: with no patient admitted, nobody missed anything.
        sessions = [replace(s, outcome=NO_ONE) if s.outcome == MISSED and s.episode not in ids else s
                    for s in sessions]
    listed = _Listed(events.listed, events.more, settled, gap_store)
    if stay_now:
        stays = _stays(sessions, gaps, listed, (now_ep,) if now_ep is not None else (), first, last,
                       sparse=fault is not None, alone=not eps)
        return Adherence(tuple(units), first, last, tuple(sessions), (), tuple(gaps), eps, Counts(), count,
                         dict(types), {k: v for k, v in types.items() if k not in KNOWN_TYPES}, dict(tq), skipped,
                         None, tuple(stays), impossible, impossible_example, fault,
                         sum(t.more for d in settled.tallies(wanted).values() for t in d),
                         sum(events.more.values()), settled_open, sum(gap_store.more.values()), more_episodes,
                         settled.folded)
    if not eps and episode is None:
        # A bed that never recorded an admission: its one stay's days are the record's days that
        # have sessions (the same Day objects, not a second set: a clock fault can give 47,000).
        days = _days(sessions, gaps, listed, more, eps, first, last, None, sparse=fault is not None)
        mine = [x for x in days if x.sessions or x.more_sessions]
        stays = [Stay(None, tuple(mine), _totals(mine, gaps, gap_store))] if mine else []
    else:
        all_sessions = sorted(settled.listed, key=lambda s: (s.offer, s.due, s.id)) if episode is not None \
            else sessions
        stays = _stays(all_sessions, gaps, listed, eps, first, last, sparse=fault is not None)
        if episode is not None:
            stays = [st for st in stays if st.episode is not None and st.episode.id == episode]
            more = settled.tallies(wanted)
        days = _days(sessions, gaps, listed, more, eps, first, last, episodes.get(episode) if episode else None,
                     sparse=fault is not None)
    lo, hi = (days[0].day, days[-1].day) if days else (date.max, date.min)
    if episode is not None:
        gaps = [g for g in gaps if _touches(g, lo, hi)]
        cuts, minutes = gap_store.power_between(lo, hi)
    else:
        cuts, minutes = sum(gap_store.power.values()), sum(gap_store.minutes.values())
    totals = replace(sum((d.counts for d in days), Counts()),
                     gaps=sum(1 for g in gaps if g.kind == "power_loss") + cuts,
                     gap_minutes=sum(g.minutes for g in gaps if g.kind == "power_loss") + minutes)
    unknown = {k: v for k, v in types.items() if k not in KNOWN_TYPES}
    return Adherence(tuple(units), first, last, tuple(sessions), tuple(days), tuple(gaps), eps, totals, count,
                     dict(types), unknown, dict(tq), skipped, episode, tuple(stays), impossible, impossible_example,
                     fault, sum(t.more for d in more.values() for t in d), sum(events.more.values()),
                     settled_open, sum(gap_store.more[d] for d in gap_store.more if lo <= d <= hi), more_episodes,
                     settled.folded)


def current_stay(episodes: Iterable[RecordedEpisode]) -> RecordedEpisode | None:
    """The episode a bed has now: the newest not discharged (None: an empty bed, or a bed that
    never recorded an admission, whose only stay is the one with no patient)."""
    return next((e for e in reversed(tuple(episodes)) if e.discharged is None), None)


@dataclass(frozen=True, slots=True)
class _Listed:
    """The events listed, those counted only, and the settled sessions (for their tallies)."""

    events: list[Event]
    events_more: Mapping[date, int]
    settled: _Sessions
    gaps: _Gaps


def _stays(sessions: list[SessionOutcome], gaps: list[Gap], listed: _Listed, eps: tuple[RecordedEpisode, ...],
           first: datetime | None, last: datetime | None, *, sparse: bool = False, alone: bool = True) -> list[Stay]:
    out = []
    mine_by: dict[str | None, list[SessionOutcome]] = {}
    for s in sessions:
        mine_by.setdefault(s.episode, []).append(s)
    more_by: dict[str | None, _Tallies] = {}
    for (d, ep), t in listed.settled.tally.items():
        more_by.setdefault(ep, {}).setdefault(d, []).append(t)
    for e in eps:
        more = more_by.get(e.id, {})
        days = _days(mine_by.get(e.id, []), gaps, listed, more, (e,), first, last, e, sparse=sparse)
        out.append(Stay(e, tuple(days), _totals(days, gaps, listed.gaps)))
    if not alone:
        return out
    ids = {e.id for e in eps}
    alone_sessions = [s for s in sessions if s.episode is None or s.episode not in ids]
    more = listed.settled.tallies(lambda ep: ep is None or ep not in ids)
    if alone_sessions or more:
        # Only the days that have such sessions: an empty bed's quiet days say nothing.
        days = [x for x in _days(alone_sessions, gaps, listed, more, (), None, None, None, sparse=sparse)
                if x.sessions or x.more_sessions]
        out.append(Stay(None, tuple(days), _totals(days, gaps, listed.gaps)))
    return out


def _totals(days: list[Day], gaps: list[Gap], store: _Gaps) -> Counts:
    totals = sum((d.counts for d in days), Counts())
    if not days:
        return totals
    lo, hi = days[0].day, days[-1].day
    power = [g for g in gaps if g.kind == "power_loss" and _touches(g, lo, hi)]
    cuts, minutes = store.power_between(lo, hi)
    # A gap spanning midnight touches two days but is one gap.
    return replace(totals, gaps=len(power) + cuts, gap_minutes=sum(g.minutes for g in power) + minutes)


def _clock_text(rec: Mapping[str, Any]) -> str:
    old, new = parse_time(rec.get("old")), parse_time(rec.get("new"))
    jump = rec.get("jump_s")
    size = ""
    if isinstance(jump, int | float) and not isinstance(jump, bool):
        mins = round(jump / 60)
        size = f" ({'+' if jump >= 0 else '−'}{abs(mins)} min)" if abs(jump) >= 60 else f" ({jump:+.0f} s)"
    if old and new:
        return f"Clock changed from {old:%H:%M} to {new:%H:%M}{size}"
    return f"Clock changed{size}"


def clip(g: Gap, d: date) -> tuple[datetime, datetime] | None:
    """The part of a gap on local date ``d``, as naive wall-clock times (for drawing)."""
    lo = datetime.combine(d, datetime.min.time())
    hi = lo + timedelta(days=1)
    a, b = g.start.replace(tzinfo=None), g.end.replace(tzinfo=None)
    a, b = max(a, lo), min(b, hi)
    return (a, b) if a < b else None


def _touches(g: Gap, lo: date, hi: date) -> bool:
    return g.start.date() <= hi and g.end.date() >= lo


def _days(sessions: list[SessionOutcome], gaps: list[Gap], listed: _Listed, more: _Tallies,
          episodes: tuple[RecordedEpisode, ...], first: datetime | None, last: datetime | None,
          only: RecordedEpisode | None, *, sparse: bool = False) -> list[Day]:
    """Every local date from the first to the last, or with ``sparse`` (a clock fault made the
    span longer than any stay) only the dates with sessions, events, gaps or an episode's ends.
    ``more``: the sessions counted but not listed, by day (``_Sessions.tallies``)."""
    dates = {s.day for s in sessions} | set(more)
    if only is None:
        if first is not None and last is not None:
            dates |= {first.date(), last.date()}
    else:
        if only.admitted is not None:
            dates.add(only.admitted.date())
        if only.discharged is not None:
            dates.add(only.discharged.date())
        elif last is not None:
            dates.add(last.date())
    if not dates:
        return []
    lo, hi = min(dates), max(dates)
    if only is not None and only.admitted is not None:
        lo = max(lo, only.admitted.date())
    # Grouped once: a month of a ward's records would otherwise be walked once per day.
    by_day: dict[date, list[SessionOutcome]] = {}
    for s in sessions:
        by_day.setdefault(s.day, []).append(s)
    events_by_day: dict[date, list[Event]] = {}
    for e in listed.events:
        events_by_day.setdefault(e.at.date(), []).append(e)
    held_by_day: dict[date, list[SessionOutcome]] = {}
    for s in sessions:
        if s.deferred and s.due.date() != s.day:
            held_by_day.setdefault(s.due.date(), []).append(s)
    # Each gap on the days it touches (walked from both ends: a gap a clock fault made decades long
    # is on its first and last days, at most ``LONGEST_SPAN`` from each, not on every day between).
    gaps_by_day: dict[date, list[Gap]] = {}
    reach = wall.LONGEST_SPAN.days + 1
    for g in gaps:
        a, b = max(g.start.date(), lo), min(g.end.date(), hi)
        n = (b - a).days + 1
        if n <= 0 and lo <= g.start.date() <= hi:
            gaps_by_day.setdefault(g.start.date(), []).append(g)    # ends before it began: its first day
        for k in sorted({*range(min(n, reach)), *range(max(n - reach, 0), n)}) if n > 0 else ():
            gaps_by_day.setdefault(a + timedelta(days=k), []).append(g)
    if sparse:
        marks = {*dates, *by_day, *events_by_day, *listed.events_more, *listed.gaps.more,
                 *(g.start.date() for g in gaps), *(g.end.date() for g in gaps)}
        wanted = sorted(x for x in marks if lo <= x <= hi)
    else:
        wanted = [lo + timedelta(days=k) for k in range((hi - lo).days + 1)]
    out = []
    for d in wanted:
        todays = tuple(by_day.get(d, ()))
        dgaps = tuple(g for g in gaps_by_day.get(d, ()) if clip(g, d) is not None or
                      (g.start.date() == d and g.minutes == 0))
        devents = tuple(events_by_day.get(d, ()))
        deps = tuple(e for e in episodes if _episode_on(e, d))
        dmore = more.get(d, [])
        counts = _count(todays, dgaps, d, dmore)
        if d in listed.gaps.more:
            counts = replace(counts, gaps=counts.gaps + listed.gaps.power[d],
                             gap_minutes=counts.gap_minutes + listed.gaps.minutes[d])
        out.append(Day(d, todays, dgaps, devents, deps, counts, tuple(held_by_day.get(d, ())),
                       sum(t.more for t in dmore), listed.events_more.get(d, 0), listed.gaps.more.get(d, 0)))
    return out


def _episode_on(e: RecordedEpisode, d: date) -> bool:
    if e.admitted is None or e.admitted.date() > d:
        return False
    return e.discharged is None or e.discharged.date() >= d


_NO_REASONS: Mapping[str, int] = MappingProxyType({})     # shared: most days have none (47,000 can)


def _tally(c: Counter[str], reasons: Counter[str], s: SessionOutcome) -> None:
    c[s.outcome] += 1
    c["late"] += s.late
    c["snoozed"] += s.snoozes > 0
    c["snoozes"] += s.snoozes
    c["deferred"] += s.deferred
    if s.outcome == MISSED:
        _name(reasons, s.reason or "unknown")


def _count(sessions: Iterable[SessionOutcome], gaps: Iterable[Gap], d: date, more: Iterable[_Tally] = ()) -> Counts:
    c: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for s in sessions:
        _tally(c, reasons, s)
    for t in more:
        c.update(t.counter())
        if t.reasons:
            reasons.update(t.reasons)
    power = [g for g in gaps if g.kind == "power_loss"]
    minutes = 0
    for g in power:
        part = clip(g, d)
        if part is not None:
            minutes += round((part[1] - part[0]).total_seconds() / 60)
    done = c[DONE] + c[PARTIAL] + c[INTERRUPTED]
    return Counts(due=done + c[MISSED], done=done, partial=c[PARTIAL], interrupted=c[INTERRUPTED],
                  late=c["late"], snoozed=c["snoozed"],
                  snoozes=c["snoozes"], missed=c[MISSED], deferred=c["deferred"], merged=c[MERGED],
                  open=c[OPEN] + c[WAITING], gaps=len(power), gap_minutes=minutes,
                  missed_reasons=dict(reasons) if reasons else _NO_REASONS,
                  paused=c[PAUSED], extra=c[EXTRA], nobody=c[CHANGEOVER] + c[NO_ONE])
