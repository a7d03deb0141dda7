"""The unit as it ships, measured from outside: ``bedside run``'s own wiring in a child process.

The child (``benchmarks/shipped_unit.py``) is ``bedside run`` with gpiozero's mock pins and
luma's real SSD1306 driver over a byte-counting fake bus, ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC`` set from ``systemd/bedside.service`` as systemd sets them, a pty as the
serial link and a socket for USB sticks, and a commissioned seal key. Everything is counted
from outside the process:

* **wake-ups** — voluntary context switches of every thread, from ``/proc/PID/task/*/status``
  (each is a thread going to sleep and being woken), over a window of real idle time;
* **fsyncs and bytes** — every ``fsync``/``fdatasync`` and ``write``-family call on every file
  under the data directory, from ``strace -f -y``; and the bytes that reached the block
  device, from the counters of an ext4 loop device holding only the data directory (root);
* **panel bytes** — what the real driver sent over the fake bus.

Baselines run the same way in the same run: a plain ``schedule.run_pending(); sleep(1)`` loop
for wake-ups, and a JSONL file appended and fsynced per record for storage.

Other benchmarks reuse ``idle`` (N seconds of real time, all threads counted) and ``days``
(N simulated days of the shipped wiring, with every file's syncs and bytes).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "benchmarks" / "shipped_unit.py"
SERVICE = ROOT / "systemd" / "bedside.service"
CONFIG = ROOT / "config" / "bedside.toml"


def watchdog_usec(service: Path = SERVICE) -> int | None:
    """``WatchdogSec=`` of the shipped service, in microseconds (as systemd passes it)."""
    m = re.search(r"^WatchdogSec=(\d+)(s|min)?\s*$", service.read_text(), re.M)
    if m is None:
        return None
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1) * 1_000_000


# --- counting from outside -------------------------------------------------------------------

def thread_switches(pid: int) -> dict[str, tuple[str, int]]:
    """Voluntary context switches of every thread of ``pid``: {tid: (name, count)}."""
    out: dict[str, tuple[str, int]] = {}
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            out[tid] = (fields["Name"].strip(), int(fields["voluntary_ctxt_switches"]))
    return out


class NotifyListener:
    """systemd's side of sd_notify: a datagram socket that collects what the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)
        self.messages: list[tuple[float, str]] = []
        self.ready = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), msg))
            if "READY=1" in msg:
                self.ready.set()

    def pings(self, since: float = 0.0) -> int:
        return sum(1 for t, m in self.messages if t >= since and "WATCHDOG=1" in m)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@dataclass
class Files:
    """Per file under the data directory: sync calls and bytes written, from strace."""

    syncs: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)

    @property
    def total_syncs(self) -> int:
        return sum(self.syncs.values())

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


_CALL = re.compile(r"^(\d+)\s+(\w+)\((\d+)<([^>]*)>(.*)$")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)")
_RESULT = re.compile(r"\)\s+=\s+(-?\d+)")
SYNCS = frozenset({"fsync", "fdatasync", "sync_file_range"})
WRITES = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
TRACED = ",".join(sorted(SYNCS | WRITES))


def parse_strace(text: str, under: Path) -> Files:
    """Sync calls and bytes written per file (relative to ``under``) from ``strace -f -y`` output."""
    files = Files()
    unfinished: dict[str, tuple[str, str]] = {}
    prefix = str(under).rstrip("/") + "/"

    def count(call: str, path: str, result: int) -> None:
        if result < 0 or not (path + "/").startswith(prefix):
            return
        # journal-000001.sqlite → journal-N.sqlite; the directory itself (a rename's sync) → "./"
        name = re.sub(r"\d{6}", "N", path[len(prefix):]) or "./"
        if call in SYNCS:
            files.syncs[name] += 1
        elif call in WRITES:
            files.written[name] += result

    for line in text.splitlines():
        m = _CALL.match(line)
        if m:
            pid, call, _fd, path, rest = m.groups()
            if rest.endswith("<unfinished ...>"):
                unfinished[pid] = (call, path)
                continue
            r = _RESULT.search(rest)
            if r:
                count(call, path, int(r.group(1)))
            continue
        m2 = _RESUMED.match(line)
        if m2 and m2.group(1) in unfinished:
            call, path = unfinished.pop(m2.group(1))
            count(call, path, int(m2.group(3)))
    return files


