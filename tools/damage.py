"""Damage to the files of a data directory, and proof that the unit and the nurse's tools cope.

    python tools/torture.py damage --count 1000      # `make torture`; the tests run a short version

A genuine data directory is made by the real daemon on simulated hardware: commissioned
(a seal key), three patients' episodes in three segments (the newest one active, with its
WAL), a heartbeat and an export marker. Then, again and again, one file of a copy of it is
damaged in one of these ways:

* ``truncate`` — cut at a random point;          ``zero``   — cut to nothing;
* ``delete``   — removed;                        ``dir``    — a directory in its place;
* ``noperm``   — no permission to read or write it (the check then runs as an unprivileged user);
* ``flip``     — random bytes changed: in a record's body or hash, in SQLite's header, or anywhere
  in a random page.

Then what a ward would do: start the unit and run it for a simulated hour, export the
journal (``bedside log export``), verify it (``bedside log verify --key``), and walk it as a
pull does (the pages the unit serves over the serial link). Invariants:

* the unit starts and prompts on time (the hour's prompt is made at its due time);
* every record of an undamaged file is exported and pulled unchanged;
* verify fails exactly when a record is missing, altered or unaccounted for, and names the
  first damaged seq (the first genuine record that is not exported unchanged), or, when no
  record can be named (an empty newest file), still fails;
* nothing crashes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import config, planner
from bedside.core.events import Admit, Instant, Record
from bedside.journal import chain, export, retention, seal, verify
from bedside.journal.journal import Journal
from bedside.unit import simulate
from tools import tamper

KINDS = ("truncate", "zero", "delete", "dir", "noperm", "flip")
FLIPS = ("body", "hash", "header", "page")
PAGE_MAX = 200                # records per page of a pull (as the unit serves them)
START = "2026-11-24T06:50"


@dataclass
class Genuine:
    data: Path
    key: seal.HospitalKey
    key_file: Path
    records: list[dict[str, Any]]            # every record, as exported
    by_file: dict[str, list[int]]            # segment file -> the seqs it holds
    end: datetime                            # when the genuine run stopped
    by_seq: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_seq = {r["seq"]: r for r in self.records}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"data": str(self.data), "key_file": str(self.key_file), "records": self.records,
                                    "by_file": self.by_file, "end": self.end.isoformat()}))

    @classmethod
    def load(cls, path: Path) -> Genuine:
        b = json.loads(path.read_text())
        return cls(Path(b["data"]), seal.load_hospital_key(Path(b["key_file"])), Path(b["key_file"]), b["records"],
                   b["by_file"], datetime.fromisoformat(b["end"]))


def make(where: Path, *, days: float = 2.0, seed: int = 1) -> Genuine:
    """A commissioned unit with three episodes in three segments, stopped without a clean stop."""
    cfg = config.Config()
    data = where / "data"
    key_file = where / "hospital-key.json"
    start = datetime.fromisoformat(START).replace(tzinfo=cfg.tz)
    tamper.commission(data, key_file, start - timedelta(hours=1))
    rnd = random.Random(seed)
    actions = []
    for s in planner.sessions_between(cfg, start, start + timedelta(days=days)):
        t = s.offer.astimezone(cfg.tz) + timedelta(seconds=rnd.uniform(20, 600))
        if rnd.random() < 0.7:
            actions.append(simulate.Action(t, "press", 0.3))
    for i, day in enumerate((0.1, days / 3, 2 * days / 3)):
        at = start + timedelta(days=day)
        actions.append(simulate.Action(at, "admit", event=Admit(f"E{i + 1:03d}", at.date() - timedelta(days=1),
                                                                None, via="simulator")))
    actions.sort(key=lambda a: a.at)
    end = start + timedelta(days=days)
    sim = simulate.build(cfg, data, start, actions=actions)
    sim.advance(end)
    # A power cut, not a clean stop: the newest segment keeps its WAL, the heartbeat stays.
    sim.unit.store.beat(sim.clock.now())
    sim.close()
    j = Journal(data, cfg.tz, "export", readonly=True)
    recs = list(j.records())
    by_file: dict[str, list[int]] = {}
    segs = j.segments()
    for i, seg in enumerate(segs):
        hi = segs[i + 1].first_seq if i + 1 < len(segs) else 2**62
        by_file[seg.path.name] = [r["seq"] for r in recs if seg.first_seq <= r["seq"] < hi]
    j.close()
    mid = recs[len(recs) // 2]
    retention.mark_exported(data, mid["seq"], mid["hash"], "usb", end)
    return Genuine(data, seal.load_hospital_key(key_file), key_file, recs, by_file, end)


# --- damage ----------------------------------------------------------------------------

def _checkpointed(path: Path) -> bool:
    return not path.with_name(path.name + "-wal").exists()


def _flip(path: Path, where: str, rnd: random.Random) -> str:
    raw = bytearray(path.read_bytes())
    if not raw:
        return "empty file"
    if where in ("body", "hash") and path.suffix == ".sqlite":
        needle = b'"mono_ms":' if where == "body" else b"hash"
        spots = []
        at = raw.find(needle)
        while at >= 0:
            spots.append(at)
            at = raw.find(needle, at + 1)
        if spots:
            i = rnd.choice(spots) + len(needle) + (rnd.randrange(1, 60) if where == "hash" else 0)
            i = min(i, len(raw) - 1)
            raw[i] ^= 1 << rnd.randrange(8)
            path.write_bytes(bytes(raw))
            return f"{where} byte {i}"
    if where == "header":
        lo, hi = 0, min(100, len(raw))
    else:
        size = 4096
        page = rnd.randrange(max(1, len(raw) // size))
        lo, hi = page * size, min(len(raw), (page + 1) * size)
    n = rnd.choice((1, 1, 2, 8))
    spots = [rnd.randrange(lo, hi) for _ in range(n)]
    for i in spots:
        raw[i] ^= 1 << rnd.randrange(8)
    path.write_bytes(bytes(raw))
    return f"{where} bytes {spots}"


def damage(data: Path, name: str, kind: str, rnd: random.Random) -> str:
    """Damage one file of ``data``; says what was done."""
    path = data / name
    if kind == "truncate":
        size = path.stat().st_size
        cut = rnd.randrange(1, size) if size > 1 else 0
        os.truncate(path, cut)
        return f"cut to {cut} of {size} bytes"
    if kind == "zero":
        os.truncate(path, 0)
        return "cut to 0 bytes"
    if kind == "delete":
        path.unlink()
        return "deleted"
    if kind == "dir":
        path.unlink()
        path.mkdir()
        return "a directory in its place"
    if kind == "noperm":
        path.chmod(0)
        return "mode 000"
    return _flip(path, rnd.choice(FLIPS), rnd)


# --- what a ward does next -------------------------------------------------------------

@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    first_bad: int | None = None
    broken: bool = False
    exported: int = 0
    prompts_on_time: int = 0
    salvaged: int = 0
    lost: int = 0


_NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
           "--bounding-set=-dac_override,-dac_read_search"]


def check_unprivileged(g: Genuine, data: Path, damaged: str, kind: str, work: Path) -> Outcome:
    """``check_case`` in a process of its own that file modes bind (root, without the capabilities
    that let it read and write any file: the unit runs as its own user)."""
    saved = work / "genuine.json"
    if not saved.exists():
        g.save(saved)
    r = subprocess.run([*_NO_DAC, sys.executable, __file__, "check", str(saved), str(data), damaged, kind],
                       check=False, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    try:
        return Outcome(**json.loads(r.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError, TypeError):
        return Outcome(failures=[f"the check without file capabilities crashed: {r.stderr[-800:]}"])


def run_unit(g: Genuine, data: Path) -> tuple[list[str], int, str | None]:
    """Start the unit on ``data`` and run it for a simulated hour: (problems, prompts made on time,
    the journal's notice on the screen a minute after the start)."""
    cfg = config.Config()
    start = g.end + timedelta(minutes=30)
    start = start.replace(minute=50, second=0, microsecond=0)
    prompts: list[tuple[Record, datetime]] = []

    def watch(fx: Any, now: Instant) -> None:
        if isinstance(fx, Record) and fx.type == "prompt":
            prompts.append((fx, now.wall))

    sim = simulate.build(cfg, data, start, observers=[watch],
                         actions=[simulate.Action(start + timedelta(minutes=12), "press", 0.3)])
    try:
        # The start-up check runs a few seconds after the first frame (unit/journal_check.py).
        sim.advance(start + timedelta(minutes=1))
        notice = sim.unit.state.problems.get("journal") if sim.unit.state is not None else None
        sim.advance(start + timedelta(hours=1))
        sim.unit.shutdown("test")
    finally:
        sim.close()
    on_time = [p for p, at in prompts if p.due is not None and p.due >= start and abs((at - p.due).total_seconds()) < 2]
    problems = [] if on_time else [f"no prompt on time in the hour after {start:%H:%M} "
                                   f"(prompts: {[(p.session, at.isoformat()) for p, at in prompts]})"]
    return problems, len(on_time), notice


def exported(data: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What ``bedside log export`` writes (header, records)."""
    from zoneinfo import ZoneInfo

    j = Journal(data, ZoneInfo("UTC"), "export", readonly=True)
    try:
        header, lines = export.collect(j)
    finally:
        j.close()
    return header, [json.loads(x) for x in lines]


def pulled(data: Path) -> list[dict[str, Any]]:
    """The records a pull fetches: the unit's pages (LinkService.page) from seq 1 to its head."""
    from zoneinfo import ZoneInfo

    j = Journal(data, ZoneInfo("UTC"), "pull", readonly=True)
    out: list[dict[str, Any]] = []
    try:
        head = j.head()[0]
        nxt = 1
        while nxt <= head:
            page = []
            for rec in j.records(nxt - 1):
                page.append(rec)
                if len(page) >= PAGE_MAX:
                    break
            if not page:
                break
            out += page
            nxt = page[-1]["seq"] + 1
    finally:
        j.close()
    return out


def check_case(g: Genuine, data: Path, damaged: str, kind: str) -> Outcome:
    """The invariants, for a copy of ``g`` whose file ``damaged`` was damaged in ``kind``."""
    o = Outcome()
    try:
        problems, o.prompts_on_time, notice = run_unit(g, data)
        o.failures += problems
    except Exception as e:
        o.failures.append(f"the unit crashed: {type(e).__name__}: {e}")
        return o
    try:
        header, recs = exported(data)
        pull = pulled(data)
        v = verify.verify_data(data, g.key)
        out = data.parent / (data.name + ".jsonl")
        with open(out, "w", encoding="utf-8") as f:
            export.write(f, header, [chain.canonical(r) for r in recs])
        ve = verify.verify_export(out, g.key)
        out.unlink()
    except Exception as e:
        o.failures.append(f"export, pull or verify crashed: {type(e).__name__}: {e}")
        return o
    by_seq = {r["seq"]: r for r in recs}
    o.exported = len(recs)
    # The first genuine record that is not there unchanged: where verify must say the break is.
    first_bad = next((r["seq"] for r in g.records if by_seq.get(r["seq"]) != r), None)
    o.lost = sum(1 for r in g.records if by_seq.get(r["seq"]) != r)
    intact = set(g.by_file.get(damaged, [])) if damaged.startswith("journal-") else set()
    for name, seqs in g.by_file.items():
        if name == damaged or (name + "-wal" == damaged) or (name + "-shm" == damaged):
            continue
        missing = [s for s in seqs if by_seq.get(s) != g.by_seq[s]]
        if missing:
            o.failures.append(f"{len(missing)} records of the undamaged {name} not exported unchanged "
                              f"(first {missing[0]})")
    o.salvaged = sum(1 for s in intact if by_seq.get(s) == g.by_seq[s])
    if [r["seq"] for r in pull] != [r["seq"] for r in recs] or pull != recs:
        o.failures.append("the pull does not fetch what the export holds")
    o.broken = not v.ok
    o.first_bad = v.first_bad
    if first_bad is not None and notice is None:
        o.failures.append(f"the unit showed no notice although record {first_bad} is missing or altered")
    if first_bad is not None and ve.ok:
        o.failures.append(f"the export verifies although record {first_bad} is missing or altered")
    if first_bad is not None:
        if v.ok:
            o.failures.append(f"verify says OK although record {first_bad} is missing or altered")
        elif v.first_bad != first_bad:
            o.failures.append(f"verify names seq {v.first_bad} first, the first damaged record is {first_bad}: "
                              f"{v.verdict}")
    elif not v.ok and not _damage_without_loss(kind, damaged, v):
        o.failures.append(f"verify fails though every record is intact: {v.verdict}")
    return o


def _damage_without_loss(kind: str, damaged: str, v: verify.Verdict) -> bool:
    """Verify may fail with every genuine record intact only for damage a ward must hear of anyway:
    a file that is damaged though nothing was lost from it (an unused page, the WAL's copy)."""
    return damaged.startswith("journal-")


# --- the run ---------------------------------------------------------------------------

@dataclass
class Result:
    count: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    broken: int = 0
    salvaged: int = 0
    damaged_records: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def files_of(g: Genuine) -> list[str]:
    return sorted(p.name for p in g.data.iterdir() if p.name != "daemon.lock")


def plan(names: list[str], count: int, rnd: random.Random) -> list[tuple[str, str]]:
    """Every file with every kind of damage once, then random ones."""
    every = [(name, kind) for kind in KINDS for name in names]
    return (every + [(rnd.choice(names), rnd.choice(KINDS)) for _ in range(count - len(every))])[:count]


def run(count: int, seed: int, work: Path, genuine: Genuine | None = None, log: bool = False,
        cases: list[tuple[str, str]] | None = None) -> Result:
    t0 = time.monotonic()
    rnd = random.Random(seed)
    g = genuine or make(work / "genuine")
    todo = cases if cases is not None else plan(files_of(g), count, rnd)
    res = Result()
    for n, (name, kind) in enumerate(todo):
        data = work / f"case{n}"
        shutil.copytree(g.data, data)
        what = damage(data, name, kind, rnd)
        if kind == "noperm" and os.geteuid() == 0:
            o = check_unprivileged(g, data, name, kind, work)
        else:
            o = check_case(g, data, name, kind)
        res.count += 1
        res.by_kind[kind] += 1
        res.broken += o.broken
        if name.startswith("journal-") and name.endswith(".sqlite"):
            res.damaged_records += len(g.by_file.get(name, []))
            res.salvaged += o.salvaged
        res.failures += [f"#{n} {name} {kind} ({what}): {f}" for f in o.failures]
        if log:
            for f in o.failures:
                print(f"  FAILED #{n} {name} {kind} ({what}): {f[:400]}", file=sys.stderr, flush=True)
        if log and n % 50 == 0:
            print(f"  {n}/{len(todo)}: {len(res.failures)} failures", file=sys.stderr, flush=True)
        _rmtree(data)
    res.seconds = time.monotonic() - t0
    return res


def _rmtree(path: Path) -> None:
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            p.chmod(0o755 if p.is_dir() else 0o644)
    with contextlib.suppress(OSError):
        path.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def main(count: int, seed: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        r = run(count, seed, Path(d), log=True)
    print(f"damage: {r.count} damaged data directories in {r.seconds:.0f} s; {len(r.failures)} invariant failures")
    for k, n in sorted(r.by_kind.items()):
        print(f"  {k:10} {n}")
    print(f"  verify failed for {r.broken}; of {r.damaged_records} records in damaged segment files, "
          f"{r.salvaged} exported unchanged")
    for f in r.failures[:50]:
        print(f"  FAILED: {f}")
    return 0 if not r.failures else 1


def _check_main(argv: list[str]) -> int:
    saved, data, damaged, kind = argv
    o = check_case(Genuine.load(Path(saved)), Path(data), damaged, kind)
    print(json.dumps(o.__dict__))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        sys.exit(_check_main(sys.argv[2:]))
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, 7))
