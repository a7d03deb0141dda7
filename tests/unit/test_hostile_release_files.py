"""The updater's own state on the card (``release-state.json``: the release counter;
``.update-pending``: an update switched to and not yet proven) is read with a bound (64 KiB),
never waited on, and a damaged one reads as none: no traceback in the updater, which a crash
there would leave the unit between two versions. Before: read whole, a fifo waited on, and
nesting a RecursionError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bedside.unit import releases
from bedside.unit.releases import Releases

DAMAGE = ["nested", "huge", "fifo", "not an object", "wrong types"]


def put(path: Path, damage: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if damage == "fifo":
        os.mkfifo(path)
        return
    path.write_text({"nested": "[" * 100_000, "huge": '{"counter": 3, "old": "1", "new": "2", "x": "' + "a" * (2 << 20)
                     + '"}', "not an object": "[3]", "wrong types": '{"counter": "3", "old": [], "new": {}}'}[damage])


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_release_state_reads_as_no_release(tmp_path: Path, damage: str) -> None:
    r = Releases(tmp_path / "opt/bedside")
    put(r.prefix / releases.STATE, damage)
    assert r.trusted_counter() == 0


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_pending_mark_reads_as_none(tmp_path: Path, damage: str) -> None:
    r = Releases(tmp_path / "opt/bedside")
    put(r.prefix / releases.PENDING, damage)
    assert r.pending() is None


def test_the_files_as_written_are_read(tmp_path: Path) -> None:
    r = Releases(tmp_path / "opt/bedside")
    r.prefix.mkdir(parents=True)
    r.set_counter(7, "1.2.3")
    r.set_pending("1.2.2", "1.2.3")
    assert r.trusted_counter() == 7 and r.pending() == ("1.2.2", "1.2.3")
