"""Exercise on demand: a press with nothing due offers an extra session. Pure.

Patients find the pumps dull and some want to do more; variety helps. From today's progress
screen a press starts the short ankle-pump set and a hold of 2 s the "circles and alphabet"
variation (toe circles each way, then tracing letters with the big toe). An extra session
is guided like any other and recorded as ``extra``: it counts as a session done, never as
one due, so it neither raises nor lowers the adherence of the sessions offered.
"""

from __future__ import annotations

from datetime import datetime

from bedside.core import planner
from bedside.core.config import Config, Exercise
from bedside.core.records import T

EXTRA = T.EXTRA

# variation -> (its exercises, what the progress screen calls it)
VARIATIONS: dict[str, tuple[tuple[Exercise, ...], str]] = {
    "pumps": ((Exercise("Ankle pumps", 10, per_foot=True, hold_seconds=3, kind="ankle_pump"),), "pumps"),
    "circles": ((Exercise("Toe circles", 5, per_foot=True, kind="ankle_circle"),
                 Exercise("Toe alphabet", 5, per_foot=True, kind="toe_alphabet",
                          tip="Write A to E with your big toe")), "circles"),
}


def session(cfg: Config, variation: str, now: datetime) -> planner.Session:
    """The extra session started at ``now``: its id is the local time and ``extra``."""
    exercises, _ = VARIATIONS[variation]
    sid = f"{planner.local(now, cfg.tz):%Y-%m-%dT%H:%M:%S} {EXTRA}"
    return planner.Session(sid, EXTRA, now, now, exercises)
