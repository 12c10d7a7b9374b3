"""Talkdesk report rows in the layouts real accounts produce (docs/talkdesk-report-rows.md), over
real HTTP against the sandbox: each evidenced field a column of its type, every instant the true
UTC instant, `_local` the report zone's wall time, every row once by its key across a run and a
resumed run in Europe/Lisbon across the October DST change, the same records from json, csv and
json_bulk; keys proven to be the fewest unique fields; no keyless RECORD ever."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import re
import typing as t
from zoneinfo import ZoneInfo

import pytest

from helpers import TapRun, catalog_selecting, run_cli, sandbox_config, sync
from tap_callreports.report_types import REPORT_TYPES
from tap_callreports.rowshape import DAY_FRACTION, DHMS_TEXT, FLAG, JSON_LIST
from tap_callreports.sandbox import RunningSandbox, SandboxConfig, start_sandbox

UTC = dt.UTC
LISBON = ZoneInfo("Europe/Lisbon")
FORMATS = ("json", "csv", "json_bulk")
# Lisbon leaves summer time on 2026-10-25 at 01:00 UTC: windows within a day of it are requested
# in UTC, the others in Lisbon (summer before, winter after).
START, MIDDLE, END = "2026-10-21T00:00:00Z", "2026-10-25T12:00:00Z", "2026-10-29T00:00:00Z"
ORIGIN = ("report_job_id", "report_window_start", "report_window_end")

# The layouts as Talkdesk's own report pages give them (../shared/api-docs/talkdesk-explore-official.md),
# else as talkdesk-report-layouts.md records them (contacts, ring_attempts), by vendor name:
# "flag" is text (TRUE/FALSE, Yes/No, YES/NO) that lands boolean; "wall" is wall-clock text that
# lands as a UTC date-time with a `_local` copy; "iso" is ISO UTC text that lands as a date-time;
# "seconds" (whole seconds), "day" (a fraction of a day) and "dhms" (`0d 0h 0m 42s`) are durations
# that land as seconds in `<name>_seconds`; "list" is a JSON array or text holding one: an array.
EVIDENCE: dict[str, dict[str, str]] = {
    "calls": {
        "string": "call_id callsid type talkdesk_phone_number talkdesk_phone_display_name contact_phone_number "
        "user_id user_name user_email disposition_code notes ring_groups ivr_options handling_user_name "
        "handling_user_id handling_user_email recording_url mood team_id team_name rating_reason data_status "
        "text_custom_field_n1 text_custom_field_n2 text_custom_field_n3 text_custom_field_n4 disposition_set "
        "nested_disposition",
        "integer": "user_voice_rating csat_score int_custom_field_n1 int_custom_field_n2",
        "number": "float_custom_field_n1 float_custom_field_n2",
        "seconds": "total_time talk_time wait_time hold_time abandon_time total_ringing_time",
        "boolean": "is_in_business_hours is_callback_from_queue is_call_forwarding is_if_no_answer is_transfer "
        "is_external_transfer is_mood_prompted",
        "flag": "agent_disconnected",
        "iso": "start_at end_at csat_survey_time timestamp_custom_field_n1",
    },
    "contacts": {
        "string": "interaction_id contact_id company_number contact_person_number phone_display_name "
        "external_phone_number direction contact_type transfer_out_type transfer_in transfer_in_type "
        "callback ring_groups handling_ring_groups user_name user_id team_name team_id "
        "direct_assignment_user direct_assignment_ids",
        "seconds": "wait_time time_to_missed abandon_time short_abandon_time time_to_voicemail ring_time connect_time "
        "talk_time hard_hold_time soft_hold_time hold_time after_call_work_time duration handle_time",
        "flag": "inside_business_hours inside_service_level within_service_level_threshold transfer_out",
        "wall": "started_at answered_at connected_at finished_at",
    },
    "ring_attempts": {
        "string": "interaction_id contact_id batch_ring_id ring_attempt_id attempt_type user_name user_email team_name",
        "seconds": "ring_attempt_duration",
        "wall": "ring_started_at_time ring_finished_at_time",
    },
    "user_status": {
        "string": "user_id user_name user_email status_label team_id team_name",
        "seconds": "status_time",
        "boolean": "is_user_active",
        "wall": "status_start_at status_end_at",
        "list": "ring_groups",
    },
    "studio_flow_execution": {
        "string": "call_sid interaction_id destination_number origin_number flow_name flow_id component_title "
        "step_name exit",
        "day": "time_in_step",
        "integer": "step_execution_order",
        "wall": "timestamp studio_flow_executions_aggregated.flow_execution_finished_time",
    },
    "explore_calls": {
        "string": "interaction_id call_type talkdesk_phone_number customer_phone_number record hangup description "
        "agent_name phone_display_name disposition_code handling_agent team tags ivr_options rating_reason "
        "disposition_set nested_disposition",
        "integer": "rating csat_score",
        "day": "talk_time waiting_time agent_speed_to_answer holding_time",
        "flag": "in_business_hours? callback_from_queue? transfer? agent_disconnected",
        "wall": "start_time end_time csat_survey_time",
    },
    "audit_logs": {
        "string": "actor_id generator_name operation platform_tid resource_id operation_status user_agent user_id "
        "agent_name agent_email",
        "list": "ip_addresses",
        "wall": "timestamp",
    },
    "messaging_contacts": {
        "string": "channel_type contact_finished_reason contact_id contact_person_channel_identifier contact_person_id "
        "contact_person_name conversation direct_assignment_user_id direct_assignment_user direction "
        "disposition_name handling_queues interaction_id interaction_status notes queues touchpoint_identifier "
        "touchpoint_name user_id user_name virtual_agent_id virtual_agent_name",
        "day": "contact_duration interaction_duration wrap-up_duration",
        "dhms": "contact_handle_time interaction_handle_time first_response_time",
        "flag": "is_virtual_agent transfer_out",
        "wall": "contact_assigned_at contact_started_at contact_finished_at interaction_started_at "
        "interaction_finished_at",
    },
    "messaging_traffic": {
        "string": "contact_id channel_type contact_person_id contact_person_name interaction_id message_direction "
        "message_id user_id user_name",
        "wall": "message_created_at",
    },
}
#: Types whose rows carry no id of their own: keyed by the tap's `_row_key`.
ROW_KEYED = ("explore_calls", "audit_logs")
KEYS = {
    "calls": ("call_id",),
    "contacts": ("contact_id",),
    "ring_attempts": ("ring_attempt_id",),
    "user_status": ("user_id", "status_start_at"),
    "studio_flow_execution": ("interaction_id", "step_execution_order"),
    "explore_calls": ("_row_key",),
    "audit_logs": ("_row_key",),
    "messaging_contacts": ("contact_id",),
    "messaging_traffic": ("message_id",),
}
#: The community layouts that passed before the official pages (they must keep passing).
COMMUNITY = ("contacts", "ring_attempts", "user_status", "studio_flow_execution")
COLUMN_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "flag": "boolean",
    "wall": "string",
    "iso": "string",
    "seconds": "integer",
    "day": "number",
    "dhms": "number",
    "list": "array",
}
PYTHON_TYPE = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "flag": bool,
    "wall": str,
    "iso": str,
    "seconds": int,
    "day": (int, float),
    "dhms": (int, float),
    "list": list,
}
DURATIONS = ("seconds", "day", "dhms")
FLAG_TEXT = {"TRUE": True, "FALSE": False, "Yes": True, "No": False, "YES": True, "NO": False}
DOTTED = "studio_flow_executions_aggregated."


def column(name: str, kind: str) -> str:
    """The warehouse column of a vendor field: `?` dropped, `-` as `_`, the dotted prefix dropped,
    durations in `<name>_seconds`."""
    name = name.removeprefix(DOTTED).replace("?", "").replace("-", "_")
    return f"{name}_seconds" if kind in DURATIONS else name


def seconds_of(text: str) -> int:
    days, hours, minutes, seconds = (int(part[:-1]) for part in text.split())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def fields(report_type: str) -> dict[str, str]:
    """Column -> its documented kind."""
    return {column(name, kind): kind for kind, names in EVIDENCE[report_type].items() for name in names.split()}


def vendor_names(report_type: str) -> dict[str, str]:
    """Column -> the vendor's name for it."""
    return {column(name, kind): name for kind, names in EVIDENCE[report_type].items() for name in names.split()}


