"""The invariants of a unit's data directory after a power cut (make vm-test), run in the VM
with the installed unit's Python: /opt/bedside/venv/bin/python check_state.py ...

  --data DIR        the data directory as the cut left it (file system already mounted)
  --config FILE     the unit's config (its time zone)
  --confirmed FILE  JSON list of the records the unit had confirmed before the cut (each with
                    "time" and "type", from its trace): every one must be in the journal
  --restart         then start the unit on it (its own daemon code, as the simulator runs it)
                    and check what it records about the cut

Prints one JSON object: ok, problems, and what was found. Exit 0 whatever the verdict."""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

BEDSIDE = os.environ.get("BEDSIDE_BIN", "/opt/bedside/venv/bin/bedside")
ENDS = {"done", "missed", "interrupted"}


def cli(*args: str) -> tuple[int, str, str]:
    """`bedside ARGS` as the installed command runs it (its own entry point, this interpreter
    being the installed venv's), in this process: under TCG each Python start costs seconds,
    and a crash state is checked with four of these."""
    from bedside.cli.main import main as bedside

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = bedside(list(args))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def export(data: Path) -> list[dict[str, Any]]:
    rc, out, err = cli("log", "export", "--data", str(data))
    if rc != 0:
        raise RuntimeError(f"log export exited {rc}: {err.strip()[-400:]}")
    return [json.loads(line) for line in out.splitlines()[1:] if line.strip()]


def verify(data: Path) -> tuple[int, str]:
    rc, out, err = cli("log", "verify", "--data", str(data))
    return rc, (out.strip().splitlines() or [err.strip()])[0]


def open_sessions(records: list[dict[str, Any]]) -> set[str]:
    """Sessions a press started that no record ended."""
    started = {r["session"] for r in records
               if r["type"] == "press" and r.get("action") == "start" and r.get("session")}
    ended = {r.get("session") for r in records if r["type"] in ENDS}
    return started - ended


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--confirmed", required=True)
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--user", default="bedside")
    a = ap.parse_args()
    data = Path(a.data)
    confirmed = json.loads(Path(a.confirmed).read_text())
    problems: list[str] = []
    out: dict[str, Any] = {"confirmed": len(confirmed)}
    if not any(data.glob("journal-*.sqlite")):
        # Cut before the unit's first record reached the card: nothing may have been confirmed.
        out["journal"] = "none yet"
        if confirmed:
            problems.append(f"no journal, but {len(confirmed)} records were confirmed")
        out.update(ok=not problems, problems=problems)
        print(json.dumps(out))
        return 0
    rc, verdict = verify(data)
    out["verdict"] = verdict
    if rc != 0:
        problems.append(f"verify exited {rc}: {verdict}")
    before = export(data)
    out["records"] = len(before)
    have = {(r["time"], r["type"]) for r in before}
    lost = [c for c in confirmed if (c["time"], c["type"]) not in have]
    if lost:
        problems.append(f"{len(lost)} confirmed records lost, first {lost[0]}")
    if a.restart and before:
        from bedside.unit import host

        tz = host.load(Path(a.config)).tz
        last = max(datetime.fromisoformat(r["time"]) for r in before)
        start = (last + timedelta(minutes=3)).astimezone(tz).replace(tzinfo=None)
        until = start + timedelta(minutes=10)
        r = subprocess.run(["runuser", "-u", a.user, "--", BEDSIDE, "simulate", "--headless", "--config", a.config,
                            "--data", str(data), "--start", start.isoformat(timespec="seconds"),
                            "--until", until.isoformat(timespec="seconds")],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            problems.append(f"the unit did not start on this state: exit {r.returncode}: {r.stderr.strip()[-300:]}")
        else:
            rc2, verdict2 = verify(data)
            if rc2 != 0:
                problems.append(f"after the restart verify exited {rc2}: {verdict2}")
            after = export(data)[len(before):]
            types = [x["type"] for x in after]
            out["restart"] = types[:6]
            cleanly = before[-1]["type"] == "stop"
            if not cleanly and "power_loss" not in types:
                problems.append(f"restart after a cut recorded no power_loss: {types[:6]}")
            for s in open_sessions(before):
                got = [x for x in after if x.get("session") == s and x["type"] in ENDS]
                if not got or got[0]["type"] != "interrupted" or got[0].get("reason") != "power_loss":
                    problems.append(f"session {s} under way at the cut: recorded {got[:1]}, not interrupted/power_loss")
            # Never better than what happened: nothing after the cut claims a session done.
            if any(x["type"] == "done" for x in after):
                problems.append("a session was recorded done after the cut")
    out.update(ok=not problems, problems=problems)
    print(json.dumps(out))
    return 0


sys.exit(main())
