"""Software updates from a stick (docs/install.md, "Software updates by stick"; docs/security.md):
real wheels built offline, signed with a real release key, verified against a pinned keyring,
copied into a staging folder, installed from there with every hash pinned into pip, real venvs
beside each other, the link switched, the new version's own self-test run through it, the
records in a real journal.

The service is played by the test (stop and start are noted; "healthy" runs the self-test
of whatever the link points at), because systemd is not running here; the confirmation by a
press is proven separately on the real loop and stick channel, and the kill at every step in
tests/stick/test_update_kill.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bedside import secret
from bedside.stick import software, update
from bedside.stick.channel import ChannelClient
from bedside.trust import keys
from bedside.unit.offline import OfflineWriter
from bedside.unit.releases import ReleaseError, Releases, holds_gpiod
from tests.conftest import journal_records
from tests.rigs import wheelhouse
from tests.rigs.stick_rig import SECRET, FatStick, needs_fat, unit_data
from tests.rigs.trust_rig import Ward

MADE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def builds(wheel_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """bedside 0.2.0, and a 0.3.0 built without its fonts (it installs, and its self-test fails)."""
    out: dict[str, Path] = {}
    for version in ("0.2.0", "0.3.0"):
        src = wheelhouse.source_copy(tmp_path_factory.mktemp("src") / "bedside", version)
        if version == "0.3.0":
            for f in (src / "device/bedside/display/fonts").glob("*.p[ib][lm]"):
                f.unlink()
        # The isolated build from the folder alone is proven by wheel_folder (tests/unit/test_wheelhouse.py).
        wheel, r = wheelhouse.build(src, wheel_folder, tmp_path_factory.mktemp(f"built-{version}"), isolated=False)
        assert r.returncode == 0, r.stdout + r.stderr
        out[version] = wheel
    return out


def stick_folder(tmp_path: Path, wheel_folder: Path, bedside_wheel: Path, signer: keys.PrivateKey,
                 counter: int = 1) -> Path:
    """Bedside/update on a stick: the dependencies, one bedside wheel, the signed manifest."""
    folder = tmp_path / "stick" / "Bedside" / "update"
    folder.mkdir(parents=True)
    for w in wheel_folder.glob("*.whl"):
        if not w.name.startswith("bedside-"):
            shutil.copy(w, folder)
    shutil.copy(bedside_wheel, folder)
    update.write_manifest(folder, signer.sign(update.KIND, update.body_for(folder, counter, MADE)))
    return folder


class Service:
    """The unit's service as the test plays it: "healthy" is the self-test of what the link points at."""

    def __init__(self, releases: Releases, data: Path) -> None:
        self.releases = releases
        self.data = data
        self.calls: list[str] = []
        self.watchdog_fails = False

    def stop(self) -> None:
        self.calls.append("stop")

    def start(self) -> None:
        self.calls.append(f"start {self.releases.current()}")

    def healthy(self) -> str | None:
        if self.watchdog_fails:
            self.calls.append("watchdog timeout")
            return "systemd restarted it (a watchdog timeout or a crash)"
        r = subprocess.run([str(self.releases.link / "bin/bedside"), "self-test", "--data", str(self.data)],
                           capture_output=True, text=True, timeout=300)
        self.calls.append(f"self-test {r.returncode}")
        return None if r.returncode == 0 else r.stdout.strip() or r.stderr.strip()


def record_offline(data: Path) -> software.Recorder:
    def record(type_: str, fields: dict[str, Any]) -> None:
        with OfflineWriter(data) as w:
            w.append(type_, fields)
    return record


def records(data: Path, *types: str) -> list[dict[str, Any]]:
    return [r for r in journal_records(data) if r["type"] in types]


@dataclass
class Unit:
    releases: Releases
    service: Service
    data: Path
    staging: Path
    ward: Ward

    def apply(self, bundle: Path, confirm: Any = lambda old, new: True, reserve: int = 0) -> software.Outcome:
        current = self.releases.current()
        assert current is not None
        return software.apply(bundle, self.staging, self.ward.ring(), current, self.releases, self.service,
                              record_offline(self.data), confirm, NOW, reserve=reserve)


