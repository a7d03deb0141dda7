"""Draws screens (``screens.py`` values) as 128x64 one-bit images.

Fonts are Terminus bitmap fonts shipped with the package (``fonts/``, SIL OFL) and icons
are pixel art (``icons.py``), so an image is pixel-identical on every machine and Pillow
version; nothing here uses Pillow's shape rasteriser except axis-aligned rectangles.
``render`` is a pure function of the screen value: the same screen always gives the same
pixels, which is what the golden-image tests (tests/golden/) hold it to.

Layout rules, for a patient lying in bed without their glasses: one idea per screen, the
instruction in type at least 16 px tall (20 or 24 px in the guide), a picture beside it,
and a 2-pixel margin on screens that the burn-in orbit moves.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

from PIL import Image, ImageDraw, ImageFont

from bedside.core import screens as sc
from bedside.display import icons

WIDTH, HEIGHT = 128, 64
M = 2  # margin kept dark on the screens that shift, so the orbit never clips them

# Terminus sizes: bold except the 12 px regular.
FONTS = {"s": "ter-u12n", "sb": "ter-u12b", "m": "ter-u14b", "l": "ter-u16b", "xl": "ter-u20b",
         "xxl": "ter-u24b", "huge": "ter-u32b"}
# (glyph width, cell height, first row of capitals' ink within the cell)
_GLYPH = {"s": (6, 12, 2), "sb": (6, 12, 2), "m": (8, 14, 2), "l": (8, 16, 2), "xl": (10, 20, 3),
          "xxl": (12, 24, 4), "huge": (16, 32, 6)}

Font = ImageFont.ImageFont


@cache
def font(size: str) -> Font:
    ref = resources.files("bedside.display").joinpath("fonts", FONTS[size] + ".pil")
    with resources.as_file(ref) as path:
        return ImageFont.load(str(path))


def drawable(text: str) -> str:
    """``text`` with any character the fonts lack (they cover Latin-1) shown as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


@lru_cache(maxsize=512)
def _ink(text: str, size: str) -> tuple[tuple[int, int], Image.Image] | None:
    """Where ``text``'s ink starts relative to its cell, and the ink as a mask. A guide redraws
    the same few words four times a second: drawing glyphs is most of a frame's cost."""
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


