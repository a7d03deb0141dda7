"""The systemd unit and the installer, checked with the real tools: systemd-analyze (security
exposure and verify), tools/install.sh into a throw-away root, shellcheck on the scripts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SERVICE = ROOT / "systemd" / "bedside.service"
INSTALL = ROOT / "tools" / "install.sh"
MAX_EXPOSURE = 2.0

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is missing (Debian package systemd)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="useradd --root and chown into a test root need root (CI is)")


@needs_analyze
def test_service_exposure_is_at_most_2() -> None:
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SERVICE)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for bedside\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout


def test_service_keeps_what_the_daemon_needs() -> None:
    """Hardening must not take away the parts: catch an edit that would brick every unit."""
    text = SERVICE.read_text()
    settings = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")]
    multi: dict[str, list[str]] = {}
    for k, v in settings:
        multi.setdefault(k, []).append(v)
    one = {k: v[-1] for k, v in multi.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main" and "WatchdogSec" in one
    assert one["Restart"] == "on-failure" and "StartLimitBurst" in one
    assert one["User"] == "bedside" and set(one["SupplementaryGroups"].split()) == {"gpio", "i2c", "dialout"}
    allowed = {v.split()[0] for v in multi["DeviceAllow"]}
    assert {"char-gpiochip", "char-i2c", "char-ttyGS", "char-ttyAMA"} <= allowed
    assert one["DevicePolicy"] == "closed"
    # lgpio's notification FIFO goes in a writable tmpfs directory.
    assert "LG_WD=/run/bedside" in multi["Environment"] and one["RuntimeDirectory"] == "bedside"
    assert one["WorkingDirectory"] == "/run/bedside"
    assert one["StateDirectory"] == "bedside"
    assert one["PrivateNetwork"] == "yes" and one["RestrictAddressFamilies"] == "AF_UNIX"
    # PrivateDevices would hide /dev/gpiochip*; ProcSubset=pid would hide the boot id.
    assert "PrivateDevices" not in one and "ProcSubset" not in one
    assert "/opt/bedside/venv/bin/bedside run" in one["ExecStart"]


def _fake_root(tmp_path: Path) -> Path:
    """The files a Raspberry Pi OS root has that the installer reads or edits."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ndialout:*::\n")
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    (root / "boot" / "firmware" / "config.txt").write_text("dtparam=audio=on\n")
    (root / "boot" / "firmware" / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n")
    return root


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INSTALL), "--root", str(root), *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@needs_root
def test_install_into_a_root(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    r = install(root, "--rtc", "--gadget-serial", "--apply-boot-config")
    assert r.returncode == 0, r.stdout + r.stderr

    # A system user with no shell and only the three groups it needs.
    user = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("bedside:"))
    _name, _, uid, gid, _, home, shell = user.split(":")
    assert int(uid) < 1000 and home == "/var/lib/bedside" and shell == "/usr/sbin/nologin"
    member_of = {g.split(":")[0] for g in (root / "etc/group").read_text().splitlines()
                 if "bedside" in g.split(":")[3].split(",")}
    assert member_of == {"gpio", "i2c", "dialout"}

    conf = root / "etc/bedside/bedside.toml"
    assert conf.read_text() == (ROOT / "config/bedside.toml").read_text()
    assert conf.stat().st_mode & 0o777 == 0o640 and conf.stat().st_gid == int(gid)
    data = root / "var/lib/bedside"
    assert data.stat().st_uid == int(uid) and data.stat().st_mode & 0o777 == 0o750
    assert (root / "var/lib").stat().st_uid == 0

    units = root / "etc/systemd/system"
    assert (units / "bedside.service").read_text() == SERVICE.read_text()
    assert (units / "multi-user.target.wants/bedside.service").is_symlink()
    # Lockdown: no logins on consoles or serial ports, no network daemons, no HID.
    for masked in ("getty@.service", "serial-getty@.service", "ssh.service", "avahi-daemon.service",
                   "fake-hwclock.service"):
        assert os.readlink(units / masked) == "/dev/null", masked
    assert (root / "etc/udev/rules.d/90-bedside-no-hid.rules").exists()

    config_txt = (root / "boot/firmware/config.txt").read_text()
    for line in ("dtparam=i2c_arm=on", "dtparam=i2c_arm_baudrate=400000", "dtoverlay=i2c-rtc,ds3231",
                 "dtoverlay=dwc2,dr_mode=peripheral", "dtoverlay=disable-wifi", "dtoverlay=disable-bt"):
        assert line in config_txt.splitlines(), line
    cmdline = (root / "boot/firmware/cmdline.txt").read_text()
    assert "console=serial0" not in cmdline and cmdline.count("\n") == 1
    assert "modules-load=dwc2,g_serial" in cmdline and "root=PARTUUID=1234-02" in cmdline
    assert (root / "boot/firmware/config.txt.bedside-orig").read_text() == "dtparam=audio=on\n"

    # Again: idempotent. One user, one block, the operator's config edits kept.
    conf.write_text(conf.read_text().replace('id = "ward7-bed12"', 'id = "ward3-bed4"'))
    r2 = install(root, "--rtc", "--gadget-serial", "--apply-boot-config")
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert [line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()] == ["root", "bedside"]
    config_txt2 = (root / "boot/firmware/config.txt").read_text()
    assert config_txt2 == config_txt and config_txt2.count("# bedside: begin") == 1
    assert (root / "boot/firmware/cmdline.txt").read_text() == cmdline
    assert 'id = "ward3-bed4"' in conf.read_text()
    assert (root / "etc/bedside/bedside.toml.dist").exists()


