"""Report jobs outlive a run: recorded in the STATE when created, polled (not created again) by the
next run, created again only when the vendor no longer has them."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from helpers import LONDON_REPORT, NEW_YORK_REPORT, UNFINISHED, run_cli, sandbox_config, sync
from tap_callreports.reportjobs.engine import UNREAD_PER_SLOT
from tap_callreports.reportjobs.state import JOBS_STATE_KEY


def recorded_jobs(state: dict) -> list[dict]:
    """Every job record in a STATE, from every stream and partition, with `scope`: the report type
    or MyReports report id it belongs to."""
    found = []
    for stream, bookmark in (state.get("bookmarks") or {}).items():
        found += [r | {"scope": stream.removeprefix("talkdesk_")} for r in bookmark.get(JOBS_STATE_KEY) or []]
        for partition in bookmark.get("partitions") or []:
            scope = partition["context"]["report_id"]
            found += [r | {"scope": scope} for r in partition.get(JOBS_STATE_KEY) or []]
    return found


def job_scope(event: dict) -> tuple[str, str, str]:
    """A job_created event as (report type or report id, window start, window end)."""
    scope = event.get("report_type") or event.get("report_id")
    return scope, event["start"].replace("+00:00", "Z"), event["end"].replace("+00:00", "Z")


def durable_config(sandbox, **overrides):
    settings = {
        "talkdesk_report_types": ["calls"],
        "myreports_report_ids": [LONDON_REPORT, NEW_YORK_REPORT],
        "end_date": "2026-10-05T00:00:00Z",
        "max_concurrent_jobs": 4,
    } | overrides
    return sandbox_config(sandbox, vendors=("talkdesk", "myreports"), **settings)


STREAMS = ("talkdesk_calls", "myreports_call_rows")


def run_until_jobs_recorded(tmp_path: Path, config: dict, jobs_wanted: int) -> tuple[list[dict], dict]:
    """Run the CLI and SIGKILL it at the first STATE that records `jobs_wanted` jobs."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    messages: list[dict] = []
    with subprocess.Popen(
        [sys.executable, "-m", "tap_callreports", "--config", str(tmp_path / "config.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = json.loads(line)
            messages.append(message)
            if message["type"] == "STATE" and len(recorded_jobs(message["value"])) >= jobs_wanted:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states and len(recorded_jobs(states[-1])) >= jobs_wanted, "the run ended before recording its jobs"
    return messages, states[-1]


def created(sandbox) -> list[dict]:
    return sandbox.app.events("job_created")


#: A sandbox whose jobs stay unfinished (a job is done no sooner than job_seconds after its creation)
#: until the test lets them finish: what the first run meets is decided by the test, not by how
#: fast the machine is.
HELD = {"job_seconds": UNFINISHED, "job_polls": 1}


def let_jobs_finish(sandbox) -> None:
    """From now on the sandbox's jobs, those created before included, are done at their next poll."""
    sandbox.app.config.job_seconds = 0.0


@pytest.mark.parametrize("jobs_wanted", [1, 3, 4])
def test_a_killed_run_leaves_its_jobs_to_the_next_one(tmp_path, make_sandbox, jobs_wanted):
    # The jobs stay unfinished until the kill: it comes after they were created, before any row.
    sandbox = make_sandbox(**HELD)
    config = durable_config(sandbox)
    first, state = run_until_jobs_recorded(tmp_path, config, jobs_wanted)
    assert not [m for m in first if m["type"] == "RECORD"]
    let_jobs_finish(sandbox)
    recorded = {r["job_id"]: r for r in recorded_jobs(state)}
    before = len(created(sandbox))

    resumed = run_cli(tmp_path, config, state=state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    new_jobs = created(sandbox)[before:]
    recorded_windows = {(r["scope"], r["window_start"], r["window_end"]) for r in recorded.values()}
    remade = [e for e in new_jobs if job_scope(e) in recorded_windows]
    assert remade == []  # zero new jobs for the windows whose jobs were recorded
    used = {r["report_job_id"] for r in resumed.records("talkdesk_calls")}
    used |= {r["request_id"] for r in resumed.records("myreports_call_rows")}
    assert set(recorded) <= used  # ...their rows came from the recorded jobs

    clean = sync(config)
    for stream in STREAMS:
        key = "doc_id" if stream == "myreports_call_rows" else "call_id"
        rows = collections.Counter(r[key] for r in resumed.records(stream))
        assert rows == collections.Counter(r[key] for r in clean.records(stream)), stream  # each row once
    assert recorded_jobs(resumed.final_state) == []  # records leave the STATE with their windows


def test_a_job_that_timed_out_is_read_by_the_next_run(tmp_path, make_sandbox):
    sandbox = make_sandbox(**HELD)
    config = sandbox_config(sandbox, vendors=("talkdesk",), end_date="2026-10-02T00:00:00Z", job_timeout_seconds=0.3)
    first = run_cli(tmp_path, config)
    assert first.returncode == 1
    let_jobs_finish(sandbox)
    last = first.stderr_lines[-1]
    assert "still not ready after 0.3s" in last and "stays recorded in the STATE" in last
    recorded = recorded_jobs(first.final_state)
    assert len(recorded) == 1 and len(created(sandbox)) == 1

    second = run_cli(tmp_path, config | {"job_timeout_seconds": 30}, state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    assert len(created(sandbox)) == 1  # read, not created again
    rows = second.records("talkdesk_calls")
    assert rows and {r["report_job_id"] for r in rows} == {recorded[0]["job_id"]}
    assert recorded_jobs(second.final_state) == []


def test_a_recorded_job_the_vendor_forgot_is_created_again(tmp_path, make_sandbox):
    sandbox = make_sandbox(**HELD)
    config = sandbox_config(
        sandbox, vendors=("talkdesk", "myreports"), end_date="2026-10-02T00:00:00Z", job_timeout_seconds=0.3
    )
    first = run_cli(tmp_path, config)
    assert first.returncode == 1
    recorded = recorded_jobs(first.final_state)
    assert recorded
    requests.post(f"{sandbox.url}/_sandbox/forget", timeout=10).raise_for_status()
    let_jobs_finish(sandbox)

    second = run_cli(tmp_path, config | {"job_timeout_seconds": 30}, state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "no longer has" in second.stderr
    forgotten = {r["job_id"] for r in recorded}
    calls, rows = second.records("talkdesk_calls"), second.records("myreports_call_rows")
    assert calls and rows
    assert not forgotten & ({r["report_job_id"] for r in calls} | {r["request_id"] for r in rows})
    clean = sync(config | {"job_timeout_seconds": 30})
    assert sorted(r["call_id"] for r in calls) == sorted(r["call_id"] for r in clean.records("talkdesk_calls"))
    assert sorted(r["doc_id"] for r in rows) == sorted(r["doc_id"] for r in clean.records("myreports_call_rows"))


def test_state_holds_only_windows_in_flight(make_sandbox):
    sandbox = make_sandbox()
    config = durable_config(sandbox, end_date="2026-10-09T00:00:00Z")
    run = sync(config, streams=STREAMS)
    assert run.error is None, run.error
    in_flight = [len(recorded_jobs(s)) for s in run.states]
    assert max(in_flight) >= 2  # jobs were recorded while they ran...
    # ...never more than the windows in flight, per vendor: 4 jobs running (max_concurrent_jobs),
    # at most UNREAD_PER_SLOT x 4 done ones waiting to be read, and the window being read
    for vendor_scopes in ({"calls"}, {LONDON_REPORT, NEW_YORK_REPORT}):
        held = [sum(1 for r in recorded_jobs(s) if r["scope"] in vendor_scopes) for s in run.states]
        assert max(held) <= 4 + UNREAD_PER_SLOT * 4 + 1, vendor_scopes
    assert in_flight[-1] == 0  # and none is left once every window is committed


def test_a_killed_incremental_run_with_lookback_leaves_its_jobs_to_the_next_one(tmp_path, make_sandbox):
    """With a lookback, an incremental run's first window starts before its bookmark: its recorded
    jobs must still be recognised by the next run."""
    sandbox = make_sandbox(job_polls=1)
    settings = {"talkdesk_report_types": ["calls"], "max_concurrent_jobs": 4}
    first = run_cli(
        tmp_path, sandbox_config(sandbox, vendors=("talkdesk",), end_date="2026-10-03T00:00:00Z", **settings)
    )
    assert first.returncode == 0, first.stderr[-2000:]
    sandbox.app.config.job_seconds = HELD["job_seconds"]  # the next run's jobs stay unfinished until its kill
    config = sandbox_config(sandbox, vendors=("talkdesk",), end_date="2026-10-05T00:00:00Z", **settings)
    (tmp_path / "state.json").write_text(json.dumps(first.final_state))
    (tmp_path / "config.json").write_text(json.dumps(config))
    state = None
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_callreports",
            "--config",
            str(tmp_path / "config.json"),
            "--state",
            str(tmp_path / "state.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = json.loads(line)
            if message["type"] == "STATE" and len(recorded_jobs(message["value"])) >= 2:
                state = message["value"]
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
    assert state is not None
    let_jobs_finish(sandbox)
    recorded = recorded_jobs(state)
    assert min(r["window_start"] for r in recorded) == "2026-10-02T22:00:00Z"  # the lookback rides on it
    before = len(created(sandbox))
    third = run_cli(tmp_path, config, state=state)
    assert third.returncode == 0, third.stderr[-2000:]
    windows = {(r["scope"], r["window_start"], r["window_end"]) for r in recorded}
    assert [e for e in created(sandbox)[before:] if job_scope(e) in windows] == []
    calls = [r["call_id"] for r in third.records("talkdesk_calls")]
    assert len(calls) == len(set(calls))


def test_a_recorded_job_the_plan_no_longer_uses_is_deleted_at_talkdesk(tmp_path, make_sandbox):
    sandbox = make_sandbox(**HELD)
    config = sandbox_config(sandbox, vendors=("talkdesk",), end_date="2026-10-02T00:00:00Z", job_timeout_seconds=0.3)
    first = run_cli(tmp_path, config)
    assert first.returncode == 1
    let_jobs_finish(sandbox)
    [recorded] = recorded_jobs(first.final_state)
    # The user narrowed end_date: the recorded window [10-01, 10-02) is not part of this run's plan.
    second = run_cli(
        tmp_path, config | {"end_date": "2026-10-01T12:00:00Z", "job_timeout_seconds": 30}, state=first.final_state
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert [e["job_id"] for e in sandbox.app.events("job_deleted")] == [recorded["job_id"]]
    assert recorded_jobs(second.final_state) == []


def test_a_recorded_later_window_is_reused_even_when_earlier_ones_were_not_recorded(tmp_path, make_sandbox):
    """Jobs are recorded in the order they were created: a kill can leave window 3 recorded and
    windows 1 and 2 not. The next run creates 1 and 2 and polls 3."""
    sandbox = make_sandbox(**HELD)
    config = sandbox_config(sandbox, vendors=("talkdesk",), end_date="2026-10-04T00:00:00Z", max_concurrent_jobs=4)
    _first, state = run_until_jobs_recorded(tmp_path, config, 3)
    let_jobs_finish(sandbox)
    records = state["bookmarks"]["talkdesk_calls"]["report_jobs"]
    assert len(records) == 3
    last = max(records, key=lambda r: r["window_start"])
    state["bookmarks"]["talkdesk_calls"]["report_jobs"] = [last]
    before = len(created(sandbox))
    second = run_cli(tmp_path, config, state=state)
    assert second.returncode == 0, second.stderr[-2000:]
    remade = sorted(job_scope(e)[1] for e in created(sandbox)[before:])
    assert remade == ["2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"]
    rows = second.records("talkdesk_calls")
    assert last["job_id"] in {r["report_job_id"] for r in rows}
    assert len({r["call_id"] for r in rows}) == len(rows)
    assert second.final_state["bookmarks"]["talkdesk_calls"]["replication_key_value"] == "2026-10-04T00:00:00Z"
