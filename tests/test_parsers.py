"""Response parsers under fuzzing, and the small pure pieces (windows, time zones, redaction)."""

from __future__ import annotations

import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import orjson
import pytest
import requests
import urllib3.exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_callreports.errors import MalformedBodyError
from tap_callreports.redact import SecretRegistry
from tap_callreports.reportjobs.job import Window, plan_windows
from tap_callreports.responses import json_body
from tap_callreports.streaming import (
    HEAD_BYTES,
    BodyInterrupted,
    BodyMalformed,
    ReportDocument,
    csv_rows,
    ndjson_rows,
    not_the_report,
    parse_trailer,
)
from tap_callreports.timeutil import LocalTimeConverter, fall_back_transitions

UTC = dt.UTC
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
rows = st.lists(st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=6), max_size=30)


def document(entries: list[dict], trailer: dict) -> bytes:
    return orjson.dumps({"type": "calls", "entries": entries, **trailer})


def read_all(body: bytes, keys=("entries",)) -> tuple[list[dict], dict]:
    doc = ReportDocument(io.BytesIO(body), list(keys))
    got = list(doc.rows())
    return got, doc.trailer


@FUZZ
@given(rows, st.dictionaries(st.sampled_from(["total", "version", "note"]), scalars, max_size=3))
def test_whole_documents_round_trip(entries, trailer):
    got, parsed_trailer = read_all(document(entries, trailer))
    assert got == json.loads(orjson.dumps(entries))
    assert parsed_trailer == json.loads(orjson.dumps(trailer))


@FUZZ
@given(rows, st.data())
def test_cut_documents_fail_only_with_the_clear_error(entries, data):
    body = document(entries, {"total": len(entries)})
    cut = data.draw(st.integers(0, len(body) - 1))
    try:
        got, _ = read_all(body[:cut])
    except BodyMalformed as exc:
        assert "near byte" in str(exc) and "(row " in str(exc)
    else:
        assert len(got) <= len(entries)


class _Trickle(io.BytesIO):
    """A body that arrives a few bytes per read, as a slow connection gives it."""

    def __init__(self, body: bytes, size: int) -> None:
        super().__init__(body)
        self.size = size

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.size if size is None or size < 0 else min(size, self.size))


@FUZZ
@given(
    st.lists(
        st.fixed_dictionaries({"id": st.integers(0, 99), "note": st.sampled_from(['a"},{"b', "},{", "} , {", "x"])}),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 40),
    st.sampled_from([b",", b" ,\n "]),
)
def test_rows_whose_text_looks_like_a_row_boundary_parse_whole(entries, size, comma):
    """A cut between rows that falls inside a string fails to parse and is put back as it was:
    the rows come out exactly as sent, however the body is cut into reads."""
    body = (
        b'{"entries":['
        + comma.join(orjson.dumps(e) for e in entries)
        + b'],"total":'
        + str(len(entries)).encode()
        + b"}"
    )
    doc = ReportDocument(_Trickle(body, size), ["entries"])
    assert list(doc.rows()) == entries
    assert doc.trailer == {"total": len(entries)}


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_fail_only_with_the_clear_error(blob):
    for parse in (
        lambda b: read_all(b),
        lambda b: list(csv_rows(io.BytesIO(b))),
        lambda b: list(ndjson_rows(io.BytesIO(b))),
    ):
        try:
            parse(blob)
        except BodyMalformed:
            pass


@FUZZ
@given(st.binary(max_size=300))
def test_parse_trailer_never_raises(blob):
    assert isinstance(parse_trailer(blob), dict)


@FUZZ
@given(st.binary(max_size=300))
def test_page_bodies_fail_only_with_the_clear_error(blob):
    response = requests.Response()
    response._content = blob
    response.url = "http://127.0.0.1:1/api/v2/job_statuses"
    response.request = requests.Request("GET", response.url).prepare()
    try:
        json_body(response, "zendesk_job_statuses")
    except MalformedBodyError as exc:
        assert str(exc).startswith("zendesk_job_statuses: malformed JSON in the response to GET /api/v2/job_statuses")


class BreaksAfter(io.RawIOBase):
    def __init__(self, body: bytes, limit: int) -> None:
        self.body, self.limit, self.sent = body, limit, 0

    def read(self, size: int = -1) -> bytes:
        if self.sent >= self.limit:
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")
        if size == 0:
            return b""
        chunk = self.body[self.sent : min(self.limit, self.sent + size)]
        self.sent += len(chunk)
        return chunk


