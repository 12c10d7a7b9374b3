"""Asynchronous reports over real HTTP: every row of every window exactly once, in order."""

from __future__ import annotations

import collections
import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from helpers import (
    LONDON_REPORT,
    NEW_YORK_REPORT,
    UNFINISHED,
    landed_calls_row,
    on_first_refusal,
    run_cli,
    sandbox_config,
    sync,
)
from tap_callreports.timeutil import iso_z

UTC = dt.UTC
OCT1, OCT2, OCT3, OCT4, OCT5 = (dt.datetime(2026, 10, d, tzinfo=UTC) for d in range(1, 6))


def expected_talkdesk(sandbox, report_type, start, end, tz="UTC"):
    return list(sandbox.app.data.talkdesk_rows(report_type, start, end, ZoneInfo(tz), dt.datetime.now(UTC)))


def expected_myreports(sandbox, report_id, start, end):
    return {row["docId"]: ts for ts, row in sandbox.app.data.myreports_rows(report_id, start, end)}


def row_key(row):
    return row.get("call_id") or row.get("interaction_id") or row.get("contact_id")


# ---- Talkdesk -------------------------------------------------------------------------------------


def test_every_talkdesk_row_once_in_window_order(sandbox):
    run = sync(
        sandbox_config(sandbox, talkdesk_report_types=["calls", "contacts"]),
        streams=["talkdesk_calls", "talkdesk_contacts", "talkdesk_report_jobs"],
    )
    assert run.error is None, run.error
    for report_type in ("calls", "contacts"):
        rows = run.records(f"talkdesk_{report_type}")
        expected = expected_talkdesk(sandbox, report_type, OCT1, OCT4)
        assert len(expected) > 100
        assert collections.Counter(map(row_key, rows)) == collections.Counter(map(row_key, expected))
        starts = [r["report_window_start"] for r in rows]
        assert starts == sorted(starts)
        assert set(starts) == {iso_z(OCT1), iso_z(OCT2), iso_z(OCT3)}
    jobs = run.records("talkdesk_report_jobs")
    assert len(jobs) == 6 and {j["status"] for j in jobs} == {"done"}
    by_id = {j["id"]: j for j in jobs}
    for row in run.records("talkdesk_calls"):
        job = by_id[row["report_job_id"]]
        assert (job["window_start"], job["window_end"]) == (row["report_window_start"], row["report_window_end"])
    assert sum(j["rows_read"] for j in jobs) == len(run.records("talkdesk_calls")) + len(
        run.records("talkdesk_contacts")
    )
    assert run.final_state["bookmarks"]["talkdesk_calls"]["replication_key_value"] == iso_z(OCT4)


@pytest.mark.parametrize("done_status", [300, 303, 200])
@pytest.mark.parametrize("redirect", ["always", "never"])
def test_every_way_to_the_file(make_sandbox, done_status, redirect):
    sandbox = make_sandbox(talkdesk_done_status=done_status, talkdesk_file_redirect=redirect)
    run = sync(sandbox_config(sandbox), streams=["talkdesk_calls", "talkdesk_report_jobs"])
    assert run.error is None, run.error
    expected = expected_talkdesk(sandbox, "calls", OCT1, OCT4)
    assert sorted(map(row_key, run.records("talkdesk_calls"))) == sorted(map(row_key, expected))
    downloads = sandbox.app.events("file_download")
    assert {d["via"] for d in downloads} == {"signed-url" if redirect == "always" else "api"}
    delivery = {j["file_delivery"] for j in run.records("talkdesk_report_jobs")}
    assert delivery == {"signed_url" if redirect == "always" else "direct"}


def test_job_progress_over_several_polls(make_sandbox):
    # done by its polls alone: not also by the sandbox's 10 s job clock, which a stalled machine reaches
    sandbox = make_sandbox(job_polls=4, job_wall_seconds=3600)
    run = sync(sandbox_config(sandbox, end_date="2026-10-02T00:00:00Z"), streams=["talkdesk_calls"])
    assert run.error is None
    statuses = [e["status"] for e in sandbox.app.events("job_polled")]
    assert statuses == ["processing", "uploading", "uploading", "done"]


