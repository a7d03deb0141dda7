"""The button's mechanics from its edges' timestamps: debounce, and how long it is held.

Pure like the rest of the core. The shell stamps each edge when it happened (the kernel's
timestamp on a Pi) and hands it in as a ``ButtonEdge``; here an edge is accepted once the
level has held for ``DEBOUNCE_S``, and a held button passes its stages at ``LONG_S`` (the
hint), ``NURSE_S`` (the nurse screen) and ``STUCK_S`` (stuck: ignored until released).
What a press or a hold *means* at that moment is the state machine's (``machine.py``).
"""

from __future__ import annotations

from dataclasses import replace

from bedside.core.state import DEBOUNCE_S, LONG_S, NURSE_S, STUCK_S, Button

HINT, NURSE, STUCK = 1, 2, 3
# When each stage is reached, counted from the press; a stuck button has no further stage.
_STAGE_AFTER = (LONG_S, NURSE_S, STUCK_S, float("inf"))


def edge(b: Button, pressed: bool, mono: float) -> tuple[Button, bool]:
    """The pin reported ``pressed`` at ``mono``: the button with that raw level, and whether
    the change counts now (a new level, outside the bounce window). One inside the window is
    settled by ``settled`` when the window ends."""
    b = replace(b, raw=pressed)
    return b, not (pressed == b.down or mono - b.changed < DEBOUNCE_S)


def settled(b: Button, mono: float) -> bool:
    """Whether a raw level that differs from the debounced one has now held for the window."""
    return b.raw != b.down and mono >= b.changed + DEBOUNCE_S


def pressed(b: Button, mono: float) -> Button:
    return replace(b, down=True, changed=mono, down_at=mono, stage=0)


def released(b: Button, mono: float) -> tuple[Button, float]:
    """The button let go at ``mono``, and how long it was held."""
    return replace(b, down=False, changed=mono, stage=0), mono - b.down_at


def reached(b: Button, stage: int, mono: float) -> bool:
    """Whether the held button has reached ``stage`` (HINT, NURSE or STUCK) and not yet passed it."""
    return b.down and b.stage < stage and mono - b.down_at >= _STAGE_AFTER[stage - 1]


def deadlines(b: Button) -> list[float]:
    """When the button next needs the core: the end of a bounce window, the next stage of a hold."""
    out = []
    if b.raw != b.down:
        out.append(b.changed + DEBOUNCE_S)
    if b.down:
        out.append(b.down_at + _STAGE_AFTER[b.stage])
    return out
