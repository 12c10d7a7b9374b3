"""Every answer shape the vendor docs allow (sandbox/shapes.py), over real HTTP: the tap's records
equal the plain sandbox's -- every row, none twice -- or, where an answer is unusable, the run
stops with one line and a bookmark that has not moved, and a resumed run then completes."""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import re
import typing as t
from zoneinfo import ZoneInfo

import pytest

from helpers import TapRun, landed_calls_row, run_cli, sandbox_config, sync
from tap_callreports.sandbox import RunningSandbox, SandboxConfig, start_sandbox

UTC = dt.UTC
DAYS = ("2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", "2026-10-03T00:00:00Z", "2026-10-04T00:00:00Z")
# Fields the tap adds to a vendor row: they name a job or request, which differs between runs.
ADDED = {
    "talkdesk_calls": {"report_job_id", "report_window_start", "report_window_end"},
    "talkdesk_audit_logs": {"report_job_id", "report_window_start", "report_window_end"},
    "myreports_call_rows": {"request_id"},
    "talkdesk_imports": set(),
    "zendesk_job_statuses": set(),
}
SANDBOX_URL = re.compile(r"http://(127\.0\.0\.1|localhost):\d+")


# ---- one kind of run per vendor: the sandbox it needs, its config, its stream ------------------------


class Kind(t.NamedTuple):
    box: dict[str, t.Any]
    config: t.Callable[[RunningSandbox], dict]
    stream: str


KINDS = {
    "talkdesk": Kind({}, lambda sb: sandbox_config(sb, vendors=("talkdesk",)), "talkdesk_calls"),
    "myreports": Kind({}, lambda sb: sandbox_config(sb, vendors=("myreports",)), "myreports_call_rows"),
    # 23 imports in pages of 5: 5, 5, 5, 5, 3
    "imports": Kind(
        {"imports_count": 23, "list_anchor": "2026-10-02T00:00:00Z"},
        lambda sb: sandbox_config(
            sb, vendors=("talkdesk",), talkdesk_page_size=5, start_date="2025-01-01T00:00:00Z", end_date=None
        ),
        "talkdesk_imports",
    ),
}


def kind_of(shape: str) -> str:
    return "imports" if shape.startswith("imports-") else shape.split("-")[0]


def rows(run: TapRun, stream: str) -> collections.Counter[str]:
    """The stream's records as comparable text: without the fields the tap adds, with the
    sandbox's address (it differs between sandboxes) masked."""
    out: collections.Counter[str] = collections.Counter()
    for record in run.records(stream):
        vendor = {k: v for k, v in record.items() if k not in ADDED[stream]}
        out[SANDBOX_URL.sub("SANDBOX", json.dumps(vendor, sort_keys=True))] += 1
    return out


def assert_same_records(run: TapRun, plain: TapRun, stream: str) -> None:
    expected = rows(plain, stream)
    assert sum(expected.values()) > 10, "the plain run must have rows to compare"
    got = rows(run, stream)
    assert got == expected, (
        f"{stream}: {sum((expected - got).values())} row(s) missing, {sum((got - expected).values())} extra or twice"
    )
    key = run.schemas()[stream]["key_properties"]  # the stream's own primary key, when it has one
    keys = [tuple(r[k] for k in key) for r in run.records(stream)]
    assert len(keys) == len(set(keys)), f"{stream}: a key ({', '.join(key)}) twice"


def plain_runs(kinds: t.Mapping[str, Kind]) -> t.Iterator[t.Callable[[str], TapRun]]:
    """The plain sandbox's run of each kind, made once and kept (a module fixture's body)."""
    runs: dict[str, TapRun] = {}
    boxes: list[RunningSandbox] = []

    def get(kind: str) -> TapRun:
        if kind not in runs:
            spec = kinds[kind]
            boxes.append(start_sandbox(SandboxConfig(**spec.box)))
            runs[kind] = sync(spec.config(boxes[-1]), streams=[spec.stream])
            assert runs[kind].error is None, runs[kind].error
        return runs[kind]

    yield get
    for box in boxes:
        box.stop()


@pytest.fixture(scope="module")
def plain() -> t.Iterator[t.Callable[[str], TapRun]]:
    """The plain sandbox's run of each kind, made once for the module."""
    yield from plain_runs(KINDS)


def faults(sandbox: RunningSandbox, fault: str) -> list[dict]:
    return [e for e in sandbox.app.events("fault") if e["fault"] == fault]


