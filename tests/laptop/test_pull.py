"""``bedside pull`` and ``bedside set-time`` against a running unit over real pty pairs.

The unit is either ``bedside simulate --serial`` in a subprocess (linked to the laptop's
pty by socat, as two real serial ports), or the daemon in a thread behind the test's own
``Cable``, which can be pulled mid-transfer and can run at a UART's speed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedside import secret
from bedside.core import config
from bedside.journal.journal import Journal
from bedside.laptop import pull
from bedside.laptop.client import SerialTransport
from bedside.link import batch
from bedside.report import model as report
from bedside.unit import simulate
from tests.conftest import ROOT
from tests.rigs.procs import child
from tests.rigs.serial_rig import SECRET, Cable, RunningUnit, cheap_ward, unit_with_days, wait_for

BEDSIDE = [sys.executable, "-m", "bedside"]
CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


@pytest.fixture(scope="module")
def ten_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A unit with ten days of its default regimen behind it (made once, copied by each test)."""
    return unit_with_days(tmp_path_factory.mktemp("template") / "unit", local("2026-11-14T06:00"),
                          local("2026-11-24T06:00"))


@pytest.fixture
def unit_data(ten_days: Path, tmp_path: Path) -> Path:
    d = tmp_path / "unit"
    shutil.copytree(ten_days, d)
    return d


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    f = tmp_path / "secret.txt"
    f.write_text(SECRET + "\n")
    return f


def export_lines(data: Path) -> list[str]:
    j = Journal(data, CFG.tz, "reader", readonly=True)
    try:
        return [batch.export_line(r) for r in j.records()]
    finally:
        j.close()


def copy_lines(out: Path) -> list[str]:
    return (out / ".bedside" / "ward7-bed12" / "records.jsonl").read_text().splitlines()


