"""Turns a session's exercises into the paced steps of a guided session. Pure.

Each repetition is a short sequence of timed steps ("Toes up", then "Toes down" held for
``hold_seconds``); per-foot exercises run the left foot's reps, then the right's. The
texts follow the published instructions (the ankle pump: toes up towards the face, then
pointed down as if pressing a car's accelerator, held, slowly): slow beats fast, so every
rep includes a hold and a return. Each step names the picture the display shows with it
(``icons.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from bedside.core.config import Exercise

INTRO_S = 3.0      # "Ankle pumps — left foot — 10 times" before each block
MOVE_S = 2.0       # an unheld movement: toes up, relax


@dataclass(frozen=True, slots=True)
class Step:
    exercise: str
    foot: str | None          # left | right | None
    rep: int                  # 1-based; 0 for the intro step
    reps: int
    text: str
    seconds: float
    hold: bool = False        # shows the countdown and shrinking bar
    ends_rep: bool = False    # a rep is complete when this step ends (tick)
    icon: str | None = None   # picture for this step (icons.py)
    part: int = 1
    parts: int = 1

    @property
    def intro(self) -> bool:
        return self.rep == 0


def _kind(ex: Exercise) -> str:
    name = ex.name.lower()
    for kind in ("pump", "quad", "glute", "circle"):
        if kind in name:
            return kind
    return "other"


def icon_for(ex: Exercise) -> str | None:
    """The picture that stands for an exercise (intro and prompt screens)."""
    return {"pump": "foot", "quad": "leg_press", "glute": "squeeze", "circle": "circle"}.get(_kind(ex))


def _rep_steps(ex: Exercise) -> list[tuple[str, float, bool, str | None]]:
    """(text, seconds, hold, icon) for one repetition of an exercise."""
    hold = float(ex.hold_seconds)
    kind = _kind(ex)
    if kind == "pump":
        return [("Toes up", MOVE_S, False, "foot_up"), ("Toes down", hold or MOVE_S, bool(hold), "foot_down")]
    if kind == "quad":
        return [("Tighten thigh", hold or MOVE_S, bool(hold), "leg_press"), ("Relax", MOVE_S, False, "leg")]
    if kind == "glute":
        return [("Squeeze", hold or MOVE_S, bool(hold), "squeeze"), ("Relax", MOVE_S, False, None)]
    if kind == "circle":
        return [("Circle out", 3.0, False, "circle"), ("Circle in", 3.0, False, "circle")]
    return [(ex.name, hold or MOVE_S, bool(hold), None), ("Relax", MOVE_S, False, None)]


@lru_cache(maxsize=64)
def plan(exercises: tuple[Exercise, ...]) -> tuple[Step, ...]:
    steps: list[Step] = []
    parts = len(exercises)
    for part, ex in enumerate(exercises, 1):
        for foot in (("left", "right") if ex.per_foot else (None,)):
            steps.append(Step(ex.name, foot, 0, ex.reps, ex.name, INTRO_S, icon=icon_for(ex), part=part,
                              parts=parts))
            pattern = _rep_steps(ex)
            for rep in range(1, ex.reps + 1):
                for i, (text, secs, hold, icon) in enumerate(pattern):
                    steps.append(Step(ex.name, foot, rep, ex.reps, text, secs, hold,
                                      ends_rep=i == len(pattern) - 1, icon=icon, part=part, parts=parts))
    return tuple(steps)


def reps_before(steps: tuple[Step, ...], index: int) -> int:
    """Repetitions completed when the guide is at step ``index``."""
    return sum(1 for s in steps[:index] if s.ends_rep)


def reps_by(steps: tuple[Step, ...], seconds: float) -> int:
    """Repetitions the guide has counted ``seconds`` after it started (all of them, at most)."""
    done, t = 0, 0.0
    for s in steps:
        t += s.seconds
        if t > seconds:
            break
        done += s.ends_rep
    return done


def total_reps(steps: tuple[Step, ...]) -> int:
    return sum(1 for s in steps if s.ends_rep)


def minutes(exercises: tuple[Exercise, ...]) -> int:
    """About how long a guided session takes, in whole minutes (at least 1), for the prompt."""
    return max(1, math.ceil(sum(s.seconds for s in plan(exercises)) / 60 - 0.25))
