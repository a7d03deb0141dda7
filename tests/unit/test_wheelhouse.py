"""The offline build and install from a wheel folder (docs/install.md, "Without a package
index"): the wheel builds from the folder alone with the licence in its SPDX form, and a
fresh venv installs from it with ``--no-index`` and runs."""

from __future__ import annotations

import subprocess
import tomllib
import zipfile
from pathlib import Path

from tests.conftest import ROOT
from tests.rigs import wheelhouse


def test_the_wheel_builds_from_the_folder_alone_with_an_spdx_licence(wheel_folder: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    version = project["project"]["version"]
    assert project["project"]["license"] == "MIT"
    # The backend that reads that form, pinned below an untried major version.
    assert project["build-system"]["requires"] == ["setuptools>=77.0.3,<85"]
    wheel = wheel_folder / f"bedside-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"bedside-{version}.dist-info/METADATA").decode()
        names = z.namelist()
    assert "License-Expression: MIT" in meta.splitlines()
    assert not any(line.startswith("License:") or "License ::" in line for line in meta.splitlines())
    # The fonts the screens are drawn with travel in the wheel.
    assert any(n.startswith("bedside/display/fonts/") and n.endswith(".pil") for n in names)


def test_a_fresh_venv_installs_offline_from_the_folder(wheel_folder: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    r = wheelhouse.fresh_venv(venv, wheel_folder)
    assert r.returncode == 0, r.stdout + r.stderr
    out = subprocess.run([str(venv / "bin/bedside"), "config", "check", str(ROOT / "config/bedside.toml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and ": OK - unit" in out.stdout, out.stdout + out.stderr
