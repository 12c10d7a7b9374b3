"""A newcomer's first mistakes: a misspelt setting, a catalog selecting a stream the config does not
produce, input files that are JSON but not objects, an empty state file. Each is said in one line
naming the setting, stream or file, and docs/errors.md quotes every line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from helpers import catalog_selecting, run_cli, sandbox_config

ERRORS_DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def error_lines(run) -> list[str]:
    return [line for line in run.stderr_lines if line.startswith("tap-callreports: error: ")]


# ---- unknown settings ---------------------------------------------------------------------------------

UNKNOWN_SETTING_WARNING = (
    "config: unknown setting(s) ignored (their defaults apply): "
    "'talkdesk_windows_days' (did you mean talkdesk_window_days?), 'colour'; "
    "see docs/settings.md"
)


def test_unknown_settings_are_one_warning_naming_each_and_the_closest_valid_one(tmp_path, sandbox):
    config = sandbox_config(sandbox, vendors=("zendesk",)) | {"talkdesk_windows_days": 14, "colour": "blue"}
    run = run_cli(tmp_path, config)
    assert run.returncode == 0, run.stderr[-2000:]
    unknown = [line for line in run.stderr_lines if "unknown setting" in line]
    assert len(unknown) == 1 and UNKNOWN_SETTING_WARNING in unknown[0], unknown
    assert "WARNING" in unknown[0] or "warning" in unknown[0].lower()
    assert run.records("zendesk_job_statuses")  # a warning, not an error: the run goes on


#: A value for every setting the SDK adds or reads (stream maps, flattening, BATCH, activate-version,
#: the user agent): none is unknown to the tap.
SDK_SETTINGS = {
    "flattening_enabled": False,
    "flattening_max_depth": 1,
    "emit_activate_version_messages": False,
    "stream_maps": {},
    "stream_map_config": {},
    "faker_config": {"locale": "en_US"},
    "batch_config": None,
    "user_agent": "tap-callreports-test",
}


@pytest.mark.parametrize("mode", ["sync", "--test", "--discover"])
def test_known_settings_and_the_sdks_own_are_not_warned_about(tmp_path, sandbox, mode):
    config = sandbox_config(sandbox, vendors=("zendesk",)) | SDK_SETTINGS
    run = run_cli(tmp_path, config, *([mode] if mode != "sync" else []))
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in run.stderr_lines if "WARNING" in line] == []


def test_every_setting_the_sdk_declares_for_the_tap_is_accepted():
    from tap_callreports.tap import TapCallReports

    about = TapCallReports._get_about_info().settings["properties"]
    assert set(about) <= set(TapCallReports.accepted_settings())
    assert set(SDK_SETTINGS) <= set(TapCallReports.accepted_settings())


@pytest.mark.parametrize(
    ("change", "mode"),
    [
        ({"start_date": "2099-01-01T00:00:00Z", "end_date": None}, "sync"),
        ({"start_date": "2099-01-01T00:00:00Z", "end_date": "2099-02-01T00:00:00Z"}, "sync"),
        ({"start_date": "2099-01-01T00:00:00Z", "end_date": None}, "--discover"),
    ],
)
def test_a_start_date_in_the_future_is_one_warning_naming_it(tmp_path, sandbox, change, mode):
    config = {k: v for k, v in (sandbox_config(sandbox, vendors=("talkdesk",)) | change).items() if v is not None}
    run = run_cli(tmp_path, config, *([mode] if mode != "sync" else []))
    assert run.returncode == 0, run.stderr[-2000:]
    warnings = [line for line in run.stderr_lines if "WARNING" in line]
    assert len(warnings) == 1 and FUTURE_START_WARNING in warnings[0], warnings
    if mode == "sync":  # there is no bookmark: the INFO line names start_date
        assert "talkdesk_calls: nothing to extract (start_date 2099-01-01T00:00:00Z is at or after" in run.stderr
    assert run.records("talkdesk_calls") == []
    assert sandbox.app.events("job_created") == []


FUTURE_START_WARNING = "config: setting 'start_date' is in the future (2099-01-01T00:00:00Z; now "


def test_emit_activate_version_messages_is_a_declared_setting_that_works(tmp_path, sandbox):
    about = json.loads(run_cli(tmp_path, None, "--about", "--format=json").stdout)
    assert about["settings"]["properties"]["emit_activate_version_messages"]["default"] is False
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("zendesk",), emit_activate_version_messages=True))
    assert run.returncode == 0, run.stderr[-2000:]
    assert [m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"] == ["zendesk_job_statuses"]


# ---- a catalog selecting what the config does not produce ---------------------------------------------

SELECTION_ERRORS = [
    (
        "a stream that does not exist",
        "talkdesk_callz",
        ("talkdesk",),
        "catalog: stream 'talkdesk_callz' is selected but tap-callreports has no such stream "
        "(did you mean talkdesk_calls?); run --discover for a current catalog",
    ),
    (
        "a stream whose vendor has no credentials",
        "zendesk_job_statuses",
        ("talkdesk",),
        "catalog: stream 'zendesk_job_statuses' is selected but the config has no Zendesk credentials; set "
        "zendesk_email + zendesk_api_token or zendesk_oauth_token (+ zendesk_subdomain), or deselect the stream",
    ),
    (
        "a report type the config does not ask for",
        "talkdesk_audit_logs",
        ("talkdesk",),
        "catalog: stream 'talkdesk_audit_logs' is selected but talkdesk_report_types does not include "
        "audit_logs; add it, or deselect the stream",
    ),
]


@pytest.mark.parametrize(("what", "stream", "vendors", "line"), SELECTION_ERRORS, ids=[e[0] for e in SELECTION_ERRORS])
def test_a_selected_stream_the_config_does_not_produce_is_one_line_and_exit_1(
    tmp_path, sandbox, what, stream, vendors, line
):
    everything = sandbox_config(sandbox, talkdesk_report_types=["calls", "audit_logs"])
    catalog = catalog_selecting(everything, ["talkdesk_imports", stream] if stream != "talkdesk_callz" else [])
    if stream == "talkdesk_callz":
        entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "talkdesk_calls")
        catalog["streams"].append(
            entry
            | {
                "tap_stream_id": stream,
                "stream": stream,
                "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
            }
        )
    config = sandbox_config(sandbox, vendors=vendors, talkdesk_report_types=["calls"])
    run = run_cli(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    assert error_lines(run) == [f"tap-callreports: error: {line}"]
    assert "Traceback" not in run.stderr
    assert [m for m in run.messages if m["type"] == "RECORD"] == []  # stopped before any stream ran
    assert sandbox.app.events("job_created") == []


def test_a_deselected_stream_the_config_does_not_produce_is_fine(tmp_path, sandbox):
    catalog = catalog_selecting(sandbox_config(sandbox), ["zendesk_job_statuses"])  # myreports_* there, deselected
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("zendesk",)), catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("zendesk_job_statuses")


# ---- input files ---------------------------------------------------------------------------------------

NOT_AN_OBJECT = [
    (
        "config",
        "[1]",
        "config: {path} holds a JSON array, not an object (settings by name, e.g. "
        '{{"start_date": "2026-01-01T00:00:00Z", ...}}); fix the file',
    ),
    (
        "config",
        '"hello"',
        "config: {path} holds a JSON string, not an object (settings by name, e.g. "
        '{{"start_date": "2026-01-01T00:00:00Z", ...}}); fix the file',
    ),
    (
        "state",
        "[1]",
        'state: {path} holds a JSON array, not an object (a Singer state, e.g. {{"bookmarks": {{...}}}}); fix the file',
    ),
    (
        "state",
        "null",
        'state: {path} holds a JSON null, not an object (a Singer state, e.g. {{"bookmarks": {{...}}}}); fix the file',
    ),
    (
        "catalog",
        "42",
        'catalog: {path} holds a JSON number, not an object (a Singer catalog, e.g. {{"streams": '
        "[...]}}, as --discover writes it); fix the file",
    ),
]


@pytest.mark.parametrize(("what", "content", "line"), NOT_AN_OBJECT, ids=[f"{w}={c}" for w, c, _ in NOT_AN_OBJECT])
def test_an_input_file_that_is_json_but_not_an_object_is_one_line_naming_it(tmp_path, sandbox, what, content, line):
    (tmp_path / "config.json").write_text(json.dumps(sandbox_config(sandbox, vendors=("zendesk",))))
    path = tmp_path / f"bad-{what}.json"
    path.write_text(content)
    files = {"config": tmp_path / "config.json", what: path}
    run = run_cli(tmp_path, None, *(arg for name, file in files.items() for arg in (f"--{name}", str(file))))
    assert run.returncode == 1
    assert run.stderr_lines == [f"tap-callreports: error: {line.format(path=path)}"]
    assert sandbox.app.events("request") == []


def test_an_empty_state_file_is_no_state_with_an_info_line(tmp_path, sandbox):
    # Imports reach 30 days back from the sandbox's last midnight; calls come in windows of 31 days, so
    # the run asks 2-3 jobs, not one a day (a start in 2025 made it ~700 jobs and minutes of waiting).
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=32)).strftime("%Y-%m-%dT00:00:00Z")
    config = sandbox_config(sandbox, vendors=("talkdesk",), start_date=start, end_date=None, talkdesk_window_days=31)
    (tmp_path / "config.json").write_text(json.dumps(config))
    empty = tmp_path / "state.json"
    empty.write_bytes(b"")
    run = run_cli(tmp_path, None, "--config", str(tmp_path / "config.json"), f"--state={empty}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (
        run.stderr_lines[0] == f"tap-callreports: info: state: {empty} is empty: no state, so every stream "
        "starts at start_date"
    )
    assert len(run.records("talkdesk_imports")) == len(sandbox.app.data.imports())  # from start_date
    assert error_lines(run) == []


@pytest.mark.parametrize("args", [[], ["--discover"], ["--test"]], ids=["sync", "discover", "test"])
def test_the_empty_state_files_info_line_is_said_once(tmp_path, sandbox, args):
    (tmp_path / "config.json").write_text(json.dumps(sandbox_config(sandbox, vendors=("zendesk",))))
    (tmp_path / "state.json").write_bytes(b"")
    run = run_cli(
        tmp_path, None, "--config", str(tmp_path / "config.json"), "--state", str(tmp_path / "state.json"), *args
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert sum("is empty: no state" in line for line in run.stderr_lines) == 1, run.stderr[-2000:]


EMPTY_FILES = [
    ("catalog", "catalog: /dev/null is empty; write a catalog into it with --discover"),
    ("config", "config: /dev/null is empty; write the settings in it as one JSON object"),
]


@pytest.mark.parametrize(("what", "line"), EMPTY_FILES, ids=[w for w, _ in EMPTY_FILES])
def test_an_empty_catalog_or_config_file_is_said_to_be_empty_not_missing(tmp_path, sandbox, what, line):
    (tmp_path / "config.json").write_text(json.dumps(sandbox_config(sandbox, vendors=("zendesk",))))
    files = {"config": str(tmp_path / "config.json"), what: "/dev/null"}
    run = run_cli(tmp_path, None, *(arg for name, file in files.items() for arg in (f"--{name}", file)))
    assert run.returncode == 1
    assert len(run.stderr_lines) == 1 and run.stderr_lines[0].startswith(f"tap-callreports: error: {line}")
    assert sandbox.app.events("request") == []


MISSING_CREDENTIALS = [
    (
        {"talkdesk_client_secret": None},
        "config: setting 'talkdesk_client_secret' is missing: it is needed together with 'talkdesk_client_id'; "
        "set it (docs/settings.md#getting-credentials says where to find it), or remove 'talkdesk_client_id'",
    ),
    (
        {"myreports_workspace_id": None},
        "config: setting 'myreports_workspace_id' is missing: myreports_report_ids need their workspace; "
        "set it (docs/settings.md#getting-credentials says where to find it)",
    ),
]


@pytest.mark.parametrize(("change", "line"), MISSING_CREDENTIALS, ids=["secret", "workspace"])
def test_a_missing_credential_says_what_to_do(tmp_path, sandbox, change, line):
    config = {k: v for k, v in (sandbox_config(sandbox) | change).items() if v is not None}
    run = run_cli(tmp_path, config)
    assert run.returncode == 1
    assert error_lines(run) == [f"tap-callreports: error: {line}"]


# ---- the docs quote every line ---------------------------------------------------------------------------


def test_docs_error_table_quotes_every_bad_input_line():
    text = ERRORS_DOC.read_text()
    lines = [
        UNKNOWN_SETTING_WARNING,
        *(line for *_, line in SELECTION_ERRORS),
        *(line.format(path=f"{what}.json") for what, _c, line in NOT_AN_OBJECT),
        "state: state.json is empty: no state, so every stream starts at start_date",
        FUTURE_START_WARNING,
        *(line.replace("/dev/null", f"{what}.json") for what, line in EMPTY_FILES),
        *(line for _, line in MISSING_CREDENTIALS),
    ]
    missing = [line for line in lines if line not in text]
    assert missing == []
