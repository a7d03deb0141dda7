"""Any damage to any file of the data directory: the unit starts and prompts, every readable
record reaches the nurse, and the break is named where it is (docs/journal.md, Damage).

A short, deterministic version of ``tools/torture.py damage`` (``make torture`` runs 1000
damaged directories), and the defects it was built from, one by one."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tools import damage

from bedside.journal import verify
from bedside.journal.journal import Journal
from bedside.journal.segments import segment_files
from tests.conftest import journal_records


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> damage.Genuine:
    return damage.make(tmp_path_factory.mktemp("genuine"))


def copy(g: damage.Genuine, to: Path) -> Path:
    shutil.copytree(g.data, to / "data")
    return to / "data"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bedside", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_genuine_directory_has_what_damage_is_done_to(genuine: damage.Genuine) -> None:
    names = damage.files_of(genuine)
    assert [n for n in names if n.startswith("journal-")] == [
        "journal-000001.sqlite", "journal-000002.sqlite", "journal-000003.sqlite", "journal-000004.sqlite",
        "journal-000004.sqlite-shm", "journal-000004.sqlite-wal"]
    assert {"alive.dat", "exported.json", "seal-key.json"} <= set(names)
    assert verify.verify_data(genuine.data, genuine.key).ok


# Every kind of damage to the newest and an older segment, the WAL and the files beside the journal.
CASES = [(name, kind) for kind in damage.KINDS for name in ("journal-000004.sqlite", "journal-000002.sqlite")] + [
    ("journal-000004.sqlite-wal", "truncate"), ("journal-000004.sqlite-wal", "dir"),
    ("journal-000004.sqlite-shm", "flip"), ("alive.dat", "zero"), ("exported.json", "flip"),
    ("seal-key.json", "delete")]


def test_property_any_damage_to_any_file(genuine: damage.Genuine, tmp_path: Path) -> None:
    r = damage.run(len(CASES), 11, tmp_path, genuine, cases=CASES)
    assert r.count == len(CASES)
    assert r.failures == []
    assert r.salvaged > 0          # rows were read from damaged files, not only from intact ones


def test_an_undecodable_old_record_neither_stops_the_unit_nor_the_export(genuine: damage.Genuine,
                                                                          tmp_path: Path) -> None:
    data = copy(genuine, tmp_path)
    path = data / "journal-000001.sqlite"
    raw = bytearray(path.read_bytes())
    at = raw.find(b'{"boot"')
    raw[at] = ord("[")                     # bit rot: the record's body is no longer JSON
    path.write_bytes(bytes(raw))
    j = Journal(data, ZoneInfo("UTC"), "t", readonly=True)
    readable = {x["seq"] for x in j.records()}
    j.close()
    bad = next(r["seq"] for r in genuine.records if r["seq"] not in readable)
    r = cli("simulate", "--headless", "--data", str(data), "--start", "2026-11-26T09:50:00",
            "--until", "2026-11-26T10:30:00")
    assert r.returncode == 0, r.stderr
    assert "prompt" in r.stdout
    recs = journal_records(data)
    fault = next(x for x in recs if x["type"] == "fault" and x.get("damage"))
    assert fault["first_bad"] == bad
    out = tmp_path / "export.jsonl"
    r = cli("log", "export", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["unreadable"][0]["first_seq"] == bad and header["unreadable"][0]["last_seq"] == bad
    exported = {json.loads(x)["seq"] for x in lines[1:]}
    last = max(x["seq"] for x in genuine.records)
    assert exported == {x["seq"] for x in genuine.records} - {bad} | {x["seq"] for x in recs if x["seq"] > last}
    r = cli("log", "verify", str(out))
    assert r.returncode == 3 and r.stdout.startswith(f"BROKEN at seq {bad}:")


def test_a_cut_newest_segment_keeps_every_older_record_and_salvages_its_own(genuine: damage.Genuine,
                                                                             tmp_path: Path) -> None:
    data = copy(genuine, tmp_path)
    path = data / "journal-000004.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    os.truncate(path, int(path.stat().st_size * 0.8))       # the last leaf pages gone
    j = Journal(data, ZoneInfo("UTC"), "t", readonly=True)
    seqs = [r["seq"] for r in j.records()]
    j.close()
    older = [s for name in ("journal-000001.sqlite", "journal-000002.sqlite", "journal-000003.sqlite")
             for s in genuine.by_file[name]]
    assert seqs[:len(older)] == older                  # segment 3 is not dropped
    assert len(seqs) > len(older)                      # rows before the cut are salvaged from segment 4
    v = verify.verify_data(data, genuine.key)
    assert not v.ok and v.first_bad == seqs[-1] + 1
    assert any("segment 4" in p.text and p.kind == "file" for p in v.problems)


@pytest.mark.parametrize("only", [True, False])
def test_an_emptied_segment_is_damage_never_a_new_unit(genuine: damage.Genuine, tmp_path: Path, only: bool) -> None:
    data = copy(genuine, tmp_path)
    if only:                                 # the only segment left (older ones were pruned)
        for _, p in segment_files(data)[:-1]:
            p.unlink()
    newest = segment_files(data)[-1][1]
    for p in newest.parent.glob(newest.name + "-*"):
        p.unlink()
    newest.write_bytes(b"")
    r = cli("simulate", "--headless", "--data", str(data), "--start", "2026-11-26T09:50:00",
            "--until", "2026-11-26T10:30:00")
    assert r.returncode == 0, r.stderr
    recs = journal_records(data)
    new = [x for x in recs if x["seq"] > 0 and x["type"] == "start"]
    last = max(x["seq"] for x in genuine.records)
    assert new and new[-1]["seq"] > last         # the chain goes on from the heartbeat's head: no seq reused
    assert any(x["type"] == "fault" and x.get("damage") for x in recs)
    v = verify.verify_data(data)
    assert not v.ok and v.first_bad is not None and v.first_bad <= genuine.by_file[newest.name][0]


def test_a_directory_or_fifo_in_place_of_the_active_file(genuine: damage.Genuine, tmp_path: Path) -> None:
    for kind in ("dir", "fifo"):
        data = copy(genuine, tmp_path / kind)
        path = data / "journal-000004.sqlite"
        path.unlink()
        path.mkdir() if kind == "dir" else os.mkfifo(path)
        r = cli("simulate", "--headless", "--data", str(data), "--start", "2026-11-26T09:50:00",
                "--until", "2026-11-26T10:30:00")
        assert r.returncode == 0, r.stderr
        assert [n for n, _ in segment_files(data)] == [1, 2, 3, 4, 5]
        v = verify.verify_data(data)
        assert not v.ok and v.first_bad == genuine.by_file["journal-000004.sqlite"][0]


def test_deleting_the_oldest_segment_is_not_retention(genuine: damage.Genuine, tmp_path: Path) -> None:
    data = copy(genuine, tmp_path)
    earlier = tmp_path / "earlier.jsonl"
    assert cli("log", "export", "--data", str(data), "--out", str(earlier)).returncode == 0
    (data / "journal-000001.sqlite").unlink()
    r = cli("log", "verify", "--data", str(data), "--key", str(genuine.key_file), "--extends", str(earlier))
    assert r.returncode == 3
    start = genuine.by_file["journal-000002.sqlite"][0]
    assert r.stdout.startswith(f"BROKEN at seq 1: the journal starts at seq {start}, and no pruned record accounts "
                               f"for seq 1–{start - 1}")
    r = cli("simulate", "--headless", "--data", str(data), "--start", "2026-11-26T09:50:00",
            "--until", "2026-11-26T10:30:00")
    assert r.returncode == 0, r.stderr
    fault = next(x for x in journal_records(data) if x["type"] == "fault" and x.get("damage"))
    assert fault["first_bad"] == 1 and "no pruned record" in fault["problem"]


def test_a_lost_seal_key_is_a_fault_and_an_unsealed_tail_a_break(genuine: damage.Genuine, tmp_path: Path) -> None:
    from bedside.journal.store import KEY_LOST_NOTICE
    from bedside.unit import simulate
    from tests.journal.test_store import CFG, local

    data = copy(genuine, tmp_path)
    assert verify.verify_data(data, genuine.key).ok        # a power cut's unsealed tail is within the margin
    (data / "seal-key.json").unlink()
    sim = simulate.build(CFG, data, local("2026-11-26T09:50"))
    sim.advance(local("2026-11-26T09:51"))
    assert sim.unit.state is not None and sim.unit.state.problems.get("journal") == KEY_LOST_NOTICE
    sim.unit.run(until=local("2026-11-28T09:50"))          # two days with no seal
    sim.close()
    recs = journal_records(data)
    fault = next(x for x in recs if x["type"] == "fault" and x.get("part") == "seal")
    assert "seal key is missing" in fault["problem"] and fault["key_id"] == genuine.key.key_id
    last_seal = max(x["seq"] for x in recs if x["type"] == "seal")
    v = verify.verify_data(data, genuine.key)
    assert not v.ok and v.first_bad == last_seal + 1
    assert any(p.kind == "unsealed" for p in v.problems)
    assert verify.verify_data(data).ok or not any(p.kind == "unsealed" for p in verify.verify_data(data).problems)


def test_fifos_and_directories_beside_the_journal_never_stop_a_start(genuine: damage.Genuine, tmp_path: Path) -> None:
    from bedside.unit import simulate
    from tests.journal.test_store import CFG, local

    for name in ("alive.json", "exported.json", "seal-key.json", "outage.reserve"):
        for kind in ("fifo", "dir"):
            data = copy(genuine, tmp_path / f"{name}-{kind}")
            path = data / name
            path.unlink(missing_ok=True)
            os.mkfifo(path) if kind == "fifo" else path.mkdir()
            prompts: list[str] = []

            def watch(fx: object, now: object, prompts: list[str] = prompts) -> None:
                if getattr(fx, "type", None) == "prompt":
                    prompts.append(str(getattr(fx, "session", "")))

            sim = simulate.build(CFG, data, local("2026-11-26T09:50"), observers=[watch])
            sim.advance(local("2026-11-26T10:05"))
            sim.unit.shutdown("test")
            sim.close()
            assert "2026-11-26T10:00 hourly" in prompts, (name, kind)
