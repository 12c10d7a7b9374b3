"""Vendor answers beyond the documented happy path (issue 18), over real HTTP against the sandbox:
each named shape gives the plain sandbox's records -- every row, none twice -- or, where no
correct answer exists, one line, exit 1 and an unmoved bookmark; a resumed run then completes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import typing as t

import pytest
from test_shapes import DAYS, Kind, assert_same_records, error_lines, faults, plain_runs

from helpers import TapRun, catalog_selecting, run_cli, sandbox_config, sync
from tap_callreports.sandbox import RunningSandbox


def _talkdesk(fmt: str, **more: t.Any) -> t.Callable[[RunningSandbox], dict]:
    return lambda sb: sandbox_config(sb, vendors=("talkdesk",), talkdesk_report_format=fmt, **more)


KINDS = {
    "talkdesk-csv": Kind({}, _talkdesk("csv"), "talkdesk_calls"),
    "talkdesk-json": Kind({}, _talkdesk("json"), "talkdesk_calls"),
    "talkdesk-json-bulk": Kind({}, _talkdesk("json_bulk"), "talkdesk_calls"),
    # a report type whose columns the tap does not know (no layout evidenced)
    "talkdesk-csv-undeclared": Kind({}, _talkdesk("csv", talkdesk_report_types=["audit_logs"]), "talkdesk_audit_logs"),
    # every file through a signed link
    "talkdesk-signed": Kind({"talkdesk_file_redirect": "always"}, _talkdesk("csv"), "talkdesk_calls"),
    "myreports": Kind({}, lambda sb: sandbox_config(sb, vendors=("myreports",)), "myreports_call_rows"),
}


@pytest.fixture(scope="module")
def plain() -> t.Iterator[t.Callable[[str], TapRun]]:
    """The plain sandbox's run of each kind, made once for the module."""
    yield from plain_runs(KINDS)


def talkdesk_bookmarks(run: TapRun, stream: str = "talkdesk_calls") -> list[str]:
    return [
        s["bookmarks"][stream]["replication_key_value"]
        for s in run.states
        if s.get("bookmarks", {}).get(stream, {}).get("replication_key_value")
    ]


# ---- an answer is the report only when it says so; short-lived links are asked for afresh ----------

#: shape -> (kind, the fault the sandbox logs each time it answers so (None: the answer itself
#: changed), at least how often)
SAME_RECORDS: dict[str, tuple[str, str | None, int]] = {
    "talkdesk-file-not-ready-once": ("talkdesk-csv", "talkdesk-file-not-ready-once", 3),
    "talkdesk-file-html-once": ("talkdesk-csv", "talkdesk-file-html-once", 3),
    "talkdesk-file-json-error-once": ("talkdesk-csv", "talkdesk-file-json-error-once", 3),
    # the same answers for a JSON report: an error body is no report in any format
    "talkdesk-file-html-once/json": ("talkdesk-json", "talkdesk-file-html-once", 3),
    "talkdesk-file-not-ready-once/json": ("talkdesk-json", "talkdesk-file-not-ready-once", 3),
    # a line of status text is a CSV header, and nothing at all an empty CSV or ndjson
    "talkdesk-file-text-once": ("talkdesk-csv", "talkdesk-file-text-once", 3),
    "talkdesk-file-text-once/undeclared": ("talkdesk-csv-undeclared", "talkdesk-file-text-once", 3),
    "talkdesk-file-text-once/json_bulk": ("talkdesk-json-bulk", "talkdesk-file-text-once", 3),
    "talkdesk-file-empty-once": ("talkdesk-csv", "talkdesk-file-empty-once", 3),
    "talkdesk-file-empty-once/json_bulk": ("talkdesk-json-bulk", "talkdesk-file-empty-once", 3),
    "talkdesk-signed-url-expired-once": ("talkdesk-signed", "link-expired", 3),
    # ids from wherever the vendor puts them
    "talkdesk-create-location-only": ("talkdesk-json", None, 0),
    "myreports-create-location-only": ("myreports", None, 0),
    # open status vocabularies
    "talkdesk-status-words": ("talkdesk-json", None, 0),
    "talkdesk-status-unknown-done": ("talkdesk-json", None, 0),
    "myreports-status-words": ("myreports", None, 0),
    "myreports-status-unknown-done": ("myreports", None, 0),
}


