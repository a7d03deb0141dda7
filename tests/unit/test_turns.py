"""The loop steps the core only when it has an input or the core has something due. A wake-up
for the shell's own timers (a note of a chime, the light's blink, a source) runs the journal's
housekeeping and the parts' check, not the core; one for the picture alone (a frame of a hold's
bar, the idle clock's minute) draws the core's view without a step. A guided day shows the same
frames and keeps the same records as when every wake-up stepped the core."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config, machine
from bedside.core.events import Record, Show
from bedside.unit import simulate
from bedside.unit.loop import Unit


def _day(data: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], int, int]:
    cfg = config.Config()
    start = datetime(2026, 11, 24, 6, 0, tzinfo=cfg.tz)
    # Sessions answered late (so the prompt's light blinks for minutes), each guided to its end;
    # one snoozed by a long press, then answered; the rest missed; a night.
    actions = [simulate.Action(start + timedelta(hours=h, minutes=3), "press", 0.3) for h in (2, 3, 9)]
    actions += [simulate.Action(start + timedelta(hours=5, minutes=1), "press", 3.0),
                simulate.Action(start + timedelta(hours=5, minutes=14), "press", 0.3)]
    frames: list[Any] = []
    records: list[Any] = []
    steps = [0]
    real = machine.step

    def counted(*args: Any) -> Any:
        steps[0] += 1
        return real(*args)

    def watch(fx: Any, now: Any) -> None:
        # What the patient sees (a dark panel shows nothing, whatever the screen it is given).
        seen = (fx.screen, fx.brightness) if isinstance(fx, Show) and fx.brightness != "off" else None
        if seen is not None and (not frames or frames[-1][1:] != seen):
            frames.append((round(now.mono, 3), fx.screen, fx.brightness))
        elif isinstance(fx, Record):
            # Hashes differ between two runs (each journal starts its own chain); the rest may not.
            data = {k: v for k, v in fx.data.items() if "hash" not in k}
            records.append((round(now.mono, 3), fx.type, fx.session, data))

    monkeypatch.setattr(machine, "step", counted)
    sim = simulate.build(cfg, data, start, actions=actions, observers=[watch])
    try:
        sim.unit.run(until=start + timedelta(hours=26))
    finally:
        sim.close()
    monkeypatch.undo()
    return frames, records, steps[0], sim.unit.wakeups


def test_the_core_steps_only_when_something_is_due_and_the_day_is_the_same(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    frames, records, steps, wakeups = _day(tmp_path / "a", monkeypatch)

    real_deadline = Unit.deadline

    def every_wakeup_steps(self: Unit) -> float:
        d = real_deadline(self)
        self._step_due = float("-inf")
        return d

    monkeypatch.setattr(Unit, "deadline", every_wakeup_steps)
    frames_all, records_all, steps_all, wakeups_all = _day(tmp_path / "b", monkeypatch)

    # The same wake-ups but for the five-minute look at the clock, which counts from the last
    # step: every wake-up (a chime's last note, a minute's redraw) moves it when every wake-up
    # steps, so a few looks fall on wake-ups made anyway (about 2 % of them when measured).
    assert abs(wakeups - wakeups_all) <= wakeups // 40, (wakeups, wakeups_all)
    assert steps_all == wakeups_all              # one step per wake-up
    # The chimes' notes, the hold's frames and the idle clock's minutes are not steps: about
    # a third of the day's wake-ups are, most of them the state's five-minute look at the wall
    # clock. (The light wakes nothing: the kernel blinks it, or it is steady.)
    assert steps < wakeups // 2, (steps, steps_all)
    # The day's wake-ups, held: 26,447 when the loop blinked the light and drew the hold's bar
    # four times a second; 1,584 when measured with neither, and a prompt's orbit every two minutes.
    assert wakeups <= 1700, wakeups
    assert len(records) > 30 and [r[1:] for r in records] == [r[1:] for r in records_all]
    assert [r[0] for r in records] == [r[0] for r in records_all]
    assert len(frames) > 500 and _seen(frames) == _seen(frames_all)


def _seen(frames: list[Any]) -> list[Any]:
    """The frames a patient could see: one replaced in the same millisecond is not (where a
    minute's redraw and a due step fall a float's hair apart, stepping at every wake-up draws
    the minute's frame first and the step's a microsecond later)."""
    out: list[Any] = []
    for f in frames:
        if out and f[0] - out[-1][0] < 0.001:
            out[-1] = f
        else:
            out.append(f)
    return out

