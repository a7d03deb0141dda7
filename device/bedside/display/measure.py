"""How tall the words a patient must read come out on each panel, measured on drawn frames.

A height is found by drawing a screen twice, once with the words in capitals ("HHHHH") and
once with full stops in their place: the same letters count, so the layout wraps and sizes
them the same, and the pixels that differ are exactly the capitals' ink. Its rows are the
cap height in pixels; the panel's glass (core/panels.py) turns them into millimetres and
the visual angle at 1 m. docs/screens.md's table is made from these figures
(``make gallery``), and a test keeps it in step with what the unit draws.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from PIL import ImageChops

from bedside.core import screens as sc
from bedside.core.panels import PANELS, Panel, arcmin
from bedside.display import render

PROMPT = sc.Prompt("hourly", "Ankle pumps", "10 each foot", snoozes_left=2, icon="foot", minutes=2)
GUIDE = sc.Guide("Ankle pumps", "left", 3, 10, "Toes up", icon="foot_up")


def _swap(text: str, to: str) -> str:
    return "".join(c if c == " " else to for c in text)


def ink_rows(a: sc.Screen, b: sc.Screen, layout: str) -> int:
    """Rows of the first line of pixels that differ between ``a`` and ``b`` drawn in ``layout``
    (words wrapped onto two lines are measured on the first): 0 if none differ."""
    diff = ImageChops.logical_xor(render.render(a, layout), render.render(b, layout))
    width, height = diff.size
    inked = [diff.crop((0, y, width, y + 1)).getbbox() is not None for y in range(height)]
    if True not in inked:
        return 0
    first = inked.index(True)
    return (inked.index(False, first) if False in inked[first:] else height) - first


def prompt_words(layout: str) -> int:
    """Cap height in pixels of the prompt's main words (the exercise's name)."""
    return ink_rows(dataclasses.replace(PROMPT, exercise=_swap(PROMPT.exercise, "H")),
                    dataclasses.replace(PROMPT, exercise=_swap(PROMPT.exercise, ".")), layout)


def guide_instruction(layout: str) -> int:
    """Cap height in pixels of the guide's instruction ("Toes up")."""
    return ink_rows(dataclasses.replace(GUIDE, instruction=_swap(GUIDE.instruction, "H")),
                    dataclasses.replace(GUIDE, instruction=_swap(GUIDE.instruction, ".")), layout)


def guide_count(layout: str) -> int:
    """Height in pixels of the guide's count of reps: the digits "1" and "4" share no column,
    so the pixels that differ between rep 1 and rep 4 span the digits' whole height."""
    return ink_rows(dataclasses.replace(GUIDE, rep=1), dataclasses.replace(GUIDE, rep=4), layout)


@dataclass(frozen=True)
class Height:
    px: int
    mm: float
    arcmin: float


@dataclass(frozen=True)
class Row:
    panel: Panel
    layout: str
    prompt: Height
    instruction: Height
    count: Height


def _height(panel: Panel, px: int) -> Height:
    mm = px * panel.mm_per_px
    return Height(px, round(mm, 1), round(arcmin(mm), 1))


def table() -> list[Row]:
    """Every panel in every layout it has."""
    rows = []
    for panel in PANELS.values():
        for layout in panel.layouts:
            rows.append(Row(panel, layout, _height(panel, prompt_words(layout)),
                            _height(panel, guide_instruction(layout)), _height(panel, guide_count(layout))))
    return rows


def markdown(rows: list[Row]) -> str:
    def cell(h: Height) -> str:
        return f"{h.px} px, {h.mm:.1f} mm, **{h.arcmin:.1f}′**" if h.arcmin >= 20 else \
            f"{h.px} px, {h.mm:.1f} mm, {h.arcmin:.1f}′"

    lines = ["| Panel | Layout | Prompt: exercise name | Guide: instruction | Guide: count |",
             "|---|---|---|---|---|"]
    for r in rows:
        default = " (default)" if r.layout == r.panel.default_layout else ""
        lines.append(f"| {r.panel.name} {r.panel.diagonal} {r.panel.width}×{r.panel.height} | {r.layout}{default} | "
                     f"{cell(r.prompt)} | {cell(r.instruction)} | {cell(r.count)} |")
    return "\n".join(lines)
