"""``bedside secret set``: the ward secret, at commissioning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bedside.cli.common import DEFAULT_DATA, UserError, busy
from bedside.core.records import T
from bedside.unit import host


def add_secret_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bedside.trust.keyring import KEYS_DIR

    sc = sub.add_parser("secret", help="the ward secret that unlocks the serial link and authorises USB sticks")
    ssub = sc.add_subparsers(dest="secret_command", metavar="ACTION", required=True)
    ss = ssub.add_parser("set", help="set or change the ward secret (at commissioning; the unit must be stopped)")
    ss.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    ss.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    ss.add_argument("--secret-file", help="read the secret from the first line of this file instead of a prompt")
    ss.add_argument("--keys-dir", default=str(KEYS_DIR), help=argparse.SUPPRESS)
    ss.set_defaults(func=cmd_secret_set)


def cmd_secret_set(args: argparse.Namespace) -> int:
    """Set the ward secret at commissioning; the daemon must be stopped (one writer per journal)."""
    import getpass

    from bedside import secret
    from bedside.trust import keyring
    from bedside.unit.offline import OfflineWriter

    try:
        pinned = keyring.load(Path(args.keys_dir))
    except keyring.KeyringError:
        pinned = None
    if pinned is not None:
        raise UserError("this unit has the ward's keys pinned (bedside trust show): it uses no ward secret, and one "
                        "set now would only put a key for forging sticks on its card; nothing was changed")
    data = Path(args.data)
    try:
        if args.secret_file:
            value = secret.read_secret_file(Path(args.secret_file))
        else:
            if not sys.stdin.isatty():
                raise UserError("type the secret at a terminal, or give --secret-file FILE")
            value = secret.validate(getpass.getpass("New ward secret: "))
            if getpass.getpass("Type it again: ") != value:
                raise UserError("the two entries differ; nothing was changed")
    except secret.SecretError as e:
        raise UserError(str(e)) from None
    try:
        writer = OfflineWriter(data)
    except host.DataDirBusy:
        raise busy(data) from None
    with writer:
        writer.tz = host.find(args.config).tz
        replacing = secret.load(data) is not None
        secret.set_secret(data, value)
        writer.append(T.SECRET_SET, {"replaced": replacing})
    print(f"Ward secret {'changed' if replacing else 'set'} for the unit at {data}.")
    return 0
