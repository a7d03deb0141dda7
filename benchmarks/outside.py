"""The shipped unit's wake-ups and storage, measured from outside; writes the ``bench:shipped``
section of docs/performance.md (part of ``make bench``; about ten minutes, most of it real
idle time; root for the ext4 loop device that counts the card's bytes).

Wake-ups: ``bedside run`` (benchmarks/shipped.py) idle in real time in three states of a day,
every thread counted by the kernel, against a ``schedule`` loop counted the same way; a whole
day is the states weighted by the default config's hours (15 awake, 9 night), and the loop's
timed wake-ups over simulated days (with every session unanswered, or all answered) add what
sessions cost. Storage: simulated days of the same wiring, every file's syncs (strace) and the
device's bytes, against JSONL appended and fsynced per record.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import docs, shipped

AWAKE_H, NIGHT_H = 15, 9


def main() -> None:
    now = datetime.now(UTC)
    print("idle by day, between sessions (240 s) ...", flush=True)
    day = shipped.idle(240, config_text=shipped.day_config(now, awake_from_minutes_ago=20))
    print("night (600 s) ...", flush=True)
    night = shipped.idle(600, config_text=shipped.day_config(now, awake_from_minutes_ago=-120))
    print("a session due (30 s) ...", flush=True)
    # The window opens a minute after the start (a session already past at start is an outage's).
    due = shipped.idle(30, warmup=80, config_text=shipped.day_config(datetime.now(UTC), awake_from_minutes_ago=-1))
    print("schedule loop (120 s) ...", flush=True)
    base = shipped.schedule_idle(120)
    print("simulated days ...", flush=True)
    quiet = shipped.days(1, config_text=shipped.quiet_config(), trace=False)
    unanswered = shipped.days(1)
    answered = shipped.days(1, answered=True)
    week = shipped.days(7, answered=True)
    jsonl = shipped.jsonl(week.records)

    idle_day = quiet.loop_wakeups
    per_h = due.total / due.seconds * 3600
    window = (day.total / day.seconds * AWAKE_H + night.total / night.seconds * NIGHT_H) * 3600
    rows = [
        ("Idle wake-ups a day, all threads, watchdog on: the shipped wiring's loop over a simulated day "
         "prompting nothing (no patient, `without_episode = \"quiet\"`)", "≤ 1,500", f"{idle_day:,}"),
        ("  the same, real time: every thread, by day between sessions / at night (weighted 15 h + 9 h)", "—",
         f"{day.total} in {day.seconds:.0f} s / {night.total} in {night.seconds:.0f} s = {window:,.0f} a day; "
         f"threads other than the loop's: {day.others + night.others} wake-ups in all "
         f"({len(day.threads)} threads)"),
        ("`schedule.run_pending()` + `sleep(1)` loop, counted the same way (real time)", "≥ 60× ours",
         f"{base.per_day:,.0f} a day: {base.per_day / max(idle_day, 1):.0f}× the unit's idle day"),
        ("Watchdog pings while idle by day (WatchdogSec from the service)", "—",
         f"{day.pings} in {day.seconds:.0f} s, none waking the unit of its own"),
        ("While a session is due, every thread (the light blinked by the kernel, or steady)", "≤ 60 an hour",
         f"{per_h:,.0f} wake-ups an hour ({due.total} in {due.seconds:.0f} s)"),
        ("The loop's timed wake-ups over a simulated day: every session unanswered / all answered", "—",
         f"{unanswered.loop_wakeups:,} / {answered.loop_wakeups:,} (the unanswered day is due 7.5 h)"),
        ("Syncs per journal record, every file: a day answered / unanswered / a week answered", "≤ 1.2",
         f"{answered.syncs_per_record:.2f} / {unanswered.syncs_per_record:.2f} / {week.syncs_per_record:.2f} "
         f"(a week: {week.records} records; {_files(week)})"),
        ("Bytes to the card per record (device counters): a day answered / unanswered / a week", "≤ 35 KiB",
         f"{answered.kib_per_record:.1f} / {unanswered.kib_per_record:.1f} / {week.kib_per_record:.1f} KiB"),
        ("JSONL appended and fsynced per record (baseline, same records as the week)", "—",
         f"{jsonl.syncs_per_record:.2f} syncs, {jsonl.kib_per_record:.1f} KiB per record: the journal "
         f"writes {week.kib_per_record / max(jsonl.kib_per_record, 0.01):.1f}× the bytes"),
        ("Bytes to the panel over a guided day (real SSD1306 driver, counting bus)", "—",
         f"{answered.panel_bytes / 1024:,.0f} KiB"),
    ]
    note = ("`bedside run`'s own wiring in a child process: mock pins, the real SSD1306 driver over a "
            "counting bus, NOTIFY_SOCKET and WATCHDOG_USEC as the shipped service sets them, a pty serial "
            "link, the stick socket, a seal key. Wake-ups are voluntary context switches of every thread "
            "(/proc); syncs are every fsync/fdatasync on every file under the data directory (strace -f); "
            "bytes are the ext4 loop device's own counters.")
    zero = ("On a Pi Zero 2 W every figure here is the same: wake-ups, syncs and bytes are counts, "
            "and none of them depends on the processor's speed. What the GPIO libraries add cannot "
            "run here. With libgpiod 2 (the installed path, the `gpiod` package) no lgpio chip is "
            "opened: the button's line-event reader wakes once per edge and never otherwise, and "
            "the LED, the active buzzer and the vibration motor are line requests, one ioctl per "
            "change and no thread (argued from libgpiod's and the kernel's source, docs/design.md). "
            "Whatever opens an lgpio chip adds lgpio's transmit thread, which wakes at least 50 "
            "times a second for ever, PWM or not: lg's `lgGpiochipOpen()` (`lgGpio.c`) ends with "
            "`lgPthTxStart();`, and `lgPthTx()` (`lgPthTx.c`) loops setting `pthTxDelayMicros = "
            "20000; // run at least fifty times a second` and sleeping in `clock_nanosleep`. That "
            "is about 4.3 million wake-ups a day, 3,000 times the goal, from a passive buzzer (its "
            "PWM stays on lgpio), an SPI panel (luma drives its DC and RST pins through rpi-lgpio), "
            "or the fallback without `gpiod`, where lgpio also polls the button every 0.5 ms (about "
            "2,000 wake-ups a second). None of this has been counted on a Pi yet: the commissioning "
            "checklist counts every thread of the running service on the first unit of each Pi "
            "model.")
    print(docs.write_section("shipped", "Shipped unit, from outside",
                             [docs.measured_on("make bench", note), "", *docs.table(rows), "", zero]))


def _files(d: shipped.Days) -> str:
    return ", ".join(f"{name} {n}" for name, n in d.files.syncs.most_common())


if __name__ == "__main__":
    main()
