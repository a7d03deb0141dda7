"""Benchmark of the readers of outside bytes against hostile input: salvage's time per MiB and
peak memory on crafted segments and WALs, and the unit's start with a data directory full of
them, against the 120 s start timeout on the Pi Zero 2 W estimate (times × 10, as
benchmarks/scaling.py plans).

Usage: ``python benchmarks/hostile.py`` (about two minutes). Each salvage case runs in a
child process of its own so that its peak RSS is its own; the figure given is the peak
above the same child scanning an empty file. Results go between the ``bench:hostile``
markers of docs/performance.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rigs import hostile

from bedside.core.digest import sha256
from benchmarks import docs

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
ZERO = 10.0
START_TIMEOUT_S = 120.0

# CPU time, not wall time: the figures must not depend on what else the machine is doing.
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
CHILD = """
import sys, time
from pathlib import Path
from bedside.journal import salvage
t = time.process_time()
got = salvage._scan(Path(sys.argv[1]))
dt = time.process_time() - t
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(dt, hwm * 1024, len(got.rows), got.pages_read)
"""


def honest(path: Path, size: int) -> None:
    """A segment-like file of ~400-byte records, ``size`` bytes, its header then broken."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size=4096")
    db.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, time TEXT, type TEXT, session TEXT, body TEXT, "
               "hash TEXT)")
    db.execute("BEGIN")
    seq = 0
    while True:
        rows = []
        for _ in range(2000):
            seq += 1
            body = json.dumps({"seq": seq, "boot": "0" * 36, "prev": "1" * 64, "pad": "p" * 200})
            rows.append((seq, "2026-11-24T09:00:00.000+00:00", "press", None, body, sha256(body.encode()).hexdigest()))
        db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?)", rows)
        if seq * 420 > size:
            break
    db.execute("COMMIT")
    db.close()
    raw = bytearray(path.read_bytes())
    raw[:16] = b"not a database!!"
    path.write_bytes(bytes(raw))


def dense(path: Path, size: int) -> None:
    leaf = hostile.dense_leaf()
    path.write_bytes(b"not a database!!" + bytes(4096 - 16) + leaf * (size // 4096 - 1))


def one_cell(path: Path, size: int) -> None:
    path.write_bytes(hostile.one_cell_attack(b"not a database!!" + bytes(4096 - 16), size))


def mutated(path: Path, size: int) -> None:
    honest(path, size)
    rng = random.Random(22)
    raw = path.read_bytes()
    for _ in range(40):
        name = rng.choice(sorted(set(hostile.DB_MUTATORS) - {"cut"}))
        raw = hostile.DB_MUTATORS[name](rng, raw)
    path.write_bytes(raw)


def wal_flood(path: Path, size: int) -> None:
    path.write_bytes(b"")
    path.with_name(path.name + "-wal").write_bytes(hostile.wal_flood(size))


CASES = [
    ("a damaged segment of the unit's own records (header broken)", honest, 8 * MIB),
    ("  the same, 40 structural mutations", mutated, 8 * MIB),
    ("every cell pointer naming one cell with a 600-page overflow chain", one_cell, 8 * MIB),
    ("  the same, at the 64 MiB read limit", one_cell, 64 * MIB),
    ("pages packed with the smallest cells a page holds", dense, 8 * MIB),
    ("  the same, at the 64 MiB read limit", dense, 64 * MIB),
    ("a WAL of committed cell-dense frames (checksums hold), 16 MiB", wal_flood, 16 * MIB),
    ("  a 64 MiB one (only the first 16 MiB read)", wal_flood, 64 * MIB),
]


def run_child(path: Path) -> tuple[float, int, int, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "device")}).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]), int(out[3])


def salvage_rows(tmp: Path) -> list[tuple[str, str, str]]:
    empty = tmp / "empty.db"
    empty.write_bytes(b"")
    base_rss = run_child(empty)[1]
    rows = []
    for name, make, size in CASES:
        path = tmp / "case.db"
        for p in (path, path.with_name(path.name + "-wal")):
            p.unlink(missing_ok=True)
        make(path, size)
        on_disk = path.stat().st_size + (path.with_name(path.name + "-wal").stat().st_size
                                         if path.with_name(path.name + "-wal").exists() else 0)
        runs = [run_child(path) for _ in range(3)]
        t = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs) - base_rss
        read_mib = min(on_disk, 64 * MIB if "WAL" not in name and "64 MiB one" not in name else 16 * MIB) / MIB
        rows.append((f"{name}: {on_disk / MIB:.0f} MiB", "linear; memory by the rows, not the file",
                     f"{t:.2f} s ({t / read_mib * 1000:.0f} ms/MiB; Zero 2 W ~{t * ZERO:.0f} s); "
                     f"{runs[0][2]} rows; peak +{max(rss, 0) / MIB:.1f} MiB; {runs[0][3]} page reads"))
    return rows


