"""The unit's sounds and the sequencer that plays them on the buzzer.

Every sound is an *information signal* in the sense of IEC 60601-1-8: one soft chime of
at most two notes, never the 3-pulse (medium) or 10-pulse (high priority) alarm bursts
that ward equipment uses, never louder on repeat, and the core never asks for sound at
night. The sequencer runs inside the daemon's one loop (its deadline joins the core's),
so sound timing works the same in real and fast-forwarded time and needs no threads.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

# A note is (frequency in Hz, seconds); frequency 0 is a silent gap. An active buzzer
# sounds at its own pitch whenever a note's frequency is not 0.
Note = tuple[int, float]

SOUNDS: dict[str, tuple[Note, ...]] = {
    "prompt": ((880, 0.15), (0, 0.08), (660, 0.30)),   # two-note chime: time to move
    "repeat": ((660, 0.25),),                          # one soft note: still waiting
    "tick": ((1320, 0.03),),                           # a rep is complete
    "done": ((660, 0.12), (0, 0.05), (988, 0.30)),     # rising pair: well done
    "snooze": ((660, 0.12), (0, 0.05), (440, 0.25)),   # falling pair: see you later
    "fault": ((330, 0.60),),                           # one low note: tell the nurse
}

DESCRIPTIONS = {
    "prompt": "two-note chime when a session is due",
    "repeat": "one soft note while a prompt is unanswered (every repeat_every_minutes)",
    "tick": "a short click at the end of each repetition",
    "done": "a rising pair when a session is complete",
    "snooze": "a falling pair when a snooze is accepted",
    "fault": "one low note when a part fails (daytime only)",
}

# Information signals repeat no more often than this (FACTS: IEC 60601-1-8).
CHIME_SPACING_S = 15.0
_CHIMES = {"prompt", "repeat"}


def pulses(name: str) -> int:
    """How many separate sounding pulses a sound has (what an active buzzer makes of it)."""
    count, sounding = 0, False
    for freq, _ in SOUNDS[name]:
        if freq and not sounding:
            count += 1
        sounding = bool(freq)
    return count


@dataclass
class _Playing:
    notes: tuple[Note, ...]
    index: int
    ends: float


class Player:
    """Plays named sounds on ``output(freq)`` (0 = silent) at the loop's pace."""

    def __init__(self, output: Callable[[int], None]) -> None:
        self.output = output
        self.playing: _Playing | None = None
        self.last_chime = -1e18
        # The newest sounds, for tests and the simulator: a list of every sound would grow for ever.
        self.played: collections.deque[str] = collections.deque(maxlen=1000)

    def play(self, name: str, now: float) -> bool:
        if name in _CHIMES:
            if now - self.last_chime < CHIME_SPACING_S:
                return False
            self.last_chime = now
        notes = SOUNDS[name]
        self.played.append(name)
        self.playing = _Playing(notes, 0, now + notes[0][1])
        self.output(notes[0][0])
        return True

    def deadline(self) -> float | None:
        return self.playing.ends if self.playing else None

    def advance(self, now: float) -> None:
        p = self.playing
        while p is not None and now >= p.ends:
            p.index += 1
            if p.index >= len(p.notes):
                self.output(0)
                self.playing = p = None
                return
            freq, secs = p.notes[p.index]
            self.output(freq)
            p.ends += secs
