"""The shell's seams with the real libraries: gpiozero on MockFactory, luma's real drivers on a fake bus."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from bedside.core import config
from bedside.core import screens as sc
from bedside.core.config import Hardware
from bedside.core.panels import PANELS
from bedside.display import device, pages, render
from bedside.display.panel import DisplayOut
from bedside.unit import pins as hardware
from bedside.unit import sounds
from tests.rigs import gpiod_rig
from tests.rigs.fake_bus import Bus


@pytest.mark.parametrize("model", sorted(PANELS))
def test_real_driver_gets_a_frame_only_when_pixels_change(model: str) -> None:
    panel = PANELS[model]
    bus = Bus()
    dev = device.build_display(Hardware(display=model), serial_interface=bus)
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
    out = DisplayOut(device.build_display(Hardware(), serial_interface=bus))
    s = sc.Idle("23:10", None, None, 0, 0, (), night=True)
    out.show(s, "dim")
    assert (0x81, 0x01) in bus.commands  # SSD1306 set-contrast
    out.show(s, "off")
    assert bus.commands[-1] == (0xAE,)   # display off
    out.show(s, "dim")
    assert (0xAF,) in bus.commands[-3:]  # on again


def test_display_failure_is_reported_not_raised_and_recovers() -> None:
    bus = Bus()
    out = DisplayOut(device.build_display(Hardware(), serial_interface=bus))
    bus.fail = True
    assert out.show(sc.Hint("a"), "normal") is False
    assert out.error is not None and "Remote I/O" in out.error
    bus.fail = False
    assert out.show(sc.Hint("a"), "normal") is True
    assert out.error is None


def test_missing_display_says_what_to_check() -> None:
    with pytest.raises(device.HardwareError, match="I2C"):
        device.build_display(Hardware(i2c_port=7))
    with pytest.raises(device.HardwareError, match=r"SPI 5\.0 .*dtparam=spi=on"):
        device.build_display(Hardware(display="ssd1322", spi_port=5))


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
    pins.button.when_activated = lambda: events.append("down")
    pins.button.when_deactivated = lambda: events.append("up")
    factory.pin(17).drive_low()
    factory.pin(17).drive_high()
    assert events == ["down", "up"]
    pins.tone(880)
    assert factory.pin(18).state == 1
    pins.tone(0)
    assert factory.pin(18).state == 0
    led = hardware.status_light(pins.led)
    assert led is not None
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
    with pytest.raises(device.HardwareError, match="no other program"):
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


def test_status_light_on_a_plain_line_is_steady_and_never_asks_for_a_wake_up(factory: Any) -> None:
    """Without the kernel's LED device the light needs no timer: lit while due or missed."""
    pins = hardware.build_pins(Hardware(), pin_factory=factory)
    pin = factory.pin(27)
    led = hardware.status_light(pins.led)
    assert isinstance(led, hardware.LedOut)
    for mode, lit in (("due", 1), ("missed", 1), ("done", 0), ("due", 1), ("off", 0)):
        led.set(mode)
        assert pin.state == lit and led.deadline() is None, mode
    pins.close()


def test_status_light_is_the_kernels_led_where_the_overlay_made_one(factory: Any, tmp_path: Path) -> None:
    """With the installer's gpio-led overlay the kernel owns the line and blinks it (timer
    trigger): no GPIO line is requested and nothing of ours wakes. The sysfs files here are a
    directory standing in for /sys/class/leds/bedside-status (a real Pi's check is in
    hardware/commissioning.md)."""
    dev = tmp_path / hardware.LED_LABEL
    dev.mkdir()
    (dev / "trigger").write_text("[none] timer heartbeat")
    (dev / "brightness").write_text("0")
    pins = hardware.build_pins(Hardware(), pin_factory=factory, led_class=tmp_path)
    led = hardware.status_light(pins.led)
    assert isinstance(led, hardware.KernelLed)
    assert factory.pin(27).function == "input"               # the line was never claimed
    led.set("due")
    assert (dev / "trigger").read_text() == "timer"
    led.set("due")
    assert led.writes == 3                                     # at start: trigger and brightness
    led.set("missed")
    assert (dev / "trigger").read_text() == "none" and (dev / "brightness").read_text() == "1"
    led.set("done")
    assert (dev / "brightness").read_text() == "0"
    (dev / "brightness").unlink()
    (dev / "brightness").mkdir()                              # a write that fails is kept, not raised
    led.set("missed")
    assert led.error is not None and "bedside-status" in led.error
    pins.close()


