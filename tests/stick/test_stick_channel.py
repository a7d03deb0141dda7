"""The running daemon and the export process together: the real loop in a thread (mock pins,
virtual clock at real speed), its stick channel on a real Unix socket, and `bedside stick
export` as a real subprocess onto a real FAT stick. The daemon records and shows every
outcome; the patient's prompt carries on through it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedside.core import screens as sc
from bedside.unit import host, simulate
from tests.conftest import DATA, journal_records
from tests.rigs.cli import run
from tests.rigs.procs import child
from tests.rigs.serial_rig import wait_for
from tests.rigs.stick_daemon import Daemon, export
from tests.rigs.stick_rig import SECRET, FatStick, needs_fat, unit_data

pytestmark = needs_fat

@pytest.fixture
def data(week: Path, tmp_path: Path) -> Path:
    d = unit_data(week, tmp_path)
    # A commissioned unit: its journal is sealed, and the hospital holds the key that checks it.
    r = run("keys", "init", "--data", str(d), "--out", str(tmp_path / "hospital-key.json"),
            "--config", str(DATA / "week.toml"))
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture
def fat(tmp_path: Path) -> Iterator[FatStick]:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    with FatStick(tmp_path / "stick") as s:
        s.mount()
        assert run("stick", "prepare", str(s.mnt), "--secret-file", str(secret_file)).returncode == 0
        yield s


def test_the_daemon_records_and_shows_an_export_and_prompting_carries_on(
        tmp_path: Path, data: Path, fat: FatStick) -> None:
    sock = tmp_path / "stick.sock"
    # Berlin, 1 December 10:00:05: the 10:00 hourly session has just been offered.
    with Daemon(data, sock, "2026-12-01T10:00:05") as d:
        wait_for(lambda: isinstance(d.screens[-1], sc.Prompt), what="the prompt")
        before = journal_records(data)
        r = export(fat.mnt, data, sock)
        assert r.returncode == 0 and "recorded by the unit" in r.stdout, r.stdout + r.stderr
        wait_for(lambda: d.stick_screens()[-1:] == [sc.Stick("done", "Export done", "Remove the stick")],
                 what="the done screen")
        assert d.stick_screens() == [sc.Stick("busy", "Exporting", "Keep stick in"),
                                     sc.Stick("done", "Export done", "Remove the stick")]
        # The prompt is still up behind the nurse's screen: a press puts the screen away and the
        # next one starts the session; the light said "due" throughout.
        state = d.sim.unit.state
        assert state.active is not None and state.active.session.id == "2026-12-01T10:00 hourly"
        assert d.leds[-1] == "due"
        d.sim.finger.keys.put(0.3)
        simulate.wake(d.sim.unit)
        wait_for(lambda: isinstance(d.screens[-1], sc.Prompt), what="the prompt again")
    added = journal_records(data)[len(before):]
    types = [x["type"] for x in added]
    # Sealed first (so the export ends with a seal), then the export itself.
    assert types[:2] == ["seal", "export"] and set(types[2:]) <= {"press", "stop", "seal"}, types
    rec = added[1]
    assert rec["via"] == "stick" and rec["to_seq"] == added[0]["seq"] and rec["to_hash"] == added[0]["hash"]
    assert json.loads((data / "exported.json").read_text())["seq"] == rec["to_seq"]
    fat.unmount()
    r = fat.fsck()
    assert r.returncode == 0, r.stdout
    [jsonl] = [c for p, c in fat.files().items() if p.endswith("journal.jsonl")]
    (tmp_path / "copy.jsonl").write_bytes(jsonl)
    v = run("log", "verify", str(tmp_path / "copy.jsonl"), "--key", str(tmp_path / "hospital-key.json"))
    assert v.returncode == 0 and "seals checked with the hospital's key" in v.stdout, v.stdout


def test_the_daemon_records_and_shows_a_refused_stick(tmp_path: Path, data: Path) -> None:
    sock = tmp_path / "stick.sock"
    with FatStick(tmp_path / "plain") as s, Daemon(data, sock, "2026-12-01T11:30") as d:
        s.mount()
        r = export(s.mnt, data, sock)
        assert r.returncode == 3, r.stdout + r.stderr
        wait_for(lambda: len(d.stick_screens()) == 2, what="the refusal on screen")
        assert d.stick_screens()[-1] == sc.Stick("problem", "Stick not authorised", "Use a prepared ward stick")
    refused = [x for x in journal_records(data) if x["type"] == "export_refused"]
    assert [(x["reason"], x["via"]) for x in refused] == [("not_prepared", "stick")]


def test_an_export_process_that_dies_is_recorded_as_interrupted(tmp_path: Path, data: Path) -> None:
    sock = tmp_path / "stick.sock"
    with Daemon(data, sock, "2026-12-01T11:30") as d:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(sock))
        c.sendall(b'{"v": 1, "op": "begin", "device": "sda1"}\n')
        assert json.loads(c.makefile("rb").readline())["ok"] is True
        wait_for(lambda: d.stick_screens()[-1:] == [sc.Stick("busy", "Exporting", "Keep stick in")])
        c.close()                                  # killed before it said how it ended
        wait_for(lambda: d.stick_screens()[-1].state == "problem", what="the interrupted export on screen")
        assert d.stick_screens()[-1].title == "Export stopped"
    [rec] = [x for x in journal_records(data) if x["type"] == "export_failed"]
    assert rec["reason"] == "interrupted"


def test_nonsense_on_the_channel_is_answered_and_changes_nothing(tmp_path: Path, data: Path) -> None:
    sock = tmp_path / "stick.sock"
    with Daemon(data, sock, "2026-12-01T11:30") as d:
        before = len(journal_records(data))
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(sock))
        f = c.makefile("rwb")
        for line in (b"hello\n", b'{"v": 2, "op": "begin"}\n', b'{"v": 1, "op": "end", "stage": "done"}\n',
                     b"[1]\n", b"[" * 50_000 + b"\n"):       # nested past the parser's depth: still an answer
            f.write(line)
            f.flush()
            assert json.loads(f.readline())["ok"] is False
        # An export cannot claim records the journal does not hold.
        f.write(b'{"v": 1, "op": "begin"}\n')
        f.flush()
        assert json.loads(f.readline())["ok"] is True
        f.write(b'{"v": 1, "op": "end", "stage": "done", "details": {"to_seq": 99999, "to_hash": "00"}}\n')
        f.flush()
        assert json.loads(f.readline())["ok"] is True
        c.close()
        wait_for(lambda: d.stick_screens()[-1:] != [] and d.stick_screens()[-1].state == "problem")
    added = journal_records(data)[before:]
    assert [(x["type"], x.get("reason")) for x in added if x["type"].startswith("export")] == \
        [("export_failed", "journal")]
    assert not (data / "exported.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another user needs root to switch to it")
def test_only_root_and_the_daemons_own_user_may_report(tmp_path: Path, data: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="bedside-stick-"))      # a folder another user can reach
    shared.chmod(0o777)
    sock = shared / "stick.sock"
    with Daemon(data, sock, "2026-12-01T11:30") as d:
        sock.chmod(0o666)
        code = ("import socket,sys\nc=socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])\n"
                "try:\n c.sendall(b'{\"v\": 1, \"op\": \"begin\"}\\n'); print(repr(c.recv(100)))\n"
                "except OSError: print('closed')")
        r = subprocess.run(["/usr/bin/python3", "-c", code, str(sock)], user=65534, group=65534, capture_output=True,
                           text=True, timeout=30, cwd="/")
        assert r.stdout.strip() in ("b''", "closed"), r.stdout + r.stderr         # closed without an answer
        assert any("refused a connection from uid 65534" in m for m in d.logs)
        assert d.stick_screens() == []
    shared.rmdir()


def test_a_running_unit_that_does_not_listen_gets_no_unrecorded_export(tmp_path: Path, data: Path,
                                                                        fat: FatStick) -> None:

    lock = host.lock_data_dir(data)         # as the daemon holds it
    try:
        before = journal_records(data)
        r = export(fat.mnt, data, tmp_path / "nobody-listens.sock")
        assert r.returncode == 2 and "does not answer" in r.stderr and "nothing was exported" in r.stderr
    finally:
        lock.close()
    assert journal_records(data) == before
    fat.unmount()
    assert [p for p in fat.files() if p.count("/") == 2] == []


def test_bedside_simulate_listens_for_sticks(tmp_path: Path, data: Path, fat: FatStick) -> None:
    """The whole path in processes of their own: the simulator (the daemon's loop) and the export."""
    sock = tmp_path / "sim.sock"
    trace = tmp_path / "trace.jsonl"
    with child([sys.executable, "-m", "bedside", "simulate", "--headless", "--speed", "1",
                "--config", str(DATA / "week.toml"), "--data", str(data), "--start", "2026-12-01T11:30",
                "--days", "1", "--stick-socket", str(sock), "--trace", str(trace)]) as sim:
        try:
            wait_for(sock.exists, timeout=30, what="the simulator's stick channel")
            r = export(fat.mnt, data, sock)
            assert r.returncode == 0 and "recorded by the unit" in r.stdout, r.stdout + r.stderr
        finally:
            sim.terminate()
            out, err = sim.communicate(timeout=30)
    assert sim.returncode == 0 and "Traceback" not in err, err
    shown = [json.loads(line) for line in trace.read_text().splitlines()]
    sticks = [(x["state"], x["title"]) for x in shown if x.get("screen") == "Stick"]
    assert sticks == [("busy", "Exporting"), ("done", "Export done")]
    assert "1 export" in out and not sock.exists()
