"""``bedside simulate``: the real daemon on gpiozero mock pins and luma's dummy display,
in virtual time that runs at real speed, X times faster, or deadline to deadline.

The simulator only plays the patient's hand (it drives the mock button pin low and high,
as a finger would) and the clock; everything else is the unit's own code. Scenario files
hold one action per line::

    # time (local, unit's zone)  action  [arguments]
    2026-11-24T09:01:30  press
    2026-11-24T10:05:00  hold  2.5
    2026-11-24T11:00:00  clock 2026-11-24T12:00:00   # set the wall clock (a jump)
    2026-11-24T08:30:00  admit E2026-0042 2026-11-23 standard
    2026-11-27T11:00:00  discharge E2026-0042
    2026-11-25T17:00:00  export usb
    2026-11-25T10:30:00  pause 2h                     # 1h, 2h, 4h or morning
    2026-11-25T11:15:00  resume

``admit``, ``discharge``, ``pause``, ``resume`` and ``export`` are what a nurse, the serial
link and the USB stick send the unit; the simulator posts the same events.
"""

from __future__ import annotations

import collections
import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from PIL import Image

from bedside.core import pause
from bedside.core.errors import BedsideError
from bedside.core.events import (
    Admit,
    Discharge,
    Effect,
    Event,
    Exported,
    Instant,
    Led,
    Pause,
    Play,
    Resume,
    Show,
    Tick,
)
from bedside.display.render import title_bar
from bedside.unit.clock import VirtualClock

PRESS_S = 0.3
HOLD_S = 2.5
NURSE_HOLD_S = 6.0
PIN_HISTORY = 2000       # changes kept per mock pin (tests look at the first few)


class ScriptError(BedsideError):
    pass


@dataclass(frozen=True)
class Action:
    at: datetime
    kind: str                  # press | hold | clock | admit | discharge | export | pause | resume
    seconds: float = 0.0
    clock_to: datetime | None = None
    line: int = 0
    event: Event | None = None  # admit, discharge, export, pause, resume: what the unit is sent


ACTIONS = ("press", "hold", "clock", "admit", "discharge", "export", "pause", "resume")
NURSE_ACTIONS = ("admit", "discharge", "export", "pause", "resume")


def _nurse_action(kind: str, args: list[str], at: datetime, where: str, n: int) -> Action:
    if kind == "admit":
        if not 2 <= len(args) <= 3:
            raise ScriptError(f"{where}: admit needs an episode id, the surgery date and optionally a regimen, "
                              "e.g. admit E2026-0042 2026-11-23 standard")
        try:
            surgery = date.fromisoformat(args[1])
        except ValueError:
            raise ScriptError(f"{where}: {args[1]!r} is not a date like 2026-11-23") from None
        return Action(at, kind, line=n, event=Admit(args[0], surgery, args[2] if len(args) == 3 else None,
                                                    via="simulator"))
    if kind == "pause":
        if len(args) != 1:
            raise ScriptError(f"{where}: pause needs how long: pause 1h, pause 2h, pause 4h or pause morning")
        try:
            duration = pause.parse(args[0])
        except pause.PauseError as e:
            raise ScriptError(f"{where}: {e}") from None
        return Action(at, kind, line=n, event=Pause(duration, via="simulator"))
    if kind == "resume":
        if args:
            raise ScriptError(f"{where}: resume takes nothing more")
        return Action(at, kind, line=n, event=Resume(via="simulator"))
    if kind == "discharge":
        if len(args) > 1:
            raise ScriptError(f"{where}: discharge takes at most the episode id")
        return Action(at, kind, line=n, event=Discharge(args[0] if args else None, via="simulator"))
    if len(args) != 1:
        raise ScriptError(f"{where}: export needs how the records left the unit, e.g. export usb")
    return Action(at, kind, line=n, event=Exported(args[0], {"simulated": True}))


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date-time; without an offset it is local time in the unit's zone."""
    t = datetime.fromisoformat(text)
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def parse_script(text: str, tz: ZoneInfo, source: str = "script") -> list[Action]:
    actions: list[Action] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        # A quoted word is cut short: a damaged file's line may be megabytes long.
        parts = [p if len(p) <= 60 else p[:57] + "..." for p in line.split()]
        where = f"{source} line {n}"
        try:
            at = parse_local(parts[0], tz)
        except ValueError:
            raise ScriptError(f"{where}: {parts[0]!r} is not a date-time like 2026-11-24T09:01:30") from None
        if len(parts) < 2 or parts[1] not in ACTIONS:
            raise ScriptError(f"{where}: the action must be one of {', '.join(ACTIONS)}")
        kind = parts[1]
        if kind in NURSE_ACTIONS:
            actions.append(_nurse_action(kind, parts[2:], at, where, n))
            continue
        if kind == "clock":
            if len(parts) != 3:
                raise ScriptError(f"{where}: clock needs the new time, e.g. clock 2026-11-24T12:00:00")
            try:
                actions.append(Action(at, kind, clock_to=parse_local(parts[2], tz), line=n))
            except ValueError:
                raise ScriptError(f"{where}: {parts[2]!r} is not a date-time") from None
            continue
        seconds = PRESS_S if kind == "press" else HOLD_S
        if len(parts) >= 3:
            try:
                seconds = float(parts[2])
            except ValueError:
                raise ScriptError(f"{where}: {parts[2]!r} is not a number of seconds") from None
            if not 0.01 <= seconds <= 600:
                raise ScriptError(f"{where}: seconds held must be between 0.01 and 600")
        if len(parts) > 3:
            raise ScriptError(f"{where}: too many words")
        actions.append(Action(at, kind, seconds, line=n))
    actions.sort(key=lambda a: (a.at, a.line))
    return actions


