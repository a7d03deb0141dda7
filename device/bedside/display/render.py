"""Draws screens (``screens.py`` values) as one-bit images, in the layout a panel uses.

This module holds the canvas, the fonts and the ``standard`` layout (128x64, the most
detail in the smallest type); ``large.py`` holds the large-type layouts (``large`` on a
128x64 panel, ``wide`` on 256x64, ``square`` on 128x128). ``LAYOUTS`` maps each name to
its drawing function; ``core/panels.py`` says which panel may use which.

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

from collections.abc import Callable
from functools import cache

from PIL import Image

from bedside.core import screens as sc
from bedside.core.panels import LAYOUT_SIZES
from bedside.display import icons, large
from bedside.display.canvas import (
    _GLYPH,
    HEIGHT,
    WIDTH,
    Canvas,
    M,
    fit,
    fit_lines,
    metrics,
    shifted,
    text_width,
    wrap,
)

__all__ = [
    "HEIGHT",
    "WIDTH",
    "_GLYPH",
    "Canvas",
    "M",
    "fit",
    "fit_lines",
    "metrics",
    "render",
    "shifted",
    "standard",
    "text_width",
    "wrap",
]


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
    elif s.paused:
        c.center(28, f"Paused until {s.paused}", fit(f"Paused until {s.paused}", ("l", "sb"), WIDTH - 2 * M))
    elif s.ready:
        c.center(28, "Ready for", "l")
        c.center(42, "next patient", "l")
        return
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
    if s.sets > 1:
        # In sets: the count and the set share the bottom line (the part number gives way).
        c.caps(M, 48, f"{s.reps} times", "l")
        c.right(WIDTH - M, 48, f"Set {s.set}/{s.sets}", "l")
        return
    if s.foot or s.icon in icons.ART:
        c.center(48, f"{s.reps} times", "l")
    else:
        # No picture for this exercise: the count moves up into the middle, larger.
        c.center(28, f"{s.reps} times", "xl")
    if s.parts > 1:
        c.right(WIDTH, 52, f"{s.part}/{s.parts}", "s")


def _rest(c: Canvas, s: sc.Rest) -> None:
    c.center(4, "Rest", "xxl")
    c.center(30, f"Then set {s.next} of {s.sets}", "l")
    c.center(50, s.exercise, fit(s.exercise, ("sb", "s")))


def _tip(c: Canvas, s: sc.Tip) -> None:
    c.box(0, 0, WIDTH - 1, 11)
    c.caps(1, 2, s.exercise[:20], "sb", fill=0)
    size, lines = fit_lines(s.text, ("xl", "l", "m"), WIDTH - 2 * M, 3)
    line_h = {"xl": 17, "l": 14, "m": 13}[size]
    top = 14 + (50 - line_h * len(lines)) // 2
    for i, line in enumerate(lines):
        c.center(top + i * line_h, line, size, x0=M, x1=WIDTH - M)


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
    if s.offer:
        # The offer of more takes the bottom line; the next session moves up beside "Today".
        c.caps(M, 2, "Today", "l")
        if s.next_time:
            c.right(WIDTH - M, 4, f"next {s.next_time}", "sb")
    else:
        c.center(2, "Today", "l")
    c.center(17, f"{s.done} of {s.due} done" if s.due else "Nothing due yet", "xl" if s.due else "l")
    c.marks(36, s.marks)
    if s.offer:
        c.center(50, "Press for more", "l")
    elif s.next_time:
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


def title_bar(screen: object) -> tuple[str, str, int] | None:
    """The dark-on-light title bar a nurse's screen starts with: (title, tag on the right, the bar's
    last pixel row). A terminal too small to draw its letters writes them as text instead."""
    if isinstance(screen, sc.Nurse):
        page = min(max(1, screen.page), screen.pages)
        title = {1: screen.unit_id, 2: "Sessions", 3: "Prompts and power", 4: "Needs attention"}[page]
        return title, f"{page}/{screen.pages}", 11
    if isinstance(screen, sc.PauseMenu):
        return "Pause prompts?", "", 13
    return None


def _nurse(c: Canvas, s: sc.Nurse) -> None:
    page = min(max(1, s.page), s.pages)
    bar = title_bar(s)
    assert bar is not None
    title, tag, _ = bar
    c.box(0, 0, WIDTH - 1, 11)
    c.caps(1, 2, title[: (WIDTH - 8 - text_width(tag, "sb")) // 6], "sb", fill=0)
    c.right(WIDTH - 1, 2, tag, "sb", fill=0)
    if page == 1:
        if s.episode is None:
            runs = f"Runs {s.regimen}" + (f" day {s.day}" if s.day is not None else "")
            lines = ["No patient admitted", runs if s.regimen else "Quiet until admitted"]
        else:
            day = "" if s.day is None else ("Pre-op" if s.day < 0 else f"POD {s.day}")
            lines = [f"Ep {s.episode}", f"{day} · {s.regimen}"]
        lines += [s.clock, f"Clock {_QUALITY.get(s.time_quality, s.time_quality)}"]
    elif page == 2:
        lines = [f"Today{s.today_done:>3} done{s.today_missed:>3} miss",
                 f"Yday {s.yesterday_done:>3} done{s.yesterday_missed:>3} miss",
                 f"Download {s.download}", f"Log {s.head}"]
    elif page == 3:
        lines = [f"Paused until {s.paused}" if s.paused else "Prompting",
                 "Press: resume now" if s.paused else "Press: pause prompts",
                 f"Cut {s.power_cut}" if s.power_cut else "No power cut known",
                 f"Disk err {s.storage}" if s.storage else "No disk fault"]
    else:
        lines = [line for n in s.notices for line in wrap(n, "s", WIDTH)][:4]
    for i, line in enumerate(lines):
        c.caps(0, 15 + i * 13, line[:21], "s")


def _pause_menu(c: Canvas, s: sc.PauseMenu) -> None:
    """The nurse's pause menu: the length on offer, and how to take it."""
    c.box(0, 0, WIDTH - 1, 13)
    c.center(3, "Pause prompts?", "m", fill=0)
    c.center(22, s.choice, fit(s.choice, ("xl", "l", "s"), WIDTH - 2 * M), x0=M, x1=WIDTH - M)
    c.right(WIDTH, 43, f"{s.index}/{s.count}", "s")
    c.caps(0, 54, "Press=next Hold=pick", "s")


