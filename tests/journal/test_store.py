"""The daemon's journal keeping: the start-up check and recovery, storage faults, heartbeat,
seals and retention, on real SQLite files (and real full or read-only filesystems as root)."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config
from bedside.core import screens as sc
from bedside.core.events import Instant, Play, Record, Show
from bedside.journal import heartbeat, retention, seal, verify
from bedside.journal.journal import Journal
from bedside.journal.segments import JournalError, segment_files
from bedside.journal.store import DAMAGE_NOTICE, HOUSEKEEPING_SLACK_S, NOTICE, SEAL_EVERY_S, Store
from bedside.unit import simulate
from bedside.unit.loop import NOT_SAVED
from tests.conftest import journal_records

CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


records = journal_records


def run_day(data: Path, start: str, until: str, actions: list[simulate.Action] | None = None) -> simulate.Simulation:
    sim = simulate.build(CFG, data, local(start), actions=actions or [])
    sim.unit.run(until=local(until))
    sim.close()
    return sim


# --- the start-up check -------------------------------------------------------------------

def test_damaged_active_file_is_kept_read_only_and_a_new_segment_continues(tmp_path: Path) -> None:
    run_day(tmp_path, "2026-11-24T06:50", "2026-11-24T20:00")
    before = records(tmp_path)
    path = segment_files(tmp_path)[-1][1]
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = bytearray(path.read_bytes())
    for page in range(1, len(raw) // 4096):             # every page's header scrambled: b-trees broken
        raw[page * 4096:page * 4096 + 12] = b"\x0d\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    path.write_bytes(bytes(raw))
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T20:30"))
    sim.unit.start()
    assert sim.unit.state is not None and sim.unit.state.problems.get("journal") == DAMAGE_NOTICE
    sim.unit.run(until=local("2026-11-24T21:30"))
    sim.close()
    files = segment_files(tmp_path)
    assert [n for n, _ in files] == [1, 2]
    assert path.stat().st_mode & 0o222 == 0                  # kept, read-only
    recs = records(tmp_path)
    fault = next(r for r in recs if r["type"] == "fault" and r.get("part") == "journal")
    assert fault["damage"] is True and "kept read-only and segment 2 continues" in fault["problem"]
    v = verify.verify_data(tmp_path)
    assert not v.ok and any(p.kind in ("damage", "file") for p in v.problems)
    assert v.head is not None and v.head[0] == recs[-1]["seq"]
    assert len(before) > 10
    # A second start does not record the same damage again.
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T21:40"))
    sim.unit.start()
    sim.unit.shutdown("test")
    sim.close()
    assert sum(1 for r in records(tmp_path) if r["type"] == "fault" and r.get("damage")) == 1


def test_a_file_that_is_not_a_database_any_more(tmp_path: Path) -> None:
    run_day(tmp_path, "2026-11-24T06:50", "2026-11-24T09:00")
    path = segment_files(tmp_path)[-1][1]
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(b"\xff" * 8192)
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T09:30"))
    sim.unit.start()
    sim.unit.shutdown("test")
    sim.close()
    assert [n for n, _ in segment_files(tmp_path)] == [1, 2]
    recs = [r for r in records(tmp_path)]
    assert recs[0]["type"] == "start"
    fault = next(r for r in recs if r["type"] == "fault")
    assert "cannot be opened" in fault["problem"]


def test_a_changed_record_is_found_soon_after_start_and_recorded_once(tmp_path: Path) -> None:
    run_day(tmp_path, "2026-11-24T06:50", "2026-11-24T10:00")
    path = segment_files(tmp_path)[-1][1]
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER records_append_only_update")
    db.execute("""UPDATE records SET body = replace(body, '"tq":"simulated"', '"tq":"rtc"') WHERE seq = 5""")
    db.commit()
    db.close()
    for start in ("2026-11-24T10:05", "2026-11-24T10:10"):
        sim = simulate.build(CFG, tmp_path, local(start))
        # The check runs after the first frame, a few seconds into the run (unit/journal_check.py).
        sim.advance(local(start) + timedelta(minutes=1))
        sim.unit.shutdown("test")
        sim.close()
    faults = [r for r in records(tmp_path) if r["type"] == "fault" and r.get("damage")]
    assert len(faults) == 1 and faults[0]["first_bad"] == 5
    assert [n for n, _ in segment_files(tmp_path)] == [1]     # the file itself is sound: no new segment


# --- heartbeat, seals, retention ------------------------------------------------------------

def test_power_loss_is_bounded_by_the_heartbeat(tmp_path: Path) -> None:
    run_day(tmp_path, "2026-11-24T20:00", "2026-11-25T01:00")     # power cut in the quiet night
    beat = heartbeat.read(tmp_path)
    recs = records(tmp_path)
    assert beat is not None and beat.time > datetime.fromisoformat(recs[-1]["time"])
    assert local("2026-11-25T01:00") - beat.time <= timedelta(seconds=heartbeat.EVERY_S + HOUSEKEEPING_SLACK_S)
    run_day(tmp_path, "2026-11-25T06:00", "2026-11-25T06:10")
    loss = next(r for r in records(tmp_path) if r["type"] == "power_loss")
    assert datetime.fromisoformat(loss["last_known"]) == beat.time.replace(microsecond=0)
    assert loss["last_record"] == datetime.fromisoformat(recs[-1]["time"]).astimezone(CFG.tz).isoformat(
        timespec="seconds")


def test_seals_at_intervals_and_at_a_clean_stop(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    seal.create(tmp_path / "d", key_file, CFG.unit_id)
    sim = simulate.build(CFG, tmp_path / "d", local("2026-11-24T06:50"))
    sim.advance(local("2026-11-24T19:00"))
    sim.unit.shutdown("test")
    sim.close()
    recs = records(tmp_path / "d")
    seals = [r for r in recs if r["type"] == "seal"]
    # Twelve hours at one seal every SEAL_EVERY_S (three hours), within the housekeeping slack; and the stop's.
    times = [datetime.fromisoformat(r["time"]) for r in seals]
    assert len(seals) >= 4 and recs[-1]["type"] == "seal" and recs[-2]["type"] == "stop"
    assert all(b - a <= timedelta(seconds=SEAL_EVERY_S + HOUSEKEEPING_SLACK_S) for a, b in itertools.pairwise(times))
    v = verify.verify_data(tmp_path / "d", seal.load_hospital_key(key_file))
    assert v.ok and v.seals_checked == len(seals) and v.unsealed_tail == 0
    # The clean stop is still a clean stop (no power_loss) though a seal follows it.
    run_day(tmp_path / "d", "2026-11-24T13:00", "2026-11-24T13:05")
    assert not any(r["type"] == "power_loss" for r in records(tmp_path / "d"))


def test_segments_rotate_and_only_exported_ones_are_pruned(tmp_path: Path) -> None:
    seal.create(tmp_path, tmp_path.parent / f"{tmp_path.name}-key.json", CFG.unit_id)
    j = Journal(tmp_path, CFG.tz, "b")
    store = Store(tmp_path, CFG.tz, "b", journal=j, segment_bytes=16 * 1024, keep_bytes=40 * 1024)
    store.start(Instant(local("2026-11-24T09:00"), 0.0))
    t = 0.0
    for i in range(40):         # 16 KB: each write starts a new segment, forty of them
        t += 70.0
        assert store.write(Record("press", data={"kind": "short", "action": "start", "i": i, "pad": "x" * 400}),
                           Instant(local("2026-11-24T09:00") + timedelta(seconds=t), t), "rtc")
        store.tick(Instant(local("2026-11-24T09:00") + timedelta(seconds=t), t), "rtc")
    segs = segment_files(tmp_path)
    assert len(segs) >= 4
    assert not any(r["type"] == "pruned" for r in j.records())     # nothing exported: nothing pruned
    # Each closed segment ends with a seal.
    for s in j.segments()[1:]:
        before = next(r for r in j.records(s.first_seq - 2) if r["seq"] == s.first_seq - 1)
        assert before["type"] == "seal"
    head = j.head()
    retention.mark_exported(tmp_path, head[0], head[1], "stick", local("2026-11-25T09:00"))
    store.since_retention, store.last_retention_mono = 1, None
    store.tick(Instant(local("2026-11-25T09:00"), t + 10), "rtc")
    pruned = [r for r in j.records() if r["type"] == "pruned"]
    assert pruned and segment_files(tmp_path)[0][0] > 1
    assert retention.read_marker(tmp_path) is not None
    v = verify.verify_data(tmp_path)
    assert v.ok, v.report()
    assert v.first is not None and v.first[0] > 1          # a chain that starts where pruning left it
    store.close()


def test_a_marker_from_another_journal_prunes_nothing(tmp_path: Path) -> None:
    j = Journal(tmp_path, CFG.tz, "b")
    store = Store(tmp_path, CFG.tz, "b", journal=j, segment_bytes=8 * 1024, keep_bytes=1)
    store.start(Instant(local("2026-11-24T09:00"), 0.0))
    for i in range(80):
        store.write(Record("press", data={"action": "start", "i": i, "pad": "x" * 400}),
                    Instant(local("2026-11-24T09:00"), i), "rtc")
        store.since_retention, store.last_retention_mono = 1, None
        store.tick(Instant(local("2026-11-24T09:00"), float(i)), "rtc")
    retention.mark_exported(tmp_path, 70, "f" * 64, "elsewhere", local("2026-11-25T09:00"))
    store.since_retention, store.last_retention_mono = 1, None
    store.tick(Instant(local("2026-11-24T09:00"), 400.0), "rtc")
    assert segment_files(tmp_path)[0][0] == 1
    store.close()


def test_flood_guard_counts_presses_that_change_nothing() -> None:
    g = retention.FloodGuard(limit=5, window_s=100)
    out: list[Record] = []
    for i in range(12):
        out += g.filter(Record("press", data={"action": "progress"}), float(i))
    out += g.filter(Record("press", data={"action": "start"}), 12.0)     # a session press: always logged
    assert [r.type for r in out] == ["press"] * 5 + ["flood", "press"]
    out = g.filter(Record("prompt"), 300.0)
    assert [r.type for r in out] == ["flood_end", "prompt"] and out[0].data["suppressed"] == 7


# --- real storage faults (root: a real tmpfs) ---------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    fs = tmp_path / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "bedside-test", str(fs)], check=True)
    try:
        yield fs
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


def fill(fs: Path) -> Path:
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for size in (1 << 20, 1 << 12, 1):
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
    os.close(fd)
    return filler


@needs_root
def test_disk_full_keeps_prompting_confirms_nothing_unsaved_and_catches_up(small_fs: Path) -> None:
    data = small_fs / "data"
    seen: list[tuple[datetime, Any]] = []
    sim = simulate.build(CFG, data, local("2026-11-24T06:58"), observers=[lambda fx, now: seen.append((now.wall, fx))])
    sim.advance(local("2026-11-24T07:00:30"))
    assert sim.unit.state is not None and sim.unit.state.active is not None      # the 07:00 prompt is up
    filler = fill(small_fs)
    for i in range(40):     # the disk is full: presses and idle records pile up in memory
        sim.unit.store.write(Record("press", data={"action": "start", "pad": "x" * 400, "i": i}),
                             sim.clock.now(), "simulated")
    assert sim.unit.unsaved and sim.unit.journal_error is not None
    pin = sim.button_pin
    pin.drive_low()
    sim.advance(local("2026-11-24T07:00:31"))
    pin.drive_high()
    sim.advance(local("2026-11-24T07:01:00"))
    pin.drive_low()                       # end the guide early: a done record that cannot be saved
    sim.advance(local("2026-11-24T07:01:01"))
    pin.drive_high()
    sim.advance(local("2026-11-24T07:01:03"))
    shown = [fx.screen for _, fx in seen if isinstance(fx, Show)]
    sounds = [fx.sound for _, fx in seen if isinstance(fx, Play)]
    assert NOT_SAVED in shown and not any(isinstance(s, sc.Done) for s in shown)
    assert "done" not in sounds
    assert sim.unit.state.problems.get("journal") == NOTICE
    assert sim.unit.state.active is None                    # the unit carried on: the guide ended
    # A later prompt still sounds: prompting does not depend on the disk.
    sim.advance(local("2026-11-24T08:00:30"))
    assert [s for s in (fx.sound for t, fx in seen if isinstance(fx, Play) and t >= local("2026-11-24T08:00"))
            if s == "prompt"]
    filler.unlink()
    sim.advance(local("2026-11-24T08:03:00"))
    assert not sim.unit.unsaved and sim.unit.state.problems.get("journal") is None
    sim.unit.shutdown("test")
    sim.close()
    recs = records(data)
    types = [r["type"] for r in recs]
    fault, cleared = types.index("fault"), types.index("fault_cleared")
    assert fault < types.index("done") < cleared
    assert recs[cleared]["written_late"] > 40
    assert verify.verify_data(data).ok


@needs_root
def test_a_journal_that_cannot_be_opened_at_start(small_fs: Path) -> None:
    data = small_fs / "data"
    run_day(data, "2026-11-24T06:50", "2026-11-24T07:05")
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    sim = simulate.build(CFG, data, local("2026-11-24T07:06"))
    sim.unit.start()
    # Read-only: the past is read (the 07:00 prompt comes back), nothing can be written.
    unit = sim.unit
    assert unit.store.head() is None and unit.state is not None
    assert unit.state.active is not None and unit.state.problems.get("journal") == NOTICE
    sim.advance(local("2026-11-24T07:10"))
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    sim.advance(local("2026-11-24T07:15"))
    assert unit.store.head() is not None and not unit.unsaved
    sim.unit.shutdown("test")
    sim.close()
    types = [r["type"] for r in records(data)]
    assert types.count("start") == 2 and "fault_cleared" in types
    assert verify.verify_data(data).ok


# --- rebuilding the state from a bounded past -----------------------------------------------

def test_the_state_comes_from_the_newest_records_and_the_latest_episode_records(tmp_path: Path) -> None:
    from bedside.core import restart
    from bedside.journal import store as store_mod

    j = Journal(tmp_path, CFG.tz, "b")
    t = local("2026-11-20T09:00")
    mono = 0.0

    def add(rec: Record) -> None:
        nonlocal t, mono
        t += timedelta(minutes=1)
        mono += 60
        j.append(rec, Instant(t, mono), "rtc")

    add(Record("admit", data={"episode": "E-1", "surgery": "2026-11-19", "regimen": "standard", "day": 1}))
    add(Record("export", data={"records": 1}))
    for i in range(store_mod.PAST_RECORDS + 50):
        add(Record("press", data={"i": i}))
    past = store_mod._rebuild_past(j)
    assert [p.type for p in past[:2]] == ["admit", "export"]
    assert len(past) == store_mod.PAST_RECORDS + 2 and past[-1].data["i"] == store_mod.PAST_RECORDS + 49
    everything = [p for p in j.recent(10**6) if p.type not in store_mod.BOOKKEEPING]
    now = Instant(t + timedelta(minutes=5), mono + 300)
    a, _ = restart.start(CFG, past, now, time_quality="rtc", version="t", boot="b")
    b, _ = restart.start(CFG, everything, now, time_quality="rtc", version="t", boot="b")
    assert a.episode == b.episode and a.episode is not None and a.episode.id == "E-1"
    assert (a.plan_changed, a.last_export, a.outcomes) == (b.plan_changed, b.last_export, b.outcomes)
    j.close()

@needs_root
def test_an_outage_that_ends_in_a_power_cut_is_recorded_as_it_was(small_fs: Path) -> None:
    """The card fills at 08:00, the patient finishes the 09:00 session, the power goes at 09:40:
    the next start writes the outage from the reserve, never a false ``missed: power_loss``."""
    data = small_fs / "data"
    sim = simulate.build(CFG, data, local("2026-11-24T07:58"),
                         actions=[simulate.Action(local("2026-11-24T09:00:40"), "press", 0.3)])
    sim.advance(local("2026-11-24T07:59"))
    assert (data / "outage.reserve").stat().st_size == 64 * 1024          # reserved at start
    filler = fill(small_fs)
    sim.advance(local("2026-11-24T09:40"))
    assert sim.unit.unsaved and sim.unit.state is not None and sim.unit.state.problems.get("journal") == NOTICE
    kept = [r.type for r, _, _ in sim.unit.unsaved]
    assert "done" in kept and "prompt" in kept
    sim.close()                                      # the power goes: no stop, no seal, memory lost
    filler.unlink()
    sim = simulate.build(CFG, data, local("2026-11-24T10:10"))
    sim.unit.start()
    sim.unit.shutdown("test")
    sim.close()
    recs = records(data)
    by_type = {t: [r for r in recs if r["type"] == t] for t in ("fault", "fault_cleared", "done", "missed")}
    outage_fault = next(r for r in by_type["fault"] if r.get("outage"))
    assert "2026-11-24T08:00" <= outage_fault["time"] < "2026-11-24T09:00"      # from when the card filled
    done = [r for r in by_type["done"] if r["session"].startswith("2026-11-24T09:00")]
    assert done and done[0]["reps"] == done[0]["planned"]                   # the patient's session is there
    assert not [r for r in by_type["missed"] if r.get("reason") == "power_loss"
                and r["session"] < "2026-11-24T09:40"]                       # nothing falsely missed
    cleared = next(r for r in by_type["fault_cleared"] if r.get("from_reserve"))
    assert cleared["restarted"] and cleared["kept_prompting"] and cleared["until"].startswith("2026-11-24T09:")
    loss = next(r for r in recs if r["type"] == "power_loss")
    assert loss["last_known"] >= "2026-11-24T09:0"                           # not 08:00
    assert verify.verify_data(data).ok
    assert not any(r.get("tq") != "simulated" for r in recs)


@needs_root
def test_a_long_outage_costs_the_same_for_every_record_kept(small_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record kept on a full card rewrites the reserve. That rewrite looks at no more
    records than a slot holds, so the 1,200th record kept costs what the 300th did (before, the
    records were cut one at a time, serializing the whole outage after each cut, and a day on a
    full card made each press slower than the last). The reserve still accounts for every record."""
    import json as json_mod
    import types

    from bedside.journal import outage

    data = small_fs / "data"
    t0 = local("2026-11-24T08:00")
    store = Store(data, CFG.tz, "b", journal=Journal(data, CFG.tz, "b"))
    store.start(Instant(t0, 0.0))
    fill(small_fs)
    serialized: list[int] = []

    def dumps(obj: Any, **kw: Any) -> str:
        if isinstance(obj, dict) and "records" in obj:
            serialized[-1] += len(obj["records"])
        return json_mod.dumps(obj, **kw)

    monkeypatch.setattr(outage, "json", types.SimpleNamespace(dumps=dumps, loads=json_mod.loads))
    kept = 1200
    for i in range(kept):
        serialized.append(0)
        at = Instant(t0 + timedelta(seconds=10 * (i + 1)), 10.0 * (i + 1))
        store.write(Record("press", data={"kind": "short", "action": "start", "i": i}), at, "rtc")
        assert serialized[-1] <= 12 * outage.MOST_RECORDS, f"record {i} kept"
    assert store.error is not None and len(store.pending) == kept
    fits = store._reserve_fit
    assert fits is not None and 100 < fits < outage.MOST_RECORDS
    # Once the slot is full, each record kept costs two serializations of what fits.
    assert max(serialized[fits + 10:]) <= 2 * (fits + 1)
    assert max(serialized) <= 12 * outage.MOST_RECORDS
    got = outage.read_checked(data)
    assert got.refused == [] and len(got.records) == fits
    assert [r.data["i"] for r in got.records] == list(range(fits))           # the first ones, in order
    assert len(got.records) + sum(got.more.values()) == len(store.pending)
    store.close()


