"""The stick service: mounts one USB stick for one export, and does nothing else.

systemd starts ``bedside stick service sda1`` (``bedside-stick@sda1.service``) when udev
sees a USB stick with a file system (``80-bedside-stick.rules``). It runs as the unit's
user with a single capability, CAP_SYS_ADMIN, given by systemd for mount(2) and
umount(2), in a mount namespace of its own: the stick's file system is never visible to the
daemon or to anything else on the unit.

It starts the export itself (``bedside stick export``) as a child process that holds no
capability at all (the ambient set is cleared before exec), and serves that child exactly
two requests over a pipe: ``mount`` (this one device, at this one place, ``nosuid``,
``nodev``, ``noexec``, ``noatime``, as FAT or exFAT only) and ``unmount`` (flush, unmount,
and say whether the device is still there). This process never reads the stick's files.

A partition on a disk that is in use (the unit booting from a USB disk) is not a stick:
it is left alone without a word on the display.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from bedside.core.errors import BedsideError
from bedside.durable import json_loads

MOUNT_DIR = Path("/run/bedside-stick")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME = 1, 2, 4, 8, 1024
MNT_DETACH = 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME
# File systems a stick may carry, with their options: every file owned by the mounting user
# and private to it, names in UTF-8, early flushing (a stick is pulled without warning).
FILE_SYSTEMS: dict[str, str] = {
    "vfat": "fmask=0177,dmask=0077,utf8=1,shortname=mixed,flush,errors=remount-ro",
    "exfat": "fmask=0177,dmask=0077,errors=remount-ro",
}
_NAME = re.compile(r"^[a-z][a-z0-9]{0,31}$")


class NotAStick(BedsideError):
    """The device is not a stick to export to (in use by the system, or gone)."""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> None:
    if result != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _dev_numbers(path: Path) -> tuple[int, int]:
    st = path.stat()
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _mounted_devices() -> set[tuple[int, int]]:
    found = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            major, _, minor = line.split()[2].partition(":")
            found.add((int(major), int(minor)))
    return found


def _siblings(name: str, sys_block: Path) -> set[tuple[int, int]]:
    """Device numbers of the disk holding ``name`` and of every partition on it."""
    node = sys_block / name
    disk = node.resolve().parent if (node / "partition").exists() else node.resolve()
    out = set()
    for d in [disk, *disk.iterdir()]:
        dev = d / "dev"
        if dev.is_file():
            with contextlib.suppress(OSError, ValueError):
                major, _, minor = dev.read_text().strip().partition(":")
                out.add((int(major), int(minor)))
    return out


def device(name: str, dev_dir: Path = Path("/dev"), sys_block: Path = Path("/sys/class/block")) -> Path:
    """The block device for a kernel name from udev (``sda1``), if it may be used as a stick."""
    if not _NAME.match(name):
        raise NotAStick(f"{name!r} is not a block device name")
    path = dev_dir / name
    try:
        if not stat.S_ISBLK(path.stat().st_mode):
            raise NotAStick(f"{path} is not a block device")
    except FileNotFoundError:
        raise NotAStick(f"{path} is gone (the stick was removed)") from None
    numbers = _siblings(name, sys_block) if (sys_block / name).exists() else {_dev_numbers(path)}
    if numbers & _mounted_devices():
        raise NotAStick(f"{path} is on a disk the system is using (mounted); it is not a stick to export to")
    return path


class Mounter:
    def __init__(self, dev: Path, target: Path, file_systems: dict[str, str]) -> None:
        self.dev = dev
        self.target = target
        self.file_systems = file_systems
        self.mounted = False
        self.libc = _libc()

    def present(self) -> bool:
        return self.dev.exists()

    def mount(self) -> dict[str, Any]:
        self.target.mkdir(mode=0o700, exist_ok=True)
        tried = []
        for fstype, options in self.file_systems.items():
            for ro in (0, MS_RDONLY):
                r = self.libc.mount(str(self.dev).encode(), str(self.target).encode(), fstype.encode(),
                                    FLAGS | ro, options.encode())
                if r == 0:
                    self.mounted = True
                    return {"ok": True, "path": str(self.target), "read_only": bool(ro), "fs": fstype}
                e = ctypes.get_errno()
                if e in (errno.EROFS, errno.EACCES) and not ro:
                    continue       # a write-protected stick: mount it read-only, so we can say so
                tried.append(f"{fstype}: {os.strerror(e)}")
                break
        if not self.present():
            return {"ok": False, "reason": "removed", "present": False,
                    "message": "the stick was removed before it could be read"}
        kind = _udev_fs_type(self.dev)
        what = f"its file system is {kind}" if kind and kind not in self.file_systems else \
            "it is not formatted FAT32 or exFAT, or its file system is damaged"
        return {"ok": False, "reason": "unreadable", "present": True,
                "message": f"the stick cannot be read: {what} ({'; '.join(tried)}); "
                           "check it on a computer, or format it FAT32 or exFAT"}

    def unmount(self) -> dict[str, Any]:
        if not self.mounted:
            return {"ok": True, "present": self.present()}
        problem = None
        try:
            fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY)
            try:
                _check(self.libc.syncfs(fd))
            finally:
                os.close(fd)
        except OSError as e:
            problem = f"flushing the stick failed ({e.strerror})"
        if self.libc.umount2(str(self.target).encode(), 0) != 0:
            err = ctypes.get_errno()
            # Busy or broken: detach it all the same; the kernel lets go when it can.
            self.libc.umount2(str(self.target).encode(), MNT_DETACH)
            problem = problem or f"unmounting the stick failed ({os.strerror(err)})"
        self.mounted = False
        present = self.present()
        if problem is not None:
            return {"ok": False, "reason": "io_error" if present else "removed", "present": present,
                    "message": f"{problem}: the files may not all have reached the stick"}
        return {"ok": True, "present": present}

    def release(self) -> None:
        if self.mounted:
            self.libc.umount2(str(self.target).encode(), MNT_DETACH)
            self.mounted = False
        with contextlib.suppress(OSError):
            self.target.rmdir()


def _udev_fs_type(dev: Path) -> str | None:
    """What udev's blkid found on the device (its database is readable by everyone)."""
    try:
        major, minor = _dev_numbers(dev)
        text = Path(f"/run/udev/data/b{major}:{minor}").read_text()
    except (OSError, ValueError):
        return None
    for line in text.splitlines():
        if line.startswith("E:ID_FS_TYPE="):
            return line.split("=", 1)[1] or None
    return None


