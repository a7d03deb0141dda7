"""One export to a USB stick, as the export process runs it.

1. Tell the unit (``begin``): the running daemon seals its journal and shows "Exporting";
   with no daemon running, this process takes the data directory's lock and will write the
   records itself. If neither is possible, nothing is exported: every export is recorded.
2. Have the stick mounted: by the stick service, which holds the privilege to mount and
   nothing else (``ServiceMount``), or already mounted by whoever runs the command
   (``HandMount``).
3. Check the stick's authorisation: signed by a pinned ward authority key and not revoked
   (``auth.check_signed``), or, on a unit not yet migrated, against its stick key (``auth.check``).
4. Read the journal read-only (the daemon keeps writing meanwhile) up to its head, one record
   at a time: a first pass makes the report and its CSV from the records as the raw export's
   lines give them, and sizes the raw export.
5. Write them onto the stick (``stick_files.write_export``), the raw export from a second pass
   checked to give the same records. A software update on the stick
   is copied for the root updater only once its release signature holds, streamed, within
   the card's reserve (``update.stage``); a refused one is named in the export's record.
   Then flush and unmount the stick.
6. Tell the unit the outcome (``end``): ``export``, ``export_refused`` or ``export_failed``
   is committed, the display says what happened, and an export is noted for retention.

Nothing here writes the unit's journal while the daemon runs, and nothing on the stick is
trusted beyond the authorisation check: the stick is mounted nosuid, nodev, noexec, this
process holds no capability, and it only ever writes files of its own into its own folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

from bedside import secret
from bedside.core.config import Config
from bedside.core.errors import BedsideError
from bedside.core.records import T
from bedside.durable import json_loads
from bedside.journal import chain, export, salvage
from bedside.journal.journal import Journal
from bedside.journal.segments import JournalError
from bedside.report import bundle
from bedside.report import model as report
from bedside.stick import auth as stick_auth
from bedside.stick import files as stick_files
from bedside.stick import settings as stick_settings
from bedside.stick import update
from bedside.stick.channel import ChannelClient, ChannelError
from bedside.stick.files import StickProblem
from bedside.trust import keyring
from bedside.trust.signed import VerifyError
from bedside.unit import host
from bedside.unit.offline import OfflineWriter

JOURNAL_FILE, CSV_FILE, REPORT_FILE = "journal.jsonl", "sessions.csv", "report.html"
MOUNT_FLAGS = os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC


class NothingExported(BedsideError):
    """Nothing was exported, and nothing was written to any stick; the message says why."""


class Interrupted(BedsideError):
    """SIGTERM: systemd stops the export when the stick disappears (or the unit shuts down)."""


@dataclass(frozen=True)
class Outcome:
    stage: str                     # done | refused | failed
    reason: str                    # "" when done; else stick_files.REFUSALS, stick's failures, "journal"
    message: str                   # for people
    details: dict[str, Any] = field(default_factory=dict)
    settings: bytes | None = None  # the stick's ward settings, for the unit to check (never in the record)

    @property
    def exit_code(self) -> int:
        return {"done": 0, "refused": 3}.get(self.stage, 1)


# --- where the stick is ---------------------------------------------------------------

class Mount(Protocol):
    def mount(self) -> Path: ...

    def unmount(self) -> None: ...

    def gone(self) -> bool: ...


class HandMount:
    """A stick someone mounted and will eject: flushed at the end, left mounted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def mount(self) -> Path:
        # Held open to flush exactly this file system at the end, even if it is detached meanwhile.
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise stick_files.problem(e, "opening the stick") from None
        return self.path

    def unmount(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            _syncfs(fd)
        except OSError as e:
            raise stick_files.problem(e, "flushing the stick") from None
        finally:
            os.close(fd)

    def gone(self) -> bool:
        return not os.path.ismount(self.path)


class ServiceMount:
    """The stick service (this process's parent) mounts and unmounts; we ask over stdin/stdout."""

    def __init__(self, rfile: IO[bytes], wfile: IO[bytes]) -> None:
        self.rfile = rfile
        self.wfile = wfile
        self.present = True

    def _ask(self, op: str) -> dict[str, Any]:
        try:
            self.wfile.write(json.dumps({"op": op}).encode() + b"\n")
            self.wfile.flush()
            line = self.rfile.readline(65536)
            answer = json_loads(line) if line else None       # (nesting too deep: a ValueError, not a crash)
        except (OSError, ValueError):
            answer = None
        if not isinstance(answer, dict):
            raise StickProblem(stick_files.REMOVED, "the stick service stopped (the stick was removed, or the unit "
                               "is shutting down)")
        self.present = bool(answer.get("present", self.present))
        if not answer.get("ok"):
            raise StickProblem(str(answer.get("reason") or stick_files.IO_ERROR),
                               str(answer.get("message") or "the stick could not be mounted"))
        return answer

    def mount(self) -> Path:
        path = Path(str(self._ask("mount")["path"]))
        flags = os.statvfs(path).f_flag
        if flags & MOUNT_FLAGS != MOUNT_FLAGS:
            # Never write where a stick's programs or device files could mean anything.
            raise StickProblem(stick_files.IO_ERROR, "the stick was not mounted nosuid,nodev,noexec; nothing written")
        return path

    def unmount(self) -> None:
        self._ask("unmount")

    def gone(self) -> bool:
        return not self.present


def _syncfs(fd: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syncfs(fd) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def capabilities() -> int:
    """This process's effective capabilities (0: none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


# --- who records it --------------------------------------------------------------------

class Recorder(Protocol):
    def begin(self, device: str) -> None: ...

    def end(self, outcome: Outcome) -> str: ...

    def settings(self, raw: bytes, stick: str) -> str: ...

    def close(self) -> None: ...


class DaemonRecorder:
    """The running daemon records it (the journal's only writer) and shows it on the display."""

    def __init__(self, client: ChannelClient, path: Path | None = None) -> None:
        self.client = client
        self.path = path

    def begin(self, device: str) -> None:
        try:
            self.client.begin(device)
        except ChannelError as e:
            raise NothingExported(f"{e}; nothing was exported") from None

    def end(self, outcome: Outcome) -> str:
        try:
            saved = self.client.end(outcome.stage, outcome.reason, outcome.details)
        except ChannelError as e:
            return f"NOT recorded by the unit: {e}"
        return "recorded by the unit" if saved else \
            "kept by the unit in memory: its card cannot be written now (it shows 'Log not saved')"

    def settings(self, raw: bytes, stick: str) -> str:
        """The unit checks them, asks for its button to be pressed, and applies them."""
        try:
            # A connection of its own: the export's ended with its outcome.
            client = ChannelClient.connect(self.path) if self.path is not None else None
            if client is None:
                return "NOT handed to the unit: its program no longer answers"
            try:
                answer = client.settings(raw, stick)
            finally:
                client.close()
        except ChannelError as e:
            return f"NOT handed to the unit: {e}"
        return str(answer.get("message") or answer.get("outcome"))

    def close(self) -> None:
        self.client.close()


class JournalRecorder:
    """No daemon runs: this process holds the data directory's lock and writes the records."""

    def __init__(self, data: Path, cfg: Config, writer: OfflineWriter) -> None:
        self.data = data
        self.cfg = cfg
        self.writer = writer
        writer.tz = cfg.tz

    def begin(self, device: str) -> None:
        from bedside.journal import seal

        try:
            journal = self.writer.journal
            sealer = seal.Sealer(self.data)
            if sealer.available:
                # Seal first, so that the export ends with a seal (as the daemon does).
                last = journal.last_of_type(T.SEAL)
                # A seal record naming an epoch the key cannot reach: no seal from this export (the
                # daemon records the fault at its next start); the records are exported as they are.
                caught = sealer.catch_up(last)
                seq, head = journal.head()
                if caught is None and seq and (last is None or last["seq"] < seq):
                    self.writer.append(T.SEAL, sealer.seal_data(seq, head))
                    sealer.sealed()
        except (JournalError, seal.SealError, OSError) as e:
            raise NothingExported(f"the unit's journal cannot be written ({e}); nothing was exported") from None

    def end(self, outcome: Outcome) -> str:
        from bedside.core import machine
        from bedside.core.events import StickExport
        from bedside.journal import retention

        if outcome.stage == "done":
            type_, data = T.EXPORT, {**outcome.details, "via": "stick"}
        else:
            rec = machine.stick_record(StickExport(outcome.stage, outcome.reason, outcome.details))
            assert rec is not None
            type_, data = rec.type, dict(rec.data)
        try:
            self.writer.append(type_, data)
        except JournalError as e:
            return f"NOT recorded in the journal: {e}"
        if outcome.stage == "done":
            with contextlib.suppress(OSError):
                retention.mark_exported(self.data, outcome.details["to_seq"], outcome.details["to_hash"],
                                        f"stick {outcome.details.get('folder', '')}", datetime.now(UTC))
        return "recorded in the journal (the unit's daemon is not running)"

    def settings(self, raw: bytes, stick: str) -> str:
        from bedside.stick import settings as stick_settings

        problem = "not applied: the unit's program is not running, so nobody could confirm them with a press"
        with contextlib.suppress(JournalError):
            self.writer.append(T.SETTINGS_REFUSED, {"reason": stick_settings.NOT_CONFIRMED, "problem": problem,
                                                    **({"stick": stick} if stick else {})})
        return problem

    def close(self) -> None:
        self.writer.close()


def recorder(data: Path, cfg: Config, socket_path: Path) -> Recorder:
    """The daemon when it listens, else the journal itself; NothingExported when neither can record."""
    try:
        client = ChannelClient.connect(socket_path)
    except ChannelError as e:
        raise NothingExported(f"{e}; nothing was exported") from None
    if client is not None:
        return DaemonRecorder(client, socket_path)
    try:
        writer = OfflineWriter(data)
    except host.DataDirBusy:
        raise NothingExported(f"the unit's daemon is running on {data} but does not answer on {socket_path}, so the "
                          "export could not be recorded; nothing was exported") from None
    except OSError as e:
        raise NothingExported(f"cannot use the data directory {data} ({e.strerror}); nothing was exported") from None
    return JournalRecorder(data, cfg, writer)


# --- the files ------------------------------------------------------------------------

@dataclass(frozen=True)
class Collected:
    files: list[stick_files.File]
    header: dict[str, Any]
    summary: str


@contextlib.contextmanager
def collect(data: Path, cfg: Config, now: datetime, folder: str = "") -> Iterator[Collected]:
    """The raw export of the journal (read-only) up to its head, and the report made from it.

    One record at a time, never the export (``bundle.stream``): a first pass makes the report
    and sizes the export, the raw export is written from a second pass as the stick takes it,
    while the journal stays open (until the block ends). The report's model has a budget of its
    own whatever the records say (``report.adherence``: what it lists, the rest counted), so
    every export gets its report."""
    # Every record and every file is read, as no loop waits on this process, but the data
    # directory's listing is a budget's: at most ``salvage.LIST_FILES`` segment names (the oldest
    # and newest halves, which hold every segment the unit made), so that a card holding a
    # million crafted names costs the export their count, not their memory (about 380 bytes a
    # name listed whole: past the service's memory limit, and the export would never be made).
    # The unit's start names those left out in a ``fault`` record (``not_listed``), which the
    # export carries.
    with salvage.bounded(salvage.UNBOUNDED, files=salvage.UNBOUNDED):
        journal = Journal(data, ZoneInfo("UTC"), "export", readonly=True)
        try:
            source = f"{folder}/{JOURNAL_FILE}" if folder else JOURNAL_FILE
            try:
                made = bundle.stream(journal, exported=now, source=source, generated=now.astimezone(cfg.tz))
            except report.ReportError as e:
                raise JournalError(str(e)) from None
            files = [stick_files.File(JOURNAL_FILE, writer=made.write, length=made.size),
                     stick_files.File(CSV_FILE, made.csv),
                     # Last: a folder with a report holds all three.
                     stick_files.File(REPORT_FILE, made.html)]
            yield Collected(files, made.header, report.summary(made.report))
        finally:
            journal.close()


# --- the export -----------------------------------------------------------------------

def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def run(cfg: Config, data: Path, mount: Mount, rec: Recorder, device: str = "",
        step: Callable[[str], None] = lambda what: None, keys_dir: Path = keyring.KEYS_DIR,
        prefix: Path | None = None) -> Outcome:
    """Export to the stick and record the outcome. Raises NothingExported when nothing could be
    recorded (then nothing was written either)."""
    old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        rec.begin(device)
        outcome = _export(cfg, data, mount, step, keys_dir, prefix)
        note = rec.end(outcome)
        if outcome.settings is not None:
            note += "\nWard settings on the stick: " + rec.settings(outcome.settings, outcome.details.get("stick", ""))
    except Interrupted:
        # Cut off while telling the unit: it records the connection's end as interrupted.
        raise NothingExported("stopped while reporting to the unit") from None
    finally:
        signal.signal(signal.SIGTERM, old)
        rec.close()
    return Outcome(outcome.stage, outcome.reason, f"{outcome.message}\nThe outcome was {note}.", outcome.details)


def _stage_update(root: int, data: Path, ring: keyring.Keyring | None, prefix: Path | None,
                  details: dict[str, Any]) -> str:
    """A software update on the stick, copied for the root updater once its signature holds
    (docs/install.md); what happened, in a sentence ("" when the stick has none). A stick that
    cannot give it keeps its export all the same; a refusal is named in ``details``."""
    from bedside.unit.releases import PREFIX, Releases

    releases = Releases(prefix or PREFIX)
    try:
        version = update.stage(root, data, ring, releases.trusted_counter(), datetime.now(UTC),
                               current=releases.current())
    except update.UpdateRefused as e:
        details["update_refused"] = e.reason
        return f"\nThe software update on the stick was refused and not copied: {e}"
    except VerifyError as e:
        details["update_refused"] = "unchecked"
        return f"\nThe software update on the stick was not copied: {e}"
    except OSError as e:
        details["update_refused"] = "unreadable"
        return f"\nThe software update on the stick could not be copied ({e.strerror or e})"
    if version is None:
        return ""
    details["update"] = version
    return f"\nSoftware update {version} copied from the stick: press the unit's button when it asks."


def _authorise(root: int, data: Path, ring: keyring.Keyring | None) -> stick_auth.Authorised:
    raw = stick_auth.read_authorisation(root)
    if ring is not None:
        try:
            return stick_auth.check_signed(raw, ring, stick_settings.revoked(data)["sticks"])
        except VerifyError as e:
            raise StickProblem(stick_files.NO_KEYS, str(e)) from None
    try:
        ward = secret.load(data)
    except secret.SecretError as e:
        raise StickProblem(stick_files.NO_WARD_SECRET, str(e)) from None
    if ward is None:
        raise StickProblem(stick_files.NO_WARD_SECRET, "this unit has no pinned keys and no ward secret, so it "
                           "cannot tell the ward's sticks from others: the engineer pins them (bedside trust pin)")
    return stick_auth.check(raw, ward.stick_key)


def _export(cfg: Config, data: Path, mount: Mount, step: Callable[[str], None], keys_dir: Path = keyring.KEYS_DIR,
            prefix: Path | None = None) -> Outcome:
    t0 = time.monotonic()
    root: int | None = None
    auth: stick_auth.Authorised | None = None
    started: list[str] = []
    finished = False

    def tracked(what: str) -> None:
        step(what)
        if what in (JOURNAL_FILE, CSV_FILE, REPORT_FILE):
            started.append(what)

    def whole() -> list[str]:
        """The files on the stick under their final names (the one being written is not)."""
        return list(started) if finished else started[:-1]

    try:
        path = mount.mount()
        try:
            root = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            here, above = os.fstat(root), os.stat("..", dir_fd=root)
        except OSError as e:
            raise stick_files.problem(e, "opening the stick") from None
        if here.st_dev == above.st_dev and here.st_ino != above.st_ino:
            # Unmounted since it was named: never write into the folder beneath, on the unit's own card.
            raise StickProblem(stick_files.REMOVED, f"the stick is no longer mounted at {path}")
        try:
            ring = keyring.load(keys_dir)
        except keyring.KeyringError as e:
            raise StickProblem(stick_files.NO_KEYS, str(e)) from None
        auth = _authorise(root, data, ring)
        now = datetime.now(UTC)
        name = stick_files.folder_name(cfg.unit_id, now.astimezone(cfg.tz))
        with collect(data, cfg, now, name) as got:
            out = stick_files.write_export(root, name, got.files, tracked)
        finished = True
        update_details: dict[str, Any] = {}
        staged = _stage_update(root, data, ring, prefix, update_details)
        try:
            ward_settings = stick_settings.read(root)
        except OSError as e:
            ward_settings = None
            print(f"bedside: the ward settings on the stick could not be read ({e.strerror or e})",
                  file=sys.stderr, flush=True)
        os.close(root)
        root = None
        step("unmount")
        mount.unmount()
    except StickProblem as p:
        return _not_done(p, mount, root, auth, whole())
    except Interrupted:
        stopped = StickProblem(stick_files.REMOVED, "the export was stopped before it finished (the stick was removed, "
                               "or the unit is shutting down)")
        return _not_done(stopped, mount, root, auth, whole())
    except (JournalError, export.ExportChanged) as e:
        unreadable = StickProblem("journal", f"the unit's journal could not be read ({e})")
        return _not_done(unreadable, mount, root, auth, whole())
    head = got.header["head"]
    first = got.header.get("first") or {}
    details = {"stick": auth.stick, "folder": out.folder, "files": list(out.files), "bytes": out.bytes,
               "records": got.header["records"], "from_seq": first.get("seq", head["seq"]),
               "to_seq": head["seq"], "to_hash": head["hash"], "seconds": round(time.monotonic() - t0, 1),
               **update_details}
    where = f"{path}/{out.folder}"
    return Outcome("done", "", f"Exported {got.header['records']} records of unit {cfg.unit_id} to {where} "
                   f"({', '.join(out.files)}); head {head['seq']}/{chain.short(head['hash'])}. {got.summary}."
                   + staged, details, ward_settings)


def _not_done(p: StickProblem, mount: Mount, root: int | None, auth: stick_auth.Authorised | None,
              written: list[str]) -> Outcome:
    if root is not None:
        with contextlib.suppress(OSError):
            os.close(root)
    reason = p.reason
    with contextlib.suppress(StickProblem, Interrupted):
        mount.unmount()
    if reason == stick_files.IO_ERROR and mount.gone():
        reason = stick_files.REMOVED
    details: dict[str, Any] = {"problem": str(p)}
    if auth is not None:
        details["stick"] = auth.stick
    if written:
        details["written"] = written
    stage = "refused" if p.refused else "failed"
    lead = "The stick was refused" if p.refused else "Nothing exported"
    if written:
        lead = f"Export NOT finished ({', '.join(written)} written whole, the rest not)"
    return Outcome(stage, reason, f"{lead}: {p}.", details)
