"""``bedside report``: the adherence report and the sessions CSV from an export or a data directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bedside.cli.common import UserError


def add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser("report", help="write the adherence report (HTML) and a CSV of sessions",
                        description="Read one unit's record from INPUT: an export file, a pull folder, a stick or "
                        "its export folders, or a unit's data directory (as bedside ward and bedside fhir do); "
                        "several exports of the unit are merged. Exit codes as in the README: 0 written, 2 "
                        "nothing could be read (or wrong use), 3 written but the record failed verification.")
    rp.add_argument("inputs", nargs="+", metavar="INPUT", help="export files and folders holding the unit's record")
    rp.add_argument("--unit", help="the unit to report on when the inputs hold several units' records")
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
    from bedside.journal.segments import JournalError

    try:
        records = _one_unit([Path(i) for i in args.inputs], args.unit)
        made = report_files.write_from(records, out, csv_path, episode=args.episode)
    except report.ReportError as e:
        raise UserError(str(e)) from None
    except JournalError as e:
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


def _one_unit(inputs: list[Path], unit: str | None) -> Any:
    """The records to report on (read a record at a time, ``model.Records``): one export file or
    data directory exactly as given (its header and damage kept), else every export found in the
    inputs (as ``bedside ward`` finds them), one unit's merged."""
    from bedside.report import model as report
    from bedside.report import ward

    if len(inputs) == 1 and unit is None and (inputs[0].is_file() or not inputs[0].exists() or
                                              ward.is_data_dir(inputs[0])):
        return report.read(inputs[0])
    problems: list[str] = []
    units = ward.merge(ward.find(inputs, problems.append))
    if not units:
        raise report.ReportError("no unit's record was found: " + "; ".join(problems[:3]) if problems else
                                 "no unit's record was found in " + ", ".join(map(str, inputs)))
    for problem in problems:
        print(f"bedside: skipped: {problem}", file=sys.stderr)
    if unit is not None:
        units = [u for u in units if u.unit == unit]
        if not units:
            raise report.ReportError(f"no record of unit {unit} was found in " + ", ".join(map(str, inputs)))
    if len(units) > 1:
        raise report.ReportError(f"{', '.join(map(str, inputs))} hold the records of {len(units)} units ("
                                 + ", ".join(u.unit for u in units[:8]) + "): choose one with --unit, or use "
                                 "bedside ward for the whole ward")
    (u,) = units
    if len(u.exports) == 1 and not u.contradicting:
        # One export: read as given (a ward's reading keeps no damaged lines; the report shows them).
        return report.read(u.exports[0].path)
    return report.Given(u.records, u.unit)
