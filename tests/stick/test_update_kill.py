"""The updater killed at every step leaves the unit's service running (defect 5 of issue 21).

The real ``bedside update apply`` runs as a process, on real venvs and a release signed with
a real key; systemd is played by a ``systemctl`` on the PATH that keeps the service's state
in a file (and, when told, kills its caller: the updater, by SIGKILL, at that very call), and
the press by a stick channel that answers "confirmed" (or kills the updater while it waits).
After each kill the test does what systemd does when a service's main process dies: it runs
the ``ExecStopPost=`` lines of systemd/bedside-update.service as written there (paths moved
into the test's folder), and then, when a switch was cut off before its proof, what
``bedside-update.path`` does: it starts the updater again. The service must be running
afterwards, on a release that runs."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedside.stick import update
from bedside.unit.releases import Releases
from tests.conftest import ROOT
from tests.rigs import wheelhouse
from tests.rigs.trust_rig import Ward

MADE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BEDSIDE = [sys.executable, "-m", "bedside"]

FAKE_SYSTEMCTL = """#!/bin/bash
# systemctl as the test plays it: the service's state in a file; kill the caller when told.
echo "$*" >> "$FAKE_SYSTEMD/log"
args=()
for a in "$@"; do [ "$a" = --no-block ] || args+=("$a"); done
verb=${args[0]}
if [ -f "$FAKE_SYSTEMD/kill-at" ] && [ "$(cat "$FAKE_SYSTEMD/kill-at")" = "$verb" ]; then
    rm -f "$FAKE_SYSTEMD/kill-at"
    [ "$verb" = stop ] && echo inactive > "$FAKE_SYSTEMD/state"
    kill -9 "$PPID"
    exit 1
fi
case $verb in
    stop) echo inactive > "$FAKE_SYSTEMD/state" ;;
    start) echo active > "$FAKE_SYSTEMD/state" ;;
    show)
        s=$(cat "$FAKE_SYSTEMD/state")
        sub=dead; [ "$s" = active ] && sub=running
        printf 'ActiveState=%s\\nSubState=%s\\nNRestarts=0\\nWatchdogUSec=1s\\nStatusText=\\n' "$s" "$sub" ;;
