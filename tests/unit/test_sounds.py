"""Every sound on the buzzer pin, as gpiozero's mock pins record it, against its definition.

The full list of pin states is compared (gpiozero's assert_states helpers zip the two
lists, so a pattern of the wrong length would pass them silently).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from bedside.core import planner
from bedside.core.config import Config, Hardware
from bedside.core.events import Instant, Notice, Play
from bedside.core.machine import step
from bedside.unit import pins as hardware
from bedside.unit import sounds
from tests.rigs.driver import Driver


class RecordingPWMPin(MockPWMPin):  # type: ignore[misc]
    """A mock PWM pin that also records the frequency at each change of state (gpiozero's pin_class seam)."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self.heard: list[tuple[int | None, float]] = []

    def _change_state(self, value: float) -> bool:
        changed: bool = super()._change_state(value)
        if changed:
            self.heard.append((None if self._frequency is None else round(self._frequency), value))
        return changed


@pytest.fixture
def factory() -> Iterator[Any]:
    f = MockFactory(pin_class=RecordingPWMPin)
    yield f
    f.reset()


def play(name: str, tone: Any) -> list[tuple[float, int]]:
    """Play one sound through the Player on virtual time; returns (seconds from start, frequency) output calls."""
    calls: list[tuple[float, int]] = []
    now = 50.0

    def output(freq: int) -> None:
        calls.append((round(now - 50.0, 3), freq))
        tone(freq)

    p = sounds.Player(output)
    assert p.play(name, now)
    while (d := p.deadline()) is not None:
        now = d
        p.advance(now)
    return calls


def expected_calls(name: str) -> list[tuple[float, int]]:
    out, t = [], 0.0
    for freq, secs in sounds.SOUNDS[name]:
        out.append((round(t, 3), freq))
        t += secs
    return [*out, (round(t, 3), 0)]


@pytest.mark.parametrize("name", sorted(sounds.SOUNDS))
def test_active_buzzer_pin_follows_each_definition(name: str, factory: Any) -> None:
    pins = hardware.build_pins(Hardware(buzzer="active"), pin_factory=factory)
    pin = factory.pin(18)
    before = len(pin.states)
    calls = play(name, pins.tone)
    assert calls == expected_calls(name)
    # An active buzzer only knows on and off: each sounding stretch is one pulse.
    levels: list[float] = []
    for freq, _ in sounds.SOUNDS[name]:
        level = 1.0 if freq else 0.0
        if level != (levels[-1] if levels else 0.0):
            levels.append(level)
    if levels and levels[-1] == 1.0:
        levels.append(0.0)
    assert [s.state for s in pin.states[before:]] == levels
    assert levels.count(1.0) == sounds.pulses(name)
    pins.close()


@pytest.mark.parametrize("tone", ["low", "normal", "high"])
@pytest.mark.parametrize("name", sorted(sounds.SOUNDS))
def test_passive_buzzer_pin_plays_each_note_at_its_pitch_and_volume(name: str, tone: str, factory: Any) -> None:
    hw = Hardware(buzzer="passive", volume=30, tone=tone)
    pins = hardware.build_pins(hw, pin_factory=factory)
    pin = factory.pin(18)
    pin.heard.clear()
    play(name, pins.tone)
    duty, pitch = 30 / 200, {"low": 2 / 3, "normal": 1.0, "high": 1.5}[tone]
    expected: list[tuple[int | None, float]] = []
    for freq, _ in sounds.SOUNDS[name]:
        if freq:
            expected.append((round(freq * pitch), duty))
        else:
            expected.append((expected[-1][0] if expected else None, 0.0))
    expected.append((expected[-1][0], 0.0))
    # Consecutive identical states are not changes; the pin records only real ones.
    changes = [e for i, e in enumerate(expected) if e[1] != (expected[i - 1][1] if i else 0.0)]
    assert pin.heard == changes
    assert pin.state == 0
    pins.close()


def test_volume_sets_the_duty_and_never_rises_on_repeat(factory: Any) -> None:
    pins = hardware.build_pins(Hardware(buzzer="passive", volume=80), pin_factory=factory)
    pin = factory.pin(18)
    pin.heard.clear()
    for name in ("prompt", "repeat", "repeat", "prompt"):
        play(name, pins.tone)
    assert {state for _, state in pin.heard if state} == {0.4}
    pins.close()


def test_every_sound_is_an_information_signal() -> None:
    assert set(sounds.SOUNDS) == {"prompt", "repeat", "tick", "done", "snooze", "fault"} == set(sounds.DESCRIPTIONS)
    for name, notes in sounds.SOUNDS.items():
        # Never the 3-pulse (medium) or 10-pulse (high priority) bursts IEC 60601-1-8 keeps for alarms.
        assert sounds.pulses(name) <= 2, name
        assert sum(secs for _, secs in notes) <= 1.0, name
        assert all(0 <= f <= 2000 and 0 < secs <= 0.6 for f, secs in notes), name


def test_chimes_are_at_least_15_s_apart_whatever_asks() -> None:
    out: list[int] = []
    p = sounds.Player(out.append)
    assert p.play("prompt", 0.0)
    assert not p.play("repeat", 14.9)
    assert p.play("repeat", 15.0)
    assert p.play("tick", 15.1)        # ticks and confirmations are not reminders


def test_a_part_failing_sounds_once_by_day_and_never_at_night() -> None:
    cfg = Config()
    d = Driver(cfg, datetime.fromisoformat("2026-11-24T10:00").replace(tzinfo=cfg.tz))
    st, fx = step(cfg, d.state, Notice("display", "Display: OSError"), d.now)
    assert Play("fault") in fx
    st, fx = step(cfg, st, Notice("display", "Display: timeout"), d.now)
    assert Play("fault") not in fx     # the same part still failing: no second note
    st, fx = step(cfg, st, Notice("display", None), d.now)
    night = Instant(d.now.wall + timedelta(hours=13), d.now.mono + 13 * 3600)
    assert not planner.is_awake(cfg, night.wall)
    _, fx = step(cfg, st, Notice("display", "Display: OSError"), night)
    assert not any(isinstance(e, Play) for e in fx)
