"""Salvage against files built by someone who read the code, each a real SQLite file changed
at the structural level: the work stays linear (counted in page reads, which do not depend on
the machine), the page size comes from the pages when the header lies, and WAL frames count
only up to the last valid commit frame with their checksums checked, as SQLite itself reads
them (the same files are read by SQLite for comparison)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bedside.core import config
from bedside.journal import salvage
from bedside.journal.journal import Journal
from bedside.journal.segments import segment_files
from bedside.unit import simulate
from tests.conftest import journal_records

PAGE = 4096
SCHEMA = "CREATE TABLE records (seq INTEGER PRIMARY KEY, time TEXT, type TEXT, session TEXT, body TEXT, hash TEXT)"


def row(seq: int, size: int = 60) -> tuple[int, str, str, None, str, str]:
    body = json.dumps({"seq": seq, "pad": "x" * size})
    return seq, "2026-11-24T09:00:00+00:00", "press", None, body, hashlib.sha256(body.encode()).hexdigest()


def make_db(path: Path, rows: list[tuple[int, str, str, None, str, str]], *, wal: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={PAGE}")
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(SCHEMA)
    db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?)", rows)
    return db


def sqlite_rows(path: Path) -> dict[int, tuple[str, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {s: (b, h) for s, b, h in db.execute("SELECT seq, body, hash FROM records")}
    finally:
        db.close()


def fresh_scan(path: Path) -> salvage.Salvaged:
    salvage.forget()
    return salvage.scan(path)


# --- page size -------------------------------------------------------------------------------

@pytest.mark.parametrize("stated", [b"\x02\x00", b"\x00\x01", b"\x00\x00", b"\x12\x34"])   # 512, 65536, 0, junk
def test_a_lying_page_size_field_is_overruled_by_the_pages(tmp_path: Path, stated: bytes) -> None:
    path = tmp_path / "s.db"
    make_db(path, [row(i) for i in range(1, 96)]).close()
    before = sqlite_rows(path)
    raw = bytearray(path.read_bytes())
    raw[16:18] = stated
    path.write_bytes(bytes(raw))
    got = fresh_scan(path)
    assert got.page_size == PAGE and got.page_size_from == "pages"
    assert got.rows == before and len(before) == 95


def test_an_honest_header_is_believed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    make_db(path, [row(i) for i in range(1, 40)]).close()
    got = fresh_scan(path)
    assert (got.page_size, got.page_size_from) == (PAGE, "header") and len(got.rows) == 39


def test_a_unit_segment_with_a_lying_page_size_gives_every_record(tmp_path: Path) -> None:
    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, __import__("datetime").datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.run(until=__import__("datetime").datetime(2026, 11, 24, 20, 0, tzinfo=cfg.tz))
    sim.close()
    before = journal_records(tmp_path)
    path = segment_files(tmp_path)[-1][1]
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for stated in (b"\x02\x00", b"\x00\x01"):
        raw = bytearray(path.read_bytes())
        raw[16:18] = stated
        path.write_bytes(bytes(raw))
        salvage.forget()
        after = journal_records(tmp_path)
        assert [r["seq"] for r in after] == [r["seq"] for r in before]


# --- linear work -----------------------------------------------------------------------------

def one_cell_named_by_every_pointer(path: Path, copies: int, chain_bytes: int) -> int:
    """A leaf page whose cell pointers all name one cell with a long overflow chain, copied
    ``copies`` times at the end of the file; returns the file's page count."""
    db = make_db(path, [row(1, chain_bytes)])
    db.close()
    raw = bytearray(path.read_bytes())
    leaf = raw[PAGE:2 * PAGE]                      # page 2: the table's root, a leaf
    assert leaf[0] == 0x0D and int.from_bytes(leaf[3:5], "big") == 1
    ptr = leaf[8:10]
    cells = (int.from_bytes(ptr, "big") - 8) // 2
    leaf[3:5] = cells.to_bytes(2, "big")
    leaf[8:8 + 2 * cells] = bytes(ptr) * cells
    raw[PAGE:2 * PAGE] = leaf
    raw += bytes(leaf) * copies
    raw[28:32] = (len(raw) // PAGE).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    return len(raw) // PAGE


def test_cell_pointers_all_naming_one_long_cell_cost_one_walk(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    pages = one_cell_named_by_every_pointer(path, copies=200, chain_bytes=600 * PAGE)
    got = fresh_scan(path)
    assert got.rows.keys() == {1}                               # the one real row is still given
    assert got.refused["cell pointers naming a cell twice"] > 200 * 700
    assert got.refused["overflow chain named by a second cell"] == 200
    # Each page read once for its cells and at most once more as part of a chain, plus the size samples.
    assert got.pages_read <= 2 * pages + 16 * salvage._SAMPLES


def test_overlapping_cells_stay_within_the_page_budget(tmp_path: Path) -> None:
    """A page of 1,000 cell pointers one byte apart into a run of varints that each claim a
    1 KiB payload: decoded whole, that is 250 pages' worth of bytes for one page."""
    path = tmp_path / "s.db"
    make_db(path, [row(i) for i in range(1, 30)]).close()
    raw = bytearray(path.read_bytes())
    cells = 1000
    page = bytearray(PAGE)
    page[0] = 0x0D
    page[3:5] = cells.to_bytes(2, "big")
    page[5:7] = (8 + 2 * cells).to_bytes(2, "big")
    for c in range(cells):
        page[8 + 2 * c:10 + 2 * c] = (8 + 2 * cells + c).to_bytes(2, "big")
    page[8 + 2 * cells:PAGE] = (b"\x88\x00" * PAGE)[:PAGE - 8 - 2 * cells]
    raw += page
    raw[28:32] = (len(raw) // PAGE).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    got = fresh_scan(path)
    assert set(got.rows) == set(range(1, 30))                   # the pages beside it still give their rows
    assert got.refused["cells past the page's work budget (overlapping cells)"] > 0
    assert got.refused["cells past the most a page of the journal's rows can hold"] == 1000 - PAGE // salvage.MIN_CELL


def test_overflow_chains_that_loop_or_share_pages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    make_db(path, [row(1, 20 * PAGE), row(2, 20 * PAGE)]).close()
    raw = bytearray(path.read_bytes())
    count = len(raw) // PAGE
    # Every overflow page's "next" names page 3 (the first overflow page of row 1): both chains loop there.
    for n in range(3, count + 1):
        page = raw[(n - 1) * PAGE:n * PAGE]
        if page[0] not in (0x0D, 0x05, 0x0A, 0x02) and int.from_bytes(page[:4], "big") != 0:
            raw[(n - 1) * PAGE:(n - 1) * PAGE + 4] = (3).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    got = fresh_scan(path)
    assert 1 not in got.rows and 2 not in got.rows
    assert got.pages_read <= 2 * count + 16 * salvage._SAMPLES


# --- the WAL ---------------------------------------------------------------------------------

def wal_pair(tmp_path: Path) -> tuple[Path, Path, int]:
    """A database with a committed transaction of rows 1-50 in its WAL and a second one
    (rows 51-400, several frames) after it; returns the files and the WAL's frame size."""
    path = tmp_path / "w.db"
    db = make_db(path, [], wal=True)
    db.execute("BEGIN")
    db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?)", [row(i) for i in range(1, 51)])
    db.execute("COMMIT")
    first_wal = (tmp_path / "w.db-wal").stat().st_size
    db.execute("BEGIN")
    db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?)", [row(i) for i in range(51, 401)])
    db.execute("COMMIT")
    shutil.copy(path, tmp_path / "copy.db")
    shutil.copy(tmp_path / "w.db-wal", tmp_path / "copy.db-wal")
    db.close()
    return tmp_path / "copy.db", tmp_path / "copy.db-wal", first_wal


def test_a_torn_transaction_in_the_wal_does_not_come_back(tmp_path: Path) -> None:
    path, wal, first = wal_pair(tmp_path)
    raw = wal.read_bytes()
    frame = 24 + PAGE
    assert (len(raw) - first) // frame >= 3
    wal.write_bytes(raw[:len(raw) - frame])            # the commit frame never reached the card
    got = fresh_scan(path)
    assert set(got.rows) == set(range(1, 51)) == set(sqlite_rows(path))
    assert "uncommitted" in (got.wal_problem or "")


def test_a_wal_frame_that_fails_its_checksum_ends_the_wal(tmp_path: Path) -> None:
    path, wal, first = wal_pair(tmp_path)
    raw = bytearray(wal.read_bytes())
    raw[first + 24 + 2000] ^= 0x01                      # inside the second transaction's first frame
    wal.write_bytes(bytes(raw))
    got = fresh_scan(path)
    assert set(got.rows) == set(range(1, 51)) == set(sqlite_rows(path))
    assert "fails its checksum" in (got.wal_problem or "")


def test_a_wal_header_that_fails_its_checksum_is_not_used(tmp_path: Path) -> None:
    path, wal, _ = wal_pair(tmp_path)
    raw = bytearray(wal.read_bytes())
    raw[12] ^= 0x01                                     # the checkpoint sequence
    wal.write_bytes(bytes(raw))
    got = fresh_scan(path)
    assert got.rows == {} and got.wal_frames == 0 and "header checksum" in (got.wal_problem or "")


def test_a_whole_wal_gives_what_sqlite_gives(tmp_path: Path) -> None:
    path, _, _ = wal_pair(tmp_path)
    got = fresh_scan(path)
    assert got.rows == sqlite_rows(path) and len(got.rows) == 400 and got.wal_problem is None


# --- one scan per file -----------------------------------------------------------------------

def test_read_paths_share_one_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.Config()
    from datetime import datetime

    sim = simulate.build(cfg, tmp_path, datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.run(until=datetime(2026, 11, 24, 12, 0, tzinfo=cfg.tz))
    sim.close()
    path = segment_files(tmp_path)[-1][1]
    raw = bytearray(path.read_bytes())
    raw[:16] = b"not a database!!"
    path.write_bytes(bytes(raw))
    salvage.forget()
    calls: list[Path] = []
    real = salvage._scan

    def counted(p: Path) -> salvage.Salvaged:
        calls.append(p)
        return real(p)

    monkeypatch.setattr(salvage, "_scan", counted)
    j = Journal(tmp_path, cfg.tz, "reader", readonly=True)
    try:
        assert len(list(j.records())) > 10
        j.recent(50)
        j.of_type("start")
    finally:
        j.close()
    assert len(calls) == 1


# --- the unit starts whatever the data directory holds ---------------------------------------

def test_a_crafted_closed_segment_does_not_hold_up_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6 MiB closed segment (under the segment size) whose header is broken and whose pages
    all name one long overflow chain: the unit starts, prompts, and reads the file once."""
    import os
    from datetime import datetime

    from tests.rigs import hostile

    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.store.segment_bytes = 64 * 1024
    sim.unit.run(until=datetime(2026, 11, 26, 20, 0, tzinfo=cfg.tz))
    sim.close()
    before = journal_records(tmp_path)
    files = segment_files(tmp_path)
    assert len(files) >= 2
    path = files[0][1]
    os.chmod(path, 0o644)
    raw = bytearray(hostile.one_cell_attack(path.read_bytes(), 6 * 2**20))
    raw[:16] = b"not a database!!"
    path.write_bytes(bytes(raw))
    os.chmod(path, 0o444)
    salvage.forget()
    reads: list[salvage.Salvaged] = []
    real = salvage._scan

    def counted(p: Path) -> salvage.Salvaged:
        got = real(p)
        reads.append(got)
        return got

    monkeypatch.setattr(salvage, "_scan", counted)
    sim = simulate.build(cfg, tmp_path, datetime(2026, 11, 26, 20, 50, tzinfo=cfg.tz))
    sim.unit.start()
    assert sim.unit.state is not None
    sim.unit.run(until=datetime(2026, 11, 26, 21, 1, tzinfo=cfg.tz))
    sim.close()
    after = journal_records(tmp_path)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-26T21:00" for r in after)
    assert len(reads) == 1                                   # one scan, shared by every read path
    assert reads[0].pages_read <= 2 * len(raw) // PAGE + 16 * salvage._SAMPLES
    assert {r["seq"] for r in before} <= {r["seq"] for r in after}      # every record of the file still given


def test_a_data_directory_past_the_start_budget_starts_and_gives_everything_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More hostile bytes than the start's salvage budget: the start reads at most the budget,
    prompts, and the daemon's own journal then gives every record of the files it left."""
    import os
    from datetime import datetime

    from tests.rigs import hostile

    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.store.segment_bytes = 48 * 1024
    sim.unit.run(until=datetime(2026, 11, 26, 20, 0, tzinfo=cfg.tz))
    sim.close()
    before = journal_records(tmp_path)
    files = segment_files(tmp_path)
    assert len(files) >= 4
    for _, path in files[:3]:                       # three closed segments: header broken, a hostile tail
        os.chmod(path, 0o644)
        raw = bytearray(hostile.one_cell_attack(path.read_bytes(), 2 * 2**20, chain_pages=50))
        raw[:16] = b"not a database!!"
        path.write_bytes(bytes(raw))
        os.chmod(path, 0o444)
    monkeypatch.setattr(salvage, "START_BYTES", 3 * 2**20)     # room for one of them
    salvage.forget()
    read: list[int] = []
    real = salvage._scan

    def counted(p: Path) -> salvage.Salvaged:
        read.append(p.stat().st_size)
        return real(p)

    monkeypatch.setattr(salvage, "_scan", counted)
    sim = simulate.build(cfg, tmp_path, datetime(2026, 11, 26, 20, 50, tzinfo=cfg.tz))
    sim.unit.start()
    assert sim.unit.state is not None
    assert sum(read) <= 3 * 2**20                                # the start kept to its budget
    sim.unit.run(until=datetime(2026, 11, 26, 21, 1, tzinfo=cfg.tz))
    journal = sim.unit.store.journal
    assert journal is not None
    given = {r["seq"] for r in journal.records()}                # the daemon's own reads: no budget now
    sim.close()
    assert {r["seq"] for r in before} <= given
    after = journal_records(tmp_path)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-26T21:00" for r in after)


def test_log_export_gives_the_healthy_segments_beside_a_crafted_one(tmp_path: Path) -> None:
    """`log export` was killed with no output on a crafted segment: now it gives every record
    of the healthy segments and names the damaged file."""
    import os
    import subprocess
    from datetime import datetime

    from tests.rigs import hostile
    from tests.rigs.procs import ROOT, bedside

    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.store.segment_bytes = 48 * 1024
    sim.unit.run(until=datetime(2026, 11, 26, 20, 0, tzinfo=cfg.tz))
    sim.close()
    before = journal_records(tmp_path)
    files = segment_files(tmp_path)
    path = files[1][1]
    os.chmod(path, 0o644)
    raw = bytearray(hostile.one_cell_attack(path.read_bytes(), 15 * 2**20))
    raw[:16] = b"not a database!!"
    path.write_bytes(bytes(raw))
    r = subprocess.run(bedside("log", "export", "--data", str(tmp_path)), cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    head = json.loads(lines[0])
    got = {json.loads(x)["seq"] for x in lines[1:]}
    assert {x["seq"] for x in before} <= got                       # its own pages still give their records too
    assert head.get("unreadable") or "journal-000002" in r.stdout + r.stderr


def test_a_file_sqlite_refuses_is_closed_at_once(tmp_path: Path) -> None:
    """A reader's connection to a file SQLite refuses is closed before the refusal is raised.
    Left to the exception it stayed open until the collector ran (a connection is a reference
    cycle), so a start that met hundreds of crafted files held their descriptors and memory."""
    import gc
    import os

    from bedside.journal.segments import connect_reader

    junk = tmp_path / "journal-000005.sqlite"
    junk.write_bytes(b"not SQLite " * 400)
    gc.collect()
    gc.disable()
    try:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(50):
            with pytest.raises(sqlite3.DatabaseError):
                connect_reader(junk)
        after = len(os.listdir("/proc/self/fd"))
    finally:
        gc.enable()
    assert after == before
