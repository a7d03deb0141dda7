"""A power cut in the middle of a guided session, with the real daemon killed by SIGKILL."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import time
from pathlib import Path

from tests.rigs.procs import ROOT, bedside, child


def _trace_has_start(trace: Path) -> bool:
    if not trace.exists():
        return False
    lines = [json.loads(x) for x in trace.read_text().splitlines() if x.endswith("}")]
    return any(x.get("type") == "press" and x.get("action") == "start" for x in lines)


def test_kill_9_mid_guide_is_recorded_started_and_interrupted(tmp_path: Path) -> None:
    data, trace, script = tmp_path / "data", tmp_path / "trace.jsonl", tmp_path / "press.txt"
    script.write_text("2026-11-24T09:00:20 press\n")
    # Twenty times real speed: the 60-rep routine takes several real seconds, so the cut lands inside it.
    with child(bedside("simulate", "--headless", "--start", "2026-11-24T08:59:00", "--until", "2026-11-24T10:00",
                       "--speed", "20", "--script", str(script), "--data", str(data), "--trace", str(trace))) as p:
        end = time.monotonic() + 60
        while not _trace_has_start(trace):
            assert p.poll() is None and time.monotonic() < end, "the guide never started"
            time.sleep(0.1)
        time.sleep(2.0)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    after = subprocess.run(bedside("simulate", "--headless", "--start", "2026-11-24T09:03:00",
                                   "--until", "2026-11-24T09:45", "--data", str(data)),
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stderr
    export = subprocess.run(bedside("log", "export", "--data", str(data)), cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    recs = [json.loads(x) for x in export.stdout.splitlines()[1:]]
    sid = "2026-11-24T09:00 routine"
    mine = [r for r in recs if r.get("session") == sid]
    assert [r["type"] for r in mine] == ["prompt", "press", "interrupted"]   # no repeat, never missed
    cut = mine[-1]
    # planned: 40 ankle pumps, and the quad and glute sets 2 x 10 each.
    assert cut["reason"] == "power_loss" and cut["reps"] == "unknown" and cut["planned"] == 80
    pressed = mine[1]["time"][:19] + mine[1]["time"][23:]          # to the second, as records give times
    assert cut["started"] == pressed
    out = tmp_path / "r.csv"
    rep = subprocess.run(bedside("report", str(data), "-o", str(tmp_path / "r.html"), "--csv", str(out)),
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr
    row = next(r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))) if r["session"] == sid)
    assert (row["outcome"], row["missed_reason"], row["reps"], row["interrupted_by"]) == (
        "interrupted", "", "unknown", "power_loss")
    assert row["started"] == pressed[:19].replace("T", " ")        # local, as spreadsheets read date-times
    html = (tmp_path / "r.html").read_text()
    assert "Begun, then interrupted" in html and "reps unknown" in html
