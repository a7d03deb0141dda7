"""The systemd unit and the installer, checked with the real tools: systemd-analyze (security
exposure and verify), tools/install.sh into a throw-away root, shellcheck on the scripts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from bedside.unit import host
from tests.conftest import ROOT
from tests.rigs.systemd_verify import verify_installed

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


PI_OS_MODULES = "# /etc/modules: kernel modules to load at boot time.\n#\n# Lines beginning with \"#\" are ignored.\n"
PI_OS_CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes "
                 "rootwait modules-load=w1-gpio\n")
PI_OS_CONFIG = "dtparam=audio=on\n[cm4]\notg_mode=1\n[all]\n"


def _fake_root(tmp_path: Path) -> Path:
    """The files a Raspberry Pi OS root has that the installer reads or edits."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "var" / "lib").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ndialout:*::\n")
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    (root / "etc" / "modules").write_text(PI_OS_MODULES)
    (root / "boot" / "firmware" / "config.txt").write_text(PI_OS_CONFIG)
    (root / "boot" / "firmware" / "cmdline.txt").write_text(PI_OS_CMDLINE)
    return root


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INSTALL), "--root", str(root), *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class Profile:
    args: tuple[str, ...]
    config_lines: tuple[str, ...]      # in config.txt's bedside block
    not_lines: tuple[str, ...]         # never there for this board
    port: str                          # [serial] port after the install
    gpio: str                          # [hardware] gpio after the install
    modules_load: str | None = None    # the cmdline.txt entry the install adds
    gpiomem: bool = False              # the service may open /dev/gpiomem (RPi.GPIO)


COMMON = ("dtparam=i2c_arm=on", "dtparam=i2c_arm_baudrate=400000", "dtoverlay=disable-wifi", "dtoverlay=disable-bt",
          "dtoverlay=gpio-led,gpio=27,label=bedside-status")
PROFILES = {
    "zero2w-gadget": Profile(("--board", "zero2w", "--gadget-serial", "--rtc"),
                             ("dtoverlay=dwc2,dr_mode=peripheral", "dtoverlay=i2c-rtc,ds3231"),
                             ("enable_uart=1", "dtparam=uart0=on"), "/dev/ttyGS0", "auto",
                             "modules-load=dwc2,g_serial"),
    "zero2w-uart": Profile(("--board", "zero2w"), ("enable_uart=1",),
                           ("dtoverlay=dwc2,dr_mode=peripheral", "dtoverlay=i2c-rtc,ds3231"), "/dev/serial0", "auto"),
    "3-rpigpio": Profile(("--board", "3", "--rtc", "--gpio", "rpigpio"), ("enable_uart=1", "dtoverlay=i2c-rtc,ds3231"),
                         ("dtparam=uart0=on",), "/dev/serial0", "rpigpio", gpiomem=True),
    "4": Profile(("--board", "4", "--rtc"), ("enable_uart=1", "dtoverlay=i2c-rtc,ds3231"),
                 ("dtoverlay=dwc2,dr_mode=peripheral",), "/dev/serial0", "auto"),
    "5": Profile(("--board", "5", "--rtc", "--charge-rtc-battery", "--gpio", "lgpio"),
                 ("dtparam=uart0=on", "dtparam=rtc_bbat_vchg=3000000"),
                 ("enable_uart=1", "dtoverlay=i2c-rtc,ds3231"), "/dev/ttyAMA0", "lgpio"),
}


def _block(config_txt: str) -> list[str]:
    lines = config_txt.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# bedside: begin"))
    return [line for line in lines[start:] if line and not line.startswith("#")]