class Finger:
    """Presses the simulated button: scripted actions and keys typed in the terminal."""

    def __init__(self, clock: VirtualClock, pin: Any, actions: list[Action],
                 post: Callable[[Event], None] | None = None) -> None:
        self.clock = clock
        self.pin = pin
        self.post = post
        self.actions = list(actions)
        self.keys: queue.Queue[float] = queue.Queue()
        self.release_at: float | None = None

    def _next_action_mono(self) -> float | None:
        if not self.actions:
            return None
        return self.clock.mono_of(self.actions[0].at)

    def deadline(self) -> float | None:
        if self.release_at is not None:
            # While the finger holds the button, nothing else it does can happen before release
            # (an action due meanwhile waits: reporting its past time would spin the loop).
            return self.release_at
        if not self.keys.empty():
            return float("-inf")
        return self._next_action_mono()

    def fire(self, now: Instant) -> None:
        if self.release_at is not None and now.mono >= self.release_at:
            self.release_at = None
            self.pin.drive_high()
        while self.release_at is None:
            if not self.keys.empty():
                self._press(self.keys.get(), now)
                continue
            t = self._next_action_mono()
            if t is None or t > now.mono:
                break
            a = self.actions.pop(0)
            if a.kind == "clock" and a.clock_to is not None:
                self.clock.set_wall(a.clock_to)
            elif a.event is not None:
                if self.post is not None:
                    self.post(a.event)
            else:
                self._press(a.seconds, now)

    def _press(self, seconds: float, now: Instant) -> None:
        self.pin.drive_low()
        self.release_at = now.mono + seconds


# --- the terminal ----------------------------------------------------------------

_QUADRANTS = " ▘▝▀▖▌▞▛▗▚▐▜▄▙▟█"
# How a frame becomes text: half blocks (one column a pixel, two pixels a row), or quadrants
# (two pixels a column, four a row) where the terminal is too small for half blocks.
MODES = {"half": (1, 2), "quad": (2, 4)}
# What the simulator prints below the panel, every line within 80 columns.
KEY_LINES = ("[space] press   [h] hold 2.5 s: snooze   [n] hold 6 s: nurse screen",
             "[a] admit   [d] discharge   [+/-] faster/slower   [q] quit")
STATUS_ROWS = 2 + len(KEY_LINES) + 1     # the time and LED, the sound, the keys, a message
MAX_COLUMNS = 80


def frame_text(image: Image.Image, mode: str) -> list[str]:
    """A frame as text in ``mode`` (MODES): its size divided by the mode's pixels per character."""
    px = image.convert("1").load()
    assert px is not None
    w, h = image.size
    rows = []
    if mode == "half":
        for y in range(0, h, 2):
            rows.append("".join(" ▀▄█"[(1 if px[x, y] else 0) | (2 if px[x, y + 1] else 0)] for x in range(w)))
    else:
        for y in range(0, h, 4):
            row = []
            for x in range(0, w, 2):
                # Each quadrant stands for two pixel rows. Lit if either is lit keeps thin strokes of
                # light text on a dark panel; inside a lit bar (a title drawn dark on light) that rule
                # fills every character in, so there a quadrant is lit only if both are.
                lit = sum(bool(px[x + dx, y + dy]) for dx in (0, 1) for dy in range(4))
                inverse = lit > 4
                bits = 0
                for bit, (dx, dy) in enumerate(((0, 0), (1, 0), (0, 2), (1, 2))):
                    a, b = bool(px[x + dx, y + dy]), bool(px[x + dx, y + dy + 1])
                    if (a and b) if inverse else (a or b):
                        bits |= 1 << bit
                row.append(_QUADRANTS[bits])
            rows.append("".join(row))
    return rows


