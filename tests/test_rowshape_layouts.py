"""The compiled shaper of a layout (`rowshape.compile_layout`) gives byte for byte the rows the
general path gives, and hands every row it cannot take to it (which then stops as before)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import orjson
import pytest

from tap_callreports import rowshape
from tap_callreports.conform import Conformer, ValueNotConformed
from tap_callreports.myreports.streams import ROW_POLICY as MYREPORTS
from tap_callreports.report_types import ROW_POLICIES
from tap_callreports.rowshape import RowShaper, ValueFormNotKnown
from tap_callreports.sandbox.data import MYREPORTS_REPORTS, SandboxData
from tap_callreports.schemas import load_schema

UTC = dt.UTC
START = dt.datetime(2026, 10, 1, tzinfo=UTC)
LISBON = ZoneInfo("Europe/Lisbon")


def sandbox_rows(stream: str, hours: int = 3) -> list[dict]:
    end = START + dt.timedelta(hours=hours)
    if stream == "myreports":
        data = SandboxData(seed=3, myreports_rows_per_hour=200)
        return [row for _ts, row in data.myreports_rows(next(iter(MYREPORTS_REPORTS)), START, end)]
    data = SandboxData(seed=3, rows_per_hour=200, calls_rename_cutover=START + dt.timedelta(hours=1))
    return list(data.talkdesk_rows(stream, START, end, LISBON, START + dt.timedelta(hours=2)))


def shapers(stream: str, rows: list[dict]) -> tuple[RowShaper, RowShaper]:
    """The stream's shaper as the tap builds it (schema, conformer), compiled and not."""
    policy = MYREPORTS if stream == "myreports" else ROW_POLICIES[stream]
    vendor = load_schema("myreports_call_rows" if stream == "myreports" else f"talkdesk_{stream}")
    schema = policy.output_schema(vendor)
    known = frozenset(schema["properties"]) | {name for row in rows for name in row}

    def shaper() -> RowShaper:
        return RowShaper(
            policy,
            vendor["properties"],
            known=lambda: known,
            conformer=lambda: Conformer(schema, stream, policy.instants),
            stream=stream,
        )

    general = shaper()
    general._compiled = lambda *_: None  # type: ignore[method-assign]  # the general path only
    return shaper(), general


@pytest.mark.parametrize("stream", [*ROW_POLICIES, "myreports"])
def test_compiled_layouts_give_the_general_paths_bytes(stream, monkeypatch):
    monkeypatch.setattr(rowshape, "COMPILED_FIELDS", 1000)  # every layout, the wide ones too
    rows = sandbox_rows(stream)
    assert rows
    compiled, general = shapers(stream, rows)
    for zone in (UTC, LISBON):
        got = [orjson.dumps(compiled.shape(dict(row), zone)) for row in rows]
        assert got == [orjson.dumps(general.shape(dict(row), zone)) for row in rows]
    made = [layout[-1] is not None for layout in compiled._columns_for.values()]
    assert any(made) != bool(compiled.policy.local_instants)  # local instants: the general path's


def test_wide_layouts_take_the_general_path():
    rows = sandbox_rows("calls")
    assert len(rows[0]) > rowshape.COMPILED_FIELDS
    compiled, _ = shapers("calls", rows)
    compiled.shape(dict(rows[0]), UTC)
    assert [layout[-1] for layout in compiled._columns_for.values()] == [None]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"agent_disconnected": "maybe"}, ValueFormNotKnown),  # a flag in none of its forms
        ({"agent_disconnected": ["Yes"]}, ValueFormNotKnown),
        ({"start_at": "2026-13-01T00:00:00Z"}, ValueNotConformed),  # no such month
        ({"start_at": "yesterday"}, ValueNotConformed),
        ({"talk_time": {"seconds": 1}}, ValueNotConformed),  # an object in a number column
    ],
)
def test_rows_the_compiled_layout_cannot_take_stop_as_before(change, error, monkeypatch):
    monkeypatch.setattr(rowshape, "COMPILED_FIELDS", 1000)
    rows = sandbox_rows("calls")
    compiled, general = shapers("calls", rows)
    for row in rows[:50]:  # the layout compiled, its minutes proven
        compiled.shape(dict(row), UTC)
    bad = rows[50] | change
    with pytest.raises(error) as stopped:
        compiled.shape(dict(bad), UTC)
    with pytest.raises(error) as before:
        general.shape(dict(bad), UTC)
    assert str(stopped.value) == str(before.value)


def test_missing_texts_conversions_and_new_minutes_go_the_general_way_with_the_same_result(monkeypatch):
    monkeypatch.setattr(rowshape, "COMPILED_FIELDS", 1000)
    rows = sandbox_rows("calls")
    compiled, general = shapers("calls", rows)
    for row in rows[:50]:
        compiled.shape(dict(row), UTC)
        general.shape(dict(row), UTC)
    odd = [
        rows[51] | {"talk_time": "None", "user_name": "", "agent_disconnected": "YES"},
        rows[52] | {"talk_time": "42"},  # numeric text: converted by the conformer
        rows[53] | {"start_at": "2031-01-01T10:00:00Z"},  # a minute not seen yet
        rows[54] | {"start_at": "2026-10-01 10:00:00"},  # a wall time, read in the zone
        rows[55] | {"csat_score": 4.0},
    ]
    for row in odd:
        assert orjson.dumps(compiled.shape(dict(row), LISBON)) == orjson.dumps(general.shape(dict(row), LISBON))