def start_row(tmp: Path, segments: int) -> tuple[str, str, str]:
    """A day of a unit, then ``segments`` hostile closed segments of 8 MiB before it: start to
    first prompt, then each pass of the whole-journal check after it (journal_check.py)."""
    from bedside.core import config
    from bedside.journal import salvage
    from bedside.journal.segments import segment_files
    from bedside.unit import journal_check, simulate

    cfg = config.Config()
    d = tmp / f"unit{segments}"
    sim = simulate.build(cfg, d, datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.run(until=datetime(2026, 11, 24, 12, 0, tzinfo=cfg.tz))
    sim.close()
    [(_, real)] = segment_files(d)
    shutil.move(real, d / f"journal-{segments + 1:06d}.sqlite")
    for side in ("-wal", "-shm"):
        with_side = real.with_name(real.name + side)
        if with_side.exists():
            shutil.move(with_side, d / f"journal-{segments + 1:06d}.sqlite{side}")
    kinds = [one_cell, dense, mutated]
    for n in range(1, segments + 1):
        p = d / f"journal-{n:06d}.sqlite"
        kinds[n % len(kinds)](p, 8 * MIB)
        os.chmod(p, 0o444)
    salvage.forget()
    # Each pass's CPU: both parts of the check (newest records, whole journal), which a Pi runs
    # on its worker thread (inline here).
    passes: list[float] = []
    checks = journal_check.JournalCheck._checks

    def timed(self: journal_check.JournalCheck, *a: Any) -> None:
        t = time.process_time()
        try:
            checks(self, *a)
        finally:
            passes.append(time.process_time() - t)

    journal_check.JournalCheck._checks = timed  # type: ignore[method-assign,assignment]
    try:
        # CPU time of this process (the simulated unit's threads are all in it), not wall time:
        # the figure must not depend on what else the machine is doing.
        t0 = time.process_time()
        sim = simulate.build(cfg, d, datetime(2026, 11, 24, 12, 59, 30, tzinfo=cfg.tz))
        check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
        sim.unit.start()
        t_start = time.process_time() - t0
        sim.unit.run(until=datetime(2026, 11, 24, 18, 0, tzinfo=cfg.tz))     # room for 30 passes
        t_all = time.process_time() - t0
        sim.close()
    finally:
        journal_check.JournalCheck._checks = checks  # type: ignore[method-assign]
    total = sum(p.stat().st_size for p in d.glob("journal-*.sqlite*")) / MIB
    verdict = "within" if t_start * ZERO < START_TIMEOUT_S else "PAST"
    loop = t_all - t_start - sum(passes)
    salvaged = max((b.bytes_read for b in check.passes), default=0) / MIB
    return (f"start with {segments} hostile closed segments ({total:.0f} MiB): CPU to the start record (the first "
            "frame) / each pass of the whole-journal check after it (a worker thread on a Pi)",
            f"start: Zero 2 W < {START_TIMEOUT_S:.0f} s; a pass: ≤ {salvage.CHECK_BYTES // MIB} MiB of salvage",
            f"{t_start:.1f} s, Zero 2 W ~{t_start * ZERO:.0f} s ({verdict} the start timeout) / "
            f"{len(passes)} pass{'es' if len(passes) != 1 else ''} "
            f"{journal_check.CARRY_S / 60:.0f} min apart, the longest {max(passes):.1f} s "
            f"(Zero 2 W ~{max(passes) * ZERO:.0f} s; at most {salvaged:.0f} MiB salvaged), "
            f"{sum(passes):.1f} s in all; the loop's own CPU over those 5 hours {loop:.1f} s")


def link_row(tmp: Path, segments: int = 31, steps: int = 12) -> tuple[str, str, str]:
    """The serial link on the unit's loop with ``segments`` hostile closed segments of
    ``salvage.STEP_BYTES`` each (the start row's kinds and a flooded WAL): one ``hello``, then ``get``
    pages, each a loop step whose salvage reads at most ``salvage.STEP_BYTES``. CPU and the counted
    salvage of the costliest step, beside one ``hello`` with no step budget (as before)."""
    from tests.rigs.serial_rig import cheap_ward

    from bedside.core import config
    from bedside.journal import salvage
    from bedside.journal.segments import segment_files
    from bedside.link.on_loop import LinkService
    from bedside.unit import simulate

    cfg = config.Config()
    d = tmp / f"link{segments}"
    sim = simulate.build(cfg, d, datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz))
    sim.unit.run(until=datetime(2026, 11, 24, 12, 0, tzinfo=cfg.tz))
    sim.close()
    [(_, real)] = segment_files(d)
    for side in ("", "-wal", "-shm"):
        if real.with_name(real.name + side).exists():
            shutil.move(real.with_name(real.name + side), d / f"journal-{segments + 1:06d}.sqlite{side}")
    # Each file as large as a step may read (the costliest directory for one step: every step
    # reads one), of the start row's kinds and a flooded WAL (the costliest rate measured).
    kinds = [one_cell, dense, mutated, wal_flood]
    for n in range(1, segments + 1):
        p = d / f"journal-{n:06d}.sqlite"
        kinds[n % len(kinds)](p, salvage.STEP_BYTES)
        os.chmod(p, 0o444)
    ward = cheap_ward(d)

    def unit() -> tuple[Any, LinkService, float]:
        """The unit started (its own start budget), and the link attached: the first loop step
        that reads the journal for the link (the CPU of the attach returned)."""
        salvage.forget()
        sim = simulate.build(cfg, d, datetime(2026, 11, 24, 12, 59, 30, tzinfo=cfg.tz))
        sim.unit.start()
        svc = LinkService(sim.unit, ward)
        t = time.process_time()
        svc.attach(sim.clock.now())
        attach = time.process_time() - t
        svc.unlock_typed(1, True, sim.clock.now())
        return sim, svc, attach

    sim, svc, attach = unit()
    costs: list[tuple[float, salvage.Budget, int]] = [(attach, svc.salvaged[-1], 0)]
    try:
        for k in range(steps):
            now = sim.clock.now()
            t = time.process_time()
            named = len(svc.hello(1, "n", now).get("unread", [])) if k == 0 else len(svc.page(1, 1, 256, now).unread)
            costs.append((time.process_time() - t, svc.salvaged[-1], named))
    finally:
        sim.close()
    step = salvage.STEP_BYTES
    salvage.STEP_BYTES = 1 << 40                   # as before: no budget on the loop
    try:
        sim, svc, attach = unit()
        t = time.process_time()
        svc.hello(1, "n", sim.clock.now())
        before = max(attach, time.process_time() - t)
        before_read = max(b.bytes_read for b in svc.salvaged)
        sim.close()
    finally:
        salvage.STEP_BYTES = step
        salvage.forget()
    worst = max(costs, key=lambda c: c[0])
    most = max(b.bytes_read for _, b, _ in costs)
    total = sum(p.stat().st_size for p in d.glob("journal-*.sqlite*")) / MIB
    return (f"serial link, {segments} hostile closed segments ({total:.0f} MiB): one loop step (the link's attach, "
            f"a `hello`, then `get` pages; {steps + 1} steps), its CPU and the salvage it did",
            f"a step: ≤ {step // MIB} MiB of salvage (`salvage.STEP_BYTES`); the rest named as not read yet",
            f"the costliest step {worst[0]:.2f} s (Zero 2 W ~{worst[0] * ZERO:.1f} s), "
            f"{worst[1].bytes_read / MIB:.0f} MiB and {worst[1].pages_read} page reads salvaged; at most "
            f"{most / MIB:.0f} MiB in any step (median step {statistics.median(c[0] for c in costs):.2f} s, "
            f"of which salvage {statistics.median(c[1].bytes_read for c in costs) / MIB:.0f} MiB); "
            f"the hello named {costs[1][2]} files not read yet. Before (no "
            f"step budget): the first such step (the link's attach) {before:.1f} s (Zero 2 W ~{before * ZERO:.0f} s), "
            f"{before_read / MIB:.0f} MiB salvaged")
