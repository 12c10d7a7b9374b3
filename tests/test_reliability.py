"""Faults, bad input and interrupted runs: nothing lost, nothing leaked, errors in one line."""

from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from singer_sdk.exceptions import FatalAPIError

from helpers import LONDON_REPORT, NEW_YORK_REPORT, SANDBOX_SECRETS, catalog_selecting, run_cli, sandbox_config, sync

ERRORS_DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"

# (what is wrong, config change, what the user sees) — docs/errors.md's bad-settings table lists these.
BAD_CONFIG = [
    (
        "client id without its secret",
        {"talkdesk_client_secret": None},
        "config: setting 'talkdesk_client_secret' is missing: it is needed together with 'talkdesk_client_id'",
    ),
    (
        "email without its API token",
        {"zendesk_api_token": None},
        "config: setting 'zendesk_api_token' is missing: it is needed together with 'zendesk_email'",
    ),
    ("unknown region", {"talkdesk_region": "mars"}, "config: setting 'talkdesk_region' must be one of us, eu, ca"),
    (
        "plain http to a remote host",
        {"zendesk_api_url": "http://example.com"},
        "config: setting 'zendesk_api_url' must use https",
    ),
    (
        "end_date before start_date",
        {"end_date": "2026-09-01T00:00:00Z"},
        "config: setting 'end_date' must be after start_date",
    ),
    (
        "not a report type name",
        {"talkdesk_report_types": ["calls", "Calls Report"]},
        "config: setting 'talkdesk_report_types' has 'Calls Report', not a report type name",
    ),
    (
        "window over 31 days",
        {"talkdesk_window_days": 45},
        "config: setting 'talkdesk_window_days' must be a whole number from 1 to 31",
    ),
    (
        "more than 15 concurrent Talkdesk jobs",
        {"max_concurrent_jobs": 20},
        "config: setting 'max_concurrent_jobs' must be at most 15 with Talkdesk",
    ),
    (
        "unknown time zone",
        {"talkdesk_report_timezone": "Mars/Olympus"},
        "config: setting 'talkdesk_report_timezone' must be an IANA time zone",
    ),
    (
        "start_date that is not a date",
        {"start_date": "last tuesday"},
        "config: setting 'start_date' must be an ISO 8601 date or date-time",
    ),
    (
        "report ids without a workspace",
        {"myreports_workspace_id": None},
        "config: setting 'myreports_workspace_id' is missing",
    ),
]


@pytest.mark.parametrize(("what", "change", "message"), BAD_CONFIG, ids=[c[0] for c in BAD_CONFIG])
@pytest.mark.parametrize("mode", ["sync", "--discover"])
def test_bad_config_is_one_line_before_any_request(tmp_path, sandbox, what, change, message, mode):
    config = {k: v for k, v in {**sandbox_config(sandbox), **change}.items() if v is not None}
    run = run_cli(tmp_path, config, *([mode] if mode != "sync" else []))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr_lines if "error" in line.lower()]
    assert errors == [f"tap-callreports: error: {errors[0].split('error: ', 1)[1]}"]
    assert message in errors[0], errors[0]
    assert sandbox.app.events("request") == []


def test_docs_list_every_bad_input():
    text = ERRORS_DOC.read_text()
    for what, _change, message in BAD_CONFIG:
        assert message in text, f"docs/errors.md's bad-settings table misses: {what}"


# ---- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["rate-limit", "server-errors", "slow"])
def test_transient_faults_are_retried_to_the_same_records(make_sandbox, profile):
    clean = sync(
        sandbox_config(make_sandbox(), vendors=("zendesk", "talkdesk")),
        streams=["zendesk_job_statuses", "talkdesk_calls"],
    )
    sandbox = make_sandbox(faults=profile, slow_seconds=1.0)
    faulty = sync(
        sandbox_config(sandbox, vendors=("zendesk", "talkdesk"), request_timeout_seconds=0.5, max_retries=4),
        streams=["zendesk_job_statuses", "talkdesk_calls"],
    )
    assert faulty.error is None, faulty.error
    assert len(sandbox.app.faults.injected) >= 3
    assert sorted(r["id"] for r in faulty.records("zendesk_job_statuses")) == sorted(
        r["id"] for r in clean.records("zendesk_job_statuses")
    )
    assert len(faulty.records("talkdesk_calls")) == len(clean.records("talkdesk_calls"))


