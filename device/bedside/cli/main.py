"""The ``bedside`` command: its parser, made from each command group's module, and the one
place every failure a person can cause becomes a plain message and a non-zero exit code,
never a traceback: every error bedside raises derives from ``BedsideError`` and carries its
exit code (core/errors.py)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from bedside import __version__
from bedside.core.errors import INTERRUPTED, UNEXPECTED, BedsideError

# Each command: the module of ``bedside.cli`` that adds it and its function there, in the order
# ``bedside --help`` lists them. A command's parser is built from its own module alone, so a
# unit's start does not import the laptop's and the stick's command code.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("unit", "add_unit_commands"), "simulate": ("unit", "add_unit_commands"),
    "config": ("config", "add_config_commands"),
    "log": ("journal", "add_log_commands"), "keys": ("journal", "add_keys_command"),
    "stick": ("stick", "add_stick_commands"),
    "ward": ("ward", "add_ward_commands"), "fhir": ("ward", "add_ward_commands"),
    "self-test": ("update", "add_update_commands"), "update": ("update", "add_update_commands"),
    "secret": ("secret", "add_secret_commands"), "trust": ("trust", "add_trust_commands"),
    "report": ("report", "add_report_commands"),
    "pull": ("serial", "add_serial_commands"), "set-time": ("serial", "add_serial_commands"),
}


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (given a known ``command``) one with that command's group only."""
    p = argparse.ArgumentParser(prog="bedside", description="Bedside exercise prompting unit for post-operative "
                                "patients, and the tools nurses use with it.")
    p.add_argument("--version", action="version", version=f"bedside {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module, adder in groups:
        getattr(importlib.import_module(f"bedside.cli.{module}"), adder)(sub)
    return p


def _command(argv: Sequence[str]) -> str | None:
    """The command the line starts with, if any (``bedside -h ...`` gets the whole parser)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def _fatal(text: str) -> None:
    """Why the command stopped, on standard error. Under systemd (the daemon, the updater, a
    stick's export) every line goes to the journal at ``err`` priority, so ``journalctl -p
    warning`` shows it; journald would file an unmarked line at ``info``."""
    from bedside.unit.systemlog import ERR, is_journal

    prefix = f"<{ERR}>" if is_journal(sys.stderr) else ""
    sys.stderr.write("".join(f"{prefix}{line}\n" for line in text.splitlines()))
    sys.stderr.flush()


def _unexpected(e: BaseException) -> int:
    # The details promised, always; the innermost frames only (a runaway recursion has
    # a thousand identical ones).
    _fatal(f"bedside: unexpected error: {type(e).__name__}: {str(e)[:500]}\n"
           "Please report this with the details below.\n" + traceback.format_exc(limit=-30).rstrip("\n"))
    return UNEXPECTED


def main(argv: Sequence[str] | None = None) -> int:
    line = sys.argv[1:] if argv is None else argv
    args = parser(_command(line)).parse_args(line)
    try:
        result: int = args.func(args)
        return result
    except BedsideError as e:
        # The error knows its exit code (core/errors.py); one whose class gives none was meant to
        # be caught below the command line, so reaching here it is a fault like any other.
        if e.exit_code is None:
            return _unexpected(e)
        _fatal(f"bedside: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``bedside log export | head``): not an error worth a word.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        return _unexpected(e)
