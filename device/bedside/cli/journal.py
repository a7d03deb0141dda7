"""The journal's commands: ``bedside log export``, ``bedside log verify`` and ``bedside keys init``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside.cli.common import DEFAULT_DATA, UserError, busy
from bedside.core.records import T
from bedside.journal import seal


def hospital_key(path: str | None) -> seal.HospitalKey | None:
    """The hospital's seal key named by ``--key``, or None; a bad file is the user's to fix."""
    if not path:
        return None
    try:
        return seal.load_hospital_key(Path(path))
    except seal.SealError as e:
        raise UserError(str(e)) from None


def add_log_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lg = sub.add_parser("log", help="journal tools")
    lsub = lg.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    le = lsub.add_parser("export", help="write the journal to standard output (or --out FILE)")
    le.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    le.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                    help="JSON lines, the whole record (default), or CSV of the main fields")
    le.add_argument("--out", help="write a JSONL export to this file (whole, synced) and note it as exported")
    le.set_defaults(func=cmd_log_export)
    v = lsub.add_parser("verify", help="check a journal's chain, seals, seq and segments; non-zero exit on any break",
                        description="Check a unit's journal (--data DIR) or an export file (FILE): the hash chain, "
                        "gap-free seq, boots, segments and, with --key, every seal. Prints a verdict naming the "
                        "first bad record. FILE may also be a pull folder or a ward stick: every export in it is "
                        "checked. Exit codes as in the README: 0 all hold, 3 a break, 2 nothing could be read.")
    v.add_argument("file", nargs="?", help="an export file (from bedside log export), a folder of them (a pull "
                   "folder, a ward stick) or a data directory; default: the --data journal")
    v.add_argument("--data", help=f"a unit's data directory (default {DEFAULT_DATA})")
    v.add_argument("--key", help="the hospital's seal key file (from bedside keys init): checks every seal")
    v.add_argument("--extends", metavar="EARLIER", help="an earlier export (or its head SEQ/HASH, as on the nurse "
                   "screen) that this journal must contain or continue: catches removed newest records")
    v.add_argument("--json", action="store_true", help="print the verdict as JSON")
    v.set_defaults(func=cmd_log_verify)


def add_keys_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser("keys", help="the journal's seal key (commissioning)")
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    ki = ksub.add_parser("init", help="create the unit's seal key and write the hospital's copy once (the unit "
                         "must be stopped; refuses if the unit already has a key)")
    ki.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    ki.add_argument("--out", required=True, help="where to write the hospital's copy of the key (e.g. a USB stick); "
                    "it is written once and never again")
    ki.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    ki.set_defaults(func=cmd_keys_init)


# --- export ----------------------------------------------------------------------------

def cmd_log_export(args: argparse.Namespace) -> int:
    from bedside.journal import export
    from bedside.journal.journal import Journal

    if args.format == "jsonl":
        return export_jsonl(Path(args.data), args.out)
    if args.out:
        raise UserError("--out writes a verifiable JSONL export; for CSV redirect standard output")
    journal = Journal(Path(args.data), ZoneInfo("UTC"), "export", readonly=True)
    try:
        export.write_csv(sys.stdout, journal.records())
    except BrokenPipeError:
        pass
    finally:
        journal.close()
    return 0


def export_jsonl(data: Path, out_path: str | None) -> int:
    """The header line, then every record; to a file (written whole, then marked exported) or stdout."""
    from bedside.journal import export, retention
    from bedside.journal.journal import Journal

    # Written as it is read, one record at a time (export.stream): the export is never held whole.
    journal = Journal(data, ZoneInfo("UTC"), "export", readonly=True)
    try:
        if out_path is None:
            with contextlib.suppress(BrokenPipeError):
                export.stream(journal, sys.stdout)
            return 0
        from bedside.durable import atomic_writer

        out = Path(out_path)
        try:
            with atomic_writer(out) as f:
                header = export.stream(journal, f)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}", 1) from None
        except export.ExportChanged as e:
            raise UserError(f"{e}", 1) from None
    finally:
        journal.close()
    head = header["head"]
    print(f"Exported {header['records']} records of unit {header['unit'] or '?'} to {out}; head "
          f"{head['seq']}/{head['hash'][:8]}.", file=sys.stderr)
    if header["records"]:
        try:
            retention.mark_exported(data, head["seq"], head["hash"], str(out), datetime.now(UTC))
        except OSError as e:
            print(f"bedside: note: could not record the export in {data} ({e.strerror or e}); "
                  "the journal keeps these records until a later export is recorded", file=sys.stderr)
    return 0


# --- verify ----------------------------------------------------------------------------

def cmd_log_verify(args: argparse.Namespace) -> int:
    from bedside.journal import export, verify
    from bedside.journal.segments import JournalError

    if args.file and args.data:
        raise UserError("give either an export FILE or --data DIR, not both")
    key = hospital_key(args.key)
    given = Path(args.file) if args.file else None
    if given is not None and given.is_dir() and not any(given.glob("journal-*.sqlite")):
        return _verify_folder(given, key, args)
    if given is not None and given.is_dir():
        args.file, args.data = None, str(given)          # a data directory given without --data
    try:
        if args.file:
            source, is_data = Path(args.file), False
            v = verify.verify_export(source, key)
        else:
            source, is_data = Path(args.data or DEFAULT_DATA), True
            v = verify.verify_data(source, key)
        if args.extends:
            head, earlier = verify.earlier_head(args.extends, key)
            name = Path(args.extends).name if earlier is not None else f"the noted head {args.extends}"
            more = verify.extends(v, verify.records_of(source, data=is_data), head, name)
            if earlier is not None and not earlier.ok:
                more.append(verify.Problem(None, "extends", f"the earlier export {name} does not verify itself: "
                                           f"{earlier.verdict}"))
            v = verify.with_problems(v, more)
            if not more:
                v.verdict += f"; extends {name} (its head {head[0]}/{head[1][:8]} is in this journal)" \
                    if v.head and v.head[0] >= head[0] and v.first and v.first[0] <= head[0] \
                    else f"; continues {name} (from its head {head[0]}/{head[1][:8]})"
    except (export.NotAnExport, JournalError) as e:
        raise UserError(str(e), 2) from None
    if args.json:
        print(json.dumps(v.to_json(), indent=1, sort_keys=True))
    else:
        print("\n".join(v.report()))
    return 0 if v.ok else 3


def _verify_folder(folder: Path, key: Any, args: argparse.Namespace) -> int:
    """Every export in a pull folder or on a ward stick, each checked as one file is."""
    from bedside.journal import export, verify
    from bedside.journal.segments import JournalError
    from bedside.report import ward

    if args.extends:
        raise UserError("--extends checks one export against an earlier one: give the export FILE, not a folder")
    problems: list[str] = []
    found = ward.find([folder], problems.append)
    if not found:
        raise UserError(f"{folder} holds no bedside export (*.jsonl) or journal" +
                        (f": {problems[0]}" if problems else ""))
    results = []
    for src in found:
        try:
            v = verify.verify_data(src.path, key) if src.path.is_dir() else verify.verify_export(src.path, key)
        except (export.NotAnExport, JournalError) as e:
            problems.append(f"{src.path}: {e}")
            continue
        results.append((src.path, v))
    if args.json:
        print(json.dumps([{"file": str(p), **v.to_json()} for p, v in results], indent=1, sort_keys=True))
    else:
        for p, v in results:
            print(f"{p}:")
            print("\n".join("  " + line for line in v.report()))
    for problem in problems:
        print(f"bedside: skipped: {problem}", file=sys.stderr)
    broken = [p for p, v in results if not v.ok]
    if broken:
        print(f"bedside: {len(broken)} of {len(results)} export(s) FAILED verification", file=sys.stderr)
    return 3 if broken else 0


# --- keys ------------------------------------------------------------------------------

def cmd_keys_init(args: argparse.Namespace) -> int:
    """Commissioning: the unit's seal key, with one copy for the hospital. The daemon must be stopped."""
    from bedside.journal import seal
    from bedside.journal.segments import JournalError
    from bedside.unit import host
    from bedside.unit.offline import OfflineWriter

    data = Path(args.data)
    out = Path(args.out)
    try:
        writer = OfflineWriter(data)
    except host.DataDirBusy:
        raise busy(data) from None
    except OSError as e:
        raise UserError(f"cannot use the data directory {data}: {e.strerror}") from None
    with writer:
        cfg = host.find(args.config)
        writer.tz = cfg.tz
        earlier = writer.journal.last_of_type(T.SEAL_KEY)
        if earlier is not None:
            raise UserError(f"this unit was already given seal key {earlier.get('key_id')} on "
                            f"{earlier['time'][:10]} (journal seq {earlier['seq']}); a unit is commissioned "
                            "once, and that key's file is the one that checks its journal")
        try:
            key = seal.create(data, out, cfg.unit_id)
        except seal.SealError as e:
            raise UserError(str(e)) from None
        try:
            writer.append(T.SEAL_KEY, {"key_id": key.key_id, "unit": cfg.unit_id})
        except JournalError as e:
            raise UserError(f"the key was created but could not be recorded in the journal: {e}", 1) from None
    print(f"Seal key {key.key_id} created for unit {cfg.unit_id}.\n"
          f"The hospital's copy is {out}: keep it safe and off the ward network. It is the only copy of the\n"
          f"key that can check this unit's seals (the unit forgets each key after using it), and it is\n"
          f"never written again. Check a journal with:  bedside log verify --key {out} FILE")
    return 0
