"""Every picture an exercise kind names is drawn (display/icons.py)."""

from __future__ import annotations

from bedside.core import exercises
from bedside.display import icons


def test_every_kinds_pictures_exist_and_are_drawable() -> None:
    assert exercises.icons() <= set(icons.ART), sorted(exercises.icons() - set(icons.ART))
    for name in exercises.icons():
        w, h = icons.size(name)
        assert 0 < w <= 64 and 0 < h <= 64, name
