"""The nurse's or engineer's laptop (docs/install.md): the wheel with the laptop extra
installed into a fresh virtual environment without the package index, and ``bedside ward``,
``fhir`` and ``report`` run from there, the FHIR bundle checked against the R4 models."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.report.test_adherence import _discharge_day
from tests.report.test_ward import TAKEN
from tests.rigs import ward_rig as wr
from tests.rigs import wheelhouse

# The laptop extra and what it needs (pydantic 1's email extra included), packed from this venv.
LAPTOP = ("fhir.resources", "pydantic", "email-validator", "dnspython", "idna", "typing_extensions", "cryptography",
          "cffi", "pycparser", "hl7apy")


def test_the_wheel_with_the_laptop_extra_runs_ward_fhir_and_report(wheel_folder: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    shutil.copytree(wheel_folder, wheels)
    wheelhouse.house(wheels, LAPTOP)
    venv = tmp_path / "laptop"
    r = wheelhouse.fresh_venv(venv, wheels, "bedside[laptop]")
    assert r.returncode == 0, r.stdout + r.stderr
    bedside = str(venv / "bin/bedside")
    pulls = tmp_path / "pulls"
    export = wr.as_pull(pulls, "ward7-bed12", _discharge_day(), TAKEN)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # Run from elsewhere: nothing of the source tree may be found.
        return subprocess.run([bedside, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)

    w = run("ward", str(pulls), "-o", str(tmp_path / "ward.html"), "--csv", str(tmp_path / "ward.csv"))
    assert w.returncode == 0, w.stderr
    assert "1 unit(s) from 1 export(s)" in w.stdout and "ward7-bed12" in (tmp_path / "ward.csv").read_text()
    f = run("fhir", str(pulls), "-o", str(tmp_path / "bundle.json"))
    assert f.returncode == 0, f.stderr
    assert "2 Observation" in f.stdout and "checked against the FHIR R4 models" in f.stdout
    assert json.loads((tmp_path / "bundle.json").read_text())["type"] == "transaction"
    rep = run("report", str(export), "-o", str(tmp_path / "report.html"))
    assert rep.returncode == 0, rep.stderr
    assert "episode E2026-0042: 15 of 16 sessions done" in rep.stdout
    # The extensions' StructureDefinitions are in the installed package.
    sds = subprocess.run([str(venv / "bin/python"), "-c", "import importlib.resources as r; print(sorted(p.name for "
                          "p in r.files('bedside.report').joinpath('fhir_definitions').iterdir()))"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "StructureDefinition-bedside-journal-verdict.json" in sds.stdout, sds.stderr
    where = subprocess.run([str(venv / "bin/python"), "-c", "import bedside, fhir.resources; print(bedside.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert str(venv) in where.stdout, where.stderr
