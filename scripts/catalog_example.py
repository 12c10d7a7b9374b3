"""catalog.example.json: what `tap-callreports --discover` writes with every vendor configured (the
sandbox's config), every stream selected. Copy it, set `selected` to false for the streams you do
not want, and pass it as `--catalog` (runs without Meltano; Meltano builds its own from `select`).

`python scripts/catalog_example.py` writes it; `--check` exits 1 when it is stale (tests run it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "catalog.example.json"
sys.path.insert(0, str(ROOT / "tests"))

from helpers import sandbox_config  # noqa: E402
from tap_callreports.sandbox import start_sandbox  # noqa: E402
from tap_callreports.settings import TALKDESK_DEFAULT_REPORT_TYPES  # noqa: E402
from tap_callreports.tap import TapCallReports  # noqa: E402

#: The config it is discovered with, beyond the sandbox's: the default report types.
EXAMPLE_OVERRIDES = {"talkdesk_report_types": TALKDESK_DEFAULT_REPORT_TYPES}


def example_config(sandbox) -> dict:
    return sandbox_config(sandbox, **EXAMPLE_OVERRIDES)


def render() -> str:
    with start_sandbox() as sandbox:
        catalog = TapCallReports(config=example_config(sandbox), validate_config=False).catalog_dict
    return json.dumps(catalog, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the file is stale (exit 1)")
    args = parser.parse_args(argv)
    wanted = render()
    if PATH.read_text() == wanted:
        print("catalog_example.py: catalog.example.json is current")
        return 0
    if args.check:
        print(
            "catalog_example.py: catalog.example.json is stale; run python scripts/catalog_example.py", file=sys.stderr
        )
        return 1
    PATH.write_text(wanted)
    print("catalog_example.py: wrote catalog.example.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
