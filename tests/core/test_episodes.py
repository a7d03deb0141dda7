"""Episodes (admit, discharge) and regimens that step down by post-operative day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.core import config, episodes, planner
from bedside.core import screens as sc
from bedside.core.config import Config, Exercise, Regimen, Stage
from bedside.core.episodes import Episode
from bedside.core.events import Admit, Discharge, Exported, Instant, Past, Record
from bedside.core.machine import step
from bedside.core.state import State
from bedside.journal.journal import Journal
from bedside.unit import simulate
from tests.conftest import budget
from tests.rigs.driver import Driver


def t(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


def send(d: Driver, event: Admit | Discharge | Exported) -> list[Record]:
    """Deliver a nurse's command now, as the daemon would; returns the records it made."""
    d.state, fx = step(d.cfg, d.state, event, d.now)
    d._record(fx)
    return [e for e in fx if isinstance(e, Record)]


def episode_of(d: Driver) -> Episode | None:
    return d.state.episode


def kinds_on(d: Driver, day: str) -> list[str]:
    return [sid.split()[1] for sid in d.sessions("prompt") if sid.startswith(day)]


# --- the regimen steps down ---------------------------------------------------------------

def test_standard_regimen_is_hourly_on_days_0_to_2_then_routine_only() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    (rec,) = send(d, Admit("E2026-0042", date(2026, 11, 22), None, via="test"))
    assert rec.type == "admit"
    assert dict(rec.data) == {"episode": "E2026-0042", "surgery": "2026-11-22", "regimen": "standard",
                              "day": 2, "via": "test"}
    d.run_until(t(cfg, "2026-11-26T06:30"))
    assert kinds_on(d, "2026-11-24") == ["hourly"] * 2 + ["routine"] + ["hourly"] * 9 + ["routine"] + ["hourly"] * 2
    assert kinds_on(d, "2026-11-25") == ["routine", "routine"]      # day 3: the routine only
    assert d.sessions("prompt")[-1] == "2026-11-25T19:00 routine"


def test_without_an_episode_the_default_steps_down_from_the_first_start_or_nothing_when_quiet() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    (_, start), = d.records("start")
    assert start.data["unadmitted_since"] == "2026-11-24"          # the first start at this bed is day 0
    d.run_until(t(cfg, "2026-11-26T12:00"))
    d.restart(after=timedelta(hours=1))                            # the count survives a restart
    d.run_until(t(cfg, "2026-11-29T06:30"))
    assert [len(kinds_on(d, f"2026-11-{n}")) for n in (24, 25, 27, 28)] == [15, 15, 2, 2]
    assert d.records("start")[-1][1].data["unadmitted_since"] == "2026-11-24"
    # A discharge leaves the bed empty and silent; a press says someone is there, and the
    # count starts again from the discharge.
    send(d, Admit("E2026-0042", date(2026, 11, 28), None))
    send(d, Discharge("E2026-0042"))
    d.run_until(t(cfg, "2026-11-29T12:00"))
    assert kinds_on(d, "2026-11-29") == [] and d.state.vacant
    d.press(t(cfg, "2026-11-29T12:10"))
    d.run_until(t(cfg, "2026-11-30T06:30"))
    assert len(kinds_on(d, "2026-11-29")) == 9 and d.state.unadmitted_since == date(2026, 11, 29)
    quiet = Config(without_episode="quiet")
    q = Driver(quiet, t(quiet, "2026-11-24T06:30"))
    q.run_until(t(quiet, "2026-11-25T06:30"))
    assert q.records("prompt") == [] and q.sounds() == []
    idle = q.screen()
    assert isinstance(idle, sc.Idle) and idle.next_time is None and idle.marks == ()


def test_days_before_surgery_follow_the_first_stage() -> None:
    cfg = Config(regimens=(Regimen("knee", (Stage(-14, hourly_every_minutes=0, routine_at=(time(10),)),
                                             Stage(0))),), default_regimen="knee")
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("K-77", date(2026, 11, 26), None))
    d.run_until(t(cfg, "2026-11-27T06:30"))
    assert d.sessions("prompt")[:2] == ["2026-11-24T10:00 routine", "2026-11-25T10:00 routine"]
    assert len(kinds_on(d, "2026-11-26")) == 15      # the day of surgery: hourly again