@needs_root
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_install_each_board_twice_then_uninstall(tmp_path: Path, name: str) -> None:
    p = PROFILES[name]
    root = _fake_root(tmp_path)
    args = (*p.args, "--apply-boot-config")
    r = install(root, *args)
    assert r.returncode == 0, r.stdout + r.stderr

    # A system user with no shell and only the three groups it needs.
    user = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("bedside:"))
    _name, _, uid, gid, _, home, shell = user.split(":")
    assert int(uid) < 1000 and home == "/var/lib/bedside" and shell == "/usr/sbin/nologin"
    member_of = {g.split(":")[0] for g in (root / "etc/group").read_text().splitlines()
                 if "bedside" in g.split(":")[3].split(",")}
    assert member_of == {"gpio", "i2c", "dialout"}

    # The unit's config: shipped defaults with the link and backend the install set up turned on.
    conf = root / "etc/bedside/bedside.toml"
    cfg = host.load(conf)
    assert cfg.serial.port == p.port and cfg.hardware.gpio == p.gpio
    shipped = (ROOT / "config/bedside.toml").read_text().splitlines()
    changed = [line for line in conf.read_text().splitlines() if line not in shipped]
    assert {line.split("#")[0].strip() for line in changed} == {f'port = "{p.port}"'} | \
        ({f'gpio = "{p.gpio}"'} if p.gpio != "auto" else set())
    assert conf.stat().st_mode & 0o777 == 0o640 and conf.stat().st_gid == int(gid)
    data = root / "var/lib/bedside"
    assert data.stat().st_uid == int(uid) and data.stat().st_mode & 0o777 == 0o750
    assert (root / "var/lib").stat().st_uid == 0

    # The service, and the one device RPi.GPIO needs beyond it.
    units = root / "etc/systemd/system"
    assert (units / "bedside.service").read_text() == SERVICE.read_text()
    assert (units / "multi-user.target.wants/bedside.service").is_symlink()
    assert (units / "paths.target.wants/bedside-update.path").is_symlink()
    assert (units / "bedside-update.service").read_text() == (ROOT / "systemd/bedside-update.service").read_text()
    dropin = units / "bedside.service.d/gpio.conf"
    assert dropin.exists() == p.gpiomem
    if p.gpiomem:
        assert "DeviceAllow=/dev/gpiomem rw" in dropin.read_text().splitlines()
    # Lockdown: no logins on consoles or serial ports, no network daemons, no HID.
    masked = ["getty@.service", "serial-getty@.service", "ssh.service", "avahi-daemon.service"]
    for unit in (*masked, "fake-hwclock.service") if "--rtc" in p.args else masked:
        assert os.readlink(units / unit) == "/dev/null", unit
    assert (root / "etc/udev/rules.d/90-bedside-no-hid.rules").exists()
    # The status LED as the kernel's LED device, which the daemon's group may set.
    assert 'KERNEL=="bedside-status"' in (root / "etc/udev/rules.d/92-bedside-led.rules").read_text()

    config_txt = (root / "boot/firmware/config.txt").read_text()
    assert config_txt.startswith(PI_OS_CONFIG)
    block = _block(config_txt)
    assert block[0] == "[all]" and set(COMMON + p.config_lines) == set(block[1:]), block
    assert not set(p.not_lines) & set(block)
    cmdline = (root / "boot/firmware/cmdline.txt").read_text()
    tokens = cmdline.split()
    assert cmdline.count("\n") == 1 and "console=serial0,115200" not in tokens
    # The system's own modules-load= entry stays; ours is added only for the gadget.
    assert "modules-load=w1-gpio" in tokens and "root=PARTUUID=1234-02" in tokens and "console=tty1" in tokens
    assert [t for t in tokens if t.startswith("modules-load=") and t != "modules-load=w1-gpio"] == \
        ([p.modules_load] if p.modules_load else [])
    assert (root / "etc/modules").read_text() == PI_OS_MODULES + "i2c-dev\n"
    assert (root / "boot/firmware/config.txt.bedside-orig").read_text() == PI_OS_CONFIG

    # Again: idempotent. One user, one block, one i2c-dev, the operator's config edits kept.
    conf.write_text(conf.read_text().replace('id = "ward7-bed12"', 'id = "ward3-bed4"'))
    before = {f: (root / f).read_text() for f in ("boot/firmware/config.txt", "boot/firmware/cmdline.txt",
                                                 "etc/modules", "etc/bedside/bedside.toml")}
    r2 = install(root, *args)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert [line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()] == ["root", "bedside"]
    assert {f: (root / f).read_text() for f in before} == before
    assert 'id = "ward3-bed4"' in conf.read_text()
    assert (root / "etc/bedside/bedside.toml.dist").exists()

    # Uninstall: the shared files as they were, the record of care and the config kept.
    r3 = install(root, "--uninstall")
    assert r3.returncode == 0, r3.stdout + r3.stderr
    assert (root / "boot/firmware/config.txt").read_text() == PI_OS_CONFIG
    assert (root / "boot/firmware/cmdline.txt").read_text() == PI_OS_CMDLINE
    assert (root / "etc/modules").read_text() == PI_OS_MODULES
    assert sorted(p.name for p in (root / "boot/firmware").iterdir()) == ["cmdline.txt", "config.txt"]
    assert not (units / "bedside.service").exists() and not (units / "bedside.service.d").exists()
    assert not (units / "multi-user.target.wants/bedside.service").exists()
    assert not any((units / n).exists() for n in ("bedside-update.service", "bedside-update.path",
                                                  "paths.target.wants/bedside-update.path"))
    assert not any(os.path.islink(units / u) for u in (*masked, "fake-hwclock.service"))
    assert not (root / "etc/udev/rules.d/90-bedside-no-hid.rules").exists()
    assert not (root / "opt/bedside").exists() and data.is_dir() and conf.exists()
    assert "record of care" in r3.stdout