def _episode(c: Canvas, s: sc.EpisodeChange) -> None:
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


def standard(screen: sc.Screen) -> Image.Image:
    """The ``standard`` layout: 128x64, the most detail, in type from 12 to 32 px."""
    c = Canvas()
    if isinstance(screen, sc.Idle):
        _idle(c, screen)
        return shifted(c, screen.shift)
    if isinstance(screen, sc.Prompt):
        _prompt(c, screen)
        return shifted(c, screen.shift)
    if isinstance(screen, sc.Snoozed):
        _snoozed(c, screen)
        return shifted(c, screen.shift)
    if isinstance(screen, sc.Intro):
        _intro(c, screen)
    elif isinstance(screen, sc.Rest):
        _rest(c, screen)
    elif isinstance(screen, sc.Tip):
        _tip(c, screen)
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
    elif isinstance(screen, sc.PauseMenu):
        _pause_menu(c, screen)
    elif isinstance(screen, sc.EpisodeChange):
        _episode(c, screen)
    elif isinstance(screen, sc.Confirm):
        _confirm(c, screen)
    elif isinstance(screen, sc.Stick):
        _stick(c, screen)
    return c.image


Layout = Callable[[sc.Screen], Image.Image]


@cache
def layouts() -> dict[str, Layout]:
    return {"standard": standard, **{name: _large(name) for name in large.LADDERS}}


def _large(layout: str) -> Layout:
    def draw(screen: sc.Screen) -> Image.Image:
        image = large.draw(layout, screen)
        if image is None:
            # The nurse's screens: the standard drawing, in the middle of a larger panel.
            inner = standard(screen)
            image = Canvas(*LAYOUT_SIZES[layout]).image
            image.paste(inner, ((image.width - WIDTH) // 2, (image.height - HEIGHT) // 2))
        return image
    return draw


def render(screen: sc.Screen, layout: str = "standard") -> Image.Image:
    """``screen`` drawn in ``layout`` (a name in core/panels.py's LAYOUT_SIZES)."""
    return layouts()[layout](screen)
