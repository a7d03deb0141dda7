"""Puts screens on a luma device, sending a frame only when its pixels change.

An unchanged frame is never sent; a changed one goes through ``pages.writer_for``: on an
SSD1306/SH1106 only the changed parts of its 8-row pages cross the bus (the writer compares
pages, and says when nothing changed), elsewhere the driver's whole frame (compared with the
last one first, which costs microseconds). Display failures are reported, not raised:
the unit keeps prompting with sound and LED.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageChops

from bedside.core import screens as sc
from bedside.core.events import Instant
from bedside.display import pages, render

CONTRAST = {"normal": 0xCF, "dim": 0x01}


class DisplayOut:
    def __init__(self, device: Any, on_frame: Callable[[Image.Image], None] | None = None,
                 layout: str = "standard") -> None:
        self.device = device
        self.sink = pages.writer_for(device)
        self.on_frame = on_frame
        self.layout = layout   # render.LAYOUTS name; its canvas is the panel's size
        self._screen: object = None
        self._image: Image.Image | None = None   # the last frame sent
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
            self._screen = self._image = self._brightness = None
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
        image = render.render(screen, self.layout)
        if isinstance(self.sink, pages.PageWriter):
            # It compares the frame's pages with what the panel holds and sends what changed.
            if not self.sink.display(image):
                return False
        else:
            # Two frames are the same when their exclusive-or has no set pixel: a third of the
            # cost of packing a frame's bytes to compare them.
            last = self._image
            if last is not None and last.size == image.size and \
                    ImageChops.logical_xor(last, image).getbbox() is None:
                return False
            self.sink.display(image)
            self._image = image
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(image)
        return True


NOP = 0xE3  # the SSD1306's and SH1106's "no operation" command: a harmless probe


class DisplayKeeper:
    """Keeps a real display going through faults, for the daemon on a Pi.

    A display that is missing at start or stops answering (a loose cable, a bus error) is
    closed and rebuilt from scratch (``build`` makes a new luma device, which sends the
    whole init sequence again) with backoff, and the last screen asked for is redrawn when
    it answers. While it is down, ``show`` only notes what to draw: a dead bus is never
    touched from the loop between retries, so prompting by sound and LED is not slowed by
    I2C timeouts. The loop owns it: ``deadline``/``fire`` make it one of the loop's timed
    sources, and ``error`` is what the daemon turns into ``fault``/``fault_cleared``.
    """

    RETRY_FIRST_S = 2.0
    RETRY_MAX_S = 60.0
    STABLE_S = 600.0        # answering this long: a later failure starts the backoff afresh
    PROBE_EVERY_S = 300.0   # a display unplugged while its picture is unchanged is noticed this soon
    PROBE_SLACK_S = 300.0   # ... give or take this: the probe rides on a wake-up the loop makes anyway

    def __init__(self, build: Callable[[], Any], mono: Callable[[], float],
                 on_frame: Callable[[Image.Image], None] | None = None, layout: str = "standard") -> None:
        self.build = build
        self.mono = mono
        self.on_frame = on_frame
        self.layout = layout
        self.out: DisplayOut | None = None
        self.error: str | None = None
        self.wanted: tuple[sc.Screen, str] | None = None
        self.backoff = self.RETRY_FIRST_S
        self.retry_at = 0.0
        self.next_probe = 0.0
        self.up_since: float | None = None
        self.attempts = 0
        self.recoveries = 0
        self.connect()

    @property
    def frames(self) -> int:
        return self.out.frames if self.out is not None else 0

    # --- the loop's view ---------------------------------------------------------------

    def show(self, screen: sc.Screen, brightness: str) -> bool:
        self.wanted = (screen, brightness)
        if self.out is None:
            return False
        sent = self.out.show(screen, brightness)
        if self.out.error is not None:
            self._fail(self.out.error)
            return False
        return sent

    def earliest(self) -> float:
        return self.retry_at if self.out is None else self.next_probe

    def deadline(self) -> float:
        # A retry is kept to time (the display is down); a probe of a working display waits
        # for the loop's next wake-up, within its slack.
        return self.retry_at if self.out is None else self.next_probe + self.PROBE_SLACK_S

    def fire(self, now: Instant) -> None:
        if self.out is None:
            if now.mono >= self.retry_at:
                self.connect()
        elif now.mono >= self.next_probe:
            self.probe()

    def overdue(self, now_mono: float, margin: float) -> bool:
        """True when a retry is late by more than ``margin``: the loop is not serving the display."""
        return self.out is None and now_mono > self.retry_at + margin

    # --- recovery ----------------------------------------------------------------------

    def connect(self) -> bool:
        """(Re)build the device and redraw; True when the display answers."""
        was_down = self.error is not None
        self._close()
        self.attempts += 1
        try:
            device = self.build()
        except Exception as e:  # HardwareError with advice, or whatever the bus raised
            self._fail(str(e))
            return False
        self.out = DisplayOut(device, self.on_frame, self.layout)
        now = self.mono()
        self.up_since = now
        self.next_probe = now + self.PROBE_EVERY_S
        self.error = None
        if self.wanted is not None:
            self.show(*self.wanted)
        if self.error is None and was_down:
            self.recoveries += 1
        return self.error is None

    def probe(self) -> bool:
        """One harmless command; a display that does not acknowledge it is down."""
        self.next_probe = self.mono() + self.PROBE_EVERY_S
        if self.out is None:
            return False
        try:
            self.out.device.command(NOP)
        except Exception as e:
            self._fail(f"{type(e).__name__}: {e}")
            return False
        return True

    def refresh(self) -> bool:
        """Rebuild and redraw even if nothing failed (the daily self-test): a display that
        lost power and came back blank is initialised again."""
        return self.connect()

    def _fail(self, why: str) -> None:
        now = self.mono()
        if self.up_since is not None and now - self.up_since >= self.STABLE_S:
            self.backoff = self.RETRY_FIRST_S
        self.error = why
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, self.RETRY_MAX_S)
        self.up_since = None
        self._close()

    def _close(self) -> None:
        out, self.out = self.out, None
        if out is None:
            return
        # persist: no "display off" to a bus that may be dead; just close the interface.
        # Errors are ignored: the device is being dropped either way.
        with contextlib.suppress(Exception):
            out.device.persist = True
            out.device.cleanup()
