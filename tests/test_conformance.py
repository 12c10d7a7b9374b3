"""Every RECORD (and every row of a BATCH file) conforms to the latest SCHEMA the tap emitted for its
stream, whatever JSON type the vendors send (shape wrong-json-types): values are converted when that
loses nothing, so the records equal the plain sandbox's; a value that cannot be converted (shapes
untypable-value, untypable-added-column) stops its stream with one line and an unmoved bookmark.

The validator is jsonschema's Draft 7 with two things made strict: `date-time` is checked as
RFC 3339 (jsonschema checks no date-time without an extra package), and an integer is a JSON
integer (Draft 7 lets 12.0 pass; the contract converts it to 12)."""

from __future__ import annotations

import collections
import copy
import datetime as dt
import json
import re
import typing as t

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, FormatChecker, validators

from helpers import LONDON_REPORT, NEW_YORK_REPORT, TapRun, catalog_selecting, run_cli, sandbox_config, sync
from tap_callreports.batches import read_batch_file
from tap_callreports.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tap_callreports.sandbox.talkdesk import TALKDESK_REPORT_TYPES as REPORT_TYPES

UTC = dt.UTC
DAYS = ("2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", "2026-10-03T00:00:00Z", "2026-10-04T00:00:00Z")
# Imports spread over the 30 days before the anchor: 200 put a dozen in a two-day run.
BOX = {"imports_count": 200, "job_statuses_count": 60, "list_anchor": DAYS[2], "job_polls": 1}
SANDBOX_URL = re.compile(r"http://(127\.0\.0\.1|localhost):\d+")


# ---- the validator ------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))")


def is_rfc3339(value: object) -> bool:
    """RFC 3339 section 5.6 date-time: a real date, a time of day, an offset (Z or +hh:mm)."""
    if not isinstance(value, str):
        return True  # a format applies to strings only; the type says the rest
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    off_hour, off_minute = (int(part or 0) for part in match.groups()[6:])
    return hour < 24 and minute < 60 and second <= 60 and off_hour < 24 and off_minute < 60  # noqa: PLR2004


FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time")(is_rfc3339)
StrictDraft7 = validators.extend(
    Draft7Validator,
    type_checker=Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def validator(schema: dict) -> Draft7Validator:
    return StrictDraft7(schema, format_checker=FORMATS)


def test_the_validator_checks_date_times_and_integers():
    check = validator(
        {
            "type": "object",
            "properties": {
                "at": {"type": ["string", "null"], "format": "date-time"},
                "n": {"type": ["integer", "null"]},
            },
        }
    )
    for good in ("2026-10-01T12:00:00Z", "2026-10-01T12:00:00.123+02:00", "2026-12-31t23:59:60z", None):
        assert check.is_valid({"at": good, "n": 12}), good
    for bad in (
        "abc",
        "2026-10-01",
        "2026-10-01T12:00:00",
        "2026-10-01 12:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-10-01T24:00:00Z",
        "2026-10-01T12:00:00+2:00",
        "12:00:00Z",
    ):
        assert not check.is_valid({"at": bad}), bad
    for bad in (12.0, True, "12", ""):
        assert not check.is_valid({"n": bad}), bad


# ---- runs over every stream ---------------------------------------------------------------------------


def all_streams(sandbox: RunningSandbox, fmt: str, **overrides: t.Any) -> dict:
    """Every stream of every vendor over two days; Talkdesk files in `fmt` (only Talkdesk with csv
    and json_bulk: the other vendors' bodies are the same whatever the format)."""
    vendors = ("talkdesk", "zendesk", "myreports") if fmt == "json" else ("talkdesk",)
    return sandbox_config(
        sandbox,
        vendors=vendors,
        talkdesk_report_types=REPORT_TYPES,
        talkdesk_report_format=fmt,
        talkdesk_page_size=20,
        myreports_report_ids=[LONDON_REPORT, NEW_YORK_REPORT],
        start_date=DAYS[0],
        end_date=DAYS[2],
        **overrides,
    )


FORMATS_RUN = ("json", "csv", "json_bulk")


@pytest.fixture(scope="module")
def runs() -> t.Iterator[t.Callable[[str, str], TapRun]]:
    """One run per (shape or "plain", Talkdesk format), made once for the module."""
    made: dict[tuple[str, str], TapRun] = {}
    boxes: list[RunningSandbox] = []

    def get(shape: str, fmt: str) -> TapRun:
        if (shape, fmt) not in made:
            boxes.append(start_sandbox(SandboxConfig(shapes=() if shape == "plain" else (shape,), **BOX)))
            made[shape, fmt] = sync(all_streams(boxes[-1], fmt))
        return made[shape, fmt]

    yield get
    for box in boxes:
        box.stop()


def nonconforming(messages: list[dict]) -> tuple[list[str], collections.Counter[str]]:
    """Each row out (RECORD, or in a BATCH file) against the latest SCHEMA of its stream before it:
    what does not validate, or carries a column the SCHEMA does not declare (a SQL target creates
    columns from SCHEMA messages only); and how many rows of each stream were checked."""
    checks: dict[str, tuple[Draft7Validator, set[str]]] = {}
    problems: list[str] = []
    checked: collections.Counter[str] = collections.Counter()
    for message in messages:
        kind, stream = message["type"], message.get("stream")
        if kind == "SCHEMA":
            checks[stream] = (validator(message["schema"]), set(message["schema"].get("properties", {})))
            continue
        if kind not in ("RECORD", "BATCH"):
            continue
        if stream not in checks:
            problems.append(f"{stream}: a {kind} before any SCHEMA")
            continue
        check, declared = checks[stream]
        rows = (
            [message["record"]]
            if kind == "RECORD"
            else [r for url in message["manifest"] for r in read_batch_file(url)]
        )
        for row in rows:
            checked[stream] += 1
            for error in check.iter_errors(row):
                where = ".".join(map(str, error.absolute_path)) or "(row)"
                problems.append(f"{stream}.{where}: {error.message}")
            problems += [f"{stream}.{column}: not declared in the SCHEMA" for column in sorted(set(row) - declared)]
    return problems, checked


def assert_conforms(run: TapRun, streams: t.Iterable[str]) -> None:
    assert run.error is None, run.error
    problems, checked = nonconforming(run.messages)
    summary = collections.Counter(p.split(":")[0] for p in problems)
    assert not problems, f"{len(problems)} nonconforming values {dict(summary)}; first: {problems[:8]}"
    empty = [stream for stream in streams if checked[stream] == 0]
    assert not empty, f"no rows to check in {empty}"


def streams_of(fmt: str) -> list[str]:
    talkdesk = ["talkdesk_imports", *(f"talkdesk_{kind}" for kind in REPORT_TYPES), "talkdesk_report_jobs"]
    return talkdesk + (["zendesk_job_statuses", "myreports_call_rows", "myreports_requests"] if fmt == "json" else [])


@pytest.mark.parametrize("fmt", FORMATS_RUN)
@pytest.mark.parametrize("shape", ["plain", "wrong-json-types"])
def test_every_record_conforms_to_its_schema(runs, shape, fmt):
    assert_conforms(runs(shape, fmt), streams_of(fmt))


# ---- wrong-json-types: the plain sandbox's records, after lossless conversion -----------------------

# The job streams' own ids differ between runs: their rows are matched by what they describe.
UNTYPED_STREAMS = {"talkdesk_explore_calls", "talkdesk_audit_logs", "talkdesk_messaging_contacts"}
MATCHED_BY = {
    "talkdesk_report_jobs": ("report_type", "window_start", "window_end"),
    "myreports_requests": ("report_id", "window_start", "window_end"),
}
# Fields that name a job or the moment a run saw it, or how its file came: they differ between runs.
RUN_FIELDS = {"report_job_id", "request_id", "id", "finished_at", "file_delivery", "links"}


def canonical(value: t.Any) -> t.Any:
    """A value as compared between runs: JSON types kept apart (true is not 1, "12" is not 12), 12
    and 12.0 the same number (the validator pins integers), the sandbox's address masked."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", SANDBOX_URL.sub("SANDBOX", value))
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    return value


def by_key(run: TapRun, stream: str) -> dict[tuple, dict]:
    """The stream's records by key (its primary key, or MATCHED_BY); a key met twice fails."""
    key = MATCHED_BY.get(stream) or run.schemas()[stream]["key_properties"]
    assert key, f"{stream} has no key to match records by"
    found: dict[tuple, dict] = {}
    for record in run.records(stream):
        ident = tuple(json.dumps(canonical(record.get(column))) for column in key)
        assert ident not in found, f"{stream}: {dict(zip(key, ident))} twice"
        found[ident] = {c: canonical(v) for c, v in record.items() if c not in RUN_FIELDS or c in key}
    return found


@pytest.mark.parametrize("fmt", FORMATS_RUN)
def test_wrong_json_types_give_the_plain_records(runs, fmt):
    plain, run = runs("plain", fmt), runs("wrong-json-types", fmt)
    assert plain.error is None and run.error is None, (plain.error, run.error)
    # Reports without evidence of their layout have no typed vendor column: a value sent as another
    # JSON type is other text there, by design (docs/talkdesk-report-rows.md).
    for stream in [s for s in streams_of(fmt) if s not in UNTYPED_STREAMS]:
        expected, got = by_key(plain, stream), by_key(run, stream)
        assert expected, f"{stream}: the plain run has no rows to compare"
        assert got.keys() == expected.keys(), (
            f"{stream}: {len(expected.keys() - got.keys())} row(s) lost, "
            f"{len(got.keys() - expected.keys())} not in the plain run"
        )
        differing = [
            (ident, column, expected[ident].get(column), row.get(column))
            for ident, row in got.items()
            for column in expected[ident].keys() | row.keys()
            if expected[ident].get(column) != row.get(column)
        ]
        assert not differing, f"{stream}: {len(differing)} value(s) differ (key, column, plain, got): {differing[:6]}"
    assert run.final_state == plain.final_state


def test_the_wrong_json_types_shape_sends_every_kind_of_other_type(make_sandbox):
    """The shape really sends what the conversions are for (else the comparison above proves little)."""
    sandbox = make_sandbox(shapes=("wrong-json-types",), **BOX)
    from tap_callreports.sandbox.shapes import sent_as_other_types

    start, end = (dt.datetime.fromisoformat(d.replace("Z", "+00:00")) for d in DAYS[:2])
    data = sandbox.app.data
    sent = [
        sent_as_other_types(row)
        for kind in ("calls", "contacts")
        for row in data.talkdesk_rows(kind, start, end, UTC, dt.datetime.now(UTC))
    ]
    sent += [sent_as_other_types(row) for _ts, row in data.myreports_rows(LONDON_REPORT, start, end)]
    sent += [sent_as_other_types(row) for row in [*data.job_statuses(), *data.imports()]]
    values = collections.defaultdict(set)
    for row in sent:
        for column, value in row.items():
            values[column].add(repr(value) if not isinstance(value, (list, dict)) else "")
    forms = {
        "talk_time": [r"'\d+'", r"' \d+ '", r"\d+\.0", r"'\d+\.0'", r"\d+"],
        "is_transfer": ["'true'", "1|0", "'Yes'|'No'"],
        "user_voice_rating": ["''", "None"],
        "ring": [r"'\d+\.\d+'"],
        "userNum": [r"'\d+'", r"\d+"],
        "total": ["''"],
        "total_records": [r"'\d+'", r"\d+\.0"],
    }
    for column, patterns in forms.items():
        for pattern in patterns:
            assert any(re.fullmatch(pattern, v) for v in values[column]), (column, pattern, sorted(values[column])[:10])


# ---- a value that cannot be converted: one line, the bookmark unmoved ---------------------------------


def error_lines(run: TapRun) -> list[str]:
    return [line for line in run.stderr_lines if line.startswith("tap-callreports: error:")]


def bookmarks(state: dict, stream: str) -> list[dt.datetime]:
    mark = state.get("bookmarks", {}).get(stream, {})
    values = [mark.get("replication_key_value"), *(p.get("replication_key_value") for p in mark.get("partitions", []))]
    return [dt.datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values if v]


def marked_window(sandbox: RunningSandbox, vendor: str) -> dt.datetime:
    """Start of the one-day window holding the sandbox's one untypable row in DAYS (there is one)."""
    start, end = (dt.datetime.fromisoformat(d.replace("Z", "+00:00")) for d in (DAYS[0], DAYS[-1]))
    data = sandbox.app.data
    if vendor == "talkdesk":
        found = [
            dt.datetime.fromisoformat(r["start_at"].replace("Z", "+00:00"))
            for r in data.talkdesk_rows("calls", start, end, UTC, dt.datetime.now(UTC))
            if r.get("talk_time") == "N/A" or r.get("sentiment_scored_at") == "x"
        ]
    else:
        found = [
            dt.datetime.fromtimestamp(ts, UTC)
            for ts, r in data.myreports_rows(LONDON_REPORT, start, end)
            if r.get("callType") == "N/A"
        ]
    assert len(found) == 1, found
    return found[0].replace(hour=0, minute=0, second=0)


UNTYPABLE = {
    # case: (vendor, stream, shapes, the column the line names (as output or as sent))
    "talkdesk-integer": ("talkdesk", "talkdesk_calls", ("untypable-value",), ("talk_time",)),
    "myreports-integer": ("myreports", "myreports_call_rows", ("untypable-value",), ("call_type", "callType")),
    "talkdesk-added-column": (
        "talkdesk",
        "talkdesk_calls",
        ("talkdesk-extra-field", "untypable-added-column"),
        ("sentiment_scored_at",),
    ),
}


@pytest.mark.parametrize("case", list(UNTYPABLE))
def test_an_untypable_value_stops_the_stream_with_its_bookmark_before_the_window(tmp_path, make_sandbox, case):
    vendor, stream, shapes, columns = UNTYPABLE[case]
    sandbox = make_sandbox(shapes=shapes)
    config = sandbox_config(sandbox, vendors=(vendor,), start_date=DAYS[0], end_date=DAYS[-1])
    window = marked_window(sandbox, vendor)
    assert DAYS[0] < window.strftime("%Y-%m-%dT%H:%M:%SZ") < DAYS[-1]  # a window before it can commit
    run = run_cli(tmp_path, config, catalog=catalog_selecting(config, [stream]))
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = error_lines(run)
    assert len(lines) == 1, run.stderr[-3000:]
    line = lines[0]
    assert line == run.stderr_lines[-1]
    assert line.startswith(f"tap-callreports: error: {stream}: "), line
    assert any(column in line for column in columns), line
    assert "catalog" in line, line  # what to do: override the column's schema in the catalog
    # No STATE moves the bookmark past the window holding the row; the row itself never went out.
    marks = [mark for state in run.states for mark in bookmarks(state, stream)]
    assert all(mark <= window for mark in marks), (window, marks)
    assert not [r for r in run.records(stream) if "N/A" in r.values() or "x" in r.values()]
    if case == "talkdesk-added-column":
        # The column the tap added was typed date-time from its first value (an instant: UTC), and
        # said so before the row.
        latest = [m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == stream][-1]
        assert latest["schema"]["properties"]["sentiment_scored_at"]["format"] == "date-time"
        scored = [r["sentiment_scored_at"] for r in run.records(stream) if r.get("sentiment_scored_at")]
        assert scored and all(is_rfc3339(v) and v.endswith("Z") for v in scored)


# ---- BATCH files conform too --------------------------------------------------------------------------


def batch_config(root) -> dict:
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri()},
        "batch_size": 50,
    }


