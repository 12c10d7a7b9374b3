"""Warehouse row shapes: column names, canonical fields, UTC instants, keys, schema growth."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from tap_callreports.myreports.streams import ROW_POLICY as MYREPORTS
from tap_callreports.report_types import ROW_POLICIES
from tap_callreports.rowkeys import KeyGuard
from tap_callreports.rowshape import AddedInstantNotATime, RowPolicy, RowShaper, sql_name
from tap_callreports.schemagrowth import SchemaGrowth, text_or_instant
from tap_callreports.schemas import load_schema

UTC = dt.UTC
SQL = re.compile(r"^[a-z_][a-z0-9_]*$")


@pytest.mark.parametrize(
    ("vendor", "column"),
    [
        ("docId", "doc_id"),
        ("callUserName", "call_user_name"),
        ("hgNum", "hg_num"),
        ("start_utc", "start_utc"),
        ("studio_flow_executions_aggregated.flow_name", "studio_flow_executions_aggregated_flow_name"),
        ("Queue Name", "queue_name"),
        ("2fa", "_2fa"),
    ],
)
def test_sql_names_need_no_quoting(vendor, column):
    assert sql_name(vendor) == column and SQL.match(column)


@pytest.mark.parametrize("stream", [*ROW_POLICIES, "myreports"])
def test_every_output_schema_has_sql_names_its_key_and_utc_instants(stream):
    policy = MYREPORTS if stream == "myreports" else ROW_POLICIES[stream]
    vendor = load_schema("myreports_call_rows" if stream == "myreports" else f"talkdesk_{stream}")
    schema = policy.output_schema(vendor)
    properties = schema["properties"]
    assert set(schema.get("required", [])) <= set(properties)
    assert all(SQL.match(name) for name in properties), [n for n in properties if not SQL.match(n)]
    assert set(policy.key) <= set(properties)
    for name in policy.instants:
        assert properties[name]["format"] == "date-time"
    for old in policy.renamed:
        assert old not in properties or old == policy.renamed[old]


def test_old_and_new_call_payloads_land_in_the_same_columns():
    shaper = RowShaper(ROW_POLICIES["calls"], load_schema("talkdesk_calls")["properties"])
    old = shaper.shape(
        {
            "interaction_id": "c1",
            "call_type": "inbound",
            "start_time": "2026-03-01T10:00:00Z",
            "end_time": "2026-03-01T10:05:00Z",
        },
        UTC,
    )
    new = shaper.shape(
        {"call_id": "c1", "type": "inbound", "start_at": "2026-03-01T10:00:00Z", "end_at": "2026-03-01T10:05:00Z"}, UTC
    )
    assert old == new


def test_local_wall_times_become_utc_across_dst_and_keep_their_text():
    shaper = RowShaper(ROW_POLICIES["contacts"])
    lisbon = ZoneInfo("Europe/Lisbon")
    summer = shaper.shape({"contact_id": "a", "started_at": "2026-10-24 12:00:00"}, lisbon)
    winter = shaper.shape({"contact_id": "b", "started_at": "2026-10-26 12:00:00"}, lisbon)
    assert summer["started_at"] == "2026-10-24T11:00:00Z" and summer["started_at_local"] == "2026-10-24T12:00:00"
    assert winter["started_at"] == "2026-10-26T12:00:00Z"
    offset = shaper.shape({"contact_id": "c", "started_at": "2026-10-26T12:00:00+02:00"}, lisbon)
    # An instant written with an offset: its local copy is still the report zone's wall time.
    assert offset["started_at"] == "2026-10-26T10:00:00Z" and offset["started_at_local"] == "2026-10-26T10:00:00"
    # Requested in UTC (near a DST change): the local copy is the report zone's wall time.
    near = shaper.shape({"contact_id": "d", "started_at": "2026-10-25 00:30:00"}, UTC, lisbon)
    assert near["started_at"] == "2026-10-25T00:30:00Z" and near["started_at_local"] == "2026-10-25T01:30:00"


def test_names_that_would_meet_keep_apart_and_the_schema_field_keeps_its_column():
    policy = RowPolicy(key=("interaction_id",), strip_prefixes=("studio_flow_executions_aggregated.",))
    vendor = load_schema("talkdesk_studio_flow_execution")["properties"]
    shaper = RowShaper(policy, vendor)
    dotted = "studio_flow_executions_aggregated.flow_execution_finished_time"
    row = shaper.shape(
        {
            "flowExecutionFinishedTime": "NEW",
            dotted: "2022-01-19 09:57:54",
            "flow_name": "Main IVR",
            "interaction_id": "x",
        },
        UTC,
    )
    assert row["flow_execution_finished_time"] == "2022-01-19 09:57:54" and row["flow_name"] == "Main IVR"
    assert [v for k, v in row.items() if v == "NEW" and k != "flow_execution_finished_time"] == ["NEW"]


def test_key_guard_finds_missing_and_repeated_keys():
    single = KeyGuard(("call_id",))
    for value in ("a", "b", "a", None, ""):
        single.add({"call_id": value})
    assert (single.missing, single.duplicates()) == (2, 1)
    composite = KeyGuard(("user_id", "status_start_at", "status_label"))
    composite.add({"user_id": "u", "status_start_at": "t", "status_label": "away"})
    composite.add({"user_id": "u", "status_start_at": "t", "status_label": "on_a_call"})
    assert (composite.missing, composite.duplicates()) == (0, 0)


def test_schema_growth_types_new_fields_from_their_first_value():
    schema = {"properties": {"a": {"type": ["string"]}}}
    growth = SchemaGrowth(schema)
    assert growth.grow({"a": "x", "n": 4, "f": None, "tags": ["t"]}) == ["n", "tags"]
    assert schema["properties"]["n"]["type"] == ["number", "null"]  # 4 today, 4.5 tomorrow
    assert schema["properties"]["tags"]["type"] == ["array", "null"]
    assert {"a", "n", "tags"} == growth.known and growth.grow({"a": "y", "n": 5}) == []


def added_column_shaper(stream: str, catalog: dict | None = None) -> tuple[RowShaper, SchemaGrowth]:
    """A Talkdesk shaper whose schema grows as the stream's does (text_or_instant, catalog declarations)."""
    schema = {"properties": {"contact_id": {"type": ["string"]}}}
    growth = SchemaGrowth(schema, typer=text_or_instant, declared=lambda: catalog or {})
    shaper: RowShaper

    def grow(row: dict) -> None:
        if growth.grow(row):
            shaper.schema_changed()

    shaper = RowShaper(
        ROW_POLICIES[stream],
        known=lambda: growth.known,
        on_unknown=grow,
        stream=f"talkdesk_{stream}",
        instants=lambda: ROW_POLICIES[stream].instants + tuple(growth.instants),
        text_instants=lambda: growth.text_instants,
    )
    return shaper, growth


