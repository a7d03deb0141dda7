"""Draws screens (``screens.py`` values) as 128x64 one-bit images.

Fonts are Terminus bitmap fonts shipped with the package (``fonts/``, SIL OFL), so an
image is pixel-identical on every machine and Pillow version; icons are drawn here for
this display rather than scaled from elsewhere. ``render`` is a pure function of the
screen value: the same screen always gives the same pixels.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from PIL import Image, ImageDraw, ImageFont

from . import screens as sc

WIDTH, HEIGHT = 128, 64
# name -> (glyph width, glyph height); all Terminus, bold except the 12 px regular.
FONTS = {"s": "ter-u12n", "sb": "ter-u12b", "m": "ter-u14b", "l": "ter-u16b", "xl": "ter-u20b",
         "xxl": "ter-u24b", "huge": "ter-u32b"}
_GLYPH = {"s": (6, 12), "sb": (6, 12), "m": (8, 14), "l": (8, 16), "xl": (10, 20), "xxl": (12, 24), "huge": (16, 32)}

Font = ImageFont.ImageFont


@cache
def font(size: str) -> Font:
    ref = resources.files("bedside").joinpath("fonts", FONTS[size] + ".pil")
    with resources.as_file(ref) as path:
        return ImageFont.load(str(path))


def text_width(text: str, size: str) -> int:
    return len(text) * _GLYPH[size][0]


def fit(text: str, sizes: tuple[str, ...], width: int = WIDTH) -> str:
    """The largest of ``sizes`` in which ``text`` fits ``width`` pixels (the last one otherwise)."""
    for s in sizes:
        if text_width(text, s) <= width:
            return s
    return sizes[-1]


class Canvas:
    def __init__(self) -> None:
        self.image = Image.new("1", (WIDTH, HEIGHT), 0)
        self.draw = ImageDraw.Draw(self.image)

    def text(self, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        self.draw.text((x, y), text, font=font(size), fill=fill)

    def center(self, y: int, text: str, size: str, fill: int = 1, x0: int = 0, x1: int = WIDTH) -> None:
        w = text_width(text, size)
        if w > x1 - x0:
            text = text[: max(1, (x1 - x0) // _GLYPH[size][0])]
            w = text_width(text, size)
        self.text(x0 + (x1 - x0 - w) // 2, y, text, size, fill)

    def bar(self, y0: int, y1: int) -> None:
        self.draw.rectangle((0, y0, WIDTH - 1, y1), fill=1)

    def arrow(self, x: int, y: int, up: bool, size: int = 20) -> None:
        h = size
        w = size
        shaft = w // 3
        if up:
            self.draw.polygon([(x + w // 2, y), (x + w - 1, y + h // 2), (x, y + h // 2)], fill=1)
            self.draw.rectangle((x + w // 2 - shaft // 2, y + h // 2, x + w // 2 + shaft // 2, y + h - 1), fill=1)
        else:
            self.draw.rectangle((x + w // 2 - shaft // 2, y, x + w // 2 + shaft // 2, y + h // 2), fill=1)
            self.draw.polygon([(x, y + h // 2), (x + w - 1, y + h // 2), (x + w // 2, y + h - 1)], fill=1)

    def tick(self, x: int, y: int, size: int = 24) -> None:
        s = size
        self.draw.line([(x, y + s * 55 // 100), (x + s * 38 // 100, y + s - 3), (x + s - 1, y + 2)], fill=1, width=4)

    def marks(self, y: int, marks: tuple[str, ...]) -> None:
        """One mark per session of the day: filled done, crossed missed, ring open, dot later."""
        if not marks:
            return
        pitch = min(10, WIDTH // len(marks))
        d = max(3, pitch - 3)
        x = (WIDTH - pitch * len(marks)) // 2 + (pitch - d) // 2
        for m in marks:
            box = (x, y, x + d - 1, y + d - 1)
            if m == "done":
                self.draw.ellipse(box, fill=1)
            elif m == "missed":
                self.draw.line([(x, y), (x + d - 1, y + d - 1)], fill=1)
                self.draw.line([(x, y + d - 1), (x + d - 1, y)], fill=1)
            elif m == "open":
                self.draw.ellipse(box, outline=1)
            else:
                c = x + d // 2
                self.draw.point([(c, y + d // 2)], fill=1)
            x += pitch


def _foot(foot: str | None) -> str:
    return {"left": "Left foot", "right": "Right foot"}.get(foot or "", "")


def _idle(c: Canvas, s: sc.Idle) -> None:
    c.center(0, s.clock, "huge")
    if s.notice:
        c.draw.rectangle((0, 33, WIDTH - 1, 47), fill=1)
        c.center(33, s.notice, fit(s.notice, ("m", "sb")), fill=0)
    elif s.next_time and s.next_what:
        line = f"Next {s.next_time}"
        c.center(33, line, "m")
    if not s.night:
        c.text(0, 50, f"{s.done}/{s.due}", "sb")
        left = text_width(f"{s.done}/{s.due}", "sb") + 4
        sub = Canvas()
        sub.marks(0, s.marks)
        # Marks are laid out for the full width; squeeze them beside the count.
        strip = sub.image.crop((0, 0, WIDTH, 8)).resize((WIDTH - left, 8), Image.Resampling.NEAREST)
        c.image.paste(strip, (left, 53))


def _prompt(c: Canvas, s: sc.Prompt) -> None:
    title = "ROUTINE TIME" if s.kind == "routine" else "TIME TO MOVE"
    c.bar(0, 15)
    c.center(1, title, "m", fill=0)
    c.center(18, s.exercise, fit(s.exercise, ("l", "sb")))
    c.center(35, s.detail, fit(s.detail, ("l", "sb")))
    c.center(52, "Press=go Hold=later" if s.snoozes_left > 0 else "Press to start", "s")


def _snoozed(c: Canvas, s: sc.Snoozed) -> None:
    c.center(2, "Snoozed", "xl")
    c.center(26, f"until {s.until}", "l")
    c.center(50, "Press to start now", "s")


def _intro(c: Canvas, s: sc.Intro) -> None:
    c.center(0, s.exercise, fit(s.exercise, ("l", "sb")))
    foot = _foot(s.foot)
    if foot:
        c.center(19, foot, fit(foot, ("xl", "l")))
    c.center(44 if foot else 24, f"{s.reps} times", "l")
    if s.parts > 1:
        c.text(WIDTH - text_width(f"{s.part}/{s.parts}", "s"), 52, f"{s.part}/{s.parts}", "s")


def _guide(c: Canvas, s: sc.Guide) -> None:
    side = {"left": "L", "right": "R"}.get(s.foot or "", "")
    counter = f"{side} {s.rep}/{s.reps}".strip()
    c.text(0, 0, s.exercise[:12], "s")
    c.text(WIDTH - text_width(counter, "sb"), 0, counter, "sb")
    c.draw.line([(0, 13), (WIDTH - 1, 13)], fill=1)
    x0 = 0
    if s.arrow:
        c.arrow(2, 18, s.arrow == "up", 22)
        x0 = 26
    size = fit(s.instruction, ("xxl", "xl", "l"), WIDTH - x0)
    c.center(18 if size != "l" else 22, s.instruction, size, x0=x0)
    if s.hold_left is not None:
        c.text(WIDTH - text_width(str(s.hold_left), "l"), 44, str(s.hold_left), "l")
        c.text(0, 44, "hold", "s")
        width = round((WIDTH - 1) * s.hold_fraction)
        c.draw.rectangle((0, 60, WIDTH - 1, 63), outline=1)
        if width > 0:
            c.draw.rectangle((0, 60, width, 63), fill=1)


def _done(c: Canvas, s: sc.Done) -> None:
    c.tick(4, 6, 28)
    c.center(4, "Well" if not s.early else "Good", "xl", x0=36)
    c.center(24, "done!" if not s.early else "effort", "xl", x0=36)
    c.center(50, f"{s.reps_done} of {s.reps_planned} reps", "sb")


def _progress(c: Canvas, s: sc.Progress) -> None:
    c.center(0, "Today", "l")
    c.center(18, f"{s.done} of {s.due} done", "l")
    c.marks(38, s.marks)
    if s.next_time:
        c.center(50, f"Next {s.next_time}", "sb")


def _hint(c: Canvas, s: sc.Hint) -> None:
    c.center(8, s.text, fit(s.text, ("xl", "l")))
    if s.detail:
        c.center(34, s.detail, fit(s.detail, ("xl", "l")))


def _nurse(c: Canvas, s: sc.Nurse) -> None:
    lines = [
        s.unit_id,
        f"{s.clock} {s.time_quality[:5]}",
        f"Today {s.today_done} done {s.today_missed} miss",
        f"Yday  {s.yesterday_done} done {s.yesterday_missed} miss",
        s.notice or f"Log {s.head}",
    ]
    for i, line in enumerate(lines):
        c.text(0, i * 13, line[:21], "s")


def render(screen: sc.Screen) -> Image.Image:
    c = Canvas()
    if isinstance(screen, sc.Idle):
        _idle(c, screen)
    elif isinstance(screen, sc.Prompt):
        _prompt(c, screen)
    elif isinstance(screen, sc.Snoozed):
        _snoozed(c, screen)
    elif isinstance(screen, sc.Intro):
        _intro(c, screen)
    elif isinstance(screen, sc.Guide):
        _guide(c, screen)
    elif isinstance(screen, sc.Done):
        _done(c, screen)
    elif isinstance(screen, sc.Progress):
        _progress(c, screen)
    elif isinstance(screen, sc.Hint):
        _hint(c, screen)
    elif isinstance(screen, sc.Nurse):
        _nurse(c, screen)
    return c.image
