"""Sends only the 8-row pages of a frame that changed, through the controller's page addressing.

luma's ``ssd1306``/``sh1106`` drivers send the whole 1 KiB frame every time: about 93 ms at
100 kHz I2C and 23 ms at 400 kHz, on the loop's thread. A hold bar or a rep counter changes
one or two pages, and within them a few dozen columns, so this sends a window of each changed
page (its first to last changed column) and leaves the rest of the panel's memory as it is.

It wraps a real luma device and talks through that device's own serial interface
(``device.command``/``device.data``), so luma still owns the bus, the init sequence, contrast
and power. The first frame after (re)building the device goes through luma's ``display``
whole; so does every frame after a send that failed part-way (the panel's memory is then
unknown).

Controllers are a table keyed by luma's class name: a row says which commands point the
controller's memory at (page, first column, last column). A controller not in the table (a
greyscale SSD1322, a 128x128 panel with a different memory layout, luma's dummy) gets whole
frames from its own driver, unchanged. Pages are packed from the rotated image as luma packs
them: byte ``x`` of page ``p`` holds rows ``8p``..``8p+7`` of column ``x``, lowest bit on top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

# (device, page, first column, last column) -> command bytes that aim the next data there.
Window = Callable[[Any, int, int, int], tuple[int, ...]]


def _ssd1306_window(device: Any, page: int, c0: int, c1: int) -> tuple[int, ...]:
    # luma sets horizontal addressing (MEMORYMODE 0x00) at init: a column and page window,
    # filled left to right. Small panels (64x48) start at column 32 of the 128-column memory.
    start = int(device._colstart)
    return (0x21, start + c0, start + c1, 0x22, page, page)


def _sh1106_window(device: Any, page: int, c0: int, c1: int) -> tuple[int, ...]:
    # Page addressing only: page, then the column's low and high nibbles. The 128-pixel panel
    # sits at an offset (usually 2) in the controller's 132-column memory.
    col = int(device._page_address_offset) + c0
    return (0xB0 | page, col & 0x0F, 0x10 | (col >> 4))


WINDOWS: dict[str, Window] = {
    "ssd1306": _ssd1306_window,
    "ssd1309": _ssd1306_window,     # the same command set as the SSD1306 (luma drives it as one)
    "sh1106": _sh1106_window,
}


def pack(image: Image.Image, pages: int) -> list[bytes]:
    """A 1-bit image as the controller's pages (``pages`` of 8 rows, one byte per column)."""
    # Rotated clockwise, each row of the result is one column of the frame from the bottom
    # row up; Pillow packs 1-bit rows most significant bit first, so byte k of that row is
    # page pages-1-k with its top row in the lowest bit: the controller's own layout.
    raw = image.transpose(Image.Transpose.ROTATE_270).tobytes()
    return [raw[pages - 1 - p::pages] for p in range(pages)]


def changed_span(old: bytes, new: bytes) -> tuple[int, int] | None:
    """First and last index where two equal-length pages differ, or None when equal."""
    if old == new:
        return None
    first = 0
    while old[first] == new[first]:
        first += 1
    last = len(new) - 1
    while old[last] == new[last]:
        last -= 1
    return first, last


class PageWriter:
    """A luma device's ``display``, sending only the changed parts of pages after the first frame."""

    def __init__(self, device: Any, window: Window) -> None:
        self.device = device
        self.window = window
        self.pages_n = int(device._h) // 8
        self.held: list[bytes] | None = None     # what the panel's memory holds, when known
        self.full_frames = 0
        self.partial_frames = 0
        self.pages_sent = 0

    def display(self, image: Image.Image) -> bool:
        """Send ``image``; False when the panel already shows it (nothing was sent)."""
        frame = self.device.preprocess(image)
        pages = pack(frame, self.pages_n)
        held, self.held = self.held, None        # unknown until this send has finished
        sent = True
        if held is None:
            self.device.display(image)
            self.full_frames += 1
        else:
            sent = False
            for p, (old, new) in enumerate(zip(held, pages, strict=True)):
                span = changed_span(old, new)
                if span is None:
                    continue
                c0, c1 = span
                self.device.command(*self.window(self.device, p, c0, c1))
                self.device.data(list(new[c0:c1 + 1]))
                self.pages_sent += 1
                sent = True
            self.partial_frames += sent
        self.held = pages
        return sent

    def forget(self) -> None:
        """The panel's memory is unknown (it was reset or powered off): send the next frame whole."""
        self.held = None


def writer_for(device: Any) -> Any:
    """What ``DisplayOut`` sends frames to: a ``PageWriter`` where the controller has a row in
    ``WINDOWS``, else the device itself (whole frames by its own driver)."""
    window = WINDOWS.get(type(device).__name__)
    if window is None or getattr(device, "mode", None) != "1":
        return device
    return PageWriter(device, window)
