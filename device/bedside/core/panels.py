"""The OLED panels the unit can drive, as one table: add a row to support another.

A row says what luma.oled driver runs the panel, its pixels, its glass (the active area,
from the module's datasheet, which is what turns pixels into millimetres and visual angle
at the bedside), the bus it is wired on, and the screen layouts drawn for it; the first
layout is the one a panel gets unless ``[display] layout`` names another. It is plain data
so the config can validate ``[hardware] display`` and ``[display] layout`` without the
drawing code, and so per-controller behaviour elsewhere (how a frame is sent) can key on
``controller``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Panel:
    name: str                        # the [hardware] display value
    controller: str                  # the luma.oled.device driver
    width: int
    height: int
    active_mm: tuple[float, float]   # the lit area, width x height, from the datasheet
    diagonal: str                    # as sold: '0.96"'
    bus: str                         # i2c | spi
    layouts: tuple[str, ...]         # the layouts drawn for it; the first is its default
    greyscale: bool = False          # luma's greyscale drivers are given one-bit frames (mode "1")

    @property
    def mm_per_px(self) -> float:
        return self.active_mm[1] / self.height

    @property
    def default_layout(self) -> str:
        return self.layouts[0]


PANELS: dict[str, Panel] = {p.name: p for p in (
    Panel("ssd1306", "ssd1306", 128, 64, (21.74, 10.86), '0.96"', "i2c", ("large", "standard")),
    Panel("sh1106", "sh1106", 128, 64, (29.42, 14.70), '1.3"', "i2c", ("large", "standard")),
    Panel("ssd1309", "ssd1309", 128, 64, (55.01, 27.49), '2.42"', "i2c", ("large", "standard")),
    Panel("ssd1322", "ssd1322", 256, 64, (76.78, 19.18), '3.12"', "spi", ("wide",), greyscale=True),
    Panel("ssd1327", "ssd1327", 128, 128, (26.86, 26.86), '1.5"', "i2c", ("square",), greyscale=True),
    Panel("sh1107", "sh1107", 128, 128, (20.14, 20.14), '1.12"', "i2c", ("square",)),
)}

# Each layout's canvas; a panel's layouts must match its pixels (a test checks the table).
LAYOUT_SIZES: dict[str, tuple[int, int]] = {
    "standard": (128, 64), "large": (128, 64), "wide": (256, 64), "square": (128, 128),
}

DEFAULT_PANEL = "ssd1309"       # the one that reaches 20 arcmin at 1 m (docs/screens.md)
VIEWING_MM = 1000.0             # bed table to pillow


def arcmin(mm: float, distance_mm: float = VIEWING_MM) -> float:
    """The visual angle of something ``mm`` tall seen from ``distance_mm``, in minutes of arc."""
    return math.degrees(2 * math.atan(mm / 2 / distance_mm)) * 60
