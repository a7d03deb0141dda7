"""Exercise on demand: a press with nothing due offers more; it is recorded ``extra``, done and never due."""

from __future__ import annotations

from datetime import datetime

from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.events import Pause
from bedside.core.views import today
from tests.rigs.driver import Driver


def t(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


def test_a_press_offers_more_a_second_press_guides_an_extra_set_recorded_extra() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:20"))
    d.press(t(cfg, "2026-11-24T10:30"))
    d.run_until(t(cfg, "2026-11-24T10:30:01"))
    p = d.screen()
    assert isinstance(p, sc.Progress) and p.offer
    before = today(cfg, d.state, d.now)
    d.press(t(cfg, "2026-11-24T10:30:03"))
    d.run_until(t(cfg, "2026-11-24T10:30:05"))
    assert isinstance(d.screen(), sc.Intro)
    d.run_until(t(cfg, "2026-11-24T10:45"))
    (_, rec), = d.records("extra")
    assert rec.session == "2026-11-24T10:30:03 extra"
    assert (rec.data["reps"], rec.data["planned"], rec.data["early"], rec.data["exercises"]) == \
        (20, 20, False, ["Ankle pumps"])
    assert not d.records("done") and today(cfg, d.state, d.now)[:2] == before[:2]    # done, never due
    assert [r.data["action"] for _, r in d.records("press")] == ["progress", "extra"]
    assert "done" in [s for _, s in d.sounds()]


def test_a_hold_on_the_offer_guides_the_circles_and_alphabet() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:20"))
    d.press(t(cfg, "2026-11-24T10:30"))
    d.press(t(cfg, "2026-11-24T10:30:03"), 2.5)
    d.run_until(t(cfg, "2026-11-24T10:30:05"))
    assert d.screen() == sc.Hint("Let go for", "circles")
    d.run_until(t(cfg, "2026-11-24T10:36"))
    screens = [s for _, s in d.screens()]
    assert sc.Tip("Toe alphabet", "Write A to E with your big toe") in screens
    assert any(isinstance(s, sc.Guide) and s.instruction == "Trace a letter" for s in screens)
    (_, rec), = d.records("extra")
    assert rec.data["exercises"] == ["Toe circles", "Toe alphabet"] and rec.data["reps"] == 20


def test_no_offer_at_night_or_during_a_pause() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T23:00"))
    d.press(t(cfg, "2026-11-24T23:10"))
    d.run_until(t(cfg, "2026-11-24T23:10:01"))
    night = d.screen()
    assert isinstance(night, sc.Progress) and not night.offer
    d.send(t(cfg, "2026-11-25T10:20"), Pause("2h", via="serial"))
    d.press(t(cfg, "2026-11-25T10:30"))
    d.press(t(cfg, "2026-11-25T10:30:03"))
    d.run_until(t(cfg, "2026-11-25T10:31"))
    assert not d.records("extra") and not any(isinstance(s, sc.Intro) for _, s in d.screens())
