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


def test_a_power_cut_in_an_extra_session_records_it_interrupted_with_the_reps_known() -> None:
    from datetime import timedelta

    from bedside.core import guide
    from bedside.core.extra import VARIATIONS

    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:20"))
    d.press(t(cfg, "2026-11-24T10:30"))
    d.press(t(cfg, "2026-11-24T10:30:03"))
    d.run_until(t(cfg, "2026-11-24T10:31"))         # a minute into the extra set: the power goes
    beat = t(cfg, "2026-11-24T10:30:50")
    d.restart(timedelta(minutes=4), alive=beat)
    (_, rec), = d.records("extra")
    assert rec.session == "2026-11-24T10:30:03 extra"
    steps = guide.plan(VARIATIONS["pumps"][0])
    assert rec.data["interrupted"] is True and rec.data["reason"] == "power_loss" and rec.data["early"] is True
    assert rec.data["reps"] == guide.reps_by(steps, 47.0) > 0 and rec.data["planned"] == 20
    assert rec.data["started"].startswith("2026-11-24T10:30:03") and rec.data["exercises"] == ["Ankle pumps"]
    # Never due, never missed: the day's count is unchanged, and no second record follows.
    d.run_until(t(cfg, "2026-11-24T10:59"))
    assert len(d.records("extra")) == 1 and not d.records("interrupted")
    assert [r.session for _, r in d.records("missed")] == ["2026-11-24T10:00 hourly"]   # the prompt before it


def test_an_extra_session_recorded_before_the_power_cut_is_not_recorded_again() -> None:
    from datetime import timedelta

    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:20"))
    d.press(t(cfg, "2026-11-24T10:30"))
    d.press(t(cfg, "2026-11-24T10:30:03"))
    d.run_until(t(cfg, "2026-11-24T10:45"))
    d.restart(timedelta(minutes=4))
    (_, rec), = d.records("extra")
    assert "interrupted" not in rec.data and rec.data["reps"] == 20
