"""The unit's commands: ``bedside run`` on a Pi and ``bedside simulate`` anywhere, with the
serial link and the stick channel they serve."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.cli.common import DEFAULT_DATA, UserError
from bedside.core import config
from bedside.core.panels import PANELS
from bedside.durable import read_bounded
from bedside.journal import chain
from bedside.unit import host


def add_unit_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("run", help="run the unit on a Raspberry Pi's real hardware")
    r.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    r.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    r.add_argument("--serial", metavar="PORT", help="serve the nurse link on this port (default: [serial] port)")
    r.add_argument("--stick-socket", metavar="PATH", default="/run/bedside/stick.sock",
                   help="listen here for USB stick exports (%(default)s; '' for none)")
    r.set_defaults(func=cmd_run)

    from bedside.unit.simulate import KEY_LINES

    s = sub.add_parser("simulate", help="run the same unit on simulated pins and display, in real or virtual time",
                       description="Run the unit's own code on simulated pins and display, in real or virtual "
                       "time. In the terminal the panel is drawn above the status lines.",
                       epilog="keys:\n" + "\n".join(f"  {k}" for k in KEY_LINES)
                       + "\n\nScenario files and the trace are described in docs/simulator.md.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    s.add_argument("--panel", choices=sorted(PANELS), help="draw on this panel instead of [hardware] display")
    s.add_argument("--layout", help="screen layout: large, standard (128x64), wide (ssd1322), square (128x128); "
                                    "default: the panel's own")
    s.add_argument("--data", help=f"data directory (default {_sim_data_default()})")
    s.add_argument("--start", help="simulated start, local date-time, e.g. 2026-11-24T06:30 (default: now)")
    end = s.add_mutually_exclusive_group()
    end.add_argument("--days", type=float, help="simulate this many days, then stop as a power cut would")
    end.add_argument("--until", help="simulate until this local date-time")
    s.add_argument("--speed", type=float, help="run virtual time X times faster than real time "
                   "(interactive default 1; headless default: as fast as possible)")
    s.add_argument("--script", help="scenario file of button presses (see docs/simulator.md)")
    s.add_argument("--headless", action="store_true", help="no terminal display or keys")
    s.add_argument("--frames", help="save a PNG into this folder each time the screen changes")
    s.add_argument("--trace", help="write one JSON line per effect (sound, LED, screen, record) to this file")
    s.add_argument("--serial", metavar="PORT", help="serve the nurse link on this port or pyserial URL "
                   "(headless runs then default to real time)")
    s.add_argument("--stick-socket", metavar="PATH", help="listen here for USB stick exports "
                   "(bedside stick export --socket PATH --data DATA)")
    s.set_defaults(func=cmd_simulate)


def _sim_data_default() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bedside" / "simulator"


def _sticks(path: str) -> Any:
    """The stick channel on ``path``, handed to the unit to start once it runs (the unit does not import the stick)."""
    from bedside.stick import channel

    return functools.partial(channel.listen, path=path)


def cmd_run(args: argparse.Namespace) -> int:
    from bedside.stick import settings as ward_settings
    from bedside.unit import serve

    unit_libraries("bedside run")
    # The ward's configuration, applied from a ward stick, over the unit's own.
    own = host.find(args.config)
    try:
        cfg = ward_settings.effective(own, Path(args.data))
    except config.ConfigError as e:
        # A ward configuration the unit cannot use (a damaged card, a file put there by hand)
        # must not stop the prompting: the unit runs on its own and records why. The file stays.
        cfg = dataclasses.replace(own, refused=(
            f"the ward's configuration was refused, running on the unit's own ({own.source}) until a ward "
            f"stick brings the settings again: {' '.join(str(e).split())}",))
    try:
        serve.run_on_pi(cfg, Path(args.data), port=args.serial or cfg.serial.port,
                        listeners=[_sticks(args.stick_socket)])
    except serve.NoHardware as e:
        raise UserError(
            f"No Raspberry Pi hardware found: {e}.\n"
            "To try the unit here on simulated pins and display, run:  bedside simulate\n"
            "On another Linux board with a GPIO chip, name the board and its chip in the config:\n"
            "[hardware] board and gpio_chip (or install with --board NAME --gpio-chip CHIP;\n"
            "docs/install.md, \"Other boards\").") from None
    except serve.CannotServe as e:
        raise UserError(str(e)) from None
    return 0


def _with_panel(cfg: config.Config, panel: str | None, layout: str | None) -> config.Config:
    """``cfg`` drawing on another panel (its own layout unless ``layout`` names one it has)."""
    if panel is None and layout is None:
        return cfg
    name = panel or cfg.hardware.display
    if name not in PANELS:
        raise UserError(f"--panel must be one of {', '.join(PANELS)}, got {name!r}")
    choices = PANELS[name].layouts
    if layout is not None and layout not in choices:
        raise UserError(f"the {name} panel has the layouts {', '.join(choices)}; --layout {layout} is not one")
    if panel is not None and layout is None and cfg.display.layout not in choices:
        layout = ""     # the file's layout was for its own panel
    return dataclasses.replace(
        cfg, hardware=dataclasses.replace(cfg.hardware, display=name),
        display=dataclasses.replace(cfg.display, layout=cfg.display.layout if layout is None else layout))


def unit_libraries(what: str) -> None:
    """The unit's own libraries are an extra: a laptop install for the nurses has none of them."""
    import importlib.util

    missing = [m for m in ("gpiozero", "luma.core", "luma.oled")
               if importlib.util.find_spec(m.split(".")[0]) is None or importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{what} needs the unit's libraries ({', '.join(missing)} missing): this is a laptop "
                        "install. Install bedside with the unit extra for the simulator "
                        "(pipx install './bedside-VERSION-py3-none-any.whl[unit]'), or on a Pi with "
                        "tools/install.sh (docs/install.md)")