@needs_root
def test_uninstall_leaves_what_was_there_before(tmp_path: Path) -> None:
    """An i2c-dev line raspi-config wrote and a unit masked by hand are not the install's to remove."""
    root = _fake_root(tmp_path)
    (root / "etc/modules").write_text(PI_OS_MODULES + "i2c-dev\n")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "ssh.service").symlink_to("/dev/null")
    assert install(root, "--board", "4", "--apply-boot-config").returncode == 0
    assert (root / "etc/modules").read_text() == PI_OS_MODULES + "i2c-dev\n"
    r = install(root, "--uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "etc/modules").read_text() == PI_OS_MODULES + "i2c-dev\n"
    assert os.readlink(units / "ssh.service") == "/dev/null"
    assert not (units / "getty@.service").exists()


def _stand_ins(tmp_path: Path, root: Path, restart_rc: int) -> tuple[dict[str, str], Path]:
    """systemctl and udevadm stand-ins on PATH that log each call, and with it whether the boot
    configuration and /etc/modules were already written; ``systemctl restart`` exits ``restart_rc``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    for name, rc in (("systemctl", restart_rc), ("udevadm", 0)):
        (bin_dir / name).write_text(f"""#!/bin/sh
done=no
grep -q '^# bedside: begin' '{root}/boot/firmware/config.txt' && grep -q '^i2c-dev' '{root}/etc/modules' && done=yes
echo "{name} $* configured=$done" >> '{log}'
k=no; [ -e '{root}/etc/bedside/keys/keyring.json' ] && k=yes
echo "{name} $* keys=$k" >> '{log}.keys'
case "$*" in *restart*) exit {rc} ;; esac
exit 0
""")
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", BEDSIDE_INSTALL_LIVE="1")
    return env, log


@needs_root
@pytest.mark.parametrize("restart_rc", [0, 1])
def test_the_service_starts_last_and_a_failed_start_leaves_a_complete_explained_install(
        tmp_path: Path, restart_rc: int) -> None:
    """Everything is configured (boot settings, /etc/modules, the units) before systemd is
    reloaded and the service started; a start that fails stops nothing that came before it,
    and the installer says so, where the reason is, and exits 3."""
    root = _fake_root(tmp_path)
    env, log = _stand_ins(tmp_path, root, restart_rc)
    r = subprocess.run(["bash", str(INSTALL), "--root", str(root), "--board", "4", "--apply-boot-config"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    calls = log.read_text().splitlines()
    restart = [c for c in calls if " restart bedside.service" in c]
    assert restart == ["systemctl restart bedside.service configured=yes"], calls
    # The start is the last thing done to the system: after every enable, mask and reload.
    assert calls[-1] == restart[0] and any("daemon-reload configured=yes" in c for c in calls), calls
    # The update path watches from now, not from the next boot (found in the VM: a stick's
    # update was copied and then waited for a reboot).
    assert "systemctl start bedside-update.path configured=yes" in calls, calls
    assert _block((root / "boot/firmware/config.txt").read_text())[0] == "[all]"
    assert (root / "etc/modules").read_text() == PI_OS_MODULES + "i2c-dev\n"
    assert (root / "etc/bedside/bedside.toml").exists()
    if restart_rc == 0:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "did not start" not in r.stdout
    else:
        assert r.returncode == 3, r.stdout + r.stderr
        assert "The install is complete" in r.stdout and "journalctl -u bedside -b -p warning" in r.stdout
        # The rest of the guidance is still printed after the failed start.
        assert "commissioning checklist" in r.stdout


@needs_root
def test_pinning_keys_on_a_running_unit_stops_it_first(tmp_path: Path) -> None:
    """An upgrade install with --ward-key/--release-key on a running unit: the pin is journaled
    and the daemon holds the journal, so the service is stopped before the pin and started
    last (found in the VM: the pin refused to write beside the running daemon and the
    install stopped there, exit 1)."""
    from bedside.trust import keyring, keys

    # The unit's user walks to its data directory (not so under pytest's folder, mode 700).
    card = Path(tempfile.mkdtemp(prefix="bedside-card-"))
    card.chmod(0o755)
    try:
        _pin_on_a_running_unit(card, tmp_path, keyring, keys)
    finally:
        shutil.rmtree(card, ignore_errors=True)


def _pin_on_a_running_unit(card: Path, tmp_path: Path, keyring: types.ModuleType, keys: types.ModuleType) -> None:
    root = _fake_root(card)
    env, log = _stand_ins(tmp_path, root, 0)
    pubs = tmp_path / "pubs"
    pubs.mkdir()
    for role in ("ward", "release"):
        k = keys.generate(role, f"the {role} key")
        (pubs / f"{role}.pub").write_text(json.dumps(keyring.public_key_file(role, k.name, k.public)))
    r = subprocess.run(["bash", str(INSTALL), "--root", str(root), "--board", "4", "--ward-key", str(pubs / "ward.pub"),
                        "--release-key", str(pubs / "release.pub"), "--ward-name", "Ward 7"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = Path(f"{log}.keys").read_text().splitlines()
    assert "systemctl stop bedside.service keys=no" in calls, calls
    assert calls[-1] == "systemctl restart bedside.service keys=yes", calls


@needs_root
def test_another_board_is_installed_with_its_name_and_chip(tmp_path: Path) -> None:
    """--board NAME --gpio-chip CHIP: a board that is not a Pi, named in the config with its chip;
    installing again as a Pi clears them."""
    root = _fake_root(tmp_path)
    r = install(root, "--board", "qemu-x86_64", "--gpio-chip", "pinctrl-bcm2711")
    assert r.returncode == 0, r.stdout + r.stderr
    conf = root / "etc/bedside/bedside.toml"
    cfg = host.load(conf)
    assert (cfg.hardware.board, cfg.hardware.gpio_chip) == ("qemu-x86_64", "pinctrl-bcm2711")
    assert cfg.serial.port == "/dev/serial0"
    # Its /dev/gpiochip* for the gpio group, as Raspberry Pi OS's own rules have them on a Pi.
    rule = root / "etc/udev/rules.d/92-bedside-gpio.rules"
    assert 'GROUP="gpio"' in rule.read_text()
    assert install(root, "--board", "4").returncode == 0
    assert not rule.exists()
    cfg = host.load(conf)
    assert (cfg.hardware.board, cfg.hardware.gpio_chip) == ("", "")


@pytest.mark.parametrize(("args", "message"), [
    (("--board", "4", "--gadget-serial"), "--link gadget (--gadget-serial) is for a Zero 2 W"),
    (("--board", "5", "--gpio", "rpigpio"), "RPi.GPIO cannot drive a Pi 5's pins"),
    (("--board", "6"), "--board 6: choose zero2w, 3, 4 or 5"),
    (("--board", "4", "--gpio-chip", "gpiochip0"), "--gpio-chip is for another board"),
    (("--board", "my;board", "--gpio-chip", "x"), "another board's name is"),
    ((), "cannot tell the board"),
    (("--board", "3", "--charge-rtc-battery"), "--charge-rtc-battery is for a Pi 5"),
])
def test_install_refuses_what_a_board_cannot_do(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    r = install(_fake_root(tmp_path), "--dry-run", *args)
    assert r.returncode == 2 and message in r.stderr, r.stdout + r.stderr


def test_the_model_names_the_board(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    model = root / "sys/firmware/devicetree/base/model"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    r = install(root, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "board: 5; nurse link: uart (/dev/ttyAMA0); GPIO backend: lgpio" in r.stdout
    assert "dtparam=uart0=on" in r.stdout


@needs_analyze
def test_systemd_accepts_the_unit_as_installed(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit where the installer puts it. verify checks that
    ExecStart exists; the venv is not made here, so a stand-in executable takes its place."""
    v = verify_installed(tmp_path, "bedside.service", SERVICE)
    # Any warning (an unknown key, a bad value) is printed: the unit must produce none.
    assert v.returncode == 0 and v.stderr.strip() == "" and v.stdout.strip() == "", v.stdout + v.stderr


