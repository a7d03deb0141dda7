"""The day's counted figures, held so that they cannot grow silently (docs/performance.md):
the loop's wake-ups while a session is due and unanswered, on a day with every prompt answered,
and the I2C transfers that day costs on the panel model (tests/rigs/oled.py, luma's real
driver over a model of the controller). Counts hardly depend on the machine; the whole
process's figures, every thread in real time, are the benchmark's (benchmarks/realtime.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from luma.oled.device import sh1106, ssd1306

from bedside.core import config, planner
from bedside.unit import simulate
from tests.rigs.oled import Controller

DAY_START = "2026-11-24T06:00"


def _day(data: Path, kind: str, *, answered: bool) -> tuple[int, int, int]:
    """(loop wake-ups, frames, I2C transfers after the panel's set-up) of a simulated day."""
    cfg = config.Config()
    start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz)
    actions = []
    if answered:
        # Every session answered two minutes after its prompt and guided to its end.
        actions = [simulate.Action(s.offer.astimezone(cfg.tz) + timedelta(minutes=2), "press", 0.3)
                   for s in planner.sessions_between(cfg, start, start + timedelta(days=1))]
    bus = Controller(kind)
    driver = ssd1306 if kind == "ssd1306" else sh1106
    device = driver(serial_interface=bus, width=128, height=64)
    setup = bus.writes
    sim = simulate.build(cfg, data, start, actions=actions, device=device)
    try:
        sim.unit.run(until=start + timedelta(days=1))
    finally:
        sim.close()
    return sim.unit.wakeups, sim.unit.out.display.frames, bus.writes - setup


def test_an_unanswered_session_costs_the_loop_at_most_a_wake_up_a_minute(tmp_path: Path) -> None:
    """A session prompted and never answered, from its prompt until it is missed: the light
    wakes nothing (kernel-blinked or steady), so the loop wakes for the prompt's burn-in
    orbit (every two minutes), its repeats' chimes and the journal's housekeeping only."""
    cfg = config.Config()
    start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz)
    first = planner.sessions_between(cfg, start, start + timedelta(days=1))[0].offer.astimezone(cfg.tz)
    sim = simulate.build(cfg, tmp_path, start, actions=[])
    try:
        sim.advance(first)
        before = sim.unit.wakeups
        sim.advance(first + timedelta(hours=1))
        hour = sim.unit.wakeups - before
    finally:
        sim.close()
    # 3,675 an hour when the loop blinked the light; 51 in the hour after the prompt when
    # measured without, the prompt's orbit moving every two minutes (its chimes are a few
    # wake-ups each); the goal is 60.
    assert hour <= 55, hour


@pytest.mark.parametrize("kind", ["ssd1306", "sh1106"])
def test_a_fully_answered_day_wakes_and_transfers_within_its_budget(tmp_path: Path, kind: str) -> None:
    wakeups, frames, transfers = _day(tmp_path, kind, answered=True)
    # 9,461 wake-ups when the hold's bar was drawn four times a second and the light blinked
    # from the loop; the goal is 5,000.
    assert wakeups <= 3500, wakeups          # 3,431 when measured
    # Each transfer costs a real Pi a wake-up (i2c-bcm2835 sleeps until the controller's
    # interrupt): an SSD1306's frame goes as one rectangle (a command and its data); an
    # SH1106 is aimed page by page (two per changed page).
    # Measured: 5,647 (SSD1306) and 32,481 (SH1106) for 2,781 frames; the SSD1306's day took
    # 40,987 at four frames a hold-second, page by page.
    per_frame = 2.2 if kind == "ssd1306" else 12
    assert transfers <= frames * per_frame, (transfers, frames)
    budget = {"ssd1306": 6000, "sh1106": 33000}[kind]
    assert transfers <= budget, (transfers, frames)
