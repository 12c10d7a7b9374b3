"""Talkdesk report rows in the layouts real accounts produce (docs/talkdesk-report-rows.md), over
real HTTP against the sandbox: each evidenced field a column of its type, every instant the true
UTC instant, `_local` the report zone's wall time, every row once by its key across a run and a
resumed run in Europe/Lisbon across the October DST change, the same records from json, csv and
json_bulk; keys proven to be the fewest unique fields; no keyless RECORD ever."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import typing as t
from zoneinfo import ZoneInfo

import pytest

from helpers import TapRun, catalog_selecting, run_cli, sandbox_config, sync
from tap_callreports.sandbox import RunningSandbox, SandboxConfig, start_sandbox

UTC = dt.UTC
LISBON = ZoneInfo("Europe/Lisbon")
FORMATS = ("json", "csv", "json_bulk")
# Lisbon leaves summer time on 2026-10-25 at 01:00 UTC: windows within a day of it are requested
# in UTC, the others in Lisbon (summer before, winter after).
START, MIDDLE, END = "2026-10-21T00:00:00Z", "2026-10-25T12:00:00Z", "2026-10-29T00:00:00Z"
ORIGIN = ("report_job_id", "report_window_start", "report_window_end")

# The layouts as ../shared/api-docs/talkdesk-report-layouts.md records them (column names as they
# land): "yes/no" is text Yes/No that lands boolean; "wall" is wall-clock text that lands as a UTC
# date-time with a `_local` copy; "iso" is ISO UTC text that lands as a date-time.
EVIDENCE: dict[str, dict[str, str]] = {
    "calls": {
        "string": "call_id callsid type talkdesk_phone_number talkdesk_phone_display_name contact_phone_number "
        "user_id user_name user_email disposition_code notes ring_groups ivr_options handling_user_name "
        "handling_user_id handling_user_email recording_url mood team_id team_name",
        "integer": "total_time talk_time wait_time hold_time abandon_time total_ringing_time user_voice_rating "
        "csat_score",
        "boolean": "is_in_business_hours is_callback_from_queue is_call_forwarding is_if_no_answer is_transfer "
        "is_external_transfer is_mood_prompted",
        "iso": "start_at end_at csat_survey_time",
    },
    "contacts": {
        "string": "interaction_id contact_id company_number contact_person_number phone_display_name "
        "external_phone_number direction contact_type transfer_out_type transfer_in transfer_in_type "
        "callback ring_groups handling_ring_groups user_name user_id team_name team_id "
        "direct_assignment_user direct_assignment_ids",
        "integer": "wait_time time_to_missed abandon_time short_abandon_time time_to_voicemail ring_time connect_time "
        "talk_time hard_hold_time soft_hold_time hold_time after_call_work_time duration handle_time",
        "yes/no": "inside_business_hours inside_service_level within_service_level_threshold transfer_out",
        "wall": "started_at answered_at connected_at finished_at",
    },
    "ring_attempts": {
        "string": "interaction_id contact_id batch_ring_id ring_attempt_id attempt_type user_name user_email team_name",
        "integer": "ring_attempt_duration",
        "wall": "ring_started_at_time ring_finished_at_time",
    },
    "user_status": {
        "string": "user_id user_name user_email status_label team_id team_name",
        "integer": "status_time",
        "boolean": "is_user_active",
        "wall": "status_start_at status_end_at",
    },
    "studio_flow_execution": {
        "string": "call_sid interaction_id destination_number origin_number flow_name flow_id component_title "
        "step_name exit",
        "number": "time_in_step",
        "integer": "step_execution_order",
        "wall": "timestamp flow_execution_finished_time",
    },
}
KEYS = {
    "calls": ("call_id",),
    "contacts": ("contact_id",),
    "ring_attempts": ("ring_attempt_id",),
    "user_status": ("user_id", "status_start_at"),
    "studio_flow_execution": ("interaction_id", "step_execution_order"),
}
COLUMN_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "yes/no": "boolean",
    "wall": "string",
    "iso": "string",
}
PYTHON_TYPE = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "yes/no": bool,
    "wall": str,
    "iso": str,
}
DOTTED = "studio_flow_executions_aggregated."


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def fields(report_type: str) -> dict[str, str]:
    """Column -> its evidenced kind."""
    return {name: kind for kind, names in EVIDENCE[report_type].items() for name in names.split()}


def sent_rows(sandbox: RunningSandbox, report_type: str, start: str = START, end: str = END) -> list[dict]:
    """The rows the sandbox holds, written in UTC: their wall-clock texts are the true UTC instants."""
    rows = sandbox.app.data.talkdesk_rows(
        report_type, moment(start), moment(end), ZoneInfo("UTC"), dt.datetime.now(UTC)
    )
    return [{(k[len(DOTTED) :] if k.startswith(DOTTED) else k): v for k, v in row.items()} for row in rows]


def expected_record(report_type: str, sent: dict) -> dict:
    """What the tap must emit for a sent row (UTC text in, so instants are known exactly)."""
    out: dict[str, t.Any] = {}
    for name, kind in fields(report_type).items():
        value = sent.get(name)
        if value in ("None", ""):
            value = None  # missing values as Talkdesk writes them
        if kind == "yes/no" and value is not None:
            value = {"Yes": True, "No": False}[value]
        if kind == "wall":
            utc = value.replace(" ", "T") + "Z" if value is not None else None
            value = utc
            out[f"{name}_local"] = (
                moment(utc).astimezone(LISBON).strftime("%Y-%m-%dT%H:%M:%S") if utc is not None else None
            )
        out[name] = value
    return out


def key_of(report_type: str, row: dict) -> tuple:
    return tuple(row[name] for name in KEYS[report_type])


@pytest.fixture(scope="module")
def layout_box() -> t.Iterator[RunningSandbox]:
    sandbox = start_sandbox(SandboxConfig(seed=17, job_polls=1))
    yield sandbox
    sandbox.stop()


def lisbon_config(sandbox: RunningSandbox, report_type: str, fmt: str, **more: t.Any) -> dict:
    return sandbox_config(
        sandbox,
        vendors=("talkdesk",),
        **{
            "talkdesk_report_types": [report_type],
            "talkdesk_report_format": fmt,
            "talkdesk_report_timezone": "Europe/Lisbon",
            "talkdesk_lookback_minutes": 0,
            "start_date": START,
            "end_date": END,
            **more,
        },
    )


def run_then_resume(sandbox: RunningSandbox, report_type: str, fmt: str) -> tuple[TapRun, TapRun]:
    stream = f"talkdesk_{report_type}"
    first = sync(lisbon_config(sandbox, report_type, fmt, end_date=MIDDLE), streams=[stream])
    second = sync(lisbon_config(sandbox, report_type, fmt), state=first.final_state, streams=[stream])
    return first, second


# ---- the keys: the fewest evidenced fields unique on the evidenced rows ---------------------------------


@pytest.mark.parametrize("report_type", list(EVIDENCE))
def test_each_key_is_the_fewest_evidenced_fields_unique_on_the_rows(layout_box, report_type):
    rows = [expected_record(report_type, r) for r in sent_rows(layout_box, report_type)]
    assert len(rows) > 200, report_type  # noqa: PLR2004 - a week: enough rows to prove anything
    key = KEYS[report_type]
    assert len({key_of(report_type, r) for r in rows}) == len(rows), f"{report_type}: {key} repeats"
    assert all(None not in key_of(report_type, r) for r in rows)
    # No smaller set of evidenced fields is unique (a key of one field: nothing smaller exists).
    for size in range(1, len(key)):
        for names in itertools.combinations(fields(report_type), size):
            assert len({tuple(r[n] for n in names) for r in rows}) < len(rows), (report_type, names)
    if report_type in ("user_status", "studio_flow_execution"):  # the vendor's own "key" is not one
        vendor_key = {"user_status": "user_id", "studio_flow_execution": "flow_id"}[report_type]
        assert len({r[vendor_key] for r in rows}) < len(rows)


# ---- a run and a resumed run, every type in every format --------------------------------------------------


@pytest.fixture(scope="module")
def layout_runs(layout_box) -> t.Callable[[str, str], tuple[TapRun, TapRun]]:
    done: dict[tuple[str, str], tuple[TapRun, TapRun]] = {}

    def get(report_type: str, fmt: str) -> tuple[TapRun, TapRun]:
        if (report_type, fmt) not in done:
            done[report_type, fmt] = run_then_resume(layout_box, report_type, fmt)
        return done[report_type, fmt]

    return get


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("report_type", list(EVIDENCE))
def test_evidenced_layouts_land_typed_in_utc_once_across_dst_and_a_resume(layout_box, layout_runs, report_type, fmt):
    stream = f"talkdesk_{report_type}"
    first, second = layout_runs(report_type, fmt)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert first.final_state["bookmarks"][stream]["replication_key_value"] == MIDDLE
    assert second.final_state["bookmarks"][stream]["replication_key_value"] == END
    # Windows were requested both ways: in Lisbon away from the change, in UTC near it.
    zones = {e["timezone"] for e in layout_box.app.events("job_created") if e.get("report_type") == report_type}
    assert zones >= {"Europe/Lisbon", "UTC"}, zones
    records = first.records(stream) + second.records(stream)
    # Every row exactly once by key, and no other.
    expected = {
        key_of(report_type, e): e
        for e in map(lambda r: expected_record(report_type, r), sent_rows(layout_box, report_type))
    }
    keys = [key_of(report_type, r) for r in records]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} row(s) twice"
    assert set(keys) == set(expected), (len(set(expected) - set(keys)), len(set(keys) - set(expected)))
    # Every evidenced field a column of its type; instants UTC date-times; _local in Lisbon.
    schema = second.schemas()[stream]
    assert schema["key_properties"] == list(KEYS[report_type])
    properties = schema["schema"]["properties"]
    for name, kind in fields(report_type).items():
        assert COLUMN_TYPE[kind] in properties[name]["type"], (name, properties[name])
        if kind in ("wall", "iso"):
            assert properties[name]["format"] == "date-time", name
        if kind == "wall":
            assert f"{name}_local" in properties
    invented = set(properties) - set(fields(report_type)) - {f"{n}_local" for n in fields(report_type)} - set(ORIGIN)
    assert not invented, invented
    for record in records:
        want = expected[key_of(report_type, record)]
        got = {name: record.get(name) for name in want}
        assert got == want, {n: (got[n], want[n]) for n in want if got[n] != want[n]}
        for name, kind in fields(report_type).items():
            assert record.get(name) is None or isinstance(record[name], PYTHON_TYPE[kind]), (name, record.get(name))
            assert kind != "integer" or not isinstance(record.get(name), bool)


@pytest.mark.parametrize("report_type", list(EVIDENCE))
def test_every_format_gives_the_same_schema_and_records(layout_runs, report_type):
    stream = f"talkdesk_{report_type}"
    seen = {}
    for fmt in FORMATS:
        first, second = layout_runs(report_type, fmt)
        schemas = [
            m["schema"] for m in first.messages + second.messages if m["type"] == "SCHEMA" and m["stream"] == stream
        ]
        records = {
            json.dumps(key_of(report_type, r)): {k: v for k, v in r.items() if k != "report_job_id"}
            for r in first.records(stream) + second.records(stream)
        }
        seen[fmt] = (schemas, records)
    json_schemas, json_records = seen["json"]
    for fmt in ("csv", "json_bulk"):
        schemas, records = seen[fmt]
        assert schemas == json_schemas, fmt
        assert records == json_records, fmt


# ---- types without evidence: a row key the tap makes, the same at every reading ---------------------------

UNEVIDENCED = ("explore_calls", "audit_logs", "messaging_contacts")


@pytest.mark.parametrize("report_type", UNEVIDENCED)
def test_rows_without_an_id_get_a_row_key_stable_across_readings_and_formats(layout_box, report_type):
    stream = f"talkdesk_{report_type}"
    start, end = "2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z"
    sent = sent_rows(layout_box, report_type, start, end)
    identical = len(sent) - len({json.dumps(r, sort_keys=True) for r in sent})
    assert identical > 0, "the sandbox sends some rows twice, identical"
    runs = {
        fmt: sync(lisbon_config(layout_box, report_type, fmt, start_date=start, end_date=end), streams=[stream])
        for fmt in FORMATS
    }
    again = sync(lisbon_config(layout_box, report_type, "json", start_date=start, end_date=end), streams=[stream])
    for run in (*runs.values(), again):
        assert run.error is None, run.error
        assert run.schemas()[stream]["key_properties"] == ["_row_key"]
    keys = {fmt: sorted(r["_row_key"] for r in run.records(stream)) for fmt, run in runs.items()}
    assert len(keys["json"]) == len(set(keys["json"])) == len(sent)  # identical rows stay two rows
    assert sorted(r["_row_key"] for r in again.records(stream)) == keys["json"]  # the same window, the same keys
    assert keys["csv"] == keys["json"] == keys["json_bulk"]
    # Every instant is a UTC date-time there too, though no schema lists it.
    properties = runs["csv"].schemas()[stream]["schema"]["properties"]
    instants = [name for name, spec in properties.items() if spec.get("format") == "date-time"]
    assert set(instants) - set(ORIGIN), properties
    for fmt, run in runs.items():
        assert run.schemas()[stream]["schema"] == runs["json"].schemas()[stream]["schema"], fmt


# ---- a layout without the declared key --------------------------------------------------------------------


def test_a_layout_without_its_key_emits_no_keyless_row_and_the_catalog_key_is_the_way_out(tmp_path, make_sandbox):
    sandbox = make_sandbox(shapes=("talkdesk-studio-without-interaction-id",), job_polls=1)
    stream = "talkdesk_studio_flow_execution"
    config = lisbon_config(sandbox, "studio_flow_execution", "json", start_date=START, end_date="2026-10-23T00:00:00Z")
    catalog = catalog_selecting(config, [stream])
    run = run_cli(tmp_path, config, catalog=catalog)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr_lines if line.startswith("tap-callreports: error:")]
    assert len(lines) == 1, run.stderr[-2000:]
    assert "interaction_id" in lines[0] and "table-key-properties" in lines[0] and "catalog" in lines[0], lines[0]
    assert not run.records(stream), "no row without its key goes out"
    assert not [s for s in run.states if s.get("bookmarks", {}).get(stream, {}).get("replication_key_value")]
    # The way out the line names: the catalog's table-key-properties (what Meltano's metadata sets).
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
            root["metadata"]["table-key-properties"] = ["call_sid", "step_execution_order"]
    # Run again from the failed run's state, as a schedule would: its recorded job is read again.
    failed_state = run.states[-1] if run.states else None
    again = run_cli(tmp_path, config, catalog=catalog_selecting(config, [stream]), state=failed_state)
    assert again.returncode != 0 and not again.records(stream)
    fixed = run_cli(tmp_path, config, catalog=catalog, state=again.states[-1] if again.states else failed_state)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert fixed.schemas()[stream]["key_properties"] == ["call_sid", "step_execution_order"]
    records = fixed.records(stream)
    sent = sent_rows(sandbox, "studio_flow_execution", START, "2026-10-23T00:00:00Z")
    assert sorted((r["call_sid"], r["step_execution_order"]) for r in records) == sorted(
        (r["call_sid"], r["step_execution_order"]) for r in sent
    )
    assert fixed.final_state["bookmarks"][stream]["replication_key_value"] == "2026-10-23T00:00:00Z"
    # The jobs the failed runs recorded were read again, not created again: nothing stuck on them.
    assert failed_state and failed_state["bookmarks"][stream].get("report_jobs")
    assert len(sandbox.app.events("job_created")) == len(failed_state["bookmarks"][stream]["report_jobs"])


def test_a_key_given_as_the_catalogs_key_properties_is_honoured_too(make_sandbox):
    """A hand-edited catalog may change the entry's key_properties and leave the metadata as
    discovered: whichever of the two differs from the tap's key is the key."""
    sandbox = make_sandbox(shapes=("talkdesk-studio-without-interaction-id",), job_polls=1)
    stream = "talkdesk_studio_flow_execution"
    config = lisbon_config(sandbox, "studio_flow_execution", "csv", start_date=START, end_date="2026-10-23T00:00:00Z")
    catalog = catalog_selecting(config, [stream])
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
    assert root["metadata"]["table-key-properties"] == entry["key_properties"] == list(KEYS["studio_flow_execution"])
    entry["key_properties"] = ["call_sid", "step_execution_order"]
    run = sync(config, catalog=catalog)
    assert run.error is None, run.error
    assert run.schemas()[stream]["key_properties"] == ["call_sid", "step_execution_order"]
    assert len(run.records(stream)) == len(sent_rows(sandbox, "studio_flow_execution", START, "2026-10-23T00:00:00Z"))