# --- a filesystem of its own -----------------------------------------------------------------

@dataclass
class Device:
    """An ext4 loop device holding only the data directory, or None counters when not root."""

    mount: Path
    stat: Path | None

    def counters(self) -> tuple[int, int]:
        """(bytes written, flushes) so far; zeros where there is no device of our own."""
        if self.stat is None:
            return 0, 0
        os.sync()
        time.sleep(6)           # ext4 commits deferred metadata within 5 s
        f = self.stat.read_text().split()
        return int(f[6]) * 512, int(f[15])


@contextlib.contextmanager
def ext4(work: Path, size: str = "256M") -> Iterator[Device]:
    """A fresh ext4 on a loop device (write-back cache on, as an SD card), when root; else a plain folder."""
    mnt = work / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        yield Device(mnt, None)
        return
    img = work / "fs.img"
    subprocess.run(["truncate", "-s", size, str(img)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], check=True)
    try:
        dev = Path(subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mnt)], capture_output=True, text=True,
                                  check=True).stdout.strip()).name
        Path(f"/sys/block/{dev}/queue/write_cache").write_text("write back\n")
        yield Device(mnt, Path(f"/sys/block/{dev}/stat"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# --- the shipped unit ----------------------------------------------------------------------

@dataclass
class Unit:
    """Where one run of the shipped unit lives."""

    work: Path
    data: Path
    config: Path
    serial: str
    stick: Path
    key_out: Path


def prepare(work: Path, data: Path, *, config_text: str | None = None) -> tuple[Unit, int]:
    """A commissioned unit's files: config (serial link on a pty), seal key. Returns the pty's master fd."""
    master, slave = os.openpty()
    cfg = (config_text or CONFIG.read_text()).replace('port = ""', f'port = "{os.ttyname(slave)}"', 1)
    os.close(slave)
    (work / "bedside.toml").write_text(cfg)
    u = Unit(work, data, work / "bedside.toml", "", work / "stick.sock", work / "hospital-key.json")
    subprocess.run([sys.executable, "-m", "bedside", "keys", "init", "--data", str(data), "--out", str(u.key_out)],
                   check=True, capture_output=True)
    return u, master


def _env(unit: Unit, notify: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update(GPIOZERO_PIN_FACTORY="mock", GPIOZERO_MOCK_PIN_CLASS="mockpwmpin", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=str(ROOT / "device"))
    usec = watchdog_usec()
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify)
        if usec:
            env["WATCHDOG_USEC"] = str(usec)
    return env


def _run_args(unit: Unit) -> list[str]:
    return ["--config", str(unit.config), "--data", str(unit.data), "--stick-socket", str(unit.stick)]


@dataclass
class Idle:
    seconds: float
    threads: dict[str, tuple[str, int]]      # tid: (name, wake-ups in the window)
    pings: int
    panel_bytes: int
    pid: int = 0                             # the main thread's id (the unit's loop runs on it)

    @property
    def others(self) -> int:
        """Wake-ups of every thread but the main one (the loop's)."""
        return sum(n for tid, (_, n) in self.threads.items() if tid != str(self.pid))

    @property
    def total(self) -> int:
        return sum(n for _, n in self.threads.values())

    @property
    def per_day(self) -> float:
        return self.total / self.seconds * 86400

    def busiest(self) -> tuple[str, float]:
        if not self.threads:
            return "", 0.0
        name, n = max(self.threads.values(), key=lambda t: t[1])
        return name, n / self.seconds * 86400


def _window(pid: int, seconds: float) -> tuple[dict[str, tuple[str, int]], float]:
    first = thread_switches(pid)
    seen = dict(first)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - t0))))
        seen.update(thread_switches(pid))
    elapsed = time.monotonic() - t0
    woke = {tid: (name, n - first.get(tid, (name, 0))[1]) for tid, (name, n) in seen.items()}
    return woke, elapsed


@dataclass
class Running:
    """``bedside run`` started by ``running``: its process, files and the serial link's pty master."""

    proc: subprocess.Popen[str]
    work: Path
    unit: Unit
    master: int
    notify: NotifyListener
    stats: dict[str, Any] = field(default_factory=dict)      # the child's --stats, once it has stopped


