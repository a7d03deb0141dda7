"""``bedside trust``: the ward's keys (docs/security.md; docs/install.md, "Keys").

On a laptop: ``new`` makes a key (ward authority, release or a nurse's laptop key),
``certify`` certifies a laptop key with the ward authority key, ``recovery`` signs a release
recovery. On a unit, as root at commissioning: ``pin`` pins the ward's public keys, ``show``
prints what is pinned.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.cli.common import DEFAULT_DATA, UserError, busy
from bedside.core.records import T


def add_trust_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bedside.trust.keyring import KEYS_DIR

    t = sub.add_parser("trust", help="the ward's keys: make, certify, pin (docs/security.md)")
    tsub = t.add_subparsers(dest="trust_command", metavar="ACTION", required=True)

    n = tsub.add_parser("new", help="make a key: the ward authority's, the release key, or a nurse's laptop key",
                        description="Write ROLE.key (the private key, sealed under a passphrase, mode 600) and "
                        "ROLE.pub (the public key and its id) into --out.")
    n.add_argument("role", choices=("ward", "release", "laptop"), help="ward (the ward authority), release, or laptop")
    n.add_argument("--name", required=True, help="who or what holds it, e.g. \"Ward 7 authority\" or \"Laptop W7-3\"")
    n.add_argument("--out", default=".", help="folder to write into (%(default)s)")
    n.add_argument("--passphrase-file", help="read the passphrase from the first line of this file")
    n.set_defaults(func=cmd_new)

    c = tsub.add_parser("certify", help="certify a nurse's laptop key with the ward authority key",
                        description="Write a certificate naming the nurse and the laptop, valid for --days, "
                        "signed by the ward authority. The nurse's laptop keeps it beside its key.")
    c.add_argument("laptop_pub", help="the laptop's .pub file")
    c.add_argument("--key", required=True, help="the ward authority's .key file")
    c.add_argument("--nurse", required=True, help="the nurse's name, as records should show it")
    c.add_argument("--laptop", required=True, help="the laptop's name or asset tag")
    c.add_argument("--days", type=int, default=180, help="how long it is valid (%(default)s; at most 400)")
    c.add_argument("--out", required=True, help="the certificate file to write")
    c.add_argument("--passphrase-file", help="read the ward authority key's passphrase from this file")
    c.set_defaults(func=cmd_certify)

    p = tsub.add_parser("pin", help="(root, at commissioning) pin the ward authority and release public keys",
                        description="Write the keyring the unit trusts (root's, readable by the daemon, writable by "
                        "nobody else), record it, and remove a ward secret the unit had: from now on only the "
                        "pinned keys are trusted. The unit must be stopped.")
    p.add_argument("--ward", action="append", required=True, help="the ward authority's .pub file (repeatable)")
    p.add_argument("--release", action="append", required=True, help="the release key's .pub file (repeatable)")
    p.add_argument("--ward-name", required=True, help="the ward's name, as the unit shows it")
    p.add_argument("--keys-dir", default=str(KEYS_DIR), help="(%(default)s)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the unit's data directory (%(default)s)")
    p.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    p.set_defaults(func=cmd_pin)

    s = tsub.add_parser("show", help="print the keys this unit trusts")
    s.add_argument("--keys-dir", default=str(KEYS_DIR), help="(%(default)s)")
    s.set_defaults(func=cmd_show)

    r = tsub.add_parser("recovery", help="sign a release recovery for units stuck at a release counter",
                        description="Write recovery.json into an update FOLDER: a unit whose release counter is "
                        "exactly --from then takes the release in that folder whatever its counter.")
    r.add_argument("folder", help="the update folder (Bedside/update)")
    r.add_argument("--key", required=True, help="the ward authority's .key file")
    r.add_argument("--from", dest="stuck", type=int, required=True, help="the counter the units are stuck at")
    r.add_argument("--passphrase-file", help="read the passphrase from this file")
    r.set_defaults(func=cmd_recovery)


def passphrase(path: str | None, prompt: str, twice: bool = False) -> str:
    if path:
        from bedside.durable import KEY_FILE, read_bounded

        try:
            text = read_bounded(Path(path), KEY_FILE).decode("utf-8")   # at most 64 KiB (TooLarge)
        except (OSError, ValueError) as e:
            raise UserError(f"the passphrase file {path} cannot be read ({e})") from None
        return text.splitlines()[0] if text else ""
    if not sys.stdin.isatty():
        raise UserError("type the passphrase at a terminal, or give --passphrase-file FILE")
    value = getpass.getpass(prompt)
    if twice and getpass.getpass("Type it again: ") != value:
        raise UserError("the two entries differ; nothing was written")
    return value


def load_key(path: str, role: str, passphrase_file: str | None) -> Any:
    from bedside.trust import keys

    try:
        return keys.load(Path(path), passphrase(passphrase_file, f"Passphrase for {path}: "), role)
    except keys.KeyFileError as e:
        raise UserError(str(e)) from None


def cmd_new(args: argparse.Namespace) -> int:
    from bedside.trust import keys

    try:
        key = keys.generate(args.role, args.name)
        secret = keys.check_passphrase(passphrase(args.passphrase_file, f"Passphrase for the new {args.role} key: ",
                                                  twice=True))
        priv, pub = keys.save(key, Path(args.out), args.role, secret)
    except keys.KeyFileError as e:
        raise UserError(str(e)) from None
    print(f"Wrote {priv} (private, sealed under the passphrase) and {pub} (public).\n"
          f"Key id {key.id} ({args.role}, {key.name}): write it in the ward's key record.")
    return 0


def cmd_certify(args: argparse.Namespace) -> int:
    from bedside.trust import keyring, keys, signed

    ward = load_key(args.key, "ward", args.passphrase_file)
    try:
        laptop = keyring.read_public_key(Path(args.laptop_pub), "laptop")
        cert = keys.certify(ward, laptop.public, args.nurse, args.laptop, datetime.now(UTC), args.days)
    except (keyring.KeyringError, keys.KeyFileError) as e:
        raise UserError(str(e)) from None
    out = Path(args.out)
    out.write_bytes(signed.dumps(cert))
    print(f"Certified laptop key {laptop.id} for {cert.body['nurse']} on {cert.body['laptop']} until "
          f"{cert.body['expires']}: certificate {cert.body['cert']} in {out}. Record the certificate id: "
          "revoking it takes that id.")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    from bedside import secret
    from bedside.trust import keyring
    from bedside.unit import host
    from bedside.unit.offline import OfflineWriter

    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise UserError("pinning keys is root's (the daemon must not be able to change them): run it with sudo")
    try:
        pinned = keyring.merge([*(keyring.read_public_key(Path(p), "ward") for p in args.ward),
                                *(keyring.read_public_key(Path(p), "release") for p in args.release)])
    except keyring.KeyringError as e:
        raise UserError(str(e)) from None
    data = Path(args.data)
    if not data.is_dir():
        raise UserError(f"{data} is not the unit's data directory")
    ring = keyring.pin(Path(args.keys_dir), args.ward_name, pinned)
    had_secret = (data / secret.FILE_NAME).exists()
    for name in (secret.FILE_NAME, "ward-secret.previous.json"):
        (data / name).unlink(missing_ok=True)
    fields = {"ward": args.ward_name, "keys": [k.id for k in ring.keys], "roles": [k.role for k in ring.keys],
              "secret_removed": had_secret}

    def record() -> None:
        try:
            writer = OfflineWriter(data)
        except host.DataDirBusy:
            raise busy(data) from None
        with writer:
            writer.tz = host.find(args.config).tz
            writer.append(T.KEYS_PINNED, fields)

    as_owner(data, record)
    print("Pinned:\n  " + "\n  ".join(ring.fingerprints()))
    if had_secret:
        print("The ward secret's derived keys were removed from this unit: only the pinned keys are trusted now.")
    return 0


def as_owner(data: Path, work: Any) -> None:
    """Run ``work`` as the owner of ``data`` (the journal's files stay the daemon's, never root's)."""
    st = data.stat()
    if os.geteuid() != 0 or st.st_uid == 0:
        work()
        return
    # What the journal's writer imports on its way, imported while still root: the interpreter's
    # own files may be readable by root alone (a Python under /root).
    import ctypes  # noqa: F401
    import fcntl  # noqa: F401
    import uuid  # noqa: F401
    pid = os.fork()
    if pid == 0:      # the child: drop to the data directory's owner, write, and go
        code = 0
        try:
            os.setgroups([])
            os.setgid(st.st_gid)
            os.setuid(st.st_uid)
            work()
        except UserError as e:
            print(f"bedside: {e}", file=sys.stderr)
            code = 2
        except BaseException as e:
            print(f"bedside: the record of the pinning could not be written: {e}", file=sys.stderr)
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise UserError("the keys were pinned, but the journal did not record it (see above)", 1)


def cmd_show(args: argparse.Namespace) -> int:
    from bedside.trust import keyring

    try:
        ring = keyring.load(Path(args.keys_dir))
    except keyring.KeyringError as e:
        raise UserError(str(e), code=1) from None
    if ring is None:
        print(f"No keys pinned in {args.keys_dir}: this unit is still on a ward secret (docs/install.md, migration).")
        return 1
    print(f"Ward {ring.ward_name}:\n  " + "\n  ".join(ring.fingerprints()))
    return 0


def cmd_recovery(args: argparse.Namespace) -> int:
    from bedside.stick import update
    from bedside.trust import signed

    ward = load_key(args.key, "ward", args.passphrase_file)
    doc = ward.sign(update.RECOVERY_KIND, update.recovery_body(args.stuck, datetime.now(UTC)))
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not an update folder")
    path = update.write_manifest(folder, doc, update.RECOVERY)
    print(f"Wrote {path}: units stuck at release counter {args.stuck} take the release in {folder}.")
    print(json.dumps(signed.to_json(doc)["body"]))
    return 0
