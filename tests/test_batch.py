"""BATCH mode for report streams: the same rows as RECORD mode, each window's STATE after the BATCH
message holding its rows, files rotated by batch_size and cleaned up by the next run."""

from __future__ import annotations

import collections

import pytest

from helpers import LONDON_REPORT, sandbox_config, sync
from tap_callreports.batches import read_batch_file
from tap_callreports.timeutil import parse_instant

STREAMS = ["talkdesk_calls", "myreports_call_rows"]
KEYS = {"talkdesk_calls": "call_id", "myreports_call_rows": "doc_id"}


def batch_config(root, size: int = 40) -> dict:
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri()},
        "batch_size": size,
    }


def batch_rows(run) -> dict[str, list[dict]]:
    rows = collections.defaultdict(list)
    for message in run.messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                rows[message["stream"]] += read_batch_file(url)
    return rows


def bookmarks(state: dict, stream: str) -> list:
    bookmark = state.get("bookmarks", {}).get(stream, {})
    found = [bookmark.get("replication_key_value")]
    found += [p.get("replication_key_value") for p in bookmark.get("partitions", [])]
    return [parse_instant(v) for v in found if v]


def window_end(stream: str, row: dict):
    if stream == "talkdesk_calls":
        return parse_instant(row["report_window_end"])
    return parse_instant(row["start_utc"])


def assert_every_state_follows_its_rows(run, rows_of) -> None:
    """At each STATE, every row the bookmark covers was already out (RECORD, or in a BATCH file)."""
    out: dict[str, list[dict]] = collections.defaultdict(list)
    checked = 0
    for message in run.messages:
        if message["type"] == "RECORD":
            out[message["stream"]].append(message["record"])
        elif message["type"] == "BATCH":
            for url in message["manifest"]:
                out[message["stream"]] += read_batch_file(url)
        elif message["type"] == "STATE":
            for stream in STREAMS:
                for mark in bookmarks(message["value"], stream):
                    covered = {r[KEYS[stream]] for r in rows_of[stream] if window_end(stream, r) <= mark}
                    assert covered <= {r[KEYS[stream]] for r in out[stream]}, (stream, mark)
                    checked += 1
    assert checked >= 4


@pytest.fixture
def runs(make_sandbox, tmp_path):
    sandbox = make_sandbox(seed=4)
    config = sandbox_config(sandbox, vendors=("talkdesk", "myreports"), myreports_report_ids=[LONDON_REPORT])
    record_run = sync(config, streams=STREAMS)
    batch_run = sync(config | {"batch_config": batch_config(tmp_path / "batches")}, streams=STREAMS)
    assert record_run.error is None and batch_run.error is None, (record_run.error, batch_run.error)
    return config, record_run, batch_run


def test_batch_and_record_runs_give_the_same_rows(runs):
    _config, record_run, batch_run = runs
    in_files = batch_rows(batch_run)
    for stream in STREAMS:
        assert not batch_run.records(stream)  # no RECORD messages in BATCH mode
        strip = ("report_job_id", "request_id")
        as_records = collections.Counter(
            repr(sorted((k, v) for k, v in r.items() if k not in strip)) for r in record_run.records(stream)
        )
        as_batches = collections.Counter(
            repr(sorted((k, v) for k, v in r.items() if k not in strip)) for r in in_files[stream]
        )
        assert as_batches == as_records and sum(as_records.values()) > 100, stream
    assert batch_run.final_state == record_run.final_state


def test_uncompressed_files_hold_the_same_rows_as_gzip_files(runs, tmp_path):
    """`compression: none` (the other setting bench/pipeline.py measures): plain JSON Lines files,
    named .json, holding the gzip run's rows."""
    config, _record_run, batch_run = runs
    plain = batch_config(tmp_path / "plain")
    plain["encoding"]["compression"] = "none"
    plain_run = sync(config | {"batch_config": plain}, streams=STREAMS)
    assert plain_run.error is None, plain_run.error
    files = sorted((tmp_path / "plain").iterdir())
    assert files and all(f.name.endswith(".json") and f.read_bytes()[:1] == b"{" for f in files)
    strip = ("report_job_id", "request_id")
    for stream in STREAMS:
        rows = [
            collections.Counter(repr(sorted((k, v) for k, v in r.items() if k not in strip)) for r in found[stream])
            for found in (batch_rows(plain_run), batch_rows(batch_run))
        ]
        assert rows[0] == rows[1] and sum(rows[0].values()) > 100, stream
    assert plain_run.final_state == batch_run.final_state


