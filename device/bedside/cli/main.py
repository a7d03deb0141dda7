"""The ``bedside`` command. Every failure a person can cause ends in a plain message and a
non-zero exit code, never a traceback."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside import __version__
from bedside.cli.common import DEFAULT_DATA, UserError
from bedside.core import config
from bedside.core.panels import PANELS
from bedside.journal import chain
from bedside.unit import host


def _sim_data_default() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bedside" / "simulator"


# --- run -----------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from bedside.display.panel import DisplayKeeper
    from bedside.unit import pins as hardware
    from bedside.unit import wiring
    from bedside.unit.clock import SystemClock
    from bedside.unit.sdnotify import Notifier
    from bedside.unit.supervise import SelfTest, Watchdog
    from bedside.unit.systemlog import SystemLog

    # Under systemd each line carries its priority: journalctl -u bedside -p warning shows the faults.
    log = SystemLog()
    cfg = host.find(args.config)
    model = hardware.pi_model()
    if model is None and not hardware.pins_chosen_explicitly():
        raise UserError(
            "No Raspberry Pi hardware found: this computer has no Raspberry Pi GPIO header "
            "(/proc/device-tree/model does not name one).\n"
            "To try the unit here on simulated pins and display, run:  bedside simulate\n"
            "(To drive other GPIO hardware, choose a gpiozero pin factory with GPIOZERO_PIN_FACTORY.)")
    data = Path(args.data)
    lock: Any = None
    try:
        lock = host.lock_data_dir(data)
    except host.DataDirBusy as e:
        raise UserError(str(e)) from None
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.ENOSPC, errno.EIO):
            raise UserError(f"cannot use the data directory {data}: {e.strerror}") from None
        # A card that cannot be written must not stop the prompts (nor make systemd restart us
        # in a loop): no second daemon can write it either.
        log.err(f"cannot lock {data} ({e.strerror}); running, the journal will show the fault")
    clock = SystemClock()
    # A missing display is a fault the unit lives with: it prompts by sound and LED, and the
    # keeper rebuilds the display with backoff until it answers (docs/hardening.md).
    display = DisplayKeeper(lambda: hardware.build_display(cfg.hardware), clock.mono, layout=cfg.layout)
    if display.error is not None:
        log.warning(f"display not available, prompting with sound and LED and retrying: {display.error}")
    notifier = Notifier.from_env()
    sources: list[wiring.SourceMaker] = [lambda u: display, lambda u: SelfTest(u, data, display=display)]
    interval = notifier.watchdog_interval
    if interval is not None:
        sources.append(lambda u: Watchdog(u, notifier, interval))
    wired = wiring.build(cfg, data, clock, display, boot=host.boot_id(), time_quality=host.detect_time_quality(),
                         guard_tone=True, sources=sources, say=log.err)
    unit = wired.unit
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: unit.request_stop(signal.Signals(signum).name))
    log.info(f"version {__version__}, unit {cfg.unit_id} on {model or 'GPIO'}, config {cfg.source}, data {data}")
    for warning in cfg.warnings:
        log.warning(f"config {cfg.source}: {warning}")
    reason = "error"
    link = sticks = None
    try:
        unit.start()
        link = _serial_link(unit, data, args.serial or cfg.serial.port, cfg.serial.baud, log.notice, log.warning)
        sticks = _stick_channel(unit, args.stick_socket, log.notice, log.warning)
        notifier.ready(f"unit {cfg.unit_id} running")
        reason = unit.run()
    finally:
        notifier.stopping(f"stopping ({reason})")
        if sticks is not None:
            sticks.stop()
        if link is not None:
            link.stop()
        wired.close()
        if lock is not None:
            lock.close()
        notifier.close()
    log.notice(f"stopped ({reason})")
    return 0


# --- simulate ------------------------------------------------------------------------

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


def cmd_simulate(args: argparse.Namespace) -> int:
    from bedside.unit import simulate
    from bedside.unit.loop import Trace

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
            text = Path(args.script).read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read the script {args.script}: {e.strerror}") from None
        try:
            actions = simulate.parse_script(text, tz, args.script)
        except simulate.ScriptError as e:
            raise UserError(str(e)) from None
    data = Path(args.data) if args.data else _sim_data_default()

    observers: list[Any] = []
    trace_file = None
    if args.trace:
        trace_file = open(args.trace, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
        observers.append(Trace(trace_file, cfg))
    frame_hooks: list[Callable[[Any], None]] = []
    sim_holder: dict[str, Any] = {}

    def on_frame(image: Any) -> None:
        for hook in frame_hooks:
            hook(image)

    sim = simulate.build(cfg, data, start, speed=speed, actions=actions, on_frame=on_frame, observers=observers)
    sim_holder["sim"] = sim
    if args.frames:
        frame_hooks.append(simulate.FrameSaver(Path(args.frames), sim.clock, tz))
    counts: Counter[str] = Counter()
    sim.unit.out.observers.append(lambda fx, now: counts.update([fx.type]) if hasattr(fx, "type") else None)

    restore: Callable[[], None] | None = None
    term: simulate.Terminal | None = None
    if interactive:
        term = simulate.Terminal(sim.clock, tz, size=(cfg.hardware.panel.width, cfg.hardware.panel.height))
        frame_hooks.append(term.on_frame)
        sim.unit.out.observers.append(term.observe)

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
    link = sticks = None
    # A simulated unit stops as a real one does on SIGTERM: cleanly, with a `stop` record.
    signal.signal(signal.SIGTERM, lambda signum, frame: sim.unit.request_stop("SIGTERM"))
    try:
        sim.unit.start()
        # In the terminal the link's messages go on the status line, not across the drawing.
        link = _serial_link(sim.unit, data, port, cfg.serial.baud,
                            None if term is None else lambda m: setattr(term, "message", m))
        sticks = _stick_channel(sim.unit, args.stick_socket or "",
                                None if term is None else lambda m: setattr(term, "message", m))
        if term is not None:
            term.draw()
            term.start_ticker()
        reason = sim.unit.run(until)
    except KeyboardInterrupt:
        sim.unit.shutdown("stopped by user")
        reason = "stopped by user"
    finally:
        if sticks is not None:
            sticks.stop()
        if link is not None:
            link.stop()
        if restore is not None:
            restore()
            sys.stdout.write("\x1b[?25h\x1b[?1049l")
            sys.stdout.flush()
        if trace_file is not None:
            trace_file.close()
        seq, digest = sim.unit.store.head() or (0, chain.GENESIS)
        sim.close()
    end = sim.clock.now().wall.astimezone(tz)
    summary = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    print(f"Simulated unit {cfg.unit_id} until {end:%Y-%m-%d %H:%M} ({reason}).")
    print(f"Journal {data}: {summary or 'nothing new'}; head {seq}/{chain.short(digest)}.")
    return 0


# --- config and log ------------------------------------------------------------------

def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = host.load(args.path)
    hourly = f"every {cfg.hourly_every_minutes} min" if cfg.hourly_every_minutes else "off"
    routine = ", ".join(t.strftime("%H:%M") for t in cfg.routine_at) or "none"
    print(f"{args.path}: OK - unit {cfg.unit_id}, {cfg.timezone}, awake {cfg.awake_start:%H:%M}-{cfg.awake_end:%H:%M},"
          f" hourly {hourly}, routine at {routine}")
    for warning in cfg.warnings:
        print(f"  warning: {warning}")
    _print_regimens(cfg)
    return 0


def _print_regimens(cfg: config.Config) -> None:
    """Each regimen's stages in words, so a ward can check its step-down before a patient meets it."""
    from bedside.core import episodes

    for r in cfg.regimens:
        default = " (default)" if r.name == cfg.default_regimen else ""
        print(f"  regimen {r.name}{default}:")
        for i, st in enumerate(r.stages):
            last = r.stages[i + 1].from_day - 1 if i + 1 < len(r.stages) else None
            if i == 0:
                days = "every day" if last is None else f"up to day {last}"   # and the days before it
            elif last is None:
                days = f"from day {st.from_day}"
            else:
                days = f"day {st.from_day}" if last == st.from_day else f"days {st.from_day} to {last}"
            rules = episodes.rules(cfg, episodes.Episode("check1", date(2000, 1, 1), r.name),
                                   date(2000, 1, 1) + timedelta(days=st.from_day))
            hourly = f"every {rules.every_minutes} min" if rules.every_minutes else "no hourly prompts"
            at = ", ".join(t.strftime("%H:%M") for t in rules.routine_at) or "none"
            print(f"    {days}: {hourly}; routine at {at}")
    if cfg.without_episode == "quiet":
        print("  with no patient admitted: no prompts")
    else:
        print(f"  with no patient admitted: {cfg.default_regimen} as on day 0")


