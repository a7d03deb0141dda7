"""A gpiozero pin factory on libgpiod 2 (the ``gpiod`` package), for the unit's outputs.

gpiozero's default backend on Bookworm is lgpio, and opening a chip through lgpio starts its
transmit thread, which wakes at least fifty times a second for ever, PWM or not (lg's
``lgGpiochipOpen`` ends with ``lgPthTxStart()``; ``lgPthTx`` loops on ``clock_nanosleep`` with
``pthTxDelayMicros = 20000; // run at least fifty times a second``). That alone is about 4.3
million wake-ups a day. Here each output is a line request on the GPIO character device and
setting it is one ioctl: no thread, no timer, nothing runs between two changes.

gpiozero's own ``LED``, ``Buzzer`` and ``DigitalOutputDevice`` run on it unchanged (pass
``pin_factory=``). What it does not do it refuses in gpiozero's own terms: no PWM
(``PinPWMUnsupported``: libgpiod has no timing thread, so a passive buzzer stays on gpiozero's
backend), no edge callbacks (``PinEdgeDetectUnsupported``: the button has its own reader,
``pins.LineEventButton``). A plain input (level and pull) works, for completeness.

It is a ``LocalPiFactory``, so it shares gpiozero's pin reservations with every other local
backend in the process: a pin cannot be claimed twice through two backends.
"""

from __future__ import annotations

from typing import Any

from gpiozero.exc import (
    PinEdgeDetectUnsupported,
    PinFixedPull,
    PinInvalidFunction,
    PinInvalidPull,
    PinPWMUnsupported,
    PinSetInput,
)
from gpiozero.pins.local import LocalPiFactory, LocalPiPin

CONSUMER = "bedside"


class GpiodPin(LocalPiPin):  # type: ignore[misc]  # gpiozero ships no type hints
    """One header pin as a libgpiod 2 line request; requested when first used, released on close."""

    def __init__(self, factory: GpiodFactory, info: Any) -> None:
        super().__init__(factory, info)
        self._request: Any = None
        self._function = "input"
        self._pull = info.pull or "floating"
        self._state = False

    # The line's offset on the header's chip is its BCM number on every Pi (RP1, BCM2711, BCM2835).
    @property
    def offset(self) -> int:
        return int(self._number)

    def _request_line(self, output: bool, state: bool = False) -> None:
        import gpiod
        from gpiod.line import Bias, Direction, Value

        if output:
            settings = gpiod.LineSettings(direction=Direction.OUTPUT,
                                          output_value=Value.ACTIVE if state else Value.INACTIVE)
        else:
            bias = {"up": Bias.PULL_UP, "down": Bias.PULL_DOWN, "floating": Bias.DISABLED}[self._pull]
            settings = gpiod.LineSettings(direction=Direction.INPUT, bias=bias)
        if self._request is None:
            # An OSError here (line busy, no such line) reaches the device's builder, which
            # names the pin and what to check (pins.build_pins).
            self._request = gpiod.request_lines(self._factory.chip, consumer=CONSUMER,
                                                config={self.offset: settings})
        else:
            self._request.reconfigure_lines(config={self.offset: settings})

    def close(self) -> None:
        # Released dark: an output is driven inactive first, so a closed LED or buzzer is off.
        if self._request is None:
            return
        if self._function == "output" and self._state:
            self._set_state(False)
        self._request.release()
        self._request = None
        self._function = "input"

    def output_with_state(self, state: bool) -> None:
        # One request, already at its level: no blip between "output" and the first value.
        self._request_line(True, bool(state))
        self._function = "output"
        self._state = bool(state)

    def input_with_pull(self, pull: str) -> None:
        self._check_pull(pull)
        self._pull = pull
        self._request_line(False)
        self._function = "input"

    def _get_function(self) -> str:
        return self._function

    def _set_function(self, value: str) -> None:
        if value == "output":
            self.output_with_state(False)
        elif value == "input":
            self.input_with_pull(self._pull)
        else:
            raise PinInvalidFunction(f'invalid function "{value}" for pin {self!r}: input or output')

    def _get_state(self) -> bool:
        if self._function == "output" or self._request is None:
            return self._state                     # what was last set: no ioctl to read it back
        from gpiod.line import Value

        return bool(self._request.get_value(self.offset) == Value.ACTIVE)

    def _set_state(self, value: Any) -> None:
        from gpiod.line import Value

        if self._function != "output":
            raise PinSetInput(f"cannot set the state of input pin {self!r}")
        state = bool(value)
        self._request.set_value(self.offset, Value.ACTIVE if state else Value.INACTIVE)
        self._state = state

    def _get_pull(self) -> str:
        return self._pull if self._function == "input" else "floating"

    def _check_pull(self, value: str) -> None:
        if value not in ("floating", "up", "down"):
            raise PinInvalidPull("pull must be floating, up or down")
        if self.info.pull and value != self.info.pull:
            raise PinFixedPull(f"{self!r} has a fixed pull resistor")

    def _set_pull(self, value: str) -> None:
        if self._function != "input":
            raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
        self.input_with_pull(value)

    def _get_frequency(self) -> None:
        return None

    def _set_frequency(self, value: float | None) -> None:
        if value is not None:
            raise PinPWMUnsupported(f"{self!r}: libgpiod has no PWM (use gpiozero's lgpio backend for a passive "
                                    "buzzer)")

    def _get_bounce(self) -> None:
        return None

    def _set_bounce(self, value: float | None) -> None:
        if value is not None:
            raise PinEdgeDetectUnsupported(f"{self!r}: this factory drives outputs; it watches no edges")

    def _get_edges(self) -> str:
        return "none"

    def _set_edges(self, value: str) -> None:
        if value != "none":
            raise PinEdgeDetectUnsupported(f"{self!r}: this factory drives outputs; it watches no edges")

    def _set_when_changed(self, value: Any) -> None:
        if value is not None:
            raise PinEdgeDetectUnsupported(f"{self!r}: this factory drives outputs; it watches no edges")

    def _enable_event_detect(self) -> None:
        raise PinEdgeDetectUnsupported(f"{self!r}: this factory drives outputs; it watches no edges")

    def _disable_event_detect(self) -> None:
        pass


class GpiodFactory(LocalPiFactory):  # type: ignore[misc]
    """Pins on ``chip`` (the header's GPIO character device, ``pins.header_chip()``).

    ``revision`` stands in for the board's revision code where there is no Pi to read it from.
    """

    def __init__(self, chip: str, revision: int | None = None) -> None:
        super().__init__()
        self.chip = chip
        self._revision = revision
        self.pin_class = GpiodPin

    def _get_revision(self) -> int:
        return self._revision if self._revision is not None else int(super()._get_revision())

    def close(self) -> None:
        # LocalPiFactory shares one table of pins between every local backend: close ours only.
        for info, pin in list(self.pins.items()):
            if isinstance(pin, GpiodPin) and pin.factory is self:
                pin.close()
                del self.pins[info]