@pytest.mark.parametrize("shape", ["plain", "wrong-json-types"])
def test_rows_in_batch_files_conform_to_the_schema(make_sandbox, tmp_path, shape):
    sandbox = make_sandbox(shapes=() if shape == "plain" else (shape,), **BOX)
    run = sync(all_streams(sandbox, "json", batch_config=batch_config(tmp_path / "batches")))
    assert run.error is None, run.error
    batched = {m["stream"] for m in run.messages if m["type"] == "BATCH"}
    assert {"talkdesk_calls", "myreports_call_rows"} <= batched, batched
    assert_conforms(run, streams_of("json"))


# ---- the conformer's unit: a valid row out, or the error ----------------------------------------------

BASE_TYPES = {
    "integer": {"type": ["integer"]},
    "number": {"type": ["number"]},
    "boolean": {"type": ["boolean"]},
    "string": {"type": ["string"]},
    "date_time": {"type": ["string"], "format": "date-time"},
    "object": {"type": ["object"]},
    "array": {"type": ["array"]},
    "array_or_object": {"type": ["array", "object"]},
}


def column_spec(base: str, nullable: bool) -> dict:
    spec = copy.deepcopy(BASE_TYPES[base])
    if nullable:
        spec["type"].append("null")
    return spec


#: One column per type and nullability: every combination the tap's schemas use.
UNIT_SCHEMA = {
    "type": "object",
    "properties": {
        f"{base}_{'nullable' if nullable else 'required'}": column_spec(base, nullable)
        for base in BASE_TYPES
        for nullable in (True, False)
    },
}
UNIT_CHECK = validator(UNIT_SCHEMA)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
# Text that is nearly another type: where a conformer has to decide.
TRICKY_TEXT = (
    st.sampled_from(
        [
            "",
            " ",
            "12",
            " 12 ",
            "12.0",
            "12.5",
            "-3",
            "1e3",
            "0x1A",
            "true",
            "False",
            "T",
            "f",
            "YES",
            "no",
            "1",
            "0",
            "N/A",
            "abc",
            "null",
            "[]",
            "{}",
            "NaN",
            "Infinity",
            "2026-10-01T12:00:00Z",
            "2026-10-01T12:00:00+02:00",
            "2026-10-01T12:00:00",
            "2026-13-01T00:00:00Z",
            "2026-10-01",
        ]
    )
    | st.integers(-(2**63), 2**63 - 1).map(str)
    | st.floats(allow_nan=False).map(repr)
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
)
ROWS = st.fixed_dictionaries({}, optional={column: JSON_VALUES | TRICKY_TEXT for column in UNIT_SCHEMA["properties"]})


