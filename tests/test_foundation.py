"""Foundation: CLI, discovery, the two paginated streams, incremental imports, bad credentials."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests

from helpers import run_cli, sandbox_config, sync

SETTING_NAMES = {
    "start_date",
    "end_date",
    "talkdesk_region",
    "talkdesk_api_url",
    "talkdesk_token_url",
    "talkdesk_account_name",
    "talkdesk_client_id",
    "talkdesk_client_secret",
    "talkdesk_access_token",
    "zendesk_subdomain",
    "zendesk_api_url",
    "zendesk_email",
    "zendesk_api_token",
    "zendesk_oauth_token",
    "myreports_api_url",
    "myreports_token",
    "myreports_workspace_id",
    "myreports_report_ids",
    "zendesk_job_status_ids",
}


def test_about_lists_every_setting_and_marks_secrets(tmp_path):
    run = run_cli(tmp_path, None, "--about", "--format=json")
    assert run.returncode == 0, run.stderr
    about = json.loads(run.stdout)
    properties = about["settings"]["properties"]
    assert SETTING_NAMES <= set(properties)
    secret = {name for name, spec in properties.items() if spec.get("secret")}
    assert secret == {
        "talkdesk_client_secret",
        "talkdesk_access_token",
        "zendesk_api_token",
        "zendesk_oauth_token",
        "myreports_token",
        "myreports_refresh_token",
        "myreports_client_secret",
    }
    assert about["settings"]["required"] == ["start_date"]


def test_discover_lists_streams_with_keys(tmp_path, sandbox):
    config = sandbox_config(sandbox, vendors=("talkdesk", "zendesk"))
    run = run_cli(tmp_path, config, "--discover")
    assert run.returncode == 0, run.stderr
    catalog = json.loads(run.stdout)
    by_name = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert {"talkdesk_imports", "zendesk_job_statuses"} <= set(by_name)
    imports = by_name["talkdesk_imports"]
    assert imports["key_properties"] == ["id"]
    assert imports["replication_key"] == "updated_at"
    assert {
        "id",
        "filename",
        "total_records",
        "failed_records",
        "completed_records",
        "status",
        "type",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "canceled_by",
        "canceled_at",
        "_links",
    } <= set(imports["schema"]["properties"])
    statuses = by_name["zendesk_job_statuses"]
    assert statuses["key_properties"] == ["id"]
    assert {"id", "job_type", "message", "progress", "results", "status", "total", "url"} <= set(
        statuses["schema"]["properties"]
    )


def test_discovery_follows_credentials(sandbox):
    from tap_callreports.tap import TapCallReports

    only_zendesk = TapCallReports(config=sandbox_config(sandbox, vendors=("zendesk",)), validate_config=False)
    assert set(only_zendesk.streams) == {"zendesk_job_statuses", "zendesk_talk_calls", "zendesk_talk_legs"}


def test_no_credentials_is_one_clear_line(tmp_path):
    run = run_cli(tmp_path, {"start_date": "2026-01-01T00:00:00Z"}, "--discover")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-callreports: error: config: no vendor credentials")
    assert "talkdesk_client_id" in last and "zendesk_api_token" in last and "myreports_token" in last


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (1, 1), (5, 1), (6, 2), (11, 3)])
def test_imports_page_boundaries(make_sandbox, count, pages):
    sandbox = make_sandbox(imports_count=count)
    config = sandbox_config(
        sandbox, vendors=("talkdesk",), talkdesk_page_size=5, start_date="2025-01-01T00:00:00Z", end_date=None
    )
    run = sync(config, streams=["talkdesk_imports"])
    assert run.error is None, run.error
    ids = [r["id"] for r in run.records("talkdesk_imports")]
    expected = [row["id"] for row in sandbox.app.data.imports()]
    assert sorted(ids) == sorted(expected)
    assert len(ids) == len(set(ids)) == count
    again = 1 if pages > 1 else 0  # page 1 asked again: a list of several pages may move while read
    assert len(sandbox.app.events("imports_page")) == pages + again


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (1, 1), (100, 1), (101, 2), (250, 3)])
def test_job_statuses_cursor_boundaries(make_sandbox, count, pages):
    sandbox = make_sandbox(job_statuses_count=count)
    run = sync(sandbox_config(sandbox, vendors=("zendesk",)))
    assert run.error is None, run.error
    ids = [r["id"] for r in run.records("zendesk_job_statuses")]
    assert len(ids) == len(set(ids)) == count
    page_events = sandbox.app.events("zendesk_page")
    again = 1 if pages > 1 else 0  # the first page asked again: a list of several pages may move while read
    assert len(page_events) == pages + again
    assert all(e["size"] == 100 for e in page_events)


def test_job_statuses_keep_results_whatever_their_shape(sandbox):
    run = sync(sandbox_config(sandbox, vendors=("zendesk",)))
    shapes = {type(r["results"]).__name__ for r in run.records("zendesk_job_statuses")}
    assert {"list", "dict", "NoneType"} <= shapes
    deletion = next(r for r in run.records("zendesk_job_statuses") if isinstance(r["results"], dict))
    assert set(deletion["results"]) == {"success"}


def test_show_many_batches_of_100(make_sandbox):
    sandbox = make_sandbox(job_statuses_count=180)
    known = [row["id"] for row in sandbox.app.data.job_statuses()]
    wanted = known[:150] + ["0" * 32, "f" * 32]  # two ids Zendesk no longer has
    run = sync(sandbox_config(sandbox, vendors=("zendesk",), zendesk_job_status_ids=wanted))
    assert run.error is None, run.error
    assert sorted(r["id"] for r in run.records("zendesk_job_statuses")) == sorted(known[:150])
    batches = sandbox.app.events("zendesk_show_many")
    assert [b["ids"] for b in batches] == [100, 52]
    assert not sandbox.app.events("zendesk_page")


def test_show_many_continues_past_an_empty_batch(make_sandbox):
    sandbox = make_sandbox(job_statuses_count=10)
    known = [row["id"] for row in sandbox.app.data.job_statuses()]
    wanted = [f"{n:032x}" for n in range(100)] + known[:3]
    run = sync(sandbox_config(sandbox, vendors=("zendesk",), zendesk_job_status_ids=wanted))
    assert sorted(r["id"] for r in run.records("zendesk_job_statuses")) == sorted(known[:3])


def test_incremental_imports_resume_from_state(tmp_path, sandbox):
    # Imports reach 30 days back from the sandbox's last midnight; calls go in windows of 31 days (a
    # start in 2025 with daily windows made every run ask ~700 report jobs).
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=32)).strftime("%Y-%m-%dT00:00:00Z")
    config = sandbox_config(sandbox, vendors=("talkdesk",), start_date=start, end_date=None, talkdesk_window_days=31)
    first = run_cli(tmp_path, config)
    assert first.returncode == 0, first.stderr
    first_ids = {r["id"] for r in first.records("talkdesk_imports")}
    assert len(first_ids) == 45
    bookmark = first.final_state["bookmarks"]["talkdesk_imports"]["replication_key_value"]
    assert bookmark == max(r["updated_at"] for r in first.records("talkdesk_imports"))

    second = run_cli(tmp_path, config, state=first.final_state)
    assert second.returncode == 0, second.stderr
    assert second.records("talkdesk_imports") == []

    added = requests.post(f"{sandbox.url}/_sandbox/talkdesk/imports?count=3", timeout=10).json()["added"]
    third = run_cli(tmp_path, config, state=second.final_state)
    assert sorted(r["id"] for r in third.records("talkdesk_imports")) == sorted(added)


def test_imports_before_start_date_are_not_emitted(sandbox):
    all_rows = sandbox.app.data.imports()
    cut = sorted(r["updated_at"] for r in all_rows)[20]
    run = sync(
        sandbox_config(sandbox, vendors=("talkdesk",), start_date=cut, end_date=None), streams=["talkdesk_imports"]
    )
    emitted = run.records("talkdesk_imports")
    assert {r["id"] for r in emitted} == {r["id"] for r in all_rows if r["updated_at"] >= cut}


@pytest.mark.parametrize(
    ("vendor", "override", "hint"),
    [
        ("talkdesk", {"talkdesk_client_secret": "wrong-secret-123"}, "talkdesk_client_id and talkdesk_client_secret"),
        (
            "talkdesk",
            {"talkdesk_client_id": None, "talkdesk_client_secret": None, "talkdesk_access_token": "wrong-token-123"},
            "talkdesk_client_id / talkdesk_client_secret",
        ),
        ("zendesk", {"zendesk_api_token": "wrong-token-456"}, "zendesk_email + zendesk_api_token"),
    ],
)
def test_bad_credentials_one_line_no_secret(tmp_path, sandbox, vendor, override, hint):
    config = {k: v for k, v in sandbox_config(sandbox, vendors=(vendor,), **override).items() if v is not None}
    run = run_cli(tmp_path, config)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    stream = "talkdesk_imports" if vendor == "talkdesk" else "zendesk_job_statuses"
    assert last.startswith(f"tap-callreports: error: {stream}: ")
    assert hint in last
    everything = run.stdout + run.stderr  # type: ignore[attr-defined]
    for secret in [v for k, v in override.items() if v and ("secret" in k or "token" in k)]:
        assert secret not in everything
    assert not run.records(stream)
