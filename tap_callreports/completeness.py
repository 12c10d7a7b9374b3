"""Window completeness: the one rule every report result obeys before its window may be committed.

A result is complete when its row array was found and read to its end, and the rows read equal
every count the vendor states about them (Talkdesk `total`, MyReports `totalCount` when the
result was not cut by `rowLimit`). Anything else -- no row array, an error envelope, a count
that disagrees -- is an `IncompleteResult`: the reader downloads it again, then has the job
created again, and stops loudly if it stays incomplete. The bookmark never passes such a window.

A window read again is read from its first row: its rows wait until it is proven, so what it
held is dropped (`ReportJobStream.restart_window`) and none goes out twice.
"""

from __future__ import annotations

import hashlib
import typing as t

import orjson


class IncompleteResult(Exception):
    """A result that cannot be trusted to hold every row of its window."""

    def __init__(self, problem: str, rows_read: int, stated: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.rows_read = rows_read
        self.stated = stated

    @property
    def counts(self) -> str:
        said = "no count" if self.stated is None else f"{self.stated:,}"
        return f"{self.rows_read:,} rows read, vendor says {said}"


def whole_number(value: t.Any) -> int | None:
    """A count or page number as vendors write it (an int, an integral float, or digits in a
    string); None when absent or not a whole number >= 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def stated_count(value: t.Any) -> int | None:
    """A count the vendor states: a `whole_number`, or text like '12.0'."""
    count = whole_number(value)
    if count is not None or not isinstance(value, str):
        return count
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() and number >= 0 else None


def verify_counts(rows_read: int, counts: t.Mapping[str, t.Any]) -> str:
    """Check the rows read against every count the vendor states (name -> value); return the
    window's verdict for the log, or raise IncompleteResult naming the count that disagrees."""
    said: list[str] = []
    for name, value in counts.items():
        if value is None:
            continue
        count = stated_count(value)
        if count is None:
            raise IncompleteResult(f"its {name} is not a count ({value!r})", rows_read)
        if count != rows_read:
            raise IncompleteResult(f"it holds {rows_read:,} rows but says {name}={count:,}", rows_read, count)
        said.append(f"{name}={count:,}")
    return f"{rows_read:,} rows, vendor says " + (", ".join(said) if said else "no count (array read to its end)")


def stated_empty(members: t.Any, rows_key: str, count_key: str) -> bool:
    """A result that has no row array but says it is empty: its rows member absent or null and its
    count stated as 0 (MyReports `data: null` with `totalCount: 0`, a Talkdesk file `{"total": 0}`).
    Without a stated zero, a missing array is no result (an error envelope, another document)."""
    return isinstance(members, dict) and members.get(rows_key) is None and stated_count(members.get(count_key)) == 0


def missing_rows(what: str, body_says: str = "") -> IncompleteResult:
    """A result without its row array (an error envelope, another document)."""
    return IncompleteResult(f"it has no {what}" + (f" ({body_says})" if body_says else ""), 0)


def row_digest(row: t.Mapping[str, t.Any], ignore: t.Container[str]) -> bytes:
    """A digest of a vendor row, without the fields the tap adds (job ids differ between jobs).
    Exact numbers (Decimal, from CSV text) digest as their text."""
    vendor = {k: v for k, v in row.items() if k not in ignore}
    return hashlib.blake2b(
        orjson.dumps(vendor, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS), digest_size=12
    ).digest()
