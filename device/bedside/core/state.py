"""What the session state machine knows: its state, as frozen dataclasses, and its timings.

``machine.step`` makes a new ``State`` from the old one and an event; ``views`` draws what
the patient sees from it. Nothing here reads a clock: every time is handed in.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar

from bedside.core import guide, planner
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.episodes import UNADMITTED, VACANT, Episode
from bedside.core.events import Confirm, Instant
from bedside.core.records import T

DEBOUNCE_S = 0.05          # edges closer than this to the last accepted one are contact bounce
LONG_S = 2.0               # released after this: snooze
NURSE_S = 5.0              # held this long: nurse screen
STUCK_S = 60.0             # held this long: stuck, ignored until released
PROGRESS_S = 8.0           # a press with nothing due shows progress this long
DONE_S = 10.0
HINT_S = 4.0
NURSE_PAGE_S = 6.0         # the nurse screen turns its pages this often, twice round, then returns
EPISODE_S = 10.0           # an admission or discharge is confirmed on screen this long
STICK_S = 30.0             # a USB stick export's result stays on screen this long (or until a press)
STICK_BUSY_S = 600.0       # "Exporting" at most this long (the stick channel always reports the end)
NIGHT_WAKE_S = 15.0        # a press at night lights the dimmed display this long
# The loop wakes at least this often, to notice a wall clock set from outside (the unit's own
# clock setting is an input and acts at once). By day the idle clock's minute wakes it anyway;
# at night this is the unit's only wake-up, and the watchdog's pings ride on it.
MAX_SLEEP_S = 300.0
JUMP_S = 2.0
# The hold's bar shrinks in steps of this, on the same instants as its count of seconds: a frame
# a second is every change the patient can read (four a second cost a wake-up and an I2C
# transfer each, about 4,000 a day, for a bar that moved a few pixels).
HOLD_FRAME_S = 1.0
OUTAGE_LOOKBACK = timedelta(days=7)
# Burn-in orbit: screens that stay up for minutes move one pixel a minute through every
# position of a 5x5 square; the path closes with one diagonal step, so no move is ever larger.
ORBIT = ((-2, -2), (-1, -2), (0, -2), (1, -2), (2, -2), (2, -1), (2, 0), (2, 1), (2, 2), (1, 2), (0, 2),
         (-1, 2), (-2, 2), (-2, 1), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (0, 0), (-1, 0),
         (-2, 0), (-2, -1), (-1, -1))

# What the state remembers of each session: the record that settled it (``records.OUTCOMES``; an
# extra session's ``extra``), ``deferred``, or ``prompted`` while it is open.
DONE, MISSED, DEFERRED, PAUSED = T.DONE, T.MISSED, T.DEFERRED, T.PAUSED
INTERRUPTED = T.INTERRUPTED    # started, then the unit stopped (a power cut) before it ended
PROMPTED = "prompted"          # no record type: offered, not yet settled


_D = TypeVar("_D")
# Per class: how to read all its fields at once, and each field's place in that tuple; None
# when the class cannot be built from its fields in order (then ``dataclasses.replace``).
_FIELDS: dict[type, tuple[Callable[[Any], tuple[Any, ...]], dict[str, int]] | None] = {}


def replace(obj: _D, **changes: Any) -> _D:
    """``dataclasses.replace`` for the state's frozen, slotted dataclasses, at a third of its cost.

    The machine makes a new state several times on every turn of the loop; the standard
    function looks up and filters the class's fields each time. Same result: the class is
    built through its own ``__init__`` from the old values and the changes (an unknown name
    is a ``TypeError`` as there). That shortcut holds only when ``__init__`` takes exactly the
    fields, in order, by position; a class with a field declared ``init=False`` or
    ``kw_only``, an ``InitVar`` or an ``__init__`` of its own goes to ``dataclasses.replace``
    itself (tests/core/test_state_replace.py holds the two to the same answers).
    """
    cls = type(obj)
    try:
        known = _FIELDS[cls]
    except KeyError:
        known = _FIELDS[cls] = _positional(cls)
    if known is None:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    values = list(known[0](obj))       # one call for all the fields
    where = known[1]
    for name, value in changes.items():
        i = where.get(name)
        if i is None:
            raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument {name!r}")
        values[i] = value
    return cls(*values)


def _positional(cls: type) -> tuple[Callable[[Any], tuple[Any, ...]], dict[str, int]] | None:
    """How ``replace`` reads ``cls``'s fields, or None when its ``__init__`` is not the fields,
    in order, each taken by position."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    params = list(inspect.signature(cls).parameters.values())
    if tuple(p.name for p in params) != names or any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
        return None
    # attrgetter of one name gives the value, not a tuple; of none, it cannot be made.
    get: Callable[[Any], tuple[Any, ...]] = (attrgetter(*names) if len(names) > 1
                                             else lambda o: tuple(getattr(o, n) for n in names))
    return get, {n: i for i, n in enumerate(names)}


