"""scripts/run_fingerprint.py's normalisation, on made-up runs (the script itself runs the tap: see
docs/contributing.md): what differs between runs is masked, what the tap decides is kept."""

from __future__ import annotations

import datetime as dt
import json
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import run_fingerprint as fp  # noqa: E402

JOB = "c37545eafbf540a5a6d655e917851738"
TODAY = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fake_sandbox(port: int) -> types.SimpleNamespace:
    created = {"vendor": "talkdesk", "job_id": JOB, "report_type": "calls", "attempt": 1}
    created |= {"start": "2026-10-01T00:00:00+00:00", "end": "2026-10-02T00:00:00+00:00"}
    app = types.SimpleNamespace(events=lambda kind: [created] if kind == "job_created" else [])
    return types.SimpleNamespace(url=f"http://127.0.0.1:{port}", app=app)


def made_up_run(port: int, jobs_in_flight: list[dict], early_progress: bool) -> fp.Run:
    url = f"http://127.0.0.1:{port}"
    messages: list[dict] = [
        {"type": "SCHEMA", "stream": "talkdesk_calls", "schema": {}, "key_properties": ["call_id"]},
        {"type": "STATE", "value": {"bookmarks": {"talkdesk_calls": {"report_jobs": jobs_in_flight}}}},
    ]
    record = {"call_id": "b", "start_at": "2026-10-01T00:38:02Z", "report_job_id": JOB, "link": f"{url}/x"}
    messages += [
        {"type": "RECORD", "stream": "talkdesk_calls", "record": {**record, "call_id": "a"}, "time_extracted": TODAY},
        {"type": "RECORD", "stream": "talkdesk_calls", "record": record, "time_extracted": TODAY},
    ]
    if early_progress:  # a STATE written by another thread's news, mid-stream
        progress = {"progress_markers": {"replication_key_value": "2026-10-01T00:38:02Z"}}
        messages.append({"type": "STATE", "value": {"bookmarks": {"talkdesk_calls": progress}}})
    done = {"replication_key": "report_window_end", "replication_key_value": "2026-10-02T00:00:00Z"}
    messages.append(
        {"type": "STATE", "value": {"bookmarks": {"talkdesk_calls": done | {"report_jobs": jobs_in_flight}}}}
    )
    stderr = f"2026-12-07 13:36:35,508 | WARNING  | tap | slow answer from {url}\n2026-12-07 13:36:35,509 | INFO | x\n"
    return fp.Run(0, "\n".join(json.dumps(m) for m in messages), stderr)


def test_two_runs_that_differ_only_in_what_changes_from_run_to_run_have_one_fingerprint():
    jobs = [{"job_id": JOB, "window_start": f"2026-10-0{n}T00:00:00Z", "created_at": TODAY} for n in (1, 2)]
    one = fp.fingerprint("full", made_up_run(40001, jobs, early_progress=True), fp.Masker(fake_sandbox(40001)))
    other = fp.fingerprint("full", made_up_run(40002, jobs[::-1], early_progress=False), fp.Masker(fake_sandbox(40002)))
    assert one == other
    assert "<talkdesk job calls 2026-10-01T00:00:00+00:00..2026-10-02T00:00:00+00:00 attempt 1>" in one
    assert "<sandbox>/x" in one and '"time_extracted": "<clock>"' in one
    assert "2026-10-01T00:38:02Z" in one  # a data time is kept
    assert "WARNING | tap | slow answer from <sandbox>" in one and "| x" not in one  # INFO left out
    assert one.index('"call_id": "a"') < one.index('"call_id": "b"')  # the stream's own order is kept


def test_a_changed_value_is_a_difference(tmp_path, capsys):
    masker = fp.Masker(fake_sandbox(40001))
    before = fp.fingerprint("full", made_up_run(40001, [], early_progress=False), masker)
    for name, text in (("a", before), ("b", before.replace('"call_id": "a"', '"call_id": "A"'))):
        (tmp_path / name).mkdir()
        for case in fp.CASES:
            (tmp_path / name / f"{case}.txt").write_text(text)
    assert fp.compare(tmp_path / "a", tmp_path / "a")
    assert not fp.compare(tmp_path / "a", tmp_path / "b")
    shown = capsys.readouterr().out
    assert "full: DIFFERS" in shown and '"call_id": "A"' in shown
