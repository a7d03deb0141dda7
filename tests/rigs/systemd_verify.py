"""systemd's own check of the unit files as the installer lays them out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


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
