"""The large-type layouts: what a patient reads from the pillow, one thing at a time.

Every patient screen here is a short stack of lines, each with a role: ``main`` (the words
that matter now: the exercise, the instruction, the time), ``second`` (what to do about
it, the count) and ``small`` (a reminder). A layout is its canvas and a ladder of sizes
for each role, largest first; the stack takes the largest main words that fit with the
rest, then the largest second line, then the small print, and spreads the lines evenly.
The same screens therefore draw on a 128x64, a 256x64 and a 128x128 panel, and the extra
pixels of a larger panel become larger type, not more words. docs/screens.md gives the
height each layout reaches, measured from these frames.

Screens for the nurse (summary, admission, confirmation, USB stick) are read from close
by: ``render.py`` gives them the standard drawing, centred on a larger canvas.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image

from bedside.core import screens as sc
from bedside.core.panels import LAYOUT_SIZES
from bedside.display import canvas, icons
from bedside.display.canvas import Canvas, M, metrics


@dataclass(frozen=True)
class Ladders:
    main: tuple[str, ...]
    second: tuple[str, ...]
    small: tuple[str, ...]


LADDERS = {
    "large": Ladders(("huge", "xxl", "xl", "l"), ("xxl", "xl", "l", "m", "s"), ("s",)),
    "wide": Ladders(("huge", "xxl", "xl"), ("huge", "xxl", "xl", "l", "m"), ("l", "s")),
    "square": Ladders(("2xxl", "2xl", "huge", "xxl", "xl"), ("2xl", "huge", "xxl", "xl", "l"), ("l", "s")),
}
_RANK = {"main": 0, "second": 1, "small": 2}


@dataclass(frozen=True)
class Line:
    text: str
    role: str = "main"           # main | second | small
    lines: int = 1               # at most this many lines when wrapped


def _words(text: str, size: str, width: int) -> list[str] | None:
    """``text`` wrapped to ``width`` in ``size``, or None when a word would have to be cut."""
    per_line = width // canvas._GLYPH[size][0]
    if per_line < 1 or any(len(w) > per_line for w in text.split()):
        return None
    return canvas.wrap(text, size, width)


def _height(size: str, n: int) -> int:
    cap, depth = metrics(size)
    return n * cap + (n - 1) * (depth + 3)


def plan(layout: str, items: tuple[Line, ...], width: int, height: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The size and lines of each item: the largest main words that fit, then second, then small."""
    sizes = _sizes(layout, tuple((_shape(it.text), it.role, it.lines) for it in items), width, height)
    return tuple((z, tuple(canvas.wrap(it.text, z, width)[:it.lines])) for it, z in zip(items, sizes, strict=True))


def _shape(text: str) -> str:
    """``text`` with each word's letters made alike. The fonts are monospaced, so where the lines
    of a text break, and so the sizes its layout takes, depend only on its words' lengths: the
    idle clock's every minute shares one plan instead of searching the ladders afresh."""
    return " ".join("x" * len(w) for w in text.split())


@lru_cache(maxsize=256)
def _sizes(layout: str, shapes: tuple[tuple[str, str, int], ...], width: int, height: int) -> tuple[str, ...]:
    items = [Line(*sh) for sh in shapes]
    ladders = LADDERS[layout]
    order = sorted(range(len(items)), key=lambda i: _RANK[items[i].role])
    choices = [getattr(ladders, items[i].role) for i in order]
    fallback: tuple[str, ...] = ()
    for combo in itertools.product(*choices):
        sized: dict[int, tuple[str, int]] = {}
        for i, size in zip(order, combo, strict=True):
            lines = _words(items[i].text, size, width)
            if lines is None or len(lines) > items[i].lines:
                break
            sized[i] = (size, len(lines))
        else:
            result = [sized[i] for i in range(len(items))]
            gaps = sum(metrics(result[i][0])[1] + 3 for i in range(len(items) - 1))
            if sum(_height(z, n) for z, n in result) + gaps <= height:
                return tuple(z for z, _ in result)
            fallback = fallback or tuple(z for z, _ in result)
    if fallback:
        return fallback
    # Nothing fits whole (a very long configured name): the smallest sizes, words cut.
    return tuple(getattr(ladders, it.role)[-1] for it in items)


def stack(c: Canvas, layout: str, items: list[Line], top: int = M, bottom: int | None = None,
          x0: int = M, x1: int | None = None) -> None:
    """Draw ``items`` one under another, centred, the space left shared evenly around them."""
    bottom = c.height - M if bottom is None else bottom
    x1 = c.width - M if x1 is None else x1
    sized = plan(layout, tuple(items), x1 - x0, bottom - top)
    blocks = [_height(z, len(ls)) for z, ls in sized]
    spare = max(0, bottom - top - sum(blocks))
    # Descenders hang below each block: the space after a block is its depth plus a share.
    depths = [metrics(z)[1] for z, _ in sized]
    spare_after_depth = max(0, spare - sum(depths[:-1]))
    gap = spare_after_depth // (len(items) + 1)
    y = top + gap
    for (size, lines), depth in zip(sized, depths, strict=True):
        cap = metrics(size)[0]
        for line in lines:
            c.center(y, line, size, x0=x0, x1=x1)
            y += cap + depth + 3
        y += gap - 3


# --- the patient's screens ----------------------------------------------------------------

def _idle(c: Canvas, layout: str, s: sc.Idle) -> None:
    if s.night:
        c.icon(M, M, "moon")
        stack(c, layout, [Line(s.clock)])
        return
    items = [Line(s.clock)]
    if s.notice:
        items.append(Line(s.notice, "small", 2))
    elif s.paused:
        items.append(Line(f"Paused until {s.paused}", "second", 2))
    elif s.ready:
        items.append(Line("Ready for next patient", "second", 2))
    elif s.next_time:
        items.append(Line(f"Next {s.next_time}", "second"))
    if s.status == "missed":
        c.icon(c.width - M - 9, M, "warn")
    stack(c, layout, items)


