"""Every screen the unit can show, with an example of each state worth seeing.

The golden-image tests render these and compare them pixel by pixel with tests/golden/,
``make gallery`` draws them for docs/screens.md and the README, and the render benchmark
times them. Add an example here when a screen gains a state.
"""

from __future__ import annotations

from dataclasses import dataclass

from bedside.core import screens as sc
from bedside.core import views


@dataclass(frozen=True)
class Example:
    name: str                # file name (tests/golden/NAME.png, docs/gallery/NAME.png)
    screen: sc.Screen
    caption: str
    brightness: str = "normal"   # how the gallery pictures it (normal | dim)


_DAY = ("done", "missed", "done", "open") + ("later",) * 11

EXAMPLES: tuple[Example, ...] = (
    Example("idle", sc.Idle("09:41", "10:00", "Ankle pumps", 2, 3, ("done", "missed", "done") + ("later",) * 12),
            "Idle: the time, the next session, today's sessions as marks"),
    Example("idle-missed", sc.Idle("13:12", "14:00", "Ankle pumps", 3, 7,
                                   ("done", "missed", "done", "done", "missed", "missed", "missed") + ("later",) * 8,
                                   status="missed", shift=(-2, 1)),
            "Idle after a missed session: the corner mark for the nurse (moved by the burn-in orbit)"),
    Example("idle-notice", sc.Idle("08:05", "09:00", "Routine", 1, 1, ("done",) + ("later",) * 14,
                                   notice="Log not saved: tell nurse"),
            "Idle with a fault for the nurse"),
    Example("idle-paused", sc.Idle("12:03", "13:00", "Ankle pumps", 3, 4, ("done",) * 3 + ("missed",) + ("later",) * 11,
                                   paused="14:00"),
            "Idle while a nurse has paused prompting: nothing sounds until then"),
    Example("idle-ready", sc.Idle("14:20", None, None, 0, 0, (), ready=True),
            "Idle after a discharge: the bed is empty and silent until an admission or a press"),
    Example("idle-night", sc.Idle("02:14", "07:00", "Ankle pumps", 0, 0, (), night=True),
            "Night, dimmed: lit by a press, or all night with [display] night = \"dim\"", "dim"),
    Example("prompt", sc.Prompt("hourly", "Ankle pumps", "10 each foot", snoozes_left=2, icon="foot", minutes=2),
            "Prompt: what to do, and how to start"),
    Example("prompt-routine", sc.Prompt("routine", "Full routine", "3 exercises", snoozes_left=0, icon="foot",
                                        minutes=6),
            "Routine prompt, no snoozes left"),
    Example("snoozed", sc.Snoozed("10:10", "Ankle pumps"), "Snoozed: until when"),
    Example("hint-snooze", sc.Hint("Let go to", "snooze", "zz"), "Held 2 s on a prompt"),
    Example("hint-no-snooze", sc.Hint("No more", "snoozes"), "Held 2 s with no snoozes left"),
    Example("intro-left", sc.Intro("Ankle pumps", "left", 10, 1, 3), "Guide: each block starts with which foot"),
    Example("intro-quads", sc.Intro("Quad sets", None, 10, 2, 3, icon="leg_press"), "Guide: an exercise for both legs"),
    Example("intro-other", sc.Intro("Straight leg up", None, 15, 2, 2, ""),
            "Guide: a configured exercise without a picture of its own"),
    Example("intro-set", sc.Intro("Quad sets", None, 10, 2, 3, icon="leg_press", set=1, sets=2),
            "Guide: an exercise in sets starts each set with its number"),
    Example("rest", sc.Rest("Quad sets", 2, 2), "Guide: the rest between sets"),
    Example("tip", sc.Tip("Ankle pumps", "Raise your leg on a pillow"),
            "Guide: an exercise's tip from the config, before its first block"),
    Example("guide-toes-up", sc.Guide("Ankle pumps", "left", 3, 10, "Toes up", icon="foot_up"),
            "Guide: toes up, left foot, rep 3 of 10"),
    Example("guide-hold", sc.Guide("Ankle pumps", "right", 3, 10, "Toes down", 2, 0.5, icon="foot_down"),
            "Guide: hold, the bar shrinking with the count"),
    Example("guide-quads", sc.Guide("Quad sets", None, 7, 10, "Tighten thigh", 4, 0.8, icon="leg_press"),
            "Guide: quadriceps set"),
    Example("guide-glutes", sc.Guide("Glute sets", None, 10, 10, "Squeeze", 1, 0.15, icon="squeeze"),
            "Guide: gluteal set"),
    Example("guide-relax", sc.Guide("Ankle pumps", "right", 10, 10, "Relax", icon="foot"), "Guide: relax between reps"),
    Example("done", sc.Done(20, 20), "Done"),
    Example("done-early", sc.Done(12, 20, early=True), "Ended early with a press: the reps done still count"),
    Example("progress", sc.Progress(3, 4, _DAY, "11:00", "Ankle pumps"), "A press with nothing due: today so far"),
    Example("progress-more", sc.Progress(3, 4, _DAY, "11:00", "Ankle pumps", offer=True),
            "By day: a press starts an extra set of ankle pumps, a hold the circles and alphabet"),
    Example("nurse-1", sc.Nurse("ward7-bed12", "Tue 24 Nov 09:41", "rtc", 5, 1, 12, 3, "1234/9f2c41d0",
                                episode="E2026-0042", day=2, regimen="standard", download="23 Nov 17:02"),
            "Nurse screen (hold 5 s), page 1: unit, episode, post-operative day, time and its source"),
    Example("nurse-2", sc.Nurse("ward7-bed12", "Tue 24 Nov 09:41", "rtc", 5, 1, 12, 3, "1234/9f2c41d0",
                                episode="E2026-0042", day=2, regimen="standard", download="23 Nov 17:02", page=2),
            "Nurse screen, page 2: sessions today and yesterday, last download, journal head"),
    Example("nurse-3", sc.Nurse("ward7-bed12", "Tue 24 Nov 09:41", "rtc", 5, 1, 12, 3, "1234/9f2c41d0",
                                episode="E2026-0042", day=2, regimen="standard", download="23 Nov 17:02", page=3,
                                paused="14:00", power_cut="24 Nov 03:10 2h05", storage="24 Nov 06:12"),
            "Nurse screen, page 3: a pause (a press resumes, or pauses when none runs), the last power cut, "
            "a disk fault since the last download"),
    Example("nurse-4", sc.Nurse("ward7-bed12", "Tue 24 Nov 09:41", "distrusted", 0, 0, 0, 0, "88/01ab23cd",
                                notices=("Clock behind log: set time", "Display: OSError"), page=4),
            "Nurse screen, page 4 (only when something needs attention)"),
    Example("pause-menu", sc.PauseMenu("2 hours", 2, 5),
            "A press on the nurse screen: how long to pause prompting (a press shows the next, a hold picks it)"),
    Example("admitted", sc.EpisodeChange("admitted", "E2026-0042", 0, "standard"), "Admission confirmed (ids only)"),
    Example("discharged", sc.EpisodeChange("discharged", "E2026-0042"), "Discharge confirmed"),
    Example("confirm-time", sc.Confirm("Set clock?", "Tue 24 Nov 2026", "14:05:07", 53),
            "Setting the clock over the serial link: the new time, running; a press confirms it"),
    Example("confirm-admit", sc.Confirm("Admit patient?", "E2026-0042", "23 Nov · standard", 41),
            "An admission sent over the serial link (episode, surgery date, regimen), waiting for a press"),
    Example("confirm-update", sc.Confirm("Install update?", "Version 0.2.0", "from 0.1.0", 57),
            "A software update from a ward stick, checked and waiting for a press (docs/install.md)"),
    Example("stick-busy", views.stick_screen("busy"),
            "USB stick plugged in: the export under way"),
    Example("stick-done", views.stick_screen("done"),
            "Export done: files written, synced and the stick unmounted"),
    Example("stick-refused", views.stick_screen("problem", "not_prepared"),
            "A stick that is not the ward's gets nothing"),
    Example("stick-full", views.stick_screen("problem", "full"),
            "Stick full: nothing was written to it, nothing lost on the unit"),
    Example("stick-removed", views.stick_screen("problem", "removed"),
            "Stick pulled out during the export"),
)