def test_every_state_follows_its_rows_in_both_modes(runs):
    _config, record_run, batch_run = runs
    rows_of = {stream: record_run.records(stream) for stream in STREAMS}
    assert_every_state_follows_its_rows(record_run, rows_of)
    assert_every_state_follows_its_rows(batch_run, rows_of)
    kinds = [m["type"] for m in batch_run.messages if m.get("stream") == "talkdesk_calls" or m["type"] == "STATE"]
    first_batch = kinds.index("BATCH")
    assert "STATE" in kinds[first_batch:]  # a window: its BATCH, then its STATE


def test_files_rotate_by_batch_size_and_are_cleaned_up_by_the_next_run(make_sandbox, tmp_path):
    sandbox = make_sandbox(seed=4)
    root = tmp_path / "batches"
    config = sandbox_config(sandbox, vendors=("talkdesk",), batch_config=batch_config(root, size=25))
    first = sync(config, streams=["talkdesk_calls"])
    assert first.error is None, first.error
    files = sorted(root.iterdir())
    manifests = [m["manifest"] for m in first.messages if m["type"] == "BATCH"]
    # One BATCH per file, sent as soon as the file is full (the target loads it while the tap
    # writes the next); a window's last file goes out just before the window's STATE.
    assert all(len(manifest) == 1 for manifest in manifests) and len(manifests) > 3
    kinds = [m["type"] for m in first.messages if m["type"] in ("BATCH", "STATE")]
    assert kinds.count("STATE") >= 3 and kinds[-1] == "STATE"
    sizes = [len(read_batch_file(url)) for manifest in manifests for url in manifest]
    assert max(sizes) == 25 and len(files) == len(sizes)

    second = sync(config, streams=["talkdesk_calls"])
    assert second.error is None, second.error
    left = sorted(root.iterdir())
    assert not set(files) & set(left)  # the first run's files are gone...
    assert len(left) == sum(len(m["manifest"]) for m in second.messages if m["type"] == "BATCH")  # ...not the new


def test_stream_maps_apply_in_batch_mode(make_sandbox, tmp_path):
    sandbox = make_sandbox()
    config = sandbox_config(
        sandbox,
        vendors=("talkdesk",),
        batch_config=batch_config(tmp_path / "b"),
        stream_maps={"talkdesk_calls": {"user_name": None, "__filter__": "type == 'inbound'"}},
    )
    run = sync(config, streams=["talkdesk_calls"])
    assert run.error is None, run.error
    rows = batch_rows(run)["talkdesk_calls"]
    assert rows and all(r["type"] == "inbound" and "user_name" not in r for r in rows)


def test_streams_without_windows_batch_into_the_same_files_and_are_cleaned_up(make_sandbox, tmp_path):
    """Imports, job statuses and job records: the same rows as RECORD mode, in files named like the
    report streams' (so the next run deletes them too), each BATCH before the STATE after it."""
    sandbox = make_sandbox(seed=4, imports_count=30, list_anchor="2026-10-03T00:00:00Z")
    root = tmp_path / "batches"
    streams = [
        "talkdesk_imports",
        "zendesk_job_statuses",
        "talkdesk_report_jobs",
        "myreports_requests",
        "talkdesk_calls",
        "myreports_call_rows",
    ]
    config = sandbox_config(sandbox, myreports_report_ids=[LONDON_REPORT])
    record_run = sync(config, streams=streams)
    first = sync(config | {"batch_config": batch_config(root)}, streams=streams)
    assert record_run.error is None and first.error is None, (record_run.error, first.error)
    in_files = batch_rows(first)
    for stream in ["talkdesk_imports", "zendesk_job_statuses"]:
        assert not first.records(stream)
        assert sorted(r["id"] for r in in_files[stream]) == sorted(r["id"] for r in record_run.records(stream))
        assert in_files[stream]
    for stream in ["talkdesk_report_jobs", "myreports_requests"]:
        assert len(in_files[stream]) == len(record_run.records(stream)) > 0
    files = {p.name for p in root.iterdir()}
    assert {name.split("--")[1] for name in files} == set(streams)  # one naming scheme for every stream
    kinds = [m["type"] for m in first.messages if m.get("stream") == "talkdesk_imports" or m["type"] == "STATE"]
    assert "STATE" in kinds[kinds.index("BATCH") :]

    second = sync(config | {"batch_config": batch_config(root)}, streams=streams)
    assert second.error is None, second.error
    assert not files & {p.name for p in root.iterdir()}  # every stream's earlier files are gone