def _prompt(c: Canvas, layout: str, s: sc.Prompt) -> None:
    stack(c, layout, [Line(s.exercise, "main", 2), Line("Press to start", "second", 2)])


def _snoozed(c: Canvas, layout: str, s: sc.Snoozed) -> None:
    stack(c, layout, [Line("Snoozed until", "second"), Line(s.until), Line("Press to start now", "small")])


def _intro(c: Canvas, layout: str, s: sc.Intro) -> None:
    what = {"left": "Left foot", "right": "Right foot"}.get(s.foot or "", s.exercise)
    items = [Line(what, "main", 2), Line(f"{s.reps} times", "second")]
    if s.foot:
        items.insert(0, Line(s.exercise, "small"))
    if s.sets > 1:
        items.append(Line(f"Set {s.set} of {s.sets}", "small"))
    stack(c, layout, items)


def _rest(c: Canvas, layout: str, s: sc.Rest) -> None:
    # Broken where a person would say it: "Then set / 2 of 2", never "Then set 2 / of 2".
    stack(c, layout, [Line("Rest"), Line("Then set", "second"), Line(f"{s.next} of {s.sets}", "second")])


def _tip(c: Canvas, layout: str, s: sc.Tip) -> None:
    stack(c, layout, [Line(s.exercise, "small"), Line(s.text, "second", 3)])


def _guide(layout: str, s: sc.Guide) -> Image.Image:
    bar = 7   # the hold's bar along the bottom, emptying as the seconds pass
    width, height = LAYOUT_SIZES[layout]
    label = {"left": "Left foot", "right": "Right foot"}.get(s.foot or "", s.exercise)
    count = f"Hold {s.hold_left}" if s.hold_left is not None else f"{s.rep} of {s.reps}"
    held = s.hold_left is not None
    # A copy of the words (and the bar's empty frame), no blank canvas first: nothing else to
    # draw under a hold's count but the bar's fill, one rectangle (pasted: ImageDraw's
    # rectangle has inclusive corners, a paste's box does not).
    image = _guide_words(layout, width, height, bar, label, s.instruction, count, held).copy()
    if held:
        fill = round((width - 4) * s.hold_fraction)
        if fill > 0:
            image.paste(1, (2, height - bar + 2, 2 + fill, height - 2))
    return image


# A guided day shows about a hundred distinct sets of words (each foot, move and count). 32
# keep a set's words across its reps: a day draws them 218 times instead of 490 with 16.
# Keeping all hundred (96 draws) would hold about 0.6 MiB more (Pillow keeps a byte a pixel).
@lru_cache(maxsize=32)
def _guide_words(layout: str, width: int, height: int, bar: int, label: str, instruction: str,
                 count: str, held: bool) -> Image.Image:
    """The guide's words, and the frame of the hold's bar while a hold counts down, drawn once
    and reused: a hold's bar empties over several frames under the same words, and measuring
    and drawing them is most of a frame's cost."""
    c = Canvas(width, height)
    stack(c, layout, [Line(label, "small"), Line(instruction, "main", 2), Line(count, "second")],
          top=0, bottom=height - bar - 1, x0=0, x1=width)
    if held:
        c.frame(0, height - bar, width - 1, height - 1)
    return c.image


def _done(c: Canvas, layout: str, s: sc.Done) -> None:
    words = "Thank you!" if s.early else "Well done!"
    stack(c, layout, [Line(words, "main", 2), Line(f"{s.reps_done} of {s.reps_planned} reps", "second")])


def _progress(c: Canvas, layout: str, s: sc.Progress) -> None:
    items = [Line("Today", "small"),
             Line(f"{s.done} of {s.due} done" if s.due else "Nothing due", "main", 2)]
    if s.next_time:
        items.append(Line(f"Next {s.next_time}", "second"))
    if s.offer:
        items.append(Line("Press for more", "small"))
    stack(c, layout, items)


def _hint(c: Canvas, layout: str, s: sc.Hint) -> None:
    x0 = M
    if s.icon in icons.ART and layout != "large":
        iw, ih = icons.size(s.icon)
        c.icon(M, (c.height - ih) // 2, s.icon)
        x0 = M + iw + 2
    items = [Line(s.text, "second")] + ([Line(s.detail, "main")] if s.detail else [])
    stack(c, layout, items, x0=x0)


_PATIENT: dict[type, Callable[[Canvas, str, object], None]] = {
    sc.Idle: _idle, sc.Prompt: _prompt, sc.Snoozed: _snoozed, sc.Intro: _intro,  # type: ignore[dict-item]
    sc.Rest: _rest, sc.Tip: _tip,  # type: ignore[dict-item]
    sc.Done: _done, sc.Progress: _progress, sc.Hint: _hint,  # type: ignore[dict-item]
}
_SHIFTS = (sc.Idle, sc.Prompt, sc.Snoozed)


def draw(layout: str, screen: sc.Screen) -> Image.Image | None:
    """``screen`` in a large layout; None for the nurse's screens, which keep the standard drawing."""
    if type(screen) is sc.Guide:
        return _guide(layout, screen)
    patient = _PATIENT.get(type(screen))
    if patient is None:
        return None
    c = Canvas(*LAYOUT_SIZES[layout])
    patient(c, layout, screen)
    return canvas.shifted(c, screen.shift) if isinstance(screen, _SHIFTS) else c.image
