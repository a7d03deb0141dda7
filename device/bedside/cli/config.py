"""``bedside config check``: a config file validated, and what it means in words."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

from bedside.core import config
from bedside.unit import host


def add_config_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("config", help="configuration tools")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    cc = csub.add_parser("check", help="validate a config file; exits non-zero on any problem")
    cc.add_argument("path", help="the config file to check, e.g. /etc/bedside/bedside.toml")
    cc.set_defaults(func=cmd_config_check)
    ce = csub.add_parser("example", help="print the annotated config (every setting, its default and what it "
                         "means), or one of the wards' examples, to copy and edit",
                         description="Print config/bedside.toml as shipped, or a ward's example: "
                         "bedside config example > bedside.toml, then edit it and run bedside config check "
                         "bedside.toml.")
    ce.add_argument("name", nargs="?", help="an example's name (see --list); default: the annotated config")
    ce.add_argument("--list", action="store_true", help="list the examples")
    ce.add_argument("-o", "--out", help="write it to this file (not over an existing one) instead of printing it")
    ce.set_defaults(func=cmd_config_example)


def shipped() -> Path | None:
    """Where the annotated config and the examples are: installed with the wheel (``share/bedside``
    under the environment), or a source checkout's ``config`` folder."""
    import sys
    import sysconfig

    here = Path(__file__).resolve()
    for base in (Path(sys.prefix) / "share" / "bedside", Path(sysconfig.get_path("data")) / "share" / "bedside",
                 here.parents[3] / "config"):
        if (base / "bedside.toml").is_file():
            return base
    return None


def cmd_config_example(args: argparse.Namespace) -> int:
    import sys

    from bedside.cli.common import UserError
    from bedside.durable import write_text_atomic

    base = shipped()
    if base is None:
        raise UserError("the annotated config is not installed with this bedside (reinstall it from the wheel)", 1)
    examples = {p.stem: p for p in sorted((base / "examples").glob("*.toml"))}
    if args.list:
        print("bedside.toml (the default: every setting and what it means)")
        for name, p in examples.items():
            first = next((line.lstrip("# ").strip() for line in p.read_text().splitlines() if line.strip()), "")
            print(f"{name}: {first}")
        return 0
    if args.name and args.name not in examples and args.name not in ("bedside", "bedside.toml"):
        raise UserError(f"no example called {args.name}; there are: {', '.join(examples)}")
    src = examples.get(args.name or "", base / "bedside.toml")
    text = src.read_text(encoding="utf-8")
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise UserError(f"{out} exists: it is not overwritten (give another name, or remove it first)")
        if not out.parent.is_dir():
            raise UserError(f"cannot write {out}: the folder {out.parent} does not exist")
        write_text_atomic(out, text)
        print(f"Wrote {out}: edit it, then check it with bedside config check {out}", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = host.load(args.path)
    hourly = f"every {cfg.hourly_every_minutes} min" if cfg.hourly_every_minutes else "off"
    routine = ", ".join(t.strftime("%H:%M") for t in cfg.routine_at) or "none"
    print(f"{args.path}: OK - unit {cfg.unit_id}, {cfg.timezone}, awake {cfg.awake_start:%H:%M}-{cfg.awake_end:%H:%M},"
          f" hourly {hourly}, routine at {routine}")
    for warning in cfg.warnings:
        print(f"  warning: {warning}")
    _print_regimens(cfg)
    return 0


def _print_regimens(cfg: config.Config) -> None:
    """Each regimen's stages in words, so a ward can check its step-down before a patient meets it."""
    from bedside.core import episodes

    for r in cfg.regimens:
        default = " (default)" if r.name == cfg.default_regimen else ""
        print(f"  regimen {r.name}{default}:")
        for i, st in enumerate(r.stages):
            last = r.stages[i + 1].from_day - 1 if i + 1 < len(r.stages) else None
            if i == 0:
                days = "every day" if last is None else f"up to day {last}"   # and the days before it
            elif last is None:
                days = f"from day {st.from_day}"
            else:
                days = f"day {st.from_day}" if last == st.from_day else f"days {st.from_day} to {last}"
            rules = episodes.rules(cfg, episodes.Episode("check1", date(2000, 1, 1), r.name),
                                   date(2000, 1, 1) + timedelta(days=st.from_day))
            hourly = f"every {rules.every_minutes} min" if rules.every_minutes else "no hourly prompts"
            at = ", ".join(t.strftime("%H:%M") for t in rules.routine_at) or "none"
            print(f"    {days}: {hourly}; routine at {at}")
    if cfg.without_episode == "quiet":
        print("  with no patient admitted: no prompts")
    else:
        print(f"  with no patient ever admitted: {cfg.default_regimen}, day 0 being the first start at the bed")
        print("  after a discharge: no prompts (ready for the next patient) until an admission; after a press, "
              f"{cfg.default_regimen}, day 0 being the discharge")
