"""Sets with a rest between, a tip before an exercise, and the regimen of the brief by default."""

from __future__ import annotations

from datetime import date, datetime

from bedside.core import episodes, guide
from bedside.core import screens as sc
from bedside.core.config import Config, Exercise
from bedside.core.episodes import Episode
from tests.rigs.driver import Driver


def t(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


def test_two_sets_with_a_rest_between_counting_set_1_of_2() -> None:
    ex = Exercise("Quad sets", 10, hold_seconds=5, kind="quad_set", sets=2, tip="Leg straight on the bed")
    steps = guide.plan((ex,))
    assert steps[0].tip and steps[0].text == "Leg straight on the bed" and steps[0].seconds == guide.TIP_S
    intros = [s for s in steps if s.intro]
    assert [(s.set, s.sets) for s in intros] == [(1, 2), (2, 2)]
    (rest,) = [s for s in steps if s.rest]
    assert rest.seconds == guide.REST_S and rest.set == 2
    assert steps.index(rest) == steps.index(intros[1]) - 1
    assert guide.total_reps(steps) == 20


def test_the_guide_shows_the_tip_the_sets_and_the_rest() -> None:
    ex = Exercise("Glute sets", 2, hold_seconds=1, kind="glute_set", sets=2, tip="Lie flat")
    cfg = Config(hourly_exercises=(ex,))
    d = Driver(cfg, t(cfg, "2026-11-24T09:59"))
    d.press(t(cfg, "2026-11-24T10:00:05"))
    d.run_until(t(cfg, "2026-11-24T10:01:30"))
    shown = [s for _, s in d.screens() if isinstance(s, sc.Tip | sc.Intro | sc.Rest)]
    assert shown == [sc.Tip("Glute sets", "Lie flat"), sc.Intro("Glute sets", None, 2, 1, 1, "squeeze", 1, 2),
                     sc.Rest("Glute sets", 2, 2), sc.Intro("Glute sets", None, 2, 1, 1, "squeeze", 2, 2)]
    (_, done), = d.records("done")
    assert (done.data["reps"], done.data["planned"], done.data["early"]) == (4, 4, False)


def test_the_default_regimen_follows_the_brief() -> None:
    cfg = Config()
    routine = {e.name: e for e in cfg.routine_exercises}
    assert (routine["Quad sets"].reps, routine["Quad sets"].sets, routine["Quad sets"].hold_seconds) == (10, 2, 5)
    assert (routine["Glute sets"].reps, routine["Glute sets"].sets, routine["Glute sets"].hold_seconds) == (10, 2, 5)
    assert (routine["Ankle pumps"].reps, routine["Ankle pumps"].per_foot) == (20, True)
    ep = Episode("E2026-0042", date(2026, 11, 26), "standard")
    pre = episodes.rules(cfg, ep, date(2026, 11, 24))                 # admitted two days before surgery
    assert pre.every_minutes == 0 and pre.routine_at == cfg.routine_at
    assert [(e.name, e.reps, e.per_foot) for e in pre.routine_exercises] == [("Ankle pumps", 20, True)]
    day1 = episodes.rules(cfg, ep, date(2026, 11, 27))
    assert day1.every_minutes == 60 and len(day1.routine_exercises) == 3
    assert episodes.rules(cfg, ep, date(2026, 11, 29)).every_minutes == 0     # day 3: the routine only
