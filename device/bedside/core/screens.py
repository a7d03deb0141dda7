"""What the display can show, as plain data. ``render.py`` draws these; the core builds them.

Keeping screens as values means the core stays pure, tests can compare screens without
pixels, the shell can skip a redraw when the value is unchanged, and the trace can say
which screen a patient saw. docs/screens.md shows every one of them.

Screens that can stay up for many minutes (idle, prompt, snoozed) carry a ``shift``: the
core moves them a pixel at a time around a small orbit so that an OLED's pixels do not
burn in; everything else changes within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

Shift = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Idle:
    clock: str                       # "09:41"
    next_time: str | None            # "10:00", or None when nothing is scheduled
    next_what: str | None            # "Ankle pumps" / "Routine"
    done: int                        # today's sessions done ...
    due: int                         # ... of those offered so far
    marks: tuple[str, ...]           # one per session today: done | missed | open | later
    night: bool = False
    notice: str | None = None        # a fault or "set the clock", for the nurse
    status: str | None = None        # "missed": the corner mark a nurse sees walking past
    shift: Shift = (0, 0)
    paused: str | None = None        # a nurse's pause: "14:00", shown as "Paused until 14:00"
    ready: bool = False              # the bed is empty since a discharge: "Ready for next patient"


@dataclass(frozen=True, slots=True)
class Prompt:
    kind: str                        # hourly | routine
    exercise: str                    # the first exercise
    detail: str                      # "10 each foot", "3 exercises"
    repeat: int = 0                  # how many times it has been repeated
    snoozes_left: int = 0
    late: bool = False               # offered after a deferral or outage
    icon: str = "foot"               # the first exercise's picture (icons.py)
    minutes: int = 0                 # about how long the session takes
    shift: Shift = (0, 0)


@dataclass(frozen=True, slots=True)
class Snoozed:
    until: str                       # "10:10"
    exercise: str
    shift: Shift = (0, 0)


@dataclass(frozen=True, slots=True)
class Intro:
    exercise: str                    # "Ankle pumps"
    foot: str | None                 # "left" | "right" | None
    reps: int
    part: int                        # exercise n ...
    parts: int                       # ... of N
    icon: str = "foot"
    set: int = 1                     # set n ...
    sets: int = 1                    # ... of N


@dataclass(frozen=True, slots=True)
class Rest:
    """Between sets: rest, then set ``next`` of ``sets``."""

    exercise: str
    next: int
    sets: int


@dataclass(frozen=True, slots=True)
class Tip:
    """An exercise's tip from the config, before its guide: "Raise your leg on a pillow"."""

    exercise: str
    text: str


@dataclass(frozen=True, slots=True)
class Guide:
    exercise: str
    foot: str | None
    rep: int                         # 1-based rep n ...
    reps: int                        # ... of N (for this foot)
    instruction: str                 # "Toes up", "Toes down", "Relax"
    hold_left: int | None = None     # whole seconds left in a hold (the spoken count)
    hold_fraction: float = 0.0       # remaining fraction of the hold, for the shrinking bar
    icon: str | None = None          # foot_up, foot_down, leg_press, squeeze ... (icons.py)


@dataclass(frozen=True, slots=True)
class Done:
    reps_done: int
    reps_planned: int
    early: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    due: int
    marks: tuple[str, ...]
    next_time: str | None
    next_what: str | None
    offer: bool = False              # "Press for more": a press starts an extra set, a hold the variation


@dataclass(frozen=True, slots=True)
class Hint:
    text: str                        # "Let go to"
    detail: str = ""                 # "snooze"
    icon: str | None = None


@dataclass(frozen=True, slots=True)
class Nurse:
    """The nurse's summary, in pages that turn by themselves (the patient can change nothing)."""

    unit_id: str
    clock: str                       # "Tue 24 Nov 09:41"
    time_quality: str
    today_done: int
    today_missed: int
    yesterday_done: int
    yesterday_missed: int
    head: str                        # chain head "seq/short-hash", "-" before the first record
    episode: str | None = None       # episode id, None when no patient is admitted
    day: int | None = None           # post-operative day (0 = the day of surgery)
    regimen: str = ""                # the regimen running (with no episode: the default, or "" if quiet)
    download: str = "never"          # time of the latest export, "never" before the first
    notices: tuple[str, ...] = ()    # problems for the nurse (a fourth page when there are any)
    page: int = 1
    paused: str | None = None        # "14:00" while prompting is paused
    power_cut: str = ""              # the last power cut: "24 Nov 03:10 2h05", "" if none is known
    storage: str = ""                # "24 Nov 09:00": the journal could not be written, since the last download

    @property
    def pages(self) -> int:
        return 4 if self.notices else 3


@dataclass(frozen=True, slots=True)
class PauseMenu:
    """The nurse chooses how long to pause prompting: a press shows the next choice, a hold takes it."""

    choice: str                      # "2 hours", "Until morning", "Don't pause"
    index: int                       # choice n ...
    count: int                       # ... of N


@dataclass(frozen=True, slots=True)
class EpisodeChange:
    """Confirms an admission or discharge to the nurse who sent it (never a name: ids only)."""

    event: str                       # admitted | discharged | refused
    episode: str
    day: int | None = None
    regimen: str = ""
    problem: str = ""



@dataclass(frozen=True, slots=True)
class Confirm:
    title: str                       # "Set clock?"
    line1: str                       # "Tue 24 Nov 2026"
    line2: str                       # "14:05:30"
    seconds_left: int


@dataclass(frozen=True, slots=True)
class Stick:
    """A USB stick export, for the nurse who plugged it in: under way, done, or why not."""

    state: str                       # busy | done | problem
    title: str                       # "Export done", "Stick full" …
    detail: str = ""                 # what to do: "Remove the stick"


Screen = (Idle | Prompt | Snoozed | Intro | Rest | Tip | Guide | Done | Progress | Hint | Nurse | PauseMenu
          | EpisodeChange | Confirm | Stick)
