"""Row keys: `_row_key` for rows that carry no id of their own, and the check that every row of
a result has its key, once (a warehouse merging on the key would otherwise drop or merge rows).

Both run per row on the hot path (rowshape.py says how the rest of a row is shaped).
"""

from __future__ import annotations

import array
import hashlib
import typing as t

import orjson

#: The key of rows that carry no id of their own (RowKeys).
ROW_KEY = "_row_key"
ROW_KEY_DESCRIPTION = (
    "Added by the tap: a hash of the row's fields and its occurrence among identical rows of its "
    "window; the same every time the same window is read."
)


class RowKeys:
    """`_row_key` for rows that carry no id of their own: a hash of the row's fields (as shaped:
    the same whatever file format) and its occurrence among identical rows of the result, so two
    identical rows stay two rows and a window read again gives every row the same key again.
    Memory: one 16-byte digest per distinct row of the result."""

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def add(self, row: dict[str, t.Any]) -> None:
        digest = hashlib.blake2b(orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str), digest_size=16).digest()
        occurrence = self._seen.get(digest, 0)
        self._seen[digest] = occurrence + 1
        row[ROW_KEY] = f"{digest.hex()}-{occurrence}"


class KeyGuard:
    """The key of every row of one result: a row without its key, or two rows with the same key,
    would make a warehouse drop or merge rows silently, so both stop the stream instead.

    Memory: 8 bytes a row (a 64-bit hash: a false alarm needs two of a window's keys to share one,
    about one chance in 10^7 for a million rows), in 256 arrays by the hash's low byte, so the
    duplicate check sorts one small bucket at a time: memory stays flat at a million rows."""

    BUCKETS = 256

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self._buckets = [array.array("q") for _ in range(self.BUCKETS)]
        self._missing: list[int] = []
        self.add = self._adder()  # a closure: the cheapest call on the hot path

    def _adder(self) -> t.Callable[[t.Mapping[str, t.Any]], bool]:
        """`add(row)`: True when the row lacks its key (it is not counted: it must not leave)."""
        buckets, missing = self._buckets, self._missing.append
        low = self.BUCKETS - 1
        if len(self.key) == 1:
            name = self.key[0]

            def add_one(row: t.Mapping[str, t.Any]) -> bool:
                value = row.get(name)
                if value is None or value == "":
                    missing(1)
                    return True
                digest = hash(value)
                buckets[digest & low].append(digest)
                return False

            return add_one
        names = self.key

        def add_many(row: t.Mapping[str, t.Any]) -> bool:
            values = tuple([row.get(k) for k in names])
            if None in values or "" in values:
                missing(1)
                return True
            digest = hash(values)
            buckets[digest & low].append(digest)
            return False

        return add_many

    @property
    def missing(self) -> int:
        return len(self._missing)

    def duplicates(self) -> int:
        return sum(1 for _ in self._repeats())

    def repeated(self) -> set[int]:
        """The hashes of the keys that more than one row carries."""
        return set(self._repeats())

    def _repeats(self) -> t.Iterator[int]:
        for bucket in self._buckets:
            ordered = sorted(bucket)
            yield from (a for a, b in zip(ordered, ordered[1:]) if a == b)

    def digest(self, row: t.Mapping[str, t.Any]) -> int | None:
        """The hash `add` keeps for `row`'s key (None: the row lacks it)."""
        values = tuple([row.get(k) for k in self.key])
        if None in values or "" in values:
            return None
        return hash(values[0]) if len(values) == 1 else hash(values)
