"""Schema-aware value conversion, planned once per stream instead of inspected per value."""

from __future__ import annotations

import typing as t

Converter = t.Callable[[str], t.Any]


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "1", "yes"):
        return True
    if lowered in ("false", "f", "0", "no"):
        return False
    raise ValueError(text)


def _to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        as_float = float(text)
        if as_float.is_integer():
            return int(as_float)
        raise


def _converter(types: t.Sequence[str]) -> Converter | None:
    if "string" in types:
        return None
    if "integer" in types:
        return _to_int
    if "number" in types:
        return float
    if "boolean" in types:
        return _to_bool
    return None


def text_converters(schema: dict) -> dict[str, Converter]:
    """For each top-level property typed integer/number/boolean, how to read it from text (CSV)."""
    plan: dict[str, Converter] = {}
    for name, spec in schema.get("properties", {}).items():
        types = spec.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        convert = _converter(types)
        if convert is not None:
            plan[name] = convert
    return plan


def convert_text_row(row: dict[str, t.Any], plan: dict[str, Converter]) -> dict[str, t.Any]:
    """Convert in place; a value that does not parse stays text (the target will say so)."""
    for name, convert in plan.items():
        value = row.get(name)
        if isinstance(value, str):
            try:
                row[name] = convert(value)
            except ValueError:
                pass
    return row
