"""Random tampering with a journal, and proof that ``verify`` notices every change.

    python tools/tamper.py --count 1000          # `make tamper`; the tests run a short version

A genuine journal is made by the real daemon on simulated hardware (two days, a patient
who answers, snoozes and stops early; sealed with a commissioning key). Then, again and
again, one random change is made to a copy of it: to an export file or to the SQLite file
itself (triggers dropped first, as an attacker with the card would). The change is one of:

* ``edit``      — a field of a record changed, its hash left as it was;
* ``rehash``    — a field changed and that record's hash recomputed;
* ``rechain``   — a field changed and every later hash recomputed (needs the seal key to catch);
* ``delete``    — a record removed;
* ``reorder``   — two records swapped;
* ``insert``    — a forged record inserted, correctly hashed and linked to its predecessor;
* ``truncate``  — the newest records removed (an export cut short, or rows deleted);
* ``bytes``     — (database only) a byte of a record's text changed in the file itself.

Each copy is checked as a hospital would: ``bedside log verify`` with the hospital's key
and ``--extends`` the last genuine export. It must not verify.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import config, planner
from bedside.core.events import Record
from bedside.journal import chain, export, seal, verify
from bedside.journal.journal import Journal
from bedside.journal.segments import segment_files
from bedside.unit import simulate
from bedside.unit.clock import VirtualClock

KINDS = ("edit", "rehash", "rechain", "delete", "reorder", "insert", "truncate")
DB_KINDS = (*KINDS, "bytes")


@dataclass
class Genuine:
    data: Path
    export: Path
    key: seal.HospitalKey
    records: list[dict[str, Any]]
    header: dict[str, Any]


def commission(data: Path, key_file: Path, at: datetime) -> seal.UnitKey:
    """``bedside keys init`` at ``at``: the seal key, the hospital's copy and the ``seal_key`` record."""
    cfg = config.Config()
    j = Journal(data, cfg.tz, "commissioning")
    key = seal.create(data, key_file, cfg.unit_id)
    j.append(Record("seal_key", data={"key_id": key.key_id, "unit": cfg.unit_id}), VirtualClock(at).now(), "rtc")
    j.close()
    return key


def make_genuine(where: Path, days: float = 2.0, seed: int = 1) -> Genuine:
    """A real unit's journal: commissioned, two simulated days with a patient who mostly answers."""
    cfg = config.Config()
    data = where / "data"
    key_file = where / "hospital-key.json"
    start = datetime.fromisoformat("2026-11-24T06:50").replace(tzinfo=cfg.tz)
    commission(data, key_file, start - timedelta(hours=1))
    rnd = random.Random(seed)
    actions = []
    for s in planner.sessions_between(cfg, start, start + timedelta(days=days)):
        t = s.offer.astimezone(cfg.tz) + timedelta(seconds=rnd.uniform(20, 600))
        r = rnd.random()
        if r < 0.6:
            actions.append(simulate.Action(t, "press", 0.3))
        elif r < 0.75:
            actions.append(simulate.Action(t, "hold", 2.5))
            actions.append(simulate.Action(t + timedelta(minutes=11), "press", 0.3))
        elif r < 0.85:
            actions.append(simulate.Action(t, "press", 0.3))
            actions.append(simulate.Action(t + timedelta(seconds=30), "press", 0.3))    # stopped early
    actions.sort(key=lambda a: a.at)
    sim = simulate.build(cfg, data, start, actions=actions)
    sim.advance(start + timedelta(days=days / 2))
    sim.unit.shutdown("half way")
    sim.close()
    second = start + timedelta(days=days / 2, minutes=30)
    sim = simulate.build(cfg, data, second, actions=[a for a in actions if a.at > second])
    sim.unit.run(until=start + timedelta(days=days))
    sim.close()
    out = where / "genuine.jsonl"
    j = Journal(data, cfg.tz, "export", readonly=True)
    header, lines = export.collect(j)
    j.close()
    with open(out, "w", encoding="utf-8") as f:
        export.write(f, header, lines)
    return Genuine(data, out, seal.load_hospital_key(key_file), [json.loads(x) for x in lines], header)


# --- changing records ------------------------------------------------------------------

