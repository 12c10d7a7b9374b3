"""The no-SDK variants the tap is measured against: each downloads one report body over HTTP and
writes Singer RECORD lines (byte-identical to the tap's, time_extracted aside) to stdout.

    python bench/nosdk.py MODE talkdesk|myreports URL TOKEN --window START END [--rendered FILE]

MODE:
  orjson      the strong baseline: the body read in 1 MB chunks, cut into row batches at `},{`,
              each batch parsed by one orjson call (which validates the cut: a cut inside a string
              leaves an unterminated string and fails, then the batch just grows), header and
              trailer parsed by orjson too; a malformed body fails the run
  ijson       the same lines from ijson's C backend (the tap's own parser)
  copy        no parsing: the body is read and discarded, the pre-rendered RECORD lines of --rendered
              are copied to stdout in 1 MB blocks (the floor for reading and writing these bytes)
  copy-lines  the same, line by line through a buffered writer (the floor for touching each row
              once in Python)
  socket      the body read and discarded (the loopback floor)

Rows get what the tap gives them: its row shaping (tap_callreports.rowshape: column names, UTC
instants), its key check (KeyGuard), and its origin fields (Talkdesk: report_job_id and the
window; MyReports: start_utc from the local `start` through the tap's per-local-minute converter,
report_id, request_id). `--body-file` reads the body from a file instead (the bench's malformed-body checks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import re
import sys
import typing as t
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import orjson

from tap_callreports.rowkeys import KeyGuard
from tap_callreports.rowshape import FLAG, RowPolicy, RowShaper
from tap_callreports.timeutil import UTC, LocalTimeConverter, parse_instant

# The tap's row policies for these two streams (report_types.py, myreports/), copied so
# this script never imports the SDK; the bench's check fails if they drift apart.
CALLS_POLICY = RowPolicy(
    key=("call_id",),
    instants=("start_at", "end_at", "csat_survey_time", "timestamp_custom_field_n1"),
    renamed={
        "interaction_id": "call_id",
        "call_type": "type",
        "start_time": "start_at",
        "end_time": "end_at",
        **{f"{name}_time": f"{name}_time_seconds" for name in ("total", "talk", "wait", "hold", "abandon")},
        "total_ringing_time": "total_ringing_time_seconds",
    },
    empty_text_is_null=True,  # Talkdesk: "" and "None" are null in every column
    none_text_is_null=True,
    forms={"agent_disconnected": FLAG},
)
MYREPORTS_POLICY = RowPolicy(key=("doc_id",), renamed={"start": "start_local"})

CHUNK = 1 << 20
BATCH_LIMIT = 64 << 20  # a batch that never parses this far is a malformed body, not a long row


class Malformed(Exception):
    pass


def open_body(url: str, token: str) -> t.Any:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    conn.request(
        "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers={"Authorization": f"Bearer {token}"}
    )
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"nosdk: GET {url}: HTTP {response.status}")
    return response


class Output:
    """RECORD lines as the tap writes them: head + record + tail, one bytearray per batch."""

    def __init__(self, stream: str) -> None:
        self.head = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
        tail = b',"time_extracted":' + orjson.dumps(dt.datetime.now(dt.UTC)) + b"}\n"
        self.between = tail + self.head
        self.out = sys.stdout.buffer
        self.rows = 0

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        dumps, between = orjson.dumps, self.between
        buffer = bytearray(self.head)
        for row in rows:
            buffer += dumps(row) + between
        del buffer[-len(self.head) :]
        self.out.write(buffer)
        self.rows += len(rows)


class Vendor:
    """Where the rows are, and the fields the tap adds to each."""

    def __init__(self, vendor: str, url: str, window: tuple[str, str]) -> None:
        self.vendor = vendor
        path = urlsplit(url).path.strip("/").split("/")
        self.start, self.end = window
        if vendor == "talkdesk":  # /data/reports/<type>/files/<job id>
            self.stream, self.array = "talkdesk_calls", "entries"
            self.origin = {"report_job_id": path[-1], "report_window_start": self.start, "report_window_end": self.end}
        else:  # /api/v1.0/workspaces/<ws>/reports/<report id>/requests/<request id>/data
            self.stream, self.array = "myreports_call_rows", "data"
            self.report_id, self.request_id = path[-4], path[-2]
        self.to_utc: t.Callable[[object], str | None] | None = None
        policy = CALLS_POLICY if vendor == "talkdesk" else MYREPORTS_POLICY
        self.shape = RowShaper(policy).shape
        self.keys = KeyGuard(policy.key)

    def header(self, header: dict) -> None:
        if self.vendor == "myreports":
            tz = ZoneInfo((header.get("request") or {}).get("timeZoneId") or "UTC")
            start, end = parse_instant(self.start), parse_instant(self.end)
            assert start is not None and end is not None
            self.to_utc = LocalTimeConverter(tz, start, end).to_utc_text

    def finish(self, rows: list[dict]) -> list[dict]:
        shape, keys = self.shape, self.keys.add
        finished = []
        if self.vendor == "talkdesk":
            origin = self.origin
            for row in rows:
                row = shape(row, UTC)
                row.update(origin)
                keys(row)
                finished.append(row)
        else:
            to_utc, report_id, request_id = self.to_utc, self.report_id, self.request_id
            assert to_utc is not None
            for row in rows:
                row["start_utc"] = to_utc(row.get("start"))
                row = shape(row, UTC)
                row["report_id"] = report_id
                row["request_id"] = request_id
                keys(row)
                finished.append(row)
        return finished

    def check(self, header: dict, trailer: dict, rows: int) -> None:
        """The tap's checks: every row keyed, no key twice; Talkdesk's `total` = the entries read."""
        if self.keys.missing or self.keys.duplicates():
            raise Malformed(f"{self.keys.missing} rows without a key, {self.keys.duplicates()} duplicate keys")
        total = trailer.get("total", header.get("total"))
        if self.vendor == "talkdesk" and isinstance(total, int) and total != rows:
            raise Malformed(f"total={total} but {rows} entries")


def read_header(body: t.Any, array: str) -> tuple[dict, bytearray]:
    """The members before the rows array (validated by orjson), and the bytes after its `[`."""
    buffer = bytearray()
    pattern = re.compile(rb'"' + array.encode() + rb'"\s*:\s*\[')
    searched = 0
    while True:
        chunk = body.read(CHUNK)
        if not chunk:
            raise Malformed(f"no {array} array")
        buffer += chunk
        for match in pattern.finditer(buffer, max(0, searched - 64)):
            # Only the top-level key closes the document with `]}`; one inside a string or a
            # nested object leaves it open, and orjson says so.
            try:
                header = orjson.loads(bytes(buffer[: match.end()]) + b"]}")
            except orjson.JSONDecodeError:
                continue
            if isinstance(header, dict):
                header.pop(array, None)
                return header, buffer[match.end() :]
        searched = len(buffer)
        if searched > BATCH_LIMIT:
            raise Malformed(f"no {array} array in the first {BATCH_LIMIT} bytes")


def orjson_rows(body: t.Any, vendor: Vendor, out: Output) -> None:
    header, rest = read_header(body, vendor.array)
    vendor.header(header)
    pending = bytearray(b"[") + rest
    while chunk := body.read(CHUNK):
        pending += chunk
        cut = pending.rfind(b"},{")
        if cut < 0:
            continue
        pending[cut + 1] = 0x5D  # `]` where the `,` was: pending[:cut + 2] is `[row,...,row]`
        try:
            with memoryview(pending) as view, view[: cut + 2] as batch:
                rows = orjson.loads(batch)
        except orjson.JSONDecodeError:
            pending[cut + 1] = 0x2C  # the cut was inside a string (or the body is malformed): read on
            if len(pending) > BATCH_LIMIT:
                raise Malformed("no parsable row batch in 64 MB") from None
            continue
        out.write(vendor.finish(rows))
        del pending[1 : cut + 2]  # keep the `[`; the next row's `{` follows it
    # The last rows and the trailer: `[row,...]` + `,"total":...}` closes as one object.
    try:
        document = orjson.loads(b'{"":' + pending)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"the body's end: {exc}") from None
    out.write(vendor.finish(document.pop("")))
    vendor.check(header, document, out.rows)


def ijson_rows(body: t.Any, vendor: Vendor, out: Output) -> None:
    """ijson's C backend over the rows, fed as `{"rows":[` + the bytes after the header."""
    import ijson

    header, rest = read_header(body, vendor.array)
    vendor.header(header)
    reader = _Prefixed(b'{"rows":[' + bytes(rest), body)
    rows: list[dict] = []
    try:
        for row in ijson.get_backend("yajl2_c").items(reader, "rows.item", use_float=True, buf_size=256 * 1024):
            rows.append(row)
            if len(rows) == 2000:
                out.write(vendor.finish(rows))
                rows = []
    except ijson.JSONError as exc:
        raise Malformed(str(exc).splitlines()[0]) from None
    out.write(vendor.finish(rows))
    vendor.check(header, {}, out.rows)