stage_lists = st.lists(
    st.builds(Stage, st.integers(-10, 20), st.sampled_from([None, 0, 30, 60, 120]),
              st.none(), st.sampled_from([None, (), (time(9),), (time(8), time(20))])),
    min_size=1, max_size=4, unique_by=lambda s: s.from_day).map(lambda ss: tuple(sorted(ss, key=lambda s: s.from_day)))


@budget(40)
@given(stage_lists, st.integers(-20, 30), st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata"]),
       st.sampled_from(["2026-03-27", "2026-10-24", "2026-11-24"]))
def test_property_each_day_has_exactly_the_sessions_of_its_stage(stages: tuple[Stage, ...], offset: int, tz: str,
                                                                 start: str) -> None:
    cfg = Config(timezone=tz, awake_start=time(0), awake_end=time(0), regimens=(Regimen("r", stages),),
                 default_regimen="r")
    first = date.fromisoformat(start)
    ep = Episode("E1", first - timedelta(days=offset), "r")
    for n in range(4):
        d = first + timedelta(days=n)
        day = episodes.post_op_day(ep, d)
        stage = max((s for s in stages if s.from_day <= day), key=lambda s: s.from_day, default=stages[0])
        every = cfg.hourly_every_minutes if stage.hourly_every_minutes is None else stage.hourly_every_minutes
        at = cfg.routine_at if stage.routine_at is None else stage.routine_at
        a = planner.to_instant(datetime.combine(d, time(0)), cfg.tz)
        b = planner.to_instant(datetime.combine(d + timedelta(days=1), time(0)), cfg.tz)
        found = planner.sessions_between(cfg, a, b, ep)
        routine = sorted(datetime.fromisoformat(s.id[:16]).time() for s in found if s.kind == planner.ROUTINE)
        assert routine == sorted(at)
        hourly = [s for s in found if s.kind == planner.HOURLY]
        if not every:
            assert hourly == []
        else:
            minutes = {datetime.fromisoformat(s.id[:16]).hour * 60 + datetime.fromisoformat(s.id[:16]).minute
                       for s in hourly}
            # Every slot of the day's interval is there, except where a routine stands in its place
            # or the clocks skip the time (a spring-forward gap).
            expected = {m for m in range(0, 1440, every)} - {x.hour * 60 + x.minute for x in at}
            assert minutes <= expected
            for m in expected - minutes:
                naive = datetime.combine(d, time(m // 60, m % 60))
                assert planner.local(planner.to_instant(naive, cfg.tz), cfg.tz) != naive, naive
        for s in found:
            assert s.exercises == (cfg.hourly_exercises if s.kind == planner.HOURLY else cfg.routine_exercises)


# --- admitting and discharging ------------------------------------------------------------

def test_discharge_settles_the_open_prompt_and_the_unit_returns_to_the_default() -> None:
    cfg = Config(without_episode="quiet")
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E2026-0042", date(2026, 11, 24), None))
    d.run_until(t(cfg, "2026-11-24T07:05"))
    recs = send(d, Discharge("E2026-0042", via="test"))
    assert [r.type for r in recs] == ["missed", "discharge"]
    assert recs[0].data["reason"] == "discharged" and recs[0].session == "2026-11-24T07:00 hourly"
    assert dict(recs[1].data) == {"episode": "E2026-0042", "day": 0, "via": "test"}
    assert d.screen() == sc.EpisodeChange("discharged", "E2026-0042")
    d.run_until(t(cfg, "2026-11-24T12:00"))
    assert d.sessions("prompt") == ["2026-11-24T07:00 hourly"]    # quiet between patients
    # The discharged patient's missed session is theirs, not the empty bed's: no "missed" walking past.
    assert d.led() == "off"
    idle = d.screen()
    assert isinstance(idle, sc.Idle) and idle.status is None


def test_after_a_discharge_the_light_speaks_only_of_sessions_since() -> None:
    cfg = Config()                                      # the default regimen runs between patients
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E1", date(2026, 11, 24), None))
    d.run_until(t(cfg, "2026-11-24T08:50"))              # 07:00 and 08:00 missed by the patient
    assert d.led() == "missed"
    send(d, Discharge(None))
    d.run_until(t(cfg, "2026-11-24T09:05"))
    assert d.led() == "off" and d.sessions("prompt")[-1] == "2026-11-24T08:00 hourly"   # an empty bed: quiet
    d.press(t(cfg, "2026-11-24T09:06"))                  # someone is there: the unadmitted sessions run
    d.run_until(t(cfg, "2026-11-24T10:05"))
    assert d.led() == "due"                              # the 10:00 prompt
    d.press(t(cfg, "2026-11-24T10:06"))
    d.run_until(t(cfg, "2026-11-24T10:30"))
    assert d.led() == "done"
    d.run_until(t(cfg, "2026-11-24T11:50"))
    assert d.led() == "missed"                           # its own misses still show


def test_discharge_during_a_guide_records_the_reps_done_first() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E9", date(2026, 11, 24), None))
    d.press(t(cfg, "2026-11-24T07:01"))
    d.run_until(t(cfg, "2026-11-24T07:01:30"))
    recs = send(d, Discharge(None))
    assert [r.type for r in recs] == ["done", "discharge"]
    assert recs[0].data["early"] is True and 0 < recs[0].data["reps"] < recs[0].data["planned"]


def test_a_new_admission_discharges_the_previous_patient_and_a_repeat_amends() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:30"))
    send(d, Admit("E1", date(2026, 11, 20), None))
    recs = send(d, Admit("E2", date(2026, 11, 24), None))
    assert [(r.type, r.data.get("episode"), r.data.get("reason")) for r in recs] == [
        ("discharge", "E1", "new admission"), ("admit", "E2", None)]
    (amend,) = send(d, Admit("E2", date(2026, 11, 23), None))
    assert amend.data["amended"] is True and amend.data["day"] == 1
    assert d.state.episode == Episode("E2", date(2026, 11, 23), "standard")


@pytest.mark.parametrize(("event", "problem"), [
    (Admit("Smith", date(2026, 11, 24)), "must contain a digit"),
    (Admit("Mrs Smith 1", date(2026, 11, 24)), "letters, digits"),
    (Admit("E1", date(2026, 11, 24), "hip"), "no regimen called 'hip'"),
    (Admit("E1", date(2024, 11, 24)), "more than a year ago"),
    (Admit("E1", date(2027, 11, 24)), "days ahead"),
    (Discharge(None), "no patient is admitted"),
])
def test_refused_commands_say_why_and_never_record_the_id(event: Admit | Discharge, problem: str) -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:30"))
    (rec,) = send(d, event)
    assert rec.type == "refused" and problem in rec.data["problem"]
    assert "Smith" not in str(rec.data)
    s = d.screen()
    assert isinstance(s, sc.EpisodeChange) and s.event == "refused" and "Smith" not in s.episode
    assert d.state.episode is None


def test_discharging_another_episode_is_refused() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T10:30"))
    send(d, Admit("E1", date(2026, 11, 24), None))
    (rec,) = send(d, Discharge("E2"))
    assert rec.type == "refused" and "not E2" in rec.data["problem"]
    assert d.state.episode is not None and d.state.episode.id == "E1"


def test_the_episode_survives_restarts_and_a_discharge_does_too() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E2026-0042", date(2026, 11, 21), None))
    d.restart(timedelta(minutes=5))
    start = d.records("start")[-1][1]
    assert start.data["episode"] == "E2026-0042" and start.data["surgery"] == "2026-11-21"
    assert d.state.episode == Episode("E2026-0042", date(2026, 11, 21), "standard")
    # Only the latest start restates it: the admission itself may be long gone from the recent records.
    d.log = [h for h in d.log if not (isinstance(h.effect, Record) and h.effect.type == "admit")]
    d.restart(timedelta(minutes=5), clean=True)
    assert d.state.episode is not None
    d.run_until(t(cfg, "2026-11-24T23:00"))
    assert kinds_on(d, "2026-11-24") == ["routine", "routine"]    # day 3 after a restart, too
    send(d, Discharge(None))
    d.restart(timedelta(minutes=5))
    assert episode_of(d) is None and "episode" not in d.records("start")[-1][1].data


def test_a_regimen_gone_from_the_config_runs_the_default_and_tells_the_nurse() -> None:
    hip = Config(regimens=(Regimen("hip", (Stage(0, hourly_every_minutes=0),)), *config.DEFAULT_REGIMENS))
    d = Driver(hip, t(hip, "2026-11-24T06:30"))
    send(d, Admit("E5", date(2026, 11, 19), "hip"))           # day 5
    d.run_until(t(hip, "2026-11-24T08:00"))
    assert d.records("prompt") == []
    d.cfg = Config()
    d.restart(timedelta(minutes=1))
    assert "regimen" in d.state.problems
    assert any(r.data.get("part") == "regimen" for _, r in d.records("fault"))
    d.run_until(t(hip, "2026-11-24T09:30"))
    assert d.sessions("prompt") == ["2026-11-24T09:00 routine"]


def test_counts_keep_sessions_done_before_an_admission_changed_the_plan() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    d.press(t(cfg, "2026-11-24T07:01"))
    d.press(t(cfg, "2026-11-24T08:01"))
    d.run_until(t(cfg, "2026-11-24T08:30"))
    send(d, Admit("E7", date(2026, 11, 10), None))     # day 14: routine only
    d.run_until(t(cfg, "2026-11-24T08:40"))
    s = d.screen()
    assert isinstance(s, sc.Idle)
    assert (s.done, s.due) == (2, 2)
    assert s.marks == ("done", "done", "later", "later")
    nurse = d.state
    from bedside.core.views import nurse_screen
    assert nurse_screen(cfg, nurse, d.now).today_done == 2


# --- the nurse screen -----------------------------------------------------------------------

def test_nurse_screen_shows_the_episode_and_last_download_and_returns_by_itself() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T09:40"))
    send(d, Admit("E2026-0042", date(2026, 11, 22), None))
    d.press(t(cfg, "2026-11-24T09:41"), 6)
    d.run_until(t(cfg, "2026-11-24T09:41:07"))
    n = d.screen()
    assert isinstance(n, sc.Nurse)
    assert (n.unit_id, n.episode, n.day, n.regimen, n.download, n.page) == (
        "ward7-bed12", "E2026-0042", 2, "standard", "never", 1)
    assert n.clock == "Tue 24 Nov 09:41"
    d.run_until(t(cfg, "2026-11-24T09:41:12"))
    assert d.screen() == n.__class__(**{**{k: getattr(n, k) for k in n.__slots__}, "page": 2})
    d.run_until(t(cfg, "2026-11-24T09:41:46"))
    assert isinstance(d.screen(), sc.Idle)                    # back by itself after two rounds of 3 pages
    (rec,) = send(d, Exported("usb", {"records": 120}))
    assert dict(rec.data) == {"records": 120, "via": "usb"}
    d.press(t(cfg, "2026-11-24T10:02"), 6)
    d.run_until(t(cfg, "2026-11-24T10:02:07"))
    n = d.screen()
    assert isinstance(n, sc.Nurse) and n.download == "24 Nov 09:41"


def test_the_patient_can_change_nothing_from_the_nurse_screen_without_a_deliberate_hold() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T07:00:30"))            # a prompt is up
    for at, held in (("07:01", 6), ("07:01:10", 2.5), ("07:01:15", 6), ("07:01:25", 0.3)):
        d.press(t(cfg, f"2026-11-24T{at}"), held)
    d.run_until(t(cfg, "2026-11-24T07:01:08"))
    assert isinstance(d.screen(), sc.Nurse)
    before = len(d.records())
    d.run_until(t(cfg, "2026-11-24T07:01:11"))
    assert isinstance(d.screen(), sc.Nurse)                   # held on the nurse screen: no snooze hint
    d.run_until(t(cfg, "2026-11-24T07:01:30"))
    # A press on the nurse screen offers the pause menu; only a hold on it pauses.
    assert [r.data["action"] for _, r in d.records("press")[-3:]] == ["dismiss", "nurse_screen", "pause_menu"]
    assert isinstance(d.screen(), sc.PauseMenu)
    d.run_until(t(cfg, "2026-11-24T07:01:45"))                # the menu closes by itself, changing nothing
    assert [r.type for _, r in d.records()[before:]] == ["press"] * 3   # no snooze, no start, no pause
    assert isinstance(d.screen(), sc.Prompt)


# --- the simulator plays the nurse's part -------------------------------------------------------

def test_scripted_admission_discharge_and_download_reach_the_journal(tmp_path: Path) -> None:
    cfg = Config()
    script = simulate.parse_script(
        "2026-11-24T08:30 admit E2026-0042 2026-11-22\n"
        "2026-11-24T09:10 export usb\n"
        "2026-11-25T11:00 discharge E2026-0042\n", cfg.tz)
    sim = simulate.build(cfg, tmp_path, t(cfg, "2026-11-24T08:00"), actions=script)
    sim.unit.run(until=t(cfg, "2026-11-25T12:00"))
    sim.close()
    j = Journal(tmp_path, cfg.tz, "reader", readonly=True)
    recs = list(j.records())
    j.close()
    types = [r["type"] for r in recs]
    assert types.count("admit") == 1 and types.count("discharge") == 1 and types.count("export") == 1
    admit = next(r for r in recs if r["type"] == "admit")
    assert (admit["episode"], admit["surgery"], admit["day"], admit["via"]) == (
        "E2026-0042", "2026-11-22", 2, "simulator")
    gone = types.index("discharge")
    day3 = [r["session"] for r in recs[:gone] if r["type"] == "prompt" and r["session"].startswith("2026-11-25")]
    assert day3 == ["2026-11-25T09:00 routine"]
    after = [r["session"] for r in recs[gone:] if r["type"] == "prompt"]
    assert after == []                                # an empty bed is quiet until an admission or a press


@pytest.mark.parametrize(("line", "message"), [
    ("2026-11-24T08:30 admit E1", "surgery date"),
    ("2026-11-24T08:30 admit E1 yesterday", "not a date"),
    ("2026-11-24T08:30 discharge E1 E2", "at most"),
    ("2026-11-24T08:30 export", "how the records left"),
])
def test_script_errors_for_nurse_actions_name_the_line(line: str, message: str) -> None:
    with pytest.raises(simulate.ScriptError, match=f"line 1.*{message}"):
        simulate.parse_script(line + "\n", Config().tz)


def test_exercise_names_must_be_drawable() -> None:
    with pytest.raises(config.ConfigError, match="characters the display cannot show"):
        config.parse({"hourly": {"exercises": [{"name": "Ankle ✓", "reps": 5}]}})
    assert config.parse({"hourly": {"exercises": [{"name": "Pédalage", "reps": 5}]}}).hourly_exercises == (
        Exercise("Pédalage", 5, kind="other"),)


# --- the hospital's numbers ---------------------------------------------------------------------

WARD = Config(hospital=config.Hospital(visit_system="https://hospital.example/ids/visit",
                                       mrn_system="https://hospital.example/ids/mrn",
                                       wristband=r"^V(?P<visit>[0-9]{6,12})\^(?P<mrn>[0-9]{6,10})$"))


def test_a_scanned_wristband_gives_the_visit_number_and_the_mrn_and_the_record_names_their_systems() -> None:
    d = Driver(WARD, t(WARD, "2026-11-24T06:30"))
    (rec,) = send(d, Admit("V20261124001^70012345", date(2026, 11, 22), None, via="test"))
    assert dict(rec.data) == {"episode": "20261124001", "surgery": "2026-11-22", "regimen": "standard", "day": 2,
                              "via": "test", "mrn": "70012345", "visit_system": "https://hospital.example/ids/visit",
                              "mrn_system": "https://hospital.example/ids/mrn"}
    assert d.state.episode is not None and d.state.episode.id == "20261124001"
    # Typed: the visit number alone, or with the MRN given apart; the unit never stores a name.
    (rec,) = send(d, Admit("20261124001", date(2026, 11, 22), None, via="test", mrn="70012345"))
    assert rec.data["mrn"] == "70012345" and rec.data["amended"] is True
    d2 = Driver(Config(), t(Config(), "2026-11-24T06:30"))
    (rec,) = send(d2, Admit("E2026-0042", date(2026, 11, 22), None, via="test"))
    assert "mrn" not in rec.data and "visit_system" not in rec.data        # a ward without [hospital]: as before


@pytest.mark.parametrize(("typed", "mrn", "says"), [
    ("V20261124001^Smith", None, "episode id must be"),            # not the wristband's form: taken as typed
    ("20261124001", "Smith", "MRN must be"),
    ("V20261124001^70012345", "Jones", "MRN must be"),
])
def test_names_are_refused_wherever_they_are_typed(typed: str, mrn: str | None, says: str) -> None:
    problem = episodes.admit_problem(WARD, typed, date(2026, 11, 22), None, date(2026, 11, 24), mrn)
    assert problem is not None and says in problem


def test_the_hospital_table_is_checked() -> None:
    ok = config.parse({"hospital": {"visit_system": "https://h.example/visit", "create_encounter": True}})
    assert ok.hospital.visit_system == "https://h.example/visit" and ok.hospital.create_encounter
    assert config.Config().fingerprint() == config.parse({}).fingerprint()
    with pytest.raises(config.ConfigError) as e:
        config.parse({"hospital": {"visit_system": "not a uri", "wristband": "(?P<name>x)", "create_patient": "yes",
                                   "mrn": "x"}})
    text = str(e.value)
    for says in ("[hospital] mrn: unknown key", "[hospital] visit_system: must be the hospital's URI",
                 "[hospital] wristband: must name the visit number's group", "[hospital] create_patient: must be"):
        assert says in text


def test_the_link_takes_the_mrn_after_the_other_words() -> None:
    from bedside.link import changes

    a = changes.parse_admit(("20261124001", "2026-11-22", "mrn=70012345"))
    assert (a.episode, a.regimen, a.mrn) == ("20261124001", None, "70012345")
    a = changes.parse_admit(("20261124001", "2026-11-22", "hip", "MRN=70012345"))
    assert (a.regimen, a.mrn) == ("hip", "70012345") and "MRN 70012345" in a.text(WARD.tz)
    assert changes.parse_admit(("20261124001", "2026-11-22")).mrn is None
# --- an empty bed is quiet ----------------------------------------------------------------

def test_after_a_discharge_the_bed_is_silent_and_ready_until_an_admission_or_a_press() -> None:
    cfg = Config()                                                   # the defaults: hourly with repeats
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E2026-0042", date(2026, 11, 23), None))
    d.run_until(t(cfg, "2026-11-24T12:59:40"))
    send(d, Discharge("E2026-0042"))
    discharged = d.now.wall
    d.run_until(t(cfg, "2026-11-25T06:30"))
    # Counted from the trace: nothing sounded and nothing was prompted after the discharge.
    assert [s for at, s in d.sounds() if at > discharged] == []
    assert [at for at, _ in d.records("prompt") if at > discharged] == []
    assert [at for at, _ in d.records("missed") if at > discharged] == []
    d.run_until(t(cfg, "2026-11-25T12:00"))
    idle = d.screen()
    assert isinstance(idle, sc.Idle) and idle.ready and idle.next_time is None
    assert [s for at, s in d.sounds() if at > discharged] == []
    # The state survives a restart (the start record restates it).
    d.restart(after=timedelta(minutes=5))
    assert vacant(d) and d.records("start")[-1][1].data.get("vacant") is True
    d.run_until(t(cfg, "2026-11-25T15:00"))
    assert [s for at, s in d.sounds() if at > discharged] == []
    # A press: someone is there. The unit runs as an unadmitted one from the next session, and
    # a restart remembers that too.
    d.press(t(cfg, "2026-11-25T15:10"))
    d.run_until(t(cfg, "2026-11-25T15:11"))
    assert not vacant(d) and d.records("press")[-2][1].data["action"] == "occupied"
    d.restart(after=timedelta(minutes=1))
    assert not vacant(d)
    d.run_until(t(cfg, "2026-11-25T17:30"))
    assert [sid for sid in d.sessions("prompt") if sid.startswith("2026-11-25")] == [
        "2026-11-25T16:00 hourly", "2026-11-25T17:00 hourly"]
    # An admission ends the quiet at once too.
    send(d, Admit("E2026-0043", date(2026, 11, 25), None))
    send(d, Discharge(None))
    assert vacant(d)
    send(d, Admit("E2026-0044", date(2026, 11, 25), None))
    assert not vacant(d) and not sc_ready(d)


def vacant(d: Driver) -> bool:
    return d.state.vacant


def sc_ready(d: Driver) -> bool:
    idle = d.screen()
    return isinstance(idle, sc.Idle) and idle.ready


def test_a_prompt_open_at_the_discharge_is_nobodys() -> None:
    from bedside.report import adherence as ad

    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E2026-0042", date(2026, 11, 23), None))
    for h in range(7, 13):                                           # every session done ...
        d.press(t(cfg, f"2026-11-24T{h:02d}:00:05"))
        d.run_until(t(cfg, f"2026-11-24T{h:02d}:20"))
    d.run_until(t(cfg, "2026-11-24T13:00:20"))                       # ... the 13:00 prompt 20 s old
    send(d, Discharge("E2026-0042"))
    d.run_until(t(cfg, "2026-11-24T20:00"))
    m = ad.build(journal_of(d))
    (stay,) = [s for s in m.stays if s.episode is not None]
    assert (stay.totals.done, stay.totals.due, stay.totals.missed) == (stay.totals.due, stay.totals.due, 0)
    assert stay.totals.adherence == 1.0 and stay.totals.nobody == 1


def journal_of(d: Driver) -> list[dict[str, object]]:
    """The driver's records as an export holds them (the fields the report reads)."""
    out: list[dict[str, object]] = []
    for i, (at, r) in enumerate(d.records(), 1):
        rec: dict[str, object] = {"seq": i, "type": r.type, "time": at.astimezone(d.cfg.tz).isoformat(), **r.data}
        if r.session is not None:
            rec["session"] = r.session
        if r.due is not None:
            rec["due"] = r.due.astimezone(d.cfg.tz).isoformat()
        out.append(rec)
    return out


def test_a_record_lost_after_the_discharge_leaves_the_bed_prompting_not_silent() -> None:
    """A damaged segment may have held the next admission: the start cannot tell, so the bed prompts."""
    from bedside.core import restart
    from tests.rigs.driver import journal_view

    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T06:30"))
    send(d, Admit("E2026-0042", date(2026, 11, 23), None))
    d.run_until(t(cfg, "2026-11-24T10:30"))
    send(d, Discharge("E2026-0042"))
    d.run_until(t(cfg, "2026-11-24T14:30"))
    send(d, Admit("E2026-0043", date(2026, 11, 24), None))                 # the next patient
    d.run_until(t(cfg, "2026-11-24T16:30"))
    past = journal_view(d.records(), cfg)
    later = d.now.wall + timedelta(minutes=5)

    def start(records: list[Past]) -> State:
        state, _ = restart.start(cfg, records, Instant(later, 7.0), time_quality="rtc", version="test", boot="b2")
        return state

    whole = start(past)
    assert whole.episode is not None and whole.episode.id == "E2026-0043" and not whole.vacant
    # The admission lost with a damaged segment: records are missing after the discharge.
    (admit,) = [p for p in past if p.type == "admit" and p.data.get("episode") == "E2026-0043"]
    damaged = start([p for p in past if p.seq < admit.seq or p.seq > admit.seq + 1])
    assert damaged.episode is None and not damaged.vacant
    # With nothing missing after the discharge, the bed stays empty and quiet.
    (discharge,) = [p for p in past if p.type == "discharge"]
    emptied = start([p for p in past if p.seq <= discharge.seq])
    assert emptied.episode is None and emptied.vacant