def cmd_simulate(args: argparse.Namespace) -> int:
    from bedside.unit import serve, simulate
    from bedside.unit.loop import Trace

    unit_libraries("bedside simulate")

    cfg = _with_panel(host.find(args.config), args.panel, args.layout)
    tz = cfg.tz
    for warning in cfg.warnings:
        print(f"bedside: config {cfg.source}: {warning}", file=sys.stderr)
    try:
        start = simulate.parse_local(args.start, tz) if args.start else datetime.now(UTC)
        until = simulate.parse_local(args.until, tz) if args.until else None
    except ValueError as e:
        raise UserError(f"--start/--until must be ISO date-times like 2026-11-24T06:30:00 ({e})") from None
    if args.days is not None:
        if args.days <= 0:
            raise UserError("--days must be more than 0")
        until = start + timedelta(days=args.days)
    if until is not None and until <= start:
        raise UserError("--until must be after --start")
    if args.speed is not None and args.speed <= 0:
        raise UserError("--speed must be more than 0 (e.g. 60 for a minute per second)")
    interactive = not args.headless
    if interactive and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the interactive simulator needs a terminal; add --headless (with --days or --until) "
                        "to run without one")
    port = args.serial or cfg.serial.port
    # A laptop on the serial link talks in real time: a unit racing through virtual days could not answer it.
    speed = args.speed if args.speed is not None else (1.0 if interactive or port else None)
    if not interactive and until is None and speed is None:
        until = start + timedelta(days=1)
    actions: list[simulate.Action] = []
    if args.script:
        try:
            text = read_bounded(Path(args.script)).decode("utf-8")
        except OSError as e:
            raise UserError(f"cannot read the script {args.script}: {e.strerror}") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise UserError(f"{args.script} is not a simulator script ({e})") from None
        try:
            actions = simulate.parse_script(text, tz, args.script)
        except simulate.ScriptError as e:
            raise UserError(str(e)) from None
    data = Path(args.data) if args.data else _sim_data_default()

    observers: list[Any] = []
    trace_file = None
    if args.trace:
        # A pipe or a device (a test watching the unit live) gets each line as it happens; a file
        # is written in blocks.
        live = not Path(args.trace).is_file() and Path(args.trace).exists()
        trace_file = open(args.trace, "w", encoding="utf-8", buffering=1 if live else -1)  # noqa: SIM115 - closed in finally
        observers.append(Trace(trace_file, cfg))
    frame_hooks: list[Callable[[Any], None]] = []
    sim_holder: dict[str, Any] = {}

    def on_frame(image: Any) -> None:
        for hook in frame_hooks:
            hook(image)

    try:
        lock = serve.lock(data, _teller(None))
    except serve.CannotServe as e:
        raise UserError(str(e)) from None
    try:
        sim = simulate.build(cfg, data, start, speed=speed, actions=actions, on_frame=on_frame, observers=observers)
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    sim_holder["sim"] = sim
    if args.frames:
        frame_hooks.append(simulate.FrameSaver(Path(args.frames), sim.clock, tz))
    counts: Counter[str] = Counter()
    sim.unit.observe(lambda fx, now: counts.update([fx.type]) if hasattr(fx, "type") else None)

    restore: Callable[[], None] | None = None
    term: simulate.Terminal | None = None
    if interactive:
        term = simulate.Terminal(sim.clock, tz, size=(cfg.hardware.panel.width, cfg.hardware.panel.height))
        frame_hooks.append(term.on_frame)
        sim.unit.observe(term.observe)

        def on_key(ch: str) -> None:
            assert term is not None
            if ch in " \npP\r":
                sim.finger.keys.put(simulate.PRESS_S)
            elif ch in "hHlL":
                sim.finger.keys.put(simulate.HOLD_S)
            elif ch in "nN":
                sim.finger.keys.put(simulate.NURSE_HOLD_S)
            elif ch in "aAdD":
                event = simulate.demo_episode_event(ch.lower(), sim.clock.now(), tz)
                sim.unit.post(event)
                term.message = f"sent: {simulate.describe(event)}"
            elif ch in "+=" and sim.clock.speed is not None:
                sim.clock.set_speed(min(3600.0, sim.clock.speed * 2))
            elif ch in "-_" and sim.clock.speed is not None:
                sim.clock.set_speed(max(0.25, sim.clock.speed / 2))
            elif ch in "qQ":
                sim.unit.request_stop("stopped by user")
                return
            simulate.wake(sim.unit)
            term.draw()

        sys.stdout.write("\x1b[?1049h\x1b[?25l")
        term.message = f"data: {data}"
        restore = simulate.read_keys(on_key)
    # In the terminal the link's and the channel's messages go on the status line, not across the drawing.
    say = _teller(None if term is None else lambda m: setattr(term, "message", m))
    try:
        # A simulated unit stops as a real one does: cleanly, with a `stop` record.
        with serve.serving(sim.unit, data, port=port, baud=cfg.serial.baud,
                           listeners=[_sticks(args.stick_socket or "")], say=say, warn=say):
            try:
                if term is not None:
                    term.draw()
                    term.start_ticker()
                reason = sim.unit.run(until)
            except KeyboardInterrupt:
                sim.unit.shutdown("stopped by user")
                reason = "stopped by user"
    finally:
        if restore is not None:
            restore()
            sys.stdout.write("\x1b[?25h\x1b[?1049l")
            sys.stdout.flush()
        if trace_file is not None:
            trace_file.close()
        seq, digest = sim.unit.store.head() or (0, chain.GENESIS)
        sim.close()
        if lock is not None:
            lock.close()
    end = sim.clock.now().wall.astimezone(tz)
    summary = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    print(f"Simulated unit {cfg.unit_id} until {end:%Y-%m-%d %H:%M} ({reason}).")
    print(f"Journal {data}: {summary or 'nothing new'}; head {seq}/{chain.short(digest)}.")
    return 0


def _teller(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """Where a background service's messages go: the simulator's status line, or standard error."""
    def say(message: str) -> None:
        if log is not None:
            log(message)
        else:
            print(f"bedside: {message}", file=sys.stderr, flush=True)
    return say
