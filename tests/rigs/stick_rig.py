"""Test rig for USB sticks: real FAT file systems made with mkfs.vfat, mounted with fusefat
(FUSE, so no kernel vfat module is needed), checked with fsck.vfat after unmounting, and
pulled out by killing the file system's process (every later operation on it fails, as on
a stick that is gone) or detached with a lazy unmount.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bedside import secret

SECRET = "correct horse battery"
OTHER_SECRET = "another ward's secret"

_TOOLS = ("fusefat", "fusermount", "mkfs.vfat", "fsck.vfat")
needs_fat = pytest.mark.skipif(
    any(shutil.which(t) is None for t in _TOOLS) or not os.path.exists("/dev/fuse"),
    reason="needs fusefat, fuse and dosfstools (Debian packages) and /dev/fuse")


class FatStick:
    """A FAT image and its mount point; ``mount`` runs fusefat in the foreground so it can be killed."""

    def __init__(self, folder: Path, size_mb: float = 32) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.image = folder / "stick.img"
        self.mnt = folder / "mnt"
        self.mnt.mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        with open(self.image, "wb") as f:
            f.truncate(int(size_mb * 1024 * 1024))
        # No volume label: fusefat would list it as a file.
        subprocess.run(["mkfs.vfat", str(self.image)], check=True, capture_output=True, timeout=30)

    def mount(self, read_only: bool = False) -> Path:
        assert self.proc is None
        self.proc = subprocess.Popen(["fusefat", "-f", "-o", "ro" if read_only else "rw+", str(self.image),
                                      str(self.mnt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError("fusefat did not mount the image")
            time.sleep(0.01)
        return self.mnt

    def unmount(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for _ in range(100):
                if subprocess.run(["fusermount", "-u", str(self.mnt)], capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)      # busy: an fd still open somewhere
        else:
            subprocess.run(["fusermount", "-u", "-z", str(self.mnt)], capture_output=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def pull(self) -> None:
        """The stick is gone: its file system's process dies; every later operation on it fails."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)

    def detach(self) -> None:
        """A lazy unmount: the mount point empties; open files and folders keep working."""
        subprocess.run(["fusermount", "-u", "-z", str(self.mnt)], check=True, capture_output=True)

    def fsck(self, repair: bool = False) -> subprocess.CompletedProcess[str]:
        assert self.proc is None, "unmount before checking"
        return subprocess.run(["fsck.vfat", "-a" if repair else "-n", str(self.image)], capture_output=True,
                              text=True, timeout=60)

    def repair(self) -> None:
        """What a computer does with a stick that was pulled out: fsck until it is clean (a pass
        of fsck.vfat can leave work for the next, e.g. a deleted folder's long name)."""
        for _ in range(5):
            if self.fsck().returncode == 0:
                return
            self.fsck(repair=True)
        raise AssertionError("fsck.vfat could not repair the stick: " + self.fsck().stdout)

    def files(self) -> dict[str, bytes]:
        """Every file on the stick by its path (the stick is mounted read-only to read them)."""
        self.mount(read_only=True)
        try:
            out = {}
            for p in sorted(self.mnt.rglob("*")):
                if p.is_file():
                    out[str(p.relative_to(self.mnt))] = p.read_bytes()
            return out
        finally:
            self.unmount()

    def __enter__(self) -> FatStick:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unmount()


_FORBIDDEN = re.compile(r'[<>:"\\|?*\x00-\x1f]')
_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def windows_name(name: str) -> bool:
    """A name FAT, exFAT and Windows all accept."""
    return (0 < len(name) <= 255 and not _FORBIDDEN.search(name) and not name.endswith((" ", "."))
            and name.split(".", maxsplit=1)[0].upper() not in _DEVICES)


def unit_data(week: Path, folder: Path, value: str | None = SECRET) -> Path:
    """A copy of the scripted week's data directory, with the ward secret set."""
    data = folder / "data"
    shutil.copytree(week, data)
    if value is not None:
        secret.set_secret(data, value)
    return data
