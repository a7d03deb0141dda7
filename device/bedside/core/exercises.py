"""Exercise kinds, as data: what one repetition of each kind is, and its pictures. Pure.

A config's exercise names its ``kind`` (``config/bedside.toml``); the guide paces each
repetition as the kind's moves, and the intro and prompt screens show the kind's picture.
Older configs without ``kind`` have it told from the exercise's name, with a warning (the
words in ``Kind.words``); a name that tells nothing is guided as ``other`` (its own name,
held, then relax), with a warning rather than silently.

Adding an exercise is a row in ``KINDS`` plus its pixel art (``display/icons.py``);
``tests/display/test_screens.py`` checks that every picture named here exists.
"""

from __future__ import annotations

from dataclasses import dataclass

MOVE_S = 2.0       # an unheld movement: toes up, relax


@dataclass(frozen=True, slots=True)
class Move:
    """One step of a repetition."""

    text: str                  # shown in large type; "" shows the exercise's own name
    icon: str | None = None    # picture shown with it (display/icons.py)
    held: bool = False         # lasts the exercise's hold_seconds, with the countdown, when it has one
    seconds: float = MOVE_S    # otherwise, this long


@dataclass(frozen=True, slots=True)
class Kind:
    icon: str | None                 # the exercise's picture on its intro and prompt screens
    moves: tuple[Move, ...]          # one repetition
    words: tuple[str, ...] = ()      # in a name, these tell this kind (configs written before ``kind``)


# The texts follow the published instructions (the ankle pump: toes up towards the face, then
# pointed down as if pressing a car's accelerator, held, slowly): every rep has a hold and a return.
KINDS: dict[str, Kind] = {
    "ankle_pump": Kind("foot", (Move("Toes up", "foot_up"), Move("Toes down", "foot_down", held=True)), ("pump",)),
    "quad_set": Kind("leg_press", (Move("Tighten thigh", "leg_press", held=True), Move("Relax", "leg")), ("quad",)),
    "glute_set": Kind("squeeze", (Move("Squeeze", "squeeze", held=True), Move("Relax")), ("glute",)),
    "ankle_circle": Kind("circle", (Move("Circle out", "circle", seconds=3.0),
                                    Move("Circle in", "circle", seconds=3.0)), ("circle",)),
    # Tracing letters with the big toe, one a rep: the variation patients find less dull.
    "toe_alphabet": Kind("circle", (Move("Trace a letter", "circle", seconds=4.0),), ("alphabet", "letter")),
    "other": Kind(None, (Move("", held=True), Move("Relax"))),
}
OTHER = "other"


def from_name(name: str) -> str | None:
    """The kind an exercise's name tells (the first kind whose word it contains), or None."""
    lowered = name.lower()
    return next((k for k, kind in KINDS.items() if any(w in lowered for w in kind.words)), None)


def icons() -> set[str]:
    """Every picture the kinds name."""
    return {i for kind in KINDS.values() for i in (kind.icon, *(m.icon for m in kind.moves)) if i is not None}