def sent_rows(sandbox: RunningSandbox, report_type: str, start: str = START, end: str = END) -> list[dict]:
    """The rows the sandbox holds, written in UTC: their wall-clock texts are the true UTC instants."""
    return list(
        sandbox.app.data.talkdesk_rows(report_type, moment(start), moment(end), ZoneInfo("UTC"), dt.datetime.now(UTC))
    )


def expected_value(kind: str, value: t.Any) -> t.Any:
    if value in ("None", "") or value is None:
        return None  # missing values as Talkdesk writes them
    if kind == "flag":
        return FLAG_TEXT[value]
    if kind == "day":
        return round(float(value) * 86400, 3)
    if kind == "dhms":
        return seconds_of(value)
    if kind == "list":
        return value if isinstance(value, list) else json.loads(value)
    if kind == "wall":
        return value.replace(" ", "T") + "Z"
    return value


def expected_record(report_type: str, sent: dict) -> dict:
    """What the tap must emit for a sent row (UTC text in, so instants are known exactly)."""
    out: dict[str, t.Any] = {}
    names = vendor_names(report_type)
    for name, kind in fields(report_type).items():
        value = expected_value(kind, sent.get(names[name]))
        if kind == "wall":
            fraction = value[19:-1] if value is not None else ""
            out[f"{name}_local"] = (
                moment(value).astimezone(LISBON).strftime("%Y-%m-%dT%H:%M:%S") + fraction if value is not None else None
            )
        out[name] = value
    return out


