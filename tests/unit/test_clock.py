"""Honest time: clock jumps during a day, a nurse setting the clock, time quality."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.core import config, planner
from bedside.core.episodes import UNADMITTED, Episode
from bedside.unit import host, simulate
from tests.conftest import journal_records

CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


records = journal_records


@pytest.mark.parametrize("jump", [timedelta(hours=1), timedelta(hours=-1), timedelta(days=3), timedelta(days=-3)])
def test_a_clock_jump_during_a_day_neither_doubles_nor_skips_a_prompt(tmp_path: Path, jump: timedelta) -> None:
    start = local("2026-11-24T06:50")
    at = local("2026-11-24T12:20")
    # The patient answers each session a few minutes after it is due, in the unit's own time.
    presses = [simulate.Action(s.offer.astimezone(CFG.tz) + timedelta(minutes=3), "press", 0.3)
               for s in planner.sessions_between(CFG, start, start + timedelta(days=5))]
    script = [simulate.Action(at, "clock", clock_to=at + jump)]
    end_real = start + timedelta(hours=16)
    sim = simulate.build(CFG, tmp_path, start, actions=sorted([*presses, *script], key=lambda a: a.at))
    sim.unit.start()
    # Sixteen hours of the unit's running time, whatever its wall clock says.
    mono_end = sim.clock.now().mono + (end_real - start).total_seconds()
    while sim.clock.now().mono < mono_end:
        sim.unit.run_once()
    sim.unit.shutdown("test")
    end_wall = sim.clock.now().wall
    sim.close()
    recs = records(tmp_path)
    sets = [r for r in recs if r["type"] == "clock_set"]
    assert len(sets) == 1 and sets[0]["source"] == "detected"
    assert abs(sets[0]["jump_s"] - jump.total_seconds()) < 5
    prompts = Counter(r["session"] for r in recs if r["type"] == "prompt")
    assert prompts and max(prompts.values()) == 1                        # never offered twice
    resolved = {r["session"] for r in recs if r["type"] in ("prompt", "missed", "deferred")}
    lo = min(start, start + jump) if jump > timedelta(0) else start
    # With no one admitted the unit follows the default regimen from its first start (today).
    stand_in = Episode(UNADMITTED, start.date(), CFG.default_regimen)
    due = [s for s in planner.sessions_between(CFG, lo, end_wall, stand_in)
           if s.offer <= end_wall - timedelta(minutes=1) and s.merged_into is None]
    if jump < timedelta(0):
        due = [s for s in due if s.offer <= at or s.offer >= at + jump]
    missing = [s.id for s in due if s.id not in resolved and s.offer >= start]
    assert missing == []                                                  # none skipped silently
    if jump > timedelta(hours=2):
        jumped = [r for r in recs if r["type"] == "missed" and r["reason"] == "clock_jump"]
        assert jumped, "sessions passed over by the jump are logged missed"


def test_a_nurse_sets_the_clock(tmp_path: Path) -> None:
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T06:50"))
    sim.advance(local("2026-11-24T07:30"))
    sim.unit.set_time(local("2026-11-24T09:45"), "nurse")
    sim.advance(local("2026-11-24T10:30"))
    sim.unit.shutdown("test")
    sim.close()
    recs = records(tmp_path)
    s = next(r for r in recs if r["type"] == "clock_set")
    assert s["source"] == "nurse" and s["old"].startswith("2026-11-24T07:30") and s["new"].startswith(
        "2026-11-24T09:45")
    assert round(s["jump_s"]) == 2 * 3600 + 15 * 60
    assert sum(r["type"] == "clock_set" for r in recs) == 1              # not detected a second time
    after = recs[recs.index(s) + 1:]
    assert after and all(r["tq"] == "set-by-nurse" for r in after)
    # The 08:00 and 09:00 sessions the change passed over are accounted for.
    ids = {r["session"]: r for r in recs if r["type"] == "missed"}
    assert ids["2026-11-24T08:00 hourly"]["reason"] == "clock_jump"


def test_a_clock_behind_the_journal_is_distrusted_until_set(tmp_path: Path) -> None:
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T06:50"))
    sim.unit.run(until=local("2026-11-24T12:10"))       # power cut
    sim.close()
    # The unit comes back with a clock that lost its time (earlier than the journal).
    sim = simulate.build(CFG, tmp_path, local("2026-11-20T08:00"))
    sim.unit.start()
    state = sim.unit.state
    assert state is not None and state.time_quality == "distrusted"
    assert state.problems.get("clock") == "Clock behind log: set time"
    sim.advance(local("2026-11-20T08:10"))
    sim.unit.set_time(local("2026-11-24T14:40"))
    sim.advance(local("2026-11-24T15:10"))
    sim.unit.shutdown("test")
    sim.close()
    recs = records(tmp_path)
    assert any(r["type"] == "fault" and r.get("part") == "clock" for r in recs)
    s = next(r for r in recs if r["type"] == "clock_set")
    assert s["source"] == "nurse"
    missed = {r["session"]: r["reason"] for r in recs if r["type"] == "missed"}
    # Sessions between the journal's last record and the time set are resolved, none skipped.
    assert missed.get("2026-11-24T13:00 hourly") == "clock_jump"
    assert "2026-11-24T14:00 hourly" in missed or any(r.get("session") == "2026-11-24T14:00 hourly"
                                                      and r["type"] == "prompt" for r in recs)


def test_a_clock_that_cannot_be_set_is_a_fault(tmp_path: Path) -> None:
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T06:50"))

    def refuse(wall: datetime) -> None:
        raise PermissionError("the daemon may not set the system clock (it needs CAP_SYS_TIME)")

    sim.unit.set_clock = refuse
    sim.advance(local("2026-11-24T07:00"))
    sim.unit.set_time(local("2026-11-24T09:00"))
    sim.advance(local("2026-11-24T07:05"))
    sim.unit.shutdown("test")
    sim.close()
    recs = records(tmp_path)
    assert not any(r["type"] == "clock_set" for r in recs)
    fault = next(r for r in recs if r["type"] == "fault")
    assert "CAP_SYS_TIME" in fault["problem"] and fault["source"] == "nurse"


def fake_root(tmp_path: Path, *, synced: bool = False, rtc_epoch: int | None = None, hctosys: bool = True) -> Path:
    if synced:
        (tmp_path / "run/systemd/timesync").mkdir(parents=True)
        (tmp_path / "run/systemd/timesync/synchronized").touch()
    if rtc_epoch is not None:
        rtc = tmp_path / "sys/class/rtc/rtc0"
        rtc.mkdir(parents=True)
        (rtc / "since_epoch").write_text(f"{rtc_epoch}\n")
        (rtc / "hctosys").write_text("1\n" if hctosys else "0\n")
    return tmp_path


def test_time_quality_at_start(tmp_path: Path) -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def unsynced() -> bool:
        return False

    def q(root: Path, when: datetime = now) -> str:
        return host.detect_time_quality(when, root, synced=unsynced)

    assert q(fake_root(tmp_path / "a", synced=True)) == "ntp"
    assert host.detect_time_quality(now, tmp_path / "none", synced=lambda: True) == "ntp"
    assert q(fake_root(tmp_path / "b", rtc_epoch=int(now.timestamp()) - 3)) == "rtc"
    # A Pi 5 clock without its battery starts again at 1970: not a clock that kept time.
    assert q(fake_root(tmp_path / "c", rtc_epoch=1000)) == "unverified"
    assert q(fake_root(tmp_path / "d", rtc_epoch=int(now.timestamp()), hctosys=False)) == "unverified"
    assert q(tmp_path / "nothing") == "unverified"
    assert q(tmp_path / "nothing", datetime(1970, 1, 1, 0, 5, tzinfo=UTC)) == "distrusted"
    assert host.kernel_synchronised() in (True, False, None)
