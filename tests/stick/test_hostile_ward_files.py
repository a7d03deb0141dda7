"""The ward's files in the data directory are read with a bound and never waited on: a fifo
or a huge file in their place is a named error at once, not a unit that never starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bedside.core import config
from bedside.stick import settings


@pytest.mark.timeout(20)
def test_a_fifo_in_place_of_the_ward_config_is_not_waited_on(tmp_path: Path) -> None:
    """Read without blocking, a fifo gives nothing at once (an empty file): no wait for a writer."""
    os.mkfifo(tmp_path / settings.CONFIG_FILE)
    assert settings.effective(config.Config(), tmp_path) is not None


def test_a_huge_ward_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / settings.CONFIG_FILE).write_bytes(b"#" * (2 << 20))
    with pytest.raises(config.ConfigError, match="larger than"):
        settings.effective(config.Config(), tmp_path)


@pytest.mark.timeout(20)
def test_the_ward_state_file_as_a_fifo_or_deeply_nested(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / settings.STATE_FILE)
    assert settings._issued_before(tmp_path) is None
    os.unlink(tmp_path / settings.STATE_FILE)
    (tmp_path / settings.STATE_FILE).write_text("[" * 100000)
    assert settings._issued_before(tmp_path) is None
