"""The ward's commands, run on the nurse's or engineer's laptop: ``bedside ward`` (one page for
the whole ward) and ``bedside fhir`` (the records as a FHIR R4 transaction for the hospital's
record system). docs/ward.md and docs/fhir.md describe them."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from bedside.cli.common import UserError


def add_ward_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("ward", help="one overview page of a whole ward's units, the beds needing attention first",
                       description="Read every unit's record found in INPUT (pull folders, stick export folders or "
                       "a whole stick, export files, data directories), merge each unit's exports, check each as "
                       "bedside log verify does, and write one page (and a CSV) with a row per unit. A page holds "
                       "at most 200 units and a folder's walk examines at most 250,000 files and folders: what is "
                       "past either is named on the page and on standard error (docs/ward.md). Exit codes: 0 "
                       "written, 3 written but a record failed verification or contradicts another, or the page "
                       "leaves out units past its caps, 2 nothing could be read.")
    w.add_argument("inputs", nargs="+", metavar="INPUT", help="folders and export files to read")
    w.add_argument("-o", "--output", required=True, help="the page to write, e.g. ward.html")
    w.add_argument("--csv", help="also write one row per unit to this CSV")
    w.add_argument("--config", metavar="FILE", help="the ward's config file: its [ward] section sets how far "
                   "back attention looks and when a record is old (the options below override it)")
    w.add_argument("--stale-after", type=float, metavar="HOURS",
                   help="a record taken longer ago than this is flagged as old (24)")
    w.add_argument("--window", type=float, metavar="HOURS",
                   help="look back this many hours for missed sessions and clock changes (24)")
    w.add_argument("--handovers", metavar="HH:MM,...", help="instead, look back to the handover before the "
                   "last one, e.g. 07:00,19:00: at 07:00 the page covers the shift just handed over, whole")
    w.add_argument("--as-of", metavar="TIME", help="the overview as it stood at this local date-time, e.g. "
                   "2026-11-30T08:00 (default: now), for reprinting a past shift's page")
    w.set_defaults(func=cmd_ward)

    f = sub.add_parser("fhir", help="the records as one FHIR R4 transaction bundle for the hospital's record system",
                       description="Read every unit's record found in INPUT (as bedside ward does), and write one "
                       "FHIR R4 (4.0.1) transaction Bundle: each unit a Device; each stay the hospital's Encounter "
                       "and Patient by conditional reference, its regimen a CarePlan with its timing and a daily "
                       "summary Observation per day; a Provenance with the journal's verdict. Every write is a "
                       "conditional update or create on a business identifier, so posting twice changes nothing "
                       "and a later export updates what changed. docs/fhir.md has a worked example. Exit codes: 0 "
                       "written (and posted), 3 a record failed verification (nothing written without "
                       "--allow-broken), or written but leaving out units past bedside ward's caps, 4 the post "
                       "failed, 2 nothing could be read or the settings are wrong.")
    f.add_argument("inputs", nargs="+", metavar="INPUT", help="folders and export files to read")
    f.add_argument("-o", "--output", required=True, help="the bundle to write, e.g. bundle.json")
    f.add_argument("--settings", metavar="FILE", help="the laptop's settings (TOML: [hospital], [fhir], [auth], "
                   "[units.ID]; docs/fhir.md)")
    f.add_argument("--config", metavar="FILE", help="the ward's bedside.toml: its [hospital] table, and the "
                   "regimens' times for the CarePlan")
    f.add_argument("--post", metavar="BASE_URL", nargs="?", const="", help="also send the bundle to this FHIR "
                   "server's base URL (alone: the settings' [fhir] base_url)")
    f.add_argument("--token-file", metavar="FILE", help="send the bearer token in this file (overrides [auth])")
    f.add_argument("--identifier-system", metavar="URI", default=None,
                   help="base of the unit's own identifier systems (units, care plans, summaries): the hospital's "
                   "URI for its bedside units (default: the settings', else urn:bedside)")
    f.add_argument("--per-session", action="store_true", default=None,
                   help="also a Procedure for each decided session (off by default: the daily summary is the record)")
    f.add_argument("--max-entries", type=int, default=None, metavar="N", help="at most N entries per transaction, "
                   "for a server that limits them (0: the whole bundle in one, the default)")
    f.add_argument("--hl7v2", metavar="FILE", help="also write the daily summaries as HL7 v2.5 ORU^R01 messages "
                   "to FILE, for an interface engine that takes v2 (one message per summary)")
    f.add_argument("--allow-broken", action="store_true", help="write (and post) a record that failed "
                   "verification, every resource from it marked broken-record")
    f.set_defaults(func=cmd_fhir)


def _fhir_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """(report.fhir.Settings, laptop settings) from the ward's config, the laptop's file and the flags."""
    from dataclasses import replace

    from bedside.core import config
    from bedside.laptop import fhir_settings
    from bedside.report import fhir

    ward = None
    if args.config:
        from bedside.unit import host

        if not Path(args.config).exists():
            raise UserError(f"cannot read the ward's configuration {args.config}: No such file or directory")
        try:
            ward = host.load(args.config)      # as the unit reads its own: bounded, any failure named
        except config.ConfigError as e:
            raise UserError("; ".join([f"the ward's configuration {args.config}", *e.problems])) from None
    laptop = fhir_settings.LaptopSettings()
    if args.settings:
        try:
            laptop = fhir_settings.load(Path(args.settings))
        except fhir_settings.SettingsError as e:
            raise UserError(str(e)) from None
    hospital = laptop.hospital or (ward.hospital if ward is not None else config.Hospital())
    system = args.identifier_system or laptop.identifier_system or fhir.DEFAULT_SYSTEM
    if ":" not in system or any(c.isspace() for c in system):
        raise UserError(f"--identifier-system {system!r} is not a URI (e.g. https://hospital.example/ids/bedside)")
    if args.max_entries is not None and args.max_entries < 0:
        raise UserError("--max-entries must be 0 (the whole bundle in one transaction) or more")
    per_session = laptop.per_session if args.per_session is None else args.per_session
    settings = fhir.Settings(base=system, hospital=hospital, organization=laptop.organization, units=laptop.units,
                             per_session=per_session, ward=ward)
    if args.token_file:
        from bedside.laptop.fhir_post import Auth

        laptop = replace(laptop, auth=Auth("token", token_file=Path(args.token_file)))
    if args.max_entries is not None:
        laptop = replace(laptop, max_entries=args.max_entries)
    return settings, laptop


def cmd_fhir(args: argparse.Namespace) -> int:
    import json

    from bedside.durable import atomic_writer
    from bedside.laptop import fhir_post
    from bedside.report import fhir, ward

    out = Path(args.output)
    _writable(out)
    settings, laptop = _fhir_settings(args)
    post_to = args.post if args.post else (laptop.base_url if args.post == "" else None)
    if args.post == "" and not post_to:
        raise UserError("--post without an address needs [fhir] base_url in the --settings file")
    plan, skipped = _scan(args.inputs)
    units = list(ward.units(plan, skipped.append))     # at most ward.MAX_UNITS, their records in their files
    if not units:
        raise UserError("no unit's record was found in " + ", ".join(args.inputs))
    incomplete = plan.incomplete
    for line in incomplete:
        print(f"bedside: {line}", file=sys.stderr)
    try:
        doc = fhir.bundle(units, settings=settings, allow_broken=args.allow_broken,
                          exported=datetime.now().astimezone())
    except fhir.BundleError as e:
        raise UserError(str(e), 3) from None
    checks = fhir.validate(doc)
    problems = checks or []
    if problems:
        for problem in problems[:10]:
            print(f"bedside: {problem}", file=sys.stderr)
        raise UserError(f"the bundle does not pass the FHIR R4 models ({len(problems)} problem(s)); nothing was "
                        "written. Please report this with the messages above.", 70)
    try:
        # Written as it is encoded (the same bytes as json.dumps), never held as one text as well.
        with atomic_writer(out) as f:
            json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}", 1) from None
    kinds: dict[str, int] = {}
    for entry in doc["entry"]:
        kind = entry["resource"]["resourceType"]
        kinds[kind] = kinds.get(kind, 0) + 1
    checked = ("checked against the FHIR R4 models" if checks is not None else
               "not checked against the FHIR models (install bedside's laptop extra to check)")
    print(f"Wrote {out}: {len(units)} unit(s), " + ", ".join(f"{n} {k}" for k, n in kinds.items()) +
          f" ({out.stat().st_size / 1e3:.0f} kB), {checked}.")
    broken = [u.unit for u in units if u.broken or u.contradicting]
    if broken:
        print(f"bedside: {', '.join(broken)}: record FAILED verification; its resources are marked broken-record.",
              file=sys.stderr)
    if args.hl7v2:
        _write_hl7v2(Path(args.hl7v2), units, settings)
    if post_to:
        try:
            got = fhir_post.post(post_to, doc, auth=laptop.auth, timeout=laptop.timeout,
                                 max_entries=laptop.max_entries, max_answer=laptop.max_answer)
        except fhir_post.PostError as e:
            raise UserError(f"the bundle was written to {out} but not all stored on the server: {e}", 4) from None
        other = "".join(f", {n} answered {k}" for k, n in sorted(got.other.items()))
        split = f" in {got.transactions} transactions" if got.transactions > 1 else ""
        print(f"Posted to {post_to}{split}: {got.created} created, {got.updated} already there (updated where "
              f"changed){other}.")
    return 3 if incomplete else 0


def _write_hl7v2(path: Path, units: list[Any], settings: Any) -> None:
    from bedside.durable import write_text_atomic
    from bedside.report import fhir, hl7v2

    _writable(path)
    try:
        messages = hl7v2.messages(units, settings, exported=datetime.now().astimezone())
    except hl7v2.HL7Error as e:
        raise UserError(str(e), 70) from None
    except fhir.BundleError as e:        # a record past the report's budget
        raise UserError(str(e), 3) from None
    try:
        # Segments end with a carriage return, as HL7 says; a newline between messages for people.
        write_text_atomic(path, "".join(m + "\r\n" for m in messages))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}", 1) from None
    print(f"Wrote {path}: {len(messages)} HL7 v2.5 ORU^R01 message(s), one per daily summary.")


def as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now().astimezone()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of {text!r} is not a date-time like 2026-11-30T08:00") from None
    return t if t.tzinfo is not None else t.astimezone()


MAX_PROBLEMS_SHOWN = 200           # files not read, named on the page; the rest counted (all are on stderr)


class _Told(list[str]):
    """What was not read: each told on standard error as it is found, the first
    ``MAX_PROBLEMS_SHOWN`` kept for the page, the rest only counted."""

    def __init__(self) -> None:
        super().__init__()
        self.more = 0

    def append(self, problem: str) -> None:
        print(f"bedside: skipped: {problem}", file=sys.stderr)
        if len(self) < MAX_PROBLEMS_SHOWN:
            super().append(problem)
        else:
            self.more += 1

    def for_page(self) -> list[str]:
        return [*self, *([f"... and {self.more} more files not read (named on standard error)"] if self.more else [])]


def _scan(inputs: list[str]) -> tuple[Any, _Told]:
    """The first pass over the inputs (``ward.scan``): each export's unit, nothing more."""
    from bedside.report import ward

    problems = _Told()
    plan = ward.scan([Path(i) for i in inputs], problems.append)
    if not plan.groups:
        raise UserError("no unit's record was found in " + ", ".join(inputs))
    return plan, problems


