"""The fast paths emit exactly what the plain paths would: streaming vs whole-body parsing, and
the lean record writer vs the SDK's own record path; selection and stream maps still apply."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
import requests

from helpers import LONDON_REPORT, NEW_YORK_REPORT, catalog_selecting, sandbox_config, sync
from tap_callreports.myreports.streams import ROW_POLICY
from tap_callreports.reportjobs.stream import ReportJobStream
from tap_callreports.rowshape import RowShaper
from tap_callreports.tap import TapCallReports
from tap_callreports.timeutil import UTC, LocalTimeConverter, parse_instant

STREAMS = ["talkdesk_calls", "talkdesk_report_jobs", "myreports_call_rows", "myreports_requests"]


def whole_body(url: str, token: str) -> dict:
    response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return json.loads(response.content)  # the whole body in memory, the plain way


def test_streaming_and_whole_body_parsing_emit_identical_records(make_sandbox):
    sandbox = make_sandbox(talkdesk_file_redirect="never")
    config = sandbox_config(
        sandbox,
        myreports_report_ids=[LONDON_REPORT, NEW_YORK_REPORT],
        start_date="2026-10-24T00:00:00Z",
        end_date="2026-10-27T00:00:00Z",
    )
    run = sync(config, streams=STREAMS)
    assert run.error is None, run.error

    expected_calls = []
    token = sandbox.app.config.talkdesk_access_token
    # A whole-body row shaped as the tap shapes every row (names, value forms, nulls, UTC: their
    # correctness is tests/test_report_layouts.py's); this test pins the parsing, not the shaping.
    shape_call = TapCallReports(config=config).streams["talkdesk_calls"].shaper.shape
    for job in run.records("talkdesk_report_jobs"):
        body = whole_body(job["links"]["files"]["href"], token)
        for row in body["entries"]:
            expected_calls.append(
                shape_call(row, ZoneInfo(job["timezone"]))
                | {
                    "report_job_id": job["id"],
                    "report_window_start": job["window_start"],
                    "report_window_end": job["window_end"],
                }
            )
    assert run.records("talkdesk_calls") == expected_calls  # same rows, same order, same types

    expected_rows = []
    emitted: set[tuple[str, str]] = set()
    for request in run.records("myreports_requests"):
        url = (
            f"{sandbox.url}/api/v1.0/workspaces/{config['myreports_workspace_id']}/reports/"
            f"{request['report_id']}/requests/{request['request_id']}/data"
        )
        body = whole_body(url, sandbox.app.config.myreports_token)
        tz = ZoneInfo(body["request"]["timeZoneId"])
        start, end = parse_instant(request["window_start"]), parse_instant(request["window_end"])
        if request["outcome"] != "emitted":
            continue
        to_utc = LocalTimeConverter(tz, start, end).to_utc_text  # its correctness: test_reports' DST tests
        shape = RowShaper(ROW_POLICY).shape  # column names: tests/test_rowshape.py
        for row in body["data"]:
            if (request["report_id"], row["docId"]) in emitted:
                continue  # requests overlap the window before them: a row goes out once per run
            emitted.add((request["report_id"], row["docId"]))
            expected_rows.append(
                shape(row | {"start_utc": to_utc(row["start"])}, UTC)
                | {"report_id": request["report_id"], "request_id": request["request_id"]}
            )
    assert run.records("myreports_call_rows") == expected_rows
    assert any(r["outcome"] == "split" for r in run.records("myreports_requests"))  # London's DST change


def test_lean_record_path_equals_the_sdk_path(make_sandbox, monkeypatch):
    sandbox = make_sandbox()
    config = sandbox_config(sandbox)
    lean = sync(config, streams=STREAMS)
    monkeypatch.setattr(ReportJobStream, "lean_records", property(lambda self: False))
    plain = sync(config, streams=STREAMS)

    def rows(run, stream):
        strip = ("report_job_id", "request_id")
        return [
            {k: v for k, v in m["record"].items() if k not in strip}
            for m in run.messages
            if m["type"] == "RECORD" and m["stream"] == stream
        ]

    for stream in ("talkdesk_calls", "myreports_call_rows"):
        assert rows(lean, stream) == rows(plain, stream) and rows(lean, stream)
        lean_keys = {tuple(m) for m in lean.messages if m["type"] == "RECORD" and m["stream"] == stream}
        plain_keys = {tuple(m) for m in plain.messages if m["type"] == "RECORD" and m["stream"] == stream}
        assert lean_keys == plain_keys == {("type", "stream", "record", "time_extracted")}
    assert lean.final_state == plain.final_state


def test_deselected_fields_and_stream_maps_still_apply(sandbox):
    config = sandbox_config(
        sandbox,
        stream_maps={
            "talkdesk_calls": {"user_name": None, "__filter__": "type == 'inbound'"},
            "myreports_call_rows": {"caller": "record.get('cli')", "cli": None},  # rows are sparse
        },
    )
    catalog = catalog_selecting(config, ["talkdesk_calls", "myreports_call_rows"])
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "myreports_call_rows":
            for item in entry["metadata"]:
                if item["breadcrumb"] == ["properties", "user_name"]:
                    item["metadata"]["selected"] = False
    run = sync(config, catalog=catalog)
    assert run.error is None, run.error
    calls = run.records("talkdesk_calls")
    assert calls and all(r["type"] == "inbound" and "user_name" not in r for r in calls)
    rows = run.records("myreports_call_rows")
    assert rows and all("user_name" not in r and "cli" not in r for r in rows)
    assert any("caller" in r for r in rows)
    schema = run.schemas()["myreports_call_rows"]["schema"]["properties"]
    assert "caller" in schema and "cli" not in schema


@pytest.mark.parametrize("stream", ["talkdesk_calls", "myreports_call_rows"])
def test_flattening_works_on_report_streams(sandbox, stream):
    config = sandbox_config(sandbox, flattening_enabled=True, flattening_max_depth=1)
    run = sync(config, streams=[stream])
    assert run.error is None, run.error
    assert run.records(stream)


@pytest.mark.parametrize("stdout", ["file", "pipe", "no descriptor"])
def test_a_held_window_goes_out_byte_for_byte_however_stdout_takes_it(tmp_path, monkeypatch, stdout):
    """A held window's lines leave in one copy (the kernel's sendfile where stdout is a file or a
    pipe, else a buffered copy): the same bytes as unheld lines, a STATE written meanwhile first."""
    import io
    import os
    import sys
    import threading

    from singer_sdk.singerlib.messages import StateMessage

    from tap_callreports.writer import COPY_BYTES, FastSingerWriter

    records = [{"id": n, "text": "x" * (n % 700)} for n in range(3 * COPY_BYTES // 300)]  # > 1 MB: several copies
    sent: list[int] = []
    sendfile = os.sendfile
    monkeypatch.setattr(os, "sendfile", lambda *args: sent.append(sendfile(*args)) or sent[-1])

    def lines(writer: FastSingerWriter, hold: bool) -> None:
        if hold:
            writer.hold()
        for record in records:
            writer.write_record("s", record, None)
        writer.write_message(StateMessage(value={"n": 1}))
        writer.release()
        writer.flush()

    def captured(hold: bool) -> bytes:
        if stdout == "no descriptor":
            raw = io.BytesIO()
            monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))
            lines(FastSingerWriter(), hold)
            return raw.getvalue()
        if stdout == "file":
            path = tmp_path / f"out-{hold}"
            with open(path, "wb") as raw_file:
                monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw_file, write_through=True))
                lines(FastSingerWriter(), hold)
                sys.stdout.flush()
            return path.read_bytes()
        read_end, write_end = os.pipe()
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read_end, 1 << 16), b"")))
        reader.start()
        with open(write_end, "wb") as raw_pipe:
            monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw_pipe, write_through=True))
            lines(FastSingerWriter(), hold)
            sys.stdout.flush()
        reader.join()
        os.close(read_end)
        return b"".join(chunks)

    plain, held = captured(hold=False), captured(hold=True)
    state = b'{"type":"STATE","value":{"n":1}}\n'
    assert plain.endswith(state) and held.startswith(state)
    assert held == state + plain[: -len(state)]
    assert held.count(b"\n") == len(records) + 1
    assert (sum(sent) == len(plain) - len(state)) is (stdout != "no descriptor")  # by the kernel where it can
