"""Timestamps as vendors write them, and as the tap writes them (ISO 8601 UTC with Z)."""

from __future__ import annotations

import datetime as dt

UTC = dt.UTC


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


def fall_back_transitions(tz: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """UTC instants in (start, end) where `tz`'s offset drops (clocks go back): local wall times
    just before them happen twice."""
    found: list[dt.datetime] = []
    step = dt.timedelta(hours=1)
    cursor = start
    offset = cursor.astimezone(tz).utcoffset()
    while cursor < end:
        following = min(cursor + step, end)
        next_offset = following.astimezone(tz).utcoffset()
        if offset is not None and next_offset is not None and next_offset < offset:
            low, high = cursor, following  # offset(low) > offset(high): find the change to the second
            while high - low > dt.timedelta(seconds=1):
                middle = (low + (high - low) / 2).replace(microsecond=0)
                if middle.astimezone(tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            if start < high < end:
                found.append(high)
        cursor, offset = following, next_offset
    return found


def offset_changes(tz: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether `tz`'s UTC offset changes anywhere in [start, end] (checked every half hour: no
    zone changes twice within one)."""
    step = dt.timedelta(minutes=30)
    cursor = start
    offset = cursor.astimezone(tz).utcoffset()
    while cursor < end:
        cursor = min(cursor + step, end)
        if cursor.astimezone(tz).utcoffset() != offset:
            return True
    return False


class LocalTimeConverter:
    """Local wall times (no offset) of one window's rows as UTC. A wall time that happened twice
    (the hour before a fall-back) is placed by the window: the occurrence inside [start, end).
    UTC offsets are looked up once per local minute (offsets only change on minute boundaries)."""

    def __init__(self, tz: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> None:
        self.tz = tz
        self.start = start.astimezone(UTC).replace(tzinfo=None)
        self.end = end.astimezone(UTC).replace(tzinfo=None)
        self._offsets: dict[str, tuple[dt.timedelta, ...]] = {}

    def to_utc_text(self, local: object) -> str | None:
        """'2026-10-25T01:30:00' (local) -> '2026-10-25T00:30:00Z', or None if not a date-time."""
        if not isinstance(local, str):
            return None
        try:
            naive = dt.datetime.fromisoformat(local)
        except ValueError:
            return None
        if naive.tzinfo is not None:
            return iso_z(naive)
        key = local[:16]
        offsets = self._offsets.get(key)
        if offsets is None:
            minute = naive.replace(second=0, microsecond=0)
            first = minute.replace(tzinfo=self.tz, fold=0).utcoffset()
            second = minute.replace(tzinfo=self.tz, fold=1).utcoffset()
            assert first is not None and second is not None
            offsets = self._offsets[key] = (first,) if first == second else (first, second)
        for offset in offsets:
            utc = naive - offset
            if self.start <= utc < self.end:
                break
        else:
            utc = naive - offsets[0]
        return utc.isoformat() + "Z"


def duration_text(seconds: float) -> str:
    """A duration for a log line: 42s, 3m05s, 2h10m."""
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