@pytest.mark.parametrize("case", list(SAME_RECORDS))
def test_shape_gives_the_plain_records(make_sandbox, plain, caplog, case):
    kind, fault, at_least = SAME_RECORDS[case]
    spec = KINDS[kind]
    sandbox = make_sandbox(shapes=(case.split("/")[0],), **spec.box)
    with caplog.at_level(logging.WARNING):
        run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert fault is None or len(faults(sandbox, fault)) >= at_least, "the sandbox never answered with the shape"
    assert_same_records(run, plain(kind), spec.stream)
    assert run.final_state == plain(kind).final_state
    unknown = UNKNOWN_WORDS.get(case)
    if unknown:  # said once, with the raw answer
        said = [r.getMessage() for r in caplog.records if "which the tap does not know" in r.getMessage()]
        assert len(said) == 1, said
        assert repr(unknown) in said[0] and unknown in said[0].partition("(")[2], said  # the word, and the answer


#: The one status word each vocabulary shape sends that no table holds.
UNKNOWN_WORDS = {
    "talkdesk-status-words": "Finalizing",
    "talkdesk-status-unknown-done": "Available for download",
    "myreports-status-unknown-done": "Generated",
}


@pytest.mark.parametrize(
    ("shape", "kind", "says"),
    [
        ("talkdesk-file-html-always", "talkdesk-csv", "answered a text/html body"),
        ("talkdesk-file-text-always", "talkdesk-csv", "whose first line names none of the report's columns"),
        ("talkdesk-signed-url-expired-always", "talkdesk-signed", "storage refused its download link"),
    ],
)
def test_no_report_ever_stops_loudly_and_a_resumed_run_completes(tmp_path, make_sandbox, plain, shape, kind, says):
    spec = KINDS[kind]
    sandbox = make_sandbox(shapes=(shape,), **spec.box)
    config = spec.config(sandbox) | {"max_retries": 1, "job_max_attempts": 2}
    stopped = run_cli(tmp_path, config)
    assert stopped.returncode == 1
    assert "Traceback" not in stopped.stderr
    lines = error_lines(stopped)
    assert len(lines) == 1, stopped.stderr[-3000:]
    line = lines[0]
    assert line.startswith(f"tap-callreports: error: {spec.stream}: ")
    assert says in line and "run again" in line, line
    assert "credentials" not in line and "client_id" not in line, line
    assert f"{DAYS[0]}..{DAYS[1]}" in line
    assert talkdesk_bookmarks(stopped) == []  # no window committed
    assert stopped.records(spec.stream) == []  # nothing of a body that is not the report
    fixed = make_sandbox(**spec.box)
    resumed = sync(spec.config(fixed), state=stopped.final_state, streams=[spec.stream])
    assert resumed.error is None, resumed.error
    assert_same_records(TapRun(messages=stopped.messages + resumed.messages), plain(kind), spec.stream)
    assert talkdesk_bookmarks(resumed)[-1] == DAYS[-1]


# ---- a result that may have been cut is treated as cut ---------------------------------------------

LIMITED = {"myreports_row_limit": 40}  # a day holds more: windows are cut


def test_a_result_of_row_limit_rows_without_the_flag_is_split(make_sandbox):
    flagged = make_sandbox(**LIMITED)
    expected = sync(KINDS["myreports"].config(flagged), streams=["myreports_call_rows"])
    assert expected.error is None, expected.error
    assert any(e["exceeded"] for e in flagged.app.events("file_ready")), "no window was cut"
    sandbox = make_sandbox(shapes=("myreports-cut-unflagged",), **LIMITED)
    run = sync(KINDS["myreports"].config(sandbox), streams=["myreports_call_rows"])
    assert run.error is None, run.error
    assert_same_records(run, expected, "myreports_call_rows")
    assert run.final_state == expected.final_state


# ---- empty is a valid answer in every form ----------------------------------------------------------

#: shape -> (the sandbox without rows, the config, the stream)
EMPTY: dict[str, tuple[dict, t.Callable[[RunningSandbox], dict], str]] = {
    "talkdesk-empty-header-only": ({"rows_per_hour": 0}, _talkdesk("csv"), "talkdesk_calls"),
    "talkdesk-empty-no-total": ({"rows_per_hour": 0}, _talkdesk("json"), "talkdesk_calls"),
    "talkdesk-empty-no-entries": ({"rows_per_hour": 0}, _talkdesk("json"), "talkdesk_calls"),
    "myreports-empty-data-null": ({"myreports_rows_per_hour": 0}, KINDS["myreports"].config, "myreports_call_rows"),
    "imports-empty-no-embedded": (
        {"imports_count": 0},
        lambda sb: sandbox_config(sb, vendors=("talkdesk",), start_date="2025-01-01T00:00:00Z", end_date=None),
        "talkdesk_imports",
    ),
}


