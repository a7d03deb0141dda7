"""The USB stick's commands: ``bedside stick prepare``, ``stick export`` and ``stick service``.

docs/stick.md describes them for nurses and engineers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.cli.common import DEFAULT_DATA, UserError


def add_stick_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bedside.stick.channel import SOCKET
    from bedside.trust.keyring import KEYS_DIR
    from bedside.unit.releases import PREFIX

    st = sub.add_parser("stick", help="USB sticks: prepare one for the ward, export a unit's record to one")
    ssub = st.add_subparsers(dest="stick_command", metavar="ACTION", required=True)

    p = ssub.add_parser("prepare", help="authorise a mounted USB stick to take exports from the ward's units",
                        description="Write Bedside/authorisation.json (signed by the ward authority key, --key) and "
                        "a README onto the stick mounted at MOUNTPOINT. The ward's units then export to it; other "
                        "sticks get nothing. With --config or --revoke-*, the stick also carries signed ward "
                        "settings; the ward's ledger (beside the key) remembers their counter and revocations.")
    p.add_argument("mountpoint", help="where the stick is mounted, e.g. /media/nurse/STICK")
    p.add_argument("--key", help="the ward authority's .key file (units with pinned keys)")
    p.add_argument("--passphrase-file", help="read the ward authority key's passphrase from this file")
    p.add_argument("--revoke-cert", action="append", default=[], metavar="ID",
                   help="settings: a laptop certificate id that no longer unlocks any unit (a leaver, a lost laptop)")
    p.add_argument("--revoke-laptop-key", action="append", default=[], metavar="ID",
                   help="settings: a laptop key id that no longer unlocks any unit, whatever certifies it")
    p.add_argument("--revoke-stick", action="append", default=[], metavar="ID",
                   help="settings: a stick id that no longer takes exports (a lost stick)")
    p.add_argument("--recovery-from", type=int, metavar="N",
                   help="settings: a recovery for units whose settings counter is stuck at exactly N")
    p.add_argument("--secret-file", help="(units still on a ward secret) read the ward secret from this file")
    p.add_argument("--label", default="", help="a name for the stick, for people (e.g. 'Ward 7 stick 2')")
    p.add_argument("--config", dest="ward_config", metavar="FILE",
                   help="also carry this configuration to every unit the stick is plugged into (checked first; "
                   "each unit keeps its own unit id, pins and serial port, and applies it after a press)")
    p.add_argument("--new-secret-file", metavar="FILE", help="also carry a new ward secret (first line of FILE) to "
                   "the units: each applies it after a press; prepare the stick again with it afterwards")
    p.set_defaults(func=cmd_stick_prepare)

    e = ssub.add_parser("export", help="export the unit's record to a mounted, prepared stick",
                        description="Check the stick's authorisation, then write the raw journal export, the "
                        "sessions CSV and the adherence report into Bedside/UNIT_DATE_TIME/ on the stick, each "
                        "file whole. The unit records the export (or the refusal) and shows it. Exit codes: 0 "
                        "exported, 1 failed (stick full, read-only, removed …), 2 could not start, 3 the stick "
                        "is not authorised.")
    e.add_argument("mountpoint", help="where the stick is mounted")
    e.add_argument("--data", default=str(DEFAULT_DATA), help="the unit's data directory (%(default)s)")
    e.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    e.add_argument("--socket", default=str(SOCKET), help="the running daemon's stick channel (%(default)s)")
    e.add_argument("--from-service", action="store_true", help=argparse.SUPPRESS)
    e.add_argument("--device", default="", help=argparse.SUPPRESS)
    e.add_argument("--keys-dir", default=str(KEYS_DIR), help=argparse.SUPPRESS)
    e.add_argument("--prefix", default=str(PREFIX), help=argparse.SUPPRESS)
    e.set_defaults(func=cmd_stick_export)

    s = ssub.add_parser("service", help="(systemd) mount a USB stick and export to it; run by bedside-stick@.service",
                        description="Run by bedside-stick@DEVICE.service when a USB stick is plugged in: mounts "
                        "/dev/DEVICE nosuid,nodev,noexec in this service's own mount namespace, runs 'bedside stick "
                        "export' on it without any capability, then flushes and unmounts it.")
    s.add_argument("device", help="the kernel's name for the stick's partition, e.g. sda1")
    s.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    s.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    s.add_argument("--socket", default=str(SOCKET), help="the running unit's stick socket (%(default)s)")
    s.add_argument("--mount-dir", default=None, help=argparse.SUPPRESS)
    s.add_argument("--keys-dir", default=str(KEYS_DIR), help=argparse.SUPPRESS)
    # Tests only: a kernel without vfat mounts an ext4 image instead (docs/stick.md, "Proof").
    s.add_argument("--allow-fs", action="append", default=None, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_stick_service)


def _ward_secret(path: str | None) -> str:
    import getpass

    from bedside import secret

    try:
        if path:
            return secret.read_secret_file(Path(path))
        if not sys.stdin.isatty():
            raise UserError("type the ward secret at a terminal, or give --secret-file FILE")
        value = secret.validate(getpass.getpass("Ward secret: "))
        if getpass.getpass("Type it again: ") != value:
            raise UserError("the two entries differ; the stick was not prepared")
        return value
    except secret.SecretError as e:
        raise UserError(str(e)) from None


def _open_stick(path: Path) -> int:
    if not path.is_dir():
        raise UserError(f"{path} is not a folder: give the folder where the stick is mounted")
    if not os.path.ismount(path):
        raise UserError(f"{path} is not where a stick is mounted (it is a folder on this computer's own disk); "
                        "give the stick's folder, e.g. /media/nurse/STICK")
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise UserError(f"cannot open {path}: {e.strerror}") from None


def _ward_config_text(args: argparse.Namespace) -> str | None:
    """The text of ``--ward-config``, if given."""
    if not args.ward_config:
        return None
    from bedside.durable import CONFIG_FILE, read_bounded

    try:
        return read_bounded(Path(args.ward_config), CONFIG_FILE).decode("utf-8")     # (TooLarge)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the configuration {args.ward_config}: {e}") from None

def _settings_body(args: argparse.Namespace, key: bytes) -> dict[str, Any] | None:
    """The signed ward settings asked for, checked before anything is written; None if none."""
    from bedside import secret
    from bedside.core.config import ConfigError
    from bedside.stick import settings as stick_settings

    if not args.ward_config and not args.new_secret_file:
        return None
    text = _ward_config_text(args)
    new = None
    if args.new_secret_file:
        try:
            new = secret.read_secret_file(Path(args.new_secret_file))
        except secret.SecretError as e:
            raise UserError(str(e)) from None
    try:
        return stick_settings.make(key, datetime.now(UTC), config_text=text, new_secret=new)
    except ConfigError as e:
        raise UserError(f"nothing was written: {e}") from None
    except secret.SecretError as e:
        raise UserError(f"nothing was written: {e}") from None


def ledger_path(key: str) -> Path:
    """The ward's ledger, beside its authority key: the last settings counter and the revocations."""
    return Path(key).with_suffix(".ledger.json")


