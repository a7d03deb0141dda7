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
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bedside.core.errors import BedsideError
from bedside.durable import KEY_FILE, json_loads, read_bounded

PREFIX = Path("/opt/bedside")
PENDING = ".update-pending"      # an update switched to and not yet proven (bedside-update.path watches it)
# The release counter last installed (docs/security.md, "Rollback and freeze"): root's, read by all.
STATE = "release-state.json"


class ReleaseError(BedsideError):
    """A release could not be made or switched to; the message says why."""


# libgpiod 2's bindings: tools/install.sh installs them beside the ``pi`` extra (best effort:
# they are built from source where there is no wheel), so that the button is read from the
# kernel's line events and the outputs need no lgpio timing thread. A release that replaces a
# venv holding them must hold them too, or it would fall back to polling (a Pi) or not start at
# all (a board named by ``[hardware] gpio_chip``).
GPIOD = "gpiod>=2.1"


def holds_gpiod(venv: Path) -> bool:
    """Whether ``venv`` has the gpiod distribution installed in its own site-packages (apt's
    older bindings, seen through ``--system-site-packages``, do not count)."""
    return any(venv.glob("lib/python3*/site-packages/gpiod-*.dist-info"))


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

    def install(self, version: str, wheels: Path, extra: str = "pi", timeout: float = 1800.0,
                hashes: Mapping[str, str] | None = None) -> Path:
        """A new venv for ``version`` with bedside and its dependencies from ``wheels`` only.

        ``hashes`` (wheel file name -> SHA-256, as signed): pip installs in hash-checking mode
        (``--no-index --require-hashes``) from a requirements file that pins every distribution
        it installs to a signed hash. pip first says what it would install here (``--dry-run
        --report``: the platform's own wheels, markers applied); each of those files must be in
        the signed list, or nothing is installed.

        When the venv in use holds libgpiod 2's bindings (``GPIOD``), the new one gets them too,
        from the release's own wheel and pinned to its signed hash like every other; a release
        without that wheel is refused here, before anything is switched."""
        if version == self.current():
            raise ReleaseError(f"version {version} is the one in use; it is not installed over itself")
        wants = [f"bedside[{extra}]=={version}"]
        if holds_gpiod(self.link):
            if not any(wheels.glob("gpiod-*.whl")):
                raise ReleaseError(f"release {version} has no gpiod wheel, and this unit reads its pins through "
                                   "libgpiod 2's bindings (the gpiod package): without them the new version would "
                                   "poll the button or not start. Build the release's wheels with gpiod "
                                   "(docs/install.md, \"Making the update\") and bundle them again")
            wants.append(GPIOD)
        venv = self.venv(version)
        if venv.parent.exists():
            shutil.rmtree(venv.parent)       # a half-made one from an earlier attempt
        venv.parent.mkdir(parents=True)
        python = str(venv / "bin" / "python")
        pip = [*self.pip, "--python", python, "install", "--quiet", "--no-index", "--no-cache-dir",
               "--find-links", str(wheels)]
        # --system-site-packages: apt's GPIO backend stays visible, as in the installed venv.
        self._run([self.python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], timeout, version)
        if hashes is None:
            self._run([*pip, *wants], timeout, version)
            return venv
        with tempfile.TemporaryDirectory(prefix="bedside-pins-") as tmp:
            report = Path(tmp) / "report.json"
            self._run([*pip, "--dry-run", "--report", str(report), *wants], timeout, version)
            lines = self._pinned(json.loads(report.read_text()), hashes, extra, version)
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("\n".join(lines) + "\n")
            self._run([*pip, "--require-hashes", "-r", str(reqs)], timeout, version)
        return venv

    def _pinned(self, report: dict[str, object], hashes: Mapping[str, str], extra: str, version: str) -> list[str]:
        lines = []
        items = report.get("install") if isinstance(report, dict) else None
        for item in items if isinstance(items, list) else []:
            url = str(item.get("download_info", {}).get("url", ""))
            name = unquote(Path(urlsplit(url).path).name)
            meta = item.get("metadata", {})
            dist, ver = str(meta.get("name", "")), str(meta.get("version", ""))
            if name not in hashes or not dist or not ver:
                shutil.rmtree(self.venv(version).parent, ignore_errors=True)
                raise ReleaseError(f"installing {version} would need {name or url!r}, which the release does not sign")
            label = f"{dist}[{extra}]" if dist.lower() == "bedside" else dist
            lines.append(f"{label}=={ver} --hash=sha256:{hashes[name]}")
        if not any(line.lower().startswith("bedside[") for line in lines):
            shutil.rmtree(self.venv(version).parent, ignore_errors=True)
            raise ReleaseError(f"pip would not install bedside {version} from the release's wheels")
        return lines

    def _run(self, cmd: list[str], timeout: float, version: str) -> None:
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            shutil.rmtree(self.venv(version).parent, ignore_errors=True)
            last = (r.stderr or r.stdout).strip().splitlines()[-3:]
            step = Path(cmd[0]).name + (" pip" if "pip" in cmd else " venv")
            raise ReleaseError(f"installing {version} failed at {step}: " + " / ".join(last))

    def trusted_counter(self) -> int:
        """The release counter of the last release installed here (0: none yet)."""
        try:
            body = json_loads(read_bounded(self.prefix / STATE, KEY_FILE))    # bounded, a fifo not waited on
            c = body["counter"]
            return c if isinstance(c, int) and c >= 0 else 0
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def set_counter(self, counter: int, version: str) -> None:
        tmp = self.prefix / f".{STATE}.tmp"
        tmp.write_text(json.dumps({"counter": counter, "version": version}) + "\n")
        os.chmod(tmp, 0o644)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.prefix / STATE)

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
            body = json_loads(read_bounded(self.prefix / PENDING, KEY_FILE))
            old, new = body["old"], body["new"]
            if not (isinstance(old, str) and isinstance(new, str) and len(old) + len(new) < 200):
                return None
            return old, new
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
