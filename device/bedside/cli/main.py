"""The ``bedside`` command: its parser, made from each command group's module, and the one
place every failure a person can cause becomes a plain message and a non-zero exit code,
never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from bedside import __version__
from bedside.cli.common import UserError
from bedside.core import config


def parser() -> argparse.ArgumentParser:
    from bedside.cli import config as cli_config
    from bedside.cli import journal as cli_journal
    from bedside.cli import report as cli_report
    from bedside.cli import secret as cli_secret
    from bedside.cli import serial as cli_serial
    from bedside.cli import stick as cli_stick
    from bedside.cli import unit as cli_unit
    from bedside.cli import update as cli_update
    from bedside.cli import ward as cli_ward

    p = argparse.ArgumentParser(prog="bedside", description="Bedside exercise prompting unit for post-operative "
                                "patients, and the tools nurses use with it.")
    p.add_argument("--version", action="version", version=f"bedside {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # In the order ``bedside --help`` lists them.
    cli_unit.add_unit_commands(sub)
    cli_config.add_config_commands(sub)
    cli_journal.add_log_commands(sub)
    cli_journal.add_keys_command(sub)
    cli_stick.add_stick_commands(sub)
    cli_ward.add_ward_commands(sub)
    cli_update.add_update_commands(sub)
    cli_secret.add_secret_commands(sub)
    cli_report.add_report_commands(sub)
    cli_serial.add_serial_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from bedside.journal.segments import JournalError
    from bedside.unit.pins import HardwareError

    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except config.ConfigError as e:
        print(f"bedside: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"bedside: {e}", file=sys.stderr)
        return e.code
    except (JournalError, HardwareError) as e:
        print(f"bedside: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``bedside log export | head``): not an error worth a word.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        print(f"bedside: unexpected error: {type(e).__name__}: {str(e)[:500]}\n"
              "Please report this with the details below.", file=sys.stderr)
        # The details promised, always; the innermost frames only (a runaway recursion has
        # a thousand identical ones).
        traceback.print_exc(limit=-30)
        return 70
