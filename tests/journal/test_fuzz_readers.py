"""Structure-aware fuzzers for the readers of the unit's own files: a segment and its WAL
(salvage.py) and the outage reserve (outage.py).

Each example starts from valid files the unit made and changes them at the structural level
(tests/rigs/hostile.py: the header's fields, cell pointers and cells, overflow chains, the
freelist, the WAL's header and frames; the reserve's slots and records). What must hold, for
every example:

* **no crash**: the reader returns, whatever the bytes;
* **the budget**: work counted in page reads is at most twice the file's pages and frames
  plus the page-size samples (docs/journal.md, "Hostile files"); memory at its peak is
  bounded by a page and the rows given, not by the file (tracemalloc);
* **what is valid beside the damage is still given**: every row of every leaf page the
  mutation did not touch; every reserve record that is well formed;
* **the refusal is named**: what was passed over is counted by what was wrong with it.

``make test`` runs a fixed set of examples (hypothesis's "ci" profile); ``make fuzz`` draws
fresh ones, twenty times as many.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sqlite3
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.core import config
from bedside.core.digest import sha256
from bedside.journal import outage, salvage
from bedside.journal.segments import segment_files
from bedside.unit import simulate
from tests.conftest import PROFILE, budget
from tests.rigs import hostile

# The long run (make fuzz) draws twenty times the examples: no per-test time limit there.
LONG = pytest.mark.timeout(0 if PROFILE == "long" else 300)

PAGE = hostile.PAGE
CFG = config.Config()


class Base:
    def __init__(self, db: bytes, wal: bytes) -> None:
        self.db, self.wal = db, wal


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """A day of a unit's segment, checkpointed, and a WAL with the next hours' committed frames."""
    d = tmp_path_factory.mktemp("unit")
    sim = simulate.build(CFG, d, datetime(2026, 11, 24, 6, 58, tzinfo=CFG.tz))
    sim.unit.run(until=datetime(2026, 11, 24, 18, 0, tzinfo=CFG.tz))
    sim.close()
    path = segment_files(d)[-1][1]
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = path.read_bytes()
    # More records into a copy, kept in its WAL (no checkpoint): the WAL fuzzers' material.
    w = d / "w"
    w.mkdir()
    shutil.copy(path, w / path.name)
    conn = sqlite3.connect(w / path.name, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(records)")]
    assert cols[:1] == ["seq"]
    conn.execute("DROP TRIGGER IF EXISTS records_no_update")
    top = conn.execute("SELECT max(seq) FROM records").fetchone()[0]
    for k in range(1, 120):
        body = json.dumps({"seq": top + k, "pad": "w" * 200})
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO records ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                     [top + k, "2026-11-24T19:00:00+00:00", "press", None, body,
                      sha256(body.encode()).hexdigest()][:len(cols)])
        conn.execute("COMMIT")
    wal = (w / (path.name + "-wal")).read_bytes()
    shutil.copy(w / path.name, w / "db")
    conn.close()
    return Base(raw, wal)


def rows_by_page(raw: bytes) -> dict[int, set[int]]:
    """Each leaf page's rows in the clean file, decoded page by page."""
    out: dict[int, set[int]] = {}
    tmp = Path(__import__("tempfile").mkdtemp()) / "one.db"
    for n in range(1, len(raw) // PAGE + 1):
        page = raw[(n - 1) * PAGE:n * PAGE]
        head = 100 if n == 1 else 0
        if page[head] != 0x0D:
            continue
        tmp.write_bytes(raw[:PAGE] if n == 1 else raw[:PAGE] + page)   # page 1 (the header) and this page alone
        got = salvage._scan(tmp)
        out[n] = set(got.rows) if n != 1 else set()
    shutil.rmtree(tmp.parent)
    return out


_by_page: dict[int, dict[int, set[int]]] = {}


def scan_bounded(path: Path) -> tuple[salvage.Salvaged, int]:
    tracemalloc.start()
    try:
        got = salvage._scan(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return got, peak


def check_budget(got: salvage.Salvaged, db_bytes: int, wal_bytes: int, peak: int) -> None:
    frames = max(0, wal_bytes - 32) // (24 + PAGE)
    assert got.pages_read <= 2 * (db_bytes // 512 + frames) + 16 * salvage._SAMPLES
    # A page and a row at a time, plus the index (16 bytes a row, twice that while sorted) and
    # the WAL's map of frames: not the rows, not the file.
    largest = max((len(b) + len(h) for _, b, h in got.between(0)), default=0)
    assert peak <= 32 * len(got.rows) + 128 * frames + 64 * PAGE + 4 * largest, (peak, len(got.rows))


@LONG
@given(seed=st.integers(0, 2**32 - 1), rounds=st.integers(1, 3))
@budget(40)
def test_fuzz_segment(base: Base, tmp_path_factory: pytest.TempPathFactory, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    raw = base.db
    names = []
    for _ in range(rounds):
        name = rng.choice(sorted(hostile.DB_MUTATORS))
        names.append(name)
        raw = hostile.DB_MUTATORS[name](rng, raw)
    d = tmp_path_factory.mktemp("f")
    (d / "s.db").write_bytes(raw)
    got, peak = scan_bounded(d / "s.db")
    check_budget(got, len(raw), 0, peak)
    by_page = _by_page.setdefault(id(base), rows_by_page(base.db))
    untouched = {n for n in by_page if raw[(n - 1) * PAGE:n * PAGE] == base.db[(n - 1) * PAGE:n * PAGE]}
    kept = set().union(*(by_page[n] for n in untouched)) if untouched else set()
    missing = kept - set(got.rows)
    assert not missing, (names, sorted(missing)[:5], got.page_size, got.page_size_from)


@LONG
@given(seed=st.integers(0, 2**32 - 1), rounds=st.integers(1, 3))
@budget(30)
def test_fuzz_wal(base: Base, tmp_path_factory: pytest.TempPathFactory, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    wal = base.wal
    for _ in range(rounds):
        wal = hostile.WAL_MUTATORS[rng.choice(sorted(hostile.WAL_MUTATORS))](rng, wal)
    d = tmp_path_factory.mktemp("w")
    (d / "s.db").write_bytes(base.db)
    (d / "s.db-wal").write_bytes(wal)
    got, peak = scan_bounded(d / "s.db")
    check_budget(got, len(base.db), len(wal), peak)
    (d / "c.db").write_bytes(base.db)
    db_only = salvage._scan(d / "c.db")
    assert set(db_only.rows) <= set(got.rows)               # a bad WAL never hides the file's own rows
    (d / "w.db").write_bytes(base.db)
    (d / "w.db-wal").write_bytes(base.wal)
    whole = salvage._scan(d / "w.db")
    assert set(got.rows) <= set(whole.rows) | set(db_only.rows)   # nothing from frames that fail their checks
    if got.wal_frames < whole.wal_frames:
        assert got.wal_problem or len(wal) < len(base.wal) or wal[:32] != base.wal[:32]   # and it says why


def test_a_whole_wal_is_taken_and_a_torn_tail_named(base: Base, tmp_path: Path) -> None:
    (tmp_path / "s.db").write_bytes(base.db)
    (tmp_path / "s.db-wal").write_bytes(base.wal)
    whole = salvage._scan(tmp_path / "s.db")
    assert whole.wal_frames > 100 and whole.wal_problem is None
    (tmp_path / "s.db-wal").write_bytes(base.wal[:-100])
    torn = salvage._scan(tmp_path / "s.db")
    assert torn.wal_frames < whole.wal_frames and len(torn.rows) == len(whole.rows) - 1


# --- the outage reserve -------------------------------------------------------------------

def _record(rng: random.Random) -> tuple[Any, bool]:
    """A kept record, well formed or broken in one field; (record, whether it is well formed)."""
    r: dict[str, Any] = {"type": "press", "session": None, "due": None, "data": {"n": rng.randrange(9)},
                         "wall": "2026-11-24T07:12:00.000+00:00", "mono": 120.5, "tq": "ntp"}
    if rng.random() < 0.5:
        return r, True
    if rng.random() < 0.1:
        r["due"] = rng.choice(["2026-11-24T07:00:00+00:00", "2099-01-01T00:00:00+00:00"])
        return r, r["due"].startswith("2026")
    field = rng.choice(["type", "session", "due", "data", "wall", "mono", "tq", "whole"])
    bad: Any = rng.choice([None, 1, -1, 1.5, float("nan"), "", "x" * 300, [], {}, [[[]]], True,
                           "2099-01-01T00:00:00+00:00", "2026-11-24T23:59:60+00:00", "2026-11-24T07:12:00", "٣"])
    if field == "whole":
        return bad, False
    r[field] = bad
    ok = (field == "session" and bad is None) or (field == "due" and bad is None) or \
        (field == "data" and bad in ({}, None)) or (field == "tq" and isinstance(bad, str) and len(bad) <= 20) or \
        (field == "type" and isinstance(bad, str) and bad.isidentifier() and len(bad) <= 40) or \
        (field == "mono" and isinstance(bad, int | float) and not isinstance(bad, bool) and
         math.isfinite(bad) and 0 <= bad < 10**10) or (field == "session" and isinstance(bad, str) and len(bad) <= 64)
    return r, ok


@LONG
@given(seed=st.integers(0, 2**32 - 1))
@budget(150)
def test_fuzz_reserve(tmp_path_factory: pytest.TempPathFactory, seed: int) -> None:
    rng = random.Random(seed)
    recs = [_record(rng) for _ in range(rng.randrange(0, 12))]
    body: dict[str, Any] = {"gen": 3, "boot": "b", "head": [7, "c" * 64], "why": "full", "since":
                            "2026-11-24T07:10:00+00:00", "since_mono": 1.0, "since_tq": "ntp",
                            "until": "2026-11-24T07:20:00+00:00", "records": [r for r, _ in recs], "more": {}}
    slot_ok = True
    if rng.random() < 0.3:
        key = rng.choice(["gen", "head", "records", "why", "boot", "more"])
        body[key] = rng.choice([None, "x", 2**80, -3, [1, 2], {"a": 1}, 1e308])
        slot_ok = key in ("more",) or (key in ("why", "boot") and body[key] in (None, "x"))
        if key == "records":
            slot_ok = isinstance(body["records"], list)
            recs = [(x, False) for x in body["records"]] if slot_ok else []
    payload = json.dumps(body, allow_nan=True).encode()[:outage._SLOT - outage._HEAD]
    block = outage._MAGIC + len(payload).to_bytes(4, "big") + sha256(payload).digest() + payload
    raw = bytearray(outage.SIZE)
    raw[:len(block)] = block
    if rng.random() < 0.3:                              # the other slot: torn, or older
        raw[outage._SLOT:outage._SLOT + 40] = bytes(rng.getrandbits(8) for _ in range(40))
    d = tmp_path_factory.mktemp("r")
    (d / outage.FILE_NAME).write_bytes(bytes(raw))
    got = outage.read_checked(d, datetime.fromisoformat("2026-11-24T09:00:00+00:00"))
    if got.body is None:
        assert got.refused or len(payload) == outage._SLOT - outage._HEAD      # named (or cut to fit: torn)
        return
    assert slot_ok
    good = [r for r, ok in recs if ok]
    assert [k.data for k in got.records] == [r["data"] or {} for r in good]    # every well-formed record given
    assert len(got.records) + sum(1 for r, ok in recs if not ok) == len(recs)
    if any(not ok for _, ok in recs):
        assert got.refused                                                      # and the rest named