def test_retry_after_is_waited_exactly():
    from tap_callreports.ratelimit import parse_retry_after
    from tap_callreports.retry import RetryPolicy

    response = requests.Response()
    response.headers["Retry-After"] = "7"
    error = FatalAPIError("x")
    error.response = response  # type: ignore[attr-defined]
    policy = RetryPolicy(max_retries=5, base_seconds=1.0)
    assert [policy.wait_seconds(error, n) for n in (1, 2, 3)] == [7.0, 7.0, 7.0]
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now
    assert parse_retry_after("soon") is None
    waits = [policy.wait_seconds(None, n) for n in (1, 2, 3, 4)]
    assert all(0.5 * 2**i <= w <= 2**i for i, w in enumerate(waits))  # exponential with jitter


def test_retries_give_up_with_the_vendors_words(tmp_path, make_sandbox):
    sandbox = make_sandbox(faults="always-500")
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("zendesk",), max_retries=2))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-callreports: error: zendesk_job_statuses: gave up after 3 attempts: 500 ")
    assert "GET /api/v2/job_statuses" in last and "message=Upstream trouble" in last
    assert len(sandbox.app.events("request")) == 3


def test_fatal_4xx_carries_code_message_and_fields(sandbox):
    from tap_callreports.tap import TapCallReports

    tap = TapCallReports(config=sandbox_config(sandbox, vendors=("talkdesk",)))
    stream = tap.streams["talkdesk_calls"]
    with pytest.raises(FatalAPIError) as caught:
        stream.send("POST", f"{sandbox.url}/data/reports/weather/jobs", json={"name": "x"})
    message = str(caught.value)
    assert message.startswith("400 BAD REQUEST for POST /data/reports/weather/jobs: code=0000400")
    assert "message=Report type is invalid" in message and "fields=type ('weather' is not a report type)" in message


def test_zendesk_pauses_before_its_rate_limit(make_sandbox):
    sandbox = make_sandbox(job_statuses_count=700, zendesk_rate_limit=3, zendesk_rate_window_seconds=1)
    run = sync(sandbox_config(sandbox, vendors=("zendesk",)))
    assert run.error is None, run.error
    assert len(run.records("zendesk_job_statuses")) == 700
    assert sandbox.app.events("rate_limited") == []  # never spent a 429


# ---- tokens --------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_and_the_run_completes(make_sandbox):
    sandbox = make_sandbox(faults="token-expiry")
    run = sync(sandbox_config(sandbox, vendors=("talkdesk",)), streams=["talkdesk_calls"])
    assert run.error is None, run.error
    revoked = [k for k, _ in sandbox.app.faults.injected if k == "token-revoked"]
    assert len(revoked) >= 2
    assert len(sandbox.app.events("token_issued")) == len(revoked) + 1


def test_401s_on_every_fresh_token_are_fatal_after_a_bounded_retry(tmp_path, make_sandbox):
    from tap_callreports.sandbox.faults import PROFILES, FaultProfile

    PROFILES["every-token-dies"] = FaultProfile("every-token-dies", token_revoke_every=1)
    try:
        sandbox = make_sandbox(faults="every-token-dies")
        run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("talkdesk",)), catalog=None)
    finally:
        del PROFILES["every-token-dies"]
    # run_cli is a subprocess: its sandbox is this process's, with the profile registered above.
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert "401 Unauthorized" in last and "talkdesk_client_id" in last
    assert "fresh token(s) in a row were refused before any request succeeded" in last
    # the first token and twice max_retries (5) fresh ones, give or take one a thread fetched meanwhile
    assert 11 <= len(sandbox.app.events("token_issued")) <= 13  # noqa: PLR2004


