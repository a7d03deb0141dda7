"""Samples the simulated GPIO lines' values (gpio-sim's sysfs, /run/gpio-sim/sim_gpioN/value)
every 5 ms for SECONDS and prints each line's changes as JSON: what an LED and a buzzer wired
to those pins would have done. Usage: lines.py SECONDS PIN [PIN ...]"""

import json
import sys
import time

seconds = float(sys.argv[1])
pins = [int(p) for p in sys.argv[2:]]
files = {p: open(f"/run/gpio-sim/sim_gpio{p}/value") for p in pins}  # noqa: SIM115
last: dict[int, str] = {}
changes: dict[int, list[tuple[float, str]]] = {p: [] for p in pins}
end = time.monotonic() + seconds
while time.monotonic() < end:
    now = time.time()
    for p, f in files.items():
        f.seek(0)
        v = f.read().strip()
        if last.get(p) != v:
            changes[p].append((round(now, 3), v))
            last[p] = v
    time.sleep(0.005)
print(json.dumps({str(p): c for p, c in changes.items()}))
