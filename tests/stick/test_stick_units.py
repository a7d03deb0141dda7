"""The stick's udev rule and export service, checked with the real tools.

Bookworm's systemd 252 has no `udevadm verify` (it came in 254), so the rule is read by
`udevadm test`, which parses every rules file and reports each bad line, and then runs the
rules against a real block device: a loop device carrying a FAT file system. A loop device is
not a USB disk, so for that run the rule's `sd*` becomes `loop*` and one extra rule marks the
device as USB, as 60-persistent-storage.rules does for a real stick; everything else is the
shipped rule, unchanged."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.rigs.systemd_verify import verify_installed

RULE = ROOT / "systemd" / "80-bedside-stick.rules"
SERVICE = ROOT / "systemd" / "bedside-stick@.service"
RUN_RULES = Path("/run/udev/rules.d")

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is missing (Debian package systemd)")
needs_udev = pytest.mark.skipif(
    shutil.which("udevadm") is None or os.geteuid() != 0 or shutil.which("losetup") is None
    or not os.path.exists("/dev/loop-control") or not os.path.isdir("/sys/class/block"),
    reason="needs udevadm (Debian package udev), root and loop devices to run the rule")


@needs_analyze
def test_systemd_accepts_the_export_service_as_installed(tmp_path: Path) -> None:
    v = verify_installed(tmp_path, "bedside-stick@sda1.service", SERVICE, ROOT / "systemd" / "bedside.service")
    assert v.returncode == 0 and v.stdout.strip() == "" and v.stderr.strip() == "", v.stdout + v.stderr


@needs_analyze
def test_the_export_service_is_as_confined_as_the_daemon() -> None:
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SERVICE)],
                       capture_output=True, text=True, timeout=60)
    level = r.stdout.rsplit("Overall exposure level for", 1)[-1].split(":", 1)[1].split()[0]
    assert float(level) <= 2.0, r.stdout


def test_the_export_service_may_mount_and_nothing_more() -> None:
    settings: dict[str, list[str]] = {}
    for line in SERVICE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    assert settings["CapabilityBoundingSet"] == ["CAP_SYS_ADMIN"] == settings["AmbientCapabilities"]
    assert settings["User"] == ["bedside"] and settings["NoNewPrivileges"] == ["yes"]
    assert settings["BindsTo"] == ["dev-%i.device"]
    assert settings["DeviceAllow"] == ["block-sd rw"] and settings["DevicePolicy"] == ["closed"]
    assert settings["PrivateNetwork"] == ["yes"] and settings["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert "bedside stick service %I" in settings["ExecStart"][0]


def test_the_export_not_the_daemon_is_what_runs_out_of_memory() -> None:
    """A backstop (the export holds a record at a time): a memory limit of its own, and under the
    unit's memory pressure the kernel's OOM killer takes the export before the daemon."""
    settings = dict(line.split("=", 1) for line in SERVICE.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    daemon = dict(line.split("=", 1) for line in (ROOT / "systemd" / "bedside.service").read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    assert settings["MemoryMax"] == "192M" and settings["MemorySwapMax"] == "0"
    assert int(settings["OOMScoreAdjust"]) > int(daemon.get("OOMScoreAdjust", "0"))


@contextlib.contextmanager
def loop_device(tmp_path: Path, fs: bool = True) -> Iterator[str]:
    image = tmp_path / f"{uuid.uuid4().hex}.img"
    with open(image, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    if fs:
        subprocess.run(["mkfs.vfat", str(image)], check=True, capture_output=True)
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        yield Path(dev).name
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextlib.contextmanager
def rules(*files: tuple[str, str]) -> Iterator[None]:
    """Rules in /run/udev/rules.d (a tmpfs) for the length of a test; no udevd runs here to act on them."""
    RUN_RULES.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    paths = [RUN_RULES / name.replace(".rules", f"-{tag}.rules") for name, _ in files]
    try:
        for path, (_, text) in zip(paths, files, strict=True):
            path.write_text(text)
        yield
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def udev_test(device: str, action: str = "add") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["udevadm", "test", f"--action={action}", f"/sys/class/block/{device}"],
                          capture_output=True, text=True, timeout=60)


def properties(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line and line.split("=", 1)[0].isupper())


AS_USB = 'SUBSYSTEM=="block", KERNEL=="loop*", ENV{ID_BUS}="usb"\n'


def on_loop(rule: str) -> str:
    assert 'KERNEL!="sd*"' in rule
    return rule.replace('KERNEL!="sd*"', 'KERNEL!="loop*"')


@needs_udev
def test_udev_reads_the_rule_without_complaint(tmp_path: Path) -> None:
    with rules(("80-bedside-stick.rules", RULE.read_text()),
               ("81-bedside-broken.rules", 'ACTION=="add", NOSUCHKEY=="x"\n')), loop_device(tmp_path) as dev:
        r = udev_test(dev)
    complaints = [line for line in r.stderr.splitlines() + r.stdout.splitlines() if "bedside" in line
                  and "Reading rules file" not in line]
    # The broken rule proves that udevadm test does report a bad line here; ours has none.
    assert any("81-bedside-broken" in c for c in complaints), r.stderr
    assert not [c for c in complaints if "80-bedside-stick" in c], complaints


@needs_udev
def test_a_usb_stick_with_a_file_system_asks_for_the_export(tmp_path: Path) -> None:
    with rules(("79-as-usb.rules", AS_USB), ("80-bedside-stick.rules", on_loop(RULE.read_text()))), \
            loop_device(tmp_path) as dev:
        props = properties(udev_test(dev).stdout)
    assert props.get("SYSTEMD_WANTS") == f"bedside-stick@{dev}.service"
    assert "systemd" in props.get("TAGS", "").split(":")


@needs_udev
def test_no_export_for_other_disks_removals_or_a_stick_without_a_file_system(tmp_path: Path) -> None:
    with rules(("80-bedside-stick.rules", on_loop(RULE.read_text()))), loop_device(tmp_path) as dev:
        assert "SYSTEMD_WANTS" not in properties(udev_test(dev).stdout), "not on USB"
    with rules(("79-as-usb.rules", AS_USB), ("80-bedside-stick.rules", on_loop(RULE.read_text()))):
        with loop_device(tmp_path) as dev:
            assert "SYSTEMD_WANTS" not in properties(udev_test(dev, "remove").stdout)
        with loop_device(tmp_path, fs=False) as dev:
            assert "SYSTEMD_WANTS" not in properties(udev_test(dev).stdout)
    with rules(("79-as-usb.rules", AS_USB), ("80-bedside-stick.rules", RULE.read_text())), \
            loop_device(tmp_path) as dev:
        assert "SYSTEMD_WANTS" not in properties(udev_test(dev).stdout), "the shipped rule takes sd* only"