@pytest.mark.parametrize("shape", list(EMPTY))
def test_a_stated_empty_result_commits_its_windows(make_sandbox, shape):
    box, config, stream = EMPTY[shape]
    reference = sync(config(make_sandbox(**box)), streams=[stream])  # the documented empty answer
    assert reference.error is None, reference.error
    sandbox = make_sandbox(shapes=(shape,), **box)
    run = sync(config(sandbox), streams=[stream])
    assert run.error is None, run.error
    assert run.records(stream) == []
    assert run.final_state == reference.final_state
    if stream != "talkdesk_imports":  # every window committed: the bookmark at end_date
        assert DAYS[-1] in json.dumps(run.final_state["bookmarks"][stream])


# ---- a 401 is judged against the token its request carried ------------------------------------------


def test_a_burst_of_401s_revoking_tokens_that_worked_gives_the_plain_records(make_sandbox):
    ten_days = {"start_date": "2026-09-24T00:00:00Z"}
    expected = sync(KINDS["talkdesk-json"].config(make_sandbox()) | ten_days, streams=["talkdesk_calls"])
    sandbox = make_sandbox(shapes=("talkdesk-401-burst",))
    run = sync(KINDS["talkdesk-json"].config(sandbox) | ten_days, streams=["talkdesk_calls"])
    assert run.error is None, run.error
    revoked = faults(sandbox, "401-burst")
    assert len(revoked) >= 10, "the burst revoked too few tokens to show anything"  # noqa: PLR2004
    assert len(sandbox.app.events("token_issued")) == len(revoked) + 1  # one new token per revoked one
    assert_same_records(run, expected, "talkdesk_calls")
    assert run.final_state == expected.final_state


# ---- lists that move while read are read again -------------------------------------------------------

LISTS = {
    # 23 imports in pages of 5
    "imports": Kind(
        {"imports_count": 23, "list_anchor": "2026-10-02T00:00:00Z"},
        lambda sb: sandbox_config(
            sb, vendors=("talkdesk",), talkdesk_page_size=5, start_date="2025-01-01T00:00:00Z", end_date=None
        ),
        "talkdesk_imports",
    ),
    # 230 job statuses in pages of 100
    "zendesk": Kind(
        {"list_anchor": "2026-10-02T00:00:00Z"},
        lambda sb: sandbox_config(sb, vendors=("zendesk",)),
        "zendesk_job_statuses",
    ),
}


@pytest.mark.parametrize(
    "shape", ["imports-expire-while-read", "imports-move-while-read", "zendesk-complete-while-read"]
)
def test_a_list_that_moves_while_read_is_read_again_to_every_row(make_sandbox, caplog, shape):
    spec = LISTS[shape.split("-")[0]]
    expected = sync(spec.config(make_sandbox(**spec.box)), streams=[spec.stream])
    sandbox = make_sandbox(shapes=(shape,), **spec.box)
    with caplog.at_level(logging.WARNING):
        run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert len(faults(sandbox, shape)) == 1
    keys = [r["id"] for r in run.records(spec.stream)]
    assert len(keys) == len(set(keys))  # none twice (a moved row changed: it goes out in its new form only)
    assert sorted(keys) == sorted(r["id"] for r in expected.records(spec.stream))  # none skipped
    # Entries that left the list shift later ones up: read again in full; a move to the top: the head only.
    again = "reading its head again" if shape.startswith("zendesk") else "reading it again from the first page"
    assert again in caplog.text


COMPLETED_AT_ANCHOR = "Completed at 2026-10-02T00:00:00.000Z"  # a moved job's message (sandbox)


