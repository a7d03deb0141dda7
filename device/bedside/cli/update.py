"""Software updates and the software self-test: ``bedside update bundle``, ``bedside update
apply`` and ``bedside self-test``. docs/install.md, "Software updates by stick"."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside import __version__
from bedside.cli.common import DEFAULT_DATA, UserError
from bedside.core.records import T

SERVICE = "bedside.service"


def add_update_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bedside.stick.channel import SOCKET
    from bedside.stick.software import STAGING
    from bedside.trust.keyring import KEYS_DIR
    from bedside.unit.releases import PREFIX

    t = sub.add_parser("self-test", help="check this installation's software: modules, config, screens, journal",
                       description="Import every module, read the config, draw every screen with the shipped "
                       "fonts and read the journal. Exits 0 with a one-line summary, 1 naming what failed. A "
                       "software update runs it on the new version before keeping it.")
    t.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    t.add_argument("--data", default=str(DEFAULT_DATA), help="the unit's data directory (%(default)s)")
    t.set_defaults(func=cmd_self_test)

    up = sub.add_parser("update", help="software updates from a ward stick: make a bundle, install one")
    usub = up.add_subparsers(dest="update_command", metavar="ACTION", required=True)
    b = usub.add_parser("bundle", help="sign a folder of wheels as a release with the release key",
                        description="Write manifest.json into FOLDER: every wheel's SHA-256 and size, the bedside "
                        "wheel's version and the release counter, signed with the release key. Copy the folder to "
                        "a prepared stick as Bedside/update/.")
    b.add_argument("folder", help="the wheels: bedside's and every one it needs (docs/install.md)")
    b.add_argument("--key", help="the release key's .key file")
    b.add_argument("--counter", type=int, help="the release counter: one more than the last release's")
    b.add_argument("--passphrase-file", help="read the release key's passphrase from this file")
    b.add_argument("--legacy-secret-file", metavar="FILE",
                   help="instead: the transition bundle for units still on a ward secret (docs/install.md, "
                   "migration), signed the old way with the ward secret in FILE")
    b.set_defaults(func=cmd_update_bundle)

    a = usub.add_parser("apply", help="(root) verify, copy, and install the update in FOLDER after a press",
                        description="Check the release in FOLDER against the pinned release keys before anything is "
                        "copied, copy the signed files into a root-owned folder and verify them there, ask for a "
                        "press on the unit, install from that folder only with every hash pinned, switch to it, and "
                        "switch back if it fails its first watchdog period or its self-test. Every outcome is "
                        "journaled. Exit codes: 0 installed, 1 rolled back or failed, 3 refused, 4 not confirmed.")
    a.add_argument("folder", help="the update folder the stick export copied (update-incoming)")
    a.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    a.add_argument("--data", default=str(DEFAULT_DATA), help="the unit's data directory (%(default)s)")
    a.add_argument("--prefix", default=str(PREFIX), help="where the releases live (%(default)s)")
    a.add_argument("--socket", default=str(SOCKET), help="the running daemon's stick channel (%(default)s)")
    a.add_argument("--keys-dir", default=str(KEYS_DIR), help="the pinned keys (%(default)s)")
    a.add_argument("--staging", default=str(STAGING), help="root's folder the update is verified and installed "
                   "from (%(default)s)")
    a.set_defaults(func=cmd_update_apply)


# --- self-test ---------------------------------------------------------------------------

def cmd_self_test(args: argparse.Namespace) -> int:
    import bedside

    problems: list[str] = []
    modules = 0
    for info in pkgutil.walk_packages(bedside.__path__, "bedside."):
        try:
            importlib.import_module(info.name)
            modules += 1
        except Exception as e:
            problems.append(f"module {info.name}: {type(e).__name__}: {e}")
    cfg: Any = None
    try:
        from bedside.unit import host

        cfg = host.find(args.config)
    except Exception as e:
        problems.append(f"config: {e}")
    screens = 0
    try:
        from bedside.display import gallery, render

        for example in gallery.EXAMPLES:
            render.render(example.screen)
            screens += 1
    except Exception as e:
        problems.append(f"screens: {type(e).__name__}: {e}")
    journal = "no journal yet"
    data = Path(args.data)
    try:
        from bedside.journal import verify

        if any(data.glob("journal*")):
            v = verify.verify_data(data, integrity=False)
            journal = f"journal read to {v.head[0]}" if v.head else "journal read (empty)"
    except Exception as e:
        problems.append(f"journal: {type(e).__name__}: {e}")
    if problems:
        for p in problems:
            print(f"bedside self-test: FAILED: {p}")
        return 1
    unit = cfg.unit_id if cfg is not None else "?"
    print(f"bedside self-test: OK: version {__version__}, unit {unit}, {modules} modules, {screens} screens, {journal}")
    return 0


# --- bundle ------------------------------------------------------------------------------

def cmd_update_bundle(args: argparse.Namespace) -> int:
    from bedside.cli.trust import load_key
    from bedside.stick import update

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of wheels")
    if args.legacy_secret_file:
        from bedside import secret
        from bedside.cli.stick import _ward_secret as ward_secret
        from bedside.stick.auth import key_id

        key = secret.stick_key(ward_secret(args.legacy_secret_file))
        try:
            body = update.make_legacy(folder, key, key_id(key), datetime.now(UTC))
        except ValueError as e:
            raise UserError(str(e)) from None
        print(f"Signed {len(body['wheels'])} wheels as transition update {body['version']} for units still on the "
              "ward secret. Units with pinned keys refuse this bundle.")
        return 0
    if not args.key or args.counter is None:
        raise UserError("give the release key (--key release.key) and the release counter (--counter N)")
    release = load_key(args.key, "release", args.passphrase_file)
    try:
        body = update.body_for(folder, args.counter, datetime.now(UTC))
    except ValueError as e:
        raise UserError(str(e)) from None
    path = update.write_manifest(folder, release.sign(update.KIND, body))
    print(f"Signed {len(body['wheels'])} wheels as release {body['version']} (counter {body['counter']}, key "
          f"{release.id}): {path}. Copy the folder onto a prepared stick as Bedside/{update.UPDATE_DIR}/.")
    return 0


# --- apply -------------------------------------------------------------------------------

class SystemdService:
    """The unit's service under systemd: the update's stop, start and proof of health."""

    def __init__(self, releases_link: Path, config: str | None, data: Path, unit: str = SERVICE) -> None:
        self.unit = unit
        self.exe = releases_link / "bin" / "bedside"
        self.config = config
        self.data = data
        self.start_problem: str | None = None
        self.restarts: str | None = None

    def _show(self, *props: str) -> dict[str, str]:
        r = subprocess.run(["systemctl", "show", self.unit, *(f"--property={p}" for p in props)],
                           check=False, capture_output=True, text=True, timeout=30)
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def stop(self) -> None:
        subprocess.run(["systemctl", "stop", self.unit], check=False, capture_output=True, timeout=120)

    def start(self) -> None:
        self.restarts = self._show("NRestarts").get("NRestarts", "0")
        # Type=notify: this returns once the daemon said READY=1 (or failed to start).
        r = subprocess.run(["systemctl", "start", self.unit], check=False, capture_output=True, text=True, timeout=300)
        self.start_problem = None if r.returncode == 0 else f"did not start: {r.stderr.strip()[:200]}"

    def healthy(self) -> str | None:
        if self.start_problem:
            return self.start_problem
        if self.restarts is None:        # started at boot, not by this process (an update's proof resumed)
            self.restarts = self._show("NRestarts").get("NRestarts", "0")
        # One whole watchdog period and a little: a daemon that cannot ping is killed by now.
        period = _seconds(self._show("WatchdogUSec").get("WatchdogUSec", "30s")) or 30.0
        time.sleep(period + 5)
        s = self._show("ActiveState", "SubState", "NRestarts", "StatusText")
        if (s.get("ActiveState"), s.get("SubState")) != ("active", "running"):
            return f"not running a watchdog period after its start ({s.get('ActiveState')}/{s.get('SubState')})"
        if s.get("NRestarts") != self.restarts:
            return "systemd restarted it (a watchdog timeout or a crash)"
        if s.get("StatusText", "").startswith("unhealthy"):
            return s["StatusText"]
        cmd = ["runuser", "-u", "bedside", "--", str(self.exe), "self-test", "--data", str(self.data)]
        if self.config:
            cmd += ["--config", self.config]
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        return None if r.returncode == 0 else (r.stdout.strip() or r.stderr.strip())[-300:] or "self-test failed"


def _seconds(text: str) -> float:
    """systemd's time span as ``systemctl show`` prints it (30s, 1min 30s, 500ms)."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
    total = 0.0
    for part in text.split():
        num = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = part[len(num):] or "s"
        try:
            total += float(num) * units.get(unit, 0.0)
        except ValueError:
            return 0.0
    return total


