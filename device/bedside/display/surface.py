"""What the unit's loop draws on: the display's side of the contract, in one place.

The loop calls ``show`` with the core's screen and a brightness (``normal`` or ``dim``)
whenever the core says what to show, and reads ``error`` after every piece of work: a
failing display is a fault the core records and shows elsewhere, never an exception that
stops prompting. ``panel.DisplayOut`` (a luma device) and ``panel.DisplayKeeper`` (one
rebuilt with backoff while it fails) are the two the unit has; another kind of panel (an
e-paper one, say) is a third class with these two members.
"""

from __future__ import annotations

from typing import Protocol

from bedside.core import screens as sc


class Surface(Protocol):
    @property
    def error(self) -> str | None:
        """What is wrong with the display now, in words for the journal; None while it works."""
        ...

    def show(self, screen: sc.Screen, brightness: str) -> bool:
        """Put ``screen`` on the display; True when a new frame was sent."""
        ...