# The readers of salvaged rows on a data directory of damaged segments, each in a child of its
# own: the peak RSS (VmHWM) above the child's RSS once its modules are imported, and, in a second
# run, the peak of tracemalloc (Python's own allocations, the figure the tests assert).
MEM_CHILD = """
import sys, tracemalloc
from pathlib import Path
from bedside.journal import salvage, verify
from bedside.cli import journal as cli_journal
mode, data, out, trace = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
def status(key):
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith(key)) * 1024
base = status("VmRSS:")
if trace:
    tracemalloc.start()
if mode == "check":          # the first pass of the whole-journal check (unit/journal_check.py)
    with salvage.bounded(salvage.CHECK_BYTES, after=""):
        v = verify.verify_data(data)
elif mode == "verify":       # bedside log verify --data: every file, no pass budget
    v = verify.verify_data(data)
else:                        # bedside log export --data --out
    cli_journal.export_jsonl(data, out)
print(status("VmHWM:") - base, tracemalloc.get_traced_memory()[1] if trace else 0)
"""


def memory_child(mode: str, d: Path, tree: Path, trace: bool) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", MEM_CHILD, mode, str(d), str(d.parent / "export.jsonl"),
                          "1" if trace else "0"], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(tree)}).stdout.split()
    return int(out[0]), int(out[1])


