"""A nurse's pause: prompting stops for a while (physio, a scan, a patient allowed to sleep).

The lengths a nurse can choose, as one table; how long each runs from a given moment; and
the words for them. A pause is recorded (``pause``, with its end and who asked: the button,
the serial link or the simulator), sessions that fall inside it are recorded ``paused``
(neither missed nor due), nothing sounds while it lasts, and it ends by itself or early
(``resume``). Pure: every time is handed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bedside.core import planner
from bedside.core.config import Config
from bedside.core.errors import BedsideError

# duration -> (how long, or None for "until the awake window next opens"; words on the screen)
CHOICES: dict[str, tuple[timedelta | None, str]] = {
    "1h": (timedelta(hours=1), "1 hour"),
    "2h": (timedelta(hours=2), "2 hours"),
    "4h": (timedelta(hours=4), "4 hours"),
    "morning": (None, "Until morning"),
}
CANCEL = "cancel"                 # the pause menu's last entry: change nothing
MENU = (*CHOICES, CANCEL)
MENU_S = 15.0                     # the pause menu closes, changing nothing, after this long untouched


class PauseError(BedsideError, ValueError):
    """Not a pause length the unit offers; the message lists them."""


def parse(text: str) -> str:
    """A duration as written in a scenario or at the serial link: ``1h``, ``2h``, ``4h``, ``morning``."""
    word = text.strip().lower().replace(" ", "")
    aliases = {"1": "1h", "2": "2h", "4": "4h", "60m": "1h", "120m": "2h", "240m": "4h", "tomorrow": "morning"}
    word = aliases.get(word, word)
    if word not in CHOICES:
        raise PauseError(f"a pause lasts {', '.join(CHOICES)} (until the awake window next opens), not {text!r}")
    return word


def until(cfg: Config, duration: str, now: datetime) -> datetime:
    """When a pause of ``duration`` asked for at ``now`` ends."""
    length, _ = CHOICES[duration]
    return now + length if length is not None else planner.next_opening(cfg, now)


def label(duration: str) -> str:
    return CHOICES[duration][1] if duration in CHOICES else "Don't pause"