def test_a_list_whose_top_changes_on_every_read_completes_without_reading_it_all_again(tmp_path, make_sandbox):
    """A busy account: a job completes and moves to the top every time the first page is served, so
    page 1 has changed by the end of every read. Only the head is read again; each run ends."""
    spec = LISTS["zendesk"]
    expected = {
        r["id"] for r in sync(spec.config(make_sandbox(**spec.box)), streams=[spec.stream]).records(spec.stream)
    }
    shape = "zendesk-complete-every-read"
    sandbox = make_sandbox(shapes=(shape,), **spec.box)
    state, moves_before = None, 0
    for run_number in (1, 2):
        (tmp_path / str(run_number)).mkdir()
        run = run_cli(tmp_path / str(run_number), spec.config(sandbox), state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        rows = run.records(spec.stream)
        assert {r["id"] for r in rows} >= expected  # every key read, none skipped
        contents = [json.dumps(r, sort_keys=True) for r in rows]
        assert len(contents) == len(set(contents))  # none twice with the same content
        moves = faults(sandbox, shape)
        # Every move before this run's last read of page 1 went out in its new form (the one after it
        # is the next run's, as any change after a run is).
        due = {e["id"] for e in moves[max(moves_before - 1, 0) : -1]}
        assert due and {r["id"] for r in rows if r.get("message") == COMPLETED_AT_ANCHOR} >= due
        moves_before = len(moves)
        state = run.final_state
    starts = [p["start"] for p in sandbox.app.events("zendesk_page")]
    assert starts.count(200) == 2  # the last page once per run: the list was never read again in full


# ---- a paging link to another host of the same vendor --------------------------------------------------


def test_a_next_link_on_the_vendors_canonical_host_is_read_on_the_configured_host(make_sandbox):
    spec = LISTS["zendesk"]
    expected = sync(spec.config(make_sandbox(**spec.box)), streams=[spec.stream])
    sandbox = make_sandbox(shapes=("zendesk-next-canonical-host",), **spec.box)
    run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert [r["id"] for r in run.records(spec.stream)] == [r["id"] for r in expected.records(spec.stream)]
    pages = sandbox.app.events("zendesk_page")
    assert [p["start"] for p in pages] == [0, 100, 200, 0]  # the cursor followed, then page 1 again
    seen = [e for e in sandbox.app.events("auth_seen") if e["path"].startswith("/api/v2/")]
    assert seen and all(e["authorization"] for e in seen)  # on the configured host, with the credentials


def stopped_once(tmp_path, spec: Kind, sandbox: RunningSandbox) -> tuple[TapRun, str]:
    """The CLI run against `sandbox`: exit 1, no traceback, and its one error line."""
    stopped = run_cli(tmp_path, spec.config(sandbox))
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    lines = error_lines(stopped)
    assert len(lines) == 1, stopped.stderr[-3000:]
    return stopped, lines[0]


def test_a_next_link_to_a_foreign_host_stops_without_sending_credentials(tmp_path, make_sandbox):
    spec = LISTS["zendesk"]
    sandbox = make_sandbox(shapes=("zendesk-next-foreign-host",), **spec.box)
    stopped, line = stopped_once(tmp_path, spec, sandbox)
    assert line.startswith(
        "tap-callreports: error: zendesk_job_statuses: the vendor's paging link points to another host (localhost:"
    ), line
    assert "sends no credentials there" in line and "zendesk_api_url" in line and "run again" in line
    api_host = sandbox.url.removeprefix("http://")
    assert [e for e in sandbox.app.events("auth_seen") if e["host"] != api_host] == []  # never asked there
    fixed = make_sandbox(**spec.box)
    resumed = sync(spec.config(fixed), state=stopped.final_state, streams=[spec.stream])
    assert resumed.error is None, resumed.error
    assert len(resumed.records(spec.stream)) == 230  # noqa: PLR2004 - the whole list


# ---- readings the docs leave open: the dateFilter in the report's own zone ------------------------------


def test_a_filter_read_as_wall_time_in_the_reports_zone_gives_the_plain_records(make_sandbox, plain):
    sandbox = make_sandbox(shapes=("myreports-filter-wall-time",))
    config = KINDS["myreports"].config(sandbox) | {"myreports_lookback_minutes": 0}  # no row read twice
    first = sync(config | {"end_date": DAYS[2]}, streams=["myreports_call_rows"])
    assert first.error is None, first.error
    # Before a result named the zone, filters went out in UTC: those London requests were read an hour
    # off and asked again in Europe/London; the zone is kept in the STATE.
    created = sandbox.app.events("job_created")
    assert len(created) > 2  # noqa: PLR2004 - two windows, at least one asked again
    assert json.dumps(first.final_state).count('"report_timezone": "Europe/London"') == 1
    before = len(created)
    resumed = sync(config, state=first.final_state, streams=["myreports_call_rows"])
    assert resumed.error is None, resumed.error
    assert len(sandbox.app.events("job_created")) == before + 1  # the zone known: one request, none again
    assert_same_records(TapRun(messages=first.messages + resumed.messages), plain("myreports"), "myreports_call_rows")


def test_a_filter_on_start_and_end_loses_no_call_that_straddles_a_window_boundary(make_sandbox):
    stream, box = "myreports_call_rows", {"myreports_rows_per_hour": 30}
    whole = sync(KINDS["myreports"].config(make_sandbox(**box)), streams=[stream])
    assert whole.error is None, whole.error
    expected = {r["doc_id"]: {k: v for k, v in r.items() if k != "request_id"} for r in whole.records(stream)}
    # Under the shape a call that straddles a request's end is in no request of its own; a row limit
    # splits each day's window (the halves overlap the window before them too).
    sandbox = make_sandbox(shapes=("myreports-filter-start-and-end",), myreports_row_limit=200, **box)
    config = KINDS["myreports"].config(sandbox) | {"myreports_window_days": 1}
    first = sync(config | {"end_date": DAYS[2]}, streams=[stream, "myreports_requests"])
    assert first.error is None, first.error
    requests = first.records("myreports_requests")
    assert any(r["outcome"] == "split" for r in requests)
    boundaries = {dt.datetime.fromisoformat(r["window_end"]) for r in requests if r["outcome"] == "emitted"}
    straddling = [
        r
        for r in expected.values()
        if any(
            dt.datetime.fromisoformat(r["start_utc"])
            < b
            <= dt.datetime.fromisoformat(r["start_utc"]) + dt.timedelta(seconds=r["duration"])
            for b in boundaries
        )
    ]
    assert len(straddling) > 3, "the data must hold calls over the boundaries for this test to mean anything"  # noqa: PLR2004
    resumed = sync(config, state=first.final_state, streams=[stream])
    assert resumed.error is None, resumed.error
    got: dict[str, dict] = {}
    for run in (first, resumed):
        keys = [r["doc_id"] for r in run.records(stream)]
        assert len(keys) == len(set(keys)), "a call emitted twice in one run"
        got |= {r["doc_id"]: {k: v for k, v in r.items() if k != "request_id"} for r in run.records(stream)}
    assert sorted(set(expected) - set(got)) == [], "calls lost"
    assert got == expected


# ---- no row of a window leaves before the window's keys are proven (issue 26) ------------------------------

SECOND_LEG = "talkdesk-calls-second-leg"  # 2026-10-02 (a Friday) 12:00 UTC: a call id in two different rows


def _day(record: dict) -> str:
    return str(record.get("start_at") or record.get("start_time"))[:10]


def _override_key(catalog: dict, stream: str, key: list[str]) -> dict:
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            root = next(item for item in entry["metadata"] if item["breadcrumb"] == [])
            root["metadata"]["table-key-properties"] = key
    return catalog


@pytest.mark.parametrize("mode", ["record", "batch"])
def test_rows_sharing_a_key_with_other_content_stop_before_any_row_of_their_window_leaves(
    tmp_path, make_sandbox, plain, mode
):
    from test_batch import batch_config, batch_rows

    stream = "talkdesk_calls"
    sandbox = make_sandbox(shapes=(SECOND_LEG,))
    config = KINDS["talkdesk-json"].config(sandbox)
    if mode == "batch":
        config |= {"batch_config": batch_config(tmp_path / "batches", size=25)}
    out = batch_rows if mode == "batch" else (lambda run: {stream: run.records(stream)})
    (tmp_path / "1").mkdir()
    stopped = run_cli(tmp_path / "1", config, catalog=catalog_selecting(config, [stream]))
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    lines = error_lines(stopped)
    assert len(lines) == 1, stopped.stderr[-3000:]
    assert lines[0].startswith(f"tap-callreports: error: {stream}: ") and f"{DAYS[1]}..{DAYS[2]}" in lines[0]
    assert "repeating another row's key" in lines[0] and "table-key-properties" in lines[0], lines[0]
    emitted = out(stopped)[stream]
    assert {_day(r) for r in emitted} == {DAYS[0][:10]}  # the first window, and nothing of the second
    assert len(emitted) == len([r for r in plain("talkdesk-json").records(stream) if _day(r) == DAYS[0][:10]])
    assert talkdesk_bookmarks(stopped)[-1] == DAYS[1]  # the bookmark stays before the conflicting window
    if mode == "batch":  # the conflicting window's files were never announced and are gone
        announced = {url for m in stopped.messages if m["type"] == "BATCH" for url in m["manifest"]}
        assert {p.as_uri() for p in (tmp_path / "batches").iterdir()} == announced
    # The way out the line names: a key the rows do carry, in the catalog; the next run completes.
    catalog = _override_key(catalog_selecting(config, [stream]), stream, ["call_id", "callsid"])
    (tmp_path / "2").mkdir()
    resumed = run_cli(tmp_path / "2", config, catalog=catalog, state=stopped.final_state)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert talkdesk_bookmarks(resumed)[-1] == DAYS[-1]
    got = sorted((r["call_id"], r["callsid"]) for r in [*emitted, *out(resumed)[stream]])
    sent = [(r["call_id"], r["callsid"]) for r in plain("talkdesk-json").records(stream)]
    legs = [(r["call_id"], r["callsid"]) for r in out(resumed)[stream] if r["user_name"] == "Second Leg"]
    assert len(legs) == 1 and legs[0][0] in {call for call, _ in sent}
    # Every row, the second leg too (the resumed run reads the lookback again: those replace themselves).
    assert sorted(set(got)) == sorted({*sent, *legs})
    assert len(out(resumed)[stream]) == len({(r["call_id"], r["callsid"]) for r in out(resumed)[stream]})


def test_rows_repeating_a_key_with_the_same_content_are_proven_and_go_out(make_sandbox, plain):
    """A row sent twice, identical, loses nothing when a warehouse merges it: not a conflict."""
    stream = "talkdesk_calls"
    sandbox = make_sandbox(shapes=("talkdesk-calls-repeated-row",))
    run = sync(KINDS["talkdesk-json"].config(sandbox), streams=[stream])
    assert run.error is None, run.error
    records = run.records(stream)
    assert len(records) == len(plain("talkdesk-json").records(stream)) + 1  # the repeated row, twice
    assert {r["call_id"] for r in records} == {r["call_id"] for r in plain("talkdesk-json").records(stream)}
    assert run.final_state == plain("talkdesk-json").final_state


@pytest.mark.parametrize("mode", ["record", "batch"])
def test_rows_repeating_a_key_with_the_same_content_go_out_under_a_map_renaming_the_key(
    tmp_path, make_sandbox, plain, mode
):
    """The repeats are compared as they were read, not as the rows were held: a stream map that
    renames the key (or BATCH files on remote storage) left nothing to read back, and every
    identical repeat stopped the run as a conflict."""
    from test_batch import batch_config, batch_rows

    stream = "talkdesk_calls"
    sandbox = make_sandbox(shapes=("talkdesk-calls-repeated-row",))
    config = KINDS["talkdesk-json"].config(sandbox) | {
        "stream_maps": {stream: {"id": "call_id", "call_id": None, "__key_properties__": ["id"]}}
    }
    if mode == "batch":
        config |= {"batch_config": batch_config(tmp_path / "batches", size=25)}
    run = sync(config, streams=[stream])
    assert run.error is None, run.error
    records = batch_rows(run)[stream] if mode == "batch" else run.records(stream)
    sent = plain("talkdesk-json").records(stream)
    assert len(records) == len(sent) + 1  # the repeated row, twice
    assert {r["id"] for r in records} == {r["call_id"] for r in sent} and all("call_id" not in r for r in records)
    assert run.final_state == plain("talkdesk-json").final_state


# ---- a missing file is a question for the job (issue 26) ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "shape", "fault"),
    [
        ("talkdesk-json", "talkdesk-job-vanished", "job-vanished"),
        ("talkdesk-signed", "talkdesk-job-vanished", "job-vanished"),
        ("myreports", "myreports-request-vanished", "request-vanished"),
    ],
)
def test_a_job_gone_with_its_file_is_created_again_at_once(make_sandbox, plain, caplog, kind, shape, fault):
    spec = KINDS[kind]
    sandbox = make_sandbox(shapes=(shape,), **spec.box)
    with caplog.at_level(logging.INFO):
        run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert len(faults(sandbox, fault)) == 3  # noqa: PLR2004 - every window's first job
    assert_same_records(run, plain(kind), spec.stream)
    assert run.final_state == plain(kind).final_state
    # Asked the job once, then created it again: no pauses asking for a file that is gone.
    assert len(sandbox.app.events("job_created")) == 6  # noqa: PLR2004 - each window twice
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and spec.stream in r.getMessage()] == []
    again = [r.getMessage() for r in caplog.records if "creating it again" in r.getMessage()]
    assert len(again) == 3 and all("gone" in line for line in again), again  # noqa: PLR2004


