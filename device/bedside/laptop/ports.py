"""``--port auto``: the unit's port among the laptop's serial ports, by its USB identity.

A unit is reached either through a Pi Zero's own USB port (the Linux serial gadget,
``0525:a4a7``) or through one of the USB-serial cables docs/serial.md names. Exactly one such
port must be present: with none or several, the message lists every port seen, so the nurse
can pick one with ``--port``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bedside.core.errors import FAILED, BedsideError

# USB vendor:product → what it is (docs/serial.md's table of cables says the same).
UNIT_PORTS: dict[tuple[int, int], str] = {
    (0x0525, 0xA4A7): "a Pi Zero's USB port (serial gadget)",
    (0x0403, 0x6001): "an FTDI FT232R USB-serial cable",
    (0x0403, 0x6014): "an FTDI FT232H USB-serial cable",
    (0x0403, 0x6015): "an FTDI FT-X USB-serial cable",
    (0x10C4, 0xEA60): "a Silicon Labs CP210x USB-serial cable",
    (0x1A86, 0x7523): "a WCH CH340 USB-serial cable",
    (0x067B, 0x2303): "a Prolific PL2303 USB-serial cable",
    (0x2E8A, 0x000C): "a Raspberry Pi Debug Probe",
}


class PortError(BedsideError):
    """No port, or more than one, could be the unit's; the message lists what was seen."""

    exit_code = FAILED           # no unit plugged in: as "no unit answered"


def _comports() -> Sequence[Any]:
    from serial.tools import list_ports

    return list(list_ports.comports())


def _seen(p: Any) -> str:
    ident = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else "no USB id"
    desc = p.description if p.description and p.description != "n/a" else ""
    return f"{p.device} ({ident}{', ' + desc if desc else ''})"


def find(comports: Callable[[], Sequence[Any]] = _comports) -> tuple[str, str]:
    """(device, what it is) of the one port that looks like a unit's."""
    ports = sorted(comports(), key=lambda p: str(p.device))
    found = [(p.device, UNIT_PORTS[(p.vid, p.pid)]) for p in ports if (p.vid, p.pid) in UNIT_PORTS]
    if len(found) == 1:
        return found[0]
    seen = "; ".join(_seen(p) for p in ports) or "none at all"
    if not found:
        raise PortError("no unit found among this laptop's serial ports: plug the unit's cable in (a Zero's inner "
                        f"USB port, or the USB-serial cable), wait a few seconds and try again, or give --port. "
                        f"Ports seen: {seen}")
    raise PortError("more than one port could be a unit's: unplug the others, or give --port with one of: " +
                    "; ".join(f"{d} ({what})" for d, what in found))
