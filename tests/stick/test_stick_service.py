"""The stick service as systemd runs it: a user without privileges but for one ambient
capability, CAP_SYS_ADMIN (setpriv stands in for systemd's AmbientCapabilities=), mounting a
real block device (a loop device) with mount(2) and starting the export without any
capability. This kernel has no vfat module, so the device carries ext4 here (``--allow-fs``,
for tests only); FAT itself is proven in test_stick_fat.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA, journal_records
from tests.rigs.cli import run
from tests.rigs.procs import child
from tests.rigs.stick_rig import SECRET, unit_data

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in ("losetup", "mkfs.ext4", "setpriv"))
    or not os.path.exists("/dev/loop-control"),
    reason="needs root, loop devices, mkfs.ext4 and setpriv (util-linux) to play systemd's part")

# What systemd gives bedside-stick@.service: CAP_SYS_ADMIN and nothing else. ``noroot`` makes
# uid 0 here behave as the unprivileged bedside user does under systemd: no capability
# beyond the ambient one, and none at all after the child's exec.
AS_SYSTEMD = ["setpriv", "--securebits=+noroot,+noroot_locked", "--inh-caps=-all,+sys_admin",
              "--ambient-caps=-all,+sys_admin", "--bounding-set=-all,+sys_admin", "--"]


class Loop:
    def __init__(self, image: Path) -> None:
        self.image = image
        self.dev = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True,
                                  text=True).stdout.strip()
        self.name = Path(self.dev).name

    def close(self) -> None:
        subprocess.run(["losetup", "-d", self.dev], capture_output=True)

    def mounted(self) -> bool:
        st = os.stat(self.dev)
        want = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        return any(line.split()[2] == want for line in Path("/proc/self/mountinfo").read_text().splitlines())

    @contextlib.contextmanager
    def opened(self, where: Path) -> Iterator[Path]:
        where.mkdir(exist_ok=True)
        subprocess.run(["mount", self.dev, str(where)], check=True, capture_output=True)
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True, capture_output=True)


@pytest.fixture
def data(week: Path, tmp_path: Path) -> Path:
    return unit_data(week, tmp_path)


@pytest.fixture
def stick(tmp_path: Path) -> Iterator[Loop]:
    """A prepared stick on a loop device."""
    image = tmp_path / "stick.img"
    with open(image, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-E", "root_owner=0:0", str(image)], check=True, capture_output=True)
    loop = Loop(image)
    try:
        secret_file = tmp_path / "secret.txt"
        secret_file.write_text(SECRET)
        with loop.opened(tmp_path / "prep") as mnt:
            assert run("stick", "prepare", str(mnt), "--secret-file", str(secret_file)).returncode == 0
        yield loop
    finally:
        loop.close()


@contextlib.contextmanager
def service(loop: Loop, data: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The stick service as systemd starts it, in a session of its own (killed and reaped on the way out)."""
    (tmp_path / "mounts").mkdir(exist_ok=True)
    args = [*AS_SYSTEMD, sys.executable, "-m", "bedside", "stick", "service", loop.name,
            "--allow-fs", "ext4", "--mount-dir", str(tmp_path / "mounts"), "--data", str(data),
            "--socket", str(tmp_path / "no-daemon.sock"), "--config", str(DATA / "week.toml")]
    with child(args) as proc:
        yield proc


def test_the_service_mounts_exports_and_unmounts(stick: Loop, data: Path, tmp_path: Path) -> None:
    before = journal_records(data)
    with service(stick, data, tmp_path) as p:
        out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "bedside: Exported" in err and "Traceback" not in err and out == ""
    assert not stick.mounted() and list((tmp_path / "mounts").iterdir()) == []
    [rec] = journal_records(data)[len(before):]
    assert rec["type"] == "export" and rec["via"] == "stick"
    with stick.opened(tmp_path / "look") as mnt:
        folder = mnt / rec["folder"]
        assert sorted(p.name for p in folder.iterdir()) == ["journal.jsonl", "report.html", "sessions.csv"]


def test_the_export_refuses_to_run_with_capabilities(tmp_path: Path, data: Path) -> None:
    """What keeps the stick's files away from CAP_SYS_ADMIN: the export checks it holds none."""
    r = run("stick", "export", str(tmp_path), "--from-service", "--data", str(data))
    assert r.returncode == 2 and "must not run with capabilities" in r.stderr
    assert "bedside-stick@DEVICE.service" in r.stderr


def test_a_stick_that_cannot_be_read_is_recorded_and_left_alone(tmp_path: Path, data: Path) -> None:
    image = tmp_path / "garbage.img"
    image.write_bytes(os.urandom(4 * 1024 * 1024))
    loop = Loop(image)
    try:
        before = journal_records(data)
        with service(loop, data, tmp_path) as p:
            _out, err = p.communicate(timeout=120)
        assert p.returncode == 1 and "cannot be read" in err, err
        assert not loop.mounted()
    finally:
        loop.close()
    [rec] = journal_records(data)[len(before):]
    assert (rec["type"], rec["reason"]) == ("export_failed", "unreadable")


def test_a_disk_the_system_uses_is_not_a_stick(stick: Loop, data: Path, tmp_path: Path) -> None:
    before = journal_records(data)
    with stick.opened(tmp_path / "in-use"), service(stick, data, tmp_path) as p:
        _out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "not a stick to export to" in err
    assert journal_records(data) == before


def test_a_stick_pulled_out_during_the_service(stick: Loop, data: Path, tmp_path: Path) -> None:
    """systemd stops the service when the device goes (BindsTo=): SIGTERM to every process of it."""
    before = journal_records(data)
    for delay in (0.3, 0.4, 0.5, 0.6):
        with service(stick, data, tmp_path) as p:
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            _out, err = p.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert not stick.mounted(), "the stick was left mounted"
    added = journal_records(data)[len(before):]
    print("OUTCOMES", [(r["type"], r.get("reason"), r.get("written")) for r in added])
    assert all((r["type"], r.get("reason")) in (("export", None), ("export_failed", "removed")) for r in added)
    with stick.opened(tmp_path / "look") as mnt:
        for f in mnt.glob("Bedside/*/report.html"):
            assert f.read_text().rstrip().endswith("</html>")
