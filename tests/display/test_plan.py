"""The large layouts' plan is cached by the shape of its words (the fonts are monospaced): the
same sizes and lines as searching the ladders for the very text, and the same pixels."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.core import screens as sc
from bedside.core.panels import LAYOUT_SIZES
from bedside.display import canvas, large
from bedside.display.large import LADDERS, Line

Plan = tuple[tuple[str, tuple[str, ...]], ...]


def _reference(layout: str, items: tuple[Line, ...], width: int, height: int) -> Plan:
    """The plan as it was searched for each text before it was cached by shape."""
    ladders = LADDERS[layout]
    order = sorted(range(len(items)), key=lambda i: large._RANK[items[i].role])
    choices = [getattr(ladders, items[i].role) for i in order]
    fallback: Plan = ()
    for combo in itertools.product(*choices):
        sized: dict[int, tuple[str, tuple[str, ...]]] = {}
        for i, size in zip(order, combo, strict=True):
            lines = large._words(items[i].text, size, width)
            if lines is None or len(lines) > items[i].lines:
                break
            sized[i] = (size, tuple(lines))
        else:
            result = tuple(sized[i] for i in range(len(items)))
            gaps = sum(canvas.metrics(result[i][0])[1] + 3 for i in range(len(items) - 1))
            if sum(large._height(z, len(ls)) for z, ls in result) + gaps <= height:
                return result
            fallback = fallback or result
    if fallback:
        return fallback
    return tuple((getattr(ladders, it.role)[-1], tuple(canvas.wrap(it.text, getattr(ladders, it.role)[-1],
                                                                   width)[:it.lines])) for it in items)


_words = st.text(alphabet="aZ9:!é? \t", min_size=0, max_size=40)
_line = st.builds(Line, _words, st.sampled_from(["main", "second", "small"]), st.integers(1, 3))


@settings(max_examples=300, deadline=None)
@given(layout=st.sampled_from(sorted(LADDERS)), items=st.lists(_line, min_size=1, max_size=4))
def test_plan_by_shape_is_the_plan_of_the_text(layout: str, items: list[Line]) -> None:
    w, h = LAYOUT_SIZES[layout]
    for width, height in ((w - 4, h - 4), (w, h - 8)):
        assert large.plan(layout, tuple(items), width, height) == _reference(layout, tuple(items), width, height)


def test_a_hold_draws_the_bar_as_the_rectangles_did() -> None:
    """The hold's frame comes with its cached words and its fill is pasted: every fill the bar
    can show is the picture that drawing both rectangles gives."""
    for layout in LADDERS:
        w, h = LAYOUT_SIZES[layout]
        for step in range(0, 41):
            s = sc.Guide(exercise="Ankle pumps", foot="left", rep=3, reps=10, instruction="Toes up",
                         hold_left=5, hold_fraction=step / 40, icon="foot_up")
            image = large.draw(layout, s)
            assert image is not None
            c = canvas.Canvas(w, h)
            c.image.paste(large._guide_words(layout, w, h, 7, "Left foot", "Toes up", "Hold 5", False))
            c.frame(0, h - 7, w - 1, h - 1)
            fill = round((w - 4) * s.hold_fraction)
            if fill > 0:
                c.box(2, h - 7 + 2, 1 + fill, h - 3)
            assert image.tobytes() == c.image.tobytes(), (layout, step)