def test_bare_job_answer_is_accepted(make_sandbox):
    sandbox = make_sandbox(talkdesk_bare_job=True)
    run = sync(sandbox_config(sandbox), streams=["talkdesk_calls"])
    assert run.error is None, run.error
    assert len(run.records("talkdesk_calls")) == len(expected_talkdesk(sandbox, "calls", OCT1, OCT4))


@pytest.mark.parametrize("fmt", ["csv", "json_bulk"])
def test_csv_and_json_bulk_give_the_json_rows(make_sandbox, fmt):
    sandbox = make_sandbox()
    run = sync(sandbox_config(sandbox, talkdesk_report_format=fmt), streams=["talkdesk_calls"])
    assert run.error is None, run.error
    origin = ("report_job_id", "report_window_start", "report_window_end")
    got = sorted(({k: v for k, v in r.items() if k not in origin} for r in run.records("talkdesk_calls")), key=row_key)
    # Empty text is null in every format (a CSV cell cannot tell them apart): docs/talkdesk-report-rows.md
    expected = sorted(map(landed_calls_row, expected_talkdesk(sandbox, "calls", OCT1, OCT4)), key=row_key)
    assert got == expected  # CSV cells typed back by the schema: talk_time_seconds is an int again


@pytest.mark.parametrize("cutover", ["2099-01-01T00:00:00+00:00", "2000-01-01T00:00:00+00:00"])
def test_renamed_call_fields_land_in_one_column(make_sandbox, cutover):
    sandbox = make_sandbox(calls_rename_cutover=cutover)  # payloads with the old names, then the new ones
    run = sync(sandbox_config(sandbox), streams=["talkdesk_calls"])
    rows = run.records("talkdesk_calls")
    expected = expected_talkdesk(sandbox, "calls", OCT1, OCT4)
    assert rows and sorted(r["call_id"] for r in rows) == sorted(map(row_key, expected))
    assert all({"call_id", "type", "start_at", "end_at"} <= set(r) for r in rows)
    assert not any({"interaction_id", "call_type", "start_time", "end_time"} & set(r) for r in rows)
    properties = run.schemas()["talkdesk_calls"]["schema"]["properties"]
    assert {"call_id", "type", "start_at", "end_at"} <= set(properties)
    assert not {"interaction_id", "call_type", "start_time", "end_time"} & set(properties)
    assert properties["start_at"]["format"] == "date-time"
    assert run.schemas()["talkdesk_calls"]["key_properties"] == ["call_id"]


def test_studio_flow_dotted_keys_become_sql_names(sandbox):
    run = sync(
        sandbox_config(sandbox, talkdesk_report_types=["studio_flow_execution"]),
        streams=["talkdesk_studio_flow_execution"],
    )
    rows = run.records("talkdesk_studio_flow_execution")
    expected = list(
        sandbox.app.data.talkdesk_rows("studio_flow_execution", OCT1, OCT4, ZoneInfo("UTC"), dt.datetime.now(UTC))
    )
    dotted = "studio_flow_executions_aggregated.flow_execution_finished_time"

    def step(row):
        return row["interaction_id"], row["step_execution_order"]

    assert sorted(map(step, rows)) == sorted(map(step, expected))
    columns = set(run.schemas()["talkdesk_studio_flow_execution"]["schema"]["properties"])
    assert all(name.replace("_", "").isalnum() and name.islower() for name in columns)
    assert {"flow_name", "flow_execution_finished_time", "flow_execution_finished_time_local"} <= columns
    by_step = {step(r): r for r in expected}
    for row in rows:  # local wall times (report zone UTC here) become UTC instants, the text kept beside
        sent = by_step[step(row)]
        assert row["flow_name"] == sent["flow_name"]  # the real flow_name lands in flow_name
        wall = sent[dotted]
        assert row["flow_execution_finished_time_local"] == wall.replace(" ", "T")
        assert row["flow_execution_finished_time"] == wall.replace(" ", "T") + "Z"


