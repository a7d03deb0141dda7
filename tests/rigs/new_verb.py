"""A press-confirmed serial verb added through the change registry only (tests/test_design.py).

``python -m tests.rigs.new_verb FOLDER`` registers a throwaway kind, ``hush`` (no prompts for
an hour: the core's own ``Pause`` event), before any other part of the link is imported, as
a registration in ``link/changes.py`` would be; then runs the real daemon and its serial
link on a pty pair and drives the verb the way a nurse does: at a terminal (help, a press,
a refusal, a cancel) and with the nurse tool's frames. It prints what it saw as JSON for
the test to judge; nothing in the package is edited or patched for it.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core import config, events
from bedside.core.events import Instant
from bedside.core.state import State
from bedside.link import changes

START = "2026-11-24T09:30"


@dataclass(frozen=True, slots=True)
class Hush:
    """No prompts for an hour."""

    def text(self, tz: ZoneInfo) -> str:
        return "hush the unit for an hour"

    def lines(self, tz: ZoneInfo) -> tuple[str, str]:
        return "No prompts", "for an hour"


def parse_hush(args: tuple[str, ...]) -> Hush:
    if args:
        raise changes.ChangeError("write: hush")
    return Hush()


def _hushed(c: Hush, cfg: config.Config, st: State, now: Instant) -> str | None:
    return "the unit is hushed already" if st.paused_until is not None else None


def _until(cfg: config.Config, st: State, now: Instant) -> dict[str, Any]:
    return {"hushed_until": st.paused_until.astimezone(cfg.tz).isoformat() if st.paused_until else None}


def _said(d: Mapping[str, Any]) -> str:
    return f"Hushed until {str(d['hushed_until'])[11:16]}."


HUSH = changes.register(changes.Kind(
    "hush", Hush, title="Hush?", typed=("hush",), forms=(("hush", "no prompts for an hour"),),
    parse=parse_hush, event=lambda c, _: events.Pause("1h", via="serial"), problem=_hushed, outcome=_until,
    sentence=_said))


def main(folder: Path) -> dict[str, Any]:
    from bedside import secret
    from bedside.laptop import client
    from tests.rigs.serial_rig import SECRET, Cable, Laptop, RunningUnit, cheap_ward, wait_for

    secret.MIN_N = 16                  # this process's laptop code answers the cheap ward (as ``cheap_kdf``)
    seen: dict[str, Any] = {}
    data = folder / "unit"
    start = datetime.fromisoformat(START).replace(tzinfo=config.Config().tz)
    cable = Cable(folder).plug()
    try:
        with RunningUnit(data, cable.unit_path, start, ward=cheap_ward(data), speed=5) as u:
            def screen() -> Any:
                return u.sim.unit.out.display._screen

            def on_screen() -> None:
                wait_for(lambda: type(screen()).__name__ == "Confirm", what="the confirmation screen")
                seen.setdefault("screens", []).append([screen().title, screen().line1, screen().line2])

            t = Laptop(cable.laptop_path)
            seen["help"] = [line for line in t.say("help").splitlines() if "hush" in line]
            t.type("unlock\r")
            t.read_until(b"(not shown): ")
            t.type(SECRET + "\r")
            t.read_until(b"> ")
            t.type("hush\r")
            seen["asked"] = t.read_until(b"to cancel).").decode()
            on_screen()
            u.press()
            seen["confirmed"] = t.read_until(b"> ").decode()
            seen["refused"] = t.say("hush")
            seen["bad"] = t.say("hush now")
            t.type("resume\r")
            t.read_until(b"to cancel).")
            on_screen()
            u.press()
            t.read_until(b"> ")
            t.type("hush\r")
            t.read_until(b"to cancel).")
            on_screen()
            u.press(2.5)
            seen["cancelled"] = t.read_until(b"> ").decode()
            t.close()
            # The nurse tool: a frame, answered "wait" while the unit shows it, then the outcome.
            port = client.SerialTransport(str(cable.laptop_path))
            c = client.Client(port)
            hello = c.request("hello").data
            c.request("unlock", client.unlock_answer(SECRET, hello["kdf"], hello["nonce"]))

            def press_when_shown(_: object) -> None:
                def press() -> None:
                    on_screen()
                    u.press()
                threading.Thread(target=press, daemon=True).start()

            rep = c.request("hush", on_wait=press_when_shown)
            seen["frame"] = {"status": rep.status, **rep.data}
            try:
                c.request("hush")
            except client.Refused as e:
                seen["frame_refused"] = [e.code, str(e)]
            port.close()
        seen["records"] = [{k: r.get(k) for k in ("type", "via", "duration", "what", "change", "reason")}
                           for r in u.records() if r["type"] in ("pause", "resume", "change_declined")]
    finally:
        cable.unplug()
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
