"""Turns a session's exercises into the paced steps of a guided session. Pure.

Each repetition is a short sequence of timed steps ("Toes up", then "Toes down" held for
``hold_seconds``); per-foot exercises run the left foot's reps, then the right's. The
texts follow the published instructions (docs/exercises.md): slow beats fast, so every
rep includes a hold and a return.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Exercise

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
    arrow: str | None = None
    part: int = 1
    parts: int = 1

    @property
    def intro(self) -> bool:
        return self.rep == 0


def _rep_steps(ex: Exercise) -> list[tuple[str, float, bool, str | None]]:
    """(text, seconds, hold, arrow) for one repetition of an exercise."""
    hold = float(ex.hold_seconds)
    name = ex.name.lower()
    if "pump" in name:
        return [("Toes up", MOVE_S, False, "up"), ("Toes down", hold or MOVE_S, bool(hold), "down")]
    if "quad" in name:
        return [("Tighten thigh", hold or MOVE_S, bool(hold), None), ("Relax", MOVE_S, False, None)]
    if "glute" in name:
        return [("Squeeze", hold or MOVE_S, bool(hold), None), ("Relax", MOVE_S, False, None)]
    if "circle" in name:
        return [("Circle out", 3.0, False, None), ("Circle in", 3.0, False, None)]
    return [(ex.name, hold or MOVE_S, bool(hold), None), ("Relax", MOVE_S, False, None)]


def plan(exercises: tuple[Exercise, ...]) -> tuple[Step, ...]:
    steps: list[Step] = []
    parts = len(exercises)
    for part, ex in enumerate(exercises, 1):
        for foot in (("left", "right") if ex.per_foot else (None,)):
            steps.append(Step(ex.name, foot, 0, ex.reps, ex.name, INTRO_S, part=part, parts=parts))
            pattern = _rep_steps(ex)
            for rep in range(1, ex.reps + 1):
                for i, (text, secs, hold, arrow) in enumerate(pattern):
                    steps.append(Step(ex.name, foot, rep, ex.reps, text, secs, hold,
                                      ends_rep=i == len(pattern) - 1, arrow=arrow, part=part, parts=parts))
    return tuple(steps)


def reps_before(steps: tuple[Step, ...], index: int) -> int:
    """Repetitions completed when the guide is at step ``index``."""
    return sum(1 for s in steps[:index] if s.ends_rep)


def total_reps(steps: tuple[Step, ...]) -> int:
    return sum(1 for s in steps if s.ends_rep)
