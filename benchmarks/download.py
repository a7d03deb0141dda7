"""Benchmark of the serial download: bytes on the wire per record, and the time to download
30 days of the default regimen at 115200 baud.

Usage: ``make bench`` (with the core benchmarks) or ``python benchmarks/download.py`` (about
a minute). The unit is the real daemon in a thread on a virtual clock; the laptop is
``bedside pull``'s own code; between them the test rig's cable: two pty pairs and a relay
that holds each chunk for as long as 115200 baud 8N1 takes to send it (ten bits a byte).
The goal (docs/serial.md): at most 1.2 times the raw JSONL export on the wire, so 30 days
in at most 15 s. Results go between the ``bench:serial`` markers of docs/performance.md.
(Not called serial.py: run as a script, its folder comes first on sys.path and a file of
that name would stand in for pyserial.)
"""

from __future__ import annotations

import io
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rigs.serial_rig import SECRET, Cable, RunningUnit, cheap_ward

from bedside import secret
from bedside.core import config, planner
from bedside.journal.journal import Journal
from bedside.laptop import pull
from bedside.laptop.client import SerialTransport
from bedside.link import batch
from bedside.unit import simulate
from benchmarks import docs

BAUD = 115200
DAYS = 30
CFG = config.Config()


def month(folder: Path, answered: bool) -> Path:
    """A unit's journal after 30 days of the default regimen: every session missed, or every one done."""
    data = folder / ("answered" if answered else "unanswered")
    cheap_ward(data)
    start = datetime(2026, 10, 25, 6, 0, tzinfo=CFG.tz)
    actions = []
    if answered:
        # A patient who answers every session two minutes after it is offered.
        actions = [simulate.Action(s.offer.astimezone(CFG.tz) + timedelta(minutes=2), "press", 0.3)
                   for s in planner.sessions_between(CFG, start, start + timedelta(days=DAYS))]
    sim = simulate.build(CFG, data, start, actions=actions)
    sim.unit.run(until=start + timedelta(days=DAYS))
    sim.close()
    return data


def raw_export(data: Path) -> tuple[int, int]:
    """(records, bytes) of ``bedside log export`` for this journal: one canonical JSON line per record."""
    j = Journal(data, CFG.tz, "bench", readonly=True)
    try:
        lines = [batch.export_line(r) for r in j.records()]
    finally:
        j.close()
    return len(lines), sum(len(x.encode()) + 1 for x in lines)


def download(data: Path, folder: Path, baud: int | None) -> dict[str, float]:
    """One whole pull over the emulated cable; wire bytes each way and the wall time."""
    unit_copy = folder / "unit"
    shutil.rmtree(unit_copy, ignore_errors=True)
    shutil.copytree(data, unit_copy)
    out = folder / "laptop"
    shutil.rmtree(out, ignore_errors=True)
    cable = Cable(folder, baud=baud).plug()
    try:
        # The ward secret at the unit's own scrypt cost: a laptop answers no cheaper one.
        with RunningUnit(unit_copy, cable.unit_path, datetime(2026, 11, 24, 6, 0, tzinfo=CFG.tz),
                         ward=cheap_ward(unit_copy, n=secret.N)):
            t0 = time.perf_counter()
            got = pull.pull(lambda: SerialTransport(str(cable.laptop_path), BAUD), out, lambda u, n: SECRET,
                            progress_out=io.StringIO())
            seconds = time.perf_counter() - t0
    finally:
        cable.unplug()
    return {"seconds": seconds, "to_laptop": cable.to_laptop, "to_unit": cable.to_unit, "records": got.head[0]}


def lean_vs_full(data: Path) -> dict[str, int]:
    """Bytes of the batches alone, in the lean form (hashes recomputed by the laptop) and as stored."""
    j = Journal(data, CFG.tz, "bench", readonly=True)
    try:
        recs = list(j.records())
    finally:
        j.close()
    head = (recs[-1]["seq"], recs[-1]["hash"])
    out = {}
    for name, lean in (("lean", True), ("full", False)):
        n = pull.BATCH_MAX
        out[name] = sum(len(batch.pack(recs[i:i + n], head=head, lean=lean).encode(1))
                        for i in range(0, len(recs), n))
    return out


def pack_cost(data: Path) -> dict[str, float]:
    """The unit's CPU for one batch as the tool asks for it: the loop's journal read, and the link thread's packing."""
    j = Journal(data, CFG.tz, "bench", readonly=True)
    try:
        reads, packs = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            recs = list(islice(j.records(0), pull.BATCH_MAX))
            t1 = time.perf_counter()
            batch.pack(recs, head=(recs[-1]["seq"], recs[-1]["hash"])).encode(1)
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            packs.append(t2 - t1)
    finally:
        j.close()
    return {"read_ms": statistics.median(reads) * 1000, "pack_ms": statistics.median(packs) * 1000}


def measure() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for answered in (False, True):
            label = "every session done" if answered else "every session missed"
            print(f"30 days, {label} ...", flush=True)
            data = month(folder, answered)
            n, raw = raw_export(data)
            runs = [download(data, folder / "run", BAUD) for _ in range(3)]
            secs = statistics.median(r["seconds"] for r in runs)
            wire = statistics.median(r["to_laptop"] + r["to_unit"] for r in runs)
            sizes = lean_vs_full(data)
            fast = download(data, folder / "run", None)
            rows += [
                (f"30 days, {label}: {n} records, raw JSONL export", "—", f"{raw / 1024:.0f} KiB, "
                 f"{raw / n:.0f} bytes a record; sent as it is: {raw * 10 / BAUD:.1f} s at 115200"),
                ("  bytes on the wire for the whole pull (both ways)", "≤ 1.2× raw",
                 f"{wire / 1024:.0f} KiB = {wire / raw:.2f}× raw, {wire / n:.0f} bytes a record"),
                ("  download time at 115200 baud (emulated wire)", "≤ 15 s",
                 f"{secs:.1f} s (median of 3); the wire alone {wire * 10 / BAUD:.1f} s"),
                ("  batches: lean (hashes recomputed) / as stored", "—",
                 f"{sizes['lean'] / 1024:.0f} KiB / {sizes['full'] / 1024:.0f} KiB "
                 f"({sizes['full'] / sizes['lean']:.1f}× larger as stored)"),
                ("  the same pull over a pty at full speed (a USB gadget port)", "—", f"{fast['seconds']:.2f} s"),
            ]
        cost = pack_cost(data)
        rows.append((f"Unit's CPU per {pull.BATCH_MAX}-record batch: loop (journal read) / link thread (pack)", "—",
                     f"{cost['read_ms']:.1f} ms / {cost['pack_ms']:.1f} ms (plan ×10 on a Pi Zero 2 W)"))
    return rows


def write(rows: list[tuple[str, str, str]]) -> str:
    return docs.write_section("serial", "Serial download", [docs.measured_on("make bench"), "", *docs.table(rows)])


def main() -> None:
    print(write(measure()))


if __name__ == "__main__":
    main()