def conformer_api() -> tuple[type, type]:
    from tap_callreports.conform import Conformer, ValueNotConformed

    return Conformer, ValueNotConformed


def typed(row: dict) -> dict:
    """A row compared with its JSON types (1 is not true, 12 is not 12.0 here)."""
    return {k: (type(v).__name__, json.dumps(v, sort_keys=True)) for k, v in row.items()}


@settings(max_examples=400, deadline=None)
@given(row=ROWS)
def test_a_conformed_row_validates_or_the_column_is_named(row):
    conformer_class, refused = conformer_api()
    original = copy.deepcopy(row)
    was_valid = UNIT_CHECK.is_valid(original)
    try:
        out = conformer_class(copy.deepcopy(UNIT_SCHEMA), "unit_stream").conform(row)
    except refused as exc:
        assert not was_valid, f"a conforming row was refused: {exc}"
        assert str(exc).startswith("unit_stream: "), str(exc)
        assert any(column in str(exc) for column in original), str(exc)
        return
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in UNIT_CHECK.iter_errors(out)]
    assert not errors, (original, errors)
    assert out.keys() == original.keys()
    if was_valid:  # nothing to convert: every value as it was (a date-time may be rewritten as UTC)
        kept = {k: v for k, v in original.items() if not k.startswith("date_time")}
        assert typed({k: out[k] for k in kept}) == typed(kept)