@needs_analyze
def test_systemd_accepts_the_updater_as_installed(tmp_path: Path) -> None:
    """The path unit and the root updater it starts, as installed, with no warning."""
    v = verify_installed(tmp_path, "bedside-update.path", ROOT / "systemd/bedside-update.path",
                         ROOT / "systemd/bedside-update.service", SERVICE)
    assert v.returncode == 0 and v.stderr.strip() == "" and v.stdout.strip() == "", v.stdout + v.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    r = install(root, "--dry-run", "--board", "zero2w")
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
    scripts = [*sorted(str(p) for p in (ROOT / "tools").glob("*.sh")), str(ROOT / "tools/vm/gpio-sim-setup")]
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


@needs_root
def test_install_pins_the_wards_keys_into_a_card_and_removes_its_secret(tmp_path: Path) -> None:
    """Migration with the card in a reader (docs/install.md): --root with the ward's public keys
    pins them root's and read-only to the daemon, removes the unit's ward secret, and records it
    in the unit's journal as the unit's own user."""

    # As a card in a reader is: every folder above its data directory can be walked through (not
    # so under pytest's own temporary folder, which other test runs keep at mode 700).
    card = Path(tempfile.mkdtemp(prefix="bedside-card-"))
    card.chmod(0o755)
    try:
        _pin_into_card(card, tmp_path)
    finally:
        shutil.rmtree(card, ignore_errors=True)