@pytest.mark.parametrize("redirect", ["never", "always"])  # the file from the API, or from a signed URL
def test_a_job_gone_after_its_download_broke_is_created_again_and_read_from_its_first_row(
    make_sandbox, caplog, redirect
):
    """Rows of the first job were read (and held) before its download broke and the job vanished: the
    window's held rows are dropped and the new job is read whole, once."""
    spec = KINDS["talkdesk-json"]
    box = {"rows_per_hour": 150, "talkdesk_file_redirect": redirect}  # files large enough to break after rows
    whole = sync(spec.config(make_sandbox(**box)), streams=[spec.stream])
    sandbox = make_sandbox(shapes=("talkdesk-job-vanished-mid-download",), **box)
    with caplog.at_level(logging.WARNING):
        run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    # (Once a job vanished, the files of the jobs in hand are checked first: those go at once.)
    assert faults(sandbox, "job-vanished-mid-download")
    broke = [r.getMessage() for r in caplog.records if "broke after" in r.getMessage()]
    assert broke and all(" after 0 rows" not in line for line in broke), broke
    assert_same_records(run, whole, spec.stream)
    assert run.final_state == whole.final_state


# ---- a listing that loses its place resumes exact (issue 26) -------------------------------------------------


def test_a_listing_whose_cursor_expired_resumes_from_its_last_page_exact(make_sandbox, caplog):
    spec = LISTS["zendesk"]
    expected = sync(spec.config(make_sandbox(**spec.box)), streams=[spec.stream])
    sandbox = make_sandbox(shapes=("zendesk-cursor-expired-once",), **spec.box)
    with caplog.at_level(logging.WARNING):
        run = sync(spec.config(sandbox), streams=[spec.stream])
    assert run.error is None, run.error
    assert len(faults(sandbox, "cursor-expired")) == 1
    assert [r["id"] for r in run.records(spec.stream)] == [r["id"] for r in expected.records(spec.stream)]  # exact
    # From the last page read (its cursor asked again gives a fresh one), not from the first.
    assert [p["start"] for p in sandbox.app.events("zendesk_page")] == [0, 100, 100, 200, 0]
    assert "lost its place" in caplog.text