def _titled(rows: list[str], title: str, tag: str, bottom: int) -> list[str]:
    """A title bar's letters, too small for quarter-block characters (they smear into blocks),
    written as text in reverse video over the rows that drew it."""
    width = len(rows[0])
    text = f" {title}"[: width - len(tag) - 2]
    line = f"\x1b[7m{text}{' ' * (width - len(text) - len(tag) - 1)}{tag} \x1b[27m"
    top = -(-(bottom + 1) // 4)          # the character rows the bar's pixel rows reach into
    return [line, *([" " * width] * (top - 1)), *rows[top:]]


def fitting_mode(size: tuple[int, int], columns: int, lines: int) -> str | None:
    """The largest drawing of a ``size`` panel, with its frame and status, that fits the terminal."""
    for mode, (px_w, px_h) in MODES.items():
        if size[0] // px_w + 2 <= columns and size[1] // px_h + 2 + STATUS_ROWS <= lines:
            return mode
    return None


def needed(size: tuple[int, int]) -> tuple[int, int]:
    """The smallest terminal (columns, lines) that shows a ``size`` panel."""
    px_w, px_h = MODES["quad"]
    return max(size[0] // px_w + 2, *(len(k) + 1 for k in KEY_LINES)), size[1] // px_h + 2 + STATUS_ROWS


def too_small(size: tuple[int, int], columns: int, lines: int) -> list[str]:
    """What to say instead of a panel that would wrap into garbage."""
    cols, rows = needed(size)
    return [f"This terminal is {columns} x {lines}: too small for the {size[0]} x {size[1]} panel.",
            f"Make it at least {cols} columns by {rows} lines; the unit keeps running.",
            "[q] quits."]


class Terminal:
    """Draws the emulated OLED and the unit's status in the terminal; reads keys."""

    def __init__(self, clock: VirtualClock, tz: ZoneInfo, out: IO[str] = sys.stdout,
                 size: tuple[int, int] = (128, 64)) -> None:
        self.clock = clock
        self.tz = tz
        self.out = out
        self.image = Image.new("1", size)
        self.brightness = "normal"
        self.led = "off"
        self.sound = ""
        self.message = ""
        self.screen: object = None
        self.lock = threading.Lock()

    def start_ticker(self) -> None:
        """Redraw the status line every second; the unit itself still sleeps until its deadlines."""

        def tick() -> None:
            while True:
                threading.Event().wait(1.0)
                self.draw()

        threading.Thread(target=tick, name="ticker", daemon=True).start()

    def on_frame(self, image: Image.Image) -> None:
        self.image = image.copy()
        self.draw()

    def observe(self, effect: Effect, now: Instant) -> None:
        if isinstance(effect, Led) and effect.mode != self.led:
            self.led = effect.mode
            self.draw()
        elif isinstance(effect, Play) and effect.sound != "tick":
            self.sound = f"♪ {effect.sound} at {now.wall.astimezone(self.tz):%H:%M:%S}"
            self.draw()
        elif isinstance(effect, Show):
            self.screen = effect.screen
            if effect.brightness != self.brightness:
                self.brightness = effect.brightness
                self.draw()

    def size(self) -> tuple[int, int]:
        if not self.out.isatty():
            return 132, 50
        size = os.get_terminal_size(self.out.fileno())
        return size.columns, size.lines

    def lines(self, columns: int, lines: int) -> list[str]:
        """Everything drawn, each line at most ``min(columns, 80)`` characters wide."""
        mode = fitting_mode(self.image.size, columns, lines)
        if mode is None:
            return too_small(self.image.size, columns, lines)
        rows = frame_text(self.image, mode)
        edge = "─" * len(rows[0])
        bar = title_bar(self.screen)
        if mode == "quad" and bar is not None and self.brightness != "off":
            rows = _titled(rows, *bar)
        if self.brightness == "off":
            rows = self._dark(len(rows[0]), len(rows))
        dim = "\x1b[2m" if self.brightness == "dim" else ""
        now = self.clock.now().wall.astimezone(self.tz)
        speed = "paused" if self.clock.speed == 0 else f"x{self.clock.speed:g}"
        led = {"off": "○ off", "due": "◐ due (blinking)", "missed": "● missed",
               "done": "○ done (dark)"}.get(self.led, self.led)
        width = min(columns, MAX_COLUMNS) - 1
        status = [f" {now:%a %d %b %H:%M:%S} ({speed})   LED {led}", f" {self.sound}",
                  *(f" {k}" for k in KEY_LINES), f" {self.message}"]
        return [f"┌{edge}┐", *(f"│{dim}{r}\x1b[0m│" for r in rows), f"└{edge}┘",
                *(line[:width] for line in status)]

    def _dark(self, width: int, height: int) -> list[str]:
        """The panel is off (night): say so inside it, rather than show an empty box."""
        words = ["The display is off:", "it is night on the ward.", "[space] lights it."]
        next_time = getattr(self.screen, "next_time", None)
        if next_time:
            words.append(f"Next prompt {next_time}.")
        words = [w[:width] for w in words]
        top = max(0, (height - len(words)) // 2)
        rows = [" " * width] * height
        for i, w in enumerate(words[:height]):
            rows[top + i] = w.center(width)
        return rows

    def draw(self) -> None:
        with self.lock:
            lines = self.lines(*self.size())
            self.out.write("\x1b[H" + "\n".join(line + "\x1b[K" for line in lines) + "\x1b[J")
            self.out.flush()


def read_keys(on_key: Callable[[str], None]) -> Callable[[], None]:
    """Put the terminal in cbreak mode and feed single keys to ``on_key``; returns a restore function."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def loop() -> None:
        while True:
            ch = sys.stdin.read(1)
            if not ch:
                return
            on_key(ch)

    threading.Thread(target=loop, name="keys", daemon=True).start()

    def restore() -> None:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore


class FrameSaver:
    """Saves a PNG each time the screen changes, named by sequence and simulated time."""

    def __init__(self, folder: Path, clock: VirtualClock, tz: ZoneInfo) -> None:
        self.folder = folder
        self.clock = clock
        self.tz = tz
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, image: Image.Image) -> None:
        self.count += 1
        t = self.clock.now().wall.astimezone(self.tz)
        image.save(self.folder / f"{self.count:06d}-{t:%Y%m%dT%H%M%S}.png")


def wake(unit: Any) -> None:
    unit.post(Tick())


@dataclass
class Simulation:
    """A whole simulated unit: the daemon plus the mock parts it runs on."""

    unit: Any
    clock: VirtualClock
    factory: Any
    pins: Any
    device: Any
    finger: Finger
    journal: Any

    @property
    def button_pin(self) -> Any:
        return self.factory.pin(self.unit.cfg.hardware.button_pin)

    @property
    def buzzer_pin(self) -> Any:
        return self.factory.pin(self.unit.cfg.hardware.buzzer_pin)

    def advance(self, until: datetime) -> None:
        """Run the unit (started if need be) until the virtual clock reaches ``until``, without stopping it."""
        if self.unit.state is None:
            self.unit.start()
        while self.clock.now().wall < until and self.unit.stopped is None:
            self.unit.run_once(until)

    def close(self) -> None:
        self.pins.close()
        self.unit.store.close()
        if self.journal is not None:
            self.journal.close()


def build(cfg: Any, data: Path, start: datetime, *, speed: float | None = None, actions: list[Action] | None = None,
          on_frame: Callable[[Image.Image], None] | None = None,
          observers: list[Callable[[Effect, Instant], None]] | None = None, boot: str | None = None,
          device: Any = None) -> Simulation:
    """Wire the real daemon (``wiring.build``, as ``run`` does) to mock pins, a dummy display
    (or ``device``: a real luma driver over a fake bus) and a virtual clock."""
    import uuid

    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from bedside.display import device as luma_device
    from bedside.display.panel import DisplayOut
    from bedside.unit import wiring

    clock = VirtualClock(start, speed)
    factory = MockFactory(pin_class=MockPWMPin)
    if device is None:
        device = luma_device.emulated(cfg.hardware.panel)
    fingers: list[Finger] = []

    def finger(unit: Any) -> Finger:
        fingers.append(Finger(clock, factory.pin(cfg.hardware.button_pin), actions or [], post=unit.post))
        return fingers[0]

    panel = DisplayOut(device, on_frame=on_frame, layout=cfg.layout)
    wired = wiring.build(cfg, data, clock, panel, boot=boot or str(uuid.uuid4()), time_quality="simulated",
                         pin_factory=factory, sources=[finger], observers=observers or (), check_in_thread=False)
    # Mock pins keep every change for tests to inspect; over a simulated month of presses and
    # chimes that history would grow without end (a real pin keeps none): the newest suffice.
    for pin in factory.pins.values():
        pin.states = collections.deque(pin.states, maxlen=PIN_HISTORY)
    return Simulation(wired.unit, clock, factory, wired.pins, device, fingers[0], wired.journal)


def demo_episode_event(key: str, now: Instant, tz: ZoneInfo) -> Event:
    """What the interactive keys send: ``a`` admits a demo episode operated on today, ``d`` discharges."""
    local = now.wall.astimezone(tz)
    if key == "a":
        return Admit(f"DEMO-{local:%m%d%H%M}", local.date(), None, via="simulator")
    return Discharge(None, via="simulator")


def describe(event: Event) -> str:
    if isinstance(event, Admit):
        return f"admit {event.episode}, surgery {event.surgery.isoformat()}"
    if isinstance(event, Discharge):
        return "discharge"
    if isinstance(event, Pause):
        return f"pause {event.duration}"
    return type(event).__name__.lower()