esac
"""
# The proof's self-test runs as the bedside user; here, as whoever runs the test.
FAKE_RUNUSER = """#!/bin/bash
shift 3
exec "$@"
"""


@pytest.fixture(scope="module")
def build_021(wheel_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = wheelhouse.source_copy(tmp_path_factory.mktemp("src") / "bedside", "0.2.1")
    wheel, r = wheelhouse.build(src, wheel_folder, tmp_path_factory.mktemp("built-0.2.1"), isolated=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return wheel


class Press:
    """The daemon's stick channel as the updater meets it: a press confirms, or the caller is killed."""

    def __init__(self, path: Path) -> None:
        self.kill = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.makefile("rb").readline()
                pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                      struct.calcsize("3i")))
                if self.kill:
                    self.kill = False
                    os.kill(pid, signal.SIGKILL)      # killed while it waits for the press
                    continue
                conn.sendall(json.dumps({"ok": True, "outcome": "confirmed"}).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()


class Rig:
    def __init__(self, tmp: Path, wheel_folder: Path, ward: Ward) -> None:
        self.tmp = tmp
        self.ward = ward
        self.wheel_folder = wheel_folder
        self.releases = Releases(tmp / "opt/bedside")
        self.releases.install("0.1.0", wheel_folder)
        self.releases.switch("0.1.0")
        self.data = tmp / "var/lib/bedside"
        self.data.mkdir(parents=True)
        self.staging = tmp / "var/lib/bedside-update/staging"
        self.systemd = tmp / "systemd"
        self.systemd.mkdir()
        (self.systemd / "state").write_text("active\n")
        bin_ = tmp / "bin"
        bin_.mkdir()
        for name, text in (("systemctl", FAKE_SYSTEMCTL), ("runuser", FAKE_RUNUSER)):
            (bin_ / name).write_text(text)
            (bin_ / name).chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "FAKE_SYSTEMD": str(self.systemd)}
        self.press = Press(tmp / "stick.sock")

    @property
    def incoming(self) -> Path:
        return self.data / update.INCOMING

    def bring(self, wheel: Path, counter: int) -> None:
        """What the export leaves: a signed bundle in update-incoming."""
        shutil.rmtree(self.incoming, ignore_errors=True)
        self.incoming.mkdir()
        for w in self.wheel_folder.glob("*.whl"):
            if not w.name.startswith("bedside-"):
                shutil.copy(w, self.incoming)
        shutil.copy(wheel, self.incoming)
        update.write_manifest(self.incoming, self.ward.release.sign(
            update.KIND, update.body_for(self.incoming, counter, MADE)))

    def updater(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*BEDSIDE, "update", "apply", str(self.incoming), "--data", str(self.data),
             "--prefix", str(self.releases.prefix), "--socket", str(self.tmp / "stick.sock"),
             "--keys-dir", str(self.ward.keys_dir), "--staging", str(self.staging)],
            env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def state(self) -> str:
        return (self.systemd / "state").read_text().strip()

    def exec_stop_post(self) -> None:
        """What systemd runs when the updater ends, however it ended: the unit file's own lines."""
        moves = {"/var/lib/bedside-update/staging": str(self.staging), "/var/lib/bedside/update-incoming":
                 str(self.incoming), "/bin/systemctl": str(self.tmp / "bin/systemctl")}
        lines = [line.split("=", 1)[1] for line in (ROOT / "systemd/bedside-update.service").read_text().splitlines()
                 if line.startswith("ExecStopPost=")]
        assert any("bedside.service" in line for line in lines)
        for written in lines:
            line = written
            for old, new in moves.items():
                line = line.replace(old, new)
            r = subprocess.run(shlex.split(line.lstrip("-")), env=self.env, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, (line, r.stdout, r.stderr)

    def runs(self) -> str:
        r = subprocess.run([str(self.releases.link / "bin/bedside"), "--version"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


@pytest.fixture
def rig(tmp_path: Path, wheel_folder: Path, ward: Ward) -> Iterator[Rig]:
    r = Rig(tmp_path, wheel_folder, ward)
    yield r
    r.press.close()


def kill_when(rig: Rig, step: str) -> subprocess.Popen[str]:
    """The updater, killed at ``step``: a systemctl verb, the press wait, or pip at work."""
    if step in ("stop", "start", "show"):
        (rig.systemd / "kill-at").write_text(step)
    rig.press.kill = step == "press"
    proc = rig.updater()
    if step == "install":
        venv = rig.releases.venv
        end = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < end:
            if any(venv(v).exists() for v in ("0.2.0", "0.2.1")):
                time.sleep(0.3)          # pip is at work in it
                proc.kill()
                break
            time.sleep(0.005)
    proc.wait(600)
    return proc


def test_the_service_runs_after_the_updater_is_killed_at_any_step(rig: Rig, build_021: Path) -> None:
    src = wheelhouse.source_copy(rig.tmp / "src" / "bedside", "0.2.0")
    wheel_020, r = wheelhouse.build(src, rig.wheel_folder, rig.tmp / "built-0.2.0", isolated=False)
    assert r.returncode == 0, r.stderr
    rig.bring(wheel_020, 1)
    seen = []
    for step in ("press", "install", "stop", "start"):
        proc = kill_when(rig, step)
        out = proc.stdout.read() if proc.stdout else ""
        assert proc.returncode == -signal.SIGKILL, (step, proc.returncode, out)
        seen.append((step, rig.state()))
        rig.exec_stop_post()
        assert rig.state() == "active", step
        assert not rig.staging.exists() and not rig.incoming.exists()
        if (rig.releases.prefix / ".update-pending").exists():
            # bedside-update.path starts the updater again for the switch cut off before its proof.
            again = rig.updater()
            assert again.wait(600) == 0, again.stdout.read() if again.stdout else ""
            rig.exec_stop_post()
        assert rig.state() == "active", step
        assert rig.runs() in ("bedside 0.1.0", "bedside 0.2.0"), step
        if step != "start":
            rig.bring(wheel_020, 1)
    # Killed while stopped, and while switched but not yet started: the two windows that
    # left a unit silent until the next reboot before.
    assert ("stop", "inactive") in seen and ("start", "inactive") in seen
    assert rig.runs() == "bedside 0.2.0" and rig.releases.pending() is None
    # Killed in the proof: the new version runs, and the updater started again proves it.
    rig.bring(build_021, 2)
    proc = kill_when(rig, "show")
    assert proc.returncode == -signal.SIGKILL
    rig.exec_stop_post()
    assert rig.state() == "active" and rig.releases.pending() is not None
    again = rig.updater()
    assert again.wait(600) == 0, again.stdout.read() if again.stdout else ""
    rig.exec_stop_post()
    assert rig.state() == "active" and rig.runs() == "bedside 0.2.1" and rig.releases.pending() is None
    log = (rig.systemd / "log").read_text()
    assert log.count("start --no-block bedside.service") >= 7
