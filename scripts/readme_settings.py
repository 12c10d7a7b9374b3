"""The README's settings table from `tap-callreports --about --format=markdown` (scripts/generate.py
writes it with the meltano.yml plugin block and the Hub definition)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- settings:start (scripts/readme_settings.py) -->", "<!-- settings:end -->"


def settings_table() -> str:
    about = subprocess.run([sys.executable, "-m", "tap_callreports", "--about", "--format=markdown"],
                           capture_output=True, text=True, check=True).stdout
    table = re.search(r"## Settings\n\n(\|.*?)\n\n", about, re.S)
    assert table, "no settings table in --about --format=markdown"
    return table.group(1).strip()


def render(readme: str) -> str:
    before, rest = readme.split(START, 1)
    _old, after = rest.split(END, 1)
    return f"{before}{START}\n{settings_table()}\n{END}{after}"


if __name__ == "__main__":
    path = ROOT / "README.md"
    path.write_text(render(path.read_text()))
    print("README settings table regenerated")