def key_of(report_type: str, row: dict) -> tuple:
    if report_type in ROW_KEYED and "_row_key" not in row:  # a sent row: all its fields
        return (json.dumps(row, sort_keys=True),)
    return tuple(row[name] for name in KEYS[report_type])


def without_key(record: dict) -> str:
    """A record as comparable text: without the keys the tap adds, a missing column as null."""
    return json.dumps(
        {k: v for k, v in record.items() if k not in ("_row_key", *ORIGIN) and v is not None}, sort_keys=True
    )


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


@pytest.mark.parametrize("report_type", [name for name in REPORT_TYPES if name not in ROW_KEYED])
def test_each_key_is_the_fewest_evidenced_fields_unique_on_the_rows(layout_box, report_type):
    rows = [expected_record(report_type, r) for r in sent_rows(layout_box, report_type)]
    assert len(rows) > 200, report_type  # noqa: PLR2004 - a week: enough rows to prove anything
    key = KEYS[report_type]
    assert len({key_of(report_type, r) for r in rows}) == len(rows), f"{report_type}: {key} repeats"
    assert all(None not in key_of(report_type, r) for r in rows)
    # No smaller set of evidenced fields is unique (a key of one field: nothing smaller exists).
    for size in range(1, len(key)):
        for names in itertools.combinations(fields(report_type), size):
            assert len({json.dumps([r[n] for n in names]) for r in rows}) < len(rows), (report_type, names)
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
@pytest.mark.parametrize("report_type", list(REPORT_TYPES))
def test_documented_layouts_land_typed_in_utc_once_across_dst_and_a_resume(layout_box, layout_runs, report_type, fmt):
    """Every served type in every format: exit 0, each row once by its key, every documented field a
    column of its sensible type (flags boolean, numbers numeric, instants UTC date-time, durations
    seconds, lists arrays), the values exactly the sent ones converted."""
    stream = f"talkdesk_{report_type}"
    first, second = layout_runs(report_type, fmt)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert first.final_state["bookmarks"][stream]["replication_key_value"] == MIDDLE
    assert second.final_state["bookmarks"][stream]["replication_key_value"] == END
    # Windows were requested both ways: in Lisbon away from the change, in UTC near it.
    zones = {e["timezone"] for e in layout_box.app.events("job_created") if e.get("report_type") == report_type}
    assert zones >= {"Europe/Lisbon", "UTC"}, zones
    records = first.records(stream) + second.records(stream)
    expected = [expected_record(report_type, r) for r in sent_rows(layout_box, report_type)]
    # Every row exactly once by key, and no other.
    keys = [key_of(report_type, r) for r in records]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} row(s) twice"
    assert len(records) == len(expected) > 50, (len(records), len(expected))  # noqa: PLR2004
    if report_type in ROW_KEYED:
        assert sorted(map(without_key, records)) == sorted(map(without_key, expected))
    else:
        by_key = {key_of(report_type, e): e for e in expected}
        assert set(keys) == set(by_key), (len(set(by_key) - set(keys)), len(set(keys) - set(by_key)))
        for record in records:
            want = by_key[key_of(report_type, record)]
            got = {name: record.get(name) for name in want}
            assert got == want, {n: (got[n], want[n]) for n in want if got[n] != want[n]}
    # Every documented field a column of its type; instants UTC date-times; _local in Lisbon.
    schema = second.schemas()[stream]
    assert schema["key_properties"] == list(KEYS[report_type])
    properties = schema["schema"]["properties"]
    for name, kind in fields(report_type).items():
        assert properties[name]["type"] == [COLUMN_TYPE[kind], "null"], (name, properties[name])
        if kind in ("wall", "iso"):
            assert properties[name]["format"] == "date-time", name
        if kind == "wall":
            assert f"{name}_local" in properties
        if kind in DURATIONS:
            assert name.endswith("_seconds"), name
    invented = (
        set(properties) - set(fields(report_type)) - {f"{n}_local" for n in fields(report_type)} - set(ORIGIN)
    ) - {"_row_key"}
    assert not invented, invented
    for record in records:
        for name, kind in fields(report_type).items():
            assert record.get(name) is None or isinstance(record[name], PYTHON_TYPE[kind]), (name, record.get(name))
            assert kind not in ("integer", "seconds", "number", "day", "dhms") or not isinstance(record.get(name), bool)
    # Every converted or typed form is met with a value (the sandbox leaves some text columns null).
    for name, kind in fields(report_type).items():
        if kind not in ("string", "seconds", "boolean") and not name.endswith("_n2"):
            assert any(r.get(name) is not None for r in records), name