def test_myreports_401_says_token_missing_or_expired(tmp_path, sandbox):
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("myreports",), myreports_token="expired-jwt-0000"))
    assert run.returncode == 1
    last = run.stderr_lines[-1]
    assert "myreports_call_rows: 401 Unauthorized" in last and "token is missing or expired" in last
    assert "expired-jwt-0000" not in run.stdout + run.stderr  # type: ignore[attr-defined]


# ---- malformed bodies ------------------------------------------------------------------------------


def test_truncated_talkdesk_file_is_a_clear_error(tmp_path, make_sandbox):
    sandbox = make_sandbox(faults="malformed")
    run = run_cli(
        tmp_path,
        sandbox_config(sandbox, vendors=("talkdesk",)),
        catalog=catalog_selecting(sandbox_config(sandbox, vendors=("talkdesk",)), ["talkdesk_calls"]),
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-callreports: error: talkdesk_calls: the result of job ")
    assert "/data/reports/calls/files/" in last and "malformed JSON" in last and "near byte" in last
    assert not any(
        "talkdesk_calls" in s.get("bookmarks", {}) and s["bookmarks"]["talkdesk_calls"].get("replication_key_value")
        for s in run.states
    )


def test_malformed_page_names_stream_path_and_position(sandbox, monkeypatch):
    from tap_callreports.errors import MalformedBodyError
    from tap_callreports.responses import json_body

    response = requests.Response()
    response._content = b'{"job_statuses": [{"id": "a"}, {"id": ]}'
    response.url = f"{sandbox.url}/api/v2/job_statuses?page%5Bsize%5D=100"
    response.request = requests.Request("GET", response.url).prepare()
    with pytest.raises(MalformedBodyError) as caught:
        json_body(response, "zendesk_job_statuses")
    position = response._content.index(b"]")  # the value that is missing
    assert str(caught.value).startswith(
        f"zendesk_job_statuses: malformed JSON in the response to GET /api/v2/job_statuses at byte {position} ("
    )


# ---- secrets ---------------------------------------------------------------------------------------


def test_no_secret_in_logs_even_at_debug(tmp_path, make_sandbox):
    sandbox = make_sandbox(faults="heavy", talkdesk_file_redirect="always", slow_seconds=0.6)
    config = sandbox_config(sandbox, request_timeout_seconds=0.4, max_retries=6, myreports_report_ids=[LONDON_REPORT])
    run = run_cli(tmp_path, config, env={"TAP_CALLREPORTS_LOG_LEVEL": "debug", "LOGLEVEL": "DEBUG"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG" in run.stderr
    secrets = list(SANDBOX_SECRETS)
    secrets += [e["token"] for e in sandbox.app.events("token_issued")]
    secrets += [e["signature"] for e in sandbox.app.events("file_redirect")]
    import base64

    secrets.append(base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode())
    secrets.append(base64.b64encode(b"agent@example.com/token:sandbox-zendesk-token").decode())
    assert len(secrets) > 10
    output = run.stdout + run.stderr  # type: ignore[attr-defined]
    leaked = [s for s in secrets if s in output]
    assert leaked == []
    about = run_cli(tmp_path, config, "--about")
    assert not [s for s in SANDBOX_SECRETS if s in about.stdout + about.stderr]  # type: ignore[attr-defined]


# ---- whole runs under faults --------------------------------------------------------------------------

ALL_STREAMS = [
    "talkdesk_imports",
    "talkdesk_calls",
    "talkdesk_user_status",
    "zendesk_job_statuses",
    "myreports_call_rows",
]
ORIGIN_IDS = ("report_job_id", "request_id")
# A resumed run re-reads its lookback: a row read again carries the re-read window (and replaces
# itself by key); the vendor's fields are what must match.
WINDOW_LABELS = ("report_window_start", "report_window_end")


def comparable(run, also_without: tuple[str, ...] = ()) -> dict[str, collections.Counter]:
    """Per stream, rows as hashable text without the per-run job/request ids (and `also_without`)."""
    out = {}
    left_out = (*ORIGIN_IDS, *also_without)
    for stream in ALL_STREAMS:
        rows = [{k: v for k, v in r.items() if k not in left_out} for r in run.records(stream)]
        # links embed the sandbox's address, which differs between sandboxes
        out[stream] = collections.Counter(
            re.sub(r"http://127\.0\.0\.1:\d+", "SANDBOX", json.dumps(r, sort_keys=True)) for r in rows
        )
    return out


def heavy_config(sandbox):
    return sandbox_config(
        sandbox,
        talkdesk_report_types=["calls", "user_status"],
        myreports_report_ids=[LONDON_REPORT, NEW_YORK_REPORT],
        start_date="2026-09-29T00:00:00Z",
        end_date="2026-10-03T00:00:00Z",
        request_timeout_seconds=0.5,
        max_retries=6,
        job_max_attempts=3,
    )


def test_heavy_faults_give_the_clean_run(make_sandbox):
    clean_box = make_sandbox(seed=3, list_anchor="2026-10-02T00:00:00Z")
    clean = sync(heavy_config(clean_box))
    assert clean.error is None, clean.error
    faulty_box = make_sandbox(seed=3, list_anchor="2026-10-02T00:00:00Z", faults="heavy", slow_seconds=0.7)
    faulty = sync(heavy_config(faulty_box))
    assert faulty.error is None, faulty.error
    kinds = collections.Counter(kind for kind, _ in faulty_box.app.faults.injected)
    assert kinds["request"] >= 20 and kinds["cut"] >= 1 and kinds["job-failed"] >= 1 and kinds["token-revoked"] >= 1
    clean_rows, faulty_rows = comparable(clean), comparable(faulty)
    for stream in ALL_STREAMS:
        assert sum(clean_rows[stream].values()) > 0, stream
        assert faulty_rows[stream] == clean_rows[stream], stream
    assert faulty.final_state == clean.final_state


def _killed_run(config: dict, state: dict | None, kill_after: int, tmp: Path) -> tuple[list[dict], bool]:
    """Run the CLI; SIGKILL it after `kill_after` RECORD lines; return the complete lines it wrote."""
    (tmp / "config.json").write_text(json.dumps(config))
    argv = [sys.executable, "-m", "tap_callreports", "--config", str(tmp / "config.json")]
    if state:
        (tmp / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(tmp / "state.json")]
    messages, records, killed = [], 0, False
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy()) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith(b"\n"):
                break  # cut mid-line by the kill: a target would not have it either
            message = json.loads(line)
            messages.append(message)
            if message["type"] == "RECORD":
                records += 1
                if records == kill_after and not killed:
                    proc.send_signal(signal.SIGKILL)
                    killed = True
        proc.wait(timeout=60)
    return messages, killed


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_killed_runs_resume_without_gaps(tmp_path, make_sandbox, seed):
    sandbox = make_sandbox(seed=3, list_anchor="2026-10-02T00:00:00Z")
    config = heavy_config(sandbox) | {"request_timeout_seconds": 30}
    clean = sync(config)
    total = sum(len(clean.records(s)) for s in ALL_STREAMS)
    rng = random.Random(seed)
    union: list[dict] = []
    state, kills = None, 0
    for _attempt in range(6):
        messages, killed = _killed_run(config, state, rng.randint(1, total), tmp_path)
        union.extend(messages)
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        state = states[-1] if states else state
        kills += killed
        if not killed:
            break
    else:
        pytest.fail("the tap never finished")
    assert kills >= 1
    from helpers import TapRun

    resumed = comparable(TapRun(messages=union), WINDOW_LABELS)
    expected = comparable(clean, WINDOW_LABELS)
    for stream in ALL_STREAMS:
        assert set(resumed[stream]) == set(expected[stream]), stream  # nothing missing, nothing invented


def test_sigterm_exits_non_zero_with_state_that_resumes(tmp_path, make_sandbox):
    sandbox = make_sandbox(job_polls=3)
    config = sandbox_config(
        sandbox,
        vendors=("talkdesk",),
        end_date="2026-10-09T00:00:00Z",
        job_poll_interval_seconds=0.2,
        job_poll_max_interval_seconds=0.2,
        max_concurrent_jobs=1,
        talkdesk_lookback_minutes=0,
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    with subprocess.Popen(
        [sys.executable, "-m", "tap_callreports", "--config", str(tmp_path / "config.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        messages = []
        for line in proc.stdout:
            messages.append(json.loads(line))
            bookmark = messages[-1].get("value", {}).get("bookmarks", {}).get("talkdesk_calls", {})
            if messages[-1]["type"] == "STATE" and bookmark.get("replication_key_value"):  # a window is done
                proc.send_signal(signal.SIGTERM)
                break
        messages += [json.loads(line) for line in proc.stdout]
        stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1].startswith("tap-callreports: error: stopped by signal 15")
    last_state = [m["value"] for m in messages if m["type"] == "STATE"][-1]
    resumed = sync(config, state=last_state, streams=["talkdesk_calls"])
    assert resumed.error is None
    bookmark = last_state["bookmarks"]["talkdesk_calls"]["replication_key_value"]
    assert all(r["report_window_start"] >= bookmark for r in resumed.records("talkdesk_calls"))


def test_a_signal_during_logging_is_not_swallowed(sandbox):
    """The signal handler raises wherever the main thread is; logging's emit catches Exception."""
    import logging

    from tap_callreports.errors import TerminatedBySignal
    from tap_callreports.tap import TapCallReports

    tap = TapCallReports(config=sandbox_config(sandbox, vendors=("zendesk",)))

    class SignalArrivesHere(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                tap._handle_termination(signal.SIGTERM, None)
            except Exception:  # noqa: BLE001 - what logging.Handler.handleError's callers do
                self.handleError(record)

    logger = logging.getLogger("signal-during-logging")
    logger.addHandler(SignalArrivesHere())
    with pytest.raises(TerminatedBySignal) as caught:
        logger.warning("a log line while SIGTERM arrives")
    assert caught.value.signum == signal.SIGTERM


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Rate-Limit-Remaining": "1", "ratelimit-reset": "0"}, [0.0]),  # the window just reset: go on
        ({"X-Rate-Limit-Remaining": "1", "ratelimit-reset": "3"}, [3.0]),
        ({"X-Rate-Limit-Remaining": "0"}, [60.0]),  # no reset header: a whole window
        ({"X-Rate-Limit-Remaining": "2", "ratelimit-reset": "3"}, []),  # above the floor: no pause
    ],
)
def test_zendesk_rate_limit_pause(sandbox, headers, expected):
    from tap_callreports.tap import TapCallReports

    stream = TapCallReports(config=sandbox_config(sandbox, vendors=("zendesk",))).streams["zendesk_job_statuses"]
    response = requests.Response()
    response.headers.update(headers)
    stream.answered(response)  # no sleep while an answer is handled: the next request waits
    assert stream.account_pacer.delay() == pytest.approx(expected[0] if expected else 0.0, abs=0.5)


def test_each_retry_is_logged_once(tmp_path, make_sandbox):
    sandbox = make_sandbox(faults="always-500")
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("zendesk",), max_retries=2))
    assert run.returncode == 1
    retries = [line for line in run.stderr_lines if "retrying in" in line or "Backing off" in line]
    assert len(retries) == 2, retries  # 3 attempts: 2 retries, one line each