# ---- shapes that change nothing in the records -------------------------------------------------------

# shape -> what in the sandbox's event log shows the shape was met (None: the body itself changed)
SAME_RECORDS: dict[str, t.Callable[[RunningSandbox], bool] | None] = {
    "talkdesk-bare-array": None,
    "talkdesk-total-first": None,
    "talkdesk-status-upper": None,
    "talkdesk-files-404-once": lambda sb: len(faults(sb, "file-404")) >= 3,  # noqa: PLR2004 - one per job
    "myreports-request-after-data": None,
    "myreports-data-enveloped": None,
    "myreports-status-upper": None,
    "myreports-error-envelope-once": lambda sb: len(faults(sb, "error-envelope")) >= 3,  # noqa: PLR2004
    "imports-next-without-per-page": None,
    "imports-next-missing": None,
    "imports-next-repeated": None,
}


@pytest.mark.parametrize("shape", list(SAME_RECORDS))
def test_shape_gives_the_plain_records(make_sandbox, plain, shape):
    spec = KINDS[kind_of(shape)]
    sandbox = make_sandbox(shapes=(shape,), **spec.box)
    run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert_same_records(run, plain(kind_of(shape)), spec.stream)
    shown = SAME_RECORDS[shape]
    assert shown is None or shown(sandbox), f"the sandbox never answered with {shape}"
    assert run.final_state == plain(kind_of(shape)).final_state


@pytest.mark.parametrize("shape", ["talkdesk-total-short-once", "myreports-count-short-once"])
def test_a_short_result_is_read_again_then_made_again(make_sandbox, plain, caplog, shape):
    spec = KINDS[kind_of(shape)]
    sandbox = make_sandbox(shapes=(shape,), **spec.box)
    with caplog.at_level(logging.WARNING):
        run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert_same_records(run, plain(kind_of(shape)), spec.stream)
    created = collections.Counter(e["start"] for e in sandbox.app.events("job_created"))
    # MyReports asks each window after the first from the lookback (120 min) before it: calls over its start
    overlap = dt.timedelta(minutes=120 if shape.startswith("myreports") else 0)
    starts = [dt.datetime.fromisoformat(d.replace("Z", "+00:00")) for d in DAYS[:-1]]
    assert created == {(s - overlap if s > starts[0] else s).isoformat(): 2 for s in starts}
    # the first job of each window: downloaded twice (read again), the second once
    first_jobs = {e["job_id"] for e in sandbox.app.events("job_created") if e["attempt"] == 1}
    downloads = collections.Counter(e["job_id"] for e in sandbox.app.events("file_download"))
    assert {downloads[j] for j in first_jobs} == {2}
    assert sum(downloads.values()) == 3 * len(first_jobs)
    # every incomplete result is said, with both counts
    text = caplog.text
    for ready in sandbox.app.events("file_ready"):
        if ready["job_id"] in first_jobs:
            read = ready["rows"]
            stated = ready.get("total", read + 1)  # Talkdesk's total counts the row left out
            assert f"is incomplete: it holds {read:,} rows but says" in text
            assert f"({read:,} rows read, vendor says {stated:,})" in text


# ---- a credential never goes to another host ---------------------------------------------------------


def test_a_location_on_another_host_gets_no_credential(make_sandbox, plain):
    sandbox = make_sandbox(shapes=("talkdesk-location-other-host",))
    run = sync(KINDS["talkdesk"].config(sandbox), streams=["talkdesk_calls"])
    assert run.error is None, run.error
    assert_same_records(run, plain("talkdesk"), "talkdesk_calls")
    api_host = sandbox.url.removeprefix("http://")
    seen = sandbox.app.events("auth_seen")
    foreign = [e for e in seen if e["host"] != api_host]
    jobs = sandbox.app.events("job_created")
    assert len(foreign) >= len(jobs) == 3  # each file came from the other host...
    assert {e["via"] for e in sandbox.app.events("file_download")} == {"signed-url"}
    assert [e for e in foreign if e["authorization"]] == []  # ...and not one request there carried a token
    assert all(e["authorization"] for e in seen if e["host"] == api_host and not e["path"].startswith("/oauth/"))


# ---- unusable answers: a loud stop, the bookmark unmoved, then a resumed run completes ---------------


def error_lines(run: TapRun) -> list[str]:
    return [line for line in run.stderr_lines if line.startswith("tap-callreports: error:")]


