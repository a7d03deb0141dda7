"""Peak memory of the laptop's readers of a unit's record, each whole command from outside:
``bedside report``, ``bedside fhir`` (to a file), ``bedside ward`` with two overlapping exports
of the unit (yesterday's pull and today's stick), and ``bedside pull``'s writing of its three
files from the laptop's copy (``laptop.pull.write_outputs``, run alone in a child: the serial
download before it is not included).

Two records: a healthy year of a unit's journal made by the simulator (``benchmarks/journals.py``,
as the stick's benchmark makes it) exported with ``bedside log export``, and one export of about
400,000 records (a bed's hourly sessions for 41 years, ``benchmarks/ward.py``'s ``long_export``).
Max RSS and CPU (user + system) of each process from GNU time (``/usr/bin/time``): the
interpreter and imports included.

Usage: ``python benchmarks/laptop_memory.py [--tree DIR] [--skip-long] [--skip-year] [--only WORD]``
(``--only fhir``: the commands whose name holds the word);
``--tree DIR`` runs another tree's ``device/`` (the figures before a change: ``git archive REF
device | tar -x -C DIR``). Figures go to docs/performance.md ("Hostile input").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20

WRITE_OUTPUTS = """
import sys
from pathlib import Path
from bedside.laptop import pull
out, unit = Path(sys.argv[1]), sys.argv[2]
store = pull.JournalCopy(out, unit).open()
got = pull.Outcome(unit, {"version": "bench"}, 1, store.head)
files, lines, verdict = pull.write_outputs(out, got)
print(verdict.verdict)
"""


def run(code: Path, *args: str) -> tuple[float, float]:
    """(CPU seconds, max RSS in MiB) of one process, from outside (GNU time)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", sys.executable, *args], capture_output=True, text=True,
                       cwd=ROOT, check=False, env=env)
    if r.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(args[:3])} failed ({r.returncode}):\n{r.stdout}{r.stderr[-3000:]}")
    user, system, kib = r.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), int(kib) / 1024


def bedside(code: Path, *args: str) -> tuple[float, float]:
    return run(code, "-m", "bedside", *args)


def header_and_lines(path: Path) -> tuple[dict[str, object], int]:
    with path.open("rb") as f:
        header = json.loads(f.readline())
        n = sum(1 for _ in f)
    return header, n


def two_exports(path: Path, into: Path, unit: str) -> list[Path]:
    """The export cut in two overlapping exports of the unit: its first three quarters (a pull)
    and its last three quarters (a stick export), each with its own header."""
    sys.path.insert(0, str(ROOT / "device"))
    from bedside.journal import export

    _, n = header_and_lines(path)
    cuts = [(0, n * 3 // 4, into / "pulls" / f"{unit}-journal.jsonl"),
            (n // 4, n, into / "STICK" / "Bedside" / f"{unit}_2026-11-30_1535" / "journal.jsonl")]
    out = []
    for lo, hi, target in cuts:
        target.parent.mkdir(parents=True, exist_ok=True)

        def recs(lo: int = lo, hi: int = hi) -> object:
            with path.open("rb") as f:
                f.readline()
                for i, line in enumerate(f):
                    if lo <= i < hi:
                        yield json.loads(line)

        header = export.header_for(recs(), since_seq=0, segments=[])  # type: ignore[arg-type]
        first = header.get("first")
        if isinstance(first, dict):
            header["since_seq"] = first["seq"] - 1
        with target.open("w", encoding="utf-8") as f:
            f.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
            with path.open("rb") as src:
                src.readline()
                for i, line in enumerate(src):
                    if lo <= i < hi:
                        f.write(line.decode("utf-8"))
        out.append(target)
    return out


def laptop_copy(path: Path, into: Path, unit: str) -> Path:
    """A laptop's copy of the unit (``.bedside/UNIT/records.jsonl``, as ``bedside pull`` keeps it)."""
    folder = into / ".bedside" / unit
    folder.mkdir(parents=True)
    with path.open("rb") as src, (folder / "records.jsonl").open("wb") as dst:
        src.readline()
        shutil.copyfileobj(src, dst)
    return into


def measure(what: str, path: Path, code: Path, tmp: Path, data: Path | None = None) -> None:
    header, n = header_and_lines(path)
    unit = str(header.get("unit") or "unit")
    size = path.stat().st_size / MIB
    print(f"\n{what}: {n:,} records, {size:.1f} MiB ({code})", flush=True)
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    cases: list[tuple[str, Callable[[], tuple[float, float]]]] = [
        ("bedside report FILE", lambda: bedside(code, "report", str(path), "-o", str(out / "r.html"))),
        ("bedside fhir FILE -o (daily summaries)", lambda: bedside(code, "fhir", str(path), "-o", str(out / "f.json"))),
    ]
    if data is not None:
        cases.append(("bedside report DIR (the unit's data directory)",
                      lambda: bedside(code, "report", str(data), "-o", str(out / "d.html"))))
    two = tmp / "two"
    if not two.exists():
        two_exports(path, two, unit)
    cases.append(("bedside ward, two overlapping exports (3/4 each)",
                  lambda: bedside(code, "ward", str(two), "-o", str(out / "w.html"), "--as-of",
                                  "2026-11-30T16:00+01:00")))
    copy = tmp / "copy"
    if not copy.exists():
        laptop_copy(path, copy, unit)
    cases.append(("bedside pull's three files (write_outputs)",
                  lambda: run(code, "-c", WRITE_OUTPUTS, str(copy), unit)))
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    for name, case in cases:
        if only not in name:
            continue
        try:
            cpu, mib = case()
            print(f"  {name}: max RSS {mib:.0f} MiB ({mib / size:.2f}x the export), {cpu:.1f} CPU-s", flush=True)
        except SystemExit as e:
            print(f"  {name}: FAILED {str(e)[:400]}", flush=True)


def main() -> None:
    args = sys.argv[1:]
    code = ROOT / "device"
    if "--tree" in args:
        code = Path(args[args.index("--tree") + 1]).resolve() / "device"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "--skip-year" not in args:
            from benchmarks import journals

            data = tmp / "year"
            journals.build(data, 365, tmp / "hospital-key.json")
            path = tmp / "year.jsonl"
            subprocess.run([sys.executable, "-m", "bedside", "log", "export", "--data", str(data), "--out", str(path)],
                           check=True, capture_output=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "device")})
            (tmp / "y").mkdir()
            measure("a healthy year", path, code, tmp / "y", data)
        if "--skip-long" not in args:
            from benchmarks.ward import long_export

            path = long_export(tmp / "long", 400_000)
            (tmp / "l").mkdir()
            measure("one export of about 400,000 records", path, code, tmp / "l")


if __name__ == "__main__":
    main()
