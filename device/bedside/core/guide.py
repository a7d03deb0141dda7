"""Turns a session's exercises into the paced steps of a guided session. Pure.

Each repetition is a short sequence of timed steps, the moves of the exercise's kind
(``exercises.py``: "Toes up", then "Toes down" held for ``hold_seconds``); per-foot
exercises run the left foot's reps, then the right's. An exercise in ``sets`` repeats
that with a rest between ("Set 2 of 2"); its ``tip`` is shown first. Each step names the picture the
display shows with it (``display/icons.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from bedside.core import exercises
from bedside.core.config import Exercise
from bedside.core.exercises import MOVE_S

INTRO_S = 3.0      # "Ankle pumps — left foot — 10 times" before each block
REST_S = 20.0      # between sets
TIP_S = 6.0        # an exercise's tip, before its first block


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
    set: int = 1              # set n ...
    sets: int = 1             # ... of N (the rest before a set carries the set it leads to)
    rest: bool = False        # the rest between sets
    tip: bool = False         # the exercise's tip (``text``), before its first block

    @property
    def intro(self) -> bool:
        return self.rep == 0 and not self.rest and not self.tip


def kind_of(ex: Exercise) -> exercises.Kind:
    """The exercise's kind as the config gave it, else as its name tells (else ``other``)."""
    return exercises.KINDS[ex.kind or exercises.from_name(ex.name) or exercises.OTHER]


def icon_for(ex: Exercise) -> str | None:
    """The picture that stands for an exercise (intro and prompt screens)."""
    return kind_of(ex).icon


def _rep_steps(ex: Exercise) -> list[tuple[str, float, bool, str | None]]:
    """(text, seconds, hold, icon) for one repetition of an exercise."""
    hold = float(ex.hold_seconds)
    return [(m.text or ex.name, (hold or MOVE_S) if m.held else m.seconds, m.held and bool(hold), m.icon)
            for m in kind_of(ex).moves]


@lru_cache(maxsize=64)
def plan(exercises: tuple[Exercise, ...]) -> tuple[Step, ...]:
    """The steps: per exercise its tip (if any), then each set (a rest before every set after
    the first), each set the left foot's block and the right's (or one block), each block an
    intro and the reps."""
    steps: list[Step] = []
    parts = len(exercises)
    for part, ex in enumerate(exercises, 1):
        sets = ex.sets
        if ex.tip:
            steps.append(Step(ex.name, None, 0, ex.reps, ex.tip, TIP_S, icon=icon_for(ex), tip=True, part=part,
                              parts=parts, sets=sets))
        pattern = _rep_steps(ex)
        for n in range(1, sets + 1):
            if n > 1:
                steps.append(Step(ex.name, None, 0, ex.reps, "Rest", REST_S, set=n, rest=True, part=part,
                                  parts=parts, sets=sets))
            for foot in (("left", "right") if ex.per_foot else (None,)):
                steps.append(Step(ex.name, foot, 0, ex.reps, ex.name, INTRO_S, icon=icon_for(ex), set=n, part=part,
                                  parts=parts, sets=sets))
                for rep in range(1, ex.reps + 1):
                    for i, (text, secs, hold, icon) in enumerate(pattern):
                        steps.append(Step(ex.name, foot, rep, ex.reps, text, secs, hold,
                                          ends_rep=i == len(pattern) - 1, icon=icon, part=part, parts=parts,
                                          set=n, sets=sets))
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
