"""One root for errors: ``bedside``'s main catches BedsideError and answers with the code the
error's class carries and its message; one whose class gives no code is a fault in bedside."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from bedside.cli import main as cli_main
from bedside.cli.common import UserError
from bedside.core import errors
from bedside.core.config import ConfigError
from bedside.display.device import HardwareError
from bedside.journal.salvage import BadOverflowChain
from bedside.journal.segments import JournalDamaged, JournalError
from bedside.laptop import pull
from bedside.laptop.client import Disconnected, LinkError
from bedside.laptop.ports import PortError
from bedside.link.frames import FrameError
from bedside.secret import SecretError


def _main_raising(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    def func(_args: argparse.Namespace) -> int:
        raise error

    class Parser:
        def parse_args(self, _line: list[str]) -> argparse.Namespace:
            return argparse.Namespace(func=func)

    monkeypatch.setattr(cli_main, "parser", lambda command=None: Parser())
    return cli_main.main(["anything"])


CASES: list[tuple[Callable[[], BaseException], int]] = [
    (lambda: ConfigError("bedside.toml", ["[unit] id: missing"]), errors.USAGE),
    (lambda: UserError("wrong use"), errors.USAGE),
    (lambda: UserError("could not finish", 1), errors.FAILED),
    (lambda: UserError("the HL7 messages could not be made", 70), errors.UNEXPECTED),   # worded by the command
    (lambda: JournalError("the journal's storage is full"), errors.FAILED),
    (lambda: JournalDamaged("the journal file is damaged"), errors.FAILED),
    (lambda: HardwareError("check the wiring"), errors.FAILED),
    (lambda: SecretError("no secret"), errors.FAILED),
    (lambda: pull.PullError("no unit answered"), errors.FAILED),
    (lambda: pull.Tampered("the unit's journal was replaced"), errors.BROKEN),
    (lambda: pull.NotAccepted("the ward secret was not accepted"), errors.REFUSED),
    (lambda: pull.NotConfirmed("the clock was not changed"), errors.NOT_CONFIRMED),
    (lambda: LinkError("the cable"), errors.FAILED),
    (lambda: Disconnected("the port went away"), errors.FAILED),
    (lambda: PortError("no unit found"), errors.FAILED),
]


@pytest.mark.parametrize(("make", "code"), CASES)
def test_an_error_for_people_exits_with_its_class_code_and_its_message(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        make: Callable[[], BaseException], code: int) -> None:
    error = make()
    assert _main_raising(monkeypatch, error) == code
    assert capsys.readouterr().err == f"bedside: {error}\n"


@pytest.mark.parametrize("error", [FrameError("bad_frame", "a frame"), BadOverflowChain("overflow chain broken"),
                                   KeyError("a bug")])
def test_an_error_meant_to_be_caught_inside_is_reported_as_a_fault(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: BaseException) -> None:
    assert _main_raising(monkeypatch, error) == errors.UNEXPECTED == 70
    err = capsys.readouterr().err
    assert err.startswith(f"bedside: unexpected error: {type(error).__name__}: ")
    assert "Please report this with the details below." in err and "Traceback" in err


def test_a_standard_base_is_kept_beside_the_root() -> None:
    assert issubclass(FrameError, ValueError) and issubclass(FrameError, errors.BedsideError)
    assert issubclass(BadOverflowChain, ValueError)
