"""``bedside config check``: a config file validated, and what it means in words."""

from __future__ import annotations

import argparse
from datetime import date, timedelta

from bedside.core import config
from bedside.unit import host


def add_config_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("config", help="configuration tools")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    cc = csub.add_parser("check", help="validate a config file; exits non-zero on any problem")
    cc.add_argument("path", help="the config file to check, e.g. /etc/bedside/bedside.toml")
    cc.set_defaults(func=cmd_config_check)


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
        print(f"  with no patient admitted: {cfg.default_regimen}, day 0 being the first start at the bed or the "
              "last discharge")
