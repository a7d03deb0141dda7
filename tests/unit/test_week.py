"""A simulated week at a bed nobody admits: sets, extra sessions, a nurse's pauses, nights.

Checked from outside, as a ward would: the journal the unit wrote and the trace of what it
did (every sound with its time). Nothing sounds at night or during a pause, every session
the plan offered is settled exactly once, and the unadmitted unit steps down on day 3.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import config, planner
from bedside.core.episodes import Episode
from bedside.unit import simulate
from bedside.unit.loop import Trace
from tests.conftest import journal_records

SCRIPT = """
2026-11-24T07:00:20  press                 # the 07:00 prompt: guided
2026-11-24T09:00:30  press                 # the routine, with quad and glute sets in two sets
2026-11-24T10:30:00  press                 # nothing due: today's progress, with its offer
2026-11-24T10:30:03  press                 # ... taken: an extra set of ankle pumps
2026-11-24T11:40:00  pause 2h              # physio: 12:00 and 13:00 are paused
2026-11-24T15:40:00  press                 # progress (15:00 went unanswered) ...
2026-11-24T15:40:03  hold 2.5              # ... and the circles and alphabet
2026-11-25T12:30:00  pause morning         # allowed to sleep: the rest of the day is paused
2026-11-26T10:10:00  pause 4h
2026-11-26T11:05:00  resume                # back early
2026-11-26T19:00:30  press
2026-11-28T09:00:30  press
"""


def sounds_and_records(trace: str) -> tuple[list[tuple[datetime, str]], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in trace.splitlines()]
    sounds = [(datetime.fromisoformat(x["time"]), x["sound"]) for x in lines if x["effect"] == "sound"]
    return sounds, [x for x in lines if x["effect"] == "record"]


def test_a_week_never_admitted_with_sets_extras_and_pauses(tmp_path: Path) -> None:
    cfg = config.Config()
    start = datetime(2026, 11, 24, 6, 50, tzinfo=cfg.tz)
    end = start + timedelta(days=7)
    out = io.StringIO()
    sim = simulate.build(cfg, tmp_path / "d", start, actions=simulate.parse_script(SCRIPT, cfg.tz),
                         observers=[Trace(out, cfg)])
    try:
        sim.advance(end)
    finally:
        sim.close()
    recs = journal_records(tmp_path / "d")
    sounds, traced = sounds_and_records(out.getvalue())
    # The trace and the journal tell the same sessions.
    def told(rs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["type"], r["session"]) for r in rs if r.get("session")]

    assert told(traced) == told(recs)

    # Pauses, from the journal: nothing sounds inside one, nor at night.
    windows, opened = [], None
    for r in recs:
        if r["type"] == "pause":
            opened = datetime.fromisoformat(r["time"])
        elif r["type"] == "resume" and opened is not None:
            windows.append((opened, datetime.fromisoformat(r["time"])))
            opened = None
    assert len(windows) == 3 and opened is None
    assert [r["via"] for r in recs if r["type"] in ("pause", "resume")] == ["simulator", "timer", "simulator",
                                                                             "timer", "simulator", "simulator"]
    for at, sound in sounds:
        assert planner.is_awake(cfg, at), f"{sound} at night, {at}"
        assert not any(a < at < b for a, b in windows), f"{sound} during a pause, {at}"
    # In the trace's own order (a repeat due at the very instant a pause arrives comes first).
    paused_now = False
    for line in map(json.loads, out.getvalue().splitlines()):
        if line["effect"] == "record" and line["type"] in ("pause", "resume"):
            paused_now = line["type"] == "pause"
        assert not (paused_now and line["effect"] == "sound"), f"{line['sound']} during a pause at {line['time']}"

    # Every session the plan offered is settled exactly once, and nothing else is.
    stand_in = Episode("", start.date(), cfg.default_regimen)
    planned = {s.id for s in planner.offered_between(cfg, start, end - timedelta(minutes=31), stand_in)
               if s.merged_into is None}
    settled = Counter(r["session"] for r in recs if r["type"] in ("done", "missed", "paused", "interrupted"))
    assert set(settled) >= planned and all(n == 1 for n in settled.values())
    assert set(settled) - planned <= {s.id for s in planner.offered_between(cfg, start, end, stand_in)}
    paused = [r["session"] for r in recs if r["type"] == "paused"]
    assert paused[:2] == ["2026-11-24T12:00 hourly", "2026-11-24T13:00 hourly"]
    assert "2026-11-25T19:00 routine" in paused and "2026-11-26T11:00 hourly" in paused
    assert "2026-11-26T12:00 hourly" not in paused                      # resumed early

    # Sets: the routine's quad and glute sets are 2 x 10.
    routine = next(r for r in recs if r["type"] == "done" and r["session"] == "2026-11-24T09:00 routine")
    assert routine["planned"] == 40 + 20 + 20 and routine["reps"] == routine["planned"]

    # Extra sessions: recorded extra, never settled as due.
    extras = [r for r in recs if r["type"] == "extra"]
    assert [x["exercises"] for x in extras] == [["Ankle pumps"], ["Toe circles", "Toe alphabet"]]

    # Never admitted: the first start is day 0; from day 3 only the twice-daily routine.
    assert recs[0]["type"] == "start" and recs[0]["unadmitted_since"] == "2026-11-24"
    prompted = Counter(r["session"][:10] for r in recs if r["type"] == "prompt")
    assert prompted["2026-11-27"] == prompted["2026-11-29"] == 2
    assert not any(r["type"] == "admit" for r in recs)