def _signed_settings(args: argparse.Namespace, ward: Any) -> Any:
    """The signed ward settings asked for (None if none), and the ledger raised by one."""
    import json

    from bedside.core.config import ConfigError
    from bedside.durable import KEY_FILE, json_loads, read_bounded, write_atomic
    from bedside.stick import settings as stick_settings

    revocations = {"certs": args.revoke_cert, "laptop_keys": args.revoke_laptop_key, "sticks": args.revoke_stick}
    if not args.ward_config and not any(revocations.values()) and args.recovery_from is None:
        return None
    if args.new_secret_file:
        raise UserError("a unit with pinned keys has no ward secret to change; revoke laptops and sticks instead")
    path = ledger_path(args.key)
    try:
        # (at most 64 KiB: more revocations than that would not fit the settings a stick carries)
        ledger: Any = json_loads(read_bounded(path, KEY_FILE)) if path.exists() else {"counter": 0, "revoked": {}}
        revoked = {k: sorted(set(ledger.get("revoked", {}).get(k, [])) | set(v)) for k, v in revocations.items()}
        if not all(isinstance(x, str) for ids in revoked.values() for x in ids):
            raise ValueError("its revocations are not lists of ids")
        counter = int(ledger.get("counter", 0)) + 1
    except (OSError, ValueError, TypeError, AttributeError, OverflowError) as e:
        raise UserError(f"the ward's ledger {path} cannot be read ({e or 'it is not a ledger bedside writes'}); "
                        "nothing was written") from None
    text = _ward_config_text(args)
    try:
        body = stick_settings.body_signed(counter, datetime.now(UTC), config_text=text, revoked=revoked,
                                          recovery_from=args.recovery_from)
    except ConfigError as e:
        raise UserError(f"nothing was written: {e}") from None
    write_atomic(path, (json.dumps({"counter": counter, "revoked": revoked}, indent=1) + "\n").encode(), 0o600)
    return ward.sign(stick_settings.KIND, body)


def _prepare_signed(args: argparse.Namespace) -> int:
    from bedside.cli.trust import load_key
    from bedside.stick import auth, files
    from bedside.trust import signed

    ward = load_key(args.key, "ward", args.passphrase_file)
    root = _open_stick(Path(args.mountpoint))
    try:
        doc = ward.sign(auth.STICK_KIND, auth.signed_body(datetime.now(UTC), args.label, ward.name))
        settings_doc = _signed_settings(args, ward)
        try:
            auth.prepare_signed(root, doc)
            if settings_doc is not None:
                folder = files.open_folder(root, files.FOLDER, create=True)
                try:
                    files.write_file(folder, "settings.json", signed.dumps(settings_doc))
                finally:
                    os.close(folder)
        except files.StickProblem as e:
            raise UserError(f"the stick was not prepared: {e}", 1) from None
        except OSError as e:
            raise UserError(f"the stick was not prepared: {files.problem(e, 'writing the stick')}", 1) from None
    finally:
        os.close(root)
    print(f"Stick at {args.mountpoint} prepared for {ward.name} (key {ward.id}).\n"
          f"Stick id {doc.body['stick']}{', label ' + repr(doc.body['label']) if doc.body['label'] else ''}: "
          "record it; if the stick is lost, revoke it with --revoke-stick ID on the next settings stick.")
    if settings_doc is not None:
        b = settings_doc.body
        n = sum(len(v) for v in b["revoked"].values())
        print(f"It also carries ward settings number {b['counter']}"
              f"{' with a configuration' if b['config'] else ''} and {n} revocation{'s' if n != 1 else ''}: each "
              "unit shows the change and applies it when its button is pressed.")
    return 0


