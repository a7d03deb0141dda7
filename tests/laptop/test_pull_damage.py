"""``bedside pull`` from a unit whose journal is damaged: every record the unit can read is
saved, verified up to the break and flagged after it, with ``log verify``'s verdict, and exit 3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from bedside.core import config
from tests.rigs.procs import ROOT, bedside, child
from tests.rigs.serial_rig import SECRET, unit_with_days, wait_for

CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of a unit, in four small segments (records 1-58, 59-115, 116-172, 173-)."""
    d = unit_with_days(tmp_path_factory.mktemp("clean") / "unit", local("2026-11-14T06:00"),
                       local("2026-11-17T06:00"), segment_bytes=48 * 1024)
    assert len(list(d.glob("journal-*.sqlite"))) == 4
    return d


def _flip_record_23(d: Path) -> None:
    """One byte of record 23's body, on the card, changed (its JSON still reads)."""
    for f in sorted(d.glob("journal-*.sqlite")):
        b = bytearray(f.read_bytes())
        i = b.find(b'"seq":23,')
        if i >= 0:
            j = b.find(b'"time":"2026', i)       # keys are sorted: its time follows its seq
            b[j + 11] = ord("7")                  # 2026 -> 2027
            os.chmod(f, 0o644)
            f.write_bytes(bytes(b))
            return
    raise AssertionError("record 23 not found")


def _delete_middle(d: Path) -> None:
    (d / "journal-000002.sqlite").unlink()


def _truncate_newest(d: Path) -> None:
    f = sorted(d.glob("journal-*.sqlite"))[-1]
    with open(f, "r+b") as h:
        h.truncate(int(f.stat().st_size * 0.6))


DAMAGE = {"flipped byte in record 23": (_flip_record_23, 23), "deleted middle segment": (_delete_middle, 59),
          "truncated newest segment": (_truncate_newest, None)}


def _export(*args: str) -> list[dict[str, object]]:
    r = subprocess.run(bedside("log", "export", *args), cwd=ROOT, capture_output=True, text=True, timeout=60)
    return [json.loads(x) for x in r.stdout.splitlines()[1:]]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_pull_saves_every_readable_record_and_flags_the_break(clean: Path, tmp_path: Path, damage: str) -> None:
    do, break_at = DAMAGE[damage]
    data = tmp_path / "unit"
    shutil.copytree(clean, data)
    for f in data.glob("journal-*.sqlite"):
        os.chmod(f, 0o644)
    do(data)
    unit_tty, laptop_tty = tmp_path / "unit-tty", tmp_path / "laptop-tty"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    with child(["socat", f"pty,raw,echo=0,link={unit_tty}", f"pty,raw,echo=0,link={laptop_tty}"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        wait_for(lambda: unit_tty.exists() and laptop_tty.exists(), what="socat's ptys")
        with child(bedside("simulate", "--headless", "--data", str(data), "--start", "2026-11-17T06:00",
                           "--speed", "60", "--serial", str(unit_tty)), env=env) as sim:
            assert sim.stderr is not None
            line = sim.stderr.readline()
            assert "serial link open" in line, line
            r = subprocess.run(bedside("pull", "--port", str(laptop_tty), "--out", str(out), "--secret-file",
                                       str(secret_file)), cwd=ROOT, capture_output=True, text=True, timeout=120)
            sim.terminate()
            sim.wait(30)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "FAILED verification" in r.stderr
    lines = r.stdout.splitlines()
    assert "chain verified up to record" in lines[0]
    brk = next(x for x in lines if x.startswith("BREAK at record "))
    if break_at is not None:
        assert brk.startswith(f"BREAK at record {break_at}:")
    pulled = _export_file(out / "ward7-bed12-journal.jsonl")
    # Every record the unit can read (its own export, after it stopped) up to what the pull saw: none left out.
    unit = [x for x in _export("--data", str(data)) if int(str(x["seq"])) <= int(str(pulled[-1]["seq"]))]
    assert [(x["seq"], x["hash"]) for x in pulled] == [(x["seq"], x["hash"]) for x in unit]
    assert len(pulled) > 100
    # The same verdict as `bedside log verify` on the saved export, and it is a break.
    v = subprocess.run(bedside("log", "verify", str(out / "ward7-bed12-journal.jsonl")), cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 3 and v.stdout.startswith("BROKEN")
    assert f"Export: {v.stdout.splitlines()[0]}" in lines
    assert "FAILED VERIFICATION" in (out / "ward7-bed12-report.html").read_text()
    # What followed the break is kept apart: the verified copy stays an exact beginning of the journal.
    assert (out / ".bedside" / "ward7-bed12" / "after-break.jsonl").exists()


def _export_file(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()[1:]]