# The contract's conversions, value by value: (column type, sent, emitted).
CONVERTED = [
    ("integer", "12", 12),
    ("integer", " 12 ", 12),
    ("integer", "12.0", 12),
    ("integer", 12.0, 12),
    ("integer", True, 1),
    ("integer", False, 0),
    ("integer", "", None),
    ("number", "12.5", 12.5),
    ("number", "12", 12),
    ("number", "", None),
    *[("boolean", sent, True) for sent in ("true", "TRUE", "t", "T", "yes", "Yes", "1", 1)],
    *[("boolean", sent, False) for sent in ("false", "False", "f", "F", "no", "NO", "0", 0)],
    ("boolean", "", None),
    ("string", 12, "12"),
    ("string", 12.5, "12.5"),
    ("string", True, "true"),
    ("string", {"a": [1, "x"]}, '{"a":[1,"x"]}'),
    ("string", [1, 2], "[1,2]"),
]
REFUSED = [
    ("integer_nullable", "N/A"),
    ("integer_nullable", "12.5"),
    ("integer_required", None),
    ("integer_required", ""),
    ("number_nullable", "abc"),
    ("boolean_nullable", "maybe"),
    ("boolean_nullable", 2),
    ("date_time_nullable", "abc"),
    ("date_time_nullable", "2026-13-01T00:00:00Z"),
    ("object_nullable", "x"),
    ("array_nullable", "x"),
    ("string_required", None),
]


@pytest.mark.parametrize(("base", "sent", "emitted"), CONVERTED)
def test_a_value_sent_as_another_type_is_converted_without_loss(base, sent, emitted):
    conformer_class, _refused = conformer_api()
    column = f"{base}_nullable"
    out = conformer_class(copy.deepcopy(UNIT_SCHEMA), "unit_stream").conform({column: copy.deepcopy(sent)})
    assert out[column] == emitted and not (isinstance(out[column], bool) ^ isinstance(emitted, bool)), out
    if base in ("integer", "string", "boolean"):
        assert type(out[column]) is type(emitted), out
    assert UNIT_CHECK.is_valid(out)


