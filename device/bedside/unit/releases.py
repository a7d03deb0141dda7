"""The installed versions of the software, each in its own venv, and the one in use.

    /opt/bedside/
      venv -> releases/0.2.0/venv      the service runs /opt/bedside/venv/bin/bedside
      releases/0.1.0/venv              the version before (kept to switch back to)
      releases/0.2.0/venv

``tools/install.sh`` makes this layout; a software update from a stick adds a release beside
the current one, installs into it from the stick's wheels with no package index, and
switches the link in one step (a symlink written beside it, then renamed over it): the
service sees either the old version or the new, never half of one. Switching back is the
same step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PREFIX = Path("/opt/bedside")
PENDING = ".update-pending"      # an update switched to and not yet proven (bedside-update.path watches it)


class ReleaseError(Exception):
    """A release could not be made or switched to; the message says why."""


def pip_command() -> list[str]:
    """A pip that can install into another venv (``--python``): this interpreter's, or the
    system's (a venv made by an update has none of its own)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    return ["python3", "-m", "pip"]


class Releases:
    def __init__(self, prefix: Path = PREFIX, python: str = "python3", pip: Sequence[str] | None = None) -> None:
        self.prefix = prefix
        self.link = prefix / "venv"
        self.python = python
        self.pip = list(pip) if pip is not None else pip_command()

    def venv(self, version: str) -> Path:
        return self.prefix / "releases" / version / "venv"

    def current(self) -> str | None:
        """The version the link points at (None: no link, as before releases existed)."""
        try:
            target = Path(os.readlink(self.link))
        except OSError:
            return None
        parts = target.parts
        return parts[-2] if len(parts) >= 3 and parts[-3] == "releases" and parts[-1] == "venv" else None

    def installed(self) -> list[str]:
        base = self.prefix / "releases"
        return sorted(p.name for p in base.iterdir() if (p / "venv").is_dir()) if base.is_dir() else []

    def install(self, version: str, wheels: Path, extra: str = "pi", timeout: float = 1800.0) -> Path:
        """A new venv for ``version`` with bedside and its dependencies from ``wheels`` only."""
        if version == self.current():
            raise ReleaseError(f"version {version} is the one in use; it is not installed over itself")
        venv = self.venv(version)
        if venv.parent.exists():
            shutil.rmtree(venv.parent)       # a half-made one from an earlier attempt
        venv.parent.mkdir(parents=True)
        steps = [
            # --system-site-packages: apt's GPIO backend stays visible, as in the installed venv.
            [self.python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
            [*self.pip, "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-index",
             "--no-cache-dir", "--find-links", str(wheels), f"bedside[{extra}]=={version}"],
        ]
        for cmd in steps:
            r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                shutil.rmtree(venv.parent, ignore_errors=True)
                last = (r.stderr or r.stdout).strip().splitlines()[-3:]
                raise ReleaseError(f"installing {version} failed at {Path(cmd[0]).name} {cmd[2]}: "
                                   + " / ".join(last))
        return venv

    def switch(self, version: str) -> None:
        """Point the link at ``version`` in one step (rename over the old link)."""
        if not (self.venv(version) / "bin").is_dir():
            raise ReleaseError(f"version {version} is not installed in {self.venv(version)}")
        tmp = self.prefix / ".venv.switch"
        tmp.unlink(missing_ok=True)
        os.symlink(f"releases/{version}/venv", tmp)
        if self.link.is_dir() and not self.link.is_symlink():
            raise ReleaseError(f"{self.link} is a directory, not a link: install once with tools/install.sh")
        os.replace(tmp, self.link)
        fd = os.open(self.prefix, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)              # the switch survives a power cut right after it
        finally:
            os.close(fd)

    def set_pending(self, old: str, new: str) -> None:
        tmp = self.prefix / f"{PENDING}.tmp"
        tmp.write_text(json.dumps({"old": old, "new": new}) + "\n")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.prefix / PENDING)

    def pending(self) -> tuple[str, str] | None:
        try:
            body = json.loads((self.prefix / PENDING).read_text())
            return str(body["old"]), str(body["new"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear_pending(self) -> None:
        (self.prefix / PENDING).unlink(missing_ok=True)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove releases other than ``keep`` (the current and the one before)."""
        gone = [v for v in self.installed() if v not in keep]
        for v in gone:
            shutil.rmtree(self.prefix / "releases" / v, ignore_errors=True)
        return gone
