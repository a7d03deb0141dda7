"""Benchmarks of the journal: what one event costs the card, and how fast a year verifies.

    make bench-journal        # writes the bench:journal section of docs/performance.md

* **Block-device bytes and flushes per event** — on a fresh ext4 filesystem on a loop
  device (so nothing else writes to it), write-back cache on (so flushes reach the
  device as on an SD card), read from ``/sys/block/loopN/stat``. Each event is one
  ``Journal.append`` of a typical record. "All bytes" syncs the filesystem after each event,
  so it counts everything the event ever costs (inode times, the WAL index); "spaced"
  writes events 0.2 s apart without that. fsync calls are counted by an LD_PRELOAD shim
  (tools/faultfs.c) on the journal's files. Baselines in the same run: a JSONL file
  appended and fsynced per line, SQLite with its default rollback journal, and WAL with
  ``locking_mode=EXCLUSIVE``. Needs root (mount) and a C compiler.
* **Verification speed** — a year of a ward's events (a simulated day of a patient who
  answers, snoozes and misses, repeated for 365 days), checked by ``verify_data`` (every
  file's integrity check plus the chain) and ``verify_export`` with the hospital's key;
  the baseline is hashing the same bytes with bare SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import docs, journals  # noqa: E402  (run as a script: the repository root is not on the path)

EVENTS = 120
RECORD = {"kind": "hourly", "reps": 20, "planned": 20, "early": False, "late_min": 2, "prompt_to_start_s": 95,
          "duration_s": 312, "snoozes": 0}


# --- the child: writes events one way, in its own process (for the fsync-counting shim) ---------

def _events(mode: str, d: Path, n: int, spacing: float, stat: Path) -> dict[str, float]:
    from zoneinfo import ZoneInfo

    from bedside.core.events import Instant, Record
    from bedside.journal.journal import Journal

    def dev_stat() -> tuple[int, int]:
        f = stat.read_text().split()
        return int(f[6]) * 512, int(f[15])          # sectors written; flush requests completed

    t0 = datetime(2026, 11, 24, 9, tzinfo=UTC)
    if mode == "journal":
        j = Journal(d, ZoneInfo("Europe/London"), "bench")

        def write(i: int) -> None:
            j.append(Record("done", f"2026-11-24T{i % 24:02d}:00 hourly", t0, RECORD),
                     Instant(t0 + timedelta(minutes=i), 1000.0 + i), "rtc")
    elif mode == "jsonl":
        fd = os.open(d / "journal-log.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def write(i: int) -> None:
            os.write(fd, (json.dumps({"seq": i, "type": "done", **RECORD}) + "\n").encode())
            os.fsync(fd)
    else:
        db = sqlite3.connect(d / "journal-base.sqlite", isolation_level=None)
        if mode == "rollback":
            db.execute("PRAGMA synchronous=FULL")
        else:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, body TEXT, hash TEXT)")

        def write(i: int) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO records (seq, body, hash) VALUES (?, ?, ?)",
                       (i + 1, json.dumps({"type": "done", **RECORD}), "0" * 64))
            db.execute("COMMIT")

    for i in range(20):           # warm up: files created, WAL grown
        write(i)
    os.sync()
    time.sleep(1)
    b0, f0 = dev_stat()
    for i in range(20, 20 + n):
        write(i)
        if spacing:
            time.sleep(spacing)
        else:
            os.sync()
    if spacing and n:
        time.sleep(6)             # ext4 commits deferred metadata within 5 s
    b1, f1 = dev_stat()
    return {"kib": (b1 - b0) / max(n, 1) / 1024, "flushes": (f1 - f0) / max(n, 1)}


def child() -> None:
    mode, d, n, spacing, stat = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), Path(sys.argv[6])
    print(json.dumps(_events(mode, d, n, spacing, stat)))


# --- the parent -----------------------------------------------------------------------------

def _shim(work: Path) -> Path | None:
    so = work / "faultfs.so"
    r = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(so), str(ROOT / "tools" / "faultfs.c"), "-ldl"],
                       capture_output=True, check=False)
    return so if r.returncode == 0 else None


def per_event(work: Path) -> dict[str, dict[str, float]] | str:
    if os.geteuid() != 0:
        return "not measured: mounting a loop filesystem needs root"
    img, mnt = work / "fs.img", work / "mnt"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "256M", str(img)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], check=True)
    try:
        dev = Path(subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mnt)], capture_output=True, text=True,
                                  check=True).stdout.strip()).name
        cache = Path(f"/sys/block/{dev}/queue/write_cache")
        cache.write_text("write back\n")
        so = _shim(work)
        out: dict[str, dict[str, float]] = {}
        for mode in ("journal", "jsonl", "rollback", "exclusive"):
            runs: dict[str, list[float]] = {"kib": [], "flushes": [], "spaced_kib": [], "spaced_flushes": [],
                                            "fsyncs": []}
            for rep in range(3):
                counts = work / f"count-{mode}{rep}"
                env = dict(os.environ)
                if so is not None:
                    env.update(LD_PRELOAD=str(so), BEDSIDE_COUNT=str(counts),
                               BEDSIDE_FAULT="count:0:0:EIO:journal-")
                for spacing in (0.0, 0.2):
                    d = mnt / f"{mode}{rep}-{spacing}"
                    d.mkdir()
                    r = subprocess.run([sys.executable, __file__, "--child", mode, str(d), str(EVENTS), str(spacing),
                                        f"/sys/block/{dev}/stat"], capture_output=True, text=True, env=env,
                                       check=True)
                    m = json.loads(r.stdout)
                    prefix = "spaced_" if spacing else ""
                    runs[prefix + "kib"].append(m["kib"])
                    runs[prefix + "flushes"].append(m["flushes"])
                    if spacing and counts.exists():
                        with_events = int(counts.read_text().split()[1])
                        # The same run with no measured events: opening, creating and warming up.
                        d0 = mnt / f"{mode}{rep}-setup"
                        d0.mkdir()
                        subprocess.run([sys.executable, __file__, "--child", mode, str(d0), "0", "0.2",
                                        f"/sys/block/{dev}/stat"], capture_output=True, env=env, check=True)
                        setup = int(counts.read_text().split()[1])
                        runs["fsyncs"].append((with_events - setup) / EVENTS)
            out[mode] = {k: statistics.median(v) for k, v in runs.items() if v}
        return out
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def year(work: Path) -> dict[str, float]:
    """A year of events, then how long verification takes (medians of three)."""
    from bedside.core import config
    from bedside.core.events import Instant, Record
    from bedside.journal import export, seal, verify
    from bedside.journal.journal import Journal
    from bedside.unit import simulate
    from bedside.unit.clock import VirtualClock

    cfg = config.Config()
    day_dir = work / "day"
    start = datetime.fromisoformat("2026-11-24T06:00").replace(tzinfo=cfg.tz)
    sim = simulate.build(cfg, day_dir, start, actions=journals.day_actions(cfg, start))
    sim.unit.run(until=start + timedelta(days=1))
    sim.close()
    j = Journal(day_dir, cfg.tz, "r", readonly=True)
    day = list(j.records())
    j.close()
    data = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    key_file = work / "key.json"
    seal.create(data, key_file, cfg.unit_id)
    sealer = seal.Sealer(data)
    yj = Journal(data, cfg.tz, "bench")
    env = {"seq", "time", "type", "session", "due", "boot", "mono_ms", "tq", "prev", "hash"}
    clock = VirtualClock(start)
    since = 0
    for d in range(365):
        for r in day:
            if r["type"] == "seal":
                continue
            when = datetime.fromisoformat(r["time"]) + timedelta(days=d)
            rec = Record(r["type"], r.get("session"), None, {k: v for k, v in r.items() if k not in env})
            yj.append(rec, Instant(when, clock.now().mono + d * 86400 + r["mono_ms"] / 1000), "rtc")
            since += 1
            if since >= 12:      # about hourly, as the unit seals
                seq, h = yj.head()
                yj.append(Record("seal", data=sealer.seal_data(seq, h)), Instant(when, clock.now().mono + d * 86400
                                                                                  + r["mono_ms"] / 1000), "rtc")
                sealer.sealed()
                since = 0
    records = yj.head()[0]
    header, lines = export.collect(yj)
    yj.close()
    exp = work / "year.jsonl"
    with open(exp, "w", encoding="utf-8") as f:
        export.write(f, header, lines)
    key = seal.load_hospital_key(key_file)

    def med(fn: Any) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            v = fn()
            times.append(time.perf_counter() - t0)
            assert v is None or v.ok, v.report()
        return statistics.median(times)

    blob = exp.read_bytes()
    return {
        "records": records,
        "per_day": records / 365,
        "db_mib": sum(p.stat().st_size for p in data.iterdir()) / 2**20,
        "export_mib": len(blob) / 2**20,
        "data_s": med(lambda: verify.verify_data(data)),
        "data_nointegrity_s": med(lambda: verify.verify_data(data, integrity=False)),
        "export_key_s": med(lambda: verify.verify_export(exp, key)),
        "sha_s": med(lambda: [hashlib.sha256(line).digest() for line in blob.splitlines()] and None),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        print("per event on a loop ext4 ...", flush=True)
        ev = per_event(work)
        print("a year of events ...", flush=True)
        y = year(work)
    lines = [docs.measured_on("make bench-journal", "Medians of three runs."), ""]
    if isinstance(ev, str):
        lines += [f"Bytes and fsyncs per event: {ev}.", ""]
    else:
        base = ev["jsonl"]
        lines += [
            "Per event, on a fresh 256 MiB ext4 filesystem on a loop device (write-back cache on) over this "
            "machine's virtio disk; only that loop device's counters are read, so other work on the machine "
            f"does not count. {EVENTS} events per run.", "",
            "| how events are written | fsync calls / event | KiB written / event, all (synced after each) | "
            "KiB / event, spaced 0.2 s | device flushes / event (spaced) |",
            "| --- | --- | --- | --- | --- |"]
        names = {"journal": "**the journal** (WAL, synchronous=FULL, normal locking)",
                 "jsonl": "JSONL append + fsync (baseline)", "rollback": "SQLite rollback journal, FULL",
                 "exclusive": "WAL + FULL + locking_mode=EXCLUSIVE"}
        for mode, label in names.items():
            m = ev[mode]
            fs = f"{m['fsyncs']:.2f}" if "fsyncs" in m else "—"
            lines.append(f"| {label} | {fs} | {m['kib']:.1f} ({m['kib'] / base['kib']:.2f}× JSONL) | "
                         f"{m['spaced_kib']:.1f} | {m['spaced_flushes']:.2f} |")
        j = ev["journal"]
        lines += ["", f"Goal: 1 fsync and ≤ 35 KiB per event. The journal: {j.get('fsyncs', float('nan')):.2f} "
                  f"fsync calls and {j['kib']:.1f} KiB (everything, synced) / {j['spaced_kib']:.1f} KiB (spaced) "
                  "per event. ext4 turns each fsync into about two device flushes (its journal commit).", ""]
    lines += [
        f"A year of events: {y['records']:.0f} records ({y['per_day']:.0f} a day: a patient who answers most "
        f"sessions, snoozes some, misses some; sealed about hourly); {y['db_mib']:.1f} MiB of journal, "
        f"{y['export_mib']:.1f} MiB exported.", "",
        "| verification of a year | time | vs bare SHA-256 of the same lines |", "| --- | --- | --- |",
        "| `verify_data` (SQLite integrity check + chain + boots + seals' order) — the check after each start's "
        f"first frame, off the loop's thread | "
        f"{y['data_s']:.2f} s | {y['data_s'] / y['sha_s']:.0f}× |",
        f"| `verify_data` without the integrity check | {y['data_nointegrity_s']:.2f} s | "
        f"{y['data_nointegrity_s'] / y['sha_s']:.0f}× |",
        f"| `verify_export` with the hospital's key (every seal's HMAC) | {y['export_key_s']:.2f} s | "
        f"{y['export_key_s'] / y['sha_s']:.0f}× |",
        f"| baseline: SHA-256 of every line | {y['sha_s'] * 1000:.0f} ms | 1× |", "",
        "A Pi Zero 2 W runs Python about 10× slower: a year's check there is about "
        f"{y['data_s'] * 10:.0f} s, once per start, on a worker thread after the first frame (docs/journal.md)."]
    print(docs.write_section("journal", "Journal", lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
    else:
        main()