@needs_analyze
def test_systemd_accepts_the_unit_as_installed(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit where the installer puts it. verify checks that
    ExecStart exists; the venv is not made here, so a stand-in executable takes its place."""
    v = verify_installed(tmp_path, "bedside.service", SERVICE)
    # Any warning (an unknown key, a bad value) is printed: the unit must produce none.
    assert v.returncode == 0 and v.stderr.strip() == "" and v.stdout.strip() == "", v.stdout + v.stderr


def verify_installed(tmp_path: Path, name: str, *units: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify NAME` with ``units`` where the installer puts them, and a
    stand-in for the venv's executable (verify checks that ExecStart exists)."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    exe = root / "opt/bedside/venv/bin/bedside"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", name], capture_output=True, text=True,
                          timeout=60)


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    r = install(root, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert "+ useradd" in r.stdout and "+ systemctl" in r.stdout
    # Without --apply-boot-config the lines to add are printed.
    assert "dtparam=i2c_arm_baudrate=400000" in r.stdout and "console=serial0" in r.stdout


def test_install_refuses_unknown_options_plainly() -> None:
    r = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown option --frobnicate" in r.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is missing (Debian package shellcheck)")
def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in (ROOT / "tools").glob("*.sh"))
    assert scripts
    r = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout


def test_lockdown_masks_every_login_and_network_service() -> None:
    listed = {line.split("#")[0].strip() for line in (ROOT / "systemd/lockdown/masked-units.list").read_text()
              .splitlines()} - {""}
    assert {"getty@.service", "serial-getty@.service", "autovt@.service", "console-getty.service"} <= listed
    assert {"ssh.service", "ssh.socket", "avahi-daemon.service", "avahi-daemon.socket", "bluetooth.service"} <= listed
    rule = (ROOT / "systemd/lockdown/90-bedside-no-hid.rules").read_text()
    assert 'ATTR{bInterfaceClass}=="03", ATTR{authorized}="0"' in rule


def test_rtc_time_struct_matches_the_kernel_layout() -> None:
    import struct
    from datetime import UTC, datetime

    from bedside.unit import clock

    assert clock.RTC_SET_TIME == 0x4024700A  # _IOW('p', 0x0a, struct rtc_time) on Linux
    t = datetime(2026, 11, 24, 9, 41, 7, tzinfo=UTC)   # a Tuesday, day 328 of the year
    assert struct.unpack("9i", clock.rtc_time(t)) == (7, 41, 9, 24, 10, 126, 2, 327, 0)
    assert clock.write_rtc(t, device=Path("/nonexistent/rtc")) is False


def test_the_daemon_may_set_the_clock_and_nothing_else_privileged() -> None:
    text = SERVICE.read_text()
    assert "CapabilityBoundingSet=CAP_SYS_TIME\n" in text
    assert "AmbientCapabilities=CAP_SYS_TIME\n" in text
    assert "ProtectClock=yes" not in text and "@clock" not in text
    assert "DeviceAllow=char-rtc rw" in text
    rule = (SERVICE.parent / "91-bedside-rtc.rules").read_text()
    assert 'SUBSYSTEM=="rtc"' in rule and 'GROUP="bedside"' in rule
