"""A model of an SSD1306 or SH1106 controller behind luma's serial-interface seam.

It decodes the command and data bytes a driver sends (luma's own, or the unit's page writer)
into the controller's display memory the way the datasheets describe, and counts the bytes
that would cross the I2C bus. Anything it does not understand raises, so a driver that sends
a wrong or misplaced command fails a test instead of drawing garbage unseen.

* SSD1306: 128 columns x 8 pages. Page addressing after reset; luma switches to horizontal
  addressing (0x20 0x00), where data fills the column window (0x21) of each page of the page
  window (0x22) left to right, wrapping. The page-mode commands (0xB0-0xB7, 0x00-0x1F) only
  aim the pointer in page addressing mode.
* SH1106: 132 columns x 8 pages, page addressing only (0xB0 | page, low and high column
  nibbles); a 128-pixel panel shows columns ``offset``..``offset+127``. luma's SH1106 init
  also sends two SSD1306 commands (0x20 memory mode, 0x8D charge pump) that the SH1106 does
  not have: they are ignored here, and the byte after 0x8D is an SH1106 high-column command.

Bus bytes follow luma's I2C interface over smbus2: each ``command`` call is one write
(address, control byte 0x00, the commands), each ``data`` call one write per 4096 bytes
(address, control byte 0x40, the data).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

SSD1306_ARGS = {0x81: 1, 0x20: 1, 0x21: 2, 0x22: 2, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1,
                0x8D: 1, 0xA3: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5}
SSD1306_SINGLE = {0xA0, 0xA1, 0xA4, 0xA5, 0xA6, 0xA7, 0xAE, 0xAF, 0xC0, 0xC8, 0xE3, 0x2E, 0x2F}
SH1106_ARGS = {0x81: 1, 0xA8: 1, 0xAD: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1}
SH1106_SINGLE = {0xA0, 0xA1, 0xA4, 0xA5, 0xA6, 0xA7, 0xAE, 0xAF, 0xC0, 0xC8, 0xE0, 0xEE, 0xE3,
                 0x30, 0x31, 0x32, 0x33}
SH1106_FOREIGN = {0x20, 0x8D}      # SSD1306 commands luma's SH1106 init sends; not SH1106 commands
I2C_MAX_MESSAGE = 4096


class ControllerError(AssertionError):
    """The driver sent something a real controller would not take as meant."""


class Controller:
    """One panel's controller: display memory, pointers and settings, fed through luma's seam."""

    def __init__(self, kind: str, *, width: int = 128, height: int = 64, offset: int | None = None) -> None:
        if kind not in ("ssd1306", "sh1106"):
            raise ValueError(f"no model of {kind}")
        self.kind = kind
        self.width = width
        self.pages = height // 8
        self.columns = 132 if kind == "sh1106" else 128
        self.offset = (2 if kind == "sh1106" else 0) if offset is None else offset
        # Power-on memory is undefined: a pattern, so a page never written shows up as wrong.
        self.ram = [bytearray([0xA5] * self.columns) for _ in range(self.pages)]
        self.mode = 2                     # addressing mode: 0 horizontal, 1 vertical, 2 page
        self.col_window = (0, self.columns - 1)
        self.page_window = (0, self.pages - 1)
        self.page = 0
        self.col = 0
        self.on = False
        self.contrast: int | None = None
        self.bus_bytes = 0
        self.data_bytes = 0
        self.writes = 0
        self.closed = False

    # --- luma's serial interface --------------------------------------------------------

    def command(self, *cmd: int) -> None:
        if len(cmd) > 32:
            raise ControllerError(f"{len(cmd)} command bytes in one write (luma's limit is 32)")
        self.bus_bytes += 2 + len(cmd)
        self.writes += 1
        i = 0
        while i < len(cmd):
            i = self._command(cmd, i)

    def data(self, data: Sequence[int]) -> None:
        n = len(data)
        self.bus_bytes += n + 2 * max(1, -(-n // I2C_MAX_MESSAGE))
        self.writes += max(1, -(-n // I2C_MAX_MESSAGE))
        self.data_bytes += n
        for b in data:
            self._write(int(b))

    def cleanup(self) -> None:
        self.closed = True

    # --- what the panel shows -------------------------------------------------------------

    def frame(self) -> Image.Image:
        """The visible memory as a 1-bit image (before the panel's own mirroring, as luma draws)."""
        img = Image.new("1", (self.width, self.pages * 8))
        px = img.load()
        assert px is not None
        for p in range(self.pages):
            row = self.ram[p]
            for x in range(self.width):
                b = row[self.offset + x]
                for bit in range(8):
                    if b >> bit & 1:
                        px[x, p * 8 + bit] = 255
        return img

    # --- decoding -------------------------------------------------------------------------

    def _command(self, cmd: Sequence[int], i: int) -> int:
        c = cmd[i]
        args_table = SSD1306_ARGS if self.kind == "ssd1306" else SH1106_ARGS
        single = SSD1306_SINGLE if self.kind == "ssd1306" else SH1106_SINGLE
        if c in args_table:
            n = args_table[c]
            args = list(cmd[i + 1:i + 1 + n])
            if len(args) < n:
                raise ControllerError(f"command {c:#04x} needs {n} argument byte(s) in the same write")
            self._with_args(c, args)
            return i + 1 + n
        if c in single:
            if c in (0xAE, 0xAF):
                self.on = c == 0xAF
            return i + 1
        if 0x40 <= c <= 0x7F:                 # display start line
            return i + 1
        if 0xB0 <= c <= 0xB7:
            if c - 0xB0 >= self.pages:
                raise ControllerError(f"page {c - 0xB0} on a {self.pages}-page panel")
            if self.mode == 2:
                self.page = c - 0xB0
            return i + 1
        if c <= 0x0F:
            if self.mode == 2:
                self.col = (self.col & 0xF0) | c
            return i + 1
        if c <= 0x1F:
            if self.mode == 2:
                self.col = (self.col & 0x0F) | ((c & 0x0F) << 4)
            return i + 1
        if self.kind == "sh1106" and c in SH1106_FOREIGN:
            return i + 1
        raise ControllerError(f"{self.kind} has no command {c:#04x}")

    def _with_args(self, c: int, args: list[int]) -> None:
        if c == 0x81:
            self.contrast = args[0]
        elif c == 0x20:
            if args[0] not in (0, 1, 2):
                raise ControllerError(f"memory addressing mode {args[0]:#04x}")
            self.mode = args[0]
        elif c == 0x21:
            lo, hi = args
            if not lo <= hi < self.columns:
                raise ControllerError(f"column window {lo}..{hi}")
            self.col_window = (lo, hi)
            self.col = lo
        elif c == 0x22:
            lo, hi = args
            if not lo <= hi < self.pages:
                raise ControllerError(f"page window {lo}..{hi}")
            self.page_window = (lo, hi)
            self.page = lo

    def _write(self, b: int) -> None:
        if self.col >= self.columns:
            raise ControllerError(f"data past the last column ({self.columns - 1}) of page {self.page}")
        self.ram[self.page][self.col] = b
        if self.mode == 2:
            self.col += 1
            if self.kind == "ssd1306" and self.col > self.col_window[1]:
                self.col = self.col_window[0]
            return
        c0, c1 = self.col_window
        p0, p1 = self.page_window
        if self.mode == 0:
            self.col += 1
            if self.col > c1:
                self.col = c0
                self.page = p0 if self.page >= p1 else self.page + 1
        else:
            self.page += 1
            if self.page > p1:
                self.page = p0
                self.col = c0 if self.col >= c1 else self.col + 1
