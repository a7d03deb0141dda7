"""What the display can show, as plain data. ``render.py`` draws these; the core builds them.

Keeping screens as values means the core stays pure, tests can compare screens without
pixels, the shell can skip a redraw when the value is unchanged, and the trace can say
which screen a patient saw.
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True, slots=True)
class Prompt:
    kind: str                        # hourly | routine
    exercise: str                    # the first exercise
    detail: str                      # "10 each foot", "3 exercises"
    repeat: int = 0                  # how many times it has been repeated
    snoozes_left: int = 0
    late: bool = False               # offered after a deferral or outage


@dataclass(frozen=True, slots=True)
class Snoozed:
    until: str                       # "10:10"
    exercise: str


@dataclass(frozen=True, slots=True)
class Intro:
    exercise: str                    # "Ankle pumps"
    foot: str | None                 # "left" | "right" | None
    reps: int
    part: int                        # exercise n ...
    parts: int                       # ... of N


@dataclass(frozen=True, slots=True)
class Guide:
    exercise: str
    foot: str | None
    rep: int                         # 1-based rep n ...
    reps: int                        # ... of N (for this foot)
    instruction: str                 # "Toes up", "Toes down", "Relax"
    hold_left: int | None = None     # whole seconds left in a hold (the spoken count)
    hold_fraction: float = 0.0       # remaining fraction of the hold, for the shrinking bar
    arrow: str | None = None         # up | down | None


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


@dataclass(frozen=True, slots=True)
class Hint:
    text: str                        # "Release to snooze"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Nurse:
    unit_id: str
    clock: str                       # "2026-11-24 09:41"
    time_quality: str
    today_done: int
    today_missed: int
    yesterday_done: int
    yesterday_missed: int
    head: str                        # chain head "seq/short-hash", "-" before the first record
    notice: str | None = None


Screen = Idle | Prompt | Snoozed | Intro | Guide | Done | Progress | Hint | Nurse
