"""Changes a nurse can ask for over the serial link: one registration per kind.

Each one needs the link unlocked and then a press on the unit while its display shows the
change (``events.Confirm``): the press is the proof that someone is at the bedside.

A kind is registered once (``register``, at the end of this module), the way a command is
registered with its help beside it: its words (the frame's verb, the typed form and the
``help`` line), its parsers, its title on the unit's screen, ``problem`` (why the unit
would refuse it now), the core ``event`` a press turns it into, the ``outcome`` the asker
is told, and the ``sentence`` a person at a terminal reads. The link's dispatchers
(``commands.py``, ``port.py``), its part on the loop (``on_loop.py``) and its texts read
the kind from here and know no kind by name. Everything here is pure; applying a
confirmed change is the shell's job (``on_loop.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from bedside.core import episodes, events, pause
from bedside.core.config import Config
from bedside.core.errors import BedsideError
from bedside.core.events import Instant, SetClock
from bedside.core.state import State

CONFIRM_S = 60.0
EARLIEST = datetime(2024, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_CLOCK = re.compile(r"(?:(\d{4})-(\d{2})-(\d{2})[ T])?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


class ChangeError(BedsideError, ValueError):
    """What was typed is not a change the unit can make; the message says how to write it."""


class Change(Protocol):
    """A change as a value: what the journal says of it, and what the confirmation screen shows."""

    def text(self, tz: ZoneInfo) -> str:
        """In words, for the journal (``change_declined``)."""
        ...

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        """The two lines the confirmation screen shows under the kind's title."""
        ...


C = TypeVar("C", bound=Change)
Detail = dict[str, Any]


def _no_problem(change: Any, cfg: Config, st: State, now: Instant) -> str | None:
    return None


def _no_clock(change: Any) -> datetime | None:
    return None


def _no_detail(cfg: Config, st: State, now: Instant) -> Detail:
    return {}


@dataclass(frozen=True)
class Kind(Generic[C]):
    """One kind of change, registered once with everything the link does with it."""

    word: str                                            # the frame's verb, and ``what`` in the journal
    value: type[C]                                       # the change as a value (``Change``)
    title: str                                           # the confirmation screen's title
    typed: tuple[str, ...]                               # the words typed before its arguments
    forms: tuple[tuple[str, str], ...]                   # (form, what it does), as ``help`` lists them
    parse: Callable[[tuple[str, ...]], C]                # a frame's arguments (the nurse tool)
    event: Callable[[C, float], events.Event | SetClock]  # the core's event once pressed (seconds waited)
    sentence: Callable[[Mapping[str, Any]], str]         # a confirmed outcome, after "Confirmed on the unit."
    read: Callable[[tuple[str, ...], ZoneInfo, date], C] | None = None   # typed arguments; None: as ``parse``
    problem: Callable[[C, Config, State, Instant], str | None] = _no_problem   # why the unit refuses it now
    outcome: Callable[[Config, State, Instant], Detail] = _no_detail   # what the asker is told once it is done
    clock: Callable[[C], datetime | None] = _no_clock    # a time the screen shows moving on from the asking
    core_checks: bool = False    # the core checks it too and records a refusal: the event goes to the core
                                 # even when refused at once, and the check is asked again after the press

    def read_typed(self, args: tuple[str, ...], tz: ZoneInfo, today: date) -> C:
        return self.read(args, tz, today) if self.read is not None else self.parse(args)


KINDS: dict[str, Kind[Any]] = {}


def register(kind: Kind[C]) -> Kind[C]:
    """Add a kind of change: its frame verb and its typed words must be new."""
    if kind.word in KINDS or any(k.value is kind.value or k.typed == kind.typed for k in KINDS.values()):
        raise ValueError(f"change kind {kind.word!r} is registered already")
    KINDS[kind.word] = kind
    return kind


def kind_of(change: Change) -> Kind[Any]:
    """The registered kind of a change value."""
    for kind in KINDS.values():
        if type(change) is kind.value:
            return kind
    raise LookupError(f"{type(change).__name__} is not a registered change")


def typed_change(word: str, args: tuple[str, ...]) -> tuple[Kind[Any], tuple[str, ...]] | None:
    """The kind a typed line asks for (``word`` lower case, as ``lines.parse_command`` gives it), and
    the arguments after its words; None when the line is no change."""
    for kind in KINDS.values():
        head, rest = kind.typed[0], kind.typed[1:]
        if word == head and len(args) >= len(rest) and all(a.lower() == w for a, w in zip(args, rest, strict=False)):
            return kind, args[len(rest):]
    return None

