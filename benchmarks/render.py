"""How long drawing each screen takes (goal: a frame in at most 1.5 ms on an x86 laptop core,
so about 15 ms on a Pi Zero 2 W, well inside the 100 ms from press to feedback).

    python benchmarks/render.py

Times ``render.render`` for every example in the gallery (bedside.gallery), best of several
rounds to keep other programs' noise out. A benchmark, never a test: speed goals live here.
"""

from __future__ import annotations

import time

from bedside import render
from bedside.gallery import EXAMPLES

GOAL_MS = 1.5


def measure(rounds: int = 5, frames: int = 200) -> dict[str, float]:
    """Best milliseconds per frame for each gallery example."""
    out: dict[str, float] = {}
    for e in EXAMPLES:
        render.render(e.screen)   # fonts and icons load once, on the first frame
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(frames):
                render.render(e.screen)
            best = min(best, (time.perf_counter() - t) / frames * 1000)
        out[e.name] = best
    return out


def main() -> int:
    results = measure()
    for name, ms in results.items():
        print(f"{name:16s} {ms:7.3f} ms")
    worst = max(results, key=lambda n: results[n])
    verdict = "meets" if results[worst] <= GOAL_MS else "MISSES"
    print(f"slowest: {worst} {results[worst]:.3f} ms per frame; {verdict} the {GOAL_MS} ms goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