def bedside(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    return subprocess.run([*BEDSIDE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def socat_ports(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two serial ports joined back to back, both real ptys (what a USB cable gives two computers)."""
    a, b = tmp_path / "unit-tty", tmp_path / "laptop-tty"
    with child(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"], stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL):
        wait_for(lambda: a.exists() and b.exists(), what="socat's ptys")
        yield a, b


@pytest.fixture
def simulated_unit(unit_data: Path, socat_ports: tuple[Path, Path]) -> Iterator[subprocess.Popen[str]]:
    """``bedside simulate --headless --speed 60 --serial PORT``: the unit's own command, in real time x60."""
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    with child([*BEDSIDE, "simulate", "--headless", "--data", str(unit_data), "--start",
                "2026-11-24T06:00", "--speed", "60", "--serial", str(socat_ports[0])], env=env) as p:
        assert p.stderr is not None
        line = p.stderr.readline()
        assert "serial link open" in line, line
        yield p
        if p.poll() is None:
            p.send_signal(signal.SIGINT)       # Ctrl-C: a clean stop, even where SIGINT was ignored
            p.wait(10)


def test_pull_from_the_simulator_then_only_what_is_new(simulated_unit: subprocess.Popen[str],
                                                       socat_ports: tuple[Path, Path], unit_data: Path,
                                                       secret_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    laptop = str(socat_ports[1])
    r = bedside("pull", "--port", laptop, "--out", str(out), "--secret-file", str(secret_file))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()
    assert first[0].startswith("Unit ward7-bed12 (bedside ") and "new records (1-" in first[0]
    assert "chain verified" in first[0]
    assert "All sessions: sessions per day, done / missed (of due)" in r.stdout
    # Nobody admitted for ten days: the default regimen stepped down to the routine on day 3.
    assert "Mon 2026-11-23    0 done    2 missed" in r.stdout
    assert "Traceback" not in r.stderr
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == ["ward7-bed12-journal.jsonl", "ward7-bed12-report.html", "ward7-bed12-sessions.csv"]
    assert first[1].startswith("Export: ") and "FAIL" not in first[1]
    earlier = tmp_path / "first-export.jsonl"
    shutil.copy(out / "ward7-bed12-journal.jsonl", earlier)
    time.sleep(1.5)              # a minute and a half of the unit's day
    r2 = bedside("pull", "--port", laptop, "--out", str(out), "--secret-file", str(secret_file))
    assert r2.returncode == 0, r2.stderr
    held = int(first[0].split("new records (1-")[1].split(")")[0])
    assert f"new records ({held + 1}-" in r2.stdout.splitlines()[0]
    # The journal's own verifier accepts the export, and as an extension of the first one.
    v = bedside("log", "verify", str(out / "ward7-bed12-journal.jsonl"), "--extends", str(earlier))
    assert v.returncode == 0, v.stdout + v.stderr
    simulated_unit.send_signal(signal.SIGINT)
    simulated_unit.wait(10)
    unit = export_lines(unit_data)
    mine = copy_lines(out)
    assert mine == unit[:len(mine)] and len(mine) >= held
    exports = [json.loads(x) for x in unit if '"type":"export"' in x]
    assert next((e["from_seq"], e["to_seq"], e["via"]) for e in exports) == (1, held, "serial")
    # The export file: a header and the records, as the report and verification read it.
    loaded = report.load(out / "ward7-bed12-journal.jsonl")
    assert loaded.header is not None and loaded.header["head"]["seq"] == len(mine)
    assert [batch.export_line(x) for x in loaded.records] == mine
    assert report.make(loaded.records, header=loaded.header).verdict.ok
    assert "session,day,kind" in (out / "ward7-bed12-sessions.csv").read_text()


def test_wrong_secret_and_no_unit(socat_ports: tuple[Path, Path], simulated_unit: subprocess.Popen[str],
                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("not the ward secret\n")
    r = bedside("pull", "--port", str(socat_ports[1]), "--out", str(tmp_path / "o" / "new"), "--secret-file",
                str(bad))
    assert r.returncode == 4
    assert "not accepted (4 attempts left" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()                 # a failed pull leaves no empty folder behind
    r = bedside("pull", "--port", str(tmp_path / "ttyNOPE"), "--out", str(tmp_path / "o"), "--secret-file", str(bad))
    assert r.returncode == 1 and "There is no port called" in r.stderr and "cable plugged in" in r.stderr
    assert not (tmp_path / "o").exists()
    r = bedside("pull", "--port", "auto", "--out", str(tmp_path / "o"), "--secret-file", str(bad))
    assert r.returncode == 1 and not (tmp_path / "o").exists(), r.stderr


def test_a_pull_interrupted_by_unplugging_carries_on_when_plugged_back(unit_data: Path, tmp_path: Path) -> None:
    cable = Cable(tmp_path, baud=115200).plug()
    out = tmp_path / "out"
    said: list[str] = []
    try:
        with RunningUnit(unit_data, cable.unit_path, local("2026-11-24T06:00"),
                         ward=cheap_ward(unit_data, n=secret.N)) as u:
            def replug() -> None:
                wait_for((out / ".bedside" / "ward7-bed12" / "records.jsonl").exists, what="a first batch")
                cable.unplug()
                time.sleep(0.5)
                cable.plug()

            threading.Thread(target=replug, daemon=True).start()
            got = pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                            reconnect_s=20, say=said.append, progress_out=io.StringIO())
            assert any("Connection lost" in m and "records are safe on this laptop" in m for m in said)
            assert got.first_new == 1
            unit_head = u.on_loop(lambda now: u.sim.journal.head())
    finally:
        cable.unplug()
    mine = copy_lines(out)
    assert mine == export_lines(unit_data)[:len(mine)]
    assert json.loads(mine[-1])["seq"] >= got.head[0] and unit_head[0] >= got.head[0]


def test_an_interrupted_pull_resumes_in_the_next_run(unit_data: Path, tmp_path: Path) -> None:
    cable = Cable(tmp_path, baud=115200).plug()
    out = tmp_path / "out"
    try:
        with RunningUnit(unit_data, cable.unit_path, local("2026-11-24T06:00"),
                         ward=cheap_ward(unit_data, n=secret.N)) as u:
            def cut() -> None:
                wait_for((out / ".bedside" / "ward7-bed12" / "records.jsonl").exists, what="a first batch")
                cable.unplug()

            threading.Thread(target=cut, daemon=True).start()
            with pytest.raises(pull.PullError, match=r"interrupted at record \d+; run the same command again"):
                pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                          reconnect_s=0.5, say=lambda m: None, progress_out=io.StringIO())
            partial = copy_lines(out)
            assert partial and partial == export_lines(unit_data)[:len(partial)]
            cable.plug()
            wait_for(lambda: u.link is not None and u.link.connections == 2, what="the unit to open its port again")
            got = pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                            progress_out=io.StringIO())
            assert got.resumed_from == len(partial) and got.first_new == len(partial) + 1
    finally:
        cable.unplug()
    whole = copy_lines(out)
    assert whole[:len(partial)] == partial and whole == export_lines(unit_data)[:len(whole)]
    _files, summary, verdict = pull.write_outputs(out, got)
    assert verdict.ok, verdict.report()
    assert f"continuing an interrupted download from record {len(partial) + 1}" in summary[0]


def test_a_shortened_or_replaced_journal_is_reported(unit_data: Path, tmp_path: Path, secret_file: Path) -> None:
    earlier = tmp_path / "earlier"
    shutil.copytree(unit_data, earlier)
    other = tmp_path / "other"
    shutil.copytree(unit_data, other)
    # The unit goes on for a day after the copies were taken, so the earlier journal is clearly shorter.
    sim = simulate.build(CFG, unit_data, local("2026-11-24T06:00"))
    sim.unit.run(until=local("2026-11-25T06:00"))
    sim.close()
    cable = Cable(tmp_path).plug()
    out = tmp_path / "out"
    try:
        with RunningUnit(unit_data, cable.unit_path, local("2026-11-25T06:00"), ward=cheap_ward(unit_data, n=secret.N)):
            pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                      progress_out=io.StringIO())
        held = copy_lines(out)
        # The unit now runs on the journal as it was before: the newest records are gone.
        with RunningUnit(earlier, cable.unit_path, local("2026-11-24T05:00"), ward=cheap_ward(earlier, n=secret.N)), \
                pytest.raises(pull.Tampered, match="records were removed or the journal was replaced"):
            pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                      progress_out=io.StringIO())
        # The same earlier journal, grown past the copy along another path: its records do not follow on.
        sim = simulate.build(CFG, other, local("2026-11-24T06:00"))
        sim.unit.run(until=local("2026-11-25T18:00"))
        sim.close()
        with RunningUnit(other, cable.unit_path, local("2026-11-25T18:00"), ward=cheap_ward(other, n=secret.N)), \
                pytest.raises(pull.Tampered, match="replaced or altered"):
            pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                      progress_out=io.StringIO())
    finally:
        cable.unplug()
    assert copy_lines(out) == held            # nothing of the other journals was mixed in


