from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.core import guide, planner
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.state import plan_episode
from tests.conftest import budget
from tests.rigs.driver import Driver


def t(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


def day(cfg: Config, start: str = "2026-11-24T06:30") -> Driver:
    return Driver(cfg, t(cfg, start))


# --- a whole day ----------------------------------------------------------------------

def test_unanswered_day_prompts_repeats_and_misses_every_session() -> None:
    cfg = Config()
    d = day(cfg)
    d.run_until(t(cfg, "2026-11-25T06:30"))
    prompts = d.records("prompt")
    assert [r.session for _, r in prompts] == [s.id for s in planner.sessions_between(
        cfg, t(cfg, "2026-11-24T00:00"), t(cfg, "2026-11-25T00:00"))]
    assert len(prompts) == 15
    # Each: two soft repeats (10 and 20 minutes), then missed at 30 minutes.
    assert len(d.records("repeat")) == 30
    missed = d.records("missed")
    assert len(missed) == 15
    for (pt, p), (mt, m) in zip(prompts, missed, strict=True):
        assert m.session == p.session and m.data["reason"] == "unanswered"
        assert mt - pt == timedelta(minutes=30)
    assert d.led() == "off"  # night: LED dark


def test_sounds_only_inside_the_awake_window_and_spaced() -> None:
    cfg = Config()
    d = day(cfg)
    d.run_until(t(cfg, "2026-11-26T06:30"))
    sounds = d.sounds()
    assert sounds
    for when, _ in sounds:
        assert planner.is_awake(cfg, when), f"sound at night: {when}"
    chimes = [w for w, s in sounds if s in ("prompt", "repeat")]
    assert all(b - a >= timedelta(seconds=15) for a, b in itertools.pairwise(chimes))


def test_idle_wakes_at_most_once_a_minute() -> None:
    cfg = Config()
    d = day(cfg, "2026-11-24T06:30")
    d.run_until(t(cfg, "2026-11-25T06:30"))
    # A day has 1440 minutes; repeats and prompts add a few wakes but never per-second polling.
    assert d.wakeups <= 1440 + 100


def test_short_press_runs_the_guide_and_logs_done_with_timing() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:02"))
    d.run_until(t(cfg, "2026-11-24T07:10"))
    (_, done), = d.records("done")
    assert done.session == "2026-11-24T07:00 hourly"
    assert done.data["reps"] == done.data["planned"] == 20
    assert done.data["early"] is False
    assert done.data["late_min"] == 2
    assert done.data["prompt_to_start_s"] == 120
    sounds = [s for _, s in d.sounds()]
    assert sounds.count("tick") == 19 and sounds[-1] == "done"
    # The guide walks left foot then right foot, rep by rep.
    guides = [s for _, s in d.screens() if isinstance(s, sc.Guide)]
    assert guides[0].foot == "left" and guides[0].rep == 1 and guides[0].instruction == "Toes up"
    assert guides[-1].foot == "right" and guides[-1].rep == 10
    holds = [s for s in guides if s.hold_left is not None]
    assert {s.hold_left for s in holds} == {1, 2, 3}
    assert any(isinstance(s, sc.Done) for _, s in d.screens())
    # Not prompted again.
    d.run_until(t(cfg, "2026-11-24T08:00"))
    assert d.sessions("prompt") == ["2026-11-24T07:00 hourly", "2026-11-24T08:00 hourly"]


def test_press_during_guide_ends_it_early_with_reps_completed() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:01"))
    # Intro 3 s, then 5 s per rep: after 3 + 4*5 + 1 s, four reps are complete.
    d.press(t(cfg, "2026-11-24T07:01:24.3"))
    d.run_until(t(cfg, "2026-11-24T07:05"))
    (_, done), = d.records("done")
    assert done.data["early"] is True and done.data["reps"] == 4 and done.data["planned"] == 20
    actions = [r.data["action"] for _, r in d.records("press")]
    assert actions == ["start", "stop"]


def test_long_press_snoozes_until_max_then_refuses() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:01"), 2.5)
    d.run_until(t(cfg, "2026-11-24T07:05"))
    assert isinstance(d.screen(), sc.Snoozed) and d.screen().until == "07:11"  # type: ignore[attr-defined]
    (_, sn), = d.records("snooze")
    assert sn.data["n"] == 1
    d.run_until(t(cfg, "2026-11-24T07:11:30"))
    assert d.records("repeat")[-1][1].data.get("after_snooze") is True
    d.press(t(cfg, "2026-11-24T07:12"), 3)
    d.press(t(cfg, "2026-11-24T07:30"), 3)   # third long press: refused
    d.run_until(t(cfg, "2026-11-24T07:31"))
    assert len(d.records("snooze")) == 2
    assert d.records("press")[-1][1].data["action"] == "snooze_refused"
    # Snoozing pauses the missed count: 30 min + 2 x 10 min of snooze.
    d.run_until(t(cfg, "2026-11-24T08:00"))
    (mt, m), = d.records("missed")
    assert m.data["snoozes"] == 2
    assert mt == t(cfg, "2026-11-24T07:50").astimezone(UTC)


def test_hold_shows_release_hint_then_nurse_screen() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:01"), 7)
    d.run_until(t(cfg, "2026-11-24T07:01:03"))
    assert d.screen() == sc.Hint("Let go to", "snooze", "zz")
    d.run_until(t(cfg, "2026-11-24T07:01:06"))
    assert isinstance(d.screen(), sc.Nurse)
    d.run_until(t(cfg, "2026-11-24T07:01:10"))
    # A nurse hold neither snoozes nor starts anything.
    assert d.records("snooze") == [] and d.records("done") == []
    assert d.records("press")[-1][1].data["kind"] == "nurse"


def test_press_when_nothing_is_due_shows_progress_and_is_logged_as_such() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:02"))
    d.run_until(t(cfg, "2026-11-24T07:30"))
    d.press(t(cfg, "2026-11-24T07:40"))
    d.run_until(t(cfg, "2026-11-24T07:40:02"))
    assert d.screen() == sc.Progress(1, 1, ("done",) + ("later",) * 14, "08:00", "Ankle pumps", offer=True)
    (_, last) = d.records("press")[-1]
    assert last.data["action"] == "progress" and last.session is None
    d.run_until(t(cfg, "2026-11-24T07:41"))
    assert isinstance(d.screen(), sc.Idle)
    assert len(d.records("done")) == 1


def test_idle_screen_counts_today() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T08:01"))
    d.run_until(t(cfg, "2026-11-24T08:45"))
    s = d.screen()
    assert isinstance(s, sc.Idle)
    assert (s.clock, s.next_time, s.next_what, s.done, s.due) == ("08:45", "09:00", "Routine", 1, 2)
    assert s.marks[:3] == ("missed", "done", "later")
    assert s.status is None
    assert d.led() == "done"  # the miss at 07:30 was followed by a completed session


def test_led_shows_due_then_missed_until_next_done() -> None:
    cfg = Config()
    d = day(cfg)
    d.run_until(t(cfg, "2026-11-24T06:59"))
    assert d.led() == "off"     # nothing offered yet today
    d.run_until(t(cfg, "2026-11-24T07:05"))
    assert d.led() == "due"
    d.run_until(t(cfg, "2026-11-24T07:45"))
    assert d.led() == "missed"
    s = d.screen()
    assert isinstance(s, sc.Idle) and s.status == "missed"   # the display corner says it too
    d.press(t(cfg, "2026-11-24T08:01"))
    d.run_until(t(cfg, "2026-11-24T08:02"))
    assert d.led() == "missed"  # still guiding (an hourly guide takes 106 s)
    d.run_until(t(cfg, "2026-11-24T08:10"))
    assert d.led() == "done"
    d.run_until(t(cfg, "2026-11-24T22:30"))
    assert d.led() == "off"     # dark at night, whatever the day was


def test_night_is_dark_and_a_press_lights_it_briefly() -> None:
    cfg = Config()
    d = day(cfg, "2026-11-24T22:30")
    d.run_until(t(cfg, "2026-11-24T23:00"))
    assert d.brightness() == "off"
    d.press(t(cfg, "2026-11-24T23:00:10"))
    d.run_until(t(cfg, "2026-11-24T23:00:12"))
    assert d.brightness() == "dim" and isinstance(d.screen(), sc.Progress)
    d.run_until(t(cfg, "2026-11-24T23:01"))
    assert d.brightness() == "off"
    assert d.sounds() == []


def test_deferred_routine_is_recorded_deferred_and_offered_once_at_opening() -> None:
    cfg = Config(routine_at=(time(6, 0), time(23, 0)))
    d = day(cfg, "2026-11-24T05:00")
    d.run_until(t(cfg, "2026-11-25T07:45"))
    deferred = d.records("deferred")
    # The 07:00 hourly session shares the held-over routine's prompt: recorded as merged into it.
    assert [r.session for _, r in deferred] == ["2026-11-24T06:00 routine", "2026-11-24T07:00 hourly",
                                                "2026-11-24T23:00 routine", "2026-11-25T06:00 routine",
                                                "2026-11-25T07:00 hourly"]
    assert deferred[1][1].data["merged_into"] == "2026-11-24T06:00 routine"
    deferred = [x for x in deferred if x[1].session and x[1].session.endswith("routine")]
    assert deferred[0][0] == t(cfg, "2026-11-24T06:00").astimezone(UTC)   # held at its time, silently
    assert deferred[1][1].data["merged_into"] == "2026-11-25T06:00 routine"
    prompts = d.records("prompt")
    assert prompts[0][1].session == "2026-11-24T06:00 routine" and prompts[0][1].data["deferred"] is True
    assert "2026-11-24T07:00 hourly" not in d.sessions("prompt")  # replaced by the deferred routine
    assert d.sessions("prompt").count("2026-11-25T06:00 routine") == 1
    assert all(not r.session.endswith("23:00 routine") for _, r in d.records("missed") if r.session)


def test_two_routines_in_a_dst_gap_are_one_prompt_and_both_recorded() -> None:
    # New York, 8 March 2026: 02:00 and 02:01 do not exist; both happen at 03:00 EDT.
    cfg = Config(timezone="America/New_York", routine_at=(time(2, 0), time(2, 1)), hourly_every_minutes=0,
                 awake_start=time(0, 0), awake_end=time(0, 0))
    d = day(cfg, "2026-03-08T01:00")
    d.run_until(t(cfg, "2026-03-08T04:00"))
    assert d.sessions("prompt") == ["2026-03-08T02:01 routine"]
    merged = d.records("deferred")
    assert [(r.session, r.data["merged_into"]) for _, r in merged] == [
        ("2026-03-08T02:00 routine", "2026-03-08T02:01 routine")]
    assert d.sessions("missed") == ["2026-03-08T02:01 routine"]


# --- debounce and the stuck button -----------------------------------------------------

def test_bounce_never_double_counts() -> None:
    cfg = Config()
    d = day(cfg)
    bounce = [(0.0, True), (0.002, False), (0.004, True), (0.007, False), (0.009, True),
              (0.300, False), (0.302, True), (0.305, False)]
    d.bounce(t(cfg, "2026-11-24T07:02"), bounce)
    d.run_until(t(cfg, "2026-11-24T07:02:30"))
    presses = d.records("press")
    assert len(presses) == 1 and presses[0][1].data["action"] == "start"
    assert presses[0][1].data["held_s"] == pytest.approx(0.3, abs=0.01)


def test_release_hidden_in_bounce_is_still_seen() -> None:
    cfg = Config()
    d = day(cfg)
    # A very short tap: the release falls inside the debounce window of the press.
    d.bounce(t(cfg, "2026-11-24T07:02"), [(0.0, True), (0.020, False)])
    d.run_until(t(cfg, "2026-11-24T07:02:05"))
    assert len(d.records("press")) == 1
    assert d.state.button.down is False


def test_stuck_button_is_ignored_logged_and_confirms_nothing() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:05"), 300)
    d.run_until(t(cfg, "2026-11-24T07:12"))
    faults = d.records("fault")
    assert faults and faults[0][1].data["part"] == "button"
    assert d.records("snooze") == [] and d.records("done") == []
    assert [r.type for _, r in d.records() if r.type in ("fault_cleared",)] == ["fault_cleared"]
    assert isinstance(d.screen(), sc.Prompt)


# --- restarts, outages and clock trouble -------------------------------------------------

def test_restart_mid_prompt_keeps_the_prompt_up_without_reprompting() -> None:
    cfg = Config()
    d = day(cfg)
    d.run_until(t(cfg, "2026-11-24T07:12"))
    d.restart(timedelta(seconds=40))
    assert isinstance(d.screen(), sc.Prompt)
    assert d.records("power_loss")
    d.run_until(t(cfg, "2026-11-24T07:40"))
    assert d.sessions("prompt") == ["2026-11-24T07:00 hourly"]
    (mt, _m), = d.records("missed")
    assert mt == t(cfg, "2026-11-24T07:30").astimezone(UTC)
    # The 10-minute repeat rhythm carries on from before the restart.
    assert [w.astimezone(cfg.tz).strftime("%H:%M") for w, _ in d.records("repeat")] == ["07:10", "07:20"]


def test_restart_after_done_does_not_prompt_again() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:01"))
    d.run_until(t(cfg, "2026-11-24T07:10"))
    d.restart(timedelta(minutes=1), clean=True)
    d.run_until(t(cfg, "2026-11-24T07:59"))
    assert d.sessions("prompt") == ["2026-11-24T07:00 hourly"]
    assert d.records("power_loss") == []


def _guiding(cfg: Config, until: str) -> Driver:
    """The 07:00 session started at 07:01 and its guide under way at ``until``."""
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:01"))
    d.run_until(t(cfg, until))
    return d


def test_power_cut_mid_guide_is_recorded_interrupted_never_unanswered() -> None:
    cfg = Config()
    d = _guiding(cfg, "2026-11-24T07:02")      # a minute into the guide: the power goes
    d.restart(timedelta(minutes=3))
    (_, cut), = d.records("interrupted")
    assert cut.session == "2026-11-24T07:00 hourly"
    assert cut.data["reason"] == "power_loss" and cut.data["reps"] == "unknown" and cut.data["planned"] == 20
    assert cut.data["started"].startswith("2026-11-24T07:01:00")
    d.run_until(t(cfg, "2026-11-24T07:59"))
    # Not prompted again, never missed; the unit counts it as begun.
    assert d.sessions("prompt") == ["2026-11-24T07:00 hourly"] and d.records("missed") == []
    idle = d.screen()
    assert isinstance(idle, sc.Idle) and idle.marks[0] == "done"


def test_interrupted_guide_knows_the_reps_up_to_the_last_heartbeat() -> None:
    cfg = Config()
    d = _guiding(cfg, "2026-11-24T07:02")
    steps = guide.plan(cfg.hourly_exercises)
    beat = t(cfg, "2026-11-24T07:03")
    d.restart(timedelta(minutes=3), alive=beat)
    (_, cut), = d.records("interrupted")
    assert cut.data["reps"] == guide.reps_by(steps, 120.0) > 0
    assert cut.data["reps_known_at"].startswith("2026-11-24T07:03")


def test_clean_stop_mid_guide_is_interrupted_by_the_unit_being_off() -> None:
    cfg = Config()
    d = _guiding(cfg, "2026-11-24T07:01:40")
    d.restart(timedelta(minutes=5), clean=True)
    (_, cut), = d.records("interrupted")
    assert cut.data["reason"] == "unit_off" and isinstance(cut.data["reps"], int)


def test_outage_resolves_sessions_offered_once_or_missed_for_power_loss() -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T07:01"))
    d.run_until(t(cfg, "2026-11-24T07:30"))
    d.restart(timedelta(hours=3, minutes=40))   # back at 11:10
    d.run_until(t(cfg, "2026-11-24T11:11"))
    missed = {r.session: r.data["reason"] for _, r in d.records("missed")}
    assert missed == {"2026-11-24T08:00 hourly": "power_loss", "2026-11-24T09:00 routine": "power_loss",
                      "2026-11-24T10:00 hourly": "power_loss"}
    (_pt, p), = [x for x in d.records("prompt") if x[1].session == "2026-11-24T11:00 hourly"]
    assert p.data["late_s"] == 600
    # Offered late, it keeps its original window: missed 30 minutes after its due time.
    d.run_until(t(cfg, "2026-11-24T11:40"))
    assert d.records("missed")[-1][1].session == "2026-11-24T11:00 hourly"
    assert d.records("missed")[-1][0] == t(cfg, "2026-11-24T11:30").astimezone(UTC)


def test_clock_behind_the_journal_is_distrusted() -> None:
    cfg = Config()
    d = day(cfg)
    d.run_until(t(cfg, "2026-11-24T09:00"))
    d.restart(timedelta(days=-400))
    assert d.state.time_quality == "distrusted"
    s = d.screen()
    assert isinstance(s, sc.Idle) and s.notice is not None and "set time" in s.notice
    assert any(r.data.get("part") == "clock" for _, r in d.records("fault"))


@pytest.mark.parametrize("jump", [timedelta(hours=1), timedelta(hours=-1), timedelta(days=3), timedelta(days=-3)])
def test_clock_jumps_never_double_or_silently_skip_a_prompt(jump: timedelta) -> None:
    cfg = Config()
    d = day(cfg)
    d.press(t(cfg, "2026-11-24T09:02"))
    d.run_until(t(cfg, "2026-11-24T10:40"))
    before_wall = d.now.wall
    d.jump_clock(jump)
    d.run_until(t(cfg, "2026-11-24T10:41") + jump)
    (_, cs), = d.records("clock_set")
    assert cs.data["jump_s"] == pytest.approx(jump.total_seconds(), abs=61)
    d.run_until(t(cfg, "2026-11-24T21:59") + jump)
    prompted = d.sessions("prompt")
    assert len(prompted) == len(set(prompted)), "a session was prompted twice"
    # Every session the unit's clock passed over is accounted for exactly once.
    resolved = Counter(d.sessions("done") + d.sessions("missed"))
    assert all(n == 1 for n in resolved.values())
    covered_from = min(before_wall, before_wall + jump) if jump < timedelta(0) else t(cfg, "2026-11-24T06:30")
    for s in planner.sessions_between(cfg, covered_from, d.now.wall - timedelta(minutes=31),
                                      plan_episode(cfg, d.state)):
        if s.merged_into is None and planner.is_awake(cfg, s.offer):
            assert resolved[s.id] == 1, f"{s.id} was skipped"
    if jump > timedelta(0):
        reasons = {r.data["reason"] for _, r in d.records("missed")}
        assert "clock_jump" in reasons or jump == timedelta(hours=1)


def test_forward_jump_offers_the_session_it_jumped_into() -> None:
    cfg = Config()
    d = day(cfg)
    d.run_until(t(cfg, "2026-11-24T08:45"))
    d.jump_clock(timedelta(minutes=30))   # 08:45 -> 09:15: the 09:00 routine is 15 minutes old
    d.run_until(t(cfg, "2026-11-24T09:16"))
    assert d.sessions("prompt")[-1] == "2026-11-24T09:00 routine"
    d.run_until(t(cfg, "2026-11-24T09:31"))
    (_, m) = d.records("missed")[-1]
    assert m.session == "2026-11-24T09:00 routine" and m.data["reason"] == "unanswered"


# --- a stateful property: random presses and clock trouble over two days -----------------

presses = st.lists(st.tuples(st.integers(0, 48 * 3600), st.sampled_from([0.1, 0.3, 1.0, 2.2, 3.0, 5.5])),
                   max_size=40)


@budget(25)
@given(presses, st.sampled_from(["Europe/London", "America/New_York", "Australia/Lord_Howe"]),
       st.sampled_from(["2026-11-24", "2026-03-28", "2026-10-24", "2026-04-04"]))
def test_property_invariants_hold_for_any_presses(ps: list[tuple[int, float]], tz: str, date: str) -> None:
    cfg = Config(timezone=tz)
    start = datetime.fromisoformat(date + "T05:00").replace(tzinfo=cfg.tz)
    d = Driver(cfg, start)
    for offset, held in ps:
        d.press(start + timedelta(seconds=offset), held)
    d.run_until(start + timedelta(hours=50))
    prompted = d.sessions("prompt")
    assert len(prompted) == len(set(prompted))
    finals = d.sessions("done") + d.sessions("missed")
    assert len(finals) == len(set(finals)), "a session resolved twice"
    assert set(finals) <= set(prompted) | set(d.sessions("deferred")) | {
        s.id for s in planner.sessions_between(cfg, start - timedelta(days=1), start + timedelta(hours=51))}
    for when, _ in d.sounds():
        assert planner.is_awake(cfg, when)
    for _, r in d.records("snooze"):
        assert r.data["n"] <= cfg.max_snoozes
    for _, r in d.records("done"):
        assert 0 <= r.data["reps"] <= r.data["planned"]
    # Every prompt is resolved within its window (+ snoozes), except possibly the last.
    for sid in prompted[:-1]:
        assert sid in finals


def test_the_next_frame_is_after_now_where_float_rounding_lands_on_a_frame() -> None:
    """A hold step's bar, the nurse screen's pages and a confirmation's countdown turn on a grid;
    the core's deadline must be after its own time, or the loop is woken at that instant for
    ever (a simulated day hung at 131072.05, 1.75 s into a step begun at 131070.3)."""
    from bedside.core import machine
    from bedside.core.events import Instant
    from bedside.core.state import Guiding, replace

    assert machine.next_on_grid(131070.3, 0.25, 131072.05) > 131072.05
    assert machine.next_on_grid(0.0, 0.25, 1.0) == 1.25 and machine.next_on_grid(0.0, 0.25, 1.1) == 1.25
    assert machine.next_on_grid(10.0, 6.0, 10.0) == 16.0 and machine.next_on_grid(0.0, 1.0, 2.5) == 3.0
    cfg = Config()
    d = day(cfg, "2026-11-24T08:59")
    d.press(t(cfg, "2026-11-24T09:00:30"))
    d.run_until(t(cfg, "2026-11-24T09:00:31"))
    a = d.state.active
    assert isinstance(a, Guiding)
    hold = next(i for i, s in enumerate(a.steps) if s.hold and s.seconds > 1.75)
    last = Instant(d.now.wall, 131072.05)
    st = replace(d.state, last=last, active=replace(a, index=hold, step_started=131070.3))
    assert machine.deadline(cfg, st) > last.mono


def _started(past: list[Any], at: str) -> list[str]:
    from bedside.core import restart
    from bedside.core.events import Instant, Record

    cfg = Config()
    _, fx = restart.start(cfg, past, Instant(t(cfg, at).astimezone(UTC), 50.0), time_quality="rtc",
                          version="test", boot="b")
    return [e.type for e in fx if isinstance(e, Record)]


def test_commissioning_and_work_with_the_daemon_stopped_are_not_a_power_cut() -> None:
    from bedside.core.events import Past

    cfg = Config()
    keys = Past(1, "seal_key", t(cfg, "2026-11-24T06:00"), data={"key_id": "k", "offline": True})
    # A first start after `keys init`: the journal holds only what commissioning wrote.
    assert "power_loss" not in _started([keys], "2026-11-24T06:05")
    # A clean stop, then a stick export and a new ward secret with the daemon stopped.
    run = [keys, Past(2, "start", t(cfg, "2026-11-24T06:05")), Past(3, "stop", t(cfg, "2026-11-24T18:00"),
                                                                      data={"reason": "SIGTERM"}),
           Past(4, "export", t(cfg, "2026-11-24T18:10"), data={"via": "stick", "offline": True}),
           Past(5, "secret_set", t(cfg, "2026-11-24T18:12"), data={"replaced": True})]
    assert "power_loss" not in _started(run, "2026-11-24T18:20")
    # A power cut, then commissioning work: the cut is still recorded, from the run's last record.
    cut = [*run[:2], *run[3:]]
    from bedside.core import restart
    from bedside.core.events import Instant, Record

    _, fx = restart.start(cfg, cut, Instant(t(cfg, "2026-11-24T18:20").astimezone(UTC), 50.0), time_quality="rtc",
                          version="test", boot="b")
    (lost,) = [e for e in fx if isinstance(e, Record) and e.type == "power_loss"]
    assert lost.data["last_seq"] == 2 and lost.data["last_known"].startswith("2026-11-24T06:05")