def test_a_broken_connection_is_retriable_and_says_how_far_it_got():
    entries = [{"id": n, "pad": "x" * 200} for n in range(2000)]
    body = document(entries, {"total": 2000})
    doc = ReportDocument(BreaksAfter(body, len(body) // 2), ["entries"])
    seen = []
    with pytest.raises(BodyInterrupted) as caught:
        seen.extend(doc.rows())
    assert 0 < caught.value.rows_read == len(seen) < 2000
    resumed = ReportDocument(io.BytesIO(body), ["entries"])
    rest = list(resumed.rows(skip=len(seen)))
    assert seen + rest == entries


def test_envelope_and_bare_results_are_both_read():
    bare = orjson.dumps(
        {"requestId": "r", "rowLimitExceeded": False, "data": [{"docId": "a"}], "summary": [{"ans": 1}]}
    )
    wrapped = orjson.dumps(
        {"data": {"requestId": "r", "rowLimitExceeded": False, "data": [{"docId": "a"}]}, "status": "success"}
    )
    for body, key in ((bare, "data"), (wrapped, "data.data")):
        doc = ReportDocument(io.BytesIO(body), ["data", "data.data"])
        assert doc.array_key == key and list(doc.rows()) == [{"docId": "a"}]


# ---- windows and time ------------------------------------------------------------------------


def test_windows_cover_the_range_without_gaps():
    start, end = dt.datetime(2026, 1, 1, 6, tzinfo=UTC), dt.datetime(2026, 2, 3, tzinfo=UTC)
    windows = plan_windows(start, end, 7)
    assert windows[0].start == start and windows[-1].end == end
    assert all(a.end == b.start for a, b in zip(windows, windows[1:]))
    assert all(w.end - w.start <= dt.timedelta(days=7) for w in windows)
    left, right = windows[0].halves()
    assert left.start == start and left.end == right.start and right.end == windows[0].end
    assert plan_windows(end, end, 7) == []
    with pytest.raises(ValueError):
        Window(start, start + dt.timedelta(seconds=1)).halves()


def test_fall_back_transitions_found_to_the_second():
    london = ZoneInfo("Europe/London")
    found = fall_back_transitions(london, dt.datetime(2026, 10, 20, tzinfo=UTC), dt.datetime(2026, 10, 30, tzinfo=UTC))
    assert found == [dt.datetime(2026, 10, 25, 1, tzinfo=UTC)]
    spring = fall_back_transitions(london, dt.datetime(2026, 3, 20, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC))
    assert spring == []


def test_local_time_is_placed_by_its_window():
    london = ZoneInfo("Europe/London")
    change = dt.datetime(2026, 10, 25, 1, tzinfo=UTC)
    before = LocalTimeConverter(london, change - dt.timedelta(hours=6), change)
    after = LocalTimeConverter(london, change, change + dt.timedelta(hours=6))
    assert before.to_utc_text("2026-10-25T01:30:00") == "2026-10-25T00:30:00Z"
    assert after.to_utc_text("2026-10-25T01:30:00") == "2026-10-25T01:30:00Z"
    assert after.to_utc_text("2026-10-25T01:59:59") == "2026-10-25T01:59:59Z"  # same minute cache, same fold
    assert before.to_utc_text("2026-10-24T12:00:00") == "2026-10-24T11:00:00Z"  # BST, unambiguous
    assert before.to_utc_text("not a time") is None and before.to_utc_text(None) is None


def test_redaction_covers_tokens_headers_and_signed_urls():
    registry = SecretRegistry()
    registry.add("s3cr3t-value")
    text = (
        "token s3cr3t-value; Authorization: Bearer abc.def.ghi; "
        "GET https://bucket/file.json?X-Amz-Expires=60&X-Amz-Signature=deadbeef&other=1"
    )
    cleaned = registry.redact(text)
    assert "s3cr3t-value" not in cleaned and "abc.def.ghi" not in cleaned and "deadbeef" not in cleaned
    assert "other=1" in cleaned


# ---- is a 200 body the report? (streaming.not_the_report) ------------------------------------------

CALLS_COLUMNS = ("call_id", "interaction_id", "start_at", "start_time")


@pytest.mark.parametrize(
    ("fmt", "content_type", "head", "columns"),
    [
        ("csv", "text/csv", b"call_id,type\r\n", CALLS_COLUMNS),  # header only: an empty window
        ("csv", "text/csv", b'\xef\xbb\xbf"interaction_id","call_type"\r\nabc,in\r\n', CALLS_COLUMNS),  # old names
        (
            "csv",
            "text/csv",
            b"call_id" + b"".join(b",a_column_the_tap_does_not_know_%d" % n for n in range(30)),
            CALLS_COLUMNS,
        ),  # longer than looked at
        ("csv", "text/csv", b"event_id,occurred_at,studio.step-name\n", ()),  # no layout
        # The header is decided by its structure, whatever the names hold (explore_calls, messaging).
        ("csv", "text/csv", b"interaction_id,in_business_hours?,transfer?,wrap-up_duration\r\na,TRUE,No,0.1\r\n", ()),
        ("csv", "text/csv", b'"Date & Time","Is KPI",Response\r\n2026-10-01 10:00:00,yes,"5"\r\n', ()),
        ("csv", "text/csv", b"agent,queue\n", CALLS_COLUMNS),  # names none of the layout's: the key check decides
        ("csv", "text/csv", b"call_id\r\n", CALLS_COLUMNS),  # one column, the layout's
        ("json_bulk", "application/x-ndjson", b"", ()),  # an empty window
        ("json_bulk", "binary/octet-stream", b"", ()),
    ],
)
def test_a_report_body_is_taken(fmt, content_type, head, columns):
    assert not_the_report(fmt, content_type, head[:HEAD_BYTES], columns) is None


@pytest.mark.parametrize(
    ("fmt", "content_type", "head", "columns", "says"),
    [
        ("csv", "text/plain", b"The report file is being generated\n", CALLS_COLUMNS, "names none of the report's"),
        ("csv", "text/csv", b"agent,agent\n", (), "a name given twice"),
        ("csv", "text/csv", b"a,b\r\n1,2,3\r\n4,5\r\n", (), "2 fields, the next line 3"),
        ("csv", "text/csv", b"", CALLS_COLUMNS, "empty text/csv body"),
        ("csv", "text/csv", b"\r\n", (), "empty text/csv body"),
        ("csv", "text/plain", b"The report file is being generated\n", (), "not a CSV header"),
        ("csv", "text/plain", b"Not ready, try again later\n", (), "not a CSV header"),
        ("json_bulk", "text/plain", b"", (), "empty text/plain body"),
        ("json_bulk", "", b"", (), "empty untyped body"),
    ],
)
def test_a_status_or_empty_body_is_not_the_report(fmt, content_type, head, columns, says):
    problem = not_the_report(fmt, content_type, head, columns)
    assert problem is not None and says in problem, problem
