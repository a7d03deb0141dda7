"""Wheel folders made offline, for the tests that build or install the package as a unit would.

A unit's offline install and its software updates work from a folder of wheels and never ask
the package index. The tests do the same without a network: the dependencies' wheels are
packed again from what is installed in this virtual environment (a wheel is a zip of the
installed files and their dist-info, with a fresh RECORD), and the bedside wheel is built
from the source with ``pip wheel --no-index`` against that folder, so the build backend too
comes from it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

# What the unit's venv needs beyond the standard library, and the build backend.
RUNTIME = ("gpiozero", "colorzero", "luma.core", "luma.oled", "pyserial", "pillow", "smbus2", "cbor2",
           "pynacl", "cffi", "pycparser")
BUILD = ("setuptools",)
_SKIP = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack(name: str, out: Path) -> Path:
    """The wheel of the installed distribution ``name``, written into ``out``."""
    dist = importlib.metadata.distribution(name)
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    # The file name carries every tag, compressed (py2.py3-none-any), as pip expects.
    tag = "-".join(".".join(dict.fromkeys(t.split("-")[i] for t in tags)) for i in range(3))
    stem = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    path = out / f"{stem}-{dist.version}-{tag}.whl"
    rows: list[tuple[str, str, str]] = []
    info = None
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in dist.files or ():
            parts = Path(str(f)).parts
            if parts[0] == ".." or "__pycache__" in parts:
                continue          # console scripts (pip makes them again) and bytecode
            if parts[0].endswith(".dist-info"):
                info = parts[0]
                if parts[-1] in _SKIP:
                    continue
            data = Path(str(dist.locate_file(f))).read_bytes()
            z.writestr(str(f), data)
            rows.append((str(f), _record_hash(data), str(len(data))))
        assert info is not None, name
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([*rows, (f"{info}/RECORD", "", "")])
        z.writestr(f"{info}/RECORD", buf.getvalue())
    return path


def house(out: Path, names: tuple[str, ...] = RUNTIME + BUILD) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        repack(name, out)
    return out


def source_copy(dest: Path, version: str | None = None) -> Path:
    """What the build reads (pyproject, README, the package, the config), with ``version`` set if given."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copy(ROOT / "README.md", dest / "README.md")
    shutil.copytree(ROOT / "device", dest / "device",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    shutil.copytree(ROOT / "config", dest / "config")     # the annotated config and examples travel in the wheel
    if version is not None:
        text = (dest / "pyproject.toml").read_text()
        (dest / "pyproject.toml").write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', text, count=1))
        init = dest / "device/bedside/__init__.py"
        init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
    return dest


def build(src: Path, wheels: Path, out: Path, *,
          isolated: bool = True) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``pip wheel --no-index`` of the source at ``src`` against the folder ``wheels``.

    ``isolated=False`` builds with this venv's own setuptools (the same pinned range) instead
    of installing the backend from ``wheels`` into a fresh build environment: for wheels that
    only serve as something to install, once the isolated build itself has been proven."""
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--find-links", str(wheels),
                        *([] if isolated else ["--no-build-isolation"]),
                        "--no-cache-dir", "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    built = sorted(out.glob("bedside-*.whl"), key=lambda p: p.stat().st_mtime)
    return (built[-1] if built else out), r


def fresh_venv(venv: Path, wheels: Path, spec: str = "bedside") -> subprocess.CompletedProcess[str]:
    """A new virtual environment with ``spec`` installed from ``wheels`` alone (``--no-index``)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "--no-index",
                           "--find-links", str(wheels), "--no-cache-dir", "--quiet", spec],
                          capture_output=True, text=True, timeout=600)
