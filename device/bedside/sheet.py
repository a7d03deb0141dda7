"""What makes a CSV open right in a spreadsheet (Excel on Windows and macOS, LibreOffice).

* A UTF-8 byte-order mark first: without it Excel reads the file as the PC's legacy code page
  and garbles any letter beyond ASCII (an en dash, an accented word in a fault text).
* Date-times as ``YYYY-MM-DD HH:MM:SS``, the unit's local wall time with no offset: both
  programs read that as a date-time; with ``+01:00`` on the end they keep it as text. The
  offset goes in a column of its own, so nothing of the record is lost.
* Numbers as bare numbers, one value per cell (never ``13/13``, which becomes a date).
* Text that would start a formula (``= + - @``) gets a leading ``'`` (``model._cell``).
"""

from __future__ import annotations

from datetime import date, datetime

BOM = "\ufeff"


def stamp(t: datetime | None) -> str:
    """Local wall time, to the second, as spreadsheets read a date-time."""
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""


def day(d: date | None) -> str:
    return d.isoformat() if d is not None else ""


def offset(t: datetime | None) -> str:
    """The time's offset from UTC as text a spreadsheet keeps as text: ``UTC+01:00``."""
    if t is None or t.utcoffset() is None:
        return ""
    mins = round(t.utcoffset().total_seconds() / 60)  # type: ignore[union-attr]
    sign = "+" if mins >= 0 else "-"
    return f"UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def cell(v: str | None) -> str:
    """Text from a record, made safe for spreadsheets: a leading = + - @ would be a formula."""
    if v is None:
        return ""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