def test_a_listing_that_keeps_losing_its_place_stops_loudly_and_a_run_later_completes(tmp_path, make_sandbox):
    spec = LISTS["zendesk"]
    sandbox = make_sandbox(shapes=("zendesk-cursor-expired-always",), **spec.box)
    stopped, line = stopped_once(tmp_path, spec, sandbox)
    assert line.startswith(f"tap-callreports: error: {spec.stream}: the list lost its place 4 times"), line
    assert "run again later" in line
    ids = [r["id"] for r in stopped.records(spec.stream)]
    assert len(ids) == len(set(ids)) == 200  # noqa: PLR2004 - the two pages read, once each
    resumed = sync(spec.config(make_sandbox(**spec.box)), state=stopped.final_state, streams=[spec.stream])
    assert resumed.error is None, resumed.error
    assert len(resumed.records(spec.stream)) == 230  # noqa: PLR2004 - the whole list


# ---- a wall time that names two instants is placed by what else the answer says (issue 26) ----------------

FALL_BACK = dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC)  # Europe/London: 01:00-02:00 local happens twice


def test_a_wall_time_that_happened_twice_is_placed_by_what_the_answer_says(make_sandbox, caplog):
    """The request after a fall-back reaches back over the repeated hour (the lookback), and under a
    filter on start and end it holds calls from both hours that only their wall time names."""
    stream, box = "myreports_call_rows", {"myreports_rows_per_hour": 60}
    days = {"start_date": "2026-10-24T00:00:00Z", "end_date": "2026-10-26T00:00:00Z"}
    whole = sync(KINDS["myreports"].config(make_sandbox(**box)) | days, streams=[stream])
    assert whole.error is None, whole.error
    expected = {r["doc_id"]: {k: v for k, v in r.items() if k != "request_id"} for r in whole.records(stream)}
    sandbox = make_sandbox(shapes=("myreports-filter-start-and-end",), **box)
    with caplog.at_level(logging.WARNING):
        run = sync(KINDS["myreports"].config(sandbox) | days, streams=[stream])
    assert run.error is None, run.error
    hour = dt.timedelta(hours=1)
    straddling = [
        r
        for r in expected.values()
        if FALL_BACK - hour
        <= dt.datetime.fromisoformat(r["start_utc"])
        < FALL_BACK
        <= dt.datetime.fromisoformat(r["start_utc"]) + dt.timedelta(seconds=r["duration"])
    ]
    assert straddling, "the data must hold calls from the first of the two hours over the change"
    got = {r["doc_id"]: {k: v for k, v in r.items() if k != "request_id"} for r in run.records(stream)}
    assert len(got) == len(run.records(stream)), "a call emitted twice"
    assert {d: got[d]["start_utc"] for d in got} == {d: expected[d]["start_utc"] for d in got}  # none an hour off
    end = dt.datetime.fromisoformat(days["end_date"])
    ended = {  # a call still going at end_date is the next run's under this filter
        d: r
        for d, r in expected.items()
        if dt.datetime.fromisoformat(r["start_utc"]) + dt.timedelta(seconds=r["duration"]) < end
    }
    assert got == ended
    assert "happened twice" not in caplog.text  # the answer told every time


