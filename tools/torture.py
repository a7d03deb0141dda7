"""Crash and storage-fault torture of the journal, with an observer outside the daemon.

    python tools/torture.py kill --count 1000       # kill -9 at random points (`make torture`)
    python tools/torture.py faults                  # ENOSPC, read-only and EIO, then recovery
    python tools/torture.py damage --count 1000     # any damage to any file (tools/damage.py)

``kill``: again and again, start the workload daemon (tools/workload.py) on the same data
directory, let it run for a random moment, and kill -9 it — inside commits, checkpoints,
seals and new segments as often as not. Everything it reported committed (its ``C`` lines,
read from the pipe, which survives the kill) must be in the journal afterwards, with no
duplicate, no seq gap, and a chain that verifies; it must start cleanly each time (no
damage found by its start-up check); and every confirmation it showed must come after the
commit of the record it confirms.

``faults``: real storage faults under the running daemon. A small tmpfs that really fills
up (ENOSPC), the same filesystem remounted read-only (EROFS), and an LD_PRELOAD shim
(tools/faultfs.c) that makes the Nth write or fsync of the journal fail with EIO. Each time:
the daemon keeps running and shows the fault, nothing is confirmed that was not committed,
and after the fault clears everything kept in memory is written, in order, with a
``fault`` and a ``fault_cleared`` record. Needs root (for mount) and a C compiler.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bedside.journal import chain, verify
from bedside.journal.journal import Journal

TOOLS = Path(__file__).resolve().parent
WORKLOAD = TOOLS / "workload.py"


@dataclass
class Seen:
    """What the observer read from one run of the workload."""

    ready: bool = False
    committed: list[tuple[int, str, str, str]] = field(default_factory=list)
    shown: list[tuple[int, str]] = field(default_factory=list)     # (index in committed when shown, what)
    notices: list[str] = field(default_factory=list)
    ended: bool = False
    lines: int = 0


def parse(out: bytes) -> Seen:
    s = Seen()
    for raw in out.decode(errors="replace").splitlines():
        parts = raw.split(" ")
        if not parts or (parts[-1] == "" and len(parts) == 1):
            continue
        s.lines += 1
        tag = parts[0]
        if tag == "READY":
            s.ready = True
        elif tag == "C" and len(parts) >= 5:
            s.committed.append((int(parts[1]), parts[2], parts[3], parts[4]))
        elif tag == "SHOWN" and len(parts) >= 2:
            s.shown.append((len(s.committed), parts[1]))
        elif tag == "NOTICE":
            s.notices.append(" ".join(parts[1:]))
        elif tag == "END":
            s.ended = True
    return s


def workload(data: Path, seed: int, *, seconds: float | None = None, env: dict[str, str] | None = None,
             autocheckpoint: int = 16, segment_bytes: int = 96 * 1024) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(WORKLOAD), "--data", str(data), "--seed", str(seed),
            "--autocheckpoint", str(autocheckpoint), "--segment-bytes", str(segment_bytes)]
    if seconds is not None:
        args += ["--seconds", str(seconds)]
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, start_new_session=True)


def read_journal(data: Path) -> list[dict[str, object]]:
    from zoneinfo import ZoneInfo

    j = Journal(data, ZoneInfo("UTC"), "observer", readonly=True)
    try:
        return list(j.records())
    finally:
        j.close()


def check_confirmations(seen: Seen) -> list[str]:
    """Each confirmation follows the commit of what it confirms: a snooze record, or the record
    of a session's end (``done``, or ``extra`` for one the patient asked for: it ends with the
    same chime and "Well done")."""
    bad = []
    for idx, what in seen.shown:
        want = ("snooze",) if what.startswith("snooze") else ("done", "extra")
        if what == "not-saved":
            continue
        if not any(c[2] in want for c in seen.committed[:idx]):
            bad.append(f"'{what}' shown before any {' or '.join(want)} record was committed")
    return bad


def check_journal(data: Path, confirmed: dict[int, str]) -> list[str]:
    """Everything confirmed is there; no gap, no duplicate; the chain and files verify."""
    problems = []
    v = verify.verify_data(data)
    if not v.ok:
        problems.append(f"verify: {v.verdict}")
    recs = read_journal(data)
    by_seq = {int(str(r["seq"])): r for r in recs}
    seqs = [int(str(r["seq"])) for r in recs]
    if seqs != list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False:
        problems.append("seq is not gap-free")
    for seq, h in confirmed.items():
        r = by_seq.get(seq)
        if r is None:
            problems.append(f"confirmed record {seq} is missing")
        elif r["hash"] != h:
            problems.append(f"confirmed record {seq} was replaced by another")
    seen: set[str] = set()
    for r in recs:
        key = chain.canonical({k: v for k, v in r.items() if k not in ("seq", "prev", "hash")})
        if key in seen:
            problems.append(f"record {r['seq']} duplicates an earlier one")
        seen.add(key)
    return problems


# --- kill -9 ---------------------------------------------------------------------------

@dataclass
class KillResult:
    kills: int = 0
    confirmed: int = 0
    records: int = 0
    segments: int = 0
    seals: int = 0
    failures: list[str] = field(default_factory=list)
    startup_ms: list[float] = field(default_factory=list)


def kill_torture(count: int, seed: int, work: Path, *, max_run_s: float = 0.6, fresh_every: int = 250,
                 log: bool = False) -> KillResult:
    rnd = random.Random(seed)
    res = KillResult()
    confirmed: dict[int, str] = {}
    data = work / "data0"
    for n in range(count):
        if n and n % fresh_every == 0:
            res.records += len(read_journal(data))
            res.segments += len(list(data.glob("journal-*.sqlite")))
            data = work / f"data{n}"
            confirmed = {}
        if n % fresh_every == 0:
            from bedside.core import config
            from bedside.journal import seal

            seal.create(data, work / f"key{n}.json", config.Config().unit_id)
        t0 = time.monotonic()
        p = workload(data, seed * 100003 + n)
        # Wait for READY (the start-up check and start record are done), then a random moment.
        out = until_ready(p, t0)
        if b"READY" not in out:
            err = p.stderr.read().decode(errors="replace") if p.stderr else ""
            res.failures.append(f"kill #{n}: the daemon did not start: {err[-500:]}")
            p.kill()
            p.wait()
            break
        res.startup_ms.append((time.monotonic() - t0) * 1000)
        time.sleep(rnd.uniform(0, max_run_s))
        os.killpg(p.pid, signal.SIGKILL)
        rest, errors = p.communicate()
        out += rest
        if p.returncode != -signal.SIGKILL:
            res.failures.append(f"kill #{n}: the daemon had exited by itself ({p.returncode}): "
                                f"{errors.decode(errors='replace')[-500:]}")
        seen = parse(out)
        res.kills += 1
        for seq, h, _, _ in seen.committed:
            if seq in confirmed and confirmed[seq] != h:
                res.failures.append(f"kill #{n}: seq {seq} committed twice with different contents")
            confirmed[seq] = h
        res.confirmed += len(seen.committed)
        res.failures += [f"kill #{n}: {b}" for b in check_confirmations(seen)]
        if any(c[2] == "fault" for c in seen.committed):
            by_seq = {int(str(r["seq"])): r for r in read_journal(data)}
            faults = [by_seq[c[0]] for c in seen.committed if c[2] == "fault" and c[0] in by_seq]
            res.failures += [f"kill #{n}: a fault after the previous kill: {f.get('problem')}" for f in faults]
        bad = check_journal(data, confirmed)
        res.failures += [f"kill #{n}: {b}" for b in bad]
        if log and n % 50 == 0:
            print(f"  {n} kills, {len(confirmed)} records confirmed so far in this journal", flush=True)
        if res.failures:
            break
    res.records += len(read_journal(data))
    res.segments += len(list(data.glob("journal-*.sqlite")))
    res.seals = sum(1 for p in work.glob("data*") for r in read_journal(p) if r["type"] == "seal")
    return res


# --- storage faults --------------------------------------------------------------------

def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "bedside-torture", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def build_shim(work: Path) -> Path:
    so = work / "faultfs.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(so), str(TOOLS / "faultfs.c"), "-ldl"], check=True)
    return so


def fill(fs: Path) -> Path:
    """Fill the filesystem to the last byte with a file, for a real ENOSPC."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 512, 1):
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@dataclass
class FaultResult:
    name: str
    committed: int
    notices: list[str]
    faults: int
    cleared: int
    problems: list[str]


