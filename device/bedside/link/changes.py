"""Changes a nurse can ask for over the serial link, as values: parsed, described, checked.

Each one needs the link unlocked and then a press on the unit while its display shows the
change (``events.Confirm``): the press is the proof that someone is at the bedside.
Parsing is pure; applying a confirmed change is the shell's job (``on_loop.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bedside.core import pause
from bedside.core.errors import BedsideError

CONFIRM_S = 60.0
EARLIEST = datetime(2024, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_CLOCK = re.compile(r"(?:(\d{4})-(\d{2})-(\d{2})[ T])?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


class ChangeError(BedsideError, ValueError):
    """What was typed is not a change the unit can make; the message says how to write it."""


@dataclass(frozen=True, slots=True)
class ClockChange:
    """Set the wall clock to ``wall`` as it was when asked; it moves on while the press is awaited."""

    wall: datetime

    what = "time"

    def title(self) -> str:
        return "Set clock?"

    def text(self, tz: ZoneInfo) -> str:
        return f"set the clock to {self.wall.astimezone(tz):%Y-%m-%d %H:%M:%S}"


@dataclass(frozen=True, slots=True)
class Admit:
    """Start an episode: the hospital's episode id (never a name), the date of surgery, a regimen."""

    episode: str
    surgery: date
    regimen: str | None = None
    mrn: str | None = None

    what = "admit"

    def title(self) -> str:
        return "Admit patient?"

    def text(self, tz: ZoneInfo) -> str:
        regimen = f", regimen {self.regimen}" if self.regimen else ""
        mrn = f", MRN {self.mrn}" if self.mrn else ""
        return f"admit episode {self.episode}, surgery {self.surgery:%Y-%m-%d}{regimen}{mrn}"


@dataclass(frozen=True, slots=True)
class Discharge:
    """End the current episode (``episode``, when given, must be the one admitted)."""

    episode: str | None = None

    what = "discharge"

    def title(self) -> str:
        return "Discharge?"

    def text(self, tz: ZoneInfo) -> str:
        return f"discharge episode {self.episode}" if self.episode else "discharge the patient (end the episode)"


@dataclass(frozen=True, slots=True)
class Pause:
    """Pause prompting for ``duration`` (``1h``, ``2h``, ``4h`` or ``morning``; core/pause.py)."""

    duration: str

    what = "pause"

    def title(self) -> str:
        return "Pause prompts?"

    def text(self, tz: ZoneInfo) -> str:
        return f"pause prompting: {pause.label(self.duration).lower()}"


@dataclass(frozen=True, slots=True)
class Resume:
    """End a pause now."""

    what = "resume"

    def title(self) -> str:
        return "Resume prompts?"

    def text(self, tz: ZoneInfo) -> str:
        return "resume prompting now"


Change = ClockChange | Admit | Discharge | Pause | Resume


def screen_lines(change: Change, tz: ZoneInfo) -> tuple[str, str]:
    """The two lines the confirmation screen shows under its title."""
    if isinstance(change, Admit):
        # Both as the nurse typed them: the surgery date and the regimen (a 128-pixel line holds 21 characters).
        return change.episode, f"{change.surgery:%d %b} · {change.regimen or 'default'}"
    if isinstance(change, Discharge):
        return (f"Ep {change.episode}", "End the episode") if change.episode else ("End the episode", "")
    if isinstance(change, Pause):
        return pause.label(change.duration), "No prompts, no sound"
    if isinstance(change, Resume):
        return "End the pause", ""
    t = change.wall.astimezone(tz)
    return t.strftime("%a %d %b %Y"), t.strftime("%H:%M:%S")


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