@needs_root
def test_a_long_outage_is_written_back_a_turn_at_a_time(small_fs: Path) -> None:
    """When storage returns, the records kept are written back ``CATCH_UP_RECORDS`` a turn of
    the loop, so a press is answered between turns and weeks of them never hold one turn past
    the watchdog; after each turn the reserve follows the journal's head, so a power cut in the
    middle still finds the rest there."""
    from bedside.journal import outage
    from bedside.journal.store import CATCH_UP_GAP_S, CATCH_UP_RECORDS

    data = small_fs / "data"
    t0 = local("2026-11-24T08:00")
    store = Store(data, CFG.tz, "b", journal=Journal(data, CFG.tz, "b"))
    store.start(Instant(t0, 0.0))
    committed: list[dict[str, Any]] = []
    store.on_commit.append(committed.append)
    filler = fill(small_fs)
    kept = 3 * CATCH_UP_RECORDS + 10
    for i in range(kept):
        at = Instant(t0 + timedelta(seconds=10 * (i + 1)), 10.0 * (i + 1))
        store.write(Record("press", data={"kind": "short", "action": "start", "i": i}), at, "rtc")
    assert len(store.pending) == kept and not committed
    filler.unlink()
    mono = 10.0 * kept + 100
    turns: list[int] = []
    while True:
        now = Instant(t0 + timedelta(seconds=mono), mono)
        done = store.retry(now, "rtc")
        turns.append(len(committed) - sum(turns))
        if done:
            break
        assert store.retry(now, "rtc") is False and len(committed) == sum(turns)   # not again at once
        assert store.deadline() == pytest.approx(mono + CATCH_UP_GAP_S)
        got = outage.read_checked(data)
        assert got.head == store.head() and len(got.records) + sum(got.more.values()) == len(store.pending)
        mono += CATCH_UP_GAP_S
    # The record whose write failed, the fault, the next 62; 64 a turn; the rest and the clearing.
    assert turns == [CATCH_UP_RECORDS, CATCH_UP_RECORDS, CATCH_UP_RECORDS, 11 + 1]
    types = [r["type"] for r in committed]
    assert types[:2] == ["press", "fault"] and types[-1] == "fault_cleared" and types.count("press") == kept
    assert committed[-1]["written_late"] == kept
    assert [r["i"] for r in committed if r["type"] == "press"] == list(range(kept))
    store.close()
    assert verify.verify_data(data).ok