def _fault_run(name: str, data: Path, *, seconds: float, during: float, start_fault: object, end_fault: object,
               env: dict[str, str] | None = None) -> FaultResult:
    """Run the workload; after a moment make the fault happen, then clear it, and check everything."""
    p = workload(data, 7, seconds=seconds, env=env)
    out = until_ready(p)
    time.sleep(0.3)
    if callable(start_fault):
        start_fault()
    time.sleep(during)
    if callable(end_fault):
        end_fault()
    rest, err = p.communicate(timeout=seconds + 60)
    out += rest
    seen = parse(out)
    problems = []
    if p.returncode != 0 or not seen.ended:
        problems.append(f"the daemon did not keep running ({p.returncode}): {err.decode(errors='replace')[-800:]}")
    problems += check_confirmations(seen)
    problems += check_journal(data, {seq: h for seq, h, _, _ in seen.committed})
    recs = read_journal(data)
    faults = sum(1 for r in recs if r["type"] == "fault" and r.get("part") == "journal")
    cleared = sum(1 for r in recs if r["type"] == "fault_cleared" and r.get("part") == "journal")
    if faults < 1 or cleared < 1:
        problems.append(f"expected a journal fault and its clearing in the journal, found {faults} and {cleared}")
    if not any(n != "-" for n in seen.notices):
        problems.append("the fault was never shown")
    if seen.notices and seen.notices[-1] != "-":
        problems.append(f"the notice is still shown at the end: {seen.notices[-1]}")
    return FaultResult(name, len(seen.committed), seen.notices, faults, cleared, problems)


