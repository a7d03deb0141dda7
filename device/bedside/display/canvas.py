"""The drawing surface every layout uses: Terminus fonts, text measured and wrapped, icons.

Fonts are Terminus bitmap fonts shipped with the package (``fonts/``, SIL OFL) and icons
are pixel art (``icons.py``), so an image is pixel-identical on every machine and Pillow
version; nothing here uses Pillow's shape rasteriser except axis-aligned rectangles.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

from PIL import Image, ImageDraw, ImageFont

from bedside.core import screens as sc
from bedside.display import icons

WIDTH, HEIGHT = 128, 64
M = 2  # margin kept dark on the screens that shift, so the orbit never clips them

# Terminus sizes: bold except the 12 px regular. "2xl" and "2xxl" are the 20 and 24 px
# fonts with every pixel doubled (Terminus stops at 32 px): the square panel's main words.
FONTS = {"s": "ter-u12n", "sb": "ter-u12b", "m": "ter-u14b", "l": "ter-u16b", "xl": "ter-u20b",
         "xxl": "ter-u24b", "huge": "ter-u32b"}
SCALED = {"2xl": ("xl", 2), "2xxl": ("xxl", 2)}
# (glyph width, cell height, first row of capitals' ink within the cell)
_BASE = {"s": (6, 12, 2), "sb": (6, 12, 2), "m": (8, 14, 2), "l": (8, 16, 2), "xl": (10, 20, 3),
         "xxl": (12, 24, 4), "huge": (16, 32, 6)}
_GLYPH = _BASE | {k: (_BASE[b][0] * n, _BASE[b][1] * n, _BASE[b][2] * n) for k, (b, n) in SCALED.items()}

Font = ImageFont.ImageFont


@cache
def font(size: str) -> Font:
    ref = resources.files("bedside.display").joinpath("fonts", FONTS[size] + ".pil")
    with resources.as_file(ref) as path:
        return ImageFont.load(str(path))


def drawable(text: str) -> str:
    """``text`` with any character the fonts lack (they cover Latin-1) shown as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


# A guided day draws under a thousand distinct texts, most once (the clock's minutes); the
# words a guide repeats are a few dozen. 128 masks miss as rarely as 512 did over a guided
# day and hold a quarter of the memory (each is a PIL image, outside Python's own heap).
@lru_cache(maxsize=128)
def _ink(text: str, size: str) -> tuple[tuple[int, int], Image.Image] | None:
    """Where ``text``'s ink starts relative to its cell, and the ink as a mask. A guide redraws
    the same few words four times a second: drawing glyphs is most of a frame's cost."""
    if size in SCALED:
        base, n = SCALED[size]
        ink = _ink(text, base)
        if ink is None:
            return None
        (dx, dy), mask = ink
        return (dx * n, dy * n), mask.resize((mask.width * n, mask.height * n), Image.Resampling.NEAREST)
    f = font(size)
    x0, y0, x1, y1 = f.getbbox(text)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = Image.new("1", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).text((-x0, -y0), text, font=f, fill=1)
    return (int(x0), int(y0)), mask


def text_width(text: str, size: str) -> int:
    return len(text) * _GLYPH[size][0]


def fit(text: str, sizes: tuple[str, ...], width: int = WIDTH) -> str:
    """The largest of ``sizes`` in which ``text`` fits ``width`` pixels (the last one otherwise)."""
    for s in sizes:
        if text_width(text, s) <= width:
            return s
    return sizes[-1]


