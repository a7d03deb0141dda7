"""Installing a software update from a stick: verify, copy, confirm, install beside, switch,
prove, or roll back.

The steps, each journaled (docs/install.md, "Software updates by stick"):

1. **Verify before copying**: the bundle's manifest (in ``update-incoming``, where the
   unprivileged export put it) must be a ``release`` signed by a key pinned on this unit as a
   release key, with a counter above the last release installed and not implausibly far
   above it, and a version above the one running (``stick/update.py``, ``trust/freshness.py``). Otherwise
   ``software_update_refused`` with the reason, and nothing is copied.
2. **Copy** the signed files, and only those, into the root-owned staging folder
   (``/var/lib/bedside-update/staging``, which the unprivileged user cannot write), streaming
   each through SHA-256 against its signed hash and size, keeping the card's reserve for the
   journal. From here on nothing is read from ``update-incoming``: a file changed there while
   the unit waits for the press changes nothing.
3. **Confirm**: whoever is at the unit presses its button (the daemon shows the versions).
   No press, no update.
4. **Install** the new version into a venv of its own beside the current one, from the
   staging folder only, with every file pinned to its signed hash (``pip --no-index
   --require-hashes``; ``unit/releases.py``). A failure here changes nothing that runs
   (``software_update_failed``).
5. **Switch**: the service is stopped, the release counter is raised, the ``venv`` link is
   switched in one step, ``software_update`` (old and new versions, the release key) is
   recorded, and the service started again.
6. **Prove**: the new version must pass its first watchdog period and its self-test. If it
   does not, the link goes back, ``software_rollback`` says why, and the old version runs.
   A power cut between 5 and 6 leaves a note (``.update-pending``) that brings the proof
   back at the next start (``resume``).

The service is started again on every way out: here in ``finally``, and, for a kill, a
timeout or a crash of this process, by systemd itself (``ExecStopPost=`` of
``bedside-update.service`` starts ``bedside.service``).

Only one program writes the journal at a time: ``record`` (from the caller) writes through
the daemon while it runs (refusals, failed installs) and directly while the service is
stopped (the switch and the rollback).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bedside.core.records import T
from bedside.stick import update
from bedside.trust.keyring import Keyring
from bedside.unit.releases import ReleaseError, Releases

Recorder = Callable[[str, dict[str, Any]], None]
STAGING = Path("/var/lib/bedside-update/staging")


class Service(Protocol):
    """The unit's service, as the update sees it."""

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def healthy(self) -> str | None:
        """After ``start``: None once it has passed its first watchdog period and self-test,
        else what went wrong."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str            # installed | rolled_back | refused | not_confirmed | failed
    old: str
    new: str | None
    message: str


def verify_and_copy(incoming: Path, staging: Path, ring: Keyring | None, trusted: int, now: datetime,
                    reserve: int = update.JOURNAL_RESERVE, current: str | None = None
                    ) -> tuple[update.Release, bytes | None]:
    """Steps 1 and 2: the release, copied into ``staging``; UpdateRefused when it is not
    (nothing copied). Also the raw manifest, for the record of a refusal."""
    try:
        fd = os.open(incoming, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise update.UpdateRefused(update.UNSIGNED, f"{incoming} is not a folder of an update") from None
    try:
        raw, recovery = update.read_bundle(fd)
        release = update.check_manifest(raw, ring, trusted, now, recovery, current)
        assert raw is not None
        staging.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        update.copy_verified(fd, staging, release, raw, reserve, recovery)
        return release, raw
    finally:
        os.close(fd)


def apply(incoming: Path, staging: Path, ring: Keyring | None, current: str, releases: Releases, service: Service,
          record: Recorder, confirm: Callable[[str, str], bool], now: datetime, extra: str = "pi",
          reserve: int = update.JOURNAL_RESERVE) -> Outcome:
    """Install the update in ``incoming`` over ``current`` (see the module's steps)."""
    try:
        m, _ = verify_and_copy(incoming, staging, ring, releases.trusted_counter(), now, reserve, current)
    except update.UpdateRefused as e:
        claimed = _claimed_version(incoming)
        record(T.SOFTWARE_UPDATE_REFUSED, {"current": current, "version": claimed, "reason": e.reason})
        return Outcome("refused", current, claimed, str(e))
    try:
        if not confirm(current, m.version):
            return Outcome("not_confirmed", current, m.version,
                           f"version {m.version} was not confirmed at the unit; nothing changed")
        try:
            releases.install(m.version, staging, extra, hashes={n: w.sha256 for n, w in m.wheels.items()})
        except ReleaseError as e:
            record(T.SOFTWARE_UPDATE_FAILED, {"old": current, "new": m.version, "reason": str(e)[:300]})
            return Outcome("failed", current, m.version, str(e))
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    service.stop()
    try:
        # Written before the switch, removed once the new version is proven or gone: a power
        # cut in between leaves it, and the next start of bedside-update proves or rolls back.
        releases.set_pending(current, m.version)
        releases.set_counter(m.counter, m.version)
        releases.switch(m.version)
        fields: dict[str, Any] = {"old": current, "new": m.version, "counter": m.counter, "key": m.signer}
        if m.recovery_from is not None:
            fields["recovery_from"] = m.recovery_from
        record(T.SOFTWARE_UPDATE, fields)
    finally:
        service.start()
    return prove(releases, service, record, current, m.version)


def prove(releases: Releases, service: Service, record: Recorder, old: str, new: str) -> Outcome:
    """Keep ``new`` if the started service is healthy, else switch back to ``old``."""
    problem = service.healthy()
    if problem is None:
        releases.prune({old, new})
        releases.clear_pending()
        return Outcome("installed", old, new, f"version {new} installed and running (version {old} kept to "
                       "switch back to)")
    service.stop()
    try:
        releases.switch(old)
        record(T.SOFTWARE_ROLLBACK, {"from": new, "to": old, "reason": problem[:300]})
    finally:
        service.start()
    releases.prune(set(releases.installed()) - {new})     # only the failed one goes
    releases.clear_pending()
    return Outcome("rolled_back", old, new, f"version {new} failed ({problem}); version {old} is running again")


def resume(releases: Releases, service: Service, record: Recorder) -> Outcome | None:
    """An update cut off between its switch and its proof (a power cut): prove it now."""
    pending = releases.pending()
    if pending is None:
        return None
    old, new = pending
    if releases.current() != new:
        releases.clear_pending()        # the switch itself never happened
        return None
    return prove(releases, service, record, old, new)


def _claimed_version(incoming: Path) -> str | None:
    """The version a refused bundle claims, for the record (it proves nothing)."""
    try:
        fd = os.open(incoming, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return update.claimed_version(update.read_bundle(fd)[0])
    except OSError:
        return None
    finally:
        os.close(fd)
