"""Software updates from a stick (docs/install.md, "Software updates by stick"): real wheels
built offline, real venvs installed with ``--no-index`` beside each other, the link switched,
the new version's own self-test run through it, the records in a real journal.

The service is played by the test (stop and start are noted; "healthy" runs the self-test
of whatever the link points at), because systemd is not running here; the confirmation by a
press is proven separately on the real loop and stick channel."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bedside import secret
from bedside.stick import software, update
from bedside.stick.channel import ChannelClient
from bedside.unit.offline import OfflineWriter
from bedside.unit.releases import Releases
from tests.conftest import journal_records
from tests.rigs import wheelhouse
from tests.rigs.stick_rig import SECRET, FatStick, needs_fat, unit_data

KEY = secret.stick_key(SECRET)
OTHER = secret.stick_key("another ward's secret")
MADE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


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


def stick_folder(tmp_path: Path, wheel_folder: Path, bedside_wheel: Path, key: bytes = KEY) -> Path:
    """Bedside/update on a stick: the dependencies, one bedside wheel, the signed manifest."""
    folder = tmp_path / "stick" / "Bedside" / "update"
    folder.mkdir(parents=True)
    for w in wheel_folder.glob("*.whl"):
        if not w.name.startswith("bedside-"):
            shutil.copy(w, folder)
    shutil.copy(bedside_wheel, folder)
    update.make(folder, key, MADE)
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


@pytest.fixture
def unit(tmp_path: Path, wheel_folder: Path) -> Iterator[tuple[Releases, Service, Path]]:
    """A unit as tools/install.sh leaves it: 0.1.0 in its own venv, the link pointing at it."""
    releases = Releases(tmp_path / "opt/bedside")
    releases.install("0.1.0", wheel_folder)
    releases.switch("0.1.0")
    data = tmp_path / "data"
    data.mkdir()
    yield releases, Service(releases, data), data


def version_of(releases: Releases) -> str:
    r = subprocess.run([str(releases.link / "bin/bedside"), "--version"], capture_output=True, text=True, timeout=60)
    return r.stdout.strip()


def test_a_newer_build_installs_beside_switches_and_a_failing_one_rolls_back(
        unit: tuple[Releases, Service, Path], wheel_folder: Path, builds: dict[str, Path], tmp_path: Path) -> None:
    releases, service, data = unit
    asked: list[tuple[str, str]] = []

    def confirm(old: str, new: str) -> bool:
        asked.append((old, new))
        return True

    out = software.apply(stick_folder(tmp_path / "a", wheel_folder, builds["0.2.0"]), KEY, "0.1.0", releases,
                         service, record_offline(data), confirm)
    assert out.result == "installed", out.message
    assert asked == [("0.1.0", "0.2.0")]
    assert releases.current() == "0.2.0" and releases.installed() == ["0.1.0", "0.2.0"]
    assert version_of(releases).endswith("0.2.0")
    # Stopped, switched (recorded while stopped), started on the new version, proven.
    assert service.calls == ["stop", "start 0.2.0", "self-test 0"]
    assert [(r["old"], r["new"]) for r in records(data, "software_update")] == [("0.1.0", "0.2.0")]

    service.calls.clear()
    out = software.apply(stick_folder(tmp_path / "b", wheel_folder, builds["0.3.0"]), KEY, "0.2.0", releases,
                         service, record_offline(data), confirm)
    assert out.result == "rolled_back", out.message
    assert service.calls == ["stop", "start 0.3.0", "self-test 1", "stop", "start 0.2.0"]
    assert releases.current() == "0.2.0" and version_of(releases).endswith("0.2.0")
    # The failed version is gone; the one before the current is kept to switch back to.
    assert releases.installed() == ["0.1.0", "0.2.0"]
    (rollback,) = records(data, "software_rollback")
    assert rollback["from"] == "0.3.0" and rollback["to"] == "0.2.0" and "screens" in rollback["reason"]
    assert [r["type"] for r in records(data, "software_update", "software_rollback")] == [
        "software_update", "software_update", "software_rollback"]

    # A power cut between the switch and the proof: the note brings the proof back at the next
    # start. A version that proves itself stays; one that fails its watchdog is rolled back.
    assert releases.pending() is None and software.resume(releases, service, record_offline(data)) is None
    releases.set_pending("0.1.0", "0.2.0")
    service.calls.clear()
    resumed = software.resume(releases, service, record_offline(data))
    assert resumed is not None and resumed.result == "installed" and service.calls == ["self-test 0"]
    assert releases.pending() is None and releases.current() == "0.2.0"
    releases.set_pending("0.1.0", "0.2.0")
    service.calls.clear()
    service.watchdog_fails = True
    resumed = software.resume(releases, service, record_offline(data))
    assert resumed is not None and resumed.result == "rolled_back"
    assert service.calls == ["watchdog timeout", "stop", "start 0.1.0"]
    assert releases.pending() is None and releases.current() == "0.1.0" and releases.installed() == ["0.1.0"]
    assert records(data, "software_rollback")[-1]["reason"].startswith("systemd restarted it")


def test_a_downgrade_a_bad_signature_and_no_press_change_nothing(
        unit: tuple[Releases, Service, Path], wheel_folder: Path, builds: dict[str, Path], tmp_path: Path) -> None:
    releases, service, data = unit
    newer = stick_folder(tmp_path / "new", wheel_folder, builds["0.2.0"])
    cases: list[tuple[str, Path, bytes, str]] = [
        ("downgrade", stick_folder(tmp_path / "old", wheel_folder, wheel_folder / "bedside-0.1.0-py3-none-any.whl"),
         KEY, "0.1.0"),
        ("other_ward", stick_folder(tmp_path / "other", wheel_folder, builds["0.2.0"], OTHER), KEY, "0.2.0"),
    ]
    # The manifest changed after signing (the version raised by hand), and a wheel swapped for another.
    forged = stick_folder(tmp_path / "forged", wheel_folder, builds["0.2.0"])
    body = json.loads((forged / "manifest.json").read_text())
    body["made"] = "2027-01-01T00:00:00+00:00"
    (forged / "manifest.json").write_text(json.dumps(body))
    cases.append(("bad_signature", forged, KEY, "0.2.0"))
    swapped = stick_folder(tmp_path / "swapped", wheel_folder, builds["0.2.0"])
    shutil.copy(builds["0.3.0"], swapped / builds["0.2.0"].name)
    cases.append(("damaged", swapped, KEY, "0.2.0"))
    for reason, folder, key, claimed in cases:
        out = software.apply(folder, key, "0.1.0", releases, service, record_offline(data), lambda o, n: True)
        assert out.result == "refused", (reason, out.message)
        last = records(data, "software_update_refused")[-1]
        assert (last["reason"], last["version"], last["current"]) == (reason, claimed, "0.1.0")
    out = software.apply(newer, KEY, "0.1.0", releases, service, record_offline(data), lambda o, n: False)
    assert out.result == "not_confirmed"
    # Nothing ran, stopped or was installed.
    assert service.calls == [] and releases.current() == "0.1.0" and releases.installed() == ["0.1.0"]
    assert records(data, "software_update", "software_rollback") == []
    assert len(records(data, "software_update_refused")) == 4


def test_bundle_checks_without_installing(tmp_path: Path) -> None:
    """The manifest's rules on stand-in files: versions compare as numbers, not text."""
    folder = tmp_path / "u"
    folder.mkdir()
    (folder / "bedside-0.10.0-py3-none-any.whl").write_bytes(b"new")
    (folder / "dep-1.0-py3-none-any.whl").write_bytes(b"dep")
    update.make(folder, KEY, MADE)
    assert update.check(folder, KEY, "0.9.3").version == "0.10.0"
    for current, reason in (("0.10.0", "downgrade"), ("1.0", "downgrade")):
        with pytest.raises(update.UpdateRefused) as e:
            update.check(folder, KEY, current)
        assert e.value.reason == reason
    (folder / "dep-1.0-py3-none-any.whl").unlink()
    with pytest.raises(update.UpdateRefused, match="missing or not the file that was signed"):
        update.check(folder, KEY, "0.9.3")
    (folder / "manifest.json").write_text("{")
    with pytest.raises(update.UpdateRefused) as e:
        update.check(folder, KEY, "0.9.3")
    assert e.value.reason == "malformed"
    with pytest.raises(ValueError, match="exactly one bedside wheel"):
        update.make(tmp_path, KEY, MADE)