class _Prefixed:
    def __init__(self, first: bytes, body: t.Any) -> None:
        self.first, self.body = first, body

    def read(self, size: int) -> bytes:
        if self.first and size:  # ijson probes with read(0)
            chunk, self.first = self.first, b""
            return chunk
        return self.body.read(size)


def copy(body: t.Any, rendered: str, by_line: bool) -> None:
    """Read the body; write the pre-rendered lines as the body arrives (same share of each)."""
    out = sys.stdout.buffer
    total = int(body.getheader("Content-Length") or 0) if hasattr(body, "getheader") else 0
    with open(rendered, "rb") as lines:
        size = lines.seek(0, 2)
        lines.seek(0)
        ratio = size / total if total else 0.0
        received = written = 0
        while chunk := body.read(CHUNK):
            received += len(chunk)
            due = int(received * ratio)
            if by_line:
                while written < due and (line := lines.readline()):
                    out.write(line)
                    written += len(line)
            elif due > written:
                out.write(lines.read(due - written))
                written = due
        if by_line:
            for line in lines:
                out.write(line)
        else:
            out.write(lines.read())


def socket_floor(body: t.Any) -> None:
    buffer = bytearray(CHUNK)
    while body.readinto(buffer):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["orjson", "ijson", "copy", "copy-lines", "socket"])
    parser.add_argument("vendor", choices=["talkdesk", "myreports"])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--window", nargs=2, metavar=("START", "END"), required=True)
    parser.add_argument("--rendered", help="pre-rendered RECORD lines (copy, copy-lines)")
    parser.add_argument("--body-file", help="read the body from this file instead of the URL")
    args = parser.parse_args()
    body = open(args.body_file, "rb") if args.body_file else open_body(args.url, args.token)
    vendor = Vendor(args.vendor, args.url, tuple(args.window))
    try:
        if args.mode in ("orjson", "ijson"):
            out = Output(vendor.stream)
            (orjson_rows if args.mode == "orjson" else ijson_rows)(body, vendor, out)
            sys.stdout.buffer.flush()
        elif args.mode == "socket":
            socket_floor(body)
        else:
            copy(body, args.rendered, by_line=args.mode == "copy-lines")
            sys.stdout.buffer.flush()
    except Malformed as exc:
        raise SystemExit(f"nosdk: malformed body: {exc}") from None


if __name__ == "__main__":
    main()