@pytest.fixture
def unit(tmp_path: Path, wheel_folder: Path, ward: Ward) -> Iterator[Unit]:
    """A unit as tools/install.sh leaves it: 0.1.0 in its own venv, the link pointing at it."""
    releases = Releases(tmp_path / "opt/bedside")
    releases.install("0.1.0", wheel_folder)
    releases.switch("0.1.0")
    data = tmp_path / "data"
    data.mkdir()
    yield Unit(releases, Service(releases, data), data, tmp_path / "var-lib-bedside-update" / "staging", ward)


def version_of(releases: Releases) -> str:
    r = subprocess.run([str(releases.link / "bin/bedside"), "--version"], capture_output=True, text=True, timeout=60)
    return r.stdout.strip()


def test_a_newer_release_installs_beside_switches_and_a_failing_one_rolls_back(
        unit: Unit, wheel_folder: Path, builds: dict[str, Path], tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def confirm(old: str, new: str) -> bool:
        asked.append((old, new))
        return True

    releases, service, data = unit.releases, unit.service, unit.data
    out = unit.apply(stick_folder(tmp_path / "a", wheel_folder, builds["0.2.0"], unit.ward.release, 1), confirm)
    assert out.result == "installed", out.message
    assert asked == [("0.1.0", "0.2.0")]
    assert releases.current() == "0.2.0" and releases.installed() == ["0.1.0", "0.2.0"]
    assert version_of(releases).endswith("0.2.0")
    assert releases.trusted_counter() == 1
    # Stopped, switched (recorded while stopped), started on the new version, proven.
    assert service.calls == ["stop", "start 0.2.0", "self-test 0"]
    (done,) = records(data, "software_update")
    assert (done["old"], done["new"], done["counter"], done["key"]) == ("0.1.0", "0.2.0", 1, unit.ward.release.id)
    assert not unit.staging.exists()          # installed from, then removed

    service.calls.clear()
    out = unit.apply(stick_folder(tmp_path / "b", wheel_folder, builds["0.3.0"], unit.ward.release, 2))
    assert out.result == "rolled_back", out.message
    assert service.calls == ["stop", "start 0.3.0", "self-test 1", "stop", "start 0.2.0"]
    assert releases.current() == "0.2.0" and version_of(releases).endswith("0.2.0")
    # The failed version is gone; the one before the current is kept to switch back to.
    assert releases.installed() == ["0.1.0", "0.2.0"]
    (rollback,) = records(data, "software_rollback")
    assert rollback["from"] == "0.3.0" and rollback["to"] == "0.2.0" and "screens" in rollback["reason"]

    # A power cut between the switch and the proof: the note brings the proof back at the next
    # start. A version that proves itself stays; one that fails its watchdog is rolled back.
    assert releases.pending() is None and software.resume(releases, service, record_offline(data)) is None
    releases.set_pending("0.1.0", "0.2.0")
    service.calls.clear()
    resumed = software.resume(releases, service, record_offline(data))
    assert resumed is not None and resumed.result == "installed" and service.calls == ["self-test 0"]
    releases.set_pending("0.1.0", "0.2.0")
    service.calls.clear()
    service.watchdog_fails = True
    resumed = software.resume(releases, service, record_offline(data))
    assert resumed is not None and resumed.result == "rolled_back"
    assert service.calls == ["watchdog timeout", "stop", "start 0.1.0"]
    assert releases.pending() is None and releases.current() == "0.1.0" and releases.installed() == ["0.1.0"]


def test_every_forgery_rollback_and_freeze_is_refused_before_anything_is_copied(
        unit: Unit, wheel_folder: Path, builds: dict[str, Path], tmp_path: Path) -> None:
    """Defects 1 and 4 of issue 21, on the updater: only a pinned release key's signature counts,
    a ward secret's or the ward authority's never does, and counters keep the order."""
    releases, service, data = unit.releases, unit.service, unit.data
    releases.set_counter(5, "0.1.0")
    w = unit.ward
    cases: list[tuple[str, Path, str]] = []

    def folder(name: str, signer: keys.PrivateKey, counter: int, wheel: Path | None = None) -> Path:
        return stick_folder(tmp_path / name, wheel_folder, wheel or builds["0.2.0"], signer, counter)

    cases.append(("downgrade", folder("replayed", w.release, 5), "0.2.0"))
    cases.append(("downgrade", folder("older", w.release, 4), "0.2.0"))
    cases.append(("implausible", folder("frozen", w.release, 5 + 1001), "0.2.0"))
    # A genuine old release with a higher counter (a unit installed from source had no counter):
    # the version must rise too.
    cases.append(("downgrade", folder("same-version", w.release, 6, wheel_folder / "bedside-0.1.0-py3-none-any.whl"),
                  "0.1.0"))
    cases.append(("unsigned", folder("by-ward", w.authority, 6), "0.2.0"))          # the wrong role
    cases.append(("unsigned", folder("stranger", keys.generate("release", "someone's"), 6), "0.2.0"))
    forged = folder("forged", w.release, 6)
    doc = json.loads((forged / "manifest.json").read_text())
    doc["body"]["counter"] = 7
    (forged / "manifest.json").write_text(json.dumps(doc))
    cases.append(("bad_signature", forged, "0.2.0"))
    swapped = folder("swapped", w.release, 6)
    shutil.copy(builds["0.3.0"], swapped / builds["0.2.0"].name)
    cases.append(("damaged", swapped, "0.2.0"))
    # The old kind of bundle, signed with the ward's stick key read off any unit's card.
    legacy = folder("legacy", w.release, 6)
    key = secret.stick_key(SECRET)
    update.make_legacy(legacy, key, "0" * 16, MADE)
    cases.append(("unsigned", legacy, "?"))
    for reason, bundle, claimed in cases:
        out = unit.apply(bundle)
        assert out.result == "refused", (reason, out.message)
        last = records(data, "software_update_refused")[-1]
        assert (last["reason"], last["current"]) == (reason, "0.1.0"), out.message
        if claimed != "?":
            assert last["version"] == claimed
        assert not unit.staging.exists() and not unit.staging.with_name(".staging.tmp").exists()
    no_keys = software.apply(folder("no-keys", w.release, 6), unit.staging, None, "0.1.0", releases, service,
                             record_offline(data), lambda o, n: True, NOW)
    assert no_keys.result == "refused" and records(data, "software_update_refused")[-1]["reason"] == "no_keys"
    out = unit.apply(folder("newer", w.release, 6), lambda o, n: False)
    assert out.result == "not_confirmed" and not unit.staging.exists()
    # Nothing ran, stopped or was installed.
    assert service.calls == [] and releases.current() == "0.1.0" and releases.installed() == ["0.1.0"]
    assert records(data, "software_update", "software_rollback") == []
    assert releases.trusted_counter() == 5


def test_a_frozen_counter_is_recovered_only_by_the_ward_authority(
        unit: Unit, wheel_folder: Path, builds: dict[str, Path], tmp_path: Path) -> None:
    """A release numbered far ahead by mistake froze the unit at 10**6: a recovery signed by the
    ward authority for exactly that counter lets the next genuine release in; one signed by
    anyone else, or for another counter, does not, and once used it is spent."""
    releases = unit.releases
    releases.set_counter(10**6, "0.1.0")
    w = unit.ward

    def bundle(name: str, recovery_by: keys.PrivateKey | None, stuck: int) -> Path:
        f = stick_folder(tmp_path / name, wheel_folder, builds["0.2.0"], w.release, 7)
        if recovery_by is not None:
            update.write_manifest(f, recovery_by.sign(update.RECOVERY_KIND, update.recovery_body(stuck, MADE)),
                                  update.RECOVERY)
        return f

    for name, signer, stuck in (("none", None, 10**6), ("by-release-key", w.release, 10**6),
                                ("wrong-counter", w.authority, 999)):
        out = unit.apply(bundle(name, signer, stuck))
        assert out.result == "refused" and records(unit.data, "software_update_refused")[-1]["reason"] == "downgrade"
    out = unit.apply(bundle("recovered", w.authority, 10**6))
    assert out.result == "installed", out.message
    assert releases.trusted_counter() == 7
    assert records(unit.data, "software_update")[-1]["recovery_from"] == 10**6


def test_a_writer_racing_the_press_wait_changes_nothing_installed(
        unit: Unit, wheel_folder: Path, builds: dict[str, Path], tmp_path: Path) -> None:
    """Defect 2 of issue 21: while the unit waits for the press, the unprivileged user swaps the
    bedside wheel in update-incoming for another build and adds a wheel of its own; a thread
    keeps rewriting them all along. What is installed is exactly what was signed."""
    incoming = stick_folder(tmp_path / "race", wheel_folder, builds["0.2.0"], unit.ward.release, 1)
    target = incoming / builds["0.2.0"].name
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "evil.py").write_text("raise SystemExit('attacker code ran')\n")
    stop = threading.Event()
    swaps = [0]

    def writer() -> None:
        while not stop.is_set():
            shutil.copy(builds["0.3.0"], target)
            shutil.copy(builds["0.3.0"], incoming / "bedside-0.2.1-py3-none-any.whl")
            swaps[0] += 1
            time.sleep(0.01)

    def confirm(old: str, new: str) -> bool:
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.5)             # the press comes late; the writer has had its chance
        confirm.thread = t          # type: ignore[attr-defined]
        return True

    try:
        out = unit.apply(incoming, confirm)
    finally:
        stop.set()
        confirm.thread.join()       # type: ignore[attr-defined]
    assert swaps[0] > 5
    assert out.result == "installed", out.message
    assert version_of(unit.releases).endswith("0.2.0")
    site = next(unit.releases.venv("0.2.0").glob("lib/python*/site-packages"))
    # The signed build has its fonts (the swapped-in 0.3.0 has none, and would have rolled back).
    assert any((site / "bedside/display/fonts").glob("*.pil"))
    assert not any(site.glob("bedside-0.2.1*"))


