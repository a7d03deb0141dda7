"""The one place a unit is built, for ``bedside run`` on a Pi and for ``bedside simulate``.

Both get the same loop, journal store, sound player, LED and button wiring; what differs
between a Pi and the simulator is a parameter here, not a second copy that could drift:

* the pins: gpiozero's default factory (lgpio on a Pi) or ``MockFactory``;
* the panel: a ``DisplayKeeper`` that rebuilds a failing display with backoff (a timed
  source of the loop), or the simulator's dummy device that never fails;
* the tone guard: on a Pi a buzzer's GPIO error is noted, not raised (``GuardedTone``);
* the timed sources: the daily self-test and systemd's watchdog on a Pi, the scripted
  finger in the simulator (each made once the unit exists, since they act on it);
* the boot id and how far the clock is trusted (the host's, or ``simulated``);
* where the journal's check after the first frame runs: a worker thread on a Pi, the loop
  itself in the simulator (fast-forwarded runs stay deterministic);
* for the crash torture's workload (``tools/workload.py``), the journal's and store's own
  knobs (WAL pages between checkpoints, seal interval, segment size) and the whole check at
  start, before the first record, so that a kill at any moment lands in a checked journal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.core.config import Config
from bedside.core.events import Effect, Instant
from bedside.display.surface import Surface
from bedside.journal.journal import Journal
from bedside.journal.segments import JournalError
from bedside.journal.store import Store
from bedside.link.unit_port import TimedSource
from bedside.unit import pins as hardware
from bedside.unit.clock import Clock
from bedside.unit.journal_check import JournalCheck
from bedside.unit.loop import Outputs, Unit
from bedside.unit.sdnotify import Notifier
from bedside.unit.sounds import Player
from bedside.unit.supervise import GuardedTone

SourceMaker = Callable[[Unit], TimedSource]


@dataclass
class Wired:
    """A built unit and the parts its builder closes when it is done."""

    unit: Unit
    pins: Any
    journal: Journal | None

    def close(self) -> None:
        self.pins.close()
        self.unit.store.close()


def build(cfg: Config, data: Path, clock: Clock, panel: Surface, *, boot: str, time_quality: str,
          pin_factory: Any = None, guard_tone: bool = False, sources: Sequence[SourceMaker] = (),
          observers: Sequence[Callable[[Effect, Instant], None]] = (),
          say: Callable[[str], None] | None = None, check_in_thread: bool = True,
          check_at_start: bool = False, journal_options: Mapping[str, Any] | None = None,
          store_options: Mapping[str, Any] | None = None) -> Wired:
    """Build the unit on ``data``'s journal, with ``panel`` as its display (a keeper that
    rebuilds it is also one of ``sources``). A journal that cannot be opened does not stop the
    unit: it prompts, and the store keeps trying.

    The journal is checked after the first frame (``JournalCheck``), or, with
    ``check_at_start``, whole before the start record. ``journal_options`` go to each
    ``Journal`` the store opens and ``store_options`` to the ``Store``.
    """
    pins = hardware.build_pins(cfg.hardware, pin_factory=pin_factory)
    journal_kw = dict(journal_options or {})

    def opener() -> Journal:
        return Journal(data, cfg.tz, boot, **journal_kw)

    try:
        journal: Journal | None = opener()
    except JournalError as e:
        # Prompting never waits for the disk: the store reads what it can and keeps trying.
        if say is not None:
            say(f"{e}; prompting without the journal until it can be opened")
        journal = None
    store = Store(data, cfg.tz, boot, journal=journal, opener=opener,
                  check=True if check_at_start else "background", **dict(store_options or {}))
    tone = GuardedTone(pins.tone) if guard_tone else pins.tone
    # The kernel blinks the light where the installer's overlay made it an LED device; a plain
    # line is lit steady. Neither wakes the loop.
    led = hardware.status_light(pins.led)
    outputs = Outputs(panel, Player(tone), led, list(observers))
    if pins.vibration is not None:
        outputs.observers.append(hardware.Vibration(pins.vibration))
    unit = Unit(cfg, clock, journal, outputs, time_quality=time_quality, boot=boot, store=store)
    unit.attach_button(pins.button)
    if not check_at_start:
        # The whole journal is checked after the first frame, off the loop's thread (journal_check.py).
        unit.add_source(JournalCheck(unit, data, in_thread=check_in_thread, say=say))
    for make in sources:
        unit.add_source(make(unit))
    return Wired(unit, pins, journal)


def on_pi(cfg: Config, data: Path, *, warn: Callable[[str], None],
          err: Callable[[str], None]) -> tuple[Wired, Notifier]:
    """The unit on a Pi's own parts (``bedside run``): the system clock, a display keeper, a
    guarded buzzer, the daily self-test and, under systemd, its watchdog. Returns the unit and
    the systemd notifier (told when the unit is ready and stopping)."""
    from bedside.display import device
    from bedside.display.panel import DisplayKeeper
    from bedside.unit import host
    from bedside.unit.clock import SystemClock
    from bedside.unit.supervise import SelfTest, Watchdog

    clock = SystemClock()
    # A missing display is a fault the unit lives with: it prompts by sound and LED, and the
    # keeper rebuilds the display with backoff until it answers (docs/hardening.md).
    display = DisplayKeeper(lambda: device.build_display(cfg.hardware), clock.mono, layout=cfg.layout)
    if display.error is not None:
        warn(f"display not available, prompting with sound and LED and retrying: {display.error}")
    notifier = Notifier.from_env()
    sources: list[SourceMaker] = [lambda u: display, lambda u: SelfTest(u, data, display=display)]
    interval = notifier.watchdog_interval
    if interval is not None:
        sources.append(lambda u: Watchdog(u, notifier, interval))
    wired = build(cfg, data, clock, display, boot=host.boot_id(), time_quality=host.detect_time_quality(),
                  guard_tone=True, sources=sources, say=err)
    return wired, notifier