@pytest.mark.parametrize(("column", "sent"), REFUSED)
def test_a_value_that_cannot_be_converted_is_refused_naming_stream_and_column(column, sent):
    conformer_class, refused = conformer_api()
    with pytest.raises(refused) as caught:
        conformer_class(copy.deepcopy(UNIT_SCHEMA), "unit_stream").conform({column: sent})
    assert str(caught.value).startswith("unit_stream: ")
    assert column in str(caught.value)


# ---- counts and flags the vendors may write as another JSON type --------------------------------


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (12, 12),
        (12.0, 12),
        ("12", 12),
        (" 12 ", 12),
        ("12.0", 12),
        (12.5, None),
        ("12.5", None),
        ("N/A", None),
        (True, None),
        (-1.0, None),
    ],
)
def test_stated_counts_read_in_any_lossless_form(value, count):
    from tap_callreports.completeness import stated_count

    assert stated_count(value) == count


@pytest.mark.parametrize(
    ("value", "exceeded"),
    [
        (True, True),
        (False, False),
        (None, None),
        ("true", True),
        ("False", False),
        (1, True),
        (0, False),
        ("1", True),
        ("maybe", None),
        ("", None),
    ],
)
def test_row_limit_exceeded_read_in_any_lossless_form(value, exceeded):
    from tap_callreports.myreports.requests import MyReportsRequests

    assert MyReportsRequests._limit_exceeded(_StreamName(), {"rowLimitExceeded": value}) is exceeded


class _StreamName:
    name = "myreports_call_rows"


# ---- what the review of the conformer found (each pinned) ------------------------------------------


def _column(types, fmt=None):
    from tap_callreports.conform import Conformer

    spec = {"type": types} | ({"format": fmt} if fmt else {})
    return Conformer({"properties": {"c": spec}}, "s")


@pytest.mark.parametrize(
    ("types", "value", "expected"),
    [
        (["integer"], "12345678901234567890.0", 12345678901234567890),
        (["integer"], "1e3", 1000),
        (["number"], "12345678901234567891.5", "12345678901234567891.5"),  # exact digits, not a float's
        (["number"], "0.1", "0.1"),
    ],
)
def test_numbers_written_as_text_keep_every_digit(types, value, expected):
    from tap_callreports.writer import dumps

    row = _column(types).conform({"c": value})
    assert (row["c"] if isinstance(expected, int) else dumps(row["c"]).decode()) == expected


@pytest.mark.parametrize(
    ("types", "value"),
    [
        (["integer"], "1.0000000000000000001"),  # not whole: no integer
        (["integer"], 1.2345678901234568e29),  # a float this big may be another integer, rounded by the parser
        (["string"], 1.2345678901234568e29),
        (["number", "null"], "NaN"),
        (["number"], "inf"),
        (["number"], "1e400x"),
        (["number"], float("nan")),
        (["string", "null"], "2026-04-23"),
    ],
)
def test_values_that_would_change_meaning_are_refused(types, value):
    from tap_callreports.conform import ValueNotConformed

    conformer = _column(types, "date-time" if value == "2026-04-23" else None)
    with pytest.raises(ValueNotConformed, match="s: column 'c'"):
        conformer.conform({"c": value})


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-04-23T10:22:26.123456789+02:00", "2026-04-23T08:22:26.123456789Z"),  # the fraction as written
        ("2026-04-23T10:22:26.123456789Z", "2026-04-23T10:22:26.123456789Z"),
        ("2026-04-23 10:22:26", "2026-04-23T10:22:26Z"),
        ("2026-04-23T10:22:26.\u0661\u0662Z", None),  # digits that are not ASCII
        ("9999-12-31T23:59:59-05:00", None),  # beyond year 9999 in UTC: no crash, no time
        ("2026-02-30T10:00:00Z", None),
    ],
)
def test_date_time_text_to_utc(text, utc):
    from tap_callreports.conform import utc_text

    assert utc_text(text) == utc