def test_myreports_honours_a_catalog_key_given_as_metadata_too(make_sandbox):
    """The stop line names the table-key-properties metadata for every report stream: it works
    for MyReports as well."""
    sandbox = make_sandbox(job_polls=1)
    stream = "myreports_call_rows"
    config = sandbox_config(sandbox, vendors=("myreports",), end_date="2026-10-02T00:00:00Z")
    catalog = catalog_selecting(config, [stream])
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
    root["metadata"]["table-key-properties"] = ["doc_id", "conn_id"]
    run = sync(config, catalog=catalog)
    assert run.error is None, run.error
    assert run.schemas()[stream]["key_properties"] == ["doc_id", "conn_id"]
    assert run.records(stream)


# ---- a column the schema does not know: typed the same wherever a run starts ---------------------------

ADDED_TIME = ("talkdesk-added-wall-time",)


def first_sent_callback_at(sandbox: RunningSandbox, start: dt.datetime) -> str | None:
    """callback_at of the first contacts row a window starting at `start` holds (in file order)."""
    rows = sent_rows(sandbox, "contacts", start.strftime("%Y-%m-%dT%H:%M:%SZ"), END)
    return rows[0]["callback_at"] if rows else None


def expected_callback_at(sent: dict) -> str | None:
    value = sent["callback_at"]
    return None if value == "None" else value.replace(" ", "T") + "Z"  # sent in UTC: the true instant


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_added_time_column_is_utc_and_the_same_whichever_value_a_run_starts_on(make_sandbox, fmt):
    """Talkdesk's "None" is null in a column the tap adds too, and the column is typed from its
    first value that is not missing: a run starting on a "None" and a run starting on a wall time
    give the same date-time column with the same UTC values (Lisbon, across the DST change)."""
    sandbox = make_sandbox(shapes=ADDED_TIME, seed=17, job_polls=1)
    hours = [moment(START) + dt.timedelta(hours=n) for n in range(48)]
    starts = {
        "None": next(h for h in hours if first_sent_callback_at(sandbox, h) == "None"),
        "time": next(h for h in hours if first_sent_callback_at(sandbox, h) not in (None, "None")),
    }
    stream = "talkdesk_contacts"
    runs = {
        first: sync(
            lisbon_config(sandbox, "contacts", fmt, start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ")), streams=[stream]
        )
        for first, start in starts.items()
    }
    sent = {row["contact_id"]: row for row in sent_rows(sandbox, "contacts", START, END)}
    assert {row["callback_at"] for row in sent.values()} & {"None"}, "the shape sends the text None"
    by_key = {}
    for first, run in runs.items():
        assert run.error is None, (first, run.error)
        records = run.records(stream)
        assert records and (records[0]["callback_at"] is None) == (first == "None"), (first, records[0])
        spec = run.schemas()[stream]["schema"]["properties"]["callback_at"]
        assert spec["format"] == "date-time" and "string" in spec["type"], (first, spec)
        for record in records:
            assert record["callback_at"] == expected_callback_at(sent[record["contact_id"]]), record
        by_key[first] = {record["contact_id"]: record for record in records}
    common = by_key["None"].keys() & by_key["time"].keys()
    assert common and all(by_key["None"][k]["callback_at"] == by_key["time"][k]["callback_at"] for k in common)


def test_a_non_time_in_an_added_time_column_stops_once_and_the_catalog_text_override_completes(tmp_path, make_sandbox):
    """An added date-time column meets a value that is not a time: the stream stops (not null, not
    guessed) with one line naming the exact catalog declaration; with it, run again from the failed
    state, the run completes: the text as sent, every time still as UTC text, every row once."""
    sandbox = make_sandbox(shapes=(*ADDED_TIME, "untypable-added-wall-time"), seed=17, job_polls=1)
    stream = "talkdesk_contacts"
    config = lisbon_config(sandbox, "contacts", "csv")
    sent = sent_rows(sandbox, "contacts")
    assert [row for row in sent if row["callback_at"] == "after 6pm"], "the marked row lies in the run's span"
    catalog = catalog_selecting(config, [stream])
    run = run_cli(tmp_path, config, catalog=catalog)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr_lines if line.startswith("tap-callreports: error:")]
    assert len(lines) == 1, run.stderr[-2000:]
    override = '"callback_at": {"type": ["string", "null"]}'
    assert lines[0].startswith(f"tap-callreports: error: {stream}: ") and override in lines[0], lines[0]
    assert not [r for r in run.records(stream) if r.get("callback_at") == "after 6pm"]
    # The declaration the line names, in the stream's catalog schema, is the way out.
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    entry["schema"]["properties"].update(json.loads("{" + override + "}"))
    failed_state = run.states[-1] if run.states else None
    fixed = run_cli(tmp_path, config, catalog=catalog, state=failed_state)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    spec = fixed.schemas()[stream]["schema"]["properties"]["callback_at"]
    assert spec["type"] == ["string", "null"] and "format" not in spec, spec
    records = run.records(stream) + fixed.records(stream)
    # Every row, each once per run (the failed window is read again: its rows replace themselves).
    assert {r["contact_id"] for r in records} == {r["contact_id"] for r in sent}
    assert len({r["contact_id"] for r in fixed.records(stream)}) == len(fixed.records(stream))
    by_id = {r["contact_id"]: r for r in sent}
    for record in records:
        sent_value = by_id[record["contact_id"]]["callback_at"]
        wanted = sent_value if sent_value == "after 6pm" else expected_callback_at(by_id[record["contact_id"]])
        assert record["callback_at"] == wanted, (record["contact_id"], record["callback_at"], sent_value)
    assert fixed.final_state["bookmarks"][stream]["replication_key_value"] == END