def test_the_press_on_the_unit_confirms_through_the_stick_channel(week: Path, tmp_path: Path) -> None:
    """The real loop and channel: the question on the display, a short press, "confirmed"; a
    refusal recorded by the daemon while it runs."""
    from bedside.core import screens as sc
    from tests.stick.test_stick_channel import Daemon

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
def test_the_export_copies_a_sticks_update_for_the_updater(week: Path, tmp_path: Path) -> None:
    """On a real FAT stick: the export (no privileges) copies Bedside/update into the data
    directory whole, for bedside-update.path to find; the stick's export is unaffected."""
    from tests.cli.test_cli import run

    data = unit_data(week, tmp_path)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    with FatStick(tmp_path / "stick") as s:
        s.mount()
        assert run("stick", "prepare", str(s.mnt), "--secret-file", str(secret_file)).returncode == 0
        bundle = s.mnt / "Bedside" / "update"
        bundle.mkdir()
        (bundle / "bedside-0.2.0-py3-none-any.whl").write_bytes(b"the new version")
        (bundle / "dep-1.0-py3-none-any.whl").write_bytes(b"a dependency")
        (bundle / "unlisted.txt").write_bytes(b"not in the manifest")
        made = run("update", "bundle", str(bundle), "--secret-file", str(secret_file))
        assert made.returncode == 0 and "Signed 2 wheels as update 0.2.0" in made.stdout, made.stdout + made.stderr
        r = run("stick", "export", str(s.mnt), "--data", str(data), "--socket", str(tmp_path / "none.sock"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Software update 0.2.0 copied from the stick" in r.stdout
    staged = data / update.INCOMING
    assert sorted(p.name for p in staged.iterdir()) == [
        "bedside-0.2.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl", "manifest.json"]
    assert update.check(staged, KEY, "0.1.0").version == "0.2.0"
    assert not (data / f".{update.INCOMING}.tmp").exists()


def test_the_watchdog_period_is_read_as_systemctl_prints_it() -> None:
    from bedside.cli.update import _seconds

    assert _seconds("30s") == 30.0 and _seconds("1min 30s") == 90.0 and _seconds("500ms") == 0.5
    assert _seconds("infinity") == 0.0 and _seconds("") == 0.0
