"""The serial link on a running unit: real pty pairs, the real daemon loop in a thread.

A test types at the laptop end of a pty pair as a person at a terminal program would,
or sends the nurse tool's frames; the unit is the daemon on mock pins and a virtual clock.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from bedside.core import config
from bedside.journal import chain
from bedside.link import access, batch, frames
from tests.rigs.serial_rig import SECRET, Cable, Laptop, RunningUnit, cheap_ward, wait_for

# Their wards are cheap_ward()s, and this process unlocks them with the laptop's own code.
pytestmark = pytest.mark.usefixtures("cheap_kdf")

START = "2026-11-24T09:30"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=config.Config().tz)


@pytest.fixture
def cable(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = Cable(tmp_path).plug()
    yield c
    c.unplug()


def unlocked(cable: Cable) -> Laptop:
    """A laptop on the cable, unlocked with the ward secret."""
    t = Laptop(cable.laptop_path)
    t.type("unlock\r")
    t.read_until(b"(not shown): ")
    t.type(SECRET + "\r")
    t.read_until(b"> ")
    return t


def confirm_on_the_unit(t: Laptop, u: RunningUnit) -> None:
    """The change typed is on the unit's screen: press its button."""
    t.read_until(b"to cancel).")
    wait_for(lambda: type(u.sim.unit.out.display._screen).__name__ == "Confirm", what="the confirmation screen")
    u.press()


def test_a_person_at_a_terminal(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data)) as u:
        t = Laptop(cable.laptop_path)
        assert "Type help" in t.say("")
        assert "time set YYYY-MM-DD HH:MM" in t.say("help")
        status = t.say("status")
        assert re.search(r"Unit +ward7-bed12", status) and "Next        10:00 Ankle pumps" in status
        assert "locked (5 attempts left" in status
        assert "Locked: unlock with the ward secret first." in t.say("log")
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type("not the secret\r")
        assert "Wrong secret. 4 attempts left" in t.read_until(b"> ").decode()
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type(SECRET + "\r")
        out = t.read_until(b"> ").decode()
        assert "Unlocked." in out and SECRET not in out          # never echoed
        listing = t.say("log 3").splitlines()[1:-1]
        assert len(listing) == 3 and listing[-1].split()[:4] == [str(len(u.records())), "2026-11-24", "09:30:00",
                                                                 "unlock"]
        assert "Unknown command 'dance'" in t.say("dance")
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type(b"sec\x00ret\r")                  # unreadable: not counted, and the next line is a command again
        assert "type unlock to try again" in t.read_until(b"> ").decode()
        assert "Unit        ward7-bed12" in t.say("status")
        assert "Locked." in t.say("lock")
        t.close()
    recs = u.records()
    assert [r["type"] for r in recs if r["type"] in ("unlock_failed", "unlock", "lock")] == \
        ["unlock_failed", "unlock", "lock"]
    failed = next(r for r in recs if r["type"] == "unlock_failed")
    assert failed["via"] == "terminal" and failed["failures"] == 1 and failed["left"] == 4
    assert next(r["reason"] for r in recs if r["type"] == "lock") == "command"