def _pin_into_card(card: Path, tmp_path: Path) -> None:
    from bedside import secret
    from bedside.trust import keyring, keys
    from tests.conftest import journal_records

    root = _fake_root(card)
    assert install(root, "--board", "4").returncode == 0
    data = root / "var/lib/bedside"
    secret.set_secret(data, "the old ward secret")
    owner = data.stat()
    os.chown(data / "ward-secret.json", owner.st_uid, owner.st_gid)
    pubs = tmp_path / "pubs"
    pubs.mkdir()
    for role in ("ward", "release"):
        k = keys.generate(role, f"the {role} key")
        (pubs / f"{role}.pub").write_text(json.dumps(keyring.public_key_file(role, k.name, k.public)))
    r = install(root, "--board", "4", "--ward-key", str(pubs / "ward.pub"), "--release-key",
                str(pubs / "release.pub"), "--ward-name", "Ward 7")
    assert r.returncode == 0, r.stdout + r.stderr
    ring = keyring.load(root / "etc/bedside/keys")
    assert ring is not None and {k.role for k in ring.keys} == {"ward", "release"}
    st = (root / "etc/bedside/keys/keyring.json").stat()
    assert st.st_uid == 0 and st.st_mode & 0o022 == 0
    assert not (data / "ward-secret.json").exists()
    (pinned,) = [x for x in journal_records(data) if x["type"] == "keys_pinned"]
    assert pinned["secret_removed"] is True and pinned["ward"] == "Ward 7"
    assert all(p.stat().st_uid == owner.st_uid for p in data.iterdir()), "the journal stays the daemon's"
    half = install(root, "--board", "4", "--ward-key", str(pubs / "ward.pub"))
    assert half.returncode == 2 and "together" in half.stderr