def recorder(data: Path, socket_path: Path, tz: Any) -> Any:
    """Where the update's records go: the journal directly while no daemon runs, else the daemon."""
    from bedside.stick.channel import ChannelClient, ChannelError
    from bedside.unit import host
    from bedside.unit.offline import OfflineWriter

    def record(type_: str, fields: dict[str, Any]) -> None:
        try:
            with OfflineWriter(data, tz) as w:
                w.append(type_, fields)
            return
        except host.DataDirBusy:
            pass
        client = ChannelClient.connect(socket_path)
        if client is None:
            raise UserError(f"the unit's journal is in use but its daemon does not answer at {socket_path}; "
                            f"{type_} was not recorded")
        try:
            client.record(type_, fields)
        except ChannelError as e:
            raise UserError(f"{type_} was not recorded: {e}") from None
        finally:
            client.close()
    return record


def press_to_confirm(socket_path: Path) -> Any:
    from bedside.stick.channel import ChannelClient, ChannelError

    def confirm(old: str, new: str) -> bool:
        client = ChannelClient.connect(socket_path)
        if client is None:
            print("bedside: the unit's service is not running, so nobody can confirm the update with a press",
                  flush=True)
            return False
        try:
            print(f"bedside: press the unit's button to install version {new} (hold it to cancel)", flush=True)
            return client.confirm("Install update?", f"Version {new}", f"from {old}") == "confirmed"
        except ChannelError as e:
            print(f"bedside: the update could not be confirmed: {e}", flush=True)
            return False
        finally:
            client.close()
    return confirm