@pytest.mark.parametrize("report_type", list(REPORT_TYPES))
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


# ---- types without an id of their own: a row key the tap makes, the same at every reading ---------------


@pytest.mark.parametrize("report_type", ROW_KEYED)
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
    # Every instant is a UTC date-time there too.
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


def stopped_once_naming(run: TapRun, stream: str, override: str) -> str:
    """The run stopped with one error line, the stream's, naming the catalog declaration `override`."""
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr_lines if line.startswith("tap-callreports: error:")]
    assert len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith(f"tap-callreports: error: {stream}: ") and override in lines[0], lines[0]
    return lines[0]


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
    override = '"callback_at": {"type": ["string", "null"]}'
    stopped_once_naming(run, stream, override)
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


# ---- the vendor's own column names: a header decided by its structure ------------------------------------

SAFE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@pytest.mark.parametrize("report_type", ["explore_calls", "messaging_contacts", "studio_flow_execution"])
def test_a_csv_header_with_question_marks_dashes_and_dots_completes_in_every_format_with_the_same_columns(
    layout_box, layout_runs, report_type
):
    """explore_calls' CSV header names `in_business_hours?` (before, the tap took it for "not the
    report", re-created the job three times and stopped every run); messaging_contacts names
    `wrap-up_duration`, studio a dotted name. Each completes in every format, with one set of
    warehouse-safe columns."""
    header = layout_box.app.data.talkdesk_columns(report_type, ZoneInfo("UTC"), dt.datetime.now(UTC))
    assert any(mark in name for name in header for mark in "?-."), header
    stream = f"talkdesk_{report_type}"
    columns = {}
    for fmt in FORMATS:
        first, second = layout_runs(report_type, fmt)
        assert first.error is None and second.error is None, (fmt, first.error, second.error)
        assert first.records(stream) and second.records(stream), fmt
        columns[fmt] = second.schemas()[stream]["schema"]["properties"]
        assert all(SAFE_NAME.fullmatch(name) for name in columns[fmt]), sorted(columns[fmt])
        assert {name for record in second.records(stream) for name in record} <= set(columns[fmt])
    assert columns["csv"] == columns["json"] == columns["json_bulk"]


