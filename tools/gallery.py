"""Draw every screen of the unit for the docs: ``make gallery`` (and ``make golden``).

    python tools/gallery.py           # docs/gallery/*.png, and the gallery in README.md and docs/screens.md
    python tools/gallery.py --golden  # also rewrite tests/golden/*.png, the golden-image references
    python tools/gallery.py --check   # change nothing; fail if the docs gallery is out of date

The examples are ``bedside.gallery.EXAMPLES``. Rewriting the golden references is a
decision (a screen was meant to change): look at the new pictures before committing them.
The tests fail when the docs gallery no longer matches what the unit draws.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from PIL import Image

from bedside.display import render
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


def replace_section(path: Path, body: str, check: bool) -> list[str]:
    """Put ``body`` between the gallery markers of ``path``; the problems found (or, checking, the differences)."""
    name = path.relative_to(ROOT)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return [f"{name}: no gallery markers ({START} ... {END}); add them where the gallery goes"]
    new = pattern.sub(lambda _: f"{START}\n{body}\n{END}", text)
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
    DOCS.mkdir(parents=True, exist_ok=True)
    for folder in (DOCS, *((GOLDEN,) if args.golden else ())):
        for old in folder.glob("*.png"):
            if old.stem not in names:
                if args.check:
                    problems.append(f"{old.relative_to(ROOT)} shows no screen of the gallery")
                else:
                    old.unlink()
    for e in EXAMPLES:
        image = render.render(e.screen)
        shown = picture(image, e.brightness)
        path = DOCS / f"{e.name}.png"
        if args.check:
            if not path.exists() or not same_pixels(Image.open(path), shown):
                problems.append(f"{path.relative_to(ROOT)} is not what the unit draws")
            continue
        shown.save(path, optimize=True)
        if args.golden:
            GOLDEN.mkdir(parents=True, exist_ok=True)
            image.save(GOLDEN / f"{e.name}.png", optimize=True)
    problems += replace_section(ROOT / "README.md", table(EXAMPLES, "docs/gallery/", 3), args.check)
    problems += replace_section(ROOT / "docs" / "screens.md", table(EXAMPLES, "gallery/", 2), args.check)
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
