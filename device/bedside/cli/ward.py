"""The ward's commands, run on the nurse's or engineer's laptop: ``bedside ward`` (one page for
the whole ward) and ``bedside fhir`` (the records as a FHIR R4 transaction for the hospital's
record system). docs/ward.md and docs/fhir.md describe them."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

from bedside.cli.common import UserError


def add_ward_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("ward", help="one overview page of a whole ward's units, the beds needing attention first",
                       description="Read every unit's record found in INPUT (pull folders, stick export folders or "
                       "a whole stick, export files, data directories), merge each unit's exports, check each as "
                       "bedside log verify does, and write one page (and a CSV) with a row per unit. Exit codes: 0 "
                       "written, 3 written but a record failed verification or contradicts another, 2 nothing "
                       "could be read.")
    w.add_argument("inputs", nargs="+", metavar="INPUT", help="folders and export files to read")
    w.add_argument("-o", "--output", required=True, help="the page to write, e.g. ward.html")
    w.add_argument("--csv", help="also write one row per unit to this CSV")
    w.add_argument("--stale-after", type=float, default=24.0, metavar="HOURS",
                   help="a record taken longer ago than this is flagged as old (%(default)s)")
    w.add_argument("--as-of", metavar="TIME", help="the overview as it stood at this local date-time, e.g. "
                   "2026-11-30T08:00 (default: now), for reprinting a past shift's page")
    w.set_defaults(func=cmd_ward)


def as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now().astimezone()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of {text!r} is not a date-time like 2026-11-30T08:00") from None
    return t if t.tzinfo is not None else t.astimezone()


def _writable(p: Path) -> None:
    if not p.parent.is_dir():
        raise UserError(f"cannot write {p}: the folder {p.parent} does not exist")


def cmd_ward(args: argparse.Namespace) -> int:
    from bedside.durable import write_text_atomic
    from bedside.report import ward, ward_page

    out = Path(args.output)
    csv_path = Path(args.csv) if args.csv else None
    for p in (out, *([csv_path] if csv_path else [])):
        _writable(p)
    if csv_path is not None and csv_path.resolve() == out.resolve():
        raise UserError("the page and the CSV would be the same file")
    if args.stale_after <= 0:
        raise UserError("--stale-after must be a number of hours above 0")
    problems: list[str] = []
    sources = ward.find([Path(i) for i in args.inputs], problems.append)
    for problem in problems:
        print(f"bedside: skipped: {problem}", file=sys.stderr)
    if not sources:
        raise UserError("no unit's record was found in " + ", ".join(args.inputs))
    now = as_of(args.as_of)
    stale = timedelta(hours=args.stale_after)
    rows = ward.rows(ward.merge(sources), now, stale)
    try:
        write_text_atomic(out, ward_page.render(rows, now, out, problems, stale))
        if csv_path is not None:
            write_text_atomic(csv_path, ward_page.csv_text(rows))
    except OSError as e:
        raise UserError(f"cannot write the overview: {e.strerror} ({e.filename})", 1) from None
    need = [r for r in rows if r.flags]
    print(f"Wrote {out}" + (f" and {csv_path}" if csv_path else "") +
          f": {len(rows)} unit(s) from {len(sources)} export(s), {len(need)} needing attention.")
    for r in need:
        print(f"  {r.unit}: " + ", ".join(ward.FLAG_TEXT[f] for f in r.flags))
    broken = [r for r in rows if "broken" in r.flags]
    if broken:
        print("bedside: " + ", ".join(r.unit for r in broken) + ": record FAILED verification or contradicts "
              "another export; the page says where.", file=sys.stderr)
        return 3
    return 0