# ---- a value in none of its column's forms: one line, the catalog override completes -----------------------


def test_a_flag_in_no_known_form_stops_once_and_the_catalog_text_override_completes(tmp_path, make_sandbox):
    sandbox = make_sandbox(shapes=("talkdesk-flag-unknown-form",), seed=17, job_polls=1)
    stream = "talkdesk_explore_calls"
    config = lisbon_config(sandbox, "explore_calls", "csv", start_date="2026-10-22T00:00:00Z")
    sent = sent_rows(sandbox, "explore_calls", "2026-10-22T00:00:00Z")
    assert [row for row in sent if row["transfer?"] == "Maybe"], "the marked row lies in the run's span"
    catalog = catalog_selecting(config, [stream])
    run = run_cli(tmp_path, config, catalog=catalog)
    override = '"transfer": {"type": ["string", "null"]}'
    line = stopped_once_naming(run, stream, override)
    assert "'Maybe'" in line and "column 'transfer'" in line, line
    assert not [r for r in run.records(stream) if r.get("transfer") == "Maybe"]
    marks = [
        s["bookmarks"][stream].get("replication_key_value") for s in run.states if stream in s.get("bookmarks", {})
    ]
    maybe_at = next(r["start_time"] for r in sent if r["transfer?"] == "Maybe").replace(" ", "T") + "Z"
    assert all(mark is None or mark <= maybe_at for mark in marks), (marks, maybe_at)
    # The declaration the line names is the way out: the column keeps the values as sent.
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    entry["schema"]["properties"].update(json.loads("{" + override + "}"))
    fixed = run_cli(tmp_path, config, catalog=catalog, state=run.states[-1] if run.states else None)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert fixed.schemas()[stream]["schema"]["properties"]["transfer"]["type"] == ["string", "null"]
    values = {r["transfer"] for r in run.records(stream) + fixed.records(stream)}
    assert "Maybe" in {r["transfer"] for r in fixed.records(stream)} and values <= {True, False, "Yes", "No", "Maybe"}
    assert fixed.final_state["bookmarks"][stream]["replication_key_value"] == END


# ---- the file's type and version ------------------------------------------------------------------------------


