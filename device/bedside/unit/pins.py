"""Builds the unit's parts with the real libraries: gpiozero for pins, luma.oled for the display.

Imports of gpiozero and luma happen inside these functions, so importing the package never
touches hardware. Tests and the simulator inject gpiozero's ``MockFactory`` (the library's
own ``pin_factory`` seam) and a luma dummy device or a real driver over a fake bus
(luma's ``serial_interface`` seam).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.core.config import Hardware
from bedside.core.errors import FAILED, BedsideError

MODEL_FILE = Path("/proc/device-tree/model")
# The status LED as the kernel's own LED device: the installer's boot block has
# ``dtoverlay=gpio-led,gpio=<led_pin>,label=bedside-status`` (tools/install.sh), and its udev
# rule (systemd/92-bedside-led.rules) lets the bedside group write the device's trigger and
# brightness. The kernel then owns the line (gpiozero could not request it).
LED_CLASS = Path("/sys/class/leds")
LED_LABEL = "bedside-status"
# [hardware] tone for passive buzzers: the whole set moves a fifth down or up, keeping every
# sound's shape (a lower pitch suits many older ears; a higher one, a piezo near its resonance).
TONE = {"low": 2 / 3, "normal": 1.0, "high": 3 / 2}


class HardwareError(BedsideError):
    """A part could not be set up; the message says what to check."""

    exit_code = FAILED


def pi_model() -> str | None:
    """The Raspberry Pi model string, or None when this is not a Pi."""
    try:
        model = MODEL_FILE.read_bytes().decode("ascii", "replace").strip("\0\n ")
    except OSError:
        return None
    return model if "Raspberry Pi" in model else None


def pins_chosen_explicitly() -> bool:
    return bool(os.environ.get("GPIOZERO_PIN_FACTORY"))


# [hardware] gpio: the gpiozero pin factory for each backend, and the package that provides it.
BACKENDS = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory", "lgpio"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory", "RPi.GPIO"),
}


def pin_factory_for(backend: str) -> Any:
    """gpiozero's factory for the configured backend; None for "auto" (gpiozero tries lgpio,
    then RPi.GPIO) or when GPIOZERO_PIN_FACTORY chooses one (the simulator, other hardware)."""
    if backend == "auto" or pins_chosen_explicitly():
        return None
    module, name, package = BACKENDS[backend]
    try:
        factory = getattr(importlib.import_module(module), name)
        return factory()
    except ImportError as e:
        raise HardwareError(f"[hardware] gpio = \"{backend}\" but {package} is not installed ({e}); "
                            "run the installer again (it installs the backend the config names)") from None
    except Exception as e:
        # RPi.GPIO raises RuntimeError off a Pi or on a Pi 5; lgpio cannot open a chip.
        raise HardwareError(f"[hardware] gpio = \"{backend}\" cannot drive this board's pins "
                            f"({type(e).__name__}: {e}); a Pi 5 needs lgpio (hardware/README.md)") from None


# The 40-pin header's GPIO chip, by its kernel label: Pi 5 (RP1), Pi 4, Pi Zero 2 W / 3.
HEADER_CHIPS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")


class LineEventButton:
    """The button read from the kernel's GPIO line events, through libgpiod 2 (``gpiod``).

    The line is requested with both edges, the pull-up and active-low (pressed = active); a
    thread blocks in ``select`` on the request's file descriptor, which the kernel makes
    readable only when an edge arrives, so an untouched button costs no wake-up at all
    (lgpio, gpiozero's default on Bookworm, polls for edges every 0.5 ms instead). Each edge
    carries the kernel's own CLOCK_MONOTONIC timestamp, the loop's time base: ``on_edge``
    gets it, and the core debounces and times holds from it. Same callbacks as a gpiozero
    input device (``when_activated``/``when_deactivated``) for code that does not take one.
    """

    def __init__(self, chip: str, offset: int) -> None:
        import threading

        import gpiod
        from gpiod.line import Bias, Edge

        settings = gpiod.LineSettings(edge_detection=Edge.BOTH, bias=Bias.PULL_UP, active_low=True)
        self.request = gpiod.request_lines(chip, consumer="bedside-button", config={offset: settings})
        self.offset = offset
        self.when_activated: Callable[[], None] | None = None
        self.when_deactivated: Callable[[], None] | None = None
        self.on_edge: Callable[[bool, float], None] | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="button-edges", daemon=True)
        self._thread.start()

    @property
    def is_active(self) -> bool:
        from gpiod.line import Value

        return bool(self.request.get_value(self.offset) == Value.ACTIVE)

    def _watch(self) -> None:
        import select

        from gpiod import EdgeEvent

        while True:
            ready, _, _ = select.select([self.request.fd, self._stop_r], [], [])   # no timeout: no polling
            if self._stop_r in ready:
                return
            for ev in self.request.read_edge_events():
                pressed = ev.event_type == EdgeEvent.Type.RISING_EDGE     # logical: active-low line
                if self.on_edge is not None:
                    self.on_edge(pressed, ev.timestamp_ns / 1e9)
                else:
                    fn = self.when_activated if pressed else self.when_deactivated
                    if fn is not None:
                        fn()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(2)
        self.request.release()
        os.close(self._stop_r)
        os.close(self._stop_w)


def header_chip(named: str = "") -> str | None:
    """The GPIO character device of the 40-pin header, when libgpiod 2 can open it; with
    ``named`` (``[hardware] gpio_chip``: a label or a /dev path), that chip, or a HardwareError
    saying which chips there are."""
    try:
        import gpiod
    except ImportError:
        gpiod = None
    if gpiod is None or not hasattr(gpiod, "request_lines"):   # none, or libgpiod 1 (python3-libgpiod)
        if named:
            raise HardwareError(f'[hardware] gpio_chip = "{named}" needs libgpiod 2\'s bindings (the gpiod '
                                "package, 2.1 or newer), which are not installed: run the installer again")
        return None
    labels = (named,) if named else HEADER_CHIPS
    found: list[str] = []
    for path in sorted(Path("/dev").glob("gpiochip*")):
        try:
            with gpiod.Chip(str(path)) as chip:
                label = chip.get_info().label
        except OSError:
            continue
        if str(path) == named or label in labels:
            return str(path)
        found.append(f"{path} ({label})")
    if named:
        raise HardwareError(f'[hardware] gpio_chip = "{named}": no such GPIO chip here (found: '
                            f'{", ".join(found) or "none"}); check the name with gpiodetect')
    return None


# A named board's lines are numbered as the chip's offsets; gpiozero still wants a header to
# check pin numbers against, and a Pi 4's (GPIO 0-27) is the one the config's pins are written for.
STAND_IN_REVISION = 0xC03111


@dataclass
class Pins:
    button: Any
    tone: Callable[[int], None]
    led: Any | None
    close: Callable[[], None]
    vibration: Any | None = None


def build_pins(hw: Hardware, pin_factory: Any = None, *, led_class: Path | None = None) -> Pins:
    """The button, buzzer, LED and vibration motor on ``pin_factory`` (None: the configured
    backend, ``[hardware] gpio``).

    On a Pi where libgpiod 2 finds the header's chip (and neither ``[hardware] gpio`` nor
    ``GPIOZERO_PIN_FACTORY`` chooses a backend), no lgpio chip is ever opened: the button is read
    from the kernel's line events (``LineEventButton``) and the outputs are line requests
    (``gpiod_pins.GpiodFactory``), because opening a chip through lgpio starts a thread that
    wakes at least fifty times a second for ever. A passive buzzer needs PWM, which libgpiod
    has not: it alone stays on gpiozero's backend, and costs that thread (docs/design.md).
    The status LED is the kernel's LED device where the installer's overlay made one
    (``led_class``: where to look, /sys/class/leds on a Pi with the real pins), else its line.
    """
    if pin_factory is None:
        pin_factory = pin_factory_for(hw.gpio)
    try:
        from gpiozero import LED, Buzzer, DigitalInputDevice, DigitalOutputDevice, PWMOutputDevice
        from gpiozero.exc import GPIOZeroError
    except ImportError as e:  # pragma: no cover - a broken install
        raise HardwareError(f"gpiozero is not installed ({e}); reinstall the bedside package") from None
    chip = header_chip(hw.gpio_chip) if pin_factory is None and not pins_chosen_explicitly() else None
    outputs = pin_factory
    built: list[Any] = []

    def part(what: str, key: str, pin: int, make: Callable[[], Any]) -> Any:
        # Each part named in its error: which pin, on which chip, and what to check.
        try:
            dev = make()
        except OSError as e:        # libgpiod: the line is busy or does not exist
            problem = str(e)
        else:
            built.append(dev)
            return dev
        # Raised outside the handler: nothing then holds the half-built gpiozero device (its
        # frames were in the OSError's traceback), so it is closed and gives up its pin now.
        where = f" on {chip}" if chip is not None else ""
        raise HardwareError(f"the {what}'s GPIO line {pin}{where} could not be requested ({problem}); "
                            f"check [hardware] {key} and that no other program uses it")

    try:
        if chip is not None:
            from bedside.unit.gpiod_pins import GpiodFactory

            outputs = GpiodFactory(chip, revision=STAND_IN_REVISION if hw.board else None)
            built.append(outputs)
        # A plain input, not gpiozero's Button: Button starts a hold thread that wakes ten times
        # a second for ever, and the core already debounces and times holds from the edges'
        # timestamps (bounce_time=None: which also works on mock pins). Pressed = active (low).
        # On a Pi, the kernel's line events (no polling) when libgpiod 2 is there; gpiozero
        # (lgpio polls edges every 0.5 ms) otherwise, or when pins are chosen explicitly.
        button: Any = part("button", "button_pin", hw.button_pin, (
            (lambda: LineEventButton(chip, hw.button_pin)) if chip is not None else
            (lambda: DigitalInputDevice(hw.button_pin, pull_up=True, bounce_time=None, pin_factory=pin_factory))))
        tone: Callable[[int], None]
        if hw.buzzer == "passive":
            # PWM: gpiozero's backend (lgpio on Bookworm, and its transmit thread with it).
            pwm = part("buzzer", "buzzer_pin", hw.buzzer_pin, lambda: PWMOutputDevice(
                hw.buzzer_pin, initial_value=0, frequency=440, pin_factory=pin_factory))
            duty = hw.volume / 200  # 50 % duty is the loudest a piezo gets
            pitch = TONE[hw.tone]

            def tone(freq: int) -> None:
                if freq:
                    pwm.frequency = round(freq * pitch)
                    pwm.value = duty
                else:
                    pwm.value = 0
        else:
            buzzer = part("buzzer", "buzzer_pin", hw.buzzer_pin, lambda: Buzzer(hw.buzzer_pin, pin_factory=outputs))

            def tone(freq: int) -> None:
                if freq:
                    buzzer.on()
                else:
                    buzzer.off()

        led: Any = None
        if hw.led_pin is not None:
            # The kernel's LED device when the installer's overlay made one (it owns the line and
            # blinks it without waking us), else the line itself, lit steady (docs/design.md).
            sysfs = (kernel_led(led_class) if led_class is not None else
                     kernel_led() if pin_factory is None and not pins_chosen_explicitly() else None)
            if sysfs is not None:
                led = KernelLed(sysfs)
                built.append(led)
            else:
                led = part("LED", "led_pin", hw.led_pin, lambda: LED(hw.led_pin, pin_factory=outputs))
        vibration = (part("vibration motor", "vibration_pin", hw.vibration_pin,
                          lambda: DigitalOutputDevice(hw.vibration_pin, pin_factory=outputs))
                     if hw.vibration_pin is not None else None)
    except GPIOZeroError as e:
        _close_all(built)
        raise HardwareError(f"the GPIO pins could not be set up ({type(e).__name__}: {e}); "
                            "check [hardware] pins and that no other program uses them") from None
    except HardwareError:
        _close_all(built)
        raise

    def close() -> None:
        _close_all(built)

    return Pins(button, tone, led, close, vibration)


def _close_all(parts: list[Any]) -> None:
    # Devices first, then the factory that holds their lines (the reverse of building).
    for dev in reversed(parts):
        dev.close()


# Every luma device registers an exit hook that holds it for the life of the process. The
# daemon builds a new device at each daily self-test and each recovery of a failed display,
# so those hooks kept every device it ever built (its frame and two 8192-entry tables: about
# 0.6 MiB a day). Instead the devices built here are held weakly, and one exit hook of ours
# cleans up those still in use, as luma's own would.
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def _clean_up_live() -> None:
    for device in list(_LIVE):
        with contextlib.suppress(Exception):
            device.cleanup()


atexit.register(_clean_up_live)


class _NoExitHooks:
    """Stands in for the ``atexit`` module inside ``luma.core.device`` while a device is built."""

    @staticmethod
    def register(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return fn


@contextlib.contextmanager
def _held_weakly() -> Iterator[None]:
    # Only luma's module sees the stand-in (not the process's atexit), and only on the loop's
    # thread, while the driver is constructed.
    import luma.core.device as luma_device

    real = luma_device.atexit
    luma_device.atexit = _NoExitHooks
    try:
        yield
    finally:
        luma_device.atexit = real


def build_display(hw: Hardware, serial_interface: Any = None) -> Any:
    """The luma device for the configured panel (core/panels.py); over I2C or SPI unless an
    interface is injected."""
    panel = hw.panel
    if hw.emulated_display and serial_interface is None:
        # luma's own stand-in: the same frames, kept in memory (docs/install.md, "What the VM proves").
        from luma.core.device import dummy

        with _held_weakly():
            device = dummy(width=panel.width, height=panel.height, rotate=hw.rotate, mode="1")
        _LIVE.add(device)
        return device
    try:
        from luma.core.error import DeviceNotFoundError, DevicePermissionError
        from luma.oled import device as oled
    except ImportError as e:  # pragma: no cover
        raise HardwareError(f"luma.oled is not installed ({e}); reinstall the bedside package") from None
    driver = getattr(oled, panel.controller)
    where = (f"I2C bus {hw.i2c_port} at address {hw.i2c_address:#04x}" if panel.bus == "i2c"
             else f"SPI {hw.spi_port}.{hw.spi_device} (DC GPIO {hw.dc_pin}, RST GPIO {hw.reset_pin})")
    try:
        if serial_interface is None:
            from luma.core.interface import serial

            if panel.bus == "i2c":
                serial_interface = serial.i2c(port=hw.i2c_port, address=hw.i2c_address)
            else:
                try:
                    serial_interface = serial.spi(port=hw.spi_port, device=hw.spi_device, gpio_DC=hw.dc_pin,
                                                  gpio_RST=hw.reset_pin)
                except ImportError as e:
                    # luma drives the DC and RST pins through the RPi.GPIO interface.
                    raise HardwareError(
                        f"the {hw.display} on SPI {hw.spi_port}.{hw.spi_device} needs the RPi.GPIO interface "
                        f"({e}); install python3-rpi-lgpio (Raspberry Pi OS) and enable SPI (dtparam=spi=on)"
                    ) from None
        try:
            # Probe with a no-op before building the driver: the daemon's retries while a
            # display is unplugged then build no driver and leave no bus handle open.
            serial_interface.command(0xE3)
        except Exception:
            with contextlib.suppress(Exception):
                serial_interface.cleanup()
            raise
        # Greyscale controllers are sent one-bit frames: the screens are drawn in one bit.
        extra = {"mode": "1"} if panel.greyscale else {}
        with _held_weakly():
            device = driver(serial_interface=serial_interface, width=panel.width, height=panel.height,
                            rotate=hw.rotate, **extra)
        _LIVE.add(device)
        return device
    except DevicePermissionError:
        dev = f"/dev/i2c-{hw.i2c_port}" if panel.bus == "i2c" else f"/dev/spidev{hw.spi_port}.{hw.spi_device}"
        group = "i2c" if panel.bus == "i2c" else "spi and gpio"
        raise HardwareError(f"no permission to use {dev}; add the bedside user to the {group} group") from None
    except (DeviceNotFoundError, OSError) as e:
        enable = "dtparam=i2c_arm=on" if panel.bus == "i2c" else "dtparam=spi=on"
        raise HardwareError(
            f"no {hw.display} display answered on {where} ({e}); "
            f"check the wiring, that the bus is enabled ({enable}) and, on I2C, the address jumper") from None


class Vibration:
    """The vibration motor: two short pulses with each prompt and each repeat, for a patient
    who cannot hear the chime. It follows the sounds, so it is still whenever the unit is
    silent (nights, a nurse's pause). An observer of the loop's effects."""

    PULSE_S = 0.4
    GAP_S = 0.3
    PULSES = 2
    SOUNDS = ("prompt", "repeat")

    def __init__(self, motor: Any) -> None:
        self.motor = motor
        self.pulses = 0

    def __call__(self, effect: Any, now: Any) -> None:
        if getattr(effect, "sound", None) in self.SOUNDS and hasattr(effect, "sound"):
            self.pulses += 1
            self.motor.blink(on_time=self.PULSE_S, off_time=self.GAP_S, n=self.PULSES, background=True)




def kernel_led(root: Path = LED_CLASS) -> Path | None:
    """The kernel LED device the installer's overlay makes, when there is one."""
    path = root / LED_LABEL
    return path if (path / "trigger").exists() else None


class KernelLed:
    """The status LED blinked by the kernel: ``timer`` trigger while a session is due.

    The kernel's LED timer trigger toggles the line from a kernel timer (its default, 500 ms
    on and 500 ms off): no thread of ours and no wake-up of the process, however long the
    session stays unanswered. Steady (``missed``) and dark are one write each, with the
    trigger taken off. A write that fails (the overlay's device gone, a permission changed)
    is kept in ``error`` rather than raised: the light is the least of the unit's outputs.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.mode = "off"
        self.error: str | None = None
        self.writes = 0
        self._write(("trigger", "none"), ("brightness", "0"))

    def _write(self, *pairs: tuple[str, str]) -> None:
        try:
            for name, value in pairs:
                (self.path / name).write_text(value)
                self.writes += 1
        except OSError as e:
            self.error = f"{self.path.name}: {e.strerror or e}"
        else:
            self.error = None

    def set(self, mode: str) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        if mode == "due":
            self._write(("trigger", "timer"))
        elif mode == "missed":
            self._write(("trigger", "none"), ("brightness", "1"))
        else:
            self._write(("trigger", "none"), ("brightness", "0"))

    def close(self) -> None:
        self.set("off")


class LedOut:
    """The status LED on a plain GPIO line (no kernel LED device: the overlay was not applied,
    other hardware, the simulator's mock pins), for a nurse walking past: lit while a session
    is due and while the day's latest session stays missed, dark otherwise (done, before the
    first session of the day, and all night).

    A pattern that needs no timer: steady light costs no wake-up at all (a blink driven by the
    loop cost one a second, 3,600 an hour, while a session was due); the screen says whether
    the session is due or missed. Where the installer applied its overlay the kernel blinks
    the light instead (``KernelLed``). ``deadline``/``fire`` are kept for the loop's contract
    and never ask for a wake-up.
    """

    def __init__(self, led: Any, mono: Callable[[], float] | None = None) -> None:
        self.led = led
        self.mode = "off"

    def set(self, mode: str) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        if mode in ("due", "missed"):
            self.led.on()
        else:
            self.led.off()

    def deadline(self) -> float | None:
        return None

    def fire(self, now: float) -> None:
        return None


def status_light(led: Any, mono: Callable[[], float] | None = None) -> KernelLed | LedOut | None:
    """The status light for what ``build_pins`` found: the kernel's LED device as it is, a GPIO
    line as a steady light, or None when no LED is fitted."""
    if led is None:
        return None
    if isinstance(led, KernelLed):
        return led
    return LedOut(led, mono)