def cmd_update_apply(args: argparse.Namespace) -> int:
    from bedside.stick import software
    from bedside.trust import keyring
    from bedside.unit import host
    from bedside.unit.releases import Releases

    data = Path(args.data)
    cfg = host.find(args.config)
    releases = Releases(Path(args.prefix))
    current = releases.current()
    if current is None:
        raise UserError(f"{releases.link} is not a link to a release: this unit was installed before updates by "
                        "stick existed; install it once with tools/install.sh")
    extra = "pi-legacy" if cfg.hardware.gpio == "rpigpio" else "pi"
    service = SystemdService(releases.link, args.config, data)
    socket_path = Path(args.socket)
    record = recorder(data, socket_path, cfg.tz)
    resumed = software.resume(releases, service, record)
    if resumed is not None:
        say(resumed.result, f"bedside update: an update cut off before its proof: {resumed.result}: {resumed.message}")
        current = releases.current() or current
    if not (Path(args.folder) / "manifest.json").exists():
        return 0 if resumed is None or resumed.result == "installed" else 1
    try:
        ring = keyring.load(Path(args.keys_dir))
    except keyring.KeyringError as e:
        record(T.SOFTWARE_UPDATE_REFUSED, {"current": current, "version": None, "reason": "no_keys"})
        raise UserError(str(e), code=3) from None
    out = software.apply(Path(args.folder), Path(args.staging), ring, current, releases, service, record,
                         press_to_confirm(socket_path), datetime.now(UTC), extra)
    say(out.result, f"bedside update: {out.result}: {out.message}")
    return {"installed": 0, "refused": 3, "not_confirmed": 4}.get(out.result, 1)


# How each outcome goes to the system log: a rollback or a failed install is an error on the
# unit (`journalctl -u bedside-update -p warning` shows it), a refused bundle a warning.
PRIORITY = {"installed": 6, "not_confirmed": 5, "refused": 4, "rolled_back": 3, "failed": 3}


def say(result: str, text: str, stream: Any = None) -> None:
    """The updater's outcome on standard output, at its priority when that is journald's
    stream (the updater runs under systemd; an unmarked line would be filed at info)."""
    from bedside.unit.systemlog import ERR, is_journal

    out = sys.stdout if stream is None else stream
    prefix = f"<{PRIORITY.get(result, ERR)}>" if is_journal(out) else ""
    out.write("".join(f"{prefix}{line}\n" for line in text.splitlines()))
    out.flush()
