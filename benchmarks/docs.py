"""Where benchmark results go: each benchmark owns one marked section of docs/performance.md."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measured_on(command: str, note: str = "") -> str:
    """The line that says when, where and how a section's numbers were measured."""
    where = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    line = f"Measured {datetime.now(UTC):%Y-%m-%d} on {cpu_model()}, Python {platform.python_version()}, {where}"
    return f"{line} (`{command}`)." + (f" {note}" if note else "")


def table(rows: list[tuple[str, str, str]]) -> list[str]:
    return ["| what | goal | measured |", "| --- | --- | --- |", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]


def write_section(name: str, heading: str, lines: list[str]) -> str:
    """Replace the section between ``<!-- bench:NAME:start/end -->`` (added under ``heading`` if new)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = "\n".join([start, "", *lines, "", end])
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if start in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n" + section + "\n"
    DOC.write_text(text)
    return section
