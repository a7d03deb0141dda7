"""Builds the luma device for the configured panel (core/panels.py): over I2C or SPI, luma's
own stand-in for an emulated display, or a real driver over an injected interface (luma's
``serial_interface`` seam, which the tests use with a fake bus).

luma is imported inside ``build_display``, so importing this module never touches hardware.
The unit decides when to build one (``unit/wiring.py`` hands ``build_display`` to the
display keeper, which rebuilds a failing display with backoff).
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from bedside.core.config import Hardware
from bedside.core.errors import FAILED, BedsideError
from bedside.core.panels import Panel


class HardwareError(BedsideError):
    """A part could not be set up; the message says what to check. The display and the pins
    (``unit/pins.py``) both raise it; it lives here, on the lower floor of the two."""

    exit_code = FAILED


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


def emulated(panel: Panel, rotate: int = 0) -> Any:
    """luma's own stand-in for ``panel`` (its ``dummy`` device): the frames kept in memory, for
    the simulator and for ``[hardware] emulated_display``."""
    from luma.core.device import dummy

    with _held_weakly():
        device = dummy(width=panel.width, height=panel.height, rotate=rotate, mode="1")
    _LIVE.add(device)
    return device


def build_display(hw: Hardware, serial_interface: Any = None) -> Any:
    """The luma device for the configured panel (core/panels.py); over I2C or SPI unless an
    interface is injected."""
    panel = hw.panel
    if hw.emulated_display and serial_interface is None:
        # luma's own stand-in: the same frames, kept in memory (docs/install.md, "What the VM proves").
        return emulated(panel, hw.rotate)
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
