"""``bedside report``: the adherence report and the sessions CSV from an export or a data directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bedside.cli.common import UserError


def add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser("report", help="write the adherence report (HTML) and a CSV of sessions")
    rp.add_argument("input", help="an export file (bedside log export) or a unit's data directory")
    rp.add_argument("-o", "--output", required=True, help="the HTML report to write, e.g. report.html")
    rp.add_argument("--csv", help="the CSV of sessions to write (default: the report's name ending in .csv)")
    rp.add_argument("--episode", help="report on this admission episode only")
    rp.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from bedside.report import files as report_files
    from bedside.report import model as report

    out = Path(args.output)
    csv_path = Path(args.csv) if args.csv else out.with_suffix(".csv")
    if csv_path.resolve() == out.resolve():
        raise UserError("the report and the CSV would be the same file; give -o a name ending in .html")
    for p in (out, csv_path):
        if not p.parent.is_dir():
            raise UserError(f"cannot write {p}: the folder {p.parent} does not exist")
    try:
        loaded = report.load(Path(args.input))
        made = report_files.write(loaded.records, out, csv_path, header=loaded.header, damaged=loaded.damaged,
                            episode=args.episode, source=loaded.source)
    except report.ReportError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot write the report: {e.strerror} ({e.filename})", 1) from None
    print(f"Wrote {out} and {csv_path}: {report.summary(made)}.")
    if not made.verdict.ok:
        for problem in report.iter_problems(made.verdict):
            print(f"  - {problem}", file=sys.stderr)
        print("bedside: the record FAILED verification; the report says so on its first line.", file=sys.stderr)
        return 3
    return 0
