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
    """The key of every row of one result: a row without its key, or two rows with the same key
    and different content, would make a warehouse drop or merge rows silently, so both stop the
    stream instead. Rows repeating a key with the same content lose nothing when merged: they are
    duplicates, not conflicts.

    The content is compared here, by a 64-bit hash of the row's JSON (as the writer serialises it,
    in its key order: one layout per result), so the check needs no read-back of the rows already
    written (which BATCH files on remote storage, or a stream map that renames the key, do not
    allow). Memory: 16 bytes a row (the key's 64-bit hash and the content's; a false alarm needs
    two of a window's keys to share a hash, about one chance in 10^7 for a million rows; a
    conflict taken for a duplicate needs two contents to share one as well, about one in 10^19),
    in 256 pairs of arrays by the key hash's low byte, so the check sorts one small bucket at a
    time: memory stays flat at a million rows."""

    BUCKETS = 256

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self._buckets = [array.array("q") for _ in range(self.BUCKETS)]
        self._contents = [array.array("q") for _ in range(self.BUCKETS)]
        self._missing: list[int] = []
        self.add = self._adder()  # a closure: the cheapest call on the hot path

    def _adder(self) -> t.Callable[[t.Mapping[str, t.Any]], bool]:
        """`add(row)`: True when the row lacks its key (it is not counted: it must not leave)."""
        buckets, contents, missing = self._buckets, self._contents, self._missing.append
        content = _content_hash
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
                contents[digest & low].append(content(row))
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
            contents[digest & low].append(content(row))
            return False

        return add_many

    @property
    def missing(self) -> int:
        return len(self._missing)

    def duplicates(self) -> int:
        """Rows repeating another row's key, whatever their content."""
        return sum(len(group) - 1 for group in self._groups())

    def conflicts(self) -> int:
        """Rows repeating another row's key with other content: for each key whose rows differ,
        all of its rows but one (a warehouse merging on the key would keep one)."""
        return sum(len(group) - 1 for group in self._groups() if len(set(group)) > 1)

    def _groups(self) -> t.Iterator[list[int]]:
        """The content hashes of the rows of each key that more than one row carries."""
        for keys, contents in zip(self._buckets, self._contents, strict=True):
            ordered = sorted(keys)
            repeated = {a for a, b in zip(ordered, ordered[1:]) if a == b}
            if not repeated:
                continue
            groups: dict[int, list[int]] = {}
            for key, content in zip(keys, contents, strict=True):
                if key in repeated:
                    groups.setdefault(key, []).append(content)
            yield from groups.values()


def _content_hash(row: t.Mapping[str, t.Any]) -> int:
    """A 64-bit hash of the row's content: its JSON as the writer makes it (exact numbers as text)."""
    try:
        return hash(orjson.dumps(row, default=str))
    except orjson.JSONEncodeError:  # keys that are not text
        return hash(orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS))
