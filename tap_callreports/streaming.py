"""Streaming readers for report bodies: rows leave as they are parsed, memory stays flat.

A report document is `{header..., "<array>": [rows...], trailer...}`. `ReportDocument` reads the
header members before the array (so a caller can decide before any row is emitted, e.g. on
`rowLimitExceeded`), then yields the rows with ijson's C backend, then parses the trailer from the
last bytes of the body. Errors are the tap's: a cut connection (retriable) or a malformed body.
"""

from __future__ import annotations

import csv
import io
import re
import typing as t

import ijson
import orjson
import urllib3.exceptions

try:  # the C backend: ~10x the pure-Python one
    ijson_backend = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - wheels ship it for every supported platform
    ijson_backend = ijson

READ_SIZE = 256 * 1024
TAIL_BYTES = 1 << 20
HEADER_LIMIT = 8 << 20  # a header bigger than this is not a report document

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.DecodeError,
    ConnectionError,
    TimeoutError,
)


class BodyInterrupted(Exception):
    """The connection broke mid-body: download again and skip the rows already emitted."""

    def __init__(self, rows_read: int, cause: BaseException) -> None:
        super().__init__(f"connection broken after {rows_read} rows ({type(cause).__name__})")
        self.rows_read = rows_read


class BodyMalformed(Exception):
    """The body is not the documented format; `where` says at which byte and row."""

    def __init__(self, problem: str, byte: int, row: int) -> None:
        super().__init__(f"{problem} near byte {byte} (row {row})")
        self.byte, self.row = byte, row


class CountingReader:
    """A file-like reader over a raw stream that counts bytes, keeps the last TAIL_BYTES when
    asked (`keep_tail`: a copy of every byte read, so only where the tail is read), and first
    replays bytes read earlier (so the header can be parsed twice)."""

    def __init__(self, raw: t.Any, replay: bytes = b"", keep_replay: bool = False, keep_tail: bool = False) -> None:
        self._raw = raw
        self._replay = memoryview(replay)
        self.consumed = 0
        self.kept = bytearray() if keep_replay else None
        self._tail: bytearray | None = bytearray() if keep_tail else None

    def read(self, size: int = -1) -> bytes:
        size = READ_SIZE if size is None or size < 0 else size
        if self._replay:
            chunk = bytes(self._replay[:size])
            self._replay = self._replay[len(chunk) :]
        else:
            try:
                chunk = self._raw.read(size)
            except TRANSPORT_ERRORS as exc:
                raise _Transport(exc) from exc
        self.consumed += len(chunk)
        if self.kept is not None:
            self.kept += chunk
        if self._tail is not None:
            self._tail += chunk
            if len(self._tail) > 2 * TAIL_BYTES:
                del self._tail[: len(self._tail) - TAIL_BYTES]
        return chunk

    def drain(self) -> None:
        while self.read(READ_SIZE):
            pass

    @property
    def tail(self) -> bytes:
        if self._tail is None:
            raise ValueError("CountingReader: the tail was not kept (keep_tail=True)")
        return bytes(self._tail[-TAIL_BYTES:])