def enospc(work: Path) -> FaultResult:
    with tmpfs(work / "full", "4m") as fs:
        data = fs / "data"
        def full() -> None:
            fill(fs)

        def freed() -> None:
            (fs / "filler").unlink()

        return _fault_run("disk full (ENOSPC, tmpfs)", data, seconds=5.0, during=2.5, start_fault=full,
                          end_fault=freed)


def erofs(work: Path) -> FaultResult:
    """Writes refused as on a card the kernel made read-only, then accepted again (shim)."""
    so = build_shim(work)
    data = work / "erofs"
    env = {"LD_PRELOAD": str(so), "BEDSIDE_FAULT": "write:40:25:EROFS:journal-"}
    return _fault_run("read-only filesystem (EROFS on 25 writes)", data, seconds=3.0, during=0.1,
                      start_fault=None, end_fault=None, env=env)


@contextmanager
def ext4(where: Path, size_mb: int = 32) -> Iterator[tuple[Path, str]]:
    img = where.with_suffix(".img")
    subprocess.run(["truncate", "-s", f"{size_mb}M", str(img)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(img), str(where)], check=True)
    dev = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(where)], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        yield where, Path(dev).name
    finally:
        subprocess.run(["umount", str(where)], check=False)


def emergency_read_only(work: Path) -> FaultResult:
    """ext4 with errors=remount-ro: the kernel turns the filesystem read-only under the daemon (a
    real EROFS). The daemon keeps prompting and confirms nothing unsaved; after fsck and a
    restart, as after a reboot, the journal verifies and holds everything it confirmed."""
    mnt = work / "ext4"
    with ext4(mnt) as (fs, dev):
        data = fs / "data"
        trigger = Path(f"/sys/fs/ext4/{dev}/trigger_fs_error")

        def fail() -> None:
            trigger.write_text("1\n")

        p = workload(data, 5, seconds=2.5)
        out, err = _run_with(p, 0.5, fail)
        first = parse(out)
    img = mnt.with_suffix(".img")
    problems = []
    if p.returncode != 0 or not first.ended:
        problems.append(f"the daemon did not keep running on a read-only card ({p.returncode}): "
                        f"{err.decode(errors='replace')[-600:]}")
    if not any(n != "-" for n in first.notices):
        problems.append("the read-only card was never shown as a fault")
    problems += check_confirmations(first)
    if b"could not be saved" not in err:
        problems.append("the records that could not be saved were not reported at stop")
    subprocess.run(["e2fsck", "-f", "-y", str(img)], capture_output=True, check=False)
    with ext4_existing(img, mnt) as fs:
        data = fs / "data"
        p = workload(data, 6, seconds=1.0)
        out2, err2 = p.communicate(timeout=120)
        second = parse(out2)
        if p.returncode != 0 or not second.ended:
            problems.append(f"the daemon did not restart cleanly: {err2.decode(errors='replace')[-600:]}")
        committed = {seq: h for seq, h, _, _ in first.committed + second.committed}
        problems += check_journal(data, committed)
    img.unlink(missing_ok=True)
    return FaultResult("kernel remounted the card read-only (ext4 errors=remount-ro), then fsck and restart",
                       len(first.committed), first.notices, 0, 0, problems)