def test_a_segment_whose_neighbour_cannot_be_described_is_not_pruned(tmp_path: Path) -> None:
    """Retention prunes a closed segment only up to where the next one starts. A next segment
    whose start cannot be read at all (a file of noise) gave -1 as that end, and the segment
    before it, holding records never exported, was deleted: now pruning stops there."""
    import os

    j = Journal(tmp_path, CFG.tz, "b")
    store = Store(tmp_path, CFG.tz, "b", journal=j, segment_bytes=16 * 1024, keep_bytes=40 * 1024)
    store.start(Instant(local("2026-11-24T09:00"), 0.0))
    t = 0.0
    for i in range(40):
        t += 70.0
        store.write(Record("press", data={"kind": "short", "action": "start", "i": i, "pad": "x" * 400}),
                    Instant(local("2026-11-24T09:00") + timedelta(seconds=t), t), "rtc")
        store.tick(Instant(local("2026-11-24T09:00") + timedelta(seconds=t), t), "rtc")
    segs = j.segments()
    assert len(segs) >= 6
    exported_to = segs[2].first_seq - 1                     # segments 1 and 2 exported, not 3 on
    kept = {r["seq"] for r in j.records() if r["seq"] > exported_to}
    rec = next(r for r in j.records(exported_to - 1) if r["seq"] == exported_to)
    retention.mark_exported(tmp_path, exported_to, rec["hash"], "stick", local("2026-11-25T09:00"))
    noise = segs[3].path                                     # segment 4: noise, its start unknown
    os.chmod(noise, 0o644)
    noise.write_bytes(os.urandom(noise.stat().st_size))
    os.chmod(noise, 0o444)
    store.since_retention, store.last_retention_mono = 1, None
    store.tick(Instant(local("2026-11-25T09:00"), t + 10), "rtc")
    left = {n for n, _ in segment_files(tmp_path)}
    assert {segs[2].n, segs[3].n} <= left                    # segment 3's records were never exported
    given = {r["seq"] for r in j.records()}
    lost = {s for s in kept if s not in given and not segs[3].first_seq <= s < segs[4].first_seq}
    assert not lost
    store.close()