def _change_field(rec: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    rec = dict(rec)
    keys = [k for k in rec if k not in ("hash", "prev", "seq")]
    k = rnd.choice(keys)
    v = rec[k]
    if isinstance(v, bool):
        rec[k] = not v
    elif isinstance(v, int):
        rec[k] = v + rnd.choice((-7, -1, 1, 3, 1000))
    elif isinstance(v, str):
        rec[k] = v + "x" if not v or rnd.random() < 0.5 else ("A" if v[0] != "A" else "B") + v[1:]
    else:
        rec[k] = [v, "changed"]
    return rec


def _rehash(rec: dict[str, Any]) -> dict[str, Any]:
    rec = dict(rec)
    rec["hash"] = chain.record_hash(rec)
    return rec


def _rechain(recs: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    out = recs[:start]
    for rec in recs[start:]:
        r = dict(rec)
        if out:
            r["prev"] = out[-1]["hash"]
        out.append(_rehash(r))
    return out


def tamper_records(recs: list[dict[str, Any]], kind: str, rnd: random.Random) -> list[dict[str, Any]]:
    recs = [dict(r) for r in recs]
    i = rnd.randrange(len(recs))
    if kind == "edit":
        recs[i] = {**_change_field(recs[i], rnd), "hash": recs[i]["hash"]}
    elif kind == "rehash":
        recs[i] = _rehash(_change_field(recs[i], rnd))
    elif kind == "rechain":
        recs[i] = _change_field(recs[i], rnd)
        recs = _rechain(recs, i)
    elif kind == "delete":
        del recs[i]
    elif kind == "reorder":
        j = rnd.randrange(len(recs) - 1)
        j += j >= i
        recs[i], recs[j] = recs[j], recs[i]
    elif kind == "insert":
        forged = _change_field(recs[i], rnd)
        forged["prev"] = recs[i]["hash"]
        recs.insert(i + 1, _rehash(forged))
    elif kind == "truncate":
        del recs[max(1, i):]
    return recs


# --- tampering with a copy -------------------------------------------------------------

def tamper_export(g: Genuine, kind: str, rnd: random.Random, out: Path) -> None:
    recs = tamper_records(g.records, kind, rnd)
    header = dict(g.header)
    if kind in ("rechain", "insert", "delete", "truncate") and rnd.random() < 0.5 and recs:
        # A careful forger also fixes the header to match.
        header.update(head={"seq": recs[-1]["seq"], "hash": recs[-1]["hash"]}, records=len(recs))
    with open(out, "w", encoding="utf-8") as f:
        export.write(f, header, [chain.canonical(r) for r in recs])


def tamper_database(g: Genuine, kind: str, rnd: random.Random, data: Path) -> None:
    shutil.copytree(g.data, data)
    path = segment_files(data)[-1][1]
    if kind == "bytes":
        _flip_a_byte(path, rnd)
        return
    recs = tamper_records(g.records, kind, rnd)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("DROP TRIGGER records_append_only_update")
        db.execute("DROP TRIGGER records_append_only_delete")
        db.execute("BEGIN")
        db.execute("DELETE FROM records")
        # An attacker rewrites the rows, keeping seq as the key (so a reorder or insert renumbers).
        for n, r in enumerate(recs, start=recs[0]["seq"] if recs else 1):
            body = {k: v for k, v in r.items() if k != "hash"}
            db.execute("INSERT INTO records (seq, time, type, session, body, hash) VALUES (?, ?, ?, ?, ?, ?)",
                       (n, r["time"], r["type"], r.get("session"), chain.canonical(body), r["hash"]))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _flip_a_byte(path: Path, rnd: random.Random) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = bytearray(path.read_bytes())
    needle = b'"mono_ms":'
    starts = []
    at = raw.find(needle)
    while at >= 0:
        starts.append(at + len(needle))
        at = raw.find(needle, at + 1)
    i = rnd.choice(starts)
    raw[i] = ord("1") if raw[i] != ord("1") else ord("2")
    path.write_bytes(bytes(raw))


def check(g: Genuine, target: Path, *, data: bool) -> verify.Verdict:
    """What a hospital runs: verify with its key and --extends the last genuine export."""
    v = verify.verify_data(target, g.key) if data else verify.verify_export(target, g.key)
    head, _ = verify.earlier_head(str(g.export), g.key)
    return verify.with_problems(v, verify.extends(v, verify.records_of(target, data=data), head, "the genuine export"))


@dataclass
class Result:
    count: int
    detected: int
    by_kind: Counter[str]
    missed: list[str]


def run(count: int, seed: int, work: Path, genuine: Genuine | None = None) -> Result:
    rnd = random.Random(seed)
    g = genuine or make_genuine(work / "genuine")
    assert verify.verify_export(g.export, g.key).ok and verify.verify_data(g.data, g.key).ok
    detected, by_kind, missed = 0, Counter[str](), []
    for n in range(count):
        on_db = rnd.random() < 0.4
        kind = rnd.choice(DB_KINDS if on_db else KINDS)
        target = work / f"t{n}" / ("data" if on_db else "export.jsonl")
        target.parent.mkdir(parents=True)
        if on_db:
            tamper_database(g, kind, rnd, target)
        else:
            tamper_export(g, kind, rnd, target)
        v = check(g, target, data=on_db)
        by_kind[("db " if on_db else "export ") + kind] += 1
        if v.ok:
            missed.append(f"#{n} {'database' if on_db else 'export'} {kind}")
        else:
            detected += 1
        shutil.rmtree(target.parent)
    return Result(count, detected, by_kind, missed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        r = run(args.count, args.seed, Path(d))
    print(f"tampering: {r.detected} of {r.count} changes detected by verify")
    for k, n in sorted(r.by_kind.items()):
        print(f"  {k:18} {n}")
    for m in r.missed:
        print(f"  NOT DETECTED: {m}")
    return 0 if not r.missed else 1


if __name__ == "__main__":
    sys.exit(main())