class Canvas:
    def __init__(self) -> None:
        self.image = Image.new("1", (WIDTH, HEIGHT), 0)
        self.draw = ImageDraw.Draw(self.image)

    def text(self, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        """``text`` with its cell's top-left at (x, y)."""
        ink = _ink(drawable(text), size)
        if ink is not None:
            (dx, dy), mask = ink
            self.image.paste(fill, (x + dx, y + dy), mask)

    def caps(self, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        """``text`` with the top of its capitals at ``y`` (cells have blank rows above the ink)."""
        self.text(x, y - _GLYPH[size][2], text, size, fill)

    def center(self, y: int, text: str, size: str, fill: int = 1, x0: int = 0, x1: int = WIDTH) -> None:
        """``text`` centred between x0 and x1, capitals' top at ``y``; cut if it cannot fit."""
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


def _shifted(c: Canvas, shift: sc.Shift) -> Image.Image:
    dx, dy = shift
    if not dx and not dy:
        return c.image
    out = Image.new("1", (WIDTH, HEIGHT), 0)
    out.paste(c.image, (dx, dy))
    return out


# --- the screens ----------------------------------------------------------------------

def _idle(c: Canvas, s: sc.Idle) -> None:
    c.center(M, s.clock, "huge")                       # digits' ink: rows 2-21
    if s.night:
        c.icon(M, M, "moon")
    elif s.status == "missed":
        c.icon(WIDTH - M - 9, M, "warn")
    if s.notice:
        c.icon(M, 28, "warn")
        lines = wrap(s.notice, "s", WIDTH - 2 * M - 13)[:2]
        for i, line in enumerate(lines):
            c.caps(M + 13, 27 + i * 12 + (6 if len(lines) == 1 else 0), line, "s")
    elif s.next_time:
        c.center(28, f"Next {s.next_time}", "l")       # ink: rows 28-37
    if not s.night and not s.notice:
        c.marks(51, s.marks)


def _prompt(c: Canvas, s: sc.Prompt) -> None:
    art = s.icon if s.icon in icons.ART and icons.size(s.icon)[0] <= 24 else "bell"
    x0 = M + icons.size(art)[0] + 4
    lines = (s.exercise, s.detail)
    if all(text_width(line, "l") <= WIDTH - M - x0 for line in lines):
        c.icon(M, M, art)
        for i, line in enumerate(lines):
            c.caps(x0, 4 + i * 15, line, "l")
    else:
        # A long exercise name takes the picture's place rather than shrink.
        for i, line in enumerate(lines):
            c.center(4 + i * 15, line, fit(line, ("l", "s"), WIDTH - 2 * M), x0=M, x1=WIDTH - M)
    c.frame(M + 4, 33, WIDTH - M - 5, 50)
    c.center(37, "Press to start", "l")
    bits = []
    if s.minutes:
        bits.append(f"{s.minutes} min")
    if s.snoozes_left > 0:
        bits.append("Hold: later")
    c.center(53, "   ".join(bits), "s")


def _snoozed(c: Canvas, s: sc.Snoozed) -> None:
    w = 13 + 4 + text_width("Snoozed", "xl")
    x = (WIDTH - w) // 2
    c.icon(x, 4, "zz")
    c.caps(x + 17, 4, "Snoozed", "xl")
    c.center(25, f"until {s.until}", "xl")
    c.center(50, "Press to start now", "s")


def _feet(c: Canvas, x: int, y: int, foot: str | None) -> int:
    """The pair of footprints with the active one filled; returns the width used."""
    c.icon(x, y, "sole_left" if foot == "left" else "sole_left_open")
    c.icon(x + 11, y, "sole_right" if foot == "right" else "sole_right_open")
    return 20


def _foot_name(foot: str | None) -> str:
    return {"left": "Left foot", "right": "Right foot"}.get(foot or "", "")


def _intro(c: Canvas, s: sc.Intro) -> None:
    size, lines = fit_lines(s.exercise, ("xl", "l"), WIDTH - 2 * M, 1)
    c.center(M + 1, lines[0], size)
    if s.foot:
        name = _foot_name(s.foot)
        w = 20 + 6 + text_width(name, "xl")
        x = (WIDTH - w) // 2
        _feet(c, x, 24, s.foot)
        c.caps(x + 26, 25, name, "xl")
    elif s.icon in icons.ART:
        iw, _ = icons.size(s.icon)
        c.icon((WIDTH - iw) // 2, 16, s.icon)
    if s.foot or s.icon in icons.ART:
        c.center(48, f"{s.reps} times", "l")
    else:
        # No picture for this exercise: the count moves up into the middle, larger.
        c.center(28, f"{s.reps} times", "xl")
    if s.parts > 1:
        c.right(WIDTH, 52, f"{s.part}/{s.parts}", "s")


def _guide(c: Canvas, s: sc.Guide) -> None:
    counter = f"{s.rep}/{s.reps}"
    c.right(WIDTH, 2, counter, "l")
    label_w = WIDTH - text_width(counter, "l") - 6
    if s.foot:
        _feet(c, 0, 1, s.foot)
        c.caps(24, 2, "Left" if s.foot == "left" else "Right", "l")
    else:
        size = fit(s.exercise, ("l", "s"), label_w)
        c.caps(0, 2 if size == "l" else 3, s.exercise[: label_w // _GLYPH[size][0]], size)
    x0 = 0
    if s.icon in icons.ART:
        iw, ih = icons.size(s.icon)
        c.icon(0, 18 + (28 - ih) // 2, s.icon)
        x0 = iw + 4
    # One line as large as fits; two lines only when one will not do (then at most 20 px type).
    one = [z for z in ("xxl", "xl", "l") if text_width(s.instruction, z) <= WIDTH - x0]
    size, lines = (one[0], [s.instruction]) if one else fit_lines(s.instruction, ("xl", "l"), WIDTH - x0, 2)
    line_h = {"xxl": 20, "xl": 17, "l": 14}[size]
    cap_h = {"xxl": 15, "xl": 13, "l": 10}[size]
    top = 18 + (28 - (line_h * (len(lines) - 1) + cap_h)) // 2
    for i, line in enumerate(lines):
        c.center(top + i * line_h, line, size, x0=x0)
    if s.hold_left is not None:
        # The hold: a bar that empties from the right as the seconds pass, and the count.
        bar_x1 = 105
        c.frame(0, 52, bar_x1, 62)
        fill = round((bar_x1 - 2) * s.hold_fraction)
        if fill > 0:
            c.box(2, 54, 1 + fill, 60)
        c.right(WIDTH, 49, str(s.hold_left), "xl")


def _done(c: Canvas, s: sc.Done) -> None:
    c.icon(4, 3, "smiley")
    words = ("Thank", "you!") if s.early else ("Well", "done!")
    c.center(6, words[0], "xl", x0=36)
    c.center(24, words[1], "xl", x0=36)
    c.center(48, f"{s.reps_done} of {s.reps_planned} reps", "l")


def _progress(c: Canvas, s: sc.Progress) -> None:
    c.center(2, "Today", "l")
    c.center(17, f"{s.done} of {s.due} done" if s.due else "Nothing due yet", "xl" if s.due else "l")
    c.marks(36, s.marks)
    if s.next_time:
        c.center(50, f"Next {s.next_time}", "l")


def _hint(c: Canvas, s: sc.Hint) -> None:
    x0 = 0
    if s.icon in icons.ART:
        iw, ih = icons.size(s.icon)
        c.icon(M, (HEIGHT - ih) // 2, s.icon)
        x0 = M + iw + 2
    lines = [t for t in (s.text, s.detail) if t]
    size = "xl" if all(text_width(t, "xl") <= WIDTH - x0 for t in lines) else "l"
    top = 14 if len(lines) == 2 else 25
    for i, line in enumerate(lines):
        c.center(top + i * 22, line, size, x0=x0)


_QUALITY = {"ntp": "ntp (synced)", "rtc": "rtc (battery)", "set-by-nurse": "set by nurse",
            "unverified": "unverified", "distrusted": "WRONG: set it", "simulated": "simulated"}


def _nurse(c: Canvas, s: sc.Nurse) -> None:
    page = min(max(1, s.page), s.pages)
    title = {1: s.unit_id, 2: "Sessions", 3: "Needs attention"}[page]
    tag = f"{page}/{s.pages}"
    c.box(0, 0, WIDTH - 1, 11)
    c.caps(1, 2, title[: (WIDTH - 8 - text_width(tag, "sb")) // 6], "sb", fill=0)
    c.right(WIDTH - 1, 2, tag, "sb", fill=0)
    if page == 1:
        if s.episode is None:
            lines = ["No episode", f"Runs {s.regimen}" if s.regimen else "Quiet until admitted"]
        else:
            day = "" if s.day is None else ("Pre-op" if s.day < 0 else f"POD {s.day}")
            lines = [f"Ep {s.episode}", f"{day} · {s.regimen}"]
        lines += [s.clock, f"Clock {_QUALITY.get(s.time_quality, s.time_quality)}"]
    elif page == 2:
        lines = [f"Today{s.today_done:>3} done{s.today_missed:>3} miss",
                 f"Yday {s.yesterday_done:>3} done{s.yesterday_missed:>3} miss",
                 f"Download {s.download}", f"Log {s.head}"]
    else:
        lines = [line for n in s.notices for line in wrap(n, "s", WIDTH)][:4]
    for i, line in enumerate(lines):
        c.caps(0, 15 + i * 13, line[:21], "s")


def _episode(c: Canvas, s: sc.Episode) -> None:
    title = {"admitted": "Admitted", "discharged": "Discharged", "refused": "Not accepted"}.get(s.event, s.event)
    c.center(2, title, "xl")
    c.center(24, s.episode, fit(s.episode, ("l", "s")))
    if s.event == "refused":
        for i, line in enumerate(wrap(s.problem, "s", WIDTH)[:2]):
            c.center(40 + i * 12, line, "s")
    elif s.event == "admitted":
        day = "" if s.day is None else ("before surgery" if s.day < 0 else f"day {s.day}")
        c.center(42, f"{s.regimen}, {day}" if day else s.regimen, "s")
    else:
        c.center(42, "Unit ready", "s")


def _confirm(c: Canvas, s: sc.Confirm) -> None:
    """A change asked for over the serial link: what would change, and how to answer."""
    c.box(0, 0, WIDTH - 1, 13)
    c.center(3, s.title, fit(s.title, ("m", "sb")), fill=0)
    c.center(19, s.line1, fit(s.line1, ("l", "s"), WIDTH - 2 * M), x0=M, x1=WIDTH - M)
    if s.line2:
        c.center(35, s.line2, fit(s.line2, ("xl", "l", "s"), WIDTH - 2 * M), x0=M, x1=WIDTH - M)
    c.caps(0, 54, "Press=yes Hold=no", "s")
    c.right(WIDTH, 54, f"{s.seconds_left}s", "s")


def _stick(c: Canvas, s: sc.Stick) -> None:
    name = f"stick_{s.state}" if f"stick_{s.state}" in icons.ART else "stick_problem"
    iw, ih = icons.size(name)
    c.icon(M + 2, (HEIGHT - ih) // 2, name)
    x0 = M + 2 + iw + 4
    size, title = fit_lines(s.title, ("xl", "l"), WIDTH - x0, 2)
    detail = wrap(s.detail, "s", WIDTH - x0)[:2] if s.detail else []
    line_h = _GLYPH[size][1] - 2
    height = line_h * len(title) + (4 + 12 * len(detail) if detail else 0)
    y = (HEIGHT - height) // 2 + 1
    for line in title:
        c.center(y, line, size, x0=x0)
        y += line_h
    y += 4
    for line in detail:
        c.center(y, line, "s", x0=x0)
        y += 12


def render(screen: sc.Screen) -> Image.Image:
    c = Canvas()
    if isinstance(screen, sc.Idle):
        _idle(c, screen)
        return _shifted(c, screen.shift)
    if isinstance(screen, sc.Prompt):
        _prompt(c, screen)
        return _shifted(c, screen.shift)
    if isinstance(screen, sc.Snoozed):
        _snoozed(c, screen)
        return _shifted(c, screen.shift)
    if isinstance(screen, sc.Intro):
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
    elif isinstance(screen, sc.Episode):
        _episode(c, screen)
    elif isinstance(screen, sc.Confirm):
        _confirm(c, screen)
    elif isinstance(screen, sc.Stick):
        _stick(c, screen)
    return c.image