@dataclass(frozen=True, slots=True)
class Prompting:
    session: planner.Session
    first_offer: datetime          # wall time of the first prompt
    offered_mono: float
    next_repeat: float
    missed_at: float
    snoozes: int = 0
    snoozed_until: float | None = None
    repeats: int = 0


@dataclass(frozen=True, slots=True)
class Guiding:
    prompt: Prompting
    steps: tuple[guide.Step, ...]
    index: int
    step_started: float
    started_wall: datetime
    started_mono: float


@dataclass(frozen=True, slots=True)
class Button:
    down: bool = False             # debounced level
    raw: bool = False              # last level the pin reported
    changed: float = -1e18         # monotonic time of the last accepted change
    down_at: float = 0.0
    stage: int = 0                 # 0 pressed, 1 past LONG_S, 2 past NURSE_S, 3 stuck


@dataclass(frozen=True, slots=True)
class Overlay:
    screen: sc.Screen
    until: float                   # monotonic; inf = until the button is released
    since: float = 0.0             # monotonic time it appeared (the nurse screen turns pages from it)


@dataclass(frozen=True, slots=True)
class Confirming:
    """A change waiting for a press at the unit (see ``Confirm``)."""

    ask: Confirm
    asked: float                   # monotonic
    until: float


@dataclass(frozen=True, slots=True)
class State:
    last: Instant
    cursor: datetime                               # plan events up to here are handled
    outcomes: Mapping[str, str] = field(default_factory=dict)
    active: Prompting | Guiding | None = None
    waiting: tuple[planner.Session, ...] = ()      # offered while a guide ran
    button: Button = Button()
    overlay: Overlay | None = None
    night_light_until: float = 0.0
    time_quality: str = "unverified"
    stale_reason: str | None = None                # why plan events older than now were not offered in time
    problems: Mapping[str, str] = field(default_factory=dict)
    head: str = "-"
    episode: Episode | None = None                 # the patient admitted, if any (ids only)
    plan_changed: datetime | None = None           # the last admission or discharge (today's plan may differ)
    last_export: datetime | None = None            # the latest download, for the nurse screen
    activity: float = 0.0                          # monotonic time of the last press, prompt or admission
    resume_from: datetime | None = None            # while the clock is distrusted: the journal's last known time
    confirm: Confirming | None = None              # a change asked for over the serial link, awaiting a press
    paused_until: datetime | None = None           # a nurse's pause: no prompts, no sound until then
    power_cut: tuple[datetime, float] | None = None  # the last power cut: when it began, how many seconds
    storage_outage: datetime | None = None         # the journal could not be written, since the last download
    unadmitted_since: date | None = None           # no one admitted: the first start at this bed, or the discharge
    vacant: bool = False                           # a discharge left the bed empty: silent until an admission or press


def plan_episode(cfg: Config, st: State) -> Episode | None:
    """The episode the plan follows: the admitted one or, with no one admitted (and the unit not
    ``quiet``), the default regimen counted from the first start at this bed or the last
    discharge, so an unadmitted unit steps down as the regimen does instead of prompting every
    hour for ever. The stand-in has no id and is never recorded or shown as an admission. After a
    discharge, until an admission or a press, the bed is vacant: nothing is planned."""
    if st.episode is None and st.vacant:
        return Episode(VACANT, st.unadmitted_since or date.min, cfg.default_regimen)
    if st.episode is not None or st.unadmitted_since is None or cfg.without_episode == "quiet":
        return st.episode
    return Episode(UNADMITTED, st.unadmitted_since, cfg.default_regimen)


def seconds_between(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds()


def mono_at(now: Instant, wall: datetime) -> float:
    return now.mono + seconds_between(wall, now.wall)


def iso(t: datetime, cfg: Config) -> str:
    return t.astimezone(cfg.tz).isoformat(timespec="seconds")


def hhmm(t: datetime, cfg: Config) -> str:
    return t.astimezone(cfg.tz).strftime("%H:%M")


def local_date(cfg: Config, now: Instant) -> date:
    """The local calendar date, as episodes count post-operative days."""
    return planner.local(now.wall, cfg.tz).date()
