"""Builds the unit's parts with the real libraries: gpiozero for pins, luma.oled for the display.

Imports of gpiozero and luma happen inside these functions, so importing the package never
touches hardware. Tests and the simulator inject gpiozero's ``MockFactory`` (the library's
own ``pin_factory`` seam) and a luma dummy device or a real driver over a fake bus
(luma's ``serial_interface`` seam).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.core.config import Hardware

MODEL_FILE = Path("/proc/device-tree/model")
# [hardware] tone for passive buzzers: the whole set moves a fifth down or up, keeping every
# sound's shape (a lower pitch suits many older ears; a higher one, a piezo near its resonance).
TONE = {"low": 2 / 3, "normal": 1.0, "high": 3 / 2}


class HardwareError(Exception):
    """A part could not be set up; the message says what to check."""


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


@dataclass
class Pins:
    button: Any
    tone: Callable[[int], None]
    led: Any | None
    close: Callable[[], None]


def build_pins(hw: Hardware, pin_factory: Any = None) -> Pins:
    """The button, buzzer and LED on ``pin_factory`` (None: the configured backend, ``[hardware] gpio``)."""
    if pin_factory is None:
        pin_factory = pin_factory_for(hw.gpio)
    try:
        from gpiozero import LED, Button, Buzzer, PWMOutputDevice
        from gpiozero.exc import GPIOZeroError
    except ImportError as e:  # pragma: no cover - a broken install
        raise HardwareError(f"gpiozero is not installed ({e}); reinstall the bedside package") from None
    try:
        # bounce_time=None: the core debounces on timestamps, which also works on mock pins.
        button = Button(hw.button_pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        tone: Callable[[int], None]
        if hw.buzzer == "passive":
            pwm = PWMOutputDevice(hw.buzzer_pin, initial_value=0, frequency=440, pin_factory=pin_factory)
            duty = hw.volume / 200  # 50 % duty is the loudest a piezo gets
            pitch = TONE[hw.tone]

            def tone(freq: int) -> None:
                if freq:
                    pwm.frequency = round(freq * pitch)
                    pwm.value = duty
                else:
                    pwm.value = 0

            buzzer: Any = pwm
        else:
            buzzer = Buzzer(hw.buzzer_pin, pin_factory=pin_factory)

            def tone(freq: int) -> None:
                if freq:
                    buzzer.on()
                else:
                    buzzer.off()

        led = LED(hw.led_pin, pin_factory=pin_factory) if hw.led_pin is not None else None
    except GPIOZeroError as e:
        raise HardwareError(f"the GPIO pins could not be set up ({type(e).__name__}: {e}); "
                            "check [hardware] pins and that no other program uses them") from None

    def close() -> None:
        for dev in (button, buzzer, led):
            if dev is not None:
                dev.close()

    return Pins(button, tone, led, close)


def build_display(hw: Hardware, serial_interface: Any = None) -> Any:
    """The luma device for the configured OLED; over I2C unless an interface is injected."""
    try:
        from luma.core.error import DeviceNotFoundError, DevicePermissionError
        from luma.oled.device import sh1106, ssd1306
    except ImportError as e:  # pragma: no cover
        raise HardwareError(f"luma.oled is not installed ({e}); reinstall the bedside package") from None
    driver = {"ssd1306": ssd1306, "sh1106": sh1106}[hw.display]
    try:
        if serial_interface is None:
            from luma.core.interface.serial import i2c

            serial_interface = i2c(port=hw.i2c_port, address=hw.i2c_address)
        try:
            # Probe with a no-op before building the driver: luma registers an exit hook
            # holding every device it constructs, so the daemon's retries while a display
            # is unplugged would otherwise pile up hooks and open bus handles.
            serial_interface.command(0xE3)
        except Exception:
            with contextlib.suppress(Exception):
                serial_interface.cleanup()
            raise
        return driver(serial_interface=serial_interface, width=128, height=64, rotate=hw.rotate)
    except DevicePermissionError:
        raise HardwareError(
            f"no permission to use /dev/i2c-{hw.i2c_port}; add the bedside user to the i2c group") from None
    except (DeviceNotFoundError, OSError) as e:
        raise HardwareError(
            f"no {hw.display} display answered on I2C bus {hw.i2c_port} at address {hw.i2c_address:#04x} ({e}); "
            "check the wiring, that I2C is enabled (dtparam=i2c_arm=on) and the address jumper") from None


class LedOut:
    """The status LED, for a nurse walking past: slow blink while a session is due, steady when
    the day's latest session was missed, a brief blink every few seconds when it was done, dark
    before the first session of the day and all night."""

    def __init__(self, led: Any) -> None:
        self.led = led
        self.mode = "off"

    def set(self, mode: str) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        if mode == "due":
            self.led.blink(on_time=1, off_time=1, background=True)
        elif mode == "done":
            self.led.blink(on_time=0.1, off_time=3.9, background=True)
        elif mode == "missed":
            self.led.on()
        else:
            self.led.off()
