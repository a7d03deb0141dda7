"""Write config/bedside.toml, the annotated config, from the schema (core/config.py's rows).

    python tools/config_example.py           rewrite it
    python tools/config_example.py --check   exit 1 if it differs from what the schema makes

A test (tests/core/test_config.py) fails while the file and the schema differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "device"))

from bedside.core import config  # noqa: E402

FILE = ROOT / "config" / "bedside.toml"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only say whether the file is current")
    args = ap.parse_args()
    text = config.example_file()
    if args.check:
        if FILE.read_text(encoding="utf-8") != text:
            print(f"{FILE.relative_to(ROOT)} differs from the schema: run python tools/config_example.py")
            return 1
        return 0
    FILE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
