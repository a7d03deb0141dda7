"""Checks on a real Raspberry Pi with the unit's parts attached (the bench check after
wiring, before commissioning). They drive the real pins and the real OLED, so they run only
when asked, with the bedside service stopped (the pins have one user at a time); see
docs/install.md#bench-check-on-a-pi."""

from __future__ import annotations

import os
import time

import pytest

from bedside.core import config
from bedside.core import screens as sc
from bedside.display import device
from bedside.display.panel import DisplayOut
from bedside.unit import host
from bedside.unit import pins as hardware

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(hardware.pi_model() is None or not os.environ.get("BEDSIDE_HARDWARE_TESTS"),
                       reason="needs a real Raspberry Pi with the unit's parts attached, and "
                              "BEDSIDE_HARDWARE_TESTS=1 (it drives the real pins and display)"),
]


@pytest.fixture
def cfg() -> config.Config:
    return host.find(None)


def test_display_answers_and_draws(cfg: config.Config) -> None:
    out = DisplayOut(device.build_display(cfg.hardware))
    assert out.show(sc.Hint("Bench test", "display OK"), "normal")
    assert out.error is None
    time.sleep(2)


def test_buzzer_and_led_pins_drive(cfg: config.Config) -> None:
    pins = hardware.build_pins(cfg.hardware)
    try:
        pins.tone(880)
        time.sleep(0.1)
        pins.tone(0)
        if pins.led is not None:
            pins.led.on()
            assert pins.led.is_lit
            time.sleep(0.5)
            pins.led.off()
        # The button's pull-up holds it released while nobody presses it.
        assert not pins.button.is_active
    finally:
        pins.close()


def test_idle_pins_open_no_lgpio_chip_and_wake_nothing(cfg: config.Config) -> None:
    """With libgpiod 2 the button is read from line events and the outputs are line requests:
    no thread of this process wakes while the pins sit idle. An lgpio chip, once opened, would
    show as a thread waking 50 times a second (its transmit thread), or 2,000 (its edge polling)."""
    from pathlib import Path

    hw = cfg.hardware
    if hw.buzzer == "passive" or hw.panel.bus == "spi":
        pytest.skip("a passive buzzer's PWM and an SPI panel's DC/RST pins are on lgpio, whose transmit "
                    "thread wakes 50 times a second by design (docs/design.md, Wake-ups)")
    assert hardware.header_chip() is not None, (
        "libgpiod 2 (the gpiod package) cannot open the header's GPIO chip: the pins fall back to lgpio; "
        "install python3-dev and run the installer again")

    def switches() -> dict[str, int]:
        out = {}
        for task in Path("/proc/self/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    out[task.name] = int(line.split()[1])
        return out

    pins = hardware.build_pins(hw)
    try:
        pins.tone(0)
        if pins.led is not None:
            pins.led.off()
        time.sleep(0.5)
        before = switches()
        time.sleep(3.0)
        after = switches()
        woke = {tid: after[tid] - before.get(tid, 0) for tid in after}
        assert max(woke.values()) <= 3, woke
    finally:
        pins.close()