def test_pip_installs_only_files_with_their_signed_hashes(wheel_folder: Path, tmp_path: Path) -> None:
    """The install step itself refuses a file that is not the one signed (--require-hashes),
    even if something got past the copy: a dependency changed in the staging folder."""
    staging = tmp_path / "staging"
    shutil.copytree(wheel_folder, staging)
    hashes = {p.name: update.sha256(p) for p in staging.glob("*.whl")}
    dep = next(p for p in staging.glob("*.whl") if p.name.startswith("gpiozero-"))
    with open(dep, "ab") as f:
        f.write(b"\0")                         # still a zip; not the file signed
    releases = Releases(tmp_path / "opt/bedside")
    with pytest.raises(ReleaseError, match="Expected sha256"):
        releases.install("0.1.0", staging, hashes=hashes)
    assert not releases.venv("0.1.0").exists()
    del hashes[dep.name]
    shutil.copy(wheel_folder / dep.name, dep)
    with pytest.raises(ReleaseError, match="does not sign"):
        releases.install("0.1.0", staging, hashes=hashes)


def _gpiod_wheel(out: Path) -> Path:
    """A wheel of a distribution called gpiod whose module does nothing. What is tested is that
    the updater carries the dependency into the new venv, to its signed hash; libgpiod itself is
    the VM's to prove (make vm-test, the update scenario)."""
    path = out / "gpiod-2.5.0-py3-none-any.whl"
    files = {"gpiod/__init__.py": b"",
             "gpiod-2.5.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gpiod\nVersion: 2.5.0\n",
             "gpiod-2.5.0.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        record = "".join(f"{n},,\n" for n in [*files, "gpiod-2.5.0.dist-info/RECORD"])
        z.writestr("gpiod-2.5.0.dist-info/RECORD", record)
    return path


def test_a_unit_reading_its_pins_through_gpiod_keeps_gpiod_across_an_update(wheel_folder: Path, tmp_path: Path) -> None:
    """tools/install.sh puts libgpiod 2's bindings beside the pi extra. A release that replaced
    that venv without them would poll the button (a Pi) or not start (a board named by
    gpio_chip, as the VM found): the new venv gets gpiod from the release's own signed wheel, a
    release without one is refused before any venv is made, and a unit without gpiod gets none."""
    staging = tmp_path / "staging"
    shutil.copytree(wheel_folder, staging)
    gpiod = _gpiod_wheel(staging)
    hashes = {p.name: update.sha256(p) for p in staging.glob("*.whl")}

    with_gpiod = Releases(tmp_path / "with/opt/bedside")
    in_use = with_gpiod.venv("0.0.9")
    (in_use / "lib/python3.11/site-packages/gpiod-2.5.0.dist-info").mkdir(parents=True)
    with_gpiod.link.symlink_to(in_use)
    assert holds_gpiod(with_gpiod.venv("0.1.0")) is False
    new = with_gpiod.install("0.1.0", staging, hashes=hashes)
    assert holds_gpiod(new)
    assert subprocess.run([str(new / "bin/python"), "-c", "import gpiod"], timeout=60).returncode == 0

    # The same unit, a release whose wheels hold no gpiod: refused, nothing made.
    shutil.rmtree(new.parent)
    without = {n: h for n, h in hashes.items() if n != gpiod.name}
    gpiod.unlink()
    with pytest.raises(ReleaseError, match="no gpiod wheel"):
        with_gpiod.install("0.1.0", staging, hashes=without)
    assert not with_gpiod.venv("0.1.0").parent.exists()

    # A unit without gpiod (the installer could not build it) is not given one.
    _gpiod_wheel(staging)
    plain = Releases(tmp_path / "plain/opt/bedside")
    (plain.venv("0.0.9")).mkdir(parents=True)
    plain.link.symlink_to(plain.venv("0.0.9"))
    assert not holds_gpiod(plain.install("0.1.0", staging, hashes=hashes))


def test_copying_checks_sizes_hashes_links_and_the_reserve(ward: Ward, tmp_path: Path) -> None:
    """The copy's rules on stand-in files, without installing."""
    import os

    folder = tmp_path / "u"
    folder.mkdir()
    (folder / "bedside-0.10.0-py3-none-any.whl").write_bytes(b"new")
    (folder / "dep-1.0-py3-none-any.whl").write_bytes(b"dep")
    update.write_manifest(folder, ward.release.sign(update.KIND, update.body_for(folder, 3, MADE)))
    raw = (folder / update.MANIFEST).read_bytes()
    ring = ward.ring()
    release = update.check_manifest(raw, ring, 2, NOW)
    assert (release.version, release.counter, release.total) == ("0.10.0", 3, 6)
    assert update.check_manifest(raw, ring, 2, NOW, current="0.9.3").version == "0.10.0"   # numbers, not text
    for current in ("0.10.0", "1.0"):
        with pytest.raises(update.UpdateRefused) as e:
            update.check_manifest(raw, ring, 2, NOW, current=current)
        assert e.value.reason == "downgrade"
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    dest = tmp_path / "staging"
    try:
        with pytest.raises(update.UpdateRefused) as e:
            update.copy_verified(fd, dest, release, raw, reserve=2**62)
        assert e.value.reason == "no_space" and not dest.exists()
        update.copy_verified(fd, dest, release, raw, reserve=0)
        assert sorted(p.name for p in dest.iterdir()) == sorted([*release.wheels, update.MANIFEST])
        assert oct(dest.stat().st_mode & 0o777) == "0o700"
        for change in ("bigger", "link", "same size, other bytes"):
            shutil.rmtree(dest, ignore_errors=True)
            dep = folder / "dep-1.0-py3-none-any.whl"
            dep.unlink()
            if change == "bigger":
                dep.write_bytes(b"dep and more")
            elif change == "link":
                (tmp_path / "elsewhere.whl").write_bytes(b"dep")
                dep.symlink_to(tmp_path / "elsewhere.whl")
            else:
                dep.write_bytes(b"DEP")
            with pytest.raises(update.UpdateRefused) as e:
                update.copy_verified(fd, dest, release, raw, reserve=0)
            assert e.value.reason == "damaged" and not dest.exists(), change
    finally:
        os.close(fd)
    with pytest.raises(ValueError, match="exactly one bedside wheel"):
        update.body_for(tmp_path, 1, MADE)


def test_the_press_on_the_unit_confirms_through_the_stick_channel(week: Path, tmp_path: Path) -> None:
    """The real loop and channel: the question on the display, a short press, "confirmed"; a
    refusal recorded by the daemon while it runs."""
    from bedside.core import screens as sc
    from tests.rigs.stick_daemon import Daemon

    data = unit_data(week, tmp_path)
    sock = tmp_path / "stick.sock"
    with Daemon(data, sock, "2026-12-01T11:30:00") as d:
        assert d.channel is not None
        answer: list[str] = []
        client = ChannelClient.connect(sock)
        assert client is not None
        asker: ChannelClient = client
        t = threading.Thread(target=lambda: answer.append(
            asker.confirm("Install update?", "Version 0.2.0", "from 0.1.0")))
        t.start()
        end = time.monotonic() + 20
        while not any(isinstance(s, sc.Confirm) for s in d.screens) and time.monotonic() < end:
            time.sleep(0.05)
        shown = next(s for s in d.screens if isinstance(s, sc.Confirm))
        assert (shown.title, shown.line1, shown.line2) == ("Install update?", "Version 0.2.0", "from 0.1.0")
        pin = d.sim.button_pin
        pin.drive_low()
        time.sleep(0.2)
        pin.drive_high()
        t.join(20)
        client.close()
        assert answer == ["confirmed"]
        client = ChannelClient.connect(sock)
        assert client is not None
        assert client.record("software_update_refused", {"current": "0.1.0", "version": "0.0.9",
                                                         "reason": "downgrade"})
        client.close()
    (refused,) = records(data, "software_update_refused")
    assert refused["reason"] == "downgrade"



@needs_fat
def test_the_export_copies_only_a_signed_update_for_the_updater(week: Path, tmp_path: Path, ward: Ward) -> None:
    """On a real FAT stick prepared by the ward authority: the export (no privileges) copies a
    release-signed Bedside/update into the data directory, the signed files only; an unsigned
    one is refused before anything is copied, and the export's record says so."""
    from tests.rigs.cli import run

    data = unit_data(week, tmp_path, None)
    keys_dir = str(ward.keys_dir)
    with FatStick(tmp_path / "stick") as s:
        s.mount()
        from bedside.stick import auth

        fd = os.open(s.mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            auth.prepare_signed(fd, ward.authority.sign(auth.STICK_KIND, auth.signed_body(MADE, "stick 1", "Ward 7")))
        finally:
            os.close(fd)
        bundle = s.mnt / "Bedside" / "update"
        bundle.mkdir()
        (bundle / "bedside-0.2.0-py3-none-any.whl").write_bytes(b"the new version")
        (bundle / "dep-1.0-py3-none-any.whl").write_bytes(b"a dependency")
        (bundle / "unlisted.txt").write_bytes(b"not in the manifest")
        (bundle / "manifest.json").write_text(json.dumps({"version": "0.2.0", "wheels": ["dep-1.0-py3-none-any.whl"]}))
        r = run("stick", "export", str(s.mnt), "--data", str(data), "--socket", str(tmp_path / "none.sock"),
                "--keys-dir", keys_dir, "--prefix", str(tmp_path / "opt"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "software update on the stick was refused and not copied" in r.stdout
        assert not (data / update.INCOMING).exists() and not (data / f".{update.INCOMING}.tmp").exists()
        assert records(data, "export")[-1]["update_refused"] == "unsigned"
        update.write_manifest(bundle, ward.release.sign(update.KIND, update.body_for(bundle, 1, MADE)))
        r = run("stick", "export", str(s.mnt), "--data", str(data), "--socket", str(tmp_path / "none.sock"),
                "--keys-dir", keys_dir, "--prefix", str(tmp_path / "opt"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Software update 0.2.0 copied from the stick" in r.stdout
        assert records(data, "export")[-1]["update"] == "0.2.0"
    staged = data / update.INCOMING
    assert sorted(p.name for p in staged.iterdir()) == [
        "bedside-0.2.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl", "manifest.json"]
    assert not (data / f".{update.INCOMING}.tmp").exists()


_STAGE_CHILD = """
import json, os, sys
from datetime import UTC, datetime
from pathlib import Path
from bedside.stick import update
from bedside.trust import keyring
root, data, keys_dir, reserve = sys.argv[1:5]
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
try:
    out = update.stage(fd, Path(data), keyring.load(Path(keys_dir)), 0, datetime.now(UTC), int(reserve))
except update.UpdateRefused as e:
    out = "refused " + e.reason
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"out": out, "peak_kib": hwm}))
"""


def test_a_huge_file_on_a_stick_is_never_held_in_memory_nor_copied_unsigned(ward: Ward, tmp_path: Path) -> None:
    """Defect 6 of issue 21: a 300 MiB "update" (unsigned, as a manifest, or signed at another
    size) is refused with nothing copied, and a signed 290 MiB one the card has no room for too;
    a signed 290 MiB one that fits is streamed. The export's staging step runs in a process
    of its own here, and reports its peak resident memory (VmHWM)."""
    import sys

    stick = tmp_path / "stick"
    folder = stick / "Bedside" / "update"
    data = tmp_path / "data"
    data.mkdir()
    big = 300 * 2**20

    def sparse(path: Path, size: int) -> None:
        with open(path, "wb") as f:
            f.truncate(size)

    def stage(reserve: int = 0) -> dict[str, Any]:
        r = subprocess.run([sys.executable, "-c", _STAGE_CHILD, str(stick), str(data), str(ward.keys_dir),
                            str(reserve)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        got: dict[str, Any] = json.loads(r.stdout)
        return got

    def reset() -> None:
        shutil.rmtree(stick, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "bedside-0.2.0-py3-none-any.whl").write_bytes(b"the new version")

    peaks = []
    reset()
    sparse(folder / "huge-1.0-py3-none-any.whl", big)
    (folder / "manifest.json").write_text(json.dumps({"version": "0.2.0", "wheels": {"huge-1.0-py3-none-any.whl": ""}}))
    got = stage()
    assert got["out"] == "refused unsigned"
    peaks.append(got["peak_kib"])
    reset()
    sparse(folder / "manifest.json", big)
    got = stage()
    assert got["out"] == "refused unsigned"
    peaks.append(got["peak_kib"])
    reset()
    (folder / "huge-1.0-py3-none-any.whl").write_bytes(b"small")
    update.write_manifest(folder, ward.release.sign(update.KIND, update.body_for(folder, 1, MADE)))
    sparse(folder / "huge-1.0-py3-none-any.whl", big)
    got = stage()
    assert got["out"] == "refused damaged"
    peaks.append(got["peak_kib"])
    assert not (data / update.INCOMING).exists() and not any(data.iterdir())
    reset()
    sparse(folder / "huge-1.0-py3-none-any.whl", 290 * 2**20)
    update.write_manifest(folder, ward.release.sign(update.KIND, update.body_for(folder, 1, MADE)))
    got = stage(reserve=2**50)
    assert got["out"] == "refused no_space" and not any(data.iterdir())
    got = stage()
    assert got["out"] == "0.2.0"
    peaks.append(got["peak_kib"])
    assert (data / update.INCOMING / "huge-1.0-py3-none-any.whl").stat().st_size == 290 * 2**20
    shutil.rmtree(data / update.INCOMING)
    # The old code held the file twice over (594 MiB for 290 MiB); a 1 MiB stream and the interpreter now.
    assert max(peaks) < 64 * 1024, peaks
    print(f"staging peaks (KiB): {peaks}")


def test_the_watchdog_period_is_read_as_systemctl_prints_it() -> None:
    from bedside.cli.update import _seconds

    assert _seconds("30s") == 30.0 and _seconds("1min 30s") == 90.0 and _seconds("500ms") == 0.5
    assert _seconds("infinity") == 0.0 and _seconds("") == 0.0


def test_the_updaters_outcome_goes_to_the_journal_at_its_priority(tmp_path: Path) -> None:
    """Under systemd the updater's standard output is journald's stream: a rollback and a
    failed install go out at err, a refused bundle at warning, so `journalctl -u
    bedside-update -p warning` shows each; an installed update at info. Elsewhere (a terminal,
    a pipe) the line is plain. (Before, every outcome was filed at info.)"""
    from bedside.cli.update import say

    out = tmp_path / "stdout"
    with out.open("w") as f:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        old = os.environ.get("JOURNAL_STREAM")
        os.environ.update(env)
        try:
            for result in ("rolled_back", "failed", "refused", "not_confirmed", "installed"):
                say(result, f"bedside update: {result}: two\nlines", f)
        finally:
            if old is None:
                del os.environ["JOURNAL_STREAM"]
            else:
                os.environ["JOURNAL_STREAM"] = old
    lines = out.read_text().splitlines()
    assert [line[:3] for line in lines] == ["<3>", "<3>", "<3>", "<3>", "<4>", "<4>", "<5>", "<5>", "<6>", "<6>"]
    plain = tmp_path / "plain"
    with plain.open("w") as f:
        say("rolled_back", "bedside update: rolled_back: x", f)
    assert plain.read_text() == "bedside update: rolled_back: x\n"


def test_the_request_for_a_press_reaches_the_log_while_the_updater_waits(tmp_path: Path) -> None:
    """The updater's "press the unit's button" line is in the journal while it waits for the
    press, not when it ends: under systemd standard output is a stream into journald, which
    Python buffers (found in the VM: the line came only after the minute's wait was over)."""
    import select
    import socket
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "stick.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    code = ("from pathlib import Path; from bedside.cli.update import press_to_confirm; "
            f"print(press_to_confirm(Path({str(path)!r}))('0.1.0', '0.2.0'), flush=True)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}     # as systemd runs it
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            stdin=subprocess.DEVNULL, env=env)
    try:
        server.settimeout(30)
        conn, _ = server.accept()
        with conn:
            conn.makefile("rb").readline()        # the question: the updater now waits for the answer
            assert proc.stdout is not None
            # A buffered line would come only when the updater ends, which it does not: it waits.
            assert select.select([proc.stdout], [], [], 60)[0], "no line while the updater waits for the press"
            seen = proc.stdout.readline()
            assert "press the unit's button to install version 0.2.0" in seen
            conn.sendall(json.dumps({"ok": True, "outcome": "confirmed"}).encode() + b"\n")
        assert proc.stdout.readline().strip() == "True"
    finally:
        proc.kill()
        proc.wait(10)
        server.close()


def test_the_release_is_signed_with_the_bedside_command(ward: Ward, tmp_path: Path, cheap_argon: None) -> None:
    """``bedside update bundle --key --counter`` where releases are built: a manifest the unit's
    check takes; without the key it refuses, and a transition bundle for units still on a ward
    secret is the old kind, which this version never takes."""
    from bedside.trust import keys as trust_keys
    from tests.rigs.cli import run

    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "bedside-0.4.0-py3-none-any.whl").write_bytes(b"new")
    (folder / "dep-1.0-py3-none-any.whl").write_bytes(b"dep")
    (tmp_path / "pass").write_text("the release passphrase\n")
    trust_keys.save(ward.release, tmp_path, "release", "the release passphrase")
    r = run("update", "bundle", str(folder), "--key", str(tmp_path / "release.key"), "--counter", "8",
            "--passphrase-file", str(tmp_path / "pass"))
    assert r.returncode == 0 and "counter 8" in r.stdout, r.stdout + r.stderr
    release = update.check_manifest((folder / update.MANIFEST).read_bytes(), ward.ring(), 7, NOW)
    assert (release.version, release.counter, release.signer) == ("0.4.0", 8, ward.release.id)
    assert run("update", "bundle", str(folder)).returncode == 2
    (tmp_path / "secret").write_text(SECRET + "\n")
    legacy = run("update", "bundle", str(folder), "--legacy-secret-file", str(tmp_path / "secret"))
    assert legacy.returncode == 0, legacy.stderr
    with pytest.raises(update.UpdateRefused) as e:
        update.check_manifest((folder / update.MANIFEST).read_bytes(), ward.ring(), 7, NOW)
    assert e.value.reason == "unsigned"
