"""The shell's seams with the real libraries: gpiozero on MockFactory, luma's real drivers on a fake bus."""

from __future__ import annotations

from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from bedside.core import config
from bedside.core import screens as sc
from bedside.core.config import Hardware
from bedside.core.panels import PANELS
from bedside.display import pages, render
from bedside.display.panel import DisplayOut
from bedside.unit import pins as hardware
from bedside.unit import sounds


class Bus:
    """A fake I2C interface with luma's serial_interface shape; records what the driver sends."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, ...]] = []
        self.data_bytes = 0
        self.frames = 0
        self.fail = False

    def command(self, *cmd: int) -> None:
        if self.fail:
            raise OSError(121, "Remote I/O error")
        self.commands.append(cmd)

    def data(self, data: list[int]) -> None:
        if self.fail:
            raise OSError(121, "Remote I/O error")
        self.data_bytes += len(data)
        self.frames += 1

    def cleanup(self) -> None:
        pass


@pytest.mark.parametrize("model", sorted(PANELS))
def test_real_driver_gets_a_frame_only_when_pixels_change(model: str) -> None:
    panel = PANELS[model]
    bus = Bus()
    dev = hardware.build_display(Hardware(display=model), serial_interface=bus)
    assert (dev.width, dev.height) == (panel.width, panel.height)
    out = DisplayOut(dev, layout=panel.default_layout)
    frame = panel.width * panel.height // (2 if panel.greyscale else 8)
    sent_before = bus.data_bytes
    idle = sc.Idle("09:41", "10:00", "Ankle pumps", 1, 2, ("done", "open"))
    assert out.show(idle, "normal")
    first = bus.data_bytes - sent_before
    # The first frame whole (the panel's memory is unknown), one bit a pixel; luma's greyscale
    # drivers (four bits a pixel) send the rectangle that changed, never more than the frame.
    assert first == frame or (panel.greyscale and 0 < first <= frame)
    assert not out.show(idle, "normal")                      # same screen value
    assert not out.show(sc.Idle("09:41", "10:00", "Ankle pumps", 1, 2, ("done", "open")), "normal")
    assert bus.data_bytes - sent_before == first
    assert out.show(sc.Idle("09:42", "10:00", "Ankle pumps", 1, 2, ("done", "open")), "normal")
    # A changed minute: only the changed parts where display/pages.py has the controller
    # (test_pages.py proves them), else the driver's own frame.
    second = bus.data_bytes - sent_before - first
    assert 0 < second < frame if model in pages.WINDOWS or panel.greyscale else second == frame


def test_brightness_uses_contrast_and_off_hides() -> None:
    bus = Bus()
    out = DisplayOut(hardware.build_display(Hardware(), serial_interface=bus))
    s = sc.Idle("23:10", None, None, 0, 0, (), night=True)
    out.show(s, "dim")
    assert (0x81, 0x01) in bus.commands  # SSD1306 set-contrast
    out.show(s, "off")
    assert bus.commands[-1] == (0xAE,)   # display off
    out.show(s, "dim")
    assert (0xAF,) in bus.commands[-3:]  # on again


def test_display_failure_is_reported_not_raised_and_recovers() -> None:
    bus = Bus()
    out = DisplayOut(hardware.build_display(Hardware(), serial_interface=bus))
    bus.fail = True
    assert out.show(sc.Hint("a"), "normal") is False
    assert out.error is not None and "Remote I/O" in out.error
    bus.fail = False
    assert out.show(sc.Hint("a"), "normal") is True
    assert out.error is None


def test_missing_display_says_what_to_check() -> None:
    with pytest.raises(hardware.HardwareError, match="I2C"):
        hardware.build_display(Hardware(i2c_port=7))
    with pytest.raises(hardware.HardwareError, match=r"SPI 5\.0 .*dtparam=spi=on"):
        hardware.build_display(Hardware(display="ssd1322", spi_port=5))


def test_render_is_deterministic_and_one_bit() -> None:
    s = sc.Prompt("hourly", "Ankle pumps", "10 each foot", 0, 2)
    a, b = render.render(s), render.render(s)
    assert a.mode == "1" and a.size == (128, 64)
    assert a.tobytes() == b.tobytes()
    assert a.getbbox() is not None


@pytest.fixture
def factory() -> Any:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def test_pins_are_built_on_the_injected_factory(factory: Any) -> None:
    pins = hardware.build_pins(Hardware(), pin_factory=factory)
    events: list[str] = []
    pins.button.when_pressed = lambda: events.append("down")
    pins.button.when_released = lambda: events.append("up")
    factory.pin(17).drive_low()
    factory.pin(17).drive_high()
    assert events == ["down", "up"]
    pins.tone(880)
    assert factory.pin(18).state == 1
    pins.tone(0)
    assert factory.pin(18).state == 0
    led = hardware.LedOut(pins.led)
    led.set("missed")
    assert factory.pin(27).state == 1
    led.set("off")
    assert factory.pin(27).state == 0
    pins.close()


def test_passive_buzzer_plays_tones_at_the_set_volume(factory: Any) -> None:
    pins = hardware.build_pins(Hardware(buzzer="passive", volume=40), pin_factory=factory)
    pins.tone(660)
    pin = factory.pin(18)
    assert pin.frequency == 660 and pin.state == pytest.approx(0.2)
    pins.tone(0)
    assert pin.state == 0
    pins.close()


def test_pin_conflict_is_a_clear_error(factory: Any) -> None:
    from gpiozero import LED

    holder = LED(17, pin_factory=factory)
    with pytest.raises(hardware.HardwareError, match="no other program"):
        hardware.build_pins(Hardware(), pin_factory=factory)
    holder.close()


def test_player_runs_each_sound_and_spaces_chimes() -> None:
    levels: list[tuple[float, int]] = []
    now = 100.0
    p = sounds.Player(lambda f: levels.append((now, f)))
    assert p.play("prompt", now)
    while p.deadline() is not None:
        now = p.deadline()  # type: ignore[assignment]
        p.advance(now)
    assert [f for _, f in levels] == [880, 0, 660, 0]
    assert levels[-1][0] == pytest.approx(100.53)
    assert not p.play("repeat", now + 5)   # inside the 15 s spacing
    assert p.play("repeat", now + 20)


def test_no_sound_is_an_alarm_burst() -> None:
    for name in sounds.SOUNDS:
        assert sounds.pulses(name) <= 2, name
        assert sum(d for _, d in sounds.SOUNDS[name]) <= 1.0


def test_status_light_modes_on_a_real_gpiozero_led(factory: Any) -> None:
    import time

    pins = hardware.build_pins(Hardware(), pin_factory=factory)
    pin = factory.pin(27)
    led = hardware.LedOut(pins.led)
    led.set("missed")
    assert pin.state == 1
    led.set("done")                     # a brief blink every few seconds: on, then off again
    end = time.monotonic() + 3
    while time.monotonic() < end and not (pin.state == 0 and [s.state for s in pin.states][-2:] == [1, 0]):
        time.sleep(0.01)
    assert [s.state for s in pin.states][-2:] == [1, 0]
    led.set("off")
    assert pin.state == 0
    pins.close()


def test_the_configured_gpio_backend_is_the_pin_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    """[hardware] gpio picks gpiozero's factory; "auto" and an explicit GPIOZERO_PIN_FACTORY
    leave the choice to gpiozero. Off a Pi a named backend fails with what to do, not a traceback."""
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    assert hardware.pin_factory_for("auto") is None
    for backend, package in (("lgpio", "lgpio"), ("rpigpio", "RPi.GPIO")):
        with pytest.raises(hardware.HardwareError, match=f'gpio = "{backend}"') as e:
            hardware.pin_factory_for(backend)
        assert package in str(e.value)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    assert hardware.pin_factory_for("rpigpio") is None
    with pytest.raises(config.ConfigError, match="gpio"):
        config.parse({"hardware": {"gpio": "pigpio"}})
    assert config.parse({"hardware": {"gpio": "rpigpio"}}).hardware.gpio == "rpigpio"
