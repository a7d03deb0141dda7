"""Exercise kinds as data: a config names its exercises' kinds, or has them told from the name, never silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from bedside.core import config, exercises, guide
from bedside.core.config import Exercise


def parse(**exercise: object) -> config.Config:
    return config.parse({"hourly": {"exercises": [exercise]}})


def test_a_kind_given_is_used_whatever_the_name() -> None:
    cfg = parse(name="Flexing", reps=5, kind="ankle_pump", hold_seconds=2)
    assert cfg.hourly_exercises[0].kind == "ankle_pump" and not cfg.warnings
    steps = guide.plan(cfg.hourly_exercises)
    assert [s.text for s in steps[1:3]] == ["Toes up", "Toes down"] and steps[0].icon == "foot"


def test_an_unknown_kind_is_an_error_naming_the_kinds() -> None:
    with pytest.raises(config.ConfigError, match=r"\[hourly\] exercises #1 kind: must be one of ankle_pump, "):
        parse(name="Calf raises", reps=5, kind="calf")


def test_a_config_without_kinds_has_them_told_from_the_name_with_a_warning() -> None:
    cfg = parse(name="Quad sets", reps=5)
    assert cfg.hourly_exercises[0].kind == "quad_set"
    assert cfg.warnings == ('[hourly] exercises #1: no kind; taken as "quad_set" from the name \'Quad sets\' '
                            '(add kind = "quad_set")',)


def test_calf_raises_are_not_silently_guided_as_something_else() -> None:
    cfg = parse(name="Calf raises", reps=5, hold_seconds=2)
    assert cfg.hourly_exercises[0].kind == "other"
    assert len(cfg.warnings) == 1 and "'Calf raises' tells none" in cfg.warnings[0] and "add kind" in cfg.warnings[0]
    # Guided by its own name, held, then relax; it has no picture rather than a wrong one.
    steps = guide.plan(cfg.hourly_exercises)
    assert [(s.text, s.hold, s.icon) for s in steps[1:3]] == [("Calf raises", True, None), ("Relax", False, None)]


def test_the_shipped_kinds_guide_as_they_always_have() -> None:
    pump = guide.plan((Exercise("Ankle pumps", 1, hold_seconds=3),))
    assert [(s.text, s.seconds, s.hold, s.icon) for s in pump[1:]] == [
        ("Toes up", 2.0, False, "foot_up"), ("Toes down", 3.0, True, "foot_down")]
    circle = guide.plan((Exercise("Ankle circles", 1, kind="ankle_circle"),))
    assert [(s.text, s.seconds) for s in circle[1:]] == [("Circle out", 3.0), ("Circle in", 3.0)]
    assert set(exercises.KINDS) >= {"ankle_pump", "quad_set", "glute_set", "ankle_circle", "other"}


def test_config_check_shows_the_warning_and_still_passes(tmp_path: Path) -> None:
    from tests.rigs.cli import run

    f = tmp_path / "bedside.toml"
    f.write_text('[hourly]\nexercises = [{ name = "Calf raises", reps = 5 }]\n', encoding="utf-8")
    r = run("config", "check", str(f))
    assert r.returncode == 0, r.stderr
    assert "warning: [hourly] exercises #1: no kind, and the name 'Calf raises' tells none" in r.stdout