def _ward_settings(path: str | None) -> Any:
    from bedside.core import config
    from bedside.unit import host

    if path is None:
        return config.Ward()
    return host.load(path).ward          # a ConfigError names every problem, exit 2


def _handovers(text: str | None) -> tuple[time, ...]:
    if not text:
        return ()
    try:
        out = tuple(sorted({time.fromisoformat(t.strip()) for t in text.split(",") if t.strip()}))
    except ValueError:
        raise UserError(f"--handovers {text!r} is not a list of times like 07:00,19:00") from None
    if not out:
        raise UserError("--handovers needs at least one time, like 07:00,19:00")
    return out


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
    if args.window is not None and args.handovers:
        raise UserError("give --window HOURS or --handovers TIMES, not both: they are two ways of looking back")
    settings = _ward_settings(args.config)
    stale_hours = args.stale_after if args.stale_after is not None else settings.stale_after_hours
    window_hours = args.window if args.window is not None else settings.attention_hours
    handovers = _handovers(args.handovers) if args.handovers else () if args.window is not None \
        else settings.handovers
    if stale_hours <= 0:
        raise UserError("--stale-after must be a number of hours above 0")
    if not 0 < window_hours <= 24 * 14:
        raise UserError("--window must be a number of hours above 0 and at most two weeks (336)")
    plan, problems = _scan(args.inputs)
    now = as_of(args.as_of)
    stale = timedelta(hours=stale_hours)
    window = ward.Window(window_hours, handovers)
    # One unit at a time: its exports read, merged and made into its row, then let go.
    rows = ward.rows(ward.units(plan, problems.append), now, stale, window)
    if not rows:
        raise UserError("no unit's record was found in " + ", ".join(args.inputs))
    incomplete = plan.incomplete
    for line in incomplete:
        print(f"bedside: {line}", file=sys.stderr)
    try:
        write_text_atomic(out, ward_page.render(rows, now, out, problems.for_page(), stale, window, incomplete))
        if csv_path is not None:
            write_text_atomic(csv_path, ward_page.csv_text(rows))
    except OSError as e:
        raise UserError(f"cannot write the overview: {e.strerror} ({e.filename})", 1) from None
    need = [r for r in rows if r.flags]
    print(f"Wrote {out}" + (f" and {csv_path}" if csv_path else "") +
          f": {len(rows)} unit(s) from {plan.read} export(s), {len(need)} needing attention.")
    for r in need:
        print(f"  {r.unit}: " + "; ".join(r.reasons))
    broken = [r for r in rows if "broken" in r.flags]
    if broken:
        print("bedside: " + ", ".join(r.unit for r in broken) + ": record FAILED verification or contradicts "
              "another export; the page says where.", file=sys.stderr)
        return 3
    return 3 if incomplete else 0
