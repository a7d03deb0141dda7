"""The nurse's or engineer's laptop (docs/install.md), installed as the document says: the
Linux line of its pipx table, taken from the document itself and run as written, with Debian
12's pipx (1.1.0, from apt) and with pipx 1.4.3 (Ubuntu 24.04's); and pip into a fresh virtual
environment. No package index: pip finds the wheels in a folder (PIP_NO_INDEX and
PIP_FIND_LINKS, as a hospital's pip configuration would say). Then ``bedside ward``, ``report``
and ``fhir`` run from there on a pull folder, a stick export and an export file, the FHIR
bundle checked against the R4 models, and nothing of the Raspberry Pi's libraries installed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.report.test_adherence import _discharge_day
from tests.report.test_ward import TAKEN
from tests.rigs import ward_rig as wr
from tests.rigs import wheelhouse

# The laptop extra and what it needs (pydantic 1's email extra included), packed from this venv.
LAPTOP = ("fhir.resources", "pydantic", "email-validator", "dnspython", "idna", "typing_extensions", "cryptography",
          "cffi", "pycparser", "hl7apy")
PI_LIBRARIES = ("gpiozero", "luma", "smbus2", "colorzero", "lgpio", "RPi")
# Debian's own (apt, /usr/bin) and the dev extra's, beside this venv's Python.
PIPX = {"pipx 1.1.0 (Debian 12)": "/usr/bin/pipx",
        "pipx 1.4.3 (Ubuntu 24.04)": str(Path(sys.executable).parent / "pipx")}


def documented_pipx_line() -> str:
    """The Linux pipx command of docs/install.md, as a reader copies it."""
    text = (ROOT / "docs/install.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Linux (Debian, Ubuntu) |"))
    (command,) = re.findall(r"`(pipx install [^`]+)`", row)
    return str(command)


@pytest.fixture(scope="module")
def offline(wheel_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of wheels (the laptop's dependencies), and a folder holding the bedside wheel alone."""
    top = tmp_path_factory.mktemp("laptop")
    wheels = top / "wheels"
    shutil.copytree(wheel_folder, wheels)
    wheelhouse.house(wheels, LAPTOP)
    here = top / "download"
    here.mkdir()
    (wheel,) = wheels.glob("bedside-*.whl")
    shutil.copy(wheel, here / wheel.name)
    return wheels, here


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What a nurse has at hand: a pull folder, a ward stick with an export, a loose export file."""
    top = tmp_path_factory.mktemp("inputs")
    pulls, stick = top / "pulls", top / "STICK"
    recs = _discharge_day()
    wr.as_pull(pulls, "ward7-bed12", recs, TAKEN)
    wr.as_stick(stick, "ward7-bed12", recs, TAKEN)
    loose = top / "bed12.jsonl"
    loose.write_text(wr.export_text(recs, TAKEN))
    return {"pull folder": pulls, "stick export": stick, "export file": loose}


def check_laptop_commands(bedside: Path, inputs: dict[str, Path], tmp: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # Run from elsewhere: nothing of the source tree may be found.
        return subprocess.run([str(bedside), *args], capture_output=True, text=True, timeout=300, cwd=tmp)

    for name, given in inputs.items():
        out = tmp / name.replace(" ", "-")
        out.mkdir()
        w = run("ward", str(given), "-o", str(out / "ward.html"), "--csv", str(out / "ward.csv"))
        assert w.returncode == 0, (name, w.stderr)
        assert "1 unit(s) from 1 export(s)" in w.stdout, w.stdout
        assert len((out / "ward.csv").read_text("utf-8-sig").splitlines()) == 2
        rep = run("report", str(given), "-o", str(out / "report.html"))
        assert rep.returncode == 0, (name, rep.stderr)
        assert "episode E2026-0042: 15 of 15 sessions done (100%)" in rep.stdout, rep.stdout
        f = run("fhir", str(given), "-o", str(out / "bundle.json"))
        assert f.returncode == 0, (name, f.stderr)
        assert "2 Observation" in f.stdout and "checked against the FHIR R4 models" in f.stdout
        assert json.loads((out / "bundle.json").read_text())["type"] == "transaction"
    # What a laptop user is told to copy comes with the wheel.
    ex = run("config", "example", "--out", str(tmp / "bedside.toml"))
    assert ex.returncode == 0, ex.stderr
    check = run("config", "check", str(tmp / "bedside.toml"))
    assert check.returncode == 0 and ": OK - unit" in check.stdout, check.stdout + check.stderr
    assert "hip-and-knee" in run("config", "example", "--list").stdout
    missing = run("config", "check", str(tmp / "nothing.toml"))
    assert missing.returncode == 2 and "bedside config example --out" in missing.stderr
    # The simulator needs the unit's libraries: it says so rather than failing.
    sim = run("simulate", "--headless", "--days", "1", "--data", str(tmp / "sim"))
    assert sim.returncode == 2 and "unit extra" in sim.stderr and "Traceback" not in sim.stderr


def no_pi_libraries(python: Path) -> None:
    code = ("import importlib.util, sys; "
            f"print([m for m in {PI_LIBRARIES!r} if importlib.util.find_spec(m) is not None])")
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.parametrize("which", list(PIPX))
def test_the_documented_pipx_line_installs_the_laptop_tools(which: str, offline: tuple[Path, Path],
                                                            inputs: dict[str, Path], tmp_path: Path) -> None:
    pipx = PIPX[which]
    assert pipx is not None and Path(pipx).exists(), f"{which} is not installed (make test installs both)"
    wheels, here = offline
    line = documented_pipx_line()
    assert line == "pipx install './bedside-0.1.0-py3-none-any.whl[laptop]'"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PIPX_", "VIRTUAL_ENV"))}
    env.update(PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"), PIP_NO_INDEX="1",
               PIP_FIND_LINKS=str(wheels), PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin", HOME=str(tmp_path))
    args = shlex.split(line)
    r = subprocess.run([pipx, *args[1:]], cwd=here, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    bedside = tmp_path / "bin" / "bedside"
    assert bedside.exists(), r.stdout + r.stderr
    no_pi_libraries(tmp_path / "pipx" / "venvs" / "bedside" / "bin" / "python")
    work = tmp_path / "work"
    work.mkdir()
    check_laptop_commands(bedside, inputs, work)


def test_the_wheel_with_the_laptop_extra_installs_with_pip(offline: tuple[Path, Path], inputs: dict[str, Path],
                                                           tmp_path: Path) -> None:
    wheels, _ = offline
    venv = tmp_path / "laptop"
    r = wheelhouse.fresh_venv(venv, wheels, "bedside[laptop]")
    assert r.returncode == 0, r.stdout + r.stderr
    no_pi_libraries(venv / "bin/python")
    # The extensions' StructureDefinitions are in the installed package.
    sds = subprocess.run([str(venv / "bin/python"), "-c", "import importlib.resources as r; print(sorted(p.name for "
                          "p in r.files('bedside.report').joinpath('fhir_definitions').iterdir()))"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "StructureDefinition-bedside-journal-verdict.json" in sds.stdout, sds.stderr
    where = subprocess.run([str(venv / "bin/python"), "-c", "import bedside, fhir.resources; print(bedside.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert str(venv) in where.stdout, where.stderr
    work = tmp_path / "work"
    work.mkdir()
    check_laptop_commands(venv / "bin/bedside", inputs, work)