def wrap(text: str, size: str, width: int) -> list[str]:
    """Words of ``text`` in lines at most ``width`` pixels wide (a long word is cut)."""
    per_line = max(1, width // _GLYPH[size][0])
    lines: list[str] = []
    for word in text.split():
        rest = word
        while len(rest) > per_line:
            lines.append(rest[:per_line])
            rest = rest[per_line:]
        if lines and len(lines[-1]) + 1 + len(rest) <= per_line:
            lines[-1] += " " + rest
        else:
            lines.append(rest)
    return lines or [""]


def fit_lines(text: str, sizes: tuple[str, ...], width: int, max_lines: int) -> tuple[str, list[str]]:
    """Fewest lines first, then the largest size: ``text`` wrapped into at most ``max_lines`` lines."""
    for n in range(1, max_lines + 1):
        for s in sizes:
            lines = wrap(text, s, width)
            if len(lines) <= n:
                return s, lines
    s = sizes[-1]
    return s, wrap(text, s, width)[:max_lines]


@cache
def metrics(size: str) -> tuple[int, int]:
    """(cap height, depth of descenders below the capitals' baseline) of a size, from its glyphs' ink."""
    def rows(text: str) -> tuple[int, int]:
        ink = _ink(text, size)
        assert ink is not None
        (_, dy), mask = ink
        box = mask.getbbox()
        assert box is not None
        return dy + box[1], dy + box[3]

    top, base = rows("H")
    return base - top, rows("gpqy")[1] - base


class Canvas:
    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.width, self.height = width, height
        self.image = Image.new("1", (width, height), 0)
        self._draw: ImageDraw.ImageDraw | None = None

    @property
    def draw(self) -> ImageDraw.ImageDraw:
        # Made when a rectangle is first drawn: most frames are only text and icons, pasted.
        if self._draw is None or self._draw.im is not self.image.im:
            self._draw = ImageDraw.Draw(self.image)
        return self._draw

    def text(self, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        """``text`` with its cell's top-left at (x, y)."""
        ink = _ink(drawable(text), size)
        if ink is not None:
            (dx, dy), mask = ink
            self.image.paste(fill, (x + dx, y + dy), mask)

    def caps(self, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        """``text`` with the top of its capitals at ``y`` (cells have blank rows above the ink)."""
        self.text(x, y - _GLYPH[size][2], text, size, fill)

    def center(self, y: int, text: str, size: str, fill: int = 1, x0: int = 0, x1: int | None = None) -> None:
        """``text`` centred between x0 and x1, capitals' top at ``y``; cut if it cannot fit."""
        x1 = self.width if x1 is None else x1
        w = text_width(text, size)
        if w > x1 - x0:
            text = text[: max(1, (x1 - x0) // _GLYPH[size][0])]
            w = text_width(text, size)
        self.caps(x0 + (x1 - x0 - w) // 2, y, text, size, fill)

    def right(self, x1: int, y: int, text: str, size: str, fill: int = 1) -> None:
        self.caps(x1 - text_width(text, size), y, text, size, fill)

    def icon(self, x: int, y: int, name: str, fill: int = 1) -> None:
        self.image.paste(fill, (x, y), icons.icon(name))

    def box(self, x0: int, y0: int, x1: int, y1: int, fill: int = 1) -> None:
        self.draw.rectangle((x0, y0, x1, y1), fill=fill)

    def frame(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.draw.rectangle((x0, y0, x1, y1), outline=1)

    def marks(self, y: int, marks: tuple[str, ...], x0: int = M, x1: int = WIDTH - M) -> None:
        """One mark per session of the day: filled done, cross missed, ring due now, dot later."""
        if not marks:
            return
        n = len(marks)
        room = (x1 - x0 + 1) // n
        big = room >= 8
        d = 7 if big else 5
        pitch = min(11, room)
        if pitch < d + 1:
            # Too many sessions for marks (a regimen every 15 minutes): say it in words.
            done = marks.count("done")
            self.center(y, f"{done} of {n - marks.count('later')} done", "s", x0=x0, x1=x1)
            return
        x = x0 + (x1 - x0 - (pitch * n - (pitch - d))) // 2
        suffix = "" if big else "_s"
        for m in marks:
            self.icon(x, y, f"mark_{m if m in ('done', 'missed', 'open') else 'later'}{suffix}")
            x += pitch


def shifted(c: Canvas, shift: sc.Shift) -> Image.Image:
    dx, dy = shift
    if not dx and not dy:
        return c.image
    out = Image.new("1", c.image.size, 0)
    out.paste(c.image, (dx, dy))
    return out