def test_a_wall_time_nothing_places_is_counted_and_named_in_one_warning(make_sandbox, caplog):
    """Without a stated order, a call from the first of the two hours that went on past the change
    could be either: it goes out placed in the window, and one WARNING names it with the stream."""
    stream, box = "myreports_call_rows", {"myreports_rows_per_hour": 60}
    days = {"start_date": "2026-10-24T00:00:00Z", "end_date": "2026-10-26T00:00:00Z"}
    sandbox = make_sandbox(shapes=("myreports-filter-start-and-end", "myreports-no-sort-order"), **box)
    with caplog.at_level(logging.WARNING):
        run = sync(KINDS["myreports"].config(sandbox) | days, streams=[stream])
    assert run.error is None, run.error
    said = [r.getMessage() for r in caplog.records if "happened twice" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith(f"{stream}: ") and "Europe/London" in said[0] and "placed at the later one" in said[0]
    count = int(said[0].split(": ")[1].split(" ")[0])
    named = said[0].partition("(doc_id ")[2].partition(")")[0].removesuffix(", ...").split(", ")
    rows = {r["doc_id"]: r for r in run.records(stream)}
    assert count > 0 and len(named) == min(count, 5)  # noqa: PLR2004
    assert all(rows[d]["start_local"][11:13] == "01" for d in named), said[0]  # the repeated hour


@pytest.mark.parametrize("lookback", [None, 0])
def test_a_filter_read_as_wall_time_places_every_row_of_the_repeated_hour_at_its_own_instant(
    make_sandbox, caplog, lookback
):
    """Read as wall time, the dateFilter's bound at the fall-back ("01:00" after it) names the first
    01:00: the window before ends an hour early, and the earlier of the two hours lands in the next
    request. The result's filterConditions say so; every row keeps the instant the plain vendor gives."""
    stream = "myreports_call_rows"
    days = {"start_date": "2026-10-24T00:00:00Z", "end_date": "2026-10-26T00:00:00Z"}
    more = days | ({} if lookback is None else {"myreports_lookback_minutes": lookback})
    whole = sync(KINDS["myreports"].config(make_sandbox()) | more, streams=[stream])
    assert whole.error is None, whole.error
    expected = {r["doc_id"]: r["start_utc"] for r in whole.records(stream)}
    sandbox = make_sandbox(shapes=("myreports-filter-wall-time",))
    with caplog.at_level(logging.WARNING):
        run = sync(KINDS["myreports"].config(sandbox) | more, streams=[stream])
    assert run.error is None, run.error
    got = [(r["doc_id"], r["start_utc"]) for r in run.records(stream)]
    assert len(got) == len(dict(got)), "a call emitted twice"
    wrong = {d: (s, expected.get(d)) for d, s in got if s != expected.get(d)}
    assert wrong == {}, f"{len(wrong)} row(s) at another instant: {list(wrong.items())[:3]}"
    assert sorted(expected) == sorted(dict(got))  # none lost
    assert "happened twice" not in caplog.text  # the answer told every time
