"""Screens: golden images, type sizes, margins, the burn-in orbit, brightness, and the docs gallery."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import typing
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bedside.core import screens as sc
from bedside.core import state
from bedside.core.config import Config, Display
from bedside.core.panels import DEFAULT_PANEL, LAYOUT_SIZES, PANELS, Panel
from bedside.display import icons, measure, render
from bedside.display.gallery import EXAMPLES, Example
from tests.conftest import ROOT, budget
from tests.rigs.driver import Driver

GOLDEN = ROOT / "tests" / "golden"


def t(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


# --- golden images ----------------------------------------------------------------------------

# Every panel in every one of its layouts: a layout's pixels depend on the layout alone (the
# panel gives its size), so panels sharing a layout share its references.
PANEL_LAYOUTS = [(p, layout) for p in PANELS.values() for layout in p.layouts]


def golden(layout: str, name: str) -> Path:
    return GOLDEN / f"{name}.png" if layout == "standard" else GOLDEN / layout / f"{name}.png"


@pytest.mark.parametrize(("panel", "layout"), PANEL_LAYOUTS, ids=[f"{p.name}-{z}" for p, z in PANEL_LAYOUTS])
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_every_screen_matches_its_golden_image(example: Example, panel: Panel, layout: str, tmp_path: Path) -> None:
    ref_path = golden(layout, example.name)
    name = ref_path.relative_to(ROOT)
    assert ref_path.exists(), f"no golden image {name}: run `make golden`, look at it, commit it"
    with Image.open(ref_path) as ref:
        assert (ref.mode, ref.size) == ("1", (panel.width, panel.height))
        got = render.render(example.screen, layout)
        if got.tobytes() != ref.tobytes():
            w, h = got.size
            got.resize((w * 4, h * 4), Image.Resampling.NEAREST).save(tmp_path / f"{example.name}-now.png")
            ref.resize((w * 4, h * 4), Image.Resampling.NEAREST).save(tmp_path / f"{example.name}-golden.png")
            pytest.fail(f"{example.name} no longer matches {name} (both drawn 4x in "
                        f"{tmp_path}); if the change is meant, run `make golden` and commit the new image")


def test_the_panel_table_is_whole() -> None:
    assert PANELS[DEFAULT_PANEL].default_layout == Config().layout
    for p in PANELS.values():
        assert p.layouts and all(LAYOUT_SIZES[z] == (p.width, p.height) for z in p.layouts), p.name
        assert p.bus in ("i2c", "spi")
        assert abs(p.active_mm[0] / p.width - p.active_mm[1] / p.height) < 0.01, f"{p.name}: pixels are square"
    assert set(LAYOUT_SIZES) == set(render.layouts())


# --- heights, measured on the frames ------------------------------------------------------------

def test_the_heights_table_in_the_docs_is_measured_from_the_frames() -> None:
    rows = measure.table()
    assert {(r.panel.name, r.layout) for r in rows} == {(p.name, z) for p, z in PANEL_LAYOUTS}
    text = (ROOT / "docs" / "screens.md").read_text(encoding="utf-8")
    assert measure.markdown(rows) in text, "docs/screens.md's heights are out of date: run `make gallery`"


@pytest.mark.parametrize("layout", sorted(LAYOUT_SIZES))
def test_the_measurement_finds_the_words_it_is_asked_about(layout: str) -> None:
    # The capitals measured on the frame are as tall as the font's capitals in the size drawn,
    # and the digits of the count as tall as the capitals (Terminus's figures are cap height).
    sizes = {size: render.metrics(size)[0] for size in render._GLYPH}
    for px in (measure.prompt_words(layout), measure.guide_instruction(layout), measure.guide_count(layout)):
        assert px in sizes.values(), (layout, px)


def test_the_default_panel_reaches_20_arcmin_and_the_large_layout_is_larger() -> None:
    rows = {(r.panel.name, r.layout): r for r in measure.table()}
    default = rows[(DEFAULT_PANEL, PANELS[DEFAULT_PANEL].default_layout)]
    assert default.prompt.arcmin >= 20 and default.count.arcmin >= 20
    for name in ("ssd1306", "sh1106", "ssd1309"):
        large, standard = rows[(name, "large")], rows[(name, "standard")]
        assert large.prompt.px > standard.prompt.px and large.count.px > standard.count.px
        assert PANELS[name].default_layout == "large"
    # The large layout's main words are at least 16 px type on the 0.96-inch panel (its cap height
    # 15 px is Terminus 24; Terminus 16's capitals are 10 px).
    assert rows[("ssd1306", "large")].prompt.px >= render.metrics("xxl")[0]


def test_golden_images_and_gallery_examples_are_the_same_set() -> None:
    for layout in LAYOUT_SIZES:
        folder = GOLDEN if layout == "standard" else GOLDEN / layout
        assert sorted(p.stem for p in folder.glob("*.png")) == sorted(e.name for e in EXAMPLES), layout
    assert len({e.name for e in EXAMPLES}) == len(EXAMPLES)
    # Every kind of screen is in the gallery, and every example looks different.
    kinds = set(typing.get_args(sc.Screen))
    assert {type(e.screen) for e in EXAMPLES} == kinds
    assert len({render.render(e.screen).tobytes() for e in EXAMPLES}) == len(EXAMPLES)


def _gallery_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gallery_tool", ROOT / "tools" / "gallery.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_gallery_shows_what_the_unit_draws(capsys: pytest.CaptureFixture[str]) -> None:
    rc = _gallery_tool().main(["--check"])
    assert rc == 0, capsys.readouterr().err


def test_rendering_is_deterministic_and_one_bit() -> None:
    for e in EXAMPLES:
        a, b = render.render(e.screen), render.render(e.screen)
        assert a.mode == "1" and a.size == (128, 64) and a.tobytes() == b.tobytes()


# --- what is drawn where ------------------------------------------------------------------------

CAP_BOTTOM = {"s": 10, "sb": 10, "m": 12, "l": 12, "xl": 16, "xxl": 19, "huge": 26}


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int, str, str]]]:
    """Every text drawn, as (x, cell top, text, size), by spying on the canvas."""
    calls: list[tuple[int, int, str, str]] = []
    real = render.Canvas.text

    def spy(self: render.Canvas, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        calls.append((x, y, text, size))
        real(self, x, y, text, size, fill)

    monkeypatch.setattr(render.Canvas, "text", spy)
    yield calls


def inside(calls: list[tuple[int, int, str, str]], margin: int = 0) -> None:
    for x, y, text, size in calls:
        top = y + render._GLYPH[size][2]
        assert x >= margin and x + render.text_width(text, size) <= 128 - margin, (text, size, x)
        assert top >= margin and y + CAP_BOTTOM[size] <= 64 - margin, (text, size, y)


def test_instructions_are_at_least_16_px_and_everything_fits(drawn: list[tuple[int, int, str, str]]) -> None:
    for e in EXAMPLES:
        drawn.clear()
        render.render(e.screen)
        shifts = isinstance(e.screen, sc.Idle | sc.Prompt | sc.Snoozed)
        inside(drawn, render.M if shifts else 0)
        sizes = {text: size for _, _, text, size in drawn}
        if isinstance(e.screen, sc.Guide):
            words = [size for text, size in sizes.items() if text in e.screen.instruction and len(text) > 2]
            assert words and set(words) <= {"l", "xl", "xxl"}
        if isinstance(e.screen, sc.Prompt):
            assert sizes["Press to start"] == "l" and sizes[e.screen.exercise] == "l"
        if isinstance(e.screen, sc.Idle):
            assert sizes[e.screen.clock] == "huge"


LATIN_1 = "".join(chr(c) for c in (*range(0x20, 0x7F), *range(0xA0, 0x100)))
names = st.text(LATIN_1, min_size=1, max_size=15).filter(lambda s: s.strip() != "")
instructions = st.sampled_from(["Toes up", "Toes down", "Tighten thigh", "Squeeze", "Relax", "Circle out"]) | names
feet = st.sampled_from([None, "left", "right"])
icon_names = st.sampled_from([None, *icons.ART])


@budget(150)
@given(st.one_of(
    st.builds(sc.Guide, names, feet, st.integers(1, 100), st.integers(1, 100), instructions,
              st.none() | st.integers(1, 30), st.floats(0, 1), icon_names),
    st.builds(sc.Prompt, st.sampled_from(["hourly", "routine"]), names, names, st.integers(0, 9), st.integers(0, 5),
              st.booleans(), st.sampled_from(["foot", "leg_press", "squeeze", "bell"]), st.integers(0, 30)),
    st.builds(sc.Intro, names, feet, st.integers(1, 100), st.integers(1, 5), st.integers(1, 5), icon_names),
    st.builds(sc.Done, st.integers(0, 200), st.integers(1, 200), st.booleans()),
    st.builds(sc.Idle, st.just("23:59"), st.none() | st.just("00:00"), st.none() | names, st.integers(0, 96),
              st.integers(0, 96), st.lists(st.sampled_from(["done", "missed", "open", "later"]), max_size=96)
              .map(tuple), st.booleans(), st.none() | names, st.sampled_from([None, "missed"])),
    st.builds(sc.Nurse, st.text("abcdefghij-0123456789", min_size=1, max_size=32), st.just("Wed 30 Sep 23:59"),
              st.sampled_from(["ntp", "rtc", "set-by-nurse", "unverified", "distrusted", "simulated"]),
              st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
              st.just("123456/0123abcd"), st.none() | st.text("E0123456789-", min_size=1, max_size=18),
              st.none() | st.integers(-60, 365), st.text("abcdefgh", max_size=12), st.just("30 Sep 23:59"),
              st.lists(names, max_size=3).map(tuple), st.integers(1, 3)),
))
def test_property_any_screen_draws_inside_the_display(screen: Any) -> None:
    calls: list[tuple[int, int, str, str]] = []
    real = render.Canvas.text

    def spy(self: render.Canvas, x: int, y: int, text: str, size: str, fill: int = 1) -> None:
        calls.append((x, y, text, size))
        real(self, x, y, text, size, fill)

    # Set by hand: hypothesis runs many examples per test, and pytest's monkeypatch is per test.
    render.Canvas.text = spy  # type: ignore[method-assign]
    try:
        image = render.render(screen)
    finally:
        render.Canvas.text = real  # type: ignore[method-assign]
    assert image.size == (128, 64)
    inside(calls)


def test_characters_the_fonts_lack_are_shown_as_question_marks() -> None:
    a = render.render(sc.Intro("Pumps ✓", None, 5, 1, 1))
    b = render.render(sc.Intro("Pumps ?", None, 5, 1, 1))
    assert a.tobytes() == b.tobytes()


# --- burn-in, brightness, nights -------------------------------------------------------------------

def test_the_orbit_covers_a_5x5_square_one_pixel_at_a_time() -> None:
    assert sorted(state.ORBIT) == sorted(itertools.product(range(-2, 3), range(-2, 3)))
    steps = list(itertools.pairwise((*state.ORBIT, state.ORBIT[0])))
    assert all(max(abs(ax - bx), abs(ay - by)) == 1 for (ax, ay), (bx, by) in steps)


@pytest.mark.parametrize("name", ["idle", "idle-missed", "idle-notice", "prompt", "prompt-routine", "snoozed"])
def test_long_lived_screens_keep_every_pixel_in_every_orbit_position(name: str) -> None:
    screen = next(e.screen for e in EXAMPLES if e.name == name)
    assert isinstance(screen, sc.Idle | sc.Prompt | sc.Snoozed)
    base = render.render(dataclasses.replace(screen, shift=(0, 0)))
    lit = base.histogram()[255]
    for shift in state.ORBIT:
        img = render.render(dataclasses.replace(screen, shift=shift))
        assert img.histogram()[255] == lit, shift   # nothing cut off
        moved = Image.new("1", (128, 64))
        moved.paste(base, shift)
        assert img.tobytes() == moved.tobytes()


def test_idle_clock_moves_with_the_minute_and_dims_when_left_alone() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T07:31"))
    d.run_until(t(cfg, "2026-11-24T07:59"))
    idles = [s for _, s in d.screens() if isinstance(s, sc.Idle)]
    shifts = [s.shift for s in idles]
    assert len(set(shifts)) >= 20 and all(s in state.ORBIT for s in shifts)
    assert all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 1 for a, b in itertools.pairwise(shifts))
    assert d.brightness() == "dim"                # untouched since 07:31; dims after 10 minutes
    d.press(t(cfg, "2026-11-24T08:20"))           # the 08:00 prompt is up: full brightness
    d.run_until(t(cfg, "2026-11-24T08:30"))
    assert d.brightness() == "normal"
    never = Config(display=Display(dim_after_minutes=0))
    n = Driver(never, t(never, "2026-11-24T10:05"))
    n.run_until(t(never, "2026-11-24T10:55"))
    assert n.brightness() == "normal"


def test_night_is_off_or_a_dim_clock_as_configured() -> None:
    for night, expected in (("off", "off"), ("dim", "dim")):
        cfg = Config(display=Display(night=night))
        d = Driver(cfg, t(cfg, "2026-11-24T22:30"))
        d.run_until(t(cfg, "2026-11-25T02:14:30"))
        assert d.brightness() == expected
        s = d.screen()
        assert isinstance(s, sc.Idle) and s.night and s.clock == ("02:14" if night == "dim" else s.clock)
        assert d.sounds() == [] and d.led() == "off"


def test_prompt_shows_the_first_exercise_picture_and_the_session_length() -> None:
    cfg = Config(routine_at=(time(9),))
    d = Driver(cfg, t(cfg, "2026-11-24T08:58"))
    d.run_until(t(cfg, "2026-11-24T09:00:05"))
    p = d.screen()
    assert isinstance(p, sc.Prompt)
    assert (p.kind, p.exercise, p.detail, p.icon, p.minutes) == ("routine", "Full routine", "3 exercises", "foot", 9)