def test_an_empty_instant_is_null_and_a_missing_required_column_is_named():
    from tap_callreports.conform import Conformer, ValueNotConformed
    from tap_callreports.rowshape import RowPolicy, RowShaper

    policy = RowPolicy(key=("id",), instants=("start_at",))
    schema = policy.output_schema(
        {"properties": {"id": {"type": ["string"]}, "start_at": {"type": ["string", "null"]}}}
    )
    shaper = RowShaper(policy, conformer=lambda: Conformer(schema, "s", policy.instants), stream="s")
    assert shaper.shape({"id": "a", "start_at": ""}, dt.UTC)["start_at"] is None
    with pytest.raises(ValueNotConformed, match="'start_at' is string/null \\(date-time\\)"):
        shaper.shape({"id": "b", "start_at": "20260423"}, dt.UTC)  # no ISO date-time: no guess
    with pytest.raises(ValueNotConformed, match="column 'id' .* sent a record without it"):
        Conformer({"properties": {"id": {"type": "string"}}, "required": ["id"]}, "s").conform({})


def test_a_dry_run_in_batch_mode_writes_its_rows(sandbox, tmp_path):
    """A record limit takes the SDK's loop; BATCH mode must then write what that loop yields."""
    import contextlib
    import io

    from helpers import _parse, catalog_selecting, sandbox_config
    from tap_callreports.batches import read_batch_file
    from tap_callreports.tap import TapCallReports

    config = sandbox_config(
        sandbox,
        ("talkdesk",),
        end_date="2026-10-02T00:00:00Z",
        batch_config={"encoding": {"format": "jsonl", "compression": "gzip"}, "storage": {"root": tmp_path.as_uri()}},
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapCallReports(config=config, catalog=catalog_selecting(config, ["talkdesk_calls"]))
        tap.run_sync_dry_run(dry_run_record_limit=100_000, streams=[tap.streams["talkdesk_calls"]])
    rows = [
        r for m in _parse(out.getvalue()) if m["type"] == "BATCH" for u in m["manifest"] for r in read_batch_file(u)
    ]
    assert len(rows) == len({r["call_id"] for r in rows}) > 10


def test_job_records_leave_an_unfitting_vendor_field_empty_but_never_their_own_fields(sandbox, caplog):
    """Job records copy some fields from vendor metadata: one that does not fit its column is left
    empty with a warning (the run's rows are all in by then); a field the tap writes itself that
    does not fit (no null allowed) still stops the stream."""
    from helpers import sandbox_config
    from tap_callreports.conform import ValueNotConformed
    from tap_callreports.tap import TapCallReports

    tap = TapCallReports(config=sandbox_config(sandbox, ("myreports",)))
    stream = tap.streams["myreports_requests"]
    record = {
        "request_id": "r1",
        "report_id": "p1",
        "window_start": "2026-10-01T00:00:00Z",
        "window_end": "2026-10-02T00:00:00Z",
        "rows_read": 3,
        "outcome": "emitted",
        "attempt": 1,
        "finished_at": "2026-10-02T00:05:00Z",
        "query_duration": 12.5,
        "total_count": "3",
    }
    with caplog.at_level("WARNING"):
        out = stream.post_process(dict(record))
    assert out["query_duration"] is None and out["total_count"] == 3 and out["rows_read"] == 3
    assert "query_duration is 12.5, not integer/null: left empty" in caplog.text
    with pytest.raises(ValueNotConformed, match="myreports_requests: column 'rows_read'"):
        stream.post_process(dict(record, rows_read="three"))


def test_the_hot_path_gives_conform_s_verdict_row_by_row():
    """`check` proves types column by column (per layout); every row must still get exactly the
    row or the line `conform` gives it, whatever the order in which types and nulls arrive."""
    import random

    from tap_callreports.conform import Conformer, ProvenTypes

    schema = {
        "properties": {
            "i": {"type": ["integer", "null"]},
            "n": {"type": ["number", "null"]},
            "s": {"type": ["string", "null"]},
            "b": {"type": ["boolean", "null"]},
            "o": {"type": ["object", "null"], "properties": {"k": {"type": ["integer"]}}},
            "free": {},
        },
        "required": ["i"],
    }
    pool = [None, 1, 2.5, 3.0, float("nan"), float("inf"), "7", "7.5", "", "N/A", True, "yes", {"k": "1"}, [1]]
    rng = random.Random(29)
    for _ in range(20):
        conformer, proven = Conformer(schema, "s"), ProvenTypes()
        for _ in range(60):
            row = {name: rng.choice(pool[:4] if rng.random() < 0.7 else pool) for name in schema["properties"]}
            assert _verdicts(conformer, proven, row)[0], row


def _verdicts(conformer: t.Any, proven: t.Any, row: dict) -> tuple[bool, object]:
    """Whether `check` (the hot path) gives the row or the line `conform` gives it; and that."""
    from tap_callreports.conform import ValueNotConformed

    verdicts: list[object] = []
    for judge in (conformer.conform, lambda copied: conformer.check(copied, proven)):
        try:
            verdicts.append(judge(copy.deepcopy(row)))
        except ValueNotConformed as error:
            verdicts.append(str(error))
    return repr(verdicts[0]) == repr(verdicts[1]), verdicts[0]  # repr: NaN is not equal to itself


def test_a_float_column_proven_still_refuses_nan():
    """Floats proven for a column pass by their type; a NaN or infinity there still stops the
    stream (the per-pattern cache this replaced let one through once its pattern was proven)."""
    from tap_callreports.conform import Conformer, ProvenTypes, ValueNotConformed

    conformer = Conformer({"properties": {"id": {"type": "string"}, "x": {"type": ["number", "null"]}}}, "s")
    proven = ProvenTypes()
    assert conformer.check({"id": "a", "x": 1.5}, proven) == {"id": "a", "x": 1.5}
    with pytest.raises(ValueNotConformed, match="column 'x'"):
        conformer.check({"id": "b", "x": float("nan")}, proven)


def _wide_schema() -> dict:
    """A layout as wide as Talkdesk calls (52 columns): text, integers, numbers, flags."""
    kinds = ["string"] * 32 + ["integer"] * 10 + ["number"] * 4 + ["boolean"] * 6
    return {"properties": {f"c{i}": {"type": [kind, "null"]} for i, kind in enumerate(kinds)}, "required": ["c0"]}


def _clean_value(kind: str, rng: t.Any) -> object:
    if rng.random() < 0.3:
        return None
    return {"string": "text", "integer": 7, "number": rng.choice([1, 2.5]), "boolean": True}[kind]


def test_a_proven_layout_s_own_check_keeps_every_verdict():
    """Once a row passed the C-level probes, a layout is checked by code made for its proven types
    (`ProvenTypes.fast`); a value of a type new to its column, a NaN or an infinity in a column
    where floats were proven, text in a number column, must still get exactly the row or the line
    `conform` gives it, and the made check must not let any of them through."""
    import random

    from tap_callreports.conform import Conformer, ProvenTypes

    schema = _wide_schema()
    kinds = {name: spec["type"][0] for name, spec in schema["properties"].items()}
    rng = random.Random(2029)
    conformer, proven = Conformer(schema, "s"), ProvenTypes()
    for _ in range(50):
        row = {name: _clean_value(kind, rng) for name, kind in kinds.items()}
        row["c0"], row["c44"] = "id", 2.5  # every column proven: text, and floats where numbers are
        assert conformer.check(row, proven) is row
    assert proven.fast is not None  # the layout's own check runs from here on
    wrong = [1, 2.5, "7", "7.5", "N/A", "", True, "yes", {"k": 1}, [1], float("nan"), float("inf"), float("-inf")]
    let_through = 0
    for round_ in range(400):
        row = {name: _clean_value(kind, rng) for name, kind in kinds.items()}
        row["c0"] = "id"
        if round_ % 2:
            row[rng.choice(list(kinds))] = rng.choice(wrong)
        fast = proven.fast
        passed_fast = fast is not None and fast(copy.deepcopy(row))
        same, expected = _verdicts(conformer, proven, row)
        assert same, row
        let_through += passed_fast and repr(expected) != repr(row)
    assert let_through == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_the_layout_s_own_check_still_stops_nan_and_infinity(value):
    """A float column proven in a wide layout: NaN and infinity still stop the stream there."""
    from tap_callreports.conform import Conformer, ProvenTypes, ValueNotConformed

    schema = _wide_schema()
    conformer, proven = Conformer(schema, "s"), ProvenTypes()
    row = {name: ("id" if name == "c0" else None) for name in schema["properties"]}
    for _ in range(3):
        conformer.check(dict(row, c44=2.5), proven)
    assert proven.fast is not None and proven.fast(dict(row, c44=1.5))
    assert not proven.fast(dict(row, c44=value))
    with pytest.raises(ValueNotConformed, match="column 'c44'"):
        conformer.check(dict(row, c44=value), proven)