def myreports_bookmarks(run: TapRun) -> list[str]:
    return [
        p["replication_key_value"]
        for s in run.states
        for p in s.get("bookmarks", {}).get("myreports_call_rows", {}).get("partitions", [])
        if p.get("replication_key_value")
    ]


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ("myreports-error-envelope-always", ("stayed incomplete", "no 'data' row list")),
        ("myreports-no-timezone", ("names no time zone (request.timeZoneId)",)),
    ],
)
def test_an_unusable_result_stops_loudly_and_a_resumed_run_completes(tmp_path, make_sandbox, plain, shape, says):
    sandbox = make_sandbox(shapes=(shape,))
    config = KINDS["myreports"].config(sandbox)
    stopped = run_cli(tmp_path, config)
    assert stopped.returncode == 1
    assert "Traceback" not in stopped.stderr
    lines = error_lines(stopped)
    assert len(lines) == 1, stopped.stderr[-3000:]
    line = lines[0]
    assert line == stopped.stderr_lines[-1]
    assert line.startswith("tap-callreports: error: myreports_call_rows: ")
    assert any(word in line for word in says), line
    assert "2026-10-01T00:00:00Z..2026-10-02T00:00:00Z" in line  # the window
    assert myreports_bookmarks(stopped) == []  # no window committed
    assert stopped.records("myreports_call_rows") == []  # nothing of a result that cannot be trusted
    # The vendor is fixed: the run resumed from the last STATE gives every row.
    fixed = make_sandbox()
    resumed = sync(KINDS["myreports"].config(fixed), state=stopped.final_state, streams=["myreports_call_rows"])
    assert resumed.error is None, resumed.error
    union = TapRun(messages=stopped.messages + resumed.messages)
    assert_same_records(union, plain("myreports"), "myreports_call_rows")
    assert myreports_bookmarks(resumed)[-1] == DAYS[-1]


# ---- the Talkdesk timespan is right under either reading of the doc, across DST ----------------------


@pytest.mark.parametrize(
    ("tz", "start", "end"),
    [
        ("Europe/Lisbon", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z"),  # WEST -> WET, 01:00 UTC on Oct 25
        ("America/New_York", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z"),  # EDT -> EST, 06:00 UTC on Nov 1
        ("Europe/Lisbon", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z"),  # WET -> WEST, 01:00 UTC on Mar 29
        # Every boundary at 01:30 Lisbon time; on Oct 25 that wall time happens twice and end_date is
        # its second occurrence: a wall time read as the first would end the run an hour early.
        ("Europe/Lisbon", "2026-10-22T01:30:00Z", "2026-10-25T01:30:00Z"),
    ],
)
@pytest.mark.parametrize("reading", ["offset", "wall"])
def test_talkdesk_windows_are_right_under_either_reading(make_sandbox, tz, start, end, reading):
    sandbox = make_sandbox(shapes=("talkdesk-timespan-wall",) if reading == "wall" else ())
    config = sandbox_config(
        sandbox,
        vendors=("talkdesk",),
        talkdesk_report_timezone=tz,
        talkdesk_window_days=1,
        start_date=start,
        end_date=end,
    )
    run = sync(config, streams=["talkdesk_calls"])
    assert run.error is None, run.error
    begin, finish = (dt.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (start, end))
    bookmark = dt.datetime.fromisoformat(
        run.final_state["bookmarks"]["talkdesk_calls"]["replication_key_value"].replace("Z", "+00:00")
    )
    # The windows the sandbox understood (UTC instants): consecutive, from start_date to the bookmark,
    # which is end_date or, when end_date is a repeated wall time, at most a few hours before it.
    windows = sorted(
        (dt.datetime.fromisoformat(e["start"]), dt.datetime.fromisoformat(e["end"]))
        for e in sandbox.app.events("job_created")
    )
    assert len(windows) >= 3  # noqa: PLR2004 - one a day at least
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:])), windows
    assert windows[0][0] == begin and windows[-1][1] == bookmark
    assert finish - dt.timedelta(hours=3) <= bookmark <= finish
    if "01:30" not in end:
        assert bookmark == finish
    # Every call of [start_date, bookmark) once, and no other.
    truth = sandbox.app.data.talkdesk_rows("calls", begin, bookmark, ZoneInfo(tz), dt.datetime.now(UTC))
    # as the tap lands calls rows: empty text null in every format (docs/talkdesk-report-rows.md)
    expected = collections.Counter(json.dumps(landed_calls_row(r), sort_keys=True) for r in truth)
    assert sum(expected.values()) > 50  # noqa: PLR2004
    got = rows(run, "talkdesk_calls")
    assert got == expected, f"{sum((expected - got).values())} missing, {sum((got - expected).values())} extra"


