"""Properties of the whole link under a bad cable, with hypothesis.

The real unit (daemon, journal, link service, connection) and the real nurse tool (pull,
set-time, client) talk through a wire that drops, flips and duplicates bytes and gets
unplugged. No threads and no ports: the unit's loop runs whenever the laptop waits for it,
on a virtual clock, so every run is exact and quick. Whatever happens:

* the laptop's copy is always an exact prefix of the unit's journal;
* without the ward secret nothing is read and nothing changes; without a press on the
  unit, not even with it.
"""

from __future__ import annotations

import io
import random
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bedside.core import config
from bedside.laptop import client, pull
from bedside.link import access, batch
from bedside.link.on_loop import LinkService
from bedside.link.port import Connection
from bedside.unit import simulate
from tests.conftest import budget
from tests.rigs.serial_rig import SECRET, cheap_ward

# Their wards are cheap_ward()s, and this process unlocks them with the laptop's own code.
pytestmark = pytest.mark.usefixtures("cheap_kdf")

CFG = config.Config()


class SyncUnit:
    """The daemon stepped by the test's own thread: its loop runs while the laptop waits."""

    def __init__(self, data: Path, start: datetime) -> None:
        self.ward = cheap_ward(data)
        self.sim = simulate.build(CFG, data, start)
        self.sim.unit.start()
        self.svc = LinkService(self.sim.unit, self.ward)
        self.svc.attach(self.sim.clock.now())
        self.conns = 0
        self.offset0 = self.sim.clock.base

    def call(self, fn: Any) -> Any:
        return fn(self.sim.clock.now())

    def run_for(self, seconds: float) -> None:
        self.sim.advance(self.sim.clock.now().wall + timedelta(seconds=seconds))

    def connect(self, write: Any) -> Connection:
        self.conns += 1
        return Connection(self.conns, self.svc, self.call, write, ward=self.ward, unit=CFG.unit_id)

    def lines(self) -> list[str]:
        return [batch.export_line(r) for r in self.sim.journal.records()]

    def types(self) -> list[str]:
        return [r["type"] for r in self.sim.journal.records()]


class Wire:
    """A cable between the laptop's client and the unit's connection that damages what it carries."""

    def __init__(self, unit: SyncUnit, rng: random.Random, fault: float, cut: float, clock: list[float]) -> None:
        self.unit = unit
        self.rng = rng
        self.fault = fault
        self.cut = cut
        self.clock = clock
        self.inbound = bytearray()
        self.dead = False
        self.conn = unit.connect(self._from_unit)

    def _mangle(self, data: bytes) -> bytes:
        r = self.rng
        if data and r.random() < self.fault:
            i = r.randrange(len(data))
            what = r.randrange(3)
            if what == 0:
                data = data[:i] + data[i + r.randint(1, 30):]                  # dropped
            elif what == 1:
                data = data[:i] + bytes([data[i] ^ (1 << r.randrange(8))]) + data[i + 1:]   # flipped
            else:
                data = data[:i] + data[i:i + r.randint(1, 30)] + data[i:]     # duplicated
        return data

    def _from_unit(self, data: bytes) -> None:
        self.inbound += self._mangle(data)

    def _check(self) -> None:
        if not self.dead and self.rng.random() < self.cut:
            self.dead = True
            self.conn.close()               # the unit sees its port close
        if self.dead:
            raise client.Disconnected("the cable was pulled")

    def write(self, data: bytes) -> None:
        self._check()
        self.conn.feed(self._mangle(data))
        self.conn.poll()

    def read(self, timeout: float) -> bytes:
        self._check()
        if not self.inbound:
            self.clock[0] += timeout
            self.unit.run_for(timeout)
            self.conn.poll()
        n = self.rng.randint(1, max(1, len(self.inbound)))
        out = bytes(self.inbound[:n])
        del self.inbound[:n]
        return out

    def close(self) -> None:
        if not self.dead:
            self.dead = True
            self.conn.close()


class LinkMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.out = root / "laptop"
        self.unit = SyncUnit(root / "unit", datetime(2026, 11, 24, 6, 0, tzinfo=CFG.tz))
        self.clock = [0.0]
        self.rng = random.Random(0)
        self.copy_before: list[str] = []

    def teardown(self) -> None:
        self.unit.sim.close()
        self.tmp.cleanup()

    @initialize(seed=st.integers(0, 2**32 - 1))
    def seed(self, seed: int) -> None:
        self.rng.seed(seed)
        self.unit.run_for(3 * 3600)           # the morning's records

    def opener(self, fault: float, cut: float) -> Any:
        return lambda: Wire(self.unit, self.rng, fault, cut, self.clock)

    def copy(self) -> list[str]:
        path = self.out / ".bedside" / CFG.unit_id / "records.jsonl"
        return path.read_text().splitlines() if path.exists() else []

    def monotonic(self) -> float:
        return self.clock[0]

    @rule(fault=st.sampled_from([0.0, 0.02, 0.1, 0.3]), cut=st.sampled_from([0.0, 0.002, 0.02]))
    def pull_with_the_secret(self, fault: float, cut: float) -> None:
        before = self.copy()
        locked_out = access.lockout_left(self.unit.svc.access, self.unit.sim.clock.now()) > 0
        try:
            got = pull.pull(self.opener(fault, cut), self.out, lambda unit, n: SECRET, reconnect_s=120,
                            say=lambda m: None, progress_out=io.StringIO(), monotonic=self.monotonic)
        except (pull.PullError, client.LinkError):
            assert fault or cut or locked_out  # a clean cable gets through, unless wrong secrets locked the port
            return
        after = self.copy()
        assert after[:len(before)] == before  # the copy only ever grows
        assert len(after) == got.head[0]       # everything up to the head the unit reported last

    @rule(fault=st.sampled_from([0.0, 0.1]), guess=st.text(min_size=8, max_size=20))
    def pull_without_the_secret(self, fault: float, guess: str) -> None:
        if guess == SECRET:
            return
        before, types_before = self.copy(), self.unit.types()
        try:
            pull.pull(self.opener(fault, 0.0), self.out, lambda unit, n: guess, say=lambda m: None,
                      progress_out=io.StringIO(), monotonic=self.monotonic)
            raise AssertionError("a wrong secret downloaded the journal")
        except (pull.PullError, client.LinkError):
            pass
        assert self.copy() == before
        new = self.unit.types()[len(types_before):]
        assert "export" not in new and "unlock" not in new

    @rule(guess=st.sampled_from(["", "x" * 8, SECRET]), fault=st.sampled_from([0.0, 0.1]))
    def set_time_without_a_press(self, guess: str, fault: float) -> None:
        try:
            pull.set_time(self.opener(fault, 0.0), lambda unit, n: guess or SECRET[:-1], say=lambda m: None,
                          monotonic=self.monotonic, now=lambda: datetime(2030, 1, 1, tzinfo=CFG.tz))
            raise AssertionError("the clock was set without a press on the unit")
        except (pull.PullError, client.LinkError):
            pass

    @rule(data=st.binary(max_size=600))
    def garbage(self, data: bytes) -> None:
        w = Wire(self.unit, self.rng, 0.0, 0.0, self.clock)
        w.write(data)
        w.close()

    @rule(minutes=st.integers(1, 240))
    def time_passes(self, minutes: int) -> None:
        self.unit.run_for(minutes * 60)

    @invariant()
    def the_copy_is_a_prefix_of_the_units_journal(self) -> None:
        mine = self.copy()
        assert mine == self.unit.lines()[:len(mine)]

    @invariant()
    def nothing_changed_without_a_press(self) -> None:
        types = self.unit.types()
        assert "clock_set" not in types and "admit" not in types and "discharge" not in types
        assert self.unit.sim.clock.base == self.unit.offset0


LinkMachine.TestCase.settings = settings(budget(12), stateful_step_count=6, deadline=None)
test_the_link_under_a_bad_cable = LinkMachine.TestCase