def cmd_log_export(args: argparse.Namespace) -> int:
    from bedside.journal import export
    from bedside.journal.segments import Journal

    if args.format == "jsonl":
        from bedside.cli.journal import export_jsonl

        return export_jsonl(Path(args.data), args.out)
    if args.out:
        raise UserError("--out writes a verifiable JSONL export; for CSV redirect standard output")
    journal = Journal(Path(args.data), ZoneInfo("UTC"), "export", readonly=True)
    try:
        export.write_csv(sys.stdout, journal.records())
    except BrokenPipeError:
        pass
    finally:
        journal.close()
    return 0


# --- the ward secret -----------------------------------------------------------------

def cmd_secret_set(args: argparse.Namespace) -> int:
    """Set the ward secret at commissioning; the daemon must be stopped (one writer per journal)."""
    import getpass

    from bedside import secret
    from bedside.unit import host
    from bedside.unit.offline import OfflineWriter

    data = Path(args.data)
    try:
        if args.secret_file:
            value = secret.read_secret_file(Path(args.secret_file))
        else:
            if not sys.stdin.isatty():
                raise UserError("type the secret at a terminal, or give --secret-file FILE")
            value = secret.validate(getpass.getpass("New ward secret: "))
            if getpass.getpass("Type it again: ") != value:
                raise UserError("the two entries differ; nothing was changed")
    except secret.SecretError as e:
        raise UserError(str(e)) from None
    try:
        writer = OfflineWriter(data)
    except host.DataDirBusy:
        raise UserError(f"the unit is running on {data}; stop it first (systemctl stop bedside)") from None
    with writer:
        writer.tz = host.find(args.config).tz
        replacing = secret.load(data) is not None
        secret.set_secret(data, value)
        writer.append("secret_set", {"replaced": replacing})
    print(f"Ward secret {'changed' if replacing else 'set'} for the unit at {data}.")
    return 0