def test_the_configured_gpio_backend_is_the_pin_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    """[hardware] gpio picks gpiozero's factory; "auto" and an explicit GPIOZERO_PIN_FACTORY
    leave the choice to gpiozero. Off a Pi a named backend fails with what to do, not a traceback."""
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    assert hardware.pin_factory_for("auto") is None
    for backend, package in (("lgpio", "lgpio"), ("rpigpio", "RPi.GPIO")):
        with pytest.raises(device.HardwareError, match=f'gpio = "{backend}"') as e:
            hardware.pin_factory_for(backend)
        assert package in str(e.value)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    assert hardware.pin_factory_for("rpigpio") is None
    with pytest.raises(config.ConfigError, match="gpio"):
        config.parse({"hardware": {"gpio": "pigpio"}})
    assert config.parse({"hardware": {"gpio": "rpigpio"}}).hardware.gpio == "rpigpio"


@pytest.mark.serial
def test_the_line_event_button_waits_on_the_kernel_and_passes_its_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The libgpiod path (no GPIO here, so libgpiod 2's API is played by a fake whose request
    descriptor is a pipe): edges arrive with the kernel's monotonic stamps, and the watching
    thread sleeps while nothing happens (its wake-ups counted by the kernel)."""
    import threading
    import time

    chip = gpiod_rig.Chip()
    gpiod_rig.install(monkeypatch, chip)
    button = hardware.LineEventButton("/dev/gpiochip0", 17)
    req = chip.held[17]
    s = chip.lines[17].settings
    assert s["active_low"] and s["bias"].name == "PULL_UP" and s["edge_detection"].name == "BOTH"
    got: list[tuple[bool, float]] = []
    arrived = threading.Event()

    def on_edge(pressed: bool, mono: float) -> None:
        got.append((pressed, mono))
        arrived.set()

    button.on_edge = on_edge
    req.edge(True, 5_000_000_000)
    assert arrived.wait(2)
    arrived.clear()
    req.edge(False, 5_250_000_000)
    assert arrived.wait(2)
    assert got == [(True, 5.0), (False, 5.25)]

    tid = next(t.native_id for t in threading.enumerate() if t.name == "button-edges")

    def switches() -> int:
        text = Path(f"/proc/self/task/{tid}/status").read_text()
        return int(next(x for x in text.splitlines() if x.startswith("voluntary_ctxt_switches")).split()[1])

    time.sleep(0.3)                          # back in select after the last edge
    before = switches()
    time.sleep(2.0)
    # Idle: asleep in the kernel (at most a stray GIL hand-over; polling lgpio-style is ~4000).
    assert switches() - before <= 1
    assert not button.is_active
    button.close()
    assert req.released and not any(t.name == "button-edges" for t in threading.enumerate())


def test_the_loop_takes_the_kernels_stamp_for_a_line_event_edge(tmp_path: Path) -> None:
    from datetime import datetime

    from bedside.core.events import ButtonEdge
    from bedside.unit import simulate
    from bedside.unit.loop import Input

    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, datetime.fromisoformat("2026-11-24T10:00").replace(tzinfo=cfg.tz))
    button = SimpleNamespace(on_edge=None)
    sim.unit.attach_button(button)
    button.on_edge(True, 123.5)
    item = sim.unit.inbox.get_nowait()
    assert isinstance(item, Input) and item.event == ButtonEdge(True) and item.mono == 123.5
    sim.close()


def test_a_display_rebuilt_every_day_leaves_no_device_behind() -> None:
    # luma registers an exit hook holding each device it builds; the keeper rebuilds the
    # display at each daily self-test, so a year of those hooks kept 365 devices alive.
    import atexit
    import gc
    import weakref

    from bedside.display.panel import DisplayKeeper

    hooks_before = atexit._ncallbacks()
    built: list[weakref.ref[Any]] = []

    def build() -> Any:
        dev = device.build_display(Hardware(), serial_interface=Bus())
        built.append(weakref.ref(dev))
        return dev

    keeper = DisplayKeeper(build, lambda: 0.0)
    keeper.show(sc.Hint("a"), "normal")
    for _ in range(30):
        assert keeper.refresh()
    gc.collect()
    alive = [r() for r in built if r() is not None]
    assert len(built) == 31 and alive == [keeper.out.device if keeper.out else None]
    assert atexit._ncallbacks() == hooks_before
    # The device in use is still cleaned up at exit (display off), as luma's own hook would.
    bus = keeper.out.device._serial_interface if keeper.out else None
    assert isinstance(bus, Bus)
    sent = len(bus.commands)
    device._clean_up_live()
    assert (0xAE,) in bus.commands[sent:]


def test_an_emulated_display_takes_the_frames_in_memory() -> None:
    """[hardware] emulated_display: luma's own dummy device, the panel's size, no bus opened;
    and the config says, as a warning, that no panel shows the screens."""
    from luma.core.device import dummy

    dev = device.build_display(Hardware(display="ssd1309", emulated_display=True))
    assert isinstance(dev, dummy) and (dev.width, dev.height) == (128, 64)
    cfg = config.parse({"hardware": {"emulated_display": True}}, "test.toml")
    assert cfg.hardware.emulated_display and any("no panel" in w for w in cfg.warnings)
