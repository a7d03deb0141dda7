"""The design's promises that code review alone would let slip: the core stays pure."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from .conftest import ROOT

CORE = ("config", "episodes", "planner", "guide", "state", "session", "views", "screens", "chain", "events")
SHELL_ONLY = ("gpiozero", "luma", "serial", "sqlite3", "lgpio", "RPi", "smbus2", "PIL")


def test_importing_the_core_loads_no_hardware_disk_or_serial_module() -> None:
    code = ("import json, sys\n" + "".join(f"import bedside.{m}\n" for m in CORE)
            + "print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                       check=True)
    loaded = {m.split(".")[0] for m in json.loads(r.stdout)}
    assert loaded.isdisjoint(SHELL_ONLY), sorted(loaded & set(SHELL_ONLY))


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_reads_a_clock(module: str) -> None:
    """Time is an argument: no now(), today(), time(), monotonic() in the core."""
    tree = ast.parse((ROOT / "device" / "bedside" / f"{module}.py").read_text())
    calls = {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)}
    clocks = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "time.time", "time.monotonic",
              "time.perf_counter", "time.sleep"}
    assert calls.isdisjoint(clocks), sorted(calls & clocks)
