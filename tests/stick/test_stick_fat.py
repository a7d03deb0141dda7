"""Exports onto real FAT file systems (mkfs.vfat images mounted with fusefat), checked with
fsck.vfat after unmounting: a prepared stick, sticks that are not the ward's, a full stick, a
read-only one, and sticks pulled out, detached or stopped at every step and at random points.

The unit's daemon is not running in these tests, so the export records itself in the
journal (with the daemon, test_stick_channel.py); what matters here is what reaches the
stick and the unit: never a partial file under its final name, nothing lost on the unit,
exactly one new record saying what happened.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from bedside.stick import export as stick_export
from bedside.stick import files as stick_files
from bedside.stick.export import Outcome
from bedside.unit import host
from bedside.unit.offline import OfflineWriter
from tests.conftest import DATA, journal_records
from tests.rigs.cli import run
from tests.rigs.procs import child
from tests.rigs.stick_rig import OTHER_SECRET, SECRET, FatStick, needs_fat, unit_data, windows_name

pytestmark = needs_fat

CFG = host.load(DATA / "week.toml")
EXPORT_FILES = ("journal.jsonl", "sessions.csv", "report.html")


@pytest.fixture
def data(week: Path, tmp_path: Path) -> Path:
    return unit_data(week, tmp_path)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    f = tmp_path / "secret.txt"
    f.write_text(SECRET + "\n")
    return f


@pytest.fixture
def fat(tmp_path: Path, secret_file: Path) -> Iterator[FatStick]:
    """A 32 MB FAT stick prepared for the ward (by the command a ward's engineer uses)."""
    with FatStick(tmp_path / "stick") as s:
        s.mount()
        r = run("stick", "prepare", str(s.mnt), "--secret-file", str(secret_file), "--label", "Ward 7 stick 1")
        assert r.returncode == 0, r.stderr
        yield s


def export_cmd(mnt: Path, data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("stick", "export", str(mnt), "--data", str(data), "--socket", str(data.parent / "no-daemon.sock"),
               "--config", str(DATA / "week.toml"), *extra)


def clean(s: FatStick) -> None:
    r = s.fsck()
    assert r.returncode == 0, r.stdout + r.stderr


def new_records(before: list[dict[str, Any]], data: Path) -> list[dict[str, Any]]:
    """The unit's journal is what it was, plus the records the export added."""
    after = journal_records(data)
    assert after[:len(before)] == before
    return after[len(before):]


# --- a prepared stick ------------------------------------------------------------------

def test_a_prepared_stick_receives_the_export_report_and_csv(fat: FatStick, data: Path) -> None:
    before = journal_records(data)
    r = export_cmd(fat.mnt, data)
    assert r.returncode == 0, r.stderr
    assert "Exported" in r.stdout and "recorded in the journal" in r.stdout and "Traceback" not in r.stderr
    fat.unmount()
    clean(fat)
    files = fat.files()
    [folder] = {p.rsplit("/", 1)[0] for p in files if p.count("/") == 2}
    assert folder.startswith("Bedside/ward7-bed12_20")
    assert sorted(files) == sorted([f"{folder}/{n}" for n in EXPORT_FILES]
                                   + ["Bedside/README.txt", "Bedside/authorisation.json"])
    assert all(windows_name(part) for p in files for part in p.split("/"))

    # The raw export verifies as the journal's own export does, and holds every record.
    jsonl = fat.image.parent / "journal.jsonl"
    jsonl.write_bytes(files[f"{folder}/journal.jsonl"])
    v = run("log", "verify", str(jsonl))
    assert v.returncode == 0 and v.stdout.startswith("OK: chain intact"), v.stdout
    assert len(files[f"{folder}/journal.jsonl"].splitlines()) == len(before) + 1     # the header line
    html = files[f"{folder}/report.html"].decode()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>") and "ward7-bed12" in html
    rows = list(csv.reader(io.StringIO(files[f"{folder}/sessions.csv"].decode("utf-8-sig"))))
    assert rows[0][:3] == ["session", "day", "kind"] and len(rows) > 100

    # One new record on the unit, naming what went where; the export is noted for retention.
    [rec] = new_records(before, data)
    assert rec["type"] == "export" and rec["via"] == "stick" and rec["folder"] == folder
    assert (rec["to_seq"], rec["to_hash"], rec["from_seq"]) == (before[-1]["seq"], before[-1]["hash"], 1)
    assert rec["files"] == list(EXPORT_FILES) and rec["records"] == len(before)
    auth = files["Bedside/authorisation.json"].decode()
    assert rec["stick"] in auth
    marker = (data / "exported.json").read_text()
    assert f'"seq": {before[-1]["seq"]}' in marker and folder in marker


def test_a_second_export_gets_a_folder_of_its_own(fat: FatStick, data: Path) -> None:
    for _ in range(2):
        assert export_cmd(fat.mnt, data).returncode == 0
    fat.unmount()
    clean(fat)
    folders = {p.rsplit("/", 1)[0] for p in fat.files() if p.count("/") == 2}
    assert len(folders) == 2       # the same minute's second export goes into NAME_2


# --- sticks that get nothing -------------------------------------------------------------

def test_an_unprepared_stick_gets_nothing(tmp_path: Path, data: Path) -> None:
    with FatStick(tmp_path / "plain") as s:
        s.mount()
        (s.mnt / "holiday.jpg").write_bytes(b"\xff\xd8 a photo")
        s.unmount()
        was = s.files()
        s.mount()
        before = journal_records(data)
        r = export_cmd(s.mnt, data)
        assert r.returncode == 3 and "refused" in r.stdout and "not prepared" in r.stdout, r.stdout + r.stderr
        s.unmount()
        clean(s)
        assert s.files() == was
    [rec] = new_records(before, data)
    assert (rec["type"], rec["reason"], rec["via"]) == ("export_refused", "not_prepared", "stick")
    assert "stick" not in rec


def test_another_wards_stick_gets_nothing(tmp_path: Path, data: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text(OTHER_SECRET)
    with FatStick(tmp_path / "other") as s:
        s.mount()
        assert run("stick", "prepare", str(s.mnt), "--secret-file", str(other)).returncode == 0
        s.unmount()
        was = s.files()
        s.mount()
        before = journal_records(data)
        r = export_cmd(s.mnt, data)
        assert r.returncode == 3 and "another ward" in r.stdout
        s.unmount()
        assert s.files() == was
    [rec] = new_records(before, data)
    assert (rec["type"], rec["reason"]) == ("export_refused", "other_ward")


def test_a_unit_without_a_ward_secret_exports_to_no_stick(week: Path, tmp_path: Path, fat: FatStick) -> None:
    data = unit_data(week, tmp_path / "unset", value=None)
    r = export_cmd(fat.mnt, data)
    assert r.returncode == 3 and "no ward secret" in r.stdout
    assert journal_records(data)[-1]["reason"] == "no_ward_secret"


def test_a_full_stick_gets_nothing_and_the_unit_loses_nothing(tmp_path: Path, data: Path,
                                                              secret_file: Path) -> None:
    with FatStick(tmp_path / "small", size_mb=2) as s:
        s.mount()
        assert run("stick", "prepare", str(s.mnt), "--secret-file", str(secret_file)).returncode == 0
        free = os.statvfs(s.mnt).f_bavail * os.statvfs(s.mnt).f_frsize
        (s.mnt / "photos.bin").write_bytes(b"p" * (free - 300 * 1024))
        s.unmount()
        was = s.files()
        s.mount()
        before = journal_records(data)
        r = export_cmd(s.mnt, data)
        assert r.returncode == 1 and "stick is full" in r.stdout, r.stdout + r.stderr
        s.unmount()
        clean(s)
        assert s.files() == was
    [rec] = new_records(before, data)
    assert (rec["type"], rec["reason"]) == ("export_failed", "full") and "written" not in rec


def test_a_read_only_stick_gets_nothing(fat: FatStick, data: Path) -> None:
    fat.unmount()
    was = fat.files()
    fat.mount(read_only=True)
    before = journal_records(data)
    r = export_cmd(fat.mnt, data)
    assert r.returncode == 1 and "read-only" in r.stdout
    fat.unmount()
    clean(fat)
    assert fat.files() == was
    assert [(x["type"], x["reason"]) for x in new_records(before, data)] == [("export_failed", "read_only")]


def test_a_folder_that_is_not_a_mounted_stick_is_refused_before_anything(tmp_path: Path, data: Path) -> None:
    (tmp_path / "media" / "usb").mkdir(parents=True)
    before = journal_records(data)
    r = export_cmd(tmp_path / "media" / "usb", data)
    assert r.returncode == 2 and "not where a stick is mounted" in r.stderr
    assert list((tmp_path / "media" / "usb").iterdir()) == [] and journal_records(data) == before


def test_a_journal_of_more_events_than_a_page_lists_still_gets_its_report_saying_how_many_more(
        fat: FatStick, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal past what the report lists (a crafted one whose records are events of their own):
    the stick gets all three files; the report lists a stated number, says how many more there
    are and where to see them, and the export's record says nothing was left out."""
    from bedside.report import adherence

    with OfflineWriter(data) as writer:
        for i in range(12):
            writer.append("fault", {"part": "sensor", "problem": f"crafted fault {i}"})
    monkeypatch.setattr(adherence, "EVENTS_A_DAY", 3)
    before = journal_records(data)
    rec = stick_export.recorder(data, CFG, data.parent / "no-daemon.sock")
    outcome = stick_export.run(CFG, data, stick_export.HandMount(fat.mnt), rec)
    assert outcome.stage == "done", outcome.message
    [done] = new_records(before, data)[-1:]
    assert done["type"] == "export" and "report_left_out" not in done
    fat.unmount()
    files = fat.files()
    [folder] = {p.rsplit("/", 1)[0] for p in files if p.count("/") == 2}
    assert sorted(p.rsplit("/", 1)[1] for p in files if p.startswith(folder)) == [
        "journal.jsonl", "report.html", "sessions.csv"]
    page = files[f"{folder}/report.html"].decode()
    assert "more events this day are not listed" in page and "bedside log export" in page


# --- pulled out, filled up, detached, stopped ------------------------------------------------

class Attempts:
    """What the export tried to write: a file on the stick under its final name must be one of these, whole."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: dict[str, set[str]] = {}
        real = stick_files.write_file

        def write_file(dir_fd: int, name: str, data: bytes | Callable[[IO[str]], None]) -> None:
            if not isinstance(data, bytes):      # the raw export, written as it is read: its bytes, here
                buf = io.StringIO(newline="")
                data(buf)
                data = buf.getvalue().encode("utf-8")
            self.seen.setdefault(name, set()).add(hashlib.sha256(data).hexdigest())
            real(dir_fd, name, data)

        monkeypatch.setattr(stick_files, "write_file", write_file)

    def check(self, files: dict[str, bytes]) -> list[str]:
        """The export files found whole (a file under its final name that is not whole fails the test)."""
        whole = []
        for path, content in files.items():
            name = path.rsplit("/", 1)[-1]
            if path.count("/") == 2 and name in EXPORT_FILES:
                assert hashlib.sha256(content).hexdigest() in self.seen.get(name, set()), f"{path} is not whole"
                whole.append(path)
            elif path.count("/") == 2:
                assert name.startswith(".") and name.endswith(".tmp"), path
        return whole


def export_now(data: Path, mnt: Path, step: Callable[[str], None] = lambda what: None) -> Outcome:
    rec = stick_export.recorder(data, CFG, data.parent / "no-daemon.sock")
    return stick_export.run(CFG, data, stick_export.HandMount(mnt), rec, step=step)


@pytest.mark.parametrize("at", ["folder", "journal.jsonl", "sessions.csv", "report.html", "unmount"])
def test_a_stick_pulled_out_at_each_step(fat: FatStick, data: Path, monkeypatch: pytest.MonkeyPatch,
                                         at: str) -> None:
    attempts = Attempts(monkeypatch)
    before = journal_records(data)

    def step(what: str) -> None:
        if what == at:
            fat.pull()

    out = export_now(data, fat.mnt, step)
    fat.unmount()
    fat.repair()              # a pulled stick may need its file system repaired; that is all
    whole = {p.rsplit("/", 1)[-1] for p in attempts.check(fat.files())}
    [rec] = new_records(before, data)
    if at == "unmount" and out.stage == "done":
        # Pulled after every file was synced and renamed: the export is whole on the stick.
        assert rec["type"] == "export" and whole == set(EXPORT_FILES)
        return
    assert (out.stage, out.reason) == ("failed", "removed"), out
    assert (rec["type"], rec["reason"]) == ("export_failed", "removed")
    # What the record says was written whole, the stick holds whole.
    assert set(rec.get("written", [])) <= whole


def test_a_stick_that_fills_up_while_written(fat: FatStick, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = Attempts(monkeypatch)

    def step(what: str) -> None:
        if what == "sessions.csv":     # someone else's files take the room (another process)
            st = os.statvfs(fat.mnt)
            with open(fat.mnt / "filler.bin", "wb") as f:
                f.write(b"f" * (st.f_bavail * st.f_frsize - 4096))

    out = export_now(data, fat.mnt, step)
    assert (out.stage, out.reason) == ("failed", "full"), out
    assert out.details["written"] == ["journal.jsonl"]
    fat.unmount()
    clean(fat)
    assert [p.rsplit("/", 1)[1] for p in attempts.check(fat.files())] == ["journal.jsonl"]


def _random_cuts(fat: FatStick, data: Path, attempts: Attempts, n: int, seed: int,
                 cut: Callable[[FatStick], None], after: Callable[[FatStick], None]) -> list[str]:
    """Export ``n`` times, cutting the stick off at a random moment; the stick is checked every time."""
    rng = random.Random(seed)
    t0 = time.monotonic()
    export_now(data, fat.mnt)
    took = time.monotonic() - t0
    outcomes = []
    for _ in range(n):
        if fat.proc is None:
            fat.mount()
        timer = threading.Timer(rng.uniform(0, took * 1.2), cut, args=(fat,))
        timer.start()
        out = export_now(data, fat.mnt)
        timer.join()
        outcomes.append(out.stage if out.stage == "done" else out.reason)
        after(fat)
        # Nothing ever lands in the mount point's own folder, on the unit's card.
        assert list(fat.mnt.iterdir()) == []
        attempts.check(fat.files())
    return outcomes


def test_a_stick_pulled_out_at_random_moments(fat: FatStick, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = Attempts(monkeypatch)
    before = journal_records(data)

    def repaired(s: FatStick) -> None:
        s.unmount()
        s.repair()

    outcomes = _random_cuts(fat, data, attempts, int(os.environ.get("STICK_PULLS", "6")), 5, FatStick.pull, repaired)
    assert set(outcomes) <= {"done", "removed"}
    types = [(r["type"], r.get("reason")) for r in new_records(before, data)]
    # One record per export (the first one had the stick to itself), each saying what happened.
    assert types == [("export", None)] + [("export", None) if o == "done" else ("export_failed", "removed")
                                          for o in outcomes]


def test_a_stick_detached_at_random_moments(fat: FatStick, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lazy unmount takes the mount point away; the export, holding its folders open, either
    finishes on the detached file system (flushed when it lets go) or stops, and the stick's
    file system needs no repair either way."""
    attempts = Attempts(monkeypatch)

    def unmounted(s: FatStick) -> None:
        s.unmount()
        clean(s)

    outcomes = _random_cuts(fat, data, attempts, 4, 7, FatStick.detach, unmounted)
    assert set(outcomes) <= {"done", "removed", "io_error"}


def test_the_export_stopped_by_systemd_at_random_moments(fat: FatStick, data: Path) -> None:
    """SIGTERM (the stick's device went away, or the unit shuts down): whole files or none."""
    rng = random.Random(11)
    before = journal_records(data)
    codes = []
    for _ in range(3):
        with child([sys.executable, "-m", "bedside", "stick", "export", str(fat.mnt), "--data", str(data),
                    "--socket", str(data.parent / "none.sock"), "--config", str(DATA / "week.toml")]) as p:
            time.sleep(rng.uniform(0.3, 1.2))
            p.send_signal(signal.SIGTERM)
            _out, err = p.communicate(timeout=60)
        assert "Traceback" not in err, err
        codes.append(p.returncode)
    fat.unmount()
    clean(fat)
    files = fat.files()
    for path, content in files.items():
        if path.endswith("journal.jsonl"):
            check = fat.image.parent / "check.jsonl"
            check.write_bytes(content)
            assert run("log", "verify", str(check)).returncode == 0
        elif path.endswith("report.html"):
            assert content.rstrip().endswith(b"</html>")
    added = new_records(before, data)
    # Each run either was stopped before it began (nothing to record), or recorded what happened.
    assert all(r["type"] in ("export", "export_failed") for r in added)
    assert all(r.get("reason") in (None, "removed") for r in added)
    assert set(codes) <= {0, 1, -signal.SIGTERM, 2}
