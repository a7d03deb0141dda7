"""The command line as a person meets it: real subprocesses, real terminals."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.rigs.cli import BEDSIDE, run
from tests.rigs.procs import child, reap


def test_run_off_a_pi_explains_how_to_simulate(tmp_path: Path) -> None:
    r = run("run", "--data", str(tmp_path))
    assert r.returncode == 2
    assert "No Raspberry Pi hardware found" in r.stderr and "bedside simulate" in r.stderr
    assert "[hardware] board" in r.stderr and "--gpio-chip" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_fatal_reason_goes_to_the_journal_at_err(tmp_path: Path) -> None:
    """Under systemd standard error is journald's stream ($JOURNAL_STREAM): every line of the
    reason the daemon stopped carries <3> (err), so `journalctl -p warning` shows it; journald
    would file an unmarked line at info."""
    err = tmp_path / "stderr"
    with err.open("w") as f:
        st = os.fstat(f.fileno())
        e = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
        e["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        r = subprocess.run([*BEDSIDE, "run", "--data", str(tmp_path / "d"), "--config", str(tmp_path / "none.toml")],
                           stdout=subprocess.PIPE, stderr=f, text=True, timeout=60, env=e, cwd=ROOT,
                           stdin=subprocess.DEVNULL)
    lines = err.read_text().splitlines()
    assert r.returncode != 0 and lines, lines
    assert all(line.startswith("<3>") for line in lines), lines
    assert "<3>bedside: " in lines[0]


def _board_config(tmp_path: Path, board: str, chip: str) -> Path:
    """The shipped config with [hardware] board and gpio_chip set."""
    text = (ROOT / "config/bedside.toml").read_text()
    assert 'board = ""' in text and 'gpio_chip = ""' in text
    conf = tmp_path / "board.toml"
    text = text.replace('board = ""', f'board = "{board}"', 1)
    conf.write_text(text.replace('gpio_chip = ""', f'gpio_chip = "{chip}"', 1))
    return conf


def test_another_board_is_named_with_its_chip(tmp_path: Path) -> None:
    """Off a Pi, `bedside run` no longer stops at the device tree once the config names the
    board and its chip: it looks for that chip, and says which chips there are when it is not
    there (no such chip here, so the daemon stops at that, and not at the Pi check)."""
    conf = _board_config(tmp_path, "Test board", "no-such-chip")
    r = run("run", "--data", str(tmp_path / "d"), "--config", str(conf))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "No Raspberry Pi hardware found" not in r.stderr
    assert 'gpio_chip = "no-such-chip"' in r.stderr, r.stderr
    # A board named without its chip is refused by the config check, with what to add.
    c = run("config", "check", str(_board_config(tmp_path, "Test board", "")))
    assert c.returncode == 2 and "[hardware] gpio_chip" in c.stderr and "name its GPIO chip" in c.stderr, c.stderr


def test_config_check_accepts_the_shipped_files() -> None:
    for f in [ROOT / "config" / "bedside.toml", *sorted((ROOT / "config" / "examples").glob("*.toml"))]:
        r = run("config", "check", str(f))
        assert r.returncode == 0, r.stderr
        assert "OK" in r.stdout


def test_config_check_names_file_key_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[reminders]\nsnooze_minuts = 5\nmax_snoozes = 9\n[awake]\nstart = "7am"\n')
    r = run("config", "check", str(bad))
    assert r.returncode == 2
    assert str(bad) in r.stderr
    assert "[reminders] snooze_minuts: unknown key" in r.stderr
    assert "[reminders] max_snoozes: must be a whole number from 0 to 5, got 9" in r.stderr
    assert '[awake] start: must be a 24-hour time written "HH:MM"' in r.stderr
    assert "Traceback" not in r.stderr


def test_config_check_on_broken_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[unit\nid = 3")
    r = run("config", "check", str(bad))
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    r = run("config", "check", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_log_export_jsonl_and_csv(tmp_path: Path) -> None:
    data = tmp_path / "d"
    r = run("simulate", "--headless", "--start", "2026-11-24T06:55", "--until", "2026-11-24T08:00", "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert "Simulated unit ward7-bed12" in r.stdout
    j = run("log", "export", "--data", str(data))
    lines = j.stdout.splitlines()
    assert j.returncode == 0 and len(lines) >= 5
    import json

    header, *recs = [json.loads(x) for x in lines]
    assert header["bedside_export"] == 1 and header["unit"] == "ward7-bed12"
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert header["head"] == {"seq": recs[-1]["seq"], "hash": recs[-1]["hash"]}
    for rec in recs:
        assert {"seq", "time", "type", "hash", "prev", "boot", "mono_ms", "tq"} <= rec.keys()
        assert rec["time"].endswith("+00:00")
    prompt = next(r for r in recs if r["type"] == "prompt")
    assert prompt["session"] == "2026-11-24T07:00 hourly" and prompt["due"].startswith("2026-11-24T07:00:00")
    c = run("log", "export", "--data", str(data), "--format", "csv")
    rows = c.stdout.splitlines()
    assert rows[0] == "\ufeffseq,time,utc_offset,type,session,due,tq,details,hash"
    assert len(rows) == len(recs) + 1


def test_log_export_without_a_journal_is_a_clear_error(tmp_path: Path) -> None:
    r = run("log", "export", "--data", str(tmp_path / "empty"))
    assert r.returncode == 1 and "no journal" in r.stderr and "Traceback" not in r.stderr


def test_simulate_without_a_terminal_says_to_use_headless(tmp_path: Path) -> None:
    r = run("simulate", "--data", str(tmp_path))
    assert r.returncode == 2 and "--headless" in r.stderr


def test_simulate_bad_script_is_reported_with_its_line(tmp_path: Path) -> None:
    s = tmp_path / "s.txt"
    s.write_text("2026-11-24T09:00 press\n2026-11-24T09:05 squeeze\n")
    r = run("simulate", "--headless", "--script", str(s), "--data", str(tmp_path / "d"))
    assert r.returncode == 2 and "line 2" in r.stderr


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_interactive_simulator_in_a_real_terminal(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 140, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    env["TERM"] = "xterm"
    proc = subprocess.Popen([*BEDSIDE, "simulate", "--start", "2026-11-24T06:59:58", "--speed", "1", "--data",
                             str(tmp_path / "d")], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    try:
        first = _read_until(master, b"LED", 20)
        assert b"[space] press" in first and b"06:59" in first
        # Within a few seconds the 07:00 prompt comes up: LED due and the chime noted.
        later = _read_until(master, b"due (blinking)", 15)
        assert b"prompt at 07:00" in later
        os.write(master, b" ")
        guide = _read_until(master, b"\x1b[H", 5)
        assert guide
        os.write(master, b"q")
        rest = _read_until(master, b"Journal", 15)
        proc.wait(timeout=15)
    finally:
        reap(proc)
        os.close(master)
    assert proc.returncode == 0
    assert b"Simulated unit ward7-bed12" in rest
    assert b"press" in rest and b"start" in rest


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["simulate", "--help"]])
def test_help_and_version(args: list[str]) -> None:
    r = run(*args)
    assert r.returncode == 0 and "bedside" in r.stdout


def test_piping_into_head_is_not_an_error(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run("simulate", "--headless", "--start", "2026-11-24T06:55", "--until", "2026-11-24T09:00",
               "--data", str(data)).returncode == 0
    e = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    r = subprocess.run(f"{sys.executable} -m bedside log export --data {data} | head -n 1", shell=True,
                       capture_output=True, text=True, env=e, cwd=ROOT, timeout=60)
    assert r.stdout.count("\n") == 1 and "bedside_export" in r.stdout
    assert "error" not in r.stderr.lower()


@pytest.mark.parametrize(("sig", "ignored"), [("SIGTERM", False), ("SIGINT", False), ("SIGINT", True),
                                           ("SIGHUP", True)])
def test_a_signal_stops_a_simulation_cleanly(tmp_path: Path, sig: str, ignored: bool) -> None:
    """SIGTERM (systemd), Ctrl-C, a closed terminal; also to a simulator started as nohup and
    background jobs start it (SIGINT and SIGHUP ignored): a clean stop with a ``stop`` record."""
    import json
    import signal

    data = tmp_path / "d"
    e = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}

    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    with child([*BEDSIDE, "simulate", "--headless", "--speed", "1", "--data", str(data)], env=e,
               preexec_fn=ignore if ignored else None) as proc:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(data.glob("journal-*.sqlite")):
            time.sleep(0.2)
        time.sleep(1.5)
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and sig in out and "Traceback" not in err, err
    recs = [json.loads(x) for x in run("log", "export", "--data", str(data)).stdout.splitlines()[1:]]
    assert recs[-1]["type"] in ("stop", "seal")
    assert [r["reason"] for r in recs if r["type"] == "stop"] == [sig]


def test_every_option_has_a_help_line() -> None:
    import argparse

    from bedside.cli.main import parser

    missing: list[str] = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(a, argparse._HelpAction) and not a.help:
                missing.append(f"{path} {'/'.join(a.option_strings) or a.dest}")

    walk(parser(), "bedside")
    assert not missing, f"options without a help line: {missing}"


def test_simulate_help_lists_the_keys() -> None:
    r = run("simulate", "--help")
    assert r.returncode == 0
    for key in ("[space] press", "[h] hold", "[n] hold 6 s", "[a] admit", "[d] discharge", "[q] quit"):
        assert key in r.stdout, key
    assert "--panel" in r.stdout


def test_each_command_parses_alone_as_in_the_whole_parser_and_a_unit_imports_no_laptop_code() -> None:
    import argparse

    from bedside.cli.main import COMMANDS, parser

    def commands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(sub.choices)

    whole = commands(parser())
    assert list(whole) == list(COMMANDS)                 # the table names every command, in order
    for name in COMMANDS:
        alone = commands(parser(name))
        assert alone[name].format_help() == whole[name].format_help(), name
    probe = ("import sys\nfrom bedside.cli import main\nsys.argv = ['bedside', 'run', '--help']\n"
             "try:\n    main.main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('bedside.cli.')))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = r.stdout.strip().splitlines()[-1]
    assert "bedside.cli.unit" in loaded
    for other in ("bedside.cli.journal", "bedside.cli.ward", "bedside.cli.update", "bedside.cli.serial"):
        assert other not in loaded, loaded
