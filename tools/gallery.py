"""Draw every screen of the unit for the docs: ``make gallery`` (and ``make golden``).

    python tools/gallery.py           # docs/gallery/*.png, and the gallery in README.md and docs/screens.md
    python tools/gallery.py --golden  # also rewrite tests/golden/*.png, the golden-image references
    python tools/gallery.py --check   # change nothing; fail if the docs gallery is out of date

The examples are ``bedside.gallery.EXAMPLES``, drawn in every layout (core/panels.py): the
standard layout's references are tests/golden/NAME.png, the others' tests/golden/LAYOUT/NAME.png;
the docs show the standard and the large layout, and the table of text heights measured
on the frames (``bedside.display.measure``). Rewriting the golden references is a
decision (a screen was meant to change): look at the new pictures before committing them.
The tests fail when the docs gallery no longer matches what the unit draws.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from PIL import Image

from bedside.core.panels import LAYOUT_SIZES
from bedside.display import measure, render
from bedside.display.gallery import EXAMPLES, Example

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
DOCS = ROOT / "docs" / "gallery"
SCALE = 2
BEZEL = 4
# An OLED's lit pixels, dark glass and the module's black frame.
COLOURS = {"normal": (226, 238, 255), "dim": (96, 104, 120)}
GLASS, FRAME = (14, 14, 18), (52, 52, 58)
START = "<!-- gallery: made by `make gallery` from device/bedside/gallery.py; edit there, not here -->"
END = "<!-- end of gallery -->"
LARGE_START = "<!-- large gallery: made by `make gallery` from device/bedside/gallery.py; edit there, not here -->"
LARGE_END = "<!-- end of large gallery -->"
HEIGHTS_START = "<!-- heights: measured on the frames by `make gallery` (bedside.display.measure) -->"
HEIGHTS_END = "<!-- end of heights -->"
DOC_LAYOUTS = {"standard": DOCS, "large": DOCS / "large"}


def golden_path(layout: str, name: str) -> Path:
    return GOLDEN / f"{name}.png" if layout == "standard" else GOLDEN / layout / f"{name}.png"


def picture(image: Image.Image, brightness: str = "normal") -> Image.Image:
    """A screen as it looks on the unit: scaled up, lit pixels on dark glass in a frame."""
    w, h = image.size
    out = Image.new("P", (w * SCALE + 2 * BEZEL, h * SCALE + 2 * BEZEL), 0)
    out.putpalette([*FRAME, *GLASS, *COLOURS[brightness]])
    out.paste(1, (BEZEL, BEZEL, BEZEL + w * SCALE, BEZEL + h * SCALE))
    lit = image.convert("1").resize((w * SCALE, h * SCALE), Image.Resampling.NEAREST)
    out.paste(2, (BEZEL, BEZEL), lit)
    return out


def table(examples: tuple[Example, ...], prefix: str, columns: int) -> str:
    rows = []
    for i in range(0, len(examples), columns):
        cells = [f'<td align="center"><img src="{prefix}{e.name}.png" width="{128 * SCALE + 2 * BEZEL}" '
                 f'alt="{e.name}"><br><sub>{e.caption}</sub></td>' for e in examples[i:i + columns]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def replace_section(path: Path, body: str, check: bool, start: str = START, end: str = END) -> list[str]:
    """Put ``body`` between the markers of ``path``; the problems found (or, checking, the differences)."""
    name = path.relative_to(ROOT)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return [f"{name}: no markers ({start} ... {end}); add them where the section goes"]
    new = pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)
    if new == text:
        return []
    if check:
        return [f"{name}: the gallery section is out of date"]
    path.write_text(new, encoding="utf-8")
    return []


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--golden", action="store_true", help="also rewrite the golden-image references in tests/golden")
    what.add_argument("--check", action="store_true", help="change nothing; exit 1 if the docs gallery is out of date")
    args = p.parse_args(argv)
    problems: list[str] = []
    names = {e.name for e in EXAMPLES}
    folders = [*DOC_LAYOUTS.values()]
    if args.golden:
        folders += [GOLDEN, *(GOLDEN / layout for layout in LAYOUT_SIZES if layout != "standard")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            if old.stem not in names:
                if args.check:
                    problems.append(f"{old.relative_to(ROOT)} shows no screen of the gallery")
                else:
                    old.unlink()
    for e in EXAMPLES:
        for layout in LAYOUT_SIZES:
            image = render.render(e.screen, layout)
            if args.golden:
                golden_path(layout, e.name).parent.mkdir(parents=True, exist_ok=True)
                image.save(golden_path(layout, e.name), optimize=True)
            if layout not in DOC_LAYOUTS:
                continue
            shown = picture(image, e.brightness)
            path = DOC_LAYOUTS[layout] / f"{e.name}.png"
            if args.check:
                if not path.exists() or not same_pixels(Image.open(path), shown):
                    problems.append(f"{path.relative_to(ROOT)} is not what the unit draws")
                continue
            shown.save(path, optimize=True)
    screens = ROOT / "docs" / "screens.md"
    problems += replace_section(ROOT / "README.md", table(EXAMPLES, "docs/gallery/large/", 3), args.check)
    problems += replace_section(screens, table(EXAMPLES, "gallery/", 2), args.check)
    problems += replace_section(screens, table(EXAMPLES, "gallery/large/", 2), args.check, LARGE_START, LARGE_END)
    problems += replace_section(screens, measure.markdown(measure.table()), args.check, HEIGHTS_START, HEIGHTS_END)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        if args.check:
            print("Run `make gallery` to bring the docs up to date.", file=sys.stderr)
        return 1
    print(f"{len(EXAMPLES)} screens drawn in {DOCS.relative_to(ROOT)}"
          + (f" and {GOLDEN.relative_to(ROOT)}" if args.golden else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