# ---- token endpoints: under the retry policy ---------------------------------------------------------

ALL_STREAMS = ["talkdesk_imports", "talkdesk_calls", "zendesk_job_statuses", "myreports_call_rows"]


def refreshing(config: dict, sandbox: RunningSandbox) -> dict:
    """MyReports through its OAuth2 refresh grant instead of a static token."""
    config = {k: v for k, v in config.items() if k != "myreports_token"}
    return config | {
        "myreports_refresh_token": "sandbox-myreports-refresh",
        "myreports_client_id": "sandbox-myreports-client",
        "myreports_client_secret": "sandbox-myreports-secret",
        "myreports_token_url": f"{sandbox.url}/myreports/oauth/token",
    }


# Imports are spread over the 30 days before the anchor: 300 put a score in a three-day run.
FULL_BOX = {"imports_count": 300, "list_anchor": "2026-10-03T00:00:00Z"}


def full_config(sandbox: RunningSandbox, **overrides: t.Any) -> dict:
    return refreshing(sandbox_config(sandbox, talkdesk_page_size=20, **overrides), sandbox)


def test_a_token_endpoint_that_fails_first_is_retried(make_sandbox):
    clean = sync(full_config(make_sandbox(**FULL_BOX)), streams=ALL_STREAMS)
    assert clean.error is None, clean.error
    sandbox = make_sandbox(shapes=("token-fault-first",), **FULL_BOX)
    run = sync(full_config(sandbox), streams=ALL_STREAMS)
    assert run.error is None, run.error
    assert {e["path"] for e in faults(sandbox, "503")} == {"/oauth/token", "/myreports/oauth/token"}
    assert sandbox.app.events("myreports_token_issued")  # MyReports went through the refresh grant
    for stream in ALL_STREAMS:
        assert_same_records(run, clean, stream)
    assert run.final_state == clean.final_state


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_heavy_faults_with_failing_token_endpoints_give_the_clean_run(make_sandbox, seed):
    box = FULL_BOX | {"seed": seed}
    settings = {
        "start_date": "2026-09-30T00:00:00Z",
        "end_date": "2026-10-03T00:00:00Z",
        "request_timeout_seconds": 0.5,
        "max_retries": 6,
        "job_max_attempts": 3,
    }
    clean = sync(full_config(make_sandbox(**box), **settings), streams=ALL_STREAMS)
    assert clean.error is None, clean.error
    sandbox = make_sandbox(faults="heavy", slow_seconds=0.7, shapes=("token-fault-first",), **box)
    run = sync(full_config(sandbox, **settings), streams=ALL_STREAMS)
    assert run.error is None, run.error
    token_faults = {e["path"] for e in sandbox.app.events("fault") if e["path"].endswith("/oauth/token")}
    assert token_faults == {"/oauth/token", "/myreports/oauth/token"}
    kinds = collections.Counter(kind for kind, _ in sandbox.app.faults.injected)
    # (Whether a body is cut depends on the random job ids: test_reliability's heavy test covers cuts.)
    assert kinds["request"] >= 10 and kinds["token-revoked"] >= 1, kinds  # noqa: PLR2004
    for stream in ALL_STREAMS:
        assert_same_records(run, clean, stream)
    assert run.final_state == clean.final_state


@pytest.mark.parametrize(
    "shapes",
    [
        ("myreports-error-envelope-once", "myreports-count-short-once"),  # nothing out, then one row short
    ],
)
def test_two_faults_in_a_row_still_give_every_row_once(make_sandbox, shapes):
    plain = make_sandbox(seed=2)
    sandbox = make_sandbox(seed=2, shapes=shapes)
    config = {"end_date": "2026-10-02T00:00:00Z"}
    expected = sync(sandbox_config(plain, vendors=("myreports",), **config), streams=["myreports_call_rows"])
    run = sync(sandbox_config(sandbox, vendors=("myreports",), **config), streams=["myreports_call_rows"])
    assert run.error is None, run.error
    keys = [r["doc_id"] for r in run.records("myreports_call_rows")]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted(r["doc_id"] for r in expected.records("myreports_call_rows"))