def outside_rss(args: list[str], tree: Path) -> int:
    """The whole command's max RSS, from outside (/usr/bin/time -v), interpreter included."""
    got = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "bedside", *args], check=False,
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(tree)})
    line = next(x for x in got.stderr.splitlines() if "Maximum resident set size" in x)
    return int(line.split(":")[1]) * 1024


def memory_rows(tmp: Path, tree: Path) -> list[tuple[str, str, str]]:
    rows = []
    for size, count in ((8, 1), (32, 1), (64, 1), (64, 4)):
        d = tmp / f"mem-{size}-{count}"
        records = hostile.damaged_journal(d, size * MIB, count)
        for mode, what in (("check", "one pass of the whole-journal check"),
                           ("verify", "`bedside log verify --data`"), ("export", "`bedside log export --data --out`")):
            rss, _ = memory_child(mode, d, tree, False)
            # (tracemalloc slows a child several times: one file of each size)
            traced = memory_child(mode, d, tree, True)[1] if count == 1 else None
            cmd = (["log", "verify", "--data", str(d)] if mode != "export" else
                   ["log", "export", "--data", str(d), "--out", str(tmp / "export.jsonl")])
            whole = outside_rss(cmd, tree) if mode != "check" else 0
            rows.append((f"{what}: {count} damaged segment{'s' if count > 1 else ''} of {size} MiB "
                         f"({records} records)",
                         "salvage: the largest record + a constant" + ("" if mode != "export" else
                                                                      "; the export: its own lines"),
                         f"peak +{rss / MIB:.1f} MiB RSS"
                         + (f", traced {traced / MIB:.1f} MiB" if traced is not None else "")
                         + (f"; the command's max RSS {whole / MIB:.0f} MiB" if whole else "")))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
            (tmp / "export.jsonl").unlink(missing_ok=True)
        shutil.rmtree(d)
    return rows


