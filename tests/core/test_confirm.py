"""Physical presence: a change asked for over the serial link waits for a press at the unit."""

from __future__ import annotations

from datetime import timedelta

from bedside.core import config
from bedside.core import screens as sc
from bedside.core.events import Confirm, Withdraw
from bedside.display import render
from tests.conftest import local
from tests.rigs.driver import Driver


def ask(token: int = 1, seconds: float = 60.0) -> Confirm:
    return Confirm(token, "Set clock?", "", "", clock=local(config.Config(), "2026-11-24T14:05:00"), seconds=seconds)


def test_a_short_press_confirms_and_is_recorded(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T10:20"))
    d.send(local(cfg, "2026-11-24T10:30"), ask())
    screen = d.screen()
    assert isinstance(screen, sc.Confirm)
    assert (screen.title, screen.line1, screen.line2, screen.seconds_left) == \
        ("Set clock?", "Tue 24 Nov 2026", "14:05:00", 60)
    d.run_until(local(cfg, "2026-11-24T10:30:07"))
    assert d.screen() == sc.Confirm("Set clock?", "Tue 24 Nov 2026", "14:05:07", 53)   # the new time moves on
    d.press(local(cfg, "2026-11-24T10:30:10"))
    d.run_until(local(cfg, "2026-11-24T10:30:12"))
    assert d.decisions() == [(1, "confirmed")]
    presses = [r.data for _, r in d.records("press")]
    assert presses[-1]["action"] == "confirm"
    assert not isinstance(d.screen(), sc.Confirm)


def test_a_long_press_cancels_and_no_press_times_out(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T10:20"))
    d.send(local(cfg, "2026-11-24T10:30"), ask(1))
    d.press(local(cfg, "2026-11-24T10:30:05"), 2.5)
    d.run_until(local(cfg, "2026-11-24T10:30:07.200"))
    assert d.screen() == sc.Hint("Let go to", "cancel")
    d.run_until(local(cfg, "2026-11-24T10:30:09"))
    d.send(local(cfg, "2026-11-24T10:31"), ask(2, seconds=30))
    d.run_until(local(cfg, "2026-11-24T10:32"))
    assert d.decisions() == [(1, "cancelled"), (2, "timeout")]
    assert [r.data["action"] for _, r in d.records("press")] == ["cancel"]


def test_a_press_that_began_before_the_question_does_not_confirm(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T10:20"))
    d.press(local(cfg, "2026-11-24T10:29:59"), 1.0)   # held across the moment the question appears
    d.send(local(cfg, "2026-11-24T10:30"), ask(1, seconds=10))
    d.run_until(local(cfg, "2026-11-24T10:31"))
    assert d.decisions() == [(1, "timeout")]


def test_a_patient_mid_exercise_is_not_interrupted(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T10:58"))
    d.press(local(cfg, "2026-11-24T11:00:05"))
    d.send(local(cfg, "2026-11-24T11:00:30"), ask(1))
    assert d.decisions() == [(1, "busy")]
    assert isinstance(d.screen(), sc.Guide | sc.Intro)


def test_a_prompt_waits_behind_the_question_and_comes_back(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T10:58"))
    d.send(local(cfg, "2026-11-24T11:00:10"), ask(1))
    assert isinstance(d.screen(), sc.Confirm)
    d.press(local(cfg, "2026-11-24T11:00:20"))
    d.run_until(local(cfg, "2026-11-24T11:00:21"))
    assert d.decisions() == [(1, "confirmed")]
    assert isinstance(d.screen(), sc.Prompt)        # the press confirmed; it did not start the session
    assert d.records("done") == []


def test_withdrawn_and_superseded_questions(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T10:20"))
    d.send(local(cfg, "2026-11-24T10:30"), ask(1))
    d.send(local(cfg, "2026-11-24T10:30:05"), ask(2))
    d.send(local(cfg, "2026-11-24T10:30:06"), Withdraw(2))
    d.send(local(cfg, "2026-11-24T10:30:07"), Withdraw(9))
    assert d.decisions() == [(1, "superseded"), (2, "withdrawn")]
    assert not isinstance(d.screen(), sc.Confirm)


def test_at_night_the_question_lights_the_dimmed_display(cfg: config.Config) -> None:
    d = Driver(cfg, local(cfg, "2026-11-24T23:00"))
    d.run_until(local(cfg, "2026-11-24T23:30"))
    assert d.brightness() == "off"
    d.send(local(cfg, "2026-11-24T23:40"), ask(1))
    assert d.brightness() == "dim" and isinstance(d.screen(), sc.Confirm)
    assert not [s for s in d.sounds() if s[0] >= local(cfg, "2026-11-24T23:00")]
    d.run_until(local(cfg, "2026-11-24T23:40") + timedelta(minutes=2))
    assert d.brightness() == "off"


def test_the_confirmation_screen_renders() -> None:
    img = render.render(sc.Confirm("Set clock?", "Tue 24 Nov 2026", "14:05:07", 53))
    assert img.size == (128, 64) and img.getbbox() is not None
    assert img.tobytes() != render.render(sc.Confirm("Set clock?", "Tue 24 Nov 2026", "14:05:08", 53)).tobytes()