@pytest.mark.parametrize("knob, word", [("fail_windows", "failed"), ("cancel_windows", "canceled")])
def test_failed_job_stops_loudly_and_bookmark_stays(tmp_path, make_sandbox, knob, word):
    sandbox = make_sandbox(**{knob: (iso_z(OCT2),)})
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("talkdesk",), job_max_attempts=2), catalog=None, env={})
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    job_ids = [e["job_id"] for e in sandbox.app.events("job_created") if e["start"] == OCT2.isoformat()]
    assert len(job_ids) == 2  # created again once, then given up
    assert last.startswith("tap-callreports: error: talkdesk_calls: report job ")
    assert job_ids[-1] in last and f"ended '{word}'" in last
    assert "calls 2026-10-02T00:00:00Z..2026-10-03T00:00:00Z" in last
    rows = run.records("talkdesk_calls")
    assert {r["report_window_start"] for r in rows} == {iso_z(OCT1)}
    bookmarks = [s["bookmarks"].get("talkdesk_calls", {}).get("replication_key_value") for s in run.states]
    assert iso_z(OCT2) in bookmarks and all(b in (None, iso_z(OCT2)) for b in bookmarks)


def test_resumed_run_emits_only_new_windows(sandbox):
    first = sync(sandbox_config(sandbox, end_date=iso_z(OCT3)), streams=["talkdesk_calls"])
    assert first.final_state["bookmarks"]["talkdesk_calls"]["replication_key_value"] == iso_z(OCT3)
    created_before = len(sandbox.app.events("job_created"))
    second = sync(
        sandbox_config(sandbox, end_date=iso_z(OCT5), talkdesk_lookback_minutes=0),
        state=first.final_state,
        streams=["talkdesk_calls"],
    )
    rows = second.records("talkdesk_calls")
    assert {r["report_window_start"] for r in rows} == {iso_z(OCT3), iso_z(OCT4)}
    assert sorted(map(row_key, rows)) == sorted(map(row_key, expected_talkdesk(sandbox, "calls", OCT3, OCT5)))
    new_jobs = sandbox.app.events("job_created")[created_before:]
    assert sorted(e["start"] for e in new_jobs) == [OCT3.isoformat(), OCT4.isoformat()]  # jobs run concurrently


@pytest.mark.parametrize(
    ("lookback", "end", "expected_starts"),
    [
        (120, OCT5, ["2026-10-02T22:00:00+00:00", OCT4.isoformat()]),  # rides on the first new window
        (120, OCT3 + dt.timedelta(minutes=10), []),  # under min_window_minutes: no job at all
        (0, OCT4, [OCT3.isoformat()]),
    ],
)
def test_lookback_rereads_before_the_bookmark(sandbox, lookback, end, expected_starts):
    first = sync(sandbox_config(sandbox, end_date=iso_z(OCT3)), streams=["talkdesk_calls"])
    created_before = len(sandbox.app.events("job_created"))
    second = sync(
        sandbox_config(sandbox, end_date=iso_z(end), talkdesk_lookback_minutes=lookback),
        state=first.final_state,
        streams=["talkdesk_calls"],
    )
    assert second.error is None, second.error
    new_jobs = sandbox.app.events("job_created")[created_before:]
    assert sorted(e["start"] for e in new_jobs) == expected_starts
    again = second.records("talkdesk_calls")
    start = dt.datetime.fromisoformat(expected_starts[0]) if expected_starts else end
    assert sorted(r["call_id"] for r in again) == sorted(map(row_key, expected_talkdesk(sandbox, "calls", start, end)))
    if lookback and expected_starts:  # rows of the last 2 h before the bookmark came again, with the same key
        assert {r["call_id"] for r in again} & {r["call_id"] for r in first.records("talkdesk_calls")}


def test_concurrent_jobs_overlap(make_sandbox):
    sandbox = make_sandbox(job_polls=3)
    config = sandbox_config(sandbox, end_date=iso_z(OCT5), max_concurrent_jobs=4)
    run = sync(config, streams=["talkdesk_calls"])
    assert run.error is None
    events = [e for e in sandbox.app.events() if e["kind"] in ("job_created", "job_finished")]
    first_finish = next(i for i, e in enumerate(events) if e["kind"] == "job_finished")
    assert [e["kind"] for e in events[:first_finish]] == ["job_created"] * 4
    starts = [r["report_window_start"] for r in run.records("talkdesk_calls")]
    assert starts == sorted(starts)


