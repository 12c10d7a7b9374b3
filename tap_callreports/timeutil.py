"""Timestamps as vendors write them, and as the tap writes them (ISO 8601 UTC with Z)."""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def parse_instant(value: object) -> dt.datetime | None:
    """Parse '2026-04-23T10:22:26Z', '2016-01-29 10:22:02', with or without offset; naive = UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_z(moment: dt.datetime) -> str:
    """'2026-01-01T00:00:00Z' (microseconds kept only when present)."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)