def _drop_capabilities() -> None:
    """In the child before exec: no ambient capabilities, so the export runs with none."""
    _libc().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def serve(name: str, child: Callable[[Path], Sequence[str]], *, mount_dir: Path = MOUNT_DIR,
          file_systems: dict[str, str] | None = None, log: IO[str] = sys.stderr) -> int:
    """Mount ``name`` for the export process ``child(mount point)`` (its argv), serve its
    requests, and clean up. Returns the export's exit code (0 when the device is not a stick)."""
    try:
        dev = device(name)
    except NotAStick as e:
        print(f"bedside: stick service: {e}; nothing to do", file=log, flush=True)
        return 0
    target = mount_dir / name
    m = Mounter(dev, target, file_systems or FILE_SYSTEMS)
    stopping: list[str] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        # The stick went away (systemd stops us) or the unit is shutting down: the child gets
        # the signal too and asks us to unmount; keep serving it until it exits.
        stopping.append(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_term)
    proc = subprocess.Popen(list(child(target)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            preexec_fn=_drop_capabilities)  # noqa: PLW1509 - no threads here
    assert proc.stdin is not None and proc.stdout is not None
    try:
        while True:
            try:
                line = proc.stdout.readline(65536)
            except InterruptedError:
                continue
            if not line:
                break
            try:
                # The child reads the stick's bytes: its requests are read as hostile too (a line of
                # at most 64 KiB; nesting past the parser's limit is a ValueError, not a crash here).
                op = json_loads(line).get("op")
            except (ValueError, AttributeError):
                op = None
            if op == "mount" and not m.mounted:
                answer = m.mount()
            elif op == "unmount":
                answer = m.unmount()
            else:
                answer = {"ok": False, "reason": "io_error", "message": f"unknown request {line[:40]!r}"}
            try:
                proc.stdin.write(json.dumps(answer).encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                break
        return proc.wait()
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        if proc.poll() is None:
            proc.wait(timeout=30)
        m.release()