def test_one_job_at_a_time_runs_in_sequence(make_sandbox):
    sandbox = make_sandbox(job_polls=3)
    run = sync(sandbox_config(sandbox, end_date=iso_z(OCT5), max_concurrent_jobs=1), streams=["talkdesk_calls"])
    assert run.error is None
    kinds = [e["kind"] for e in sandbox.app.events() if e["kind"] in ("job_created", "job_finished")]
    assert kinds == ["job_created", "job_finished"] * 4


def test_cut_downloads_are_resumed_without_duplicates(make_sandbox):
    sandbox = make_sandbox(faults="cut", talkdesk_file_redirect="alternate")
    run = sync(
        sandbox_config(sandbox, talkdesk_report_types=["calls"]), streams=["talkdesk_calls", "myreports_call_rows"]
    )
    assert run.error is None, run.error
    assert [kind for kind, _ in sandbox.app.faults.injected].count("cut") >= 6
    assert collections.Counter(map(row_key, run.records("talkdesk_calls"))) == collections.Counter(
        map(row_key, expected_talkdesk(sandbox, "calls", OCT1, OCT4))
    )
    docs = [r["doc_id"] for r in run.records("myreports_call_rows")]
    assert len(docs) == len(set(docs)) and set(docs) == set(expected_myreports(sandbox, LONDON_REPORT, OCT1, OCT4))


# ---- MyReports ------------------------------------------------------------------------------------


def test_every_myreports_row_once_with_origin(sandbox):
    config = sandbox_config(sandbox, myreports_report_ids=[LONDON_REPORT, NEW_YORK_REPORT])
    run = sync(config, streams=["myreports_call_rows", "myreports_requests"])
    assert run.error is None, run.error
    rows = run.records("myreports_call_rows")
    for report_id in (LONDON_REPORT, NEW_YORK_REPORT):
        got = [r for r in rows if r["report_id"] == report_id]
        expected = expected_myreports(sandbox, report_id, OCT1, OCT4)
        assert sorted(r["doc_id"] for r in got) == sorted(expected)
        assert all(r["start_utc"] == iso_z(dt.datetime.fromtimestamp(expected[r["doc_id"]], UTC)) for r in got)
    requests_ = run.records("myreports_requests")
    assert {r["request_id"] for r in requests_} == {r["request_id"] for r in rows}
    assert all(r["outcome"] == "emitted" and isinstance(r["summary"], list) for r in requests_)
    partitions = run.final_state["bookmarks"]["myreports_call_rows"]["partitions"]
    assert {p["context"]["report_id"]: p["replication_key_value"] for p in partitions} == {
        LONDON_REPORT: iso_z(OCT4),
        NEW_YORK_REPORT: iso_z(OCT4),
    }


def test_row_limit_splits_windows_until_complete(make_sandbox):
    sandbox = make_sandbox(myreports_row_limit=40)
    run = sync(sandbox_config(sandbox), streams=["myreports_call_rows", "myreports_requests"])
    assert run.error is None, run.error
    docs = [r["doc_id"] for r in run.records("myreports_call_rows")]
    expected = expected_myreports(sandbox, LONDON_REPORT, OCT1, OCT4)
    assert len(expected) > 200
    assert len(docs) == len(set(docs)) and set(docs) == set(expected)
    outcomes = collections.Counter(r["outcome"] for r in run.records("myreports_requests"))
    assert outcomes["split"] >= 3 and outcomes["emitted"] >= 6
    exceeded = [e for e in sandbox.app.events("file_ready") if e.get("exceeded")]
    assert len(exceeded) == outcomes["split"]
    starts = [r["start_utc"] for r in run.records("myreports_call_rows")]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("report_id", "start", "end"),
    [
        (LONDON_REPORT, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z"),  # BST -> GMT, 01:00 UTC on Oct 25
        (NEW_YORK_REPORT, "2026-10-31T12:00:00Z", "2026-11-02T00:00:00Z"),  # EDT -> EST, 06:00 UTC on Nov 1
        (LONDON_REPORT, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z"),  # GMT -> BST (spring forward)
    ],
)
def test_start_utc_is_right_across_dst(make_sandbox, report_id, start, end):
    sandbox = make_sandbox(myreports_rows_per_hour=30)
    run = sync(
        sandbox_config(
            sandbox, myreports_report_ids=[report_id], myreports_window_days=7, start_date=start, end_date=end
        ),
        streams=["myreports_call_rows", "myreports_requests"],
    )
    assert run.error is None, run.error
    expected = expected_myreports(sandbox, report_id, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
    rows = run.records("myreports_call_rows")
    assert len(rows) == len(expected)
    wrong = [r for r in rows if r["start_utc"] != iso_z(dt.datetime.fromtimestamp(expected[r["doc_id"]], UTC))]
    assert wrong == []
    local = collections.Counter(r["start_local"][:13] for r in rows)
    if "03-28" not in start:
        assert max(local.values()) >= 50  # the repeated local hour holds two hours of calls


def test_malformed_result_is_a_clear_error(tmp_path, make_sandbox):
    sandbox = make_sandbox(faults="malformed")
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("myreports",)))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-callreports: error: myreports_call_rows: the result of job ")
    assert "/data is malformed: malformed JSON" in last and "near byte" in last and "(row 2)" in last
    assert all(
        "myreports_call_rows" not in s.get("bookmarks", {})
        or not any(p.get("replication_key_value") for p in s["bookmarks"]["myreports_call_rows"].get("partitions", []))
        for s in run.states
    )


