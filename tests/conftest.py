from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from bedside import config

settings.register_profile("default", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def budget(examples: int) -> settings:
    """Examples for an expensive property: ``examples`` normally, twenty times that in the long profile."""
    scale = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
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
