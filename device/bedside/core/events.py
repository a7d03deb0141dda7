"""The vocabulary between the pure core and the shell: instants, inputs and effects.

The core is ``machine.step(config, state, event, now) -> (state, effects)``. The shell
reads clocks and pins and turns them into these inputs, and carries out these effects
(journal first, then screen, sound and LED), so the core never touches hardware or time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Instant:
    """One reading of both clocks: wall (aware UTC, may jump) and monotonic seconds (never jumps)."""

    wall: datetime
    mono: float


# --- inputs --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tick:
    """A deadline the core asked for has passed (or the shell woke for another reason)."""


@dataclass(frozen=True, slots=True)
class ButtonEdge:
    """The raw button level changed; ``pressed`` is the new level. Debounce is the core's job."""

    pressed: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """A part reports trouble or recovery (journal, display, buzzer); shown to the nurse."""

    part: str
    problem: str | None        # None: the part is healthy again; else the short text shown
    detail: str | None = None  # what went wrong, for the journal's fault record


@dataclass(frozen=True, slots=True)
class Admit:
    """A nurse admits a patient to this unit: an episode id (never a name), surgery date and regimen.

    Sent by the serial link (or a simulator script). ``regimen`` None means the configured
    default. The core records ``admit`` (or ``refused``, saying why); see episodes.py.
    """

    episode: str
    surgery: date
    regimen: str | None = None
    via: str = "serial"
    mrn: str | None = None        # the hospital's medical record number, when the nurse gave it (never a name)


@dataclass(frozen=True, slots=True)
class Discharge:
    """A nurse discharges the patient; ``episode``, when given, must be the one admitted."""

    episode: str | None = None
    via: str = "serial"


@dataclass(frozen=True, slots=True)
class Exported:
    """The journal was downloaded (serial link, USB stick): recorded as ``export`` with ``via``
    and ``details``, and shown on the nurse screen as the last download."""

    via: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClockSet:
    """The shell changed the wall clock on command (e.g. a nurse's ``time set``): from ``old`` to ``new``.

    ``error`` says why it could not, in which case the clock is unchanged."""

    old: datetime
    new: datetime
    source: str = "nurse"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StickExport:
    """A USB stick export, as the stick channel reports it (stick_channel.py): ``started``
    (shown while it runs), or ended without an export: ``refused`` (not this ward's stick) or
    ``failed`` (full, read-only, unreadable, removed …), ``reason`` saying which. A finished
    export arrives as ``Exported(via="stick")``."""

    stage: str
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetClock:
    """A request to the shell (from the serial link) to set the wall clock; the core then gets ``ClockSet``."""

    wall: datetime
    source: str = "nurse"


@dataclass(frozen=True, slots=True)
class Confirm:
    """Ask whoever is at the unit to confirm a change with a press (proof of physical presence).

    The display shows ``title`` and two lines of what would change until a short press
    (confirmed), a long press (cancelled) or ``seconds`` pass. With ``clock`` set, the lines
    show that time moving on from the moment of asking (a clock being set).
    """

    token: int
    title: str
    line1: str
    line2: str = ""
    clock: datetime | None = None
    seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Withdraw:
    """The one who asked for a confirmation no longer waits for it (the cable was pulled)."""

    token: int


@dataclass(frozen=True, slots=True)
class Pause:
    """A nurse pauses prompting for ``duration`` (a key of ``pause.CHOICES``: 1h, 2h, 4h, morning).

    From the nurse screen (``via`` button, made by the core itself), the serial link after a
    press at the unit, or a simulator script."""

    duration: str
    via: str = "serial"


@dataclass(frozen=True, slots=True)
class Resume:
    """A nurse ends a pause early."""

    via: str = "serial"


Event = (Tick | ButtonEdge | Notice | Admit | Discharge | Exported | ClockSet | Confirm | Withdraw | StickExport
         | Pause | Resume)


@dataclass(frozen=True, slots=True)
class Past:
    """A journal record as the core sees it when rebuilding state after a restart."""

    seq: int
    type: str
    time: datetime
    session: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


# --- effects -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Record:
    """Append one event to the journal (one committed transaction) before anything after it."""

    type: str
    session: str | None = None
    due: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Play:
    """Play one of the named sounds in ``sounds.SOUNDS``."""

    sound: str


@dataclass(frozen=True, slots=True)
class Show:
    """What the display should show now; the shell skips it when nothing changed."""

    screen: Any
    brightness: str = "normal"     # normal | dim | off


@dataclass(frozen=True, slots=True)
class Led:
    mode: str                      # off | due | missed | done (see docs/behaviour.md#the-status-light)


@dataclass(frozen=True, slots=True)
class Decided:
    """How a ``Confirm`` ended: confirmed, cancelled, timeout, busy, superseded or withdrawn."""

    token: int
    outcome: str


Effect = Record | Play | Show | Led | Decided