def cmd_stick_prepare(args: argparse.Namespace) -> int:
    if args.key:
        return _prepare_signed(args)
    return _prepare_legacy(args)


def _prepare_legacy(args: argparse.Namespace) -> int:
    from bedside import secret
    from bedside.stick import auth, files
    from bedside.stick import settings as stick_settings

    root = _open_stick(Path(args.mountpoint))
    try:
        value = _ward_secret(args.secret_file)
        key = secret.stick_key(value)
        before = None
        with contextlib.suppress(files.StickProblem):
            before = auth.check(auth.read_authorisation(root), key)
        ward_settings = _settings_body(args, key)
        try:
            body = auth.prepare(root, key, datetime.now(UTC), args.label)
            if ward_settings is not None:
                stick_settings.write(root, ward_settings)
        except files.StickProblem as e:
            raise UserError(f"the stick was not prepared: {e}", 1) from None
        except OSError as e:
            raise UserError(f"the stick was not prepared: {files.problem(e, 'writing the stick')}", 1) from None
    finally:
        os.close(root)
    again = f" (it was prepared before, on {before.prepared[:10]}; it has a new id now)" if before else ""
    print(f"Stick at {args.mountpoint} prepared for the ward of key {body['ward_key']}{again}.\n"
          f"Stick id {body['stick']}{', label ' + repr(body['label']) if body['label'] else ''}.\n"
          "Plug it into a unit of the ward: the unit exports its record into the stick's Bedside folder.\n"
          "Keep it like a key: whoever holds it can take exports from the ward's units.")
    if ward_settings is not None:
        what = " and ".join(x for x in ("a configuration" if ward_settings["config"] else "",
                                        "a new ward secret" if ward_settings["secret"] else "") if x)
        print(f"It also carries {what} (issued {ward_settings['issued']}): each unit shows the change and applies it "
              "when its button is pressed.")
        if ward_settings["secret"]:
            print("Once every unit has the new secret, prepare the ward's sticks again with it.")
    return 0


def cmd_stick_export(args: argparse.Namespace) -> int:
    from bedside.stick import export as stick_export
    from bedside.stick import settings as stick_settings
    from bedside.unit import host

    cfg = stick_settings.effective(host.find(args.config), Path(args.data))
    mount: Any
    if args.from_service:
        if stick_export.capabilities():
            raise UserError("the export must not run with capabilities, and nothing was exported: 'bedside stick "
                            "service' runs under systemd as the bedside user (bedside-stick@DEVICE.service); by "
                            "hand, mount the stick and run 'bedside stick export MOUNTPOINT'")
        mount = stick_export.ServiceMount(sys.stdin.buffer, sys.stdout.buffer)
        out = sys.stderr
    else:
        os.close(_open_stick(Path(args.mountpoint)))
        mount = stick_export.HandMount(Path(args.mountpoint))
        out = sys.stdout
    try:
        rec = stick_export.recorder(Path(args.data), cfg, Path(args.socket))
        outcome = stick_export.run(cfg, Path(args.data), mount, rec, args.device, keys_dir=Path(args.keys_dir),
                                   prefix=Path(args.prefix))
    except stick_export.NothingExported as e:
        raise UserError(str(e), 2) from None
    prefix = "bedside: " if args.from_service else ""
    print(prefix + outcome.message.replace("\n", "\n" + prefix), file=out, flush=True)
    if outcome.stage == "done" and not args.from_service:
        print("Eject the stick before you pull it out (the unit does this itself when a stick is plugged into it).",
              file=out)
    return outcome.exit_code


def cmd_stick_service(args: argparse.Namespace) -> int:
    from bedside.stick import mount as stick_mount

    mount_dir = Path(args.mount_dir) if args.mount_dir else stick_mount.MOUNT_DIR
    file_systems = {fs: "" for fs in args.allow_fs} if args.allow_fs else stick_mount.FILE_SYSTEMS

    def child(target: Path) -> list[str]:
        argv = [sys.executable, "-m", "bedside", "stick", "export", str(target), "--from-service",
                "--device", args.device, "--data", args.data, "--socket", args.socket, "--keys-dir", args.keys_dir]
        return [*argv, "--config", args.config] if args.config else argv

    return stick_mount.serve(args.device, child, mount_dir=mount_dir, file_systems=file_systems)