@contextlib.contextmanager
def running(*, config_text: str | None = None, ward_secret: str | None = None) -> Iterator[Running]:
    """``bedside run`` (the child) in real time on a commissioned unit (with ``ward_secret`` set as
    ``bedside secret set`` sets it), from READY until the block ends; then stopped as systemd
    stops it."""
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as w:
        work = Path(w)
        unit, master = prepare(work, work / "data", config_text=config_text)
        if ward_secret is not None:
            (work / "secret.txt").write_text(ward_secret + "\n")
            subprocess.run([sys.executable, "-m", "bedside", "secret", "set", "--data", str(unit.data), "--config",
                            str(unit.config), "--secret-file", str(work / "secret.txt")], check=True,
                           capture_output=True)
        notify = NotifyListener(work / "notify.sock")
        stats = work / "stats.json"
        proc = subprocess.Popen([sys.executable, str(CHILD), "--stats", str(stats), "--", *_run_args(unit)],
                                env=_env(unit, notify.path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        run = Running(proc, work, unit, master, notify)
        try:
            if not notify.ready.wait(60):
                raise RuntimeError(f"bedside run did not become ready: {proc.stderr.read() if proc.stderr else ''}")
            yield run
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            notify.close()
            os.close(master)
            if stats.exists():
                run.stats = json.loads(stats.read_text())


def idle(seconds: float = 60.0, *, warmup: float = 8.0, config_text: str | None = None,
         after_check: bool = False) -> Idle:
    """``bedside run`` in real time: every thread's wake-ups over ``seconds`` after ``warmup``.

    With ``after_check`` the warm-up counts from the start-up journal check's ``verified``
    record (unit/journal_check.py: the last thing a start does, a few seconds in) instead of
    from READY, so a short one will do."""
    with running(config_text=config_text) as run:
        if after_check:
            _wait_for_record(run.unit.data, "verified", run.proc)
        time.sleep(warmup)          # the start-up self-test's chirp and first frames
        since = time.monotonic()
        threads, elapsed = _window(run.proc.pid, seconds)
        pings = run.notify.pings(since)
    return Idle(elapsed, threads, pings, run.stats.get("panel_data_bytes", 0) + run.stats.get("panel_command_bytes", 0),
                run.proc.pid)


def mapped(pid: int) -> set[str]:
    """The names of the files ``pid`` has mapped (its shared libraries and extension modules)."""
    return {Path(f[5]).name for f in (line.split(maxsplit=5) for line in
                                      Path(f"/proc/{pid}/maps").read_text().splitlines())
            if len(f) > 5 and f[5].startswith("/")}


def _read_until(fd: int, marker: bytes, timeout: float = 20.0) -> bytes:
    got, end = b"", time.monotonic() + timeout
    while marker not in got:
        left = end - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"the unit did not say {marker!r} over the serial link; it said {got[-300:]!r}")
        if select.select([fd], [], [], min(left, 0.5))[0]:
            try:
                got += os.read(fd, 4096)
            except OSError:           # EIO: no one has the pty's other end open (not yet, or no more)
                time.sleep(0.05)
    return got


@dataclass
class Unlocked:
    at_start: set[str]          # files mapped by bedside run at READY
    after: set[str]             # and after a nurse unlocked the serial link by typing the ward secret
    said: str                   # what the terminal showed after the secret


def unlock(ward_secret: str = "ward seven secret") -> Unlocked:
    """``bedside run`` as shipped, with a ward secret set: the files it maps at READY, and after a
    person at a terminal on its serial link typed ``unlock`` and the secret (scrypt's check)."""
    with running(ward_secret=ward_secret) as run:
        at_start = mapped(run.proc.pid)
        end = time.monotonic() + 30
        while True:           # until the link has opened its port (it empties the input when it does)
            os.write(run.master, b"\r")
            with contextlib.suppress(RuntimeError):
                _read_until(run.master, b"> ", timeout=0.5)
                break
            if time.monotonic() > end or run.proc.poll() is not None:
                raise RuntimeError("bedside run did not answer on its serial link")
        os.write(run.master, b"unlock\r")
        _read_until(run.master, b"(not shown): ")
        os.write(run.master, ward_secret.encode() + b"\r")
        said = _read_until(run.master, b"> ").decode("utf-8", "replace")
        after = mapped(run.proc.pid)
    return Unlocked(at_start, after, said)


def _wait_for_record(data: Path, type_: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until the journal holds a ``type_`` record, read from outside (the unit is not woken)."""
    end = time.monotonic() + timeout
    while not _count_records(data)[type_]:
        if time.monotonic() > end or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"bedside run wrote no {type_} record: {proc.communicate()[1]}")
        time.sleep(0.2)


def quiet_config() -> str:
    """The shipped config on a unit with no patient admitted and ``without_episode = "quiet"``:
    it prompts nothing, so its day is the idle day (the clock by day, dark at night)."""
    return CONFIG.read_text().replace('without_episode = "default"', 'without_episode = "quiet"', 1)


def day_config(now: datetime, *, awake_from_minutes_ago: int, awake_hours: int = 12) -> str:
    """The shipped config with the clock in UTC and the awake window placed around ``now``
    (the routine moved out of it), so that a short real-time window sees one state of the day."""
    start = (now - timedelta(minutes=awake_from_minutes_ago)).astimezone(UTC)
    end = start + timedelta(hours=awake_hours)
    text = CONFIG.read_text()
    text = text.replace('timezone = "Europe/London"', 'timezone = "UTC"', 1)
    text = re.sub(r'^start = "\d\d:\d\d"', f'start = "{start:%H:%M}"', text, count=1, flags=re.M)
    text = re.sub(r'^end = "\d\d:\d\d"', f'end = "{end:%H:%M}"', text, count=1, flags=re.M)
    routine = (start - timedelta(hours=2)).astimezone(UTC)
    return re.sub(r'^at = \[[^\]]*\]', f'at = ["{routine:%H:%M}"]', text, count=1, flags=re.M)


def schedule_idle(seconds: float = 60.0, warmup: float = 2.0) -> Idle:
    """Baseline: a plain ``schedule`` loop (``run_pending()`` then ``sleep(1)``), counted the same way."""
    code = ("import schedule, time\n"
            "schedule.every().hour.at(':00').do(lambda: None)\n"
            "while True:\n    schedule.run_pending()\n    time.sleep(1)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(warmup)
        threads, elapsed = _window(proc.pid, seconds)
    finally:
        proc.terminate()
        proc.wait(10)
    return Idle(elapsed, threads, 0, 0, proc.pid)


@dataclass
class Days:
    days: float
    records: int
    types: Counter[str]
    files: Files
    device_bytes: int          # 0 without a device of our own (not root)
    device_flushes: int
    panel_bytes: int
    loop_wakeups: int
    cpu_s: float
    panel_transfers: int = 0

    @property
    def syncs_per_record(self) -> float:
        return self.files.total_syncs / max(self.records, 1)

    @property
    def kib_per_record(self) -> float:
        return self.device_bytes / 1024 / max(self.records, 1)


def _strace(cmd: list[str], out: Path) -> list[str]:
    return ["strace", "-f", "-qq", "-y", "-e", f"trace={TRACED}", "-e", "signal=none", "-o", str(out), *cmd]


def _count_records(data: Path) -> Counter[str]:
    from zoneinfo import ZoneInfo

    from bedside.journal.journal import Journal

    j = Journal(data, ZoneInfo("UTC"), "bench", readonly=True)
    try:
        return Counter(r["type"] for r in j.records())
    finally:
        j.close()


def days(n: float = 1.0, *, answered: bool = False, start: str | None = None,
         config_text: str | None = None, trace: bool = True, device: bool = True) -> Days:
    """``n`` simulated days of the shipped wiring on a fresh data directory (its own ext4 when
    root): records written, every file's syncs and bytes (strace), the device's bytes (left at
    zero with ``device=False``: each reading waits for ext4's commit, and a count from strace
    needs none).

    The days start a minute from now (in the unit's time zone), just after the seal key was
    made: a unit commissioned and switched on, with no days of outage to catch up on."""
    if start is None:
        start = f"{datetime.now(UTC) + timedelta(minutes=1):%Y-%m-%dT%H:%M}+00:00"
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as w:
        work = Path(w)
        with ext4(work) as dev:
            data = dev.mount / "data"
            unit, master = prepare(work, data, config_text=config_text)
            before = _count_records(data)
            notify = NotifyListener(work / "notify.sock")
            stats, log = work / "stats.json", work / "strace.log"
            cmd = [sys.executable, str(CHILD), "--stats", str(stats), "--days", str(n), "--start", start,
                   *(["--answer"] if answered else []), "--", *_run_args(unit)]
            use_strace = trace and shutil.which("strace") is not None
            b0, f0 = dev.counters() if device else (0, 0)
            t0 = os.times()
            subprocess.run(_strace(cmd, log) if use_strace else cmd, env=_env(unit, notify.path), check=True,
                           capture_output=True, text=True)
            t1 = os.times()
            b1, f1 = dev.counters() if device else (0, 0)
            notify.close()
            os.close(master)
            types = _count_records(data) - before
            files = parse_strace(log.read_text(), data) if use_strace else Files()
            panel = json.loads(stats.read_text())
    return Days(n, sum(types.values()), types, files, b1 - b0, f1 - f0,
                panel["panel_data_bytes"] + panel["panel_command_bytes"], panel.get("loop_timed_wakeups", 0),
                (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system),
                panel.get("panel_transfers", 0))


def memory(marks: tuple[float, ...] = (1, 7, 30, 365), *, start: str | None = None,
           snapshots: Path | None = None, env: dict[str, str] | None = None) -> list[dict[str, float]]:
    """The shipped wiring run without a stop over ``max(marks)`` simulated days of a patient who
    answers most sessions, snoozes some and misses some; at each mark its resident memory
    (MiB, from ``/proc/self/status`` in the child) and the CPU per day since the previous mark.
    The child runs in the service's environment (``PYTHONDONTWRITEBYTECODE=1``, ``NOTIFY_SOCKET``,
    ``WATCHDOG_USEC``), with the package's bytecode compiled first, as pip leaves it installed;
    ``env`` is added to it."""
    import compileall

    compileall.compile_dir(str(ROOT / "device" / "bedside"), quiet=1)
    if start is None:
        start = f"{datetime.now(UTC) + timedelta(minutes=1):%Y-%m-%dT%H:%M}+00:00"
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as w:
        work = Path(w)
        unit, master = prepare(work, work / "data")
        notify = NotifyListener(work / "notify.sock")
        stats = work / "stats.json"
        cmd = [sys.executable, str(CHILD), "--stats", str(stats), "--days", str(max(marks)), "--start", start,
               "--mixed", "--marks", ",".join(str(m) for m in marks),
               *(["--snapshots", str(snapshots)] if snapshots is not None else []), "--", *_run_args(unit)]
        try:
            subprocess.run(cmd, env={**_env(unit, notify.path), **(env or {})}, check=True, capture_output=True,
                           text=True)
        finally:
            notify.close()
            os.close(master)
        noted = json.loads(stats.read_text())["marks"]
    out, day, cpu = [], 0.0, noted[0]["cpu_s"] if noted else 0.0
    for i, m in enumerate(noted):
        out.append({"day": m["day"], "rss_mib": m["rss_kib"] / 1024, "anon_mib": m["anon_kib"] / 1024,
                    "file_mib": m["file_kib"] / 1024,
                    "cpu_per_day": (m["cpu_s"] - cpu) / (m["day"] - day) if i else m["cpu_s"] / m["day"]})
        day, cpu = m["day"], m["cpu_s"]
    return out


_JSONL_CHILD = """
import json, os, sys
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for i in range(n):
    os.write(fd, (json.dumps({"seq": i, "type": "done", "session": "2026-11-24T09:00 hourly", "reps": 20,
                              "hash": "0" * 64, "prev": "0" * 64}) + "\\n").encode())
    os.fsync(fd)
"""


def jsonl(records: int) -> Days:
    """Baseline: the same number of records appended to a JSONL file with an fsync each, counted the same way."""
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as w:
        work = Path(w)
        with ext4(work) as dev:
            data = dev.mount / "data"
            data.mkdir()
            log = work / "strace.log"
            cmd = [sys.executable, "-c", _JSONL_CHILD, str(data / "log.jsonl"), str(records)]
            b0, f0 = dev.counters()
            subprocess.run(_strace(cmd, log) if shutil.which("strace") else cmd, check=True)
            b1, f1 = dev.counters()
            files = parse_strace(log.read_text(), data) if log.exists() else Files()
    return Days(0, records, Counter(done=records), files, b1 - b0, f1 - f0, 0, 0, 0.0)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps({"idle": idle(20).per_day}))