class _Transport(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def parse_trailer(tail: bytes, array_key: str = "data") -> dict[str, t.Any]:
    """The members after the document's big array, from the body's last bytes.

    Tries each `]` from the left: the first whose remainder completes the documents's objects
    (`, "k": v ... }` for a top-level array; for an array nested under `parent.key`, the remainder
    also closes the parent, so it is read under `{"parent": {`) is the array's end. A `]` inside
    a row cannot pass: the row's remaining text would have to close the whole document too.
    """
    stripped = tail.rstrip()
    if not stripped.endswith(b"}") or not array_key:
        return {}
    opening = b"".join(b"{" + orjson.dumps(parent) + b":" for parent in array_key.split(".")[:-1]) + b"{"
    position = stripped.find(b"]")
    while position != -1:
        rest = stripped[position + 1 :].lstrip()
        candidate = opening + (rest[1:] if rest.startswith(b",") else rest) if rest.startswith((b",", b"}")) else b""
        if candidate:
            try:
                value = orjson.loads(candidate)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                return value
        position = stripped.find(b"]", position + 1)
    return {}


class ReportDocument:
    """One JSON report body: `header`, then `rows()`, then `trailer`.

    `array_keys` name where the rows may be (dotted paths); "" accepts a bare top-level array.
    When none is found, `array_key` is None and `header` holds the whole (small) document, so
    the caller can say what the vendor sent instead (an error envelope, usually)."""

    def __init__(self, raw: t.Any, array_keys: t.Sequence[str]) -> None:
        self._raw = raw
        self.header: dict[str, t.Any] = {}
        self.array_key: str | None = None
        self.trailer: dict[str, t.Any] = {}
        self.rows_read = 0
        self._reader: CountingReader | None = None
        self._read_header(array_keys)

    def _read_header(self, array_keys: t.Sequence[str]) -> None:
        """Parse events up to the first of `array_keys` opening a list; keep the bytes to replay."""
        probe = CountingReader(self._raw, keep_replay=True)
        builder = ijson.ObjectBuilder()
        wanted = set(array_keys)
        names = " or ".join(f"'{k}'" if k else "a top-level array" for k in array_keys)
        try:
            for prefix, event, value in ijson_backend.parse(probe, buf_size=64 * 1024):
                if event == "start_array" and prefix in wanted:
                    self.array_key = prefix
                    break
                builder.event(event, value)
                if probe.consumed > HEADER_LIMIT:
                    raise BodyMalformed(f"no {names} list in the first {HEADER_LIMIT} bytes", probe.consumed, 0)
        except _Transport as exc:
            raise BodyInterrupted(0, exc.cause) from None
        except ijson.JSONError as exc:
            raise BodyMalformed(_first_line(exc), probe.consumed, 0) from None
        header = getattr(builder, "value", None)
        self.header = header if isinstance(header, dict) else {}
        assert probe.kept is not None
        self._kept = bytes(probe.kept)
        if self.array_key is None:
            self.trailer = {}
            self._reader = None
        else:
            self._reader = CountingReader(self._raw, replay=self._kept)

    def rows(self, skip: int = 0) -> t.Iterator[dict[str, t.Any]]:
        """The array's items; the first `skip` are parsed but not yielded (resumed downloads).

        Rows are parsed in batches by orjson: the bytes read so far are cut after the last
        `}`, `,`, `{` between two rows and `[` + batch + `]` is one orjson call. A cut that falls
        inside a string or a nested object leaves the batch unbalanced, orjson refuses it and the
        batch simply grows, so the parse itself validates every cut. The end of the array and the
        members after it are parsed together, so the whole body is validated. ~2x ijson's speed."""
        if self._reader is None:
            return
        start = _array_start(self._kept, self.array_key or "")
        if start is None:  # not found in the bytes read (cannot happen after ijson saw it): ijson's way
            yield from self._ijson_rows(skip)
            return
        reader = CountingReader(self._raw)
        reader.consumed = len(self._kept)
        pending = bytearray(b"[") + self._kept[start:]
        self._kept = b""
        parts = self.array_key.split(".") if self.array_key else []
        try:
            while chunk := reader.read(READ_SIZE):
                searched = max(1, len(pending) - 8)
                pending += chunk
                cut = _last_row_boundary(pending, searched)
                if cut is None:
                    if len(pending) > BATCH_LIMIT:
                        self._malformed(pending, parts, reader, "no row boundary that parses")
                    continue
                end_of_row, next_row = cut
                # `[` + rows + `]` parsed in place: the byte after the cut's `}` (a `,` or white
                # space) is a `]` for the parse, then itself again; no copy of the pending bytes.
                between = pending[end_of_row]
                pending[end_of_row] = _CLOSE
                try:
                    with memoryview(pending) as view, view[: end_of_row + 1] as rows_text:
                        batch = orjson.loads(rows_text)
                except orjson.JSONDecodeError:
                    pending[end_of_row] = between
                    if len(pending) > BATCH_LIMIT:
                        self._malformed(pending, parts, reader, "no row boundary that parses")
                    continue  # the cut fell inside a string or a nested object: read on
                del pending[1:next_row]
                read = self.rows_read
                self.rows_read = read + len(batch)  # counted as parsed: a break comes between batches
                if read >= skip:
                    yield from batch  # no Python step per row here
                else:
                    yield from batch[skip - read :]
        except _Transport as exc:
            raise BodyInterrupted(self.rows_read, exc.cause) from None
        # The last rows and the members after them close the document together.
        opening = _opening(parts)
        try:
            document = orjson.loads(opening + pending)
        except orjson.JSONDecodeError:
            self._malformed(pending, parts, reader, "")
        last = document
        for part in parts[:-1]:
            last = last[part]
        tail_rows = last.pop(parts[-1]) if parts else document
        if not isinstance(tail_rows, list):
            self._malformed(pending, parts, reader, "the rows are not a list")
        for row in tail_rows:
            self.rows_read += 1
            if self.rows_read > skip:
                yield row
        self.trailer = document if parts else {}

    def _malformed(self, pending: bytearray, parts: list[str], reader: CountingReader, why: str) -> t.NoReturn:
        """Where the pending bytes stop being JSON: ijson counts the rows that parse before it."""
        opening = _opening(parts)
        good = 0
        problem = why
        try:
            prefix = ".".join(parts) + ".item" if parts else "item"
            for _row in ijson_backend.items(io.BytesIO(opening + bytes(pending)), prefix, use_float=True):
                good += 1
            problem = problem or "malformed JSON (the document does not close)"
        except ijson.JSONError as exc:
            problem = _first_line(exc)
        except (ValueError, TypeError) as exc:  # pragma: no cover - ijson's own oddities
            problem = f"malformed JSON ({exc})"
        raise BodyMalformed(problem, reader.consumed, self.rows_read + good + 1) from None

    def _ijson_rows(self, skip: int) -> t.Iterator[dict[str, t.Any]]:
        reader = CountingReader(self._raw, replay=self._kept, keep_tail=True)
        try:
            prefix = f"{self.array_key}.item" if self.array_key else "item"
            for row in ijson_backend.items(reader, prefix, use_float=True, buf_size=READ_SIZE):
                self.rows_read += 1
                if self.rows_read > skip:
                    yield row
            reader.drain()
        except _Transport as exc:
            raise BodyInterrupted(self.rows_read, exc.cause) from None
        except ijson.JSONError as exc:
            raise BodyMalformed(_first_line(exc), reader.consumed, self.rows_read + 1) from None
        self.trailer = parse_trailer(reader.tail, self.array_key or "")


def _opening(parts: list[str]) -> bytes:
    """`{"a":{"b":` for rows at `a.b`: what, before the rest of the array, makes the document's
    end parse as one value whose `a.b` is the rows."""
    return b"".join(b"{" + orjson.dumps(part) + b":" for part in parts)


_ROW_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_CLOSE = ord("]")
#: A batch that never parses this far is a malformed body, not a long row.
BATCH_LIMIT = 64 << 20


def _last_row_boundary(pending: bytearray, searched: int) -> tuple[int, int] | None:
    """(end of a row, start of the next) for the last `},{` in the bytes not searched yet."""
    cut = pending.rfind(b"},{", searched)
    if cut >= 0:
        return cut + 1, cut + 2
    last = None
    for last in _ROW_BOUNDARY.finditer(pending, searched):  # noqa: B007 - the last match is wanted: rows with white space between them
        pass
    return (last.start() + 1, last.end() - 1) if last is not None else None


def _array_start(buffer: bytes, array_key: str) -> int | None:
    """The offset just after the `[` that opens the rows array at `array_key`, in `buffer` (the
    bytes read while the header was parsed); the header before it must close as JSON."""
    if not array_key:
        stripped = buffer.lstrip()
        offset = len(buffer) - len(stripped)
        return offset + 1 if stripped[:1] == b"[" else None
    parts = array_key.split(".")
    closing = b"]" + b"}" * len(parts)
    pattern = re.compile(re.escape(orjson.dumps(parts[-1])) + rb"\s*:\s*\[")
    for match in pattern.finditer(buffer):
        try:
            header = orjson.loads(buffer[: match.end()] + closing)
        except orjson.JSONDecodeError:
            continue
        found = header
        for part in parts:
            found = found.get(part) if isinstance(found, dict) else None
        if found == []:
            return match.end()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"malformed JSON ({text[0] if text else type(exc).__name__})"


def csv_rows(raw: t.Any, skip: int = 0) -> t.Iterator[dict[str, str | None]]:
    """CSV with a header row; empty cells become None."""
    reader = CountingReader(raw)
    buffered = io.BufferedReader(_RawAdapter(reader), buffer_size=READ_SIZE)
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
    count = 0
    try:
        for row in csv.DictReader(text):
            count += 1
            if None in row:
                raise BodyMalformed("a CSV row has more cells than the header", reader.consumed, count)
            if count > skip:
                yield {k: (v if v != "" else None) for k, v in row.items()}
    except _Transport as exc:
        raise BodyInterrupted(count, exc.cause) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BodyMalformed(f"malformed CSV ({exc})", reader.consumed, count + 1) from None


def ndjson_rows(raw: t.Any, skip: int = 0) -> t.Iterator[dict[str, t.Any]]:
    """Line-delimited JSON objects (our reading of Talkdesk's undocumented json_bulk)."""
    reader = CountingReader(raw)
    buffered = io.BufferedReader(_RawAdapter(reader), buffer_size=READ_SIZE)
    count = 0
    try:
        for line in buffered:
            if not line.strip():
                continue
            count += 1
            if count <= skip:
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise BodyMalformed(f"malformed JSON line ({exc.msg})", reader.consumed, count) from None
            if not isinstance(row, dict):
                raise BodyMalformed("a json_bulk line is not an object", reader.consumed, count)
            yield row
    except _Transport as exc:
        raise BodyInterrupted(count, exc.cause) from None


class _RawAdapter(io.RawIOBase):
    def __init__(self, reader: CountingReader) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        chunk = self._reader.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# ---- is this answer the report? ----------------------------------------------------------------------

#: Bytes looked at before a body is taken for a report.
HEAD_BYTES = 512
#: Content types that are never a report body, whatever its format (an HTML page, an XML error).
MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/xml", "text/xml"})


class PeekedBody:
    """A raw body whose first bytes were read to judge it: they are replayed first."""

    def __init__(self, head: bytes, raw: t.Any) -> None:
        self._head = head
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                chunk, self._head = self._head + self._raw.read(), b""
                return chunk
            chunk, self._head = self._head[:size], self._head[size:]
            return chunk
        return self._raw.read(size)

    def __getattr__(self, name: str) -> t.Any:  # close, release_conn, ... of the raw body
        return getattr(self._raw, name)


def peek_body(raw: t.Any) -> tuple[bytes, PeekedBody]:
    """The body's first bytes, and the body to read from its start."""
    try:
        head = raw.read(HEAD_BYTES) or b""
    except TRANSPORT_ERRORS as exc:
        raise BodyInterrupted(0, exc) from None
    return head, PeekedBody(head, raw)


def not_the_report(fmt: str, content_type: str, head: bytes, columns: t.Collection[str] = ()) -> str | None:
    """Why a 200 body is not a report in `fmt` (csv, json, json_bulk), or None when it may be.
    Any text has a CSV header line: an HTML page, an XML or JSON error, a line of status text must
    never be read as rows. The content type and the first bytes both have to fit; a CSV header must
    name one of `columns` (the stream's vendor columns; none known: look like a header)."""
    kind = content_type.split(";")[0].strip().lower()
    body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    first = body[:1]
    shown = head.lstrip()[:60].decode("utf-8", "replace").replace("\n", " ")
    if kind in MARKUP_TYPES or first == b"<":
        return f"a {kind or 'markup'} body ({shown!r})"
    is_json = kind == "application/json" or kind.endswith("+json") or first in (b"{", b"[")
    if fmt == "csv" and is_json:
        return f"a JSON body ({shown!r}) for a CSV report"
    if fmt == "csv":
        return _not_a_csv_header(body, len(head) < HEAD_BYTES, columns, kind)
    if not first and not (is_json or kind in EMPTY_JSON_TYPES):
        # An empty window's ndjson is empty; an empty text/plain answer is no answer.
        return f"an empty {kind or 'untyped'} body for a JSON report"
    if first and first not in (b"{", b"["):
        return f"a {kind or 'non-JSON'} body ({shown!r}) for a JSON report"
    return None


#: Types an empty JSON-lines body may come as (storage serves objects as octet-streams).
EMPTY_JSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/octet-stream",
        "binary/octet-stream",
    }
)