@dataclass(frozen=True, slots=True)
class ClockChange:
    """Set the wall clock to ``wall`` as it was when asked; it moves on while the press is awaited."""

    wall: datetime

    def text(self, tz: ZoneInfo) -> str:
        return f"set the clock to {self.wall.astimezone(tz):%Y-%m-%d %H:%M:%S}"

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        t = self.wall.astimezone(tz)
        return t.strftime("%a %d %b %Y"), t.strftime("%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Admit:
    """Start an episode: the hospital's episode id (never a name), the date of surgery, a regimen."""

    episode: str
    surgery: date
    regimen: str | None = None
    mrn: str | None = None

    def text(self, tz: ZoneInfo) -> str:
        regimen = f", regimen {self.regimen}" if self.regimen else ""
        mrn = f", MRN {self.mrn}" if self.mrn else ""
        return f"admit episode {self.episode}, surgery {self.surgery:%Y-%m-%d}{regimen}{mrn}"

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        # Both as the nurse typed them: the surgery date and the regimen (a 128-pixel line holds 21 characters).
        return self.episode, f"{self.surgery:%d %b} · {self.regimen or 'default'}"


@dataclass(frozen=True, slots=True)
class Discharge:
    """End the current episode (``episode``, when given, must be the one admitted)."""

    episode: str | None = None

    def text(self, tz: ZoneInfo) -> str:
        return f"discharge episode {self.episode}" if self.episode else "discharge the patient (end the episode)"

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        return (f"Ep {self.episode}", "End the episode") if self.episode else ("End the episode", "")


@dataclass(frozen=True, slots=True)
class Pause:
    """Pause prompting for ``duration`` (``1h``, ``2h``, ``4h`` or ``morning``; core/pause.py)."""

    duration: str

    def text(self, tz: ZoneInfo) -> str:
        return f"pause prompting: {pause.label(self.duration).lower()}"

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        return pause.label(self.duration), "No prompts, no sound"


@dataclass(frozen=True, slots=True)
class Resume:
    """End a pause now."""

    def text(self, tz: ZoneInfo) -> str:
        return "resume prompting now"

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        return "End the pause", ""


def _in_range(t: datetime) -> datetime:
    if not EARLIEST <= t < LATEST:
        raise ChangeError(f"{t:%Y-%m-%d} cannot be right; give the date and time as YYYY-MM-DD HH:MM")
    return t


def parse_clock(args: tuple[str, ...], tz: ZoneInfo, today: date) -> ClockChange:
    """``time set`` as typed: ``YYYY-MM-DD HH:MM[:SS]``, ``YYYY-MM-DDTHH:MM[:SS]`` or ``HH:MM[:SS]`` (today).

    Local time in the unit's zone unless an offset is given.
    """
    text = " ".join(args).strip()
    hint = "write the new time as YYYY-MM-DD HH:MM (or HH:MM for today), local time"
    m = _CLOCK.fullmatch(text)
    if not m:
        raise ChangeError(hint)
    y, mo, d = (int(m[1]), int(m[2]), int(m[3])) if m[1] else (today.year, today.month, today.day)
    try:
        zone = datetime.fromisoformat("2000-01-01T00:00" + m[7].replace("Z", "+00:00")).tzinfo if m[7] else None
        t = datetime(y, mo, d, int(m[4]), int(m[5]), int(m[6] or 0), tzinfo=zone)
    except ValueError as e:
        raise ChangeError(f"not a real date and time ({e}); {hint}") from None
    if t.tzinfo is None:
        t = _local(t, tz)
    return ClockChange(_in_range(t.astimezone(UTC)))


def _local(naive: datetime, tz: ZoneInfo) -> datetime:
    """Local wall time to an aware one; a time inside a spring-forward gap is refused."""
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ChangeError(f"{naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (the clocks go forward then)")
    return aware


def parse_clock_machine(arg: str) -> ClockChange:
    """The tool's form: an ISO 8601 time with its offset (the laptop's clock, to the millisecond)."""
    try:
        t = datetime.fromisoformat(arg.replace("Z", "+00:00"))
    except ValueError:
        raise ChangeError("time must be ISO 8601 with an offset") from None
    if t.tzinfo is None:
        raise ChangeError("time must carry its UTC offset")
    return ClockChange(_in_range(t.astimezone(UTC)))


def parse_admit(args: tuple[str, ...]) -> Admit:
    """``episode admit EPISODE-ID SURGERY-DATE [REGIMEN] [mrn=NUMBER]`` (the unit's rules check the
    values). EPISODE-ID is the hospital's visit number, typed or scanned from the wristband."""
    hint = ("write: episode admit EPISODE-ID SURGERY-DATE [REGIMEN] [mrn=NUMBER], e.g. episode admit E2026-0042 "
            "2026-11-23")
    mrn = None
    if args and args[-1].lower().startswith("mrn="):
        mrn, args = args[-1][4:], args[:-1]
    if not 2 <= len(args) <= 3:
        raise ChangeError(hint)
    try:
        surgery = date.fromisoformat(args[1])
    except ValueError:
        raise ChangeError(f"{args[1]!r} is not a date written YYYY-MM-DD; {hint}") from None
    return Admit(args[0], surgery, args[2] if len(args) == 3 else None, mrn or None)


def parse_discharge(args: tuple[str, ...]) -> Discharge:
    """``episode discharge [EPISODE-ID]``."""
    if len(args) > 1:
        raise ChangeError("write: episode discharge [EPISODE-ID]")
    return Discharge(args[0] if args else None)


def parse_pause(args: tuple[str, ...]) -> Pause:
    """``pause DURATION``: 1h, 2h, 4h or morning (until the awake window next opens)."""
    hint = "write: pause 1h, pause 2h, pause 4h or pause morning"
    if len(args) != 1:
        raise ChangeError(hint)
    try:
        return Pause(pause.parse(args[0]))
    except pause.PauseError as e:
        raise ChangeError(f"{e}; {hint}") from None


def parse_resume(args: tuple[str, ...]) -> Resume:
    """``resume``: end the pause now."""
    if args:
        raise ChangeError("write: resume")
    return Resume()


def parse_clock_frame(args: tuple[str, ...]) -> ClockChange:
    """``time TIME``, the tool's frame: one ISO 8601 time with its offset."""
    if len(args) != 1:
        raise ChangeError("bad arguments for time")
    return parse_clock_machine(args[0])


# --- what a confirmed change does, and what the asker is told ------------------------------

def _local_iso(t: datetime | None, cfg: Config, timespec: str) -> str | None:
    return t.astimezone(cfg.tz).isoformat(timespec=timespec) if t is not None else None


def _set_clock(c: ClockChange, waited_s: float) -> SetClock:
    # The clock moves on from the time asked while the press was awaited.
    return SetClock(c.wall + timedelta(seconds=waited_s), "nurse")


def _clock_sentence(d: Mapping[str, Any]) -> str:
    return f"Clock was {str(d['old'])[:19].replace('T', ' ')}, now {str(d['new'])[:19].replace('T', ' ')}."


def _admit_problem(c: Admit, cfg: Config, st: State, now: Instant) -> str | None:
    return episodes.admit_problem(cfg, c.episode, c.surgery, c.regimen, now.wall.astimezone(cfg.tz).date(), c.mrn)


def _discharge_problem(c: Discharge, cfg: Config, st: State, now: Instant) -> str | None:
    return episodes.discharge_problem(st.episode, c.episode)


def _episode_outcome(cfg: Config, st: State, now: Instant) -> Detail:
    """After an admission or a discharge: the episode the unit now has, or none."""
    ep = st.episode
    if ep is None:
        return {"discharged": True}
    return {"episode": ep.id, "regimen": ep.regimen,
            "day": episodes.post_op_day(ep, now.wall.astimezone(cfg.tz).date())}


def _episode_sentence(d: Mapping[str, Any]) -> str:
    if "episode" in d:
        return f"Episode {d['episode']} admitted, regimen {d['regimen']}, post-operative day {d['day']}."
    return "The patient is discharged; the episode is closed."


def _resume_problem(c: Resume, cfg: Config, st: State, now: Instant) -> str | None:
    return "prompting is not paused" if st.paused_until is None else None


def _pause_outcome(cfg: Config, st: State, now: Instant) -> Detail:
    return {"paused_until": _local_iso(st.paused_until, cfg, "seconds")}


def _pause_sentence(d: Mapping[str, Any]) -> str:
    until = d.get("paused_until")
    return (f"Prompting paused until {str(until)[:16].replace('T', ' ')}: no prompts, no sound." if until else
            "Prompting goes on.")


# --- the kinds ------------------------------------------------------------------------------

register(Kind(
    "time", ClockChange, title="Set clock?", typed=("time", "set"),
    forms=(("time set YYYY-MM-DD HH:MM", "set the clock (local time; HH:MM: today)"),),
    parse=parse_clock_frame, read=parse_clock, event=_set_clock, clock=lambda c: c.wall,
    sentence=_clock_sentence))

register(Kind(
    "admit", Admit, title="Admit patient?", typed=("episode", "admit"),
    forms=(("episode admit EPISODE-ID SURGERY-DATE [REGIMEN] [mrn=NUMBER]",
            "admit: hospital visit number or scan, no name"),),
    parse=parse_admit, event=lambda c, _: events.Admit(c.episode, c.surgery, c.regimen, via="serial", mrn=c.mrn),
    problem=_admit_problem, core_checks=True, outcome=_episode_outcome, sentence=_episode_sentence))

register(Kind(
    "discharge", Discharge, title="Discharge?", typed=("episode", "discharge"),
    forms=(("episode discharge [EPISODE-ID]", "end the episode"),),
    parse=parse_discharge, event=lambda c, _: events.Discharge(c.episode, via="serial"),
    problem=_discharge_problem, core_checks=True, outcome=_episode_outcome, sentence=_episode_sentence))

register(Kind(
    "pause", Pause, title="Pause prompts?", typed=("pause",),
    forms=(("pause 1h|2h|4h|morning", "pause prompting: no prompts, no sound"),),
    parse=parse_pause, event=lambda c, _: events.Pause(c.duration, via="serial"),
    outcome=_pause_outcome, sentence=_pause_sentence))

register(Kind(
    "resume", Resume, title="Resume prompts?", typed=("resume",),
    forms=(("resume", "end a pause now"),),
    parse=parse_resume, event=lambda c, _: events.Resume(via="serial"),
    problem=_resume_problem, outcome=_pause_outcome, sentence=_pause_sentence))