def test_set_time_from_the_laptop_with_a_press(unit_data: Path, tmp_path: Path, secret_file: Path) -> None:
    cable = Cable(tmp_path).plug()
    try:
        with contextlib.ExitStack() as stack, RunningUnit(unit_data, cable.unit_path, local("2026-11-24T06:00"),
                                                          ward=cheap_ward(unit_data, n=secret.N)) as u:
            p = stack.enter_context(child([*BEDSIDE, "set-time", "--port", str(cable.laptop_path),
                                           "--secret-file", str(secret_file)]))
            wait_for(lambda: type(u.sim.unit.out.display._screen).__name__ == "Confirm", timeout=20,
                     what="the confirmation screen")
            u.press()
            stdout, stderr = p.communicate(timeout=20)
            assert p.returncode == 0, stderr
            assert "Press its button within 60 s" in stderr
            assert "Unit ward7-bed12: clock was 2026-11-24 06:00" in stdout
            unit_now = u.on_loop(lambda now: now.wall)
            assert abs((unit_now - datetime.now(UTC)).total_seconds()) < 5
    finally:
        cable.unplug()
    recs = [json.loads(x) for x in export_lines(unit_data)]
    assert [r["action"] for r in recs if r["type"] == "press"][-1] == "confirm"


def test_set_time_without_a_press_changes_nothing(unit_data: Path, tmp_path: Path, secret_file: Path) -> None:
    cable = Cable(tmp_path).plug()
    try:
        # 30x: the minute to press passes in two seconds.
        with RunningUnit(unit_data, cable.unit_path, local("2026-11-24T06:00"), ward=cheap_ward(unit_data, n=secret.N),
                         speed=30) as u:
            r = bedside("set-time", "--port", str(cable.laptop_path), "--secret-file", str(secret_file))
            assert r.returncode == 5 and "the clock was not changed: nobody pressed the button in time" in r.stderr
            assert u.on_loop(lambda now: now.wall) < local("2026-11-24T07:00")
    finally:
        cable.unplug()
    recs = [json.loads(x) for x in export_lines(unit_data)]
    assert [r["reason"] for r in recs if r["type"] == "change_declined"] == ["timeout"]
    assert not [r for r in recs if r["type"] == "clock_set" and r.get("source") != "detected"]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_only_for_a_transfer_over_a_second() -> None:
    quick = _Tty()
    bar = pull.Progress(200, quick)          # the default: nothing before a second has passed
    bar.update(100)
    bar.finish()
    assert quick.getvalue() == ""
    slow = _Tty()
    bar = pull.Progress(200, slow, after_s=0.0)
    bar.update(50)
    bar.update(200)
    bar.finish()
    assert "Downloading [#######" in slow.getvalue() and "200/200 records" in slow.getvalue()
    assert slow.getvalue().endswith("\n")
    piped = io.StringIO()                    # not a terminal: no bar at all
    bar = pull.Progress(200, piped, after_s=0.0)
    bar.update(100)
    assert piped.getvalue() == ""


def test_pull_checks_every_seal_with_the_hospitals_key(unit_data: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "hospital-key.json"
    r = bedside("keys", "init", "--data", str(unit_data), "--out", str(key_file))
    assert r.returncode == 0, r.stderr
    cable = Cable(tmp_path).plug()
    out = tmp_path / "out"
    try:
        with RunningUnit(unit_data, cable.unit_path, local("2026-11-24T06:00"), ward=cheap_ward(unit_data, n=secret.N)):
            pass                      # a clean stop seals what this run wrote
        with RunningUnit(unit_data, cable.unit_path, local("2026-11-24T07:00"), ward=cheap_ward(unit_data, n=secret.N)):
            got = pull.pull(lambda: SerialTransport(str(cable.laptop_path)), out, lambda unit, n: SECRET,
                            progress_out=io.StringIO())
    finally:
        cable.unplug()
    from bedside.journal import seal

    _files, summary, verdict = pull.write_outputs(out, got, seal.load_hospital_key(key_file))
    assert verdict.ok and verdict.seals_checked >= 1, verdict.report()
    assert "seals checked with the hospital's key" in summary[1]
