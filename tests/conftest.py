from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from bedside.core import config

# The default run is deterministic: the same examples on every machine and every run, so a
# red build is a real change, never a lucky draw. Random exploration is `make fuzz` (the
# "long" profile: fresh examples each run, many more of them, failures kept for replay).
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=3000, deadline=None, derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def budget(examples: int) -> settings:
    """Examples for an expensive property: ``examples`` normally, twenty times that in the long profile."""
    scale = 20 if PROFILE == "long" else 1
    return settings(max_examples=examples * scale)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cfg() -> config.Config:
    return config.Config()


@pytest.fixture
def london() -> config.Config:
    return config.Config(timezone="Europe/London")


def local(cfg: config.Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "data"
    yield d


DATA = Path(__file__).resolve().parent / "data"


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A private copy of the directory ``build`` makes, built once per test run.

    With parallel workers (``make test`` runs pytest-xdist) every worker is its own process
    with its own session fixtures; the first to ask builds into the run's shared temporary
    directory under a lock, the others wait for it, and each works on its own copy, as a
    single process would."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent          # the run's directory, above each worker's own
    shared, done = base / f"shared-{name}", base / f"shared-{name}.done"
    with open(base / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(shared, ignore_errors=True)       # a build that failed part way
            shared.mkdir()
            build(shared)
            done.touch()
    mine = factory.mktemp(name)
    shutil.copytree(shared, mine, dirs_exist_ok=True, symlinks=True)
    return mine


def _make_week(into: Path) -> None:
    import subprocess
    import sys

    for start, until, script in (("2026-11-24T06:00", "2026-11-27T13:10", "week-1.txt"),
                                 ("2026-11-27T16:40", "2026-11-30T23:00", "week-2.txt")):
        subprocess.run([sys.executable, "-m", "bedside", "simulate", "--config", str(DATA / "week.toml"), "--headless",
                        "--start", start, "--until", until, "--script", str(DATA / script), "--data",
                        str(into / "data")], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted week (tests/data/week-*.txt) as a real journal, made by ``bedside simulate``.

    24-30 November 2026 in Berlin time: late, snoozed, partial and missed sessions, a 06:00
    routine held over every night, a power cut on the 27th and a clock set forward on the 28th.
    """
    return built_once(tmp_path_factory, "week", _make_week) / "data"


def journal_records(data: Path) -> list[dict[str, Any]]:
    """Every record in a unit's data directory, read as an outsider would (read-only)."""
    from bedside.journal.journal import Journal

    j = Journal(data, config.Config().tz, "reader", readonly=True)
    try:
        return list(j.records())
    finally:
        j.close()


@pytest.fixture(scope="session")
def wheel_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of wheels as an offline ward has: the dependencies (packed again from this
    venv), the build backend and the bedside wheel built from it with ``pip wheel --no-index``.
    Built once per run: the build and the update tests share it."""
    from tests.rigs import wheelhouse

    def make(folder: Path) -> None:
        wheelhouse.house(folder)
        wheel, r = wheelhouse.build(wheelhouse.source_copy(tmp_path_factory.mktemp("src") / "bedside"), folder, folder)
        assert r.returncode == 0 and wheel.suffix == ".whl", r.stdout + r.stderr

    return built_once(tmp_path_factory, "wheels", make)


@pytest.fixture
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets this process's laptop code answer a ``cheap_ward`` (tests/rigs/serial_rig.py): the
    laptop's scrypt floor lowered to the cheap ward's n=16, for this test only."""
    from bedside import secret

    monkeypatch.setattr(secret, "MIN_N", 16)


@pytest.fixture
def ward(tmp_path: Path) -> Any:
    """A ward's authority and release keys, the public halves pinned (tests/rigs/trust_rig.py)."""
    from tests.rigs.trust_rig import make_ward

    return make_ward(tmp_path / "ward-keys")


@pytest.fixture
def cheap_argon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private key files sealed under Argon2id's lowest cost, for this test only."""
    import nacl.pwhash

    from bedside.trust import keys

    monkeypatch.setattr(keys, "OPS", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(keys, "MEM", nacl.pwhash.argon2id.MEMLIMIT_MIN)
