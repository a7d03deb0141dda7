"""Installing a software update from a stick: check, install beside, switch, prove, or roll back.

The steps, each journaled (docs/install.md, "Software updates by stick"):

1. **Check** the bundle (``stick/update.py``): signed with this ward's stick key, every wheel
   the one signed, and newer than what runs. Otherwise ``software_update_refused`` with the
   reason, and nothing else happens.
2. **Confirm**: whoever is at the unit presses its button (the daemon shows the versions).
   No press, no update.
3. **Install** the new version into a venv of its own beside the current one, from the
   stick's wheels only (``unit/releases.py``). A failure here changes nothing that runs
   (``software_update_failed``).
4. **Switch**: the service is stopped, the ``venv`` link is switched in one step,
   ``software_update`` (old and new versions) is recorded, and the service started again.
5. **Prove**: the new version must pass its first watchdog period and its self-test. If it
   does not, the link goes back, ``software_rollback`` says why, and the old version runs.
   A power cut between 4 and 5 leaves a note (``.update-pending``) that brings the proof
   back at the next start (``resume``).

Only one program writes the journal at a time: ``record`` (from the caller) writes through
the daemon while it runs (refusals, failed installs) and directly while the service is
stopped (the switch and the rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bedside.stick import update
from bedside.unit.releases import ReleaseError, Releases

Recorder = Callable[[str, dict[str, Any]], None]


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


def apply(bundle: Path, stick_key: bytes, current: str, releases: Releases, service: Service, record: Recorder,
          confirm: Callable[[str, str], bool], extra: str = "pi") -> Outcome:
    """Install the update in ``bundle`` over ``current`` (see the module's steps)."""
    try:
        m = update.check(bundle, stick_key, current)
    except update.UpdateRefused as e:
        claimed = _claimed_version(bundle)
        record("software_update_refused", {"current": current, "version": claimed, "reason": e.reason})
        return Outcome("refused", current, claimed, str(e))
    if not confirm(current, m.version):
        return Outcome("not_confirmed", current, m.version,
                       f"version {m.version} was not confirmed at the unit; nothing changed")
    try:
        releases.install(m.version, bundle, extra)
    except ReleaseError as e:
        record("software_update_failed", {"old": current, "new": m.version, "reason": str(e)[:300]})
        return Outcome("failed", current, m.version, str(e))

    service.stop()
    try:
        # Written before the switch, removed once the new version is proven or gone: a power
        # cut in between leaves it, and the next start of bedside-update proves or rolls back.
        releases.set_pending(current, m.version)
        releases.switch(m.version)
        record("software_update", {"old": current, "new": m.version})
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
        record("software_rollback", {"from": new, "to": old, "reason": problem[:300]})
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


def _claimed_version(bundle: Path) -> str | None:
    """The version a refused bundle claims, for the record (it proves nothing)."""
    import json

    try:
        v = json.loads((bundle / update.MANIFEST).read_text("utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return v[:40] if isinstance(v, str) else None
