"""docs/architecture.md is the newcomer's map of the package: it names only files that exist, and
every module of the tap (the sandbox has its own page) is on it, so the map cannot rot unseen."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tap_callreports"
MAP = ROOT / "docs" / "architecture.md"


def _named_paths() -> set[str]:
    """Every `path.py` (or `dir/`) the map names, relative to the package (or the repository)."""
    return set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py|[a-z_]+/)`", MAP.read_text()))


def test_every_file_the_map_names_exists():
    missing = sorted(path for path in _named_paths() if not (PACKAGE / path).exists() and not (ROOT / path).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_module_of_the_tap_is_on_the_map():
    named = _named_paths()
    modules = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "sandbox" not in path.parts and path.name not in ("__init__.py", "__main__.py")
    }
    unmapped = sorted(modules - named)
    assert not unmapped, f"modules missing from docs/architecture.md: {unmapped}"
