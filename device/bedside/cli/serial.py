"""The laptop's commands over a unit's serial link: ``bedside pull`` and ``bedside set-time``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bedside.cli.common import UserError


def add_serial_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pl = sub.add_parser("pull", help="download a unit's journal over the USB serial link, verify it, write the "
                        "export, CSV and report")
    pl.add_argument("--port", required=True, help="the unit's port: /dev/ttyACM0 (Linux), /dev/cu.usbmodem... "
                    "(macOS), COM3 (Windows), or auto: the one port whose USB identity is a unit's")
    pl.add_argument("--out", required=True, help="folder for the files; use the same one each time (it remembers "
                    "what it downloaded, to fetch only what is new and to notice a shortened journal)")
    pl.add_argument("--secret-file", help="read the ward secret from the first line of this file (default: ask)")
    pl.add_argument("--key", help="the hospital's seal key file (from bedside keys init): also check every seal")
    pl.add_argument("--baud", type=int, default=115200, help="line speed for a USB-UART cable (%(default)s)")
    pl.add_argument("--laptop-key", help="this laptop's key (units with pinned keys; docs/serial.md)")
    pl.add_argument("--laptop-cert", help="the ward authority's certificate for it (default: KEY's name .cert)")
    pl.add_argument("--passphrase-file", help="read the laptop key's passphrase from this file (default: ask)")
    pl.set_defaults(func=cmd_pull)
    st = sub.add_parser("set-time", help="set a unit's clock from this laptop's (confirmed with the unit's button)")
    st.add_argument("--port", required=True, help="the unit's port: /dev/ttyACM0 (Linux), /dev/cu.usbmodem... "
                    "(macOS), COM3 (Windows)")
    st.add_argument("--secret-file", help="read the ward secret from the first line of this file (default: ask)")
    st.add_argument("--baud", type=int, default=115200, help="line speed for a USB-UART cable (%(default)s)")
    st.add_argument("--laptop-key", help="this laptop's key (units with pinned keys; docs/serial.md)")
    st.add_argument("--laptop-cert", help="the ward authority's certificate for it (default: KEY's name .cert)")
    st.add_argument("--passphrase-file", help="read the laptop key's passphrase from this file (default: ask)")
    st.set_defaults(func=cmd_set_time)


def _secret_source(path: str | None) -> Callable[[str, int], str]:
    """Where the nurse tools get the ward secret: a file (first line) or a prompt that does not echo."""
    import getpass

    from bedside import secret

    def ask(unit: str, attempt: int) -> str:
        if path:
            if attempt > 1:
                raise UserError(f"the ward secret in {path} was not accepted by unit {unit}", 4)
            try:
                return secret.read_secret_file(Path(path))
            except secret.SecretError as e:
                raise UserError(str(e)) from None
        if not sys.stdin.isatty():
            raise UserError("type the ward secret at a terminal, or give --secret-file FILE")
        return getpass.getpass(f"Ward secret for unit {unit}: ")

    return ask


def _laptop(args: argparse.Namespace) -> Any:
    """The nurse's certified laptop key, when one is given (units with pinned keys)."""
    if not args.laptop_key:
        return None
    from bedside.cli.trust import passphrase
    from bedside.laptop import keyauth

    key = Path(args.laptop_key)
    cert = Path(args.laptop_cert) if args.laptop_cert else key.with_suffix(".cert")
    try:
        return keyauth.load(key, cert, passphrase(args.passphrase_file, f"Passphrase for {key}: "))
    except keyauth.LaptopKeyError as e:
        raise UserError(str(e)) from None


def _open_port(port: str, baud: int) -> Callable[[], Any]:
    from bedside.laptop.client import SerialTransport

    if port == "auto":
        from bedside.laptop import ports

        try:
            port, what = ports.find()
        except ports.PortError as e:
            raise UserError(str(e), e.exit_code) from None
        print(f"Using {port}: {what}.", file=sys.stderr)
    return lambda: SerialTransport(port, baud)


def cmd_pull(args: argparse.Namespace) -> int:
    from bedside.laptop import pull

    out = Path(args.out)
    from bedside.cli.journal import hospital_key

    key = hospital_key(args.key)
    made = _missing(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder {out}: {e.strerror}", 1) from None
    try:
        got = pull.pull(_open_port(args.port, args.baud), out, _secret_source(args.secret_file), laptop=_laptop(args))
        files, lines, verdict = pull.write_outputs(out, got, key)
    except OSError as e:
        _tidy(out, made)
        raise UserError(f"cannot write into {out}: {e.strerror}", 1) from None
    except BaseException:
        _tidy(out, made)
        raise
    for line in lines:
        print(line)
    print("Files: " + ", ".join(str(f) for f in files))
    if not verdict.ok:
        for problem in verdict.report()[1:]:
            print(problem, file=sys.stderr)
        print("bedside: the downloaded record FAILED verification; keep the files and tell the ward manager.",
              file=sys.stderr)
        return 3
    return 0


def _missing(out: Path) -> list[Path]:
    """The folders ``out`` needs that are not there yet (outermost first)."""
    made = []
    p = out.absolute()
    while not p.exists() and p != p.parent:
        made.append(p)
        p = p.parent
    return made[::-1]


def _tidy(out: Path, made: list[Path]) -> None:
    """A failed pull leaves no empty folder behind: only folders this run made, and only if nothing
    was saved in them (records already downloaded stay, for the next run to carry on from)."""
    import contextlib
    import os

    for here, _dirs, _files in sorted(os.walk(out, topdown=False), key=lambda w: -len(w[0])):
        p = Path(here)
        if p.name == ".bedside" or p.parent.name == ".bedside":
            with contextlib.suppress(OSError):
                p.rmdir()                      # only when empty
    for p in reversed(made):
        with contextlib.suppress(OSError):
            p.rmdir()


def cmd_set_time(args: argparse.Namespace) -> int:
    from bedside.laptop import pull

    # A PullError or LinkError reaches the command line with its own exit code (laptop/pull.py).
    res = pull.set_time(_open_port(args.port, args.baud), _secret_source(args.secret_file), laptop=_laptop(args))
    print(f"Unit {res['unit']}: clock was {str(res['old'])[:19].replace('T', ' ')}, "
          f"now {str(res['new'])[:19].replace('T', ' ')} (set from this laptop's clock).")
    return 0
