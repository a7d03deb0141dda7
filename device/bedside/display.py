"""Puts screens on a luma device, sending a frame only when its pixels change.

An SSD1306/SH1106 always receives the whole 1 KiB frame (about 93 ms at the Pi's default
100 kHz I2C), so an unchanged frame is never sent; comparing bytes costs microseconds.
Display failures are reported, not raised: the unit keeps prompting with sound and LED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from . import render
from . import screens as sc

CONTRAST = {"normal": 0xCF, "dim": 0x01}


class DisplayOut:
    def __init__(self, device: Any, on_frame: Callable[[Image.Image], None] | None = None) -> None:
        self.device = device
        self.on_frame = on_frame
        self._screen: object = None
        self._bytes: bytes | None = None
        self._brightness: str | None = None
        self.frames = 0
        self.error: str | None = None

    def show(self, screen: sc.Screen, brightness: str) -> bool:
        """Show ``screen``; True when a new frame went to the device."""
        if screen == self._screen and brightness == self._brightness and self.error is None:
            return False
        try:
            sent = self._show(screen, brightness)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            self._screen = self._bytes = self._brightness = None
            return False
        self.error = None
        return sent

    def _show(self, screen: sc.Screen, brightness: str) -> bool:
        if brightness != self._brightness:
            if brightness == "off":
                self.device.hide()
            else:
                if self._brightness in (None, "off"):
                    self.device.show()
                self.device.contrast(CONTRAST[brightness])
            self._brightness = brightness
        self._screen = screen
        if brightness == "off":
            return False
        image = render.render(screen)
        data = image.tobytes()
        if data == self._bytes:
            return False
        self.device.display(image)
        self._bytes = data
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(image)
        return True
