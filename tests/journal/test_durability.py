"""Crash and storage-fault proofs on a real daemon process, observed from outside.

Short versions of `make torture` (1000 kills; every fault kind, longer): the observer reads
the daemon's own report of each commit and confirmation from a pipe, kills it with SIGKILL
at random moments, and checks the journal on disk afterwards.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tools import torture


def test_kill_9_at_random_points_loses_nothing_confirmed(tmp_path: Path) -> None:
    r = torture.kill_torture(12, 5, tmp_path, max_run_s=0.5)
    assert r.failures == []
    assert r.kills == 12 and r.confirmed > 50
    # The kills landed while the journal was busy: it holds several segments and seals.
    assert r.seals > 0


@pytest.mark.skipif(shutil.which("cc") is None, reason="the fault shim needs a C compiler")
@pytest.mark.parametrize(("op", "nth", "times"), [("fsync", 40, 6), ("write", 60, 10)])
def test_io_errors_are_shown_confirm_nothing_and_are_caught_up(tmp_path: Path, op: str, nth: int,
                                                                times: int) -> None:
    r = torture.eio(tmp_path, op, nth=nth, times=times)
    assert r.problems == []
    assert r.notices[0] == "Log not saved: tell nurse" and r.notices[-1] == "-"
    assert r.faults >= 1 and r.cleared >= 1


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0), reason="mounting a tmpfs needs root")
def test_a_disk_that_really_fills_up(tmp_path: Path) -> None:
    r = torture.enospc(tmp_path)
    assert r.problems == []
    # A full disk may let a write through now and then (a checkpoint lets the WAL start over in
    # space it already has), so the fault can clear and return while the disk is full; it must
    # be shown, and be cleared at the end.
    assert r.faults >= 1 and r.cleared == r.faults
    assert r.notices[0] == "Log not saved: tell nurse" and r.notices[-1] == "-"


def test_the_observer_notices_a_confirmation_before_its_commit() -> None:
    seen = torture.parse(b"READY 1 x\nC 2 h prompt s\nSHOWN done-chime -\nC 3 h done s\n")
    assert torture.check_confirmations(seen) == ["'done-chime' shown before any done or extra record was committed"]
    # An extra session (asked for by the patient) ends with the same chime, after its own record.
    extra = torture.parse(b"READY 1 x\nC 2 h press s\nC 3 h extra s\nSHOWN done-chime -\nSHOWN done-screen -\n")
    assert torture.check_confirmations(extra) == []