@contextmanager
def ext4_existing(img: Path, where: Path) -> Iterator[Path]:
    subprocess.run(["mount", "-o", "loop", str(img), str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def until_ready(p: subprocess.Popen[bytes], t0: float | None = None) -> bytes:
    """The workload's output up to its READY line (or up to a minute after ``t0``, or its end)."""
    assert p.stdout is not None
    out = b""
    t0 = time.monotonic() if t0 is None else t0
    while b"READY" not in out and time.monotonic() - t0 < 60:
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
    return out


def _run_with(p: subprocess.Popen[bytes], after: float, action: object) -> tuple[bytes, bytes]:
    out = until_ready(p)
    time.sleep(after)
    if callable(action):
        action()
    rest, err = p.communicate(timeout=120)
    return out + rest, err


def eio(work: Path, op: str = "fsync", nth: int = 40, times: int = 6) -> FaultResult:
    so = build_shim(work)
    data = work / f"eio-{op}"
    env = {"LD_PRELOAD": str(so), "BEDSIDE_FAULT": f"{op}:{nth}:{times}:EIO:journal-"}
    return _fault_run(f"I/O error on the {nth}th {op} ({times} times)", data, seconds=3.0, during=0.1,
                      start_fault=None, end_fault=None, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    kp = sub.add_parser("kill")
    kp.add_argument("--count", type=int, default=1000)
    kp.add_argument("--seed", type=int, default=11)
    sub.add_parser("faults")
    dp = sub.add_parser("damage", help="damage every file of a commissioned data directory (tools/damage.py)")
    dp.add_argument("--count", type=int, default=1000)
    dp.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.mode == "damage":
        sys.path.insert(0, str(TOOLS.parent))         # run as a script: tools/ is not a package on the path
        from tools import damage

        return damage.main(args.count, args.seed)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        if args.mode == "kill":
            t0 = time.monotonic()
            k = kill_torture(args.count, args.seed, work, log=True)
            took = time.monotonic() - t0
            med = sorted(k.startup_ms)[len(k.startup_ms) // 2] if k.startup_ms else 0
            print(json.dumps({"kills": k.kills, "records_confirmed": k.confirmed, "records": k.records,
                              "segments": k.segments, "seals": k.seals, "failures": k.failures[:10],
                              "median_start_ms": round(med), "seconds": round(took)}, indent=1))
            return 0 if not k.failures and k.kills == args.count else 1
        results: list[FaultResult] = []
        if can_mount():
            results += [enospc(work), emergency_read_only(work)]
        else:
            print("(not root: the ENOSPC and read-only-card runs need mount; skipped)")
        if shutil.which("cc"):
            results += [erofs(work), eio(work, "fsync"), eio(work, "write", nth=60, times=10),
                        eio(work, "fsync", nth=5, times=120)]
        ok = True
        for r in results:
            state = "OK" if not r.problems else "FAILED"
            ok &= not r.problems
            print(f"{state}: {r.name}: {r.committed} records committed, notices {r.notices}, "
                  f"{r.faults} fault / {r.cleared} cleared records")
            for p in r.problems:
                print(f"   {p}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
