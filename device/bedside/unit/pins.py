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
    vibration: Any | None = None


def build_pins(hw: Hardware, pin_factory: Any = None) -> Pins:
    """The button, buzzer and LED on ``pin_factory`` (None: the configured backend, ``[hardware] gpio``)."""
    if pin_factory is None:
        pin_factory = pin_factory_for(hw.gpio)
    try:
        from gpiozero import LED, Button, Buzzer, DigitalOutputDevice, PWMOutputDevice
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
        vibration = (DigitalOutputDevice(hw.vibration_pin, pin_factory=pin_factory)
                     if hw.vibration_pin is not None else None)
    except GPIOZeroError as e:
        raise HardwareError(f"the GPIO pins could not be set up ({type(e).__name__}: {e}); "
                            "check [hardware] pins and that no other program uses them") from None

    def close() -> None:
        for dev in (button, buzzer, led, vibration):
            if dev is not None:
                dev.close()

    return Pins(button, tone, led, close, vibration)


def build_display(hw: Hardware, serial_interface: Any = None) -> Any:
    """The luma device for the configured panel (core/panels.py); over I2C or SPI unless an
    interface is injected."""
    panel = hw.panel
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
            # Probe with a no-op before building the driver: luma registers an exit hook
            # holding every device it constructs, so the daemon's retries while a display
            # is unplugged would otherwise pile up hooks and open bus handles.
            serial_interface.command(0xE3)
        except Exception:
            with contextlib.suppress(Exception):
                serial_interface.cleanup()
            raise
        # Greyscale controllers are sent one-bit frames: the screens are drawn in one bit.
        extra = {"mode": "1"} if panel.greyscale else {}
        return driver(serial_interface=serial_interface, width=panel.width, height=panel.height,
                      rotate=hw.rotate, **extra)
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