# --- report --------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from bedside.report import files as report_files
    from bedside.report import model as report

    out = Path(args.output)
    csv_path = Path(args.csv) if args.csv else out.with_suffix(".csv")
    if csv_path.resolve() == out.resolve():
        raise UserError("the report and the CSV would be the same file; give -o a name ending in .html")
    for p in (out, csv_path):
        if not p.parent.is_dir():
            raise UserError(f"cannot write {p}: the folder {p.parent} does not exist")
    try:
        loaded = report.load(Path(args.input))
        made = report_files.write(loaded.records, out, csv_path, header=loaded.header, damaged=loaded.damaged,
                            episode=args.episode, source=loaded.source)
    except report.ReportError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot write the report: {e.strerror} ({e.filename})", 1) from None
    print(f"Wrote {out} and {csv_path}: {report.summary(made)}.")
    if not made.verdict.ok:
        for problem in report.iter_problems(made.verdict):
            print(f"  - {problem}", file=sys.stderr)
        print("bedside: the record FAILED verification; the report says so on its first line.", file=sys.stderr)
        return 3
    return 0


# --- the serial link ------------------------------------------------------------------

def _teller(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """Where a background service's messages go: the simulator's status line, or standard error."""
    def say(message: str) -> None:
        if log is not None:
            log(message)
        else:
            print(f"bedside: {message}", file=sys.stderr, flush=True)
    return say


def _serial_link(unit: Any, data: Path, port: str, baud: int, log: Callable[[str], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> Any:
    """Serve the nurse link on ``port`` (nothing when it is empty), once the unit has started."""
    if not port:
        return None
    from bedside import secret
    from bedside.link.on_loop import LinkService
    from bedside.link.port import SerialLink

    say = _teller(log)
    fault = warn or say
    try:
        ward = secret.load(data)
    except secret.SecretError as e:
        fault(f"{e}; the serial link stays locked")
        ward = None
    if ward is None:
        fault("no ward secret set (bedside secret set): the serial link cannot be unlocked")
    svc = LinkService(unit, ward)
    svc.attach(unit.clock.now())
    link = SerialLink(unit, svc, port, baud, ward=ward, log=say, warn=fault)
    link.start()
    return link


def _stick_channel(unit: Any, path: str, log: Callable[[str], None] | None = None,
                   warn: Callable[[str], None] | None = None) -> Any:
    """Listen for USB stick exports on ``path`` (nothing when it is empty), once the unit has started."""
    if not path:
        return None
    from bedside.stick.channel import StickChannel

    say = _teller(log)
    channel = StickChannel(unit, Path(path), say)
    # A software update's confirmation is a press: the channel hears how it ended.
    unit.out.observers.append(channel.observe)
    try:
        channel.start()
    except OSError as e:
        # Prompting never depends on the stick: exports are refused (unrecorded) until a restart.
        (warn or say)(f"cannot listen for USB stick exports on {path} ({e.strerror}); "
                      "sticks get nothing until this is fixed")
        return None
    return channel


def _secret_source(path: str | None) -> Callable[[str, int], str]:
    """Where the nurse tools get the ward secret: a file (first line) or a prompt that does not echo."""
    import getpass

    from bedside import secret

    def ask(unit: str, attempt: int) -> str:
        if path:
            if attempt > 1:
                raise UserError(f"the ward secret in {path} was not accepted by unit {unit}", 4)
            try:
                return secret.read_secret_file(Path(path))
            except secret.SecretError as e:
                raise UserError(str(e)) from None
        if not sys.stdin.isatty():
            raise UserError("type the ward secret at a terminal, or give --secret-file FILE")
        return getpass.getpass(f"Ward secret for unit {unit}: ")

    return ask


def _open_port(port: str, baud: int) -> Callable[[], Any]:
    from bedside.laptop.client import SerialTransport

    if port == "auto":
        from bedside.laptop import ports

        try:
            port, what = ports.find()
        except ports.PortError as e:
            raise UserError(str(e)) from None
        print(f"Using {port}: {what}.", file=sys.stderr)
    return lambda: SerialTransport(port, baud)


def cmd_pull(args: argparse.Namespace) -> int:
    from bedside.laptop import pull
    from bedside.laptop.client import LinkError

    out = Path(args.out)
    from bedside.cli.journal import hospital_key

    key = hospital_key(args.key)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder {out}: {e.strerror}") from None
    try:
        got = pull.pull(_open_port(args.port, args.baud), out, _secret_source(args.secret_file))
        files, lines, verdict = pull.write_outputs(out, got, key)
    except pull.PullError as e:
        raise UserError(str(e), e.code) from None
    except LinkError as e:
        raise UserError(str(e), 1) from None
    except OSError as e:
        raise UserError(f"cannot write into {out}: {e.strerror}", 1) from None
    for line in lines:
        print(line)
    print("Files: " + ", ".join(str(f) for f in files))
    if not verdict.ok:
        for problem in verdict.report()[1:]:
            print(problem, file=sys.stderr)
        print("bedside: the downloaded record FAILED verification; keep the files and tell the ward manager.",
              file=sys.stderr)
        return 3
    return 0


def cmd_set_time(args: argparse.Namespace) -> int:
    from bedside.laptop import pull
    from bedside.laptop.client import LinkError

    try:
        res = pull.set_time(_open_port(args.port, args.baud), _secret_source(args.secret_file))
    except pull.PullError as e:
        raise UserError(str(e), e.code) from None
    except LinkError as e:
        raise UserError(str(e), 1) from None
    print(f"Unit {res['unit']}: clock was {str(res['old'])[:19].replace('T', ' ')}, "
          f"now {str(res['new'])[:19].replace('T', ' ')} (set from this laptop's clock).")
    return 0


def _add_serial_commands(sub: Any) -> None:
    pl = sub.add_parser("pull", help="download a unit's journal over the USB serial link, verify it, write the "
                        "export, CSV and report")
    pl.add_argument("--port", required=True, help="the unit's port: /dev/ttyACM0 (Linux), /dev/cu.usbmodem... "
                    "(macOS), COM3 (Windows), or auto: the one port whose USB identity is a unit's")
    pl.add_argument("--out", required=True, help="folder for the files; use the same one each time (it remembers "
                    "what it downloaded, to fetch only what is new and to notice a shortened journal)")
    pl.add_argument("--secret-file", help="read the ward secret from the first line of this file (default: ask)")
    pl.add_argument("--key", help="the hospital's seal key file (from bedside keys init): also check every seal")
    pl.add_argument("--baud", type=int, default=115200, help="line speed for a USB-UART cable (%(default)s)")
    pl.set_defaults(func=cmd_pull)
    st = sub.add_parser("set-time", help="set a unit's clock from this laptop's (confirmed with the unit's button)")
    st.add_argument("--port", required=True, help="the unit's port: /dev/ttyACM0 (Linux), /dev/cu.usbmodem... "
                    "(macOS), COM3 (Windows)")
    st.add_argument("--secret-file", help="read the ward secret from the first line of this file (default: ask)")
    st.add_argument("--baud", type=int, default=115200, help="line speed for a USB-UART cable (%(default)s)")
    st.set_defaults(func=cmd_set_time)


# --- the parser ----------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bedside", description="Bedside exercise prompting unit for post-operative "
                                "patients, and the tools nurses use with it.")
    p.add_argument("--version", action="version", version=f"bedside {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

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

    c = sub.add_parser("config", help="configuration tools")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    cc = csub.add_parser("check", help="validate a config file; exits non-zero on any problem")
    cc.add_argument("path", help="the config file to check, e.g. /etc/bedside/bedside.toml")
    cc.set_defaults(func=cmd_config_check)

    lg = sub.add_parser("log", help="journal tools")
    lsub = lg.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    le = lsub.add_parser("export", help="write the journal to standard output (or --out FILE)")
    le.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    le.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                    help="JSON lines, the whole record (default), or CSV of the main fields")
    le.add_argument("--out", help="write a JSONL export to this file (whole, synced) and note it as exported")
    le.set_defaults(func=cmd_log_export)
    from bedside.cli import journal as cli_journal

    cli_journal.add_log_commands(lsub)
    cli_journal.add_keys_command(sub)
    from bedside.cli import stick as cli_stick
    from bedside.cli import update as cli_update

    cli_stick.add_stick_commands(sub)
    from bedside.cli import ward as cli_ward

    cli_ward.add_ward_commands(sub)
    cli_update.add_update_commands(sub)

    sc = sub.add_parser("secret", help="the ward secret that unlocks the serial link and authorises USB sticks")
    ssub = sc.add_subparsers(dest="secret_command", metavar="ACTION", required=True)
    ss = ssub.add_parser("set", help="set or change the ward secret (at commissioning; the unit must be stopped)")
    ss.add_argument("--data", default=str(DEFAULT_DATA), help="data directory holding the journal (%(default)s)")
    ss.add_argument("--config", help="config file (default /etc/bedside/bedside.toml if present, else built-in)")
    ss.add_argument("--secret-file", help="read the secret from the first line of this file instead of a prompt")
    ss.set_defaults(func=cmd_secret_set)

    rp = sub.add_parser("report", help="write the adherence report (HTML) and a CSV of sessions")
    rp.add_argument("input", help="an export file (bedside log export) or a unit's data directory")
    rp.add_argument("-o", "--output", required=True, help="the HTML report to write, e.g. report.html")
    rp.add_argument("--csv", help="the CSV of sessions to write (default: the report's name ending in .csv)")
    rp.add_argument("--episode", help="report on this admission episode only")
    rp.set_defaults(func=cmd_report)
    _add_serial_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from bedside.journal.segments import JournalError
    from bedside.unit.pins import HardwareError

    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except config.ConfigError as e:
        print(f"bedside: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"bedside: {e}", file=sys.stderr)
        return e.code
    except (JournalError, HardwareError) as e:
        print(f"bedside: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``bedside log export | head``): not an error worth a word.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        print(f"bedside: unexpected error: {type(e).__name__}: {e}\n"
              "Please report this with the details below.", file=sys.stderr)
        if os.environ.get("BEDSIDE_DEBUG") or args.command == "run":
            traceback.print_exc()
        return 70
