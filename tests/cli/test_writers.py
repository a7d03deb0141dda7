"""One writer per journal, simulated or not; the documented commissioning of a simulator's data
directory leaves no false break and no distrusted clock (docs/simulator.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bedside.journal import verify
from tests.conftest import journal_records


def bedside(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bedside", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_a_running_simulator_holds_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    secret_file = tmp_path / "s.txt"
    secret_file.write_text("ward seven secret\n")
    first = subprocess.Popen([sys.executable, "-m", "bedside", "simulate", "--headless", "--data", str(data),
                              "--start", "2026-11-24T06:58:00", "--days", "1", "--speed", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (data / "daemon.lock").exists() or not list(data.glob("journal-*.sqlite")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        second = bedside("simulate", "--headless", "--data", str(data), "--start", "2026-11-24T06:58:00",
                         "--until", "2026-11-24T07:30:00")
        assert second.returncode == 2 and "already using" in second.stderr
        for args in (["secret", "set", "--data", str(data), "--secret-file", str(secret_file)],
                     ["keys", "init", "--data", str(data), "--out", str(tmp_path / "k.json")]):
            r = bedside(*args)
            assert r.returncode == 2, r.stderr
            assert "a bedside unit is running on" in r.stderr and "quit the simulator" in r.stderr
        assert not (tmp_path / "k.json").exists()
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert first.returncode == 0
    v = verify.verify_data(data)
    assert v.ok, v.verdict


def test_commissioning_a_simulators_data_directory_leaves_no_false_break(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    secret_file = tmp_path / "s.txt"
    secret_file.write_text("ward seven secret\n")
    r = bedside("simulate", "--headless", "--data", str(data), "--start", "2026-11-24T06:58:00",
                "--until", "2026-11-24T09:00:00")
    assert r.returncode == 0, r.stderr
    assert bedside("secret", "set", "--data", str(data), "--secret-file", str(secret_file)).returncode == 0
    assert bedside("keys", "init", "--data", str(data), "--out", str(tmp_path / "k.json")).returncode == 0
    # Past one seal interval (three hours), so the run ends with a seal to check.
    r = bedside("simulate", "--headless", "--data", str(data), "--start", "2026-11-24T09:30:00",
                "--until", "2026-11-24T13:00:00")
    assert r.returncode == 0, r.stderr
    recs = journal_records(data)
    assert [x for x in recs if x["type"] in ("fault", "clock_set")] == []
    commissioning = [x for x in recs if x["type"] in ("secret_set", "seal_key")]
    assert [x["tq"] for x in commissioning] == ["simulated", "simulated"]
    assert all(x["time"] <= "2026-11-24T09:30" for x in commissioning)
    from bedside.journal import seal

    v = verify.verify_data(data, seal.load_hospital_key(tmp_path / "k.json"))
    assert v.ok, v.verdict
    assert v.seals_checked >= 1