def test_jobs_of_several_report_streams_run_together(make_sandbox):
    """A daily run has one window per report type: their jobs must not wait for each other."""
    sandbox = make_sandbox(job_polls=3)
    types = ["calls", "contacts", "user_status", "ring_attempts"]
    config = sandbox_config(sandbox, talkdesk_report_types=types, end_date=iso_z(OCT2), max_concurrent_jobs=4)
    run = sync(config, streams=[f"talkdesk_{t}" for t in types])
    assert run.error is None, run.error
    events = [e for e in sandbox.app.events() if e["kind"] in ("job_created", "job_finished")]
    first_finish = next(i for i, e in enumerate(events) if e["kind"] == "job_finished")
    assert [e["kind"] for e in events[:first_finish]] == ["job_created"] * 4
    for report_type in types:
        assert len(run.records(f"talkdesk_{report_type}")) == len(expected_talkdesk(sandbox, report_type, OCT1, OCT2))


def test_jobs_wait_for_a_free_slot_at_the_account_limit(make_sandbox):
    """Talkdesk's per-account limit (15; 2 here, as if other tools held the rest) answers 429. The
    jobs stay unfinished until a creation was refused: the limit is met however slow the machine."""
    sandbox = make_sandbox(job_polls=3, talkdesk_max_active_jobs=2, job_seconds=UNFINISHED)
    on_first_refusal(sandbox, job_seconds=0.0)
    config = sandbox_config(
        sandbox, talkdesk_report_types=["calls", "contacts"], end_date=iso_z(OCT4), max_concurrent_jobs=4, max_retries=0
    )
    run = sync(config, streams=["talkdesk_calls", "talkdesk_contacts"])
    assert run.error is None, run.error
    assert sandbox.app.events("job_rejected")  # the limit was hit...
    for report_type in ("calls", "contacts"):  # ...and every window still came through
        assert len(run.records(f"talkdesk_{report_type}")) == len(expected_talkdesk(sandbox, report_type, OCT1, OCT4))


def test_a_slot_that_never_frees_times_out_loudly(tmp_path, make_sandbox):
    sandbox = make_sandbox(talkdesk_max_active_jobs=0)
    run = run_cli(
        tmp_path, sandbox_config(sandbox, vendors=("talkdesk",), max_retries=0, job_timeout_seconds=0.3), catalog=None
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert "a free report-job slot for calls 2026-10-01T00:00:00Z..2026-10-02T00:00:00Z" in last
    # the time it waited, at least job_timeout_seconds (more on a busy machine)
    waited = re.search(r"stayed at its job limit for (\d+\.\d)s", last)
    assert waited and float(waited.group(1)) >= 0.3 and "raise job_timeout_seconds" in last
    assert "STATE" not in last  # no job was created: none is recorded for the next run
    assert last.startswith("tap-callreports: error: talkdesk_calls: a free") and last.count("talkdesk_calls") == 1