# --- a failure that kept no record (a seal, a new segment) and the records after it --------
# A full disk fails a new segment or a seal now and then while letting a record through (or
# not). Its ``fault`` record is stamped when it failed, so it must be committed before any
# record stamped later: otherwise the journal holds monotonic time running backwards within
# one boot, and `bedside verify` flags a healthy unit.

class FailOnDemand(Journal):
    """A real journal whose next new segment, next seal or next record fails as on a full card."""

    fail_segment = False
    fail_seal = False
    fail_record = False

    def new_segment(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail_segment:
            self.fail_segment = False
            raise JournalError("the journal's storage is full; free space on the card")
        return super().new_segment(*args, **kwargs)

    def append(self, rec: Record, at: Instant, time_quality: str) -> dict[str, Any]:
        if (self.fail_seal and rec.type == "seal") or (self.fail_record and rec.type != "seal"):
            self.fail_seal = self.fail_record = False
            raise JournalError("the journal's storage is full; free space on the card")
        return super().append(rec, at, time_quality)


def _at(s: float) -> Instant:
    return Instant(local("2026-11-24T09:00") + timedelta(seconds=s), 1000.0 + s)


def _in_stamp_order(data: Path) -> list[str]:
    recs = records(data)
    assert [r["mono_ms"] for r in recs] == sorted(r["mono_ms"] for r in recs)
    assert verify.verify_data(data).ok, verify.verify_data(data).verdict
    return [str(r["type"]) for r in recs]


def test_a_new_segment_that_fails_is_recorded_before_later_records(tmp_path: Path) -> None:
    j = FailOnDemand(tmp_path, CFG.tz, "b")
    store = Store(tmp_path, CFG.tz, "b", journal=j, check=False, segment_bytes=1)
    store.start(_at(0), "rtc")
    store.write(Record("press", data={"i": 0}), _at(1), "rtc")
    j.fail_segment = True
    store.tick(_at(2), "rtc")                    # the segment is full: its successor cannot be made
    assert store.error is not None and j.fail_segment is False
    # The disk would let this one through; it waits behind the fault all the same.
    assert not store.write(Record("press", data={"i": 1}), _at(5), "rtc")
    j.fail_record = True
    assert not store.retry(_at(10), "rtc")      # still full: the fault and the press stay in memory
    assert store.retry(_at(20), "rtc")
    store.close()
    assert _in_stamp_order(tmp_path) == ["press", "fault", "press", "fault_cleared"]


def test_a_seal_that_fails_is_recorded_before_later_records(tmp_path: Path) -> None:
    data = tmp_path / "unit"
    seal.create(data, tmp_path / "hospital.key", CFG.unit_id)
    j = FailOnDemand(data, CFG.tz, "b")
    store = Store(data, CFG.tz, "b", journal=j, check=False)
    store.start(_at(0), "rtc")
    store.write(Record("press", data={"i": 0}), _at(1), "rtc")
    j.fail_seal = True
    assert not store.seal(_at(2), "rtc")
    assert not store.write(Record("press", data={"i": 1}), _at(5), "rtc")
    assert not store.seal(_at(6), "rtc")        # nothing is sealed past a fault not yet written
    assert store.retry(_at(10), "rtc")
    assert store.seal(_at(11), "rtc")
    store.close()
    assert _in_stamp_order(data) == ["press", "fault", "press", "fault_cleared", "seal"]


def test_the_daemon_records_a_failed_new_segment_before_the_press_that_follows(tmp_path: Path) -> None:
    """The torture's pattern, on the whole simulated daemon: a press starts the guide and the
    tick after it cannot make the next segment (full card); 0.6 s later a second press ends the
    guide, before the first retry. Its records come after the fault, as they happened."""
    data = tmp_path / "data"
    sim = simulate.build(CFG, data, local("2026-11-24T06:58"))
    sim.advance(local("2026-11-24T07:00:30"))
    store = sim.unit.store
    j = store.journal
    assert j is not None
    real = j.new_segment

    def full_once(*args: Any, **kwargs: Any) -> Any:
        j.new_segment = real
        raise JournalError("the journal's storage is full; free space on the card")

    j.new_segment = full_once
    store.segment_bytes, store.last_retention_mono = 1, None    # the next tick wants a new segment
    pin = sim.button_pin
    for release, next_press in (("07:00:30.3", "07:00:30.6"), ("07:00:30.9", "07:00:31.2")):
        pin.drive_low()
        sim.advance(local(f"2026-11-24T{release}"))
        pin.drive_high()
        sim.advance(local(f"2026-11-24T{next_press}"))
    sim.advance(local("2026-11-24T07:00:45"))
    sim.unit.shutdown("test")
    sim.close()
    types = _in_stamp_order(data)
    assert types[types.index("fault"):] == ["fault", "press", "done", "fault_cleared", "stop"]


def test_a_new_segment_made_but_not_opened_does_not_restart_the_chain(tmp_path: Path) -> None:
    """The card fills between making the next segment's file and opening it: the next records
    go into that file, numbered on from the head, never from the closed segment's start."""
    j = Journal(tmp_path, CFG.tz, "b")
    for i in range(3):
        j.append(Record("press", data={"i": i}), _at(i), "rtc")
    real, calls = j._open, []

    def full_once(path: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(path, *args, **kwargs)

    j._open = full_once                                         # type: ignore[method-assign]
    with pytest.raises(JournalError):
        j.new_segment("size", {})
    assert [j.append(Record("press", data={"i": 10 + k}), _at(10 + k), "rtc")["seq"] for k in range(2)] == [4, 5]
    j.close()
    assert [r["seq"] for r in records(tmp_path)] == [1, 2, 3, 4, 5]
    assert verify.verify_data(tmp_path).ok
