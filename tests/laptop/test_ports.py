"""``--port auto``: the unit's port found by USB identity among pyserial's own port records."""

from __future__ import annotations

import pytest
from serial.tools.list_ports_common import ListPortInfo

from bedside.cli.common import UserError
from bedside.cli.serial import _open_port
from bedside.laptop import ports


def port(device: str, vid: int | None = None, pid: int | None = None, desc: str = "n/a") -> ListPortInfo:
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.description = vid, pid, desc
    return p


BUILTIN = port("/dev/ttyS0")
MOUSE = port("/dev/ttyACM1", 0x046D, 0xC52B, "Logitech receiver")
ZERO = port("/dev/ttyACM0", 0x0525, 0xA4A7, "Gadget Serial")
CH340 = port("COM4", 0x1A86, 0x7523, "USB-SERIAL CH340 (COM4)")


def test_the_one_unit_port_is_found() -> None:
    assert ports.find(lambda: [BUILTIN, MOUSE, ZERO]) == ("/dev/ttyACM0", "a Pi Zero's USB port (serial gadget)")
    assert ports.find(lambda: [CH340]) == ("COM4", "a WCH CH340 USB-serial cable")


def test_none_lists_what_was_seen() -> None:
    with pytest.raises(ports.PortError) as e:
        ports.find(lambda: [MOUSE, BUILTIN])
    assert str(e.value).startswith("no unit found among this laptop's serial ports")
    assert str(e.value).endswith("Ports seen: /dev/ttyACM1 (046d:c52b, Logitech receiver); /dev/ttyS0 (no USB id)")
    with pytest.raises(ports.PortError, match="Ports seen: none at all"):
        ports.find(lambda: [])


def test_several_are_named_for_the_nurse_to_choose() -> None:
    with pytest.raises(ports.PortError) as e:
        ports.find(lambda: [ZERO, CH340, BUILTIN])
    assert "more than one port could be a unit's" in str(e.value)
    assert "/dev/ttyACM0 (a Pi Zero's USB port (serial gadget)); COM4 (a WCH CH340 USB-serial cable)" in str(e.value)


def test_pull_and_set_time_take_auto(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ports, "_comports", lambda: [BUILTIN, ZERO])
    monkeypatch.setattr(ports.find, "__defaults__", (ports._comports,))
    _open_port("auto", 115200)
    assert "Using /dev/ttyACM0: a Pi Zero's USB port (serial gadget)." in capsys.readouterr().err
    monkeypatch.setattr(ports.find, "__defaults__", (lambda: [BUILTIN],))
    with pytest.raises(UserError, match="no unit found"):
        _open_port("auto", 115200)


def test_the_real_list_is_read() -> None:
    """On this machine, whatever ports it has: the real pyserial call runs and answers in words."""
    try:
        device, what = ports.find()
    except ports.PortError as e:
        assert "Ports seen:" in str(e) or "more than one" in str(e)
    else:
        assert device and what
