"""The host the unit runs on, as the shell sees it at start: which boot this is, how far the
system clock can be trusted, the data directory's lock (one writer per journal), and where
the config file is and how it is read from disk (the core only parses what was read).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bedside.core import config, wall
from bedside.core.errors import BedsideError
from bedside.durable import CONFIG_FILE, TooLarge, read_bounded

DEFAULT_PATHS = (Path("/etc/bedside/bedside.toml"),)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        # Imported only here: uuid imports platform too, and a unit always has /proc.
        import uuid

        return str(uuid.uuid4())


# Before this, no unit's clock can be right: the software did not exist yet; from
# PLAUSIBLE_UNTIL on it is a clock fault too (core/wall.py).
PLAUSIBLE_FROM = wall.PLAUSIBLE_FROM
TIME_ERROR = 5       # adjtimex's clock state when the kernel is not synchronised


def kernel_synchronised() -> bool | None:
    """Whether the kernel believes its clock is synchronised (by any NTP client); None if it cannot say."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(1024)     # a zeroed struct timex: modes 0 only reads
        clock_state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    return None if clock_state < 0 else clock_state != TIME_ERROR


def detect_time_quality(now: datetime | None = None, root: Path = Path("/"),
                        synced: Callable[[], bool | None] = kernel_synchronised) -> str:
    """How far the system clock can be trusted at start.

    ``distrusted`` — earlier than this software (a Pi without a clock that kept time), or
    in the next century (no clock a unit in service shows);
    ``ntp`` — synchronised (the kernel says so, or systemd-timesyncd's flag);
    ``rtc`` — a real-time clock that kept time (it set the system clock at boot and agrees
    with it; a Pi 5's clock without its battery restarts at 1970 and does not count);
    ``unverified`` — anything else, e.g. fake-hwclock's last saved time.
    """
    now_wall = now or datetime.now(UTC)
    plausible_until = wall.PLAUSIBLE_UNTIL
    if not PLAUSIBLE_FROM <= now_wall < plausible_until:
        return "distrusted"
    if (root / "run/systemd/timesync/synchronized").exists() or synced():
        return "ntp"
    rtc = root / "sys/class/rtc/rtc0"
    try:
        since_epoch = int((rtc / "since_epoch").read_text().strip())
        hctosys = (rtc / "hctosys").read_text().strip() == "1"
    except (OSError, ValueError):
        return "unverified"
    if hctosys and since_epoch >= PLAUSIBLE_FROM.timestamp() and abs(since_epoch - now_wall.timestamp()) < 600:
        return "rtc"
    return "unverified"


class DataDirBusy(BedsideError):
    pass


def lock_data_dir(data: Path) -> IO[bytes]:
    """Hold an exclusive lock so that two daemons never write one journal."""
    import fcntl

    data.mkdir(parents=True, exist_ok=True)
    f = open(data / "daemon.lock", "wb")  # noqa: SIM115 - held open for the daemon's lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise DataDirBusy(f"another bedside daemon is already using {data}") from None
    return f


# --- the config file ---------------------------------------------------------------

def load(path: Path | str) -> config.Config:
    """Read and validate a config file; every failure is a ConfigError a person can act on."""
    p = Path(path)
    try:
        raw = read_bounded(p, CONFIG_FILE)
    except TooLarge as e:
        raise config.ConfigError(str(p), [f"is not a bedside config file: {e}"]) from None
    except IsADirectoryError:
        raise config.ConfigError(str(p), ["is a directory, not a config file"]) from None
    except FileNotFoundError:
        raise config.ConfigError(str(p), ["the file does not exist; write the annotated config there with "
                                           f"`bedside config example --out {p}` and edit it"]) \
            from None
    except OSError as e:
        raise config.ConfigError(str(p), [f"cannot be read ({e.strerror}); check its permissions"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise config.ConfigError(str(p), ["is not UTF-8 text; save it as plain UTF-8"]) from None
    except tomllib.TOMLDecodeError as e:
        raise config.ConfigError(str(p), [f"is not valid TOML: {e}"]) from None
    except RecursionError:
        raise config.ConfigError(str(p), ["is not a bedside config file: it is nested too deeply"]) from None
    return config.parse(data, str(p))


def find(path: Path | str | None) -> config.Config:
    """The config named on the command line, else the system one, else the built-in defaults."""
    if path is not None:
        return load(path)
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return load(candidate)
    return config.Config()
