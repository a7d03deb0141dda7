"""The outputs on libgpiod 2 (unit/gpiod_pins.py): gpiozero's own devices on line requests, and
``build_pins`` on a Pi with libgpiod 2 opening no lgpio chip at all (lgpio's transmit thread
wakes fifty times a second for ever once a chip is open). No GPIO here: the chip is a fake
(tests/rigs/gpiod_rig.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import LED, Buzzer, Device, DigitalInputDevice, DigitalOutputDevice, PWMOutputDevice
from gpiozero.exc import PinEdgeDetectUnsupported, PinPWMUnsupported
from gpiozero.pins.mock import MockFactory, MockPWMPin

from bedside.core.config import Hardware
from bedside.display.device import HardwareError
from bedside.unit import pins
from bedside.unit.gpiod_pins import GpiodFactory
from tests.rigs import gpiod_rig
from tests.rigs.gpiod_rig import Direction, Value

ZERO_2_W = 0x902120
ON, OFF = Value.ACTIVE, Value.INACTIVE


@pytest.fixture
def chip(monkeypatch: pytest.MonkeyPatch) -> gpiod_rig.Chip:
    c = gpiod_rig.Chip()
    gpiod_rig.install(monkeypatch, c)
    return c


@pytest.fixture
def factory(chip: gpiod_rig.Chip) -> Iterator[GpiodFactory]:
    f = GpiodFactory(chip.path, revision=ZERO_2_W)
    yield f
    f.close()


def test_gpiozeros_outputs_drive_the_lines_with_no_thread(chip: gpiod_rig.Chip, factory: GpiodFactory) -> None:
    threads = threading.active_count()
    led = LED(27, pin_factory=factory)
    buzzer = Buzzer(18, pin_factory=factory)
    motor = DigitalOutputDevice(22, pin_factory=factory)
    inverted = LED(23, active_high=False, pin_factory=factory)
    # Each requested once, as an output, already at its initial level (no blip).
    for offset in (27, 18, 22):
        assert chip.lines[offset].settings == {"direction": Direction.OUTPUT, "output_value": OFF}
        assert chip.held[offset].consumer == "bedside"
    assert chip.lines[23].settings["output_value"] == ON and chip.value(23) == ON      # active-low: off is high
    led.on()
    buzzer.on()
    motor.on()
    inverted.on()
    assert [chip.value(o) for o in (27, 18, 22, 23)] == [ON, ON, ON, OFF]
    assert led.is_lit and buzzer.is_active and motor.value == 1
    led.toggle()
    buzzer.off()
    assert chip.value(27) == OFF and chip.value(18) == OFF and not led.is_lit
    assert chip.lines[27].history == [OFF, ON, OFF]
    # A set is one request call; reading back costs none.
    sets = chip.sets
    assert [led.value, buzzer.value, motor.value] == [0, 0, 1] and chip.sets == sets
    assert threading.active_count() == threads
    # gpiozero's own patterns run through the same pin (the vibration motor's two pulses).
    motor.off()
    motor.blink(on_time=0.01, off_time=0.01, n=2, background=False)
    assert chip.lines[22].history == [OFF, ON, OFF, ON, OFF, ON, OFF]
    for dev in (led, buzzer, motor, inverted):
        dev.close()
    assert not chip.open_requests()


def test_what_libgpiod_cannot_do_is_refused_in_gpiozeros_terms(chip: gpiod_rig.Chip, factory: GpiodFactory) -> None:
    with pytest.raises(PinPWMUnsupported):
        PWMOutputDevice(18, frequency=440, pin_factory=factory)
    with pytest.raises(PinEdgeDetectUnsupported):
        DigitalInputDevice(17, pull_up=True, pin_factory=factory)
    # A refused device leaves no line held and no pin reserved.
    assert not chip.open_requests()
    led = LED(18, pin_factory=factory)
    led.on()
    assert chip.value(18) == ON
    led.close()


def test_closing_releases_every_line_dark(chip: gpiod_rig.Chip, factory: GpiodFactory) -> None:
    led = LED(27, pin_factory=factory)
    buzzer = Buzzer(18, pin_factory=factory)
    led.on()
    buzzer.on()
    factory.close()                          # the factory's close alone, devices still open
    assert chip.value(27) == OFF and chip.value(18) == OFF
    assert len(chip.requests) == 2 and not chip.open_requests()
    led.close()                              # then gpiozero's own close: nothing left to release
    buzzer.close()
    assert not chip.held


def _pi_with_libgpiod(monkeypatch: pytest.MonkeyPatch, chip: gpiod_rig.Chip) -> list[str]:
    """A Zero 2 W whose header chip libgpiod 2 opens, and where building gpiozero's default
    factory (lgpio on Bookworm) is recorded and refused."""
    defaults: list[str] = []

    def no_default() -> Any:
        defaults.append("default")
        raise AssertionError("gpiozero's default pin factory (lgpio) was built")

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(no_default))
    monkeypatch.setattr(pins, "header_chip", lambda named="": chip.path)
    monkeypatch.setattr("gpiozero.pins.local.get_pi_revision", lambda: ZERO_2_W)
    return defaults


def test_on_a_pi_with_libgpiod_no_lgpio_chip_is_ever_opened(monkeypatch: pytest.MonkeyPatch,
                                                            chip: gpiod_rig.Chip) -> None:
    defaults = _pi_with_libgpiod(monkeypatch, chip)
    hw = Hardware(button_pin=17, buzzer_pin=18, led_pin=27, vibration_pin=22)
    assert hw.buzzer == "active"
    p = pins.build_pins(hw)
    assert defaults == []
    assert isinstance(p.button, pins.LineEventButton)
    assert sorted(chip.held) == [17, 18, 22, 27]
    p.tone(880)
    assert chip.value(18) == ON
    p.tone(0)
    assert chip.value(18) == OFF
    assert p.led is not None and p.vibration is not None
    p.led.on()
    p.vibration.on()
    assert chip.value(27) == ON and chip.value(22) == ON
    p.close()
    assert not chip.open_requests() and len(chip.requests) == 4
    assert chip.value(27) == OFF and chip.value(22) == OFF
    assert not any(t.name == "button-edges" for t in threading.enumerate())


def test_a_passive_buzzer_alone_goes_to_gpiozeros_backend(monkeypatch: pytest.MonkeyPatch,
                                                          chip: gpiod_rig.Chip) -> None:
    defaults = _pi_with_libgpiod(monkeypatch, chip)
    mock = MockFactory(pin_class=MockPWMPin)

    def the_backend() -> Any:
        defaults.append("default")
        return mock

    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(the_backend))
    p = pins.build_pins(Hardware(buzzer="passive", led_pin=27))
    assert defaults == ["default"]
    p.tone(440)
    assert mock.pin(18).frequency == 440 and mock.pin(18).state == 0.25      # volume 50 -> 25 % duty
    assert p.led is not None
    p.led.on()
    assert chip.value(27) == ON and 18 not in chip.held
    p.close()
    assert not chip.open_requests()
    mock.reset()


def test_a_busy_line_says_which_pin_and_what_to_check(monkeypatch: pytest.MonkeyPatch,
                                                      chip: gpiod_rig.Chip) -> None:
    _pi_with_libgpiod(monkeypatch, chip)
    other = chip.request_lines(chip.path, "another-program", {27: {"direction": Direction.OUTPUT}})
    with pytest.raises(HardwareError) as e:
        pins.build_pins(Hardware(led_pin=27))
    assert str(e.value).startswith("the LED's GPIO line 27 on /dev/gpiochip0 could not be requested")
    assert "Device or resource busy" in str(e.value) and "[hardware] led_pin" in str(e.value)
    # What was built before it (the button, the buzzer) is released again.
    assert chip.open_requests() == [other]
    assert not any(t.name == "button-edges" for t in threading.enumerate())
    other.release()
    other = chip.request_lines(chip.path, "another-program", {17: {"direction": Direction.INPUT}})
    with pytest.raises(HardwareError, match=r"^the button's GPIO line 17 on /dev/gpiochip0 .*"
                                                 r"Device or resource busy.*\[hardware\] button_pin"):
        pins.build_pins(Hardware())
    assert chip.open_requests() == [other]
    other.release()
    p = pins.build_pins(Hardware(led_pin=27))        # and once the line is free, the unit builds
    p.close()
    assert not chip.open_requests()


def test_another_board_drives_the_chip_it_names(monkeypatch: pytest.MonkeyPatch, chip: gpiod_rig.Chip) -> None:
    """[hardware] board and gpio_chip: the named chip's lines, numbered as its offsets, with no
    Pi revision to read (gpiozero's would fail off a Pi) and no lgpio chip opened."""
    defaults = _pi_with_libgpiod(monkeypatch, chip)
    asked: list[str] = []

    def header_chip(named: str = "") -> str:
        asked.append(named)
        return chip.path

    monkeypatch.setattr(pins, "header_chip", header_chip)

    def no_pi() -> int:
        raise AssertionError("the Pi's revision was read on another board")

    monkeypatch.setattr("gpiozero.pins.local.get_pi_revision", no_pi)
    p = pins.build_pins(Hardware(board="Test board", gpio_chip="gpio-sim-bank0", led_pin=27))
    assert asked == ["gpio-sim-bank0"] and defaults == []
    p.tone(880)
    assert p.led is not None
    p.led.on()
    assert chip.value(18) == ON and chip.value(27) == ON
    p.close()
    assert not chip.open_requests()