def test_a_file_version_the_tap_was_not_built_for_is_one_warning_and_its_rows_land(make_sandbox, caplog):
    sandbox = make_sandbox(shapes=("talkdesk-file-version-v2",), seed=17, job_polls=1)
    stream = "talkdesk_calls"
    with caplog.at_level(logging.WARNING):
        run = sync(lisbon_config(sandbox, "calls", "json", end_date=MIDDLE), streams=[stream])
    assert run.error is None, run.error
    said = [r.getMessage() for r in caplog.records if "not built for" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith(f"{stream}: ") and "'v2'" in said[0], said
    sent = sent_rows(sandbox, "calls", START, MIDDLE)
    assert sorted(r["call_id"] for r in run.records(stream)) == sorted(r["call_id"] for r in sent)
    plain = make_sandbox(seed=17, job_polls=1)
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        quiet = sync(lisbon_config(plain, "calls", "json", end_date=MIDDLE), streams=[stream])
    assert quiet.error is None and not [r for r in caplog.records if "not built for" in r.getMessage()]


# ---- the value forms, one by one --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "sent", "landed"),
    [
        (FLAG, "TRUE", True),
        (FLAG, "FALSE", False),
        (FLAG, "Yes", True),
        (FLAG, "YES", True),
        (FLAG, "yes", True),
        (FLAG, "No", False),
        (FLAG, "NO", False),
        (FLAG, "no", False),
        (FLAG, "true", True),
        (FLAG, "false", False),
        (FLAG, " Yes ", True),
        (FLAG, True, True),
        (FLAG, False, False),
        (DAY_FRACTION, 0.000069444446, 6.0),
        (DAY_FRACTION, "0.000069444446", 6.0),
        (DAY_FRACTION, "1.6087963E-6", 0.139),
        (DAY_FRACTION, 8.716435e-05, 7.531),
        (DAY_FRACTION, "0.0", 0.0),
        (DAY_FRACTION, 0, 0.0),
        (DHMS_TEXT, "0d 0h 0m 42s", 42),
        (DHMS_TEXT, "1d 2h 3m 4s", 93784),
        (JSON_LIST, '["rg1", "rg2"]', ["rg1", "rg2"]),
        (JSON_LIST, ["85.240.88.175"], ["85.240.88.175"]),
        (JSON_LIST, "[]", []),
    ],
)
def test_each_value_form_converts_without_loss(form, sent, landed):
    got = form.convert(sent)
    assert got == landed and type(got) is type(landed), (sent, got)


@pytest.mark.parametrize(
    ("form", "sent"),
    [
        (FLAG, "Maybe"),
        (FLAG, 2),
        (FLAG, ["Yes"]),
        (DAY_FRACTION, "6s"),
        (DAY_FRACTION, True),
        (DAY_FRACTION, "-0.1"),
        (DAY_FRACTION, "nan"),
        (DHMS_TEXT, "42"),
        (DHMS_TEXT, 42),
        (DHMS_TEXT, "0d 0h 0m 42.5s"),
        (JSON_LIST, "rg1, rg2"),
        (JSON_LIST, '{"a": 1}'),
    ],
)
def test_a_value_in_none_of_the_forms_is_refused_not_guessed(form, sent):
    with pytest.raises(ValueError):
        form.convert(sent)


# ---- a report type the tap declares no layout for: the generic rules ---------------------------------------


def generic_column(label: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_configured_type_without_a_layout_is_read_under_the_generic_rules(layout_box, layout_runs, fmt):
    """feedback_flow (named by Talkdesk's pages, no published API layout; the sandbox writes the
    dictionary's labels as names): configured, it is read, not refused: every column from the rows
    under a warehouse-safe name, instants UTC date-times, the rest text, keyed by `_row_key`, each row
    once across a run and a resumed run in Lisbon across the fall-back, the same in every format."""
    stream = "talkdesk_feedback_flow"
    first, second = layout_runs("feedback_flow", fmt)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert second.final_state["bookmarks"][stream]["replication_key_value"] == END
    schema = second.schemas()[stream]
    assert schema["key_properties"] == ["_row_key"]
    properties = schema["schema"]["properties"]
    sent = sent_rows(layout_box, "feedback_flow")
    assert sent and any(" " in name or "&" in name for name in sent[0])
    for label in sent[0]:
        spec = properties[generic_column(label)]
        assert spec["type"] == ["string", "null"], (label, spec)
        assert (spec.get("format") == "date-time") == (label == "Date & Time"), (label, spec)
    records = first.records(stream) + second.records(stream)
    keys = [r["_row_key"] for r in records]
    assert len(keys) == len(set(keys)) == len(sent) > 50, (len(keys), len(set(keys)), len(sent))  # noqa: PLR2004
    expected = [
        {generic_column(k): (v.replace(" ", "T") + "Z" if k == "Date & Time" else v) for k, v in row.items()}
        for row in sent
    ]
    assert sorted(map(without_key, records)) == sorted(map(without_key, expected))
    json_schema = layout_runs("feedback_flow", "json")[1].schemas()[stream]["schema"]
    assert schema["schema"] == json_schema