def test_a_secret_that_cannot_be_checked_is_said_and_not_counted(tmp_path: Path, cable: Cable,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt runs in a child process (bedside/secret.py): one that cannot run is no wrong secret."""
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data)) as u:
        t = Laptop(cable.laptop_path)
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        monkeypatch.setattr(sys, "executable", "/bin/false")
        t.type(SECRET + "\r")
        out = t.read_until(b"> ").decode()
        monkeypatch.undo()
        assert "The secret could not be checked" in out and "try again" in out and SECRET not in out
        assert "locked (5 attempts left" in t.say("status")
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type(SECRET + "\r")
        assert "Unlocked." in t.read_until(b"> ").decode()
        t.close()
    assert [r["type"] for r in u.records() if r["type"] in ("unlock_failed", "unlock")] == ["unlock"]


def test_time_set_needs_the_secret_and_a_press_on_the_unit(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data), speed=5) as u:
        t = Laptop(cable.laptop_path)
        assert "Locked" in t.say("time set 2026-11-24 12:00")
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type(SECRET + "\r")
        t.read_until(b"> ")
        t.type("time set 2026-11-24 12:00\r")
        assert b"Press its button within 60 s" in t.read_until(b"hold it 2 s to cancel).")
        wait_for(lambda: type(u.sim.unit.out.display._screen).__name__ == "Confirm", what="the confirmation screen")
        assert "Still waiting for the press" in t.say("status", timeout=1)
        u.press()
        out = t.read_until(b"> ").decode()
        assert "Confirmed on the unit. Clock was 2026-11-24 09:30" in out and "now 2026-11-24 12:00" in out
        assert u.on_loop(lambda now: now.wall.astimezone(u.cfg.tz).hour) == 12
        # Without a press nothing changes: a refusal on the unit (hold) ends it.
        t.type("time set 2026-11-24 15:00\r")
        t.read_until(b"hold it 2 s to cancel).")
        wait_for(lambda: type(u.sim.unit.out.display._screen).__name__ == "Confirm", what="the confirmation screen")
        u.press(2.5)
        assert "Not changed: it was cancelled on the unit" in t.read_until(b"> ").decode()
        assert u.on_loop(lambda now: now.wall.astimezone(u.cfg.tz).hour) == 12
        t.close()
    recs = u.records()
    assert [r["action"] for r in recs if r["type"] == "press"] == ["confirm", "cancel"]
    declined = [r for r in recs if r["type"] == "change_declined"]
    assert declined and declined[0]["what"] == "time" and declined[0]["reason"] == "cancelled"
    # The journal's commanded clock change: recorded with its source, and the time now trusted as set.
    clock_set = next(r for r in recs if r["type"] == "clock_set")
    assert clock_set["source"] == "nurse" and clock_set["new"].startswith("2026-11-24T12:00")
    assert recs[-1]["tq"] == "set-by-nurse"


def test_ctrl_c_withdraws_a_change_and_unplugging_locks(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data)) as u:
        t = unlocked(cable)
        t.type("time set 10:15\r")
        t.read_until(b"to cancel).")
        t.type("\x03")
        assert "Not changed: cancelled here." in t.read_until(b"> ").decode()
        t.close()
        cable.unplug()
        wait_for(lambda: "lock" in u.types(), what="the link to lock when the cable is pulled")
        cable.plug()
        t = Laptop(cable.laptop_path)
        wait_for(lambda: u.link is not None and u.link.connections == 2, what="the port to be opened again")
        assert "Locked" in t.say("log")
        t.close()
    recs = u.records()
    assert [r["reason"] for r in recs if r["type"] == "lock"] == ["unplugged"]
    assert [r["reason"] for r in recs if r["type"] == "change_declined"] == ["withdrawn"]


def test_five_wrong_secrets_lock_the_port_for_ten_minutes(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    # 200x: the ten-minute lockout passes in three seconds.
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data), speed=200) as u:
        t = Laptop(cable.laptop_path)
        for n in range(5):
            t.type("unlock\r")
            t.read_until(b"(not shown): ")
            t.type(f"guess {n}\r")
            out = t.read_until(b"> ").decode()
        assert "Locked out after too many wrong secrets: try again in 10 minutes." in out
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type(SECRET + "\r")
        assert "Locked out" in t.read_until(b"> ").decode()       # even the right secret, while locked out
        assert "locked out for" in t.say("status")
        # Ten virtual minutes later the port takes the secret again.
        wait_for(lambda: "lockout_end" in u.types(), timeout=10, what="the lockout to end")
        t.type("unlock\r")
        t.read_until(b"(not shown): ")
        t.type(SECRET + "\r")
        assert "Unlocked." in t.read_until(b"> ").decode()
        t.close()
    recs = u.records()
    assert [r["type"] for r in recs if r["type"].startswith(("unlock", "lockout"))] == \
        ["unlock_failed"] * 5 + ["lockout", "lockout_end", "unlock"]
    assert next(r for r in recs if r["type"] == "lockout_end")["refused"] == 1


def test_the_port_missing_at_boot_appears_later(tmp_path: Path) -> None:
    data = tmp_path / "unit"
    cable = Cable(tmp_path)
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data), fault_after_s=0.5) as u:
        wait_for(lambda: any("does not exist (yet)" in m for m in u.logs), what="a message about the missing port")
        wait_for(lambda: "fault" in u.types(), timeout=8, what="a fault record")
        # (after the conversation, the unplug below may be said again: a new absence, not a retry)
        missing = [m for m in u.logs if "does not exist" in m]
        cable.plug()
        try:
            wait_for(lambda: u.link is not None and u.link.connections == 1, timeout=15, what="the port to open")
            t = Laptop(cable.laptop_path)
            assert "Unit        ward7-bed12" in t.say("status")
            t.close()
            wait_for(lambda: "fault_cleared" in u.types(), what="the fault to clear")
        finally:
            cable.unplug()
    fault = next(r for r in u.records() if r["type"] == "fault")
    assert fault["part"] == "serial" and "does not exist" in fault["problem"]
    assert len(missing) == 1       # said once while missing, not at every retry (several by the fault)


def test_garbage_probes_and_long_lines_get_clean_answers_or_none(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data)) as u:
        t = Laptop(cable.laptop_path)
        t.type(b"AT\rATE0\rAT+GCAP\r\x7e\x00\x01\x02\r")         # a modem manager's probes
        t.type(bytes(range(256)) * 4 + b"\r")
        assert b"ERROR" not in t.quiet(0.5) and b"OK" not in t.seen
        t.type(b"y" * 10000 + b"\r")
        assert "longer than 256 characters" in t.read_until(b"> ").decode()
        t.type(b"~" + b"z" * 5000 + b"\r")
        assert b"too_long" in t.read_until(b"\r\n")
        assert "Unit        ward7-bed12" in t.say("status")
        conn = u.link.connection if u.link else None
        assert conn is not None and conn.reader.pending() == 0 and conn.probes == 3
        t.close()


def test_prompting_goes_on_while_the_port_is_hammered(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    # 600x: ten minutes of the unit's day pass in a second.
    with RunningUnit(data, cable.unit_path, local("2026-11-24T09:58"), ward=cheap_ward(data), speed=600) as u:
        t = Laptop(cable.laptop_path)
        end = time.monotonic() + 1.6
        rng = os.urandom
        while time.monotonic() < end:
            t.type(rng(512) + b"\r" + b"status\r" + frames.Request(1, "hello").encode())
            t.quiet(0.05)
        t.close()
    recs = u.records()
    prompt = next(r for r in recs if r["type"] == "prompt")
    repeat = next(r for r in recs if r["type"] == "repeat")
    # On time: within a virtual minute (0.1 s of real time at 600x, so a loaded test machine's scheduling
    # jitter does not count, while a loop held up by the link's work would be minutes late).
    assert prompt["session"] == "2026-11-24T10:00 hourly" and prompt["time"].startswith("2026-11-24T10:00:")
    assert repeat["time"].startswith("2026-11-24T10:10:")


def test_the_tools_frames_and_a_resumable_batch(tmp_path: Path, cable: Cable) -> None:
    from bedside.laptop import client

    data = tmp_path / "unit"
    ward = cheap_ward(data)
    with RunningUnit(data, cable.unit_path, local(START), ward=ward) as u:
        t = client.SerialTransport(str(cable.laptop_path))
        c = client.Client(t)
        hello = c.request("hello").data
        assert hello["unit"] == "ward7-bed12" and hello["secret"] and len(hello["nonce"]) == 32
        with pytest.raises(client.Refused) as e:
            c.request("get", "1", "10")
        assert e.value.code == "locked"
        c.request("unlock", client.unlock_answer(SECRET, hello["kdf"], hello["nonce"]))
        with pytest.raises(client.Refused) as e:
            c.request("unlock", client.unlock_answer(SECRET, hello["kdf"], hello["nonce"]))   # replayed
        assert e.value.code == "stale"
        got: list[dict] = []  # type: ignore[type-arg]
        head = (0, chain.GENESIS)
        while True:
            rep = c.request("get", str(head[0] + 1), "2")
            recs = batch.unpack(rep, head)
            if not recs:
                break
            got += recs
            head = (recs[-1]["seq"], recs[-1]["hash"])
        assert [batch.export_line(r) for r in got] == [batch.export_line(r) for r in u.records()][:len(got)]
        assert c.request("done", "1", str(head[0]), head[1]).data["recorded"] == head[0] + 1
        assert c.request("done", "1", str(head[0]), head[1]).data["recorded"] == head[0] + 1  # once only
        t.close()
    export = next(r for r in u.records() if r["type"] == "export")
    assert export == {**export, "via": "serial", "from_seq": 1, "to_seq": head[0], "to_hash": head[1]}
    assert [r["type"] for r in u.records()].count("export") == 1
    # Retention's marker: what was downloaded may one day be pruned from the unit, and only that.
    marker = json.loads((data / "exported.json").read_text())
    assert (marker["seq"], marker["hash"], marker["to"]) == (head[0], head[1], "serial")
    assert access.MAX_FAILURES == 5


def test_admit_and_discharge_by_hand_with_presses(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data), speed=5) as u:
        t = unlocked(cable)
        assert "Episode     none: no patient admitted" in t.say("status")
        # A name in the id field is refused at once, on screen and in the journal, without a press.
        assert "Not" not in (out := t.say("episode admit Smith 2026-11-23")) and "must contain a digit" in out
        t.type("episode admit E2026-0042 2026-11-23\r")
        confirm_on_the_unit(t, u)
        assert "Episode E2026-0042 admitted, regimen standard, post-operative day 1." in t.read_until(b"> ").decode()
        assert "E2026-0042, surgery 2026-11-23, regimen standard, post-operative day 1" in t.say("episode")
        assert "This unit's episode is E2026-0042, not E2026-0099." in t.say("episode discharge E2026-0099")
        t.type("episode discharge E2026-0042\r")
        confirm_on_the_unit(t, u)
        assert "The patient is discharged" in t.read_until(b"> ").decode()
        t.close()
    recs = u.records()
    assert [(r["type"], r.get("via")) for r in recs if r["type"] in ("admit", "discharge", "refused")] == \
        [("refused", "serial"), ("admit", "serial"), ("refused", "serial"), ("discharge", "serial")]
    assert "Smith" not in json.dumps(recs)
    assert next(r for r in recs if r["type"] == "admit")["episode"] == "E2026-0042"
    # The new patient's records start a segment of their own, after a seal of the one before.
    from bedside.journal.journal import Journal

    j = Journal(data, u.cfg.tz, "reader", readonly=True)
    try:
        segs = j.segments()
    finally:
        j.close()
    admit_seq = next(r["seq"] for r in recs if r["type"] == "admit")
    assert [(s.reason, s.first_seq) for s in segs][-1] == ("episode", admit_seq)
    assert segs[-1].detail == {"episode": "E2026-0042"}


def test_pause_and_resume_by_hand_with_presses(tmp_path: Path, cable: Cable) -> None:
    data = tmp_path / "unit"
    with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data), speed=5) as u:
        t = unlocked(cable)
        assert "pause 1h, pause 2h, pause 4h or pause morning" in t.say("pause 3h")
        assert "Prompting is not paused." in t.say("resume")
        t.type("pause 2h\r")
        confirm_on_the_unit(t, u)
        assert "Prompting paused until" in t.read_until(b"> ").decode()
        wait_for(lambda: getattr(u.sim.unit.out.display._screen, "paused", None) is not None, what="the paused idle")
        t.type("resume\r")
        confirm_on_the_unit(t, u)
        assert "Prompting goes on" in t.read_until(b"> ").decode()
        t.close()
    recs = u.records()
    assert [(r["type"], r.get("via"), r.get("duration")) for r in recs if r["type"] in ("pause", "resume")] == \
        [("pause", "serial", "2h"), ("resume", "serial", None)]


def test_a_port_that_fails_as_soon_as_it_opens_is_retried_slowly_and_logged_once(tmp_path: Path) -> None:
    """A gadget port whose host has gone can open and fail at once: no busy loop, no log flood."""
    from bedside.link.port import SerialLink

    opens: list[float] = []

    class HungUp:
        timeout: float | None = None
        in_waiting = 0

        def read(self, n: int) -> bytes:
            raise OSError(5, "Input/output error")

        def write(self, data: bytes) -> int:
            raise OSError(5, "Input/output error")

        def cancel_read(self) -> None:
            pass

        def close(self) -> None:
            pass

    class Flaky(SerialLink):
        def _open(self) -> HungUp:
            opens.append(time.monotonic())
            return HungUp()

    data = tmp_path / "unit"
    with RunningUnit(data, tmp_path / "no-port", local(START), ward=cheap_ward(data)) as u:
        assert u.link is not None and u.svc is not None
        u.link.stop()
        logs: list[str] = []
        flaky = Flaky(u.sim.unit, u.svc, "/dev/ttyGS0", 115200, ward=u.ward, log=logs.append,
                      retry_s=(0.1, 0.2, 0.4, 0.8))
        flaky.start()
        time.sleep(2.0)
        flaky.stop()
    assert 3 <= len(opens) <= 7, opens          # 0.1, 0.2, 0.4, 0.8, 0.8 s apart: not a busy loop
    assert len(logs) == 2 and "closed" in logs[1], logs
    assert "lock" not in u.types()              # never unlocked, so nothing to record