@pytest.mark.parametrize("stream", ["contacts", "audit_logs"])
@pytest.mark.parametrize("missing", ["None", ""])
def test_an_added_column_is_typed_by_its_first_value_that_is_not_missing(stream, missing):
    lisbon = ZoneInfo("Europe/Lisbon")
    rows = [{"contact_id": "a", "callback_at": missing}, {"contact_id": "b", "callback_at": "2026-07-01 10:00:00"}]
    results = []
    for order in (rows, rows[::-1]):
        shaper, growth = added_column_shaper(stream)
        shaped = {row["contact_id"]: shaper.shape(dict(row), lisbon) for row in order}
        assert growth.schema["properties"]["callback_at"]["format"] == "date-time"
        results.append(shaped)
    assert results[0] == results[1]
    assert results[0]["a"]["callback_at"] is None and results[0]["b"]["callback_at"] == "2026-07-01T09:00:00Z"


def test_a_non_time_in_an_added_time_column_names_the_catalog_declaration_that_takes_it():
    shaper, _ = added_column_shaper("contacts")
    shaper.shape({"contact_id": "a", "callback_at": "2026-07-01 10:00:00"}, UTC)
    with pytest.raises(AddedInstantNotATime) as stop:
        shaper.shape({"contact_id": "b", "callback_at": "after 6pm"}, UTC)
    assert '"callback_at": {"type": ["string", "null"]}' in str(stop.value)
    assert str(stop.value).startswith("talkdesk_contacts: column 'callback_at'")
    # With that declaration in the catalog: the text as sent, times still UTC, "None" still null.
    shaper, growth = added_column_shaper("contacts", {"callback_at": {"type": ["string", "null"]}})
    lisbon = ZoneInfo("Europe/Lisbon")
    texts = [
        shaper.shape({"contact_id": n, "callback_at": v}, lisbon)["callback_at"]
        for n, v in enumerate(["after 6pm", "2026-07-01 10:00:00", "None"])
    ]
    assert texts == ["after 6pm", "2026-07-01T09:00:00Z", None]
    assert growth.schema["properties"]["callback_at"] == {"type": ["string", "null"]}
