"""The journal's check after the first frame: from the checkpoint, then whole, off the loop's thread."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config
from bedside.core.events import Effect, Instant, Show
from bedside.journal import verify
from bedside.journal.segments import segment_files
from bedside.journal.store import DAMAGE_NOTICE
from bedside.unit import journal_check, simulate
from tests.conftest import journal_records

CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


def run(data: Path, start: str, until: str, **kw: Any) -> simulate.Simulation:
    sim = simulate.build(CFG, data, local(start), **kw)
    sim.advance(local(until))
    sim.unit.shutdown("test")
    sim.close()
    return sim


def records(data: Path) -> list[dict[str, Any]]:
    return journal_records(data)


def alter(data: Path, seq: int) -> None:
    db = sqlite3.connect(segment_files(data)[-1][1])
    db.execute("DROP TRIGGER records_append_only_update")
    db.execute("""UPDATE records SET body = replace(body, '"tq":"simulated"', '"tq":"rtc"') WHERE seq = ?""", (seq,))
    db.commit()
    db.close()


def test_the_first_frame_comes_before_any_check_and_a_clean_check_leaves_a_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tmp_path, "2026-11-24T06:50", "2026-11-24T09:00")
    order: list[str] = []
    real = verify.verify_data

    def spy(*a: Any, **k: Any) -> verify.Verdict:
        order.append("whole")
        return real(*a, **k)

    monkeypatch.setattr(verify, "verify_data", spy)

    def observe(effect: Effect, now: Instant) -> None:
        if isinstance(effect, Show) and "frame" not in order:
            order.append("frame")

    run(tmp_path, "2026-11-24T09:10", "2026-11-24T09:11", observers=[observe])
    assert order == ["frame", "whole"]
    recs = records(tmp_path)
    checkpoints = [r for r in recs if r["type"] == "verified"]
    assert len(checkpoints) == 2            # one per start, each after its whole check
    last = checkpoints[-1]
    checked = next(r for r in recs if r["seq"] == last["seq_checked"])
    assert checked["hash"] == last["hash_checked"] and last["seq"] > last["seq_checked"]


def test_a_changed_record_after_the_checkpoint_is_found_by_the_quick_check(tmp_path: Path) -> None:
    run(tmp_path, "2026-11-24T06:50", "2026-11-24T08:00")
    run(tmp_path, "2026-11-24T08:05", "2026-11-24T09:30")        # leaves a checkpoint, then more records
    checkpoint = [r for r in records(tmp_path) if r["type"] == "verified"][-1]
    victim = checkpoint["seq"] + 3
    alter(tmp_path, victim)
    log: list[str] = []
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T09:40"))
    check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
    sim.advance(local("2026-11-24T09:41"))
    sim.unit.shutdown("test")
    sim.close()
    log = [which for which, v, _ in check.results if not v.ok]
    assert log == ["newest", "whole"]        # both see it; it is recorded once
    faults = [r for r in records(tmp_path) if r["type"] == "fault" and r.get("damage")]
    assert len(faults) == 1 and faults[0]["first_bad"] == victim
    assert [r for r in records(tmp_path) if r["type"] == "verified"][-1]["seq"] == checkpoint["seq"]


def test_a_change_before_the_checkpoint_is_found_by_the_whole_check(tmp_path: Path) -> None:
    run(tmp_path, "2026-11-24T06:50", "2026-11-24T08:00")
    run(tmp_path, "2026-11-24T08:05", "2026-11-24T08:10")
    alter(tmp_path, 4)
    sim = simulate.build(CFG, tmp_path, local("2026-11-24T08:15"))
    check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
    sim.advance(local("2026-11-24T08:16"))
    assert sim.unit.state is not None and sim.unit.store.notice == DAMAGE_NOTICE
    sim.unit.shutdown("test")
    sim.close()
    assert [(which, v.ok) for which, v, _ in check.results] == [("newest", True), ("whole", False)]


def test_the_check_runs_on_a_worker_that_only_posts_to_the_loop(tmp_path: Path) -> None:
    run(tmp_path, "2026-11-24T06:50", "2026-11-24T08:00")
    alter(tmp_path, 6)
    threads: list[str] = []
    real = verify.verify_data

    def spy(*a: Any, **k: Any) -> verify.Verdict:
        threads.append(threading.current_thread().name)
        return real(*a, **k)

    sim = simulate.build(CFG, tmp_path, local("2026-11-24T08:05"))
    check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
    check.in_thread = True                              # as the daemon runs it
    verify_data, verify.verify_data = verify.verify_data, spy
    try:
        sim.advance(local("2026-11-24T08:05:06"))         # the check is due: the worker starts
        assert check.thread is not None
        check.thread.join(30)
        sim.advance(local("2026-11-24T08:05:07"))         # the loop takes the posted verdicts
    finally:
        verify.verify_data = verify_data
    sim.unit.shutdown("test")
    sim.close()
    assert threads == ["journal-check"]
    assert [r for r in records(tmp_path) if r["type"] == "fault" and r.get("damage")]


def test_a_guided_exercise_puts_the_check_off(tmp_path: Path) -> None:
    start = local("2026-11-24T06:59:50")
    sim = simulate.build(CFG, tmp_path, start, actions=[simulate.Action(local("2026-11-24T07:00:00"), "press", 0.3)])
    check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
    check.due = sim.clock.now().mono + 30             # falls in the guide that starts at 07:00
    sim.advance(local("2026-11-24T07:00:40"))
    assert check.results == [] and check.due is not None
    sim.advance(local("2026-11-24T07:10"))
    sim.unit.shutdown("test")
    sim.close()
    assert [which for which, _, _ in check.results] == ["whole"]      # no checkpoint yet: whole only
    assert timedelta(seconds=journal_check.BUSY_RETRY_S) > timedelta(0)


# --- the whole check's budget: passes of at most salvage.CHECK_BYTES of damaged files ------------

def test_hostile_segments_are_read_over_passes_each_within_its_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three crafted closed segments (header broken, every page naming one long overflow chain),
    2 MiB each, with a pass budget that has room for one: each pass reads one of them (counted:
    files, bytes, page reads), names the others as read at a later pass, never hides a readable
    record, and the passes stop once every file was read; the unit prompts throughout."""
    import os

    from bedside.journal import salvage
    from tests.rigs import hostile

    sim = simulate.build(CFG, tmp_path, local("2026-11-24T06:58"))
    sim.unit.store.segment_bytes = 48 * 1024
    sim.advance(local("2026-11-26T20:00"))
    sim.unit.shutdown("test")
    sim.close()
    run(tmp_path, "2026-11-26T20:05", "2026-11-26T20:10")       # a checkpoint in the newest file
    files = segment_files(tmp_path)
    assert len(files) >= 4
    hostile_names = []
    for _, path in files[:3]:
        os.chmod(path, 0o644)
        raw = bytearray(hostile.one_cell_attack(path.read_bytes(), 2 * 2**20, chain_pages=50))
        raw[:16] = b"not a database!!"
        path.write_bytes(bytes(raw))
        os.chmod(path, 0o444)
        hostile_names.append(path.name)
    size = files[0][1].stat().st_size
    healthy: set[int] = set()                                    # what SQLite still reads: the later files
    for _, path in files[3:]:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        healthy |= {seq for (seq,) in db.execute("SELECT seq FROM records")}
        db.close()
    monkeypatch.setattr(salvage, "CHECK_BYTES", size + size // 2)     # room for one file a pass
    monkeypatch.setattr(salvage, "START_BYTES", 1)                # (the start reads none of them)
    salvage.forget()
    sim = simulate.build(CFG, tmp_path, local("2026-11-26T20:50"))
    check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
    sim.advance(local("2026-11-26T22:01"))
    sim.unit.shutdown("test")
    sim.close()
    whole = [v for which, v, _ in check.results if which == "whole"]
    assert [which for which, _, _ in check.results][:2] == ["newest", "whole"]     # both within the first pass
    assert len(check.passes) == len(whole) == 3                  # ceil(3 files / one a pass), then no more
    assert [p.read for p in check.passes] == [[n] for n in hostile_names]
    for k, (spent, v) in enumerate(zip(check.passes, whole, strict=True)):
        assert spent.bytes_read == size                          # the counted figures: one file's bytes …
        assert spent.pages_read <= 2 * size // 4096 + 16 * salvage._SAMPLES    # … and its page reads
        assert not v.ok
        later = [p for p in v.problems if journal_check.LATER in p.text]
        # The files later passes read are named as such (one an earlier pass read is served from
        # salvage's cache while its rows fit: no work).
        assert {p.segment for p in later} == {n for n, _ in files[k + 1:3]}
        assert v.records >= len(healthy)                          # the readable records, all hashed each pass
    assert check.after == ""
    recs = records(tmp_path)
    assert {r["seq"] for r in recs} >= healthy
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-26T21:00" for r in recs)
    faults = [r for r in recs if r["type"] == "fault" and r.get("part") == "journal"]
    assert faults and all(len(r["signatures"]) <= 20 for r in faults)
    assert len(faults) <= 3                                      # each file's refusal recorded once, not per pass
