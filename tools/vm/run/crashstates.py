"""Block-level crash states of a guided day, as CrashMonkey and xfstests make them (make vm-test).

record: the day's writes go through dm-log-writes onto a log device. The unit (the installed
  daemon code, in the simulator's virtual time, on a fresh ext4) writes its trace to a pipe;
  each record it confirms becomes a mark in the log, placed after the write that made it
  durable. The records go to RECORDS (JSON).
replay: reads the log, picks the points that matter (every mark first, then FUA writes, then
  other flushes, spread over the day, up to --states), rebuilds the device as it was at each
  point and checks it with check_state.py: it mounts, every record confirmed before the point
  is there, verify passes, and the unit started on it records the cut honestly. One JSON line
  a state, then a summary. A full replay must equal the device itself (a check of the replay).

Run as root in the VM with the installed unit's Python.
"""

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
MAGIC = 0x6A736677736872
BEDSIDE = os.environ.get("BEDSIDE_BIN", "/opt/bedside/venv/bin/bedside")
HERE = Path(__file__).resolve().parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True)


def record(a: argparse.Namespace) -> None:
    run("modprobe", "dm-log-writes")
    size = run("blockdev", "--getsz", a.data_dev).stdout.strip()
    run("dmsetup", "create", "lw", "--table", f"0 {size} log-writes {a.data_dev} {a.log_dev}")
    dev = "/dev/mapper/lw"
    # No lazy initialisation: a kernel thread would go on writing after the mount.
    run("mkfs.ext4", "-q", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", dev)
    run("dmsetup", "message", "lw", "0", "mark", "mkfs")
    mnt = Path("/mnt/lw")
    mnt.mkdir(exist_ok=True)
    run("mount", "-o", "nodiscard", dev, str(mnt))
    day = mnt / "day"
    day.mkdir()
    run("chown", "bedside:bedside", str(day))
    fifo = Path("/run/lw-trace")
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    proc = subprocess.Popen(["runuser", "-u", "bedside", "--", BEDSIDE, "simulate", "--headless", "--config", a.config,
                             "--data", str(day), "--start", a.start, "--until", a.until, "--speed", str(a.speed),
                             "--script", a.script, "--trace", str(fifo)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    records: list[dict[str, Any]] = []
    with fifo.open() as f:
        for line in f:
            fx = json.loads(line)
            if fx.get("effect") != "record":
                continue
            n = len(records) + 1
            # After the write that made it durable (the trace line follows the journal's fsync).
            run("dmsetup", "message", "lw", "0", "mark", f"rec-{n}")
            records.append({"n": n, "time": fx["time"], "type": fx["type"], "session": fx.get("session"),
                            "action": fx.get("action")})
    err = proc.communicate()[1]
    if proc.returncode != 0:
        sys.exit(f"the day exited {proc.returncode}: {err[-500:]}")
    run("umount", str(mnt))
    run("dmsetup", "remove", "lw")
    Path(a.records).write_text(json.dumps(records))
    print(json.dumps({"records": len(records)}))


def entries(log_dev: str) -> tuple[int, list[dict[str, Any]]]:
    """The log's entries: index, flags, sector, sectors, where its data is, a mark's name."""
    with open(log_dev, "rb") as f:
        magic, version, n, sectorsize = struct.unpack_from("<QQQI", f.read(512))
        if magic != MAGIC or version != 1:
            sys.exit(f"{log_dev}: not a dm-log-writes log (magic {magic:#x}, version {version})")
        out = []
        pos = sectorsize
        for i in range(n):
            f.seek(pos)
            head = f.read(sectorsize)
            sector, nr, flags, data_len = struct.unpack_from("<QQQQ", head)
            e: dict[str, Any] = {"i": i, "flags": flags, "sector": sector, "nr": nr, "data": pos + sectorsize}
            if flags & MARK:
                e["mark"] = head[32:32 + data_len].rstrip(b"\0").decode()
            pos += sectorsize
            if not flags & (DISCARD | MARK):
                pos += nr * sectorsize
            out.append(e)
        return sectorsize, out


def pick(es: list[dict[str, Any]], budget: int) -> list[tuple[int, str]]:
    """The crash points that matter, spread evenly: marks (a record just confirmed) first, then
    FUA writes (ext4's journal commits), then the other flushes; and the very end."""
    def spread(xs: list[int], k: int) -> list[int]:
        if k <= 0 or not xs:
            return []
        if len(xs) <= k:
            return xs
        return [xs[round(j * (len(xs) - 1) / (k - 1))] for j in range(k)] if k > 1 else [xs[-1]]

    marks = [e["i"] for e in es if e["flags"] & MARK and e.get("mark", "").startswith("rec-")]
    fuas = [e["i"] for e in es if e["flags"] & FUA]
    flushes = [e["i"] for e in es if e["flags"] & FLUSH and not e["flags"] & FUA]
    chosen: dict[int, str] = {es[-1]["i"]: "end"}
    for kind, xs, k in (("mark", marks, budget // 2), ("fua", fuas, budget // 4), ("flush", flushes, budget)):
        for i in spread([x for x in xs if x not in chosen], min(k, budget - len(chosen))):
            chosen[i] = kind
    return sorted(chosen.items())


def replay(a: argparse.Namespace) -> None:
    t0 = time.monotonic()
    records = json.loads(Path(a.records).read_text())
    sectorsize, es = entries(a.log_dev)
    mark_at = {e["mark"]: e["i"] for e in es if "mark" in e}
    points = pick(es, a.states)
    kinds = {k: sum(1 for e in es if e["flags"] & f) for k, f in (("flush", FLUSH), ("fua", FUA), ("mark", MARK))}
    print(json.dumps({"entries": len(es), **kinds, "records": len(records), "checking": len(points)}), flush=True)
    size = int(run("blockdev", "--getsize64", a.data_dev).stdout)
    target = Path("/dev/shm/replay.img")
    with target.open("wb") as blank:
        blank.truncate(size)
    state = Path("/dev/shm/state.img")
    mnt = Path("/mnt/state")
    mnt.mkdir(exist_ok=True)
    done = 0
    failed = 0
    with open(a.log_dev, "rb") as log, target.open("r+b") as t:
        def apply(upto: int) -> None:
            nonlocal done
            for e in es[done:upto + 1]:
                if e["flags"] & MARK:
                    continue
                if e["flags"] & DISCARD:
                    t.seek(e["sector"] * sectorsize)
                    t.write(b"\0" * (e["nr"] * sectorsize))
                elif e["nr"]:
                    log.seek(e["data"])
                    t.seek(e["sector"] * sectorsize)
                    t.write(log.read(e["nr"] * sectorsize))
            done = upto + 1
            t.flush()

        for i, kind in points:
            s0 = time.monotonic()
            apply(i)
            # A mark carries no write: the state at it holds everything logged before it.
            confirmed = [r for r in records if mark_at.get(f"rec-{r['n']}", len(es)) <= i]
            subprocess.run(["cp", "--sparse=always", str(target), str(state)], check=True)
            Path("/run/confirmed.json").write_text(json.dumps(confirmed))
            m = subprocess.run(["mount", "-o", "loop,nodiscard", str(state), str(mnt)], capture_output=True, text=True)
            if m.returncode != 0:
                if "mkfs" not in mark_at or i <= mark_at["mkfs"]:
                    res = {"ok": True, "journal": "no file system yet"}
                else:
                    res = {"ok": False, "problems": [f"does not mount: {m.stderr.strip()}"]}
            else:
                try:
                    day = mnt / "day"
                    if not day.exists():
                        res = {"ok": not confirmed, "journal": "no data directory yet",
                               "problems": [] if not confirmed else ["confirmed records but no data directory"]}
                    else:
                        c = subprocess.run([sys.executable, str(HERE / "check_state.py"), "--data", str(day),
                                            "--config", a.config, "--confirmed", "/run/confirmed.json", "--restart"],
                                           capture_output=True, text=True, timeout=900)
                        res = json.loads(c.stdout) if c.returncode == 0 and c.stdout.strip() else {
                            "ok": False, "problems": [f"check exited {c.returncode}: {c.stderr[-300:]}"]}
                finally:
                    subprocess.run(["umount", str(mnt)], check=False)
            failed += not res["ok"]
            print(json.dumps({"entry": i, "kind": kind, **res, "s": round(time.monotonic() - s0, 1)}), flush=True)
        apply(len(es) - 1)
    with target.open("rb") as whole, open(a.data_dev, "rb") as d:
        same = hashlib.sha256(whole.read()).digest() == hashlib.sha256(d.read(size)).digest()
    print(json.dumps({"summary": True, "states": len(points), "failed": failed, "replay_matches_device": same,
                      "seconds": round(time.monotonic() - t0)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    for k in ("--data-dev", "--log-dev", "--config", "--start", "--until", "--script", "--records"):
        r.add_argument(k, required=True)
    r.add_argument("--speed", type=float, default=600)
    p = sub.add_parser("replay")
    for k in ("--data-dev", "--log-dev", "--config", "--records"):
        p.add_argument(k, required=True)
    p.add_argument("--states", type=int, default=16)
    a = ap.parse_args()
    record(a) if a.cmd == "record" else replay(a)


main()