def stick_rows(tmp: Path) -> list[tuple[str, str, str]]:
    """Each reader of a ward stick's files, on the costliest shapes at its limit and past it: CPU
    time of one read and check (median of 5; the file written beforehand), its peak traced
    memory (a separate run under tracemalloc) and the reads made of the stick."""
    from tests.stick import test_fuzz_stick_files as fuzz

    kinds = fuzz._kinds(fuzz.Ring(tmp / "ward"))
    rows: list[tuple[str, str, str]] = []
    for kind in kinds.values():
        limit = kind.limit
        shapes = {
            "arrays nested to its limit": b"[" * (limit - 2) + b"]",
            "small objects to its limit": b"[" + b"{}," * ((limit - 4) // 3) + b"{}]",
            "one string to its limit": b'{"' + b"x" * (limit - 8) + b'": 1}',
            "a file 1000 times its limit": b" " * (1000 * limit),
        }
        for shape, raw in shapes.items():
            d = tmp / f"stick-{len(rows)}"
            fd = fuzz.on_stick(d, kind.where, raw)
            times = []
            try:
                for _ in range(5):
                    t = time.process_time()
                    with fuzz.counted_reads() as asked:
                        got = kind.read(fd)
                    try:
                        kind.check(got, d / "data")
                        outcome = "accepted"
                    except kind.refusal as e:
                        outcome = f"refused ({getattr(e, 'reason', '')})"
                    times.append(time.process_time() - t)
            finally:
                os.close(fd)
            _, _, peak = fuzz.read_and_check(kind, tmp / f"peak-{len(rows)}", d / "data", raw)
            ms = statistics.median(times) * 1000
            rows.append((f"stick: {kind.name}, {shape} ({len(raw) / 1024:.0f} KiB)",
                         f"one read of ≤ {limit // 1024} KiB + 1 byte; peak ≤ 64 × {limit // 1024} KiB",
                         f"{ms:.1f} ms (Zero 2 W ~{ms * ZERO:.0f} ms); peak {peak / 1024:.0f} KiB; "
                         f"reads {asked}; {outcome}"))
    return rows


def key_rows(tmp: Path) -> list[tuple[str, str, str]]:
    """Each reader of a key file, on the costliest shapes at its limit and past it: CPU time of
    one read (median of 5), its peak traced memory and the reads made (tests/trust/test_fuzz_key_files.py)."""
    from tests.trust import test_fuzz_key_files as fuzz

    kinds = fuzz._kinds(fuzz.Keys(tmp / "keys"))
    rows: list[tuple[str, str, str]] = []
    for kind in kinds.values():
        limit = kind.limit
        shapes = {
            "small objects to its limit": b"[" + b"{}," * ((limit - 4) // 3) + b"{}]",
            "a file 1000 times its limit": b" " * (1000 * limit),
        }
        for shape, raw in shapes.items():
            d = tmp / f"key-{len(rows)}"
            times = []
            for _ in range(5):
                result, seen, peak = fuzz.read_one(kind, d, raw)       # (the file written before the clock)
                t = time.process_time()
                with fuzz.counted(), contextlib.suppress(Exception):     # (its refusal: judged by the fuzzer)
                    kind.read(d)
                times.append(time.process_time() - t)
            outcome = type(result).__name__ if isinstance(result, Exception) else "read as nothing"
            ms = statistics.median(times) * 1000
            rows.append((f"key file: {kind.name}, {shape} ({len(raw) / 1024:.0f} KiB)",
                         f"reads of ≤ {limit // 1024} KiB + 1 byte; peak ≤ {limit // 1024} KiB + 64 × the bytes read "
                         "+ 256 KiB",
                         f"{ms:.1f} ms (Zero 2 W ~{ms * ZERO:.0f} ms); peak {peak / 1024:.0f} KiB; "
                         f"reads {seen['read']}; {outcome}"))
    return rows


def main() -> None:
    if "--link" in sys.argv[1:]:                # only the serial link's row, printed (about a minute)
        with tempfile.TemporaryDirectory() as td:
            print("\n".join(docs.table([link_row(Path(td))])))
        return
    if "--memory" in sys.argv[1:]:              # the memory of salvage's readers (a few minutes)
        # --tree DIR: measure another tree's device/ (the figures before a change)
        at = sys.argv.index("--tree") + 1 if "--tree" in sys.argv else 0
        tree = Path(sys.argv[at]) if at else ROOT / "device"
        with tempfile.TemporaryDirectory() as td:
            rows = memory_rows(Path(td), tree)
        note = ("Each reader in a child process of its own, on a data directory of closed segments of the "
                "unit's own chained records (about 430 bytes each) whose headers are broken, so that "
                "SQLite refuses them and salvage gives every row: the child's peak RSS (VmHWM) above its "
                "RSS once its modules are imported, the peak of tracemalloc in a second run, and the whole "
                "command's maximum RSS from outside (`/usr/bin/time -v`, the interpreter included).")
        lines = [docs.measured_on("python benchmarks/hostile.py --memory", note), "", *docs.table(rows)]
        if at:
            print("\n".join(lines))
        else:
            print(docs.write_section("hostile-memory", "Hostile input", lines))
        return
    if "--keys" in sys.argv[1:]:                # only the key files' rows, printed (a few seconds)
        with tempfile.TemporaryDirectory() as td:
            print("\n".join(docs.table(key_rows(Path(td)))))
        return
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        rows = salvage_rows(tmp)
        rows.append(start_row(tmp, 4))
        rows.append(start_row(tmp, 31))
        rows.append(link_row(tmp))
        rows += stick_rows(tmp)
        rows += key_rows(tmp)
    note = ("Salvage reads a file only when SQLite refuses it; the figures are a whole scan by "
            "`journal/salvage.py` in a child process: its CPU time (not wall time, so that the figures do not "
            "depend on the machine's load) and its peak RSS (VmHWM) above the same child scanning an empty file. "
            "Page reads count every page read, overflow, WAL frame and page-size sample: at most twice the file's "
            "pages and frames plus 1,024 samples (the budget the tests and fuzzers assert). Zero 2 W: times × 10, "
            "the planning ratio of the scaling section.")
    section = docs.write_section("hostile", "Hostile input",
                                 [docs.measured_on("python benchmarks/hostile.py", note), "", *docs.table(rows)])
    print(section)


if __name__ == "__main__":
    main()
