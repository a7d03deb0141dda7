"""Whatever file a command is given, it answers with a clear "not a ..." and a bounded read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.rigs.procs import ROOT, bedside

DEPTH = 100_000


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    files = {
        "nested-toml": ("a = " + "[" * DEPTH + "]" * DEPTH + "\n").encode(),
        "nested-json": ("[" * DEPTH + "]" * DEPTH + "\n").encode(),
        "nested-json-record": (b'{"bedside_export":1}\n' + ("[" * DEPTH + "]" * DEPTH + "\n").encode()),
        "long-line": b"a" * 50_000_000 + b"\n",
        "binary": bytes(range(256)) * 64,
    }
    out = {name: d / name for name in files}
    for name, body in files.items():
        out[name].write_bytes(body)
    out["dev-zero"] = Path("/dev/zero")
    out["directory"] = d
    return out


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bedside(*args), cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


COMMANDS = {
    "config check": lambda f, tmp: ["config", "check", str(f)],
    "log verify": lambda f, tmp: ["log", "verify", str(f)],
    "report": lambda f, tmp: ["report", str(f), "-o", str(tmp / "r.html")],
    "simulate --script": lambda f, tmp: ["simulate", "--headless", "--days", "1", "--script", str(f),
                                         "--data", str(tmp / "d")],
    "simulate --config": lambda f, tmp: ["simulate", "--headless", "--days", "1", "--config", str(f),
                                         "--data", str(tmp / "d")],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", ["nested-toml", "nested-json", "nested-json-record", "long-line", "binary",
                                  "dev-zero", "directory"])
def test_no_input_crashes_a_command(bad: dict[str, Path], tmp_path: Path, command: str, kind: str) -> None:
    r = _run(*COMMANDS[command](bad[kind], tmp_path))
    assert r.returncode not in (0, 70), r.stderr
    assert "Traceback" not in r.stderr and "unexpected error" not in r.stderr, r.stderr[-2000:]
    said = r.stderr or r.stdout      # verify gives its verdict on standard output
    assert said.startswith(("bedside: ", "BROKEN")) and len(said) < 2000, said[-2000:]


def test_a_nested_record_inside_an_export_is_named_as_damage(bad: dict[str, Path]) -> None:
    r = _run("log", "verify", str(bad["nested-json-record"]))
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stdout.startswith("BROKEN") and "line 2 is not a journal record" in r.stdout


def test_an_unexpected_error_prints_the_details_it_promises(tmp_path: Path) -> None:
    """The last resort: a bug's message says details follow, and they do (without BEDSIDE_DEBUG)."""
    code = ("import sys; from bedside.cli import main as m, config as c\n"
            "def boom(args): raise RecursionError('deep')\n"
            "c.cmd_config_check = boom\n"
            "sys.argv = ['bedside', 'config', 'check', 'x.toml']\n"
            "sys.exit(m.main())\n")
    r = subprocess.run([*bedside()[:1], "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 70
    assert "unexpected error: RecursionError: deep" in r.stderr and "details below" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr and "in boom" in r.stderr
