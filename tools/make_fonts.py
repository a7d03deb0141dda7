"""Convert Terminus Font PCF files into Pillow bitmap fonts (.pil + .png).

Bitmap fonts render without FreeType, so a screen is pixel-identical on any
Pillow version (the Pi's apt Pillow and a laptop's wheel alike), which is
what makes the golden-image tests trustworthy.

Pillow writes each font's glyphs as a PNG named ``.pbm``; they are kept as ``.png``, the
name ``ImageFont.load`` tries first, so loading a font imports Pillow's PNG plugin alone
(a ``.pbm`` name loads its PPM plugin, fails, then imports every common image plugin:
about 0.3 MiB more in the unit's memory for good).

Source: Debian package xfonts-terminus (SIL Open Font License 1.1, see
device/bedside/display/fonts/OFL.txt). Run: python tools/make_fonts.py
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from PIL import PcfFontFile

SOURCE = Path("/usr/share/fonts/X11/misc")
TARGET = Path(__file__).resolve().parent.parent / "device" / "bedside" / "display" / "fonts"
FONTS = ["ter-u12n", "ter-u12b", "ter-u14b", "ter-u16b", "ter-u20b", "ter-u24b", "ter-u32b"]


def main() -> None:
    for name in FONTS:
        with gzip.open(SOURCE / f"{name}_iso-8859-1.pcf.gz") as f:
            pcf = PcfFontFile.PcfFontFile(io.BytesIO(f.read()), "iso8859-1")
        pcf.save(str(TARGET / name))
        (TARGET / f"{name}.pbm").replace(TARGET / f"{name}.png")
        print("wrote", TARGET / f"{name}.pil")


if __name__ == "__main__":
    main()