def _not_a_csv_header(body: bytes, whole: bool, columns: t.Collection[str], kind: str) -> str | None:
    """Why the first line of a CSV body is not the report's header (a Talkdesk CSV always has one),
    decided by the file's structure, whatever the names hold (`in_business_hours?`,
    `wrap-up_duration`, dots, spaces, capitals): a header is a CSV record of distinct, non-empty
    names without white space around them, and the next record (when the bytes looked at hold it
    whole) has as many fields. Status text is one field, or words with a space after a comma; a
    one-field line is a header only when it names one of `columns` (the layout's vendor names)."""
    if not body.strip():
        return f"an empty {kind or 'untyped'} body for a CSV report (its header line is missing)"
    records: list[list[str]] = []
    try:
        records.extend(csv.reader(io.StringIO(body.decode("utf-8", "replace"), newline="")))
    except csv.Error:
        pass  # a quoted field cut by the bytes looked at: judge the records before it
    line = body.partition(b"\n")[0].rstrip(b"\r")
    shown = line[:60].decode("utf-8", "replace")
    if not records:
        return f"a {kind or 'text'} body ({shown!r}) whose first line is not a CSV header (no CSV record)"
    header_whole = whole or len(records) > 1
    names = records[0] if header_whole else records[0][:-1]  # a header longer than the bytes looked at
    known = {c.lower() for c in columns}
    why = None
    if header_whole and len(names) == 1:
        if names[0].lower() in known:
            return None
        why = "one field"
    elif any(not name or name != name.strip() for name in names):
        why = "an empty name or one with white space around it"
    elif len(set(names)) != len(names):
        why = "a name given twice"
    elif len(records) > 2 or (whole and len(records) == 2):  # noqa: PLR2004 - the second record is whole
        if len(records[1]) != len(records[0]) and any(records[1]):
            why = f"{len(records[0])} fields, the next line {len(records[1])}"
    if why is None:
        return None
    if known and not known.intersection(name.lower() for name in names):
        return (
            f"a {kind or 'text'} body ({shown!r}) whose first line names none of the report's columns "
            f"and is not a CSV header ({why})"
        )
    return f"a {kind or 'text'} body ({shown!r}) whose first line is not a CSV header ({why})"
