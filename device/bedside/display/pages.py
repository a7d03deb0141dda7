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

On a controller that can aim at a rectangle of several pages (the SSD1306's horizontal
addressing: a column window and a page window, filled row of pages by row of pages), the
changed parts of all pages go as one window: one command and one data transfer per frame,
where page by page took two per changed page. Each transfer costs the Pi a wake-up (the
i2c-bcm2835 driver sleeps until the controller's interrupt says it is done), while a byte
more in one transfer costs only bus time; so the rectangle is taken unless it would carry
more than ``MERGE_BYTES`` more per transfer it saves (changes far apart in the same frame
stay apart).

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


# (device, first page, last page, first column, last column) -> command bytes for a rectangle.
Rect = Callable[[Any, int, int, int, int], tuple[int, ...]]
# A transfer is counted as this many bytes. Its system call and wake-up cost the Pi's CPU
# about what the FIFO's refills for a hundred-odd bytes do, while the bytes themselves are bus
# time (2.9 ms at 400 kHz) the CPU sleeps through. On a fully answered day this halves the
# transfers (11,743 at 32, 5,647 at 128) for 31 % more bytes (1.34 to 1.75 MB, 39 s of bus).
MERGE_BYTES = 128


def _ssd1306_rect(device: Any, p0: int, p1: int, c0: int, c1: int) -> tuple[int, ...]:
    start = int(device._colstart)
    return (0x21, start + c0, start + c1, 0x22, p0, p1)


RECTS: dict[str, Rect] = {"ssd1306": _ssd1306_rect, "ssd1309": _ssd1306_rect}

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

    def __init__(self, device: Any, window: Window, rect: Rect | None = None) -> None:
        self.device = device
        self.window = window
        self.rect = rect
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
            spans = [(p, span) for p, (old, new) in enumerate(zip(held, pages, strict=True))
                     if (span := changed_span(old, new)) is not None]
            sent = bool(spans)
            for p0, p1, c0, c1 in self._windows(spans):
                if p0 == p1:
                    self.device.command(*self.window(self.device, p0, c0, c1))
                    self.device.data(list(pages[p0][c0:c1 + 1]))
                else:
                    assert self.rect is not None
                    self.device.command(*self.rect(self.device, p0, p1, c0, c1))
                    self.device.data([b for p in range(p0, p1 + 1) for b in pages[p][c0:c1 + 1]])
                self.pages_sent += p1 - p0 + 1
            self.partial_frames += sent
        self.held = pages
        return sent

    def _windows(self, spans: list[tuple[int, tuple[int, int]]]) -> list[tuple[int, int, int, int]]:
        """The changed spans as windows (first page, last page, first column, last column): runs
        of neighbouring spans joined into rectangles where that is cheapest, a transfer counted
        as ``MERGE_BYTES`` bytes (at most eight pages: every split of them is tried)."""
        n = len(spans)
        if self.rect is None or n < 2:
            return [(p, p, c0, c1) for p, (c0, c1) in spans]

        def window(i: int, j: int) -> tuple[int, int, int, int]:
            run = spans[i:j]
            return run[0][0], run[-1][0], min(c[0] for _, c in run), max(c[1] for _, c in run)

        def cost(w: tuple[int, int, int, int]) -> int:
            return (w[1] - w[0] + 1) * (w[3] - w[2] + 1) + 2 * MERGE_BYTES

        best: list[tuple[int, list[tuple[int, int, int, int]]]] = [(0, [])]
        for j in range(1, n + 1):
            best.append(min(((best[i][0] + cost(w), [*best[i][1], w]) for i in range(j)
                             for w in (window(i, j),)), key=lambda c: c[0]))
        return best[n][1]

    def forget(self) -> None:
        """The panel's memory is unknown (it was reset or powered off): send the next frame whole."""
        self.held = None


def writer_for(device: Any) -> Any:
    """What ``DisplayOut`` sends frames to: a ``PageWriter`` where the controller has a row in
    ``WINDOWS``, else the device itself (whole frames by its own driver)."""
    window = WINDOWS.get(type(device).__name__)
    if window is None or getattr(device, "mode", None) != "1":
        return device
    return PageWriter(device, window, RECTS.get(type(device).__name__))
