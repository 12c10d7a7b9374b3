"""What an operator meets outside a sync: the connection test, config-file errors, settings as
Meltano passes them, generated settings descriptions, and the package without its sandbox extra."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from helpers import SANDBOX_SECRETS, run_cli, sandbox_config
from tap_callreports.errors import ConfigError
from tap_callreports.settings import SETTINGS_SCHEMA, load_settings, read_number
from tap_callreports.tap import TapCallReports

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import generate  # noqa: E402


def error_lines(run) -> list[str]:
    return [line for line in run.stderr_lines if line.startswith("tap-callreports: error: ")]


# ---- the connection test ------------------------------------------------------------------------


def test_connection_test_checks_every_vendor_and_creates_no_report_job(tmp_path, sandbox):
    config = sandbox_config(
        sandbox,
        talkdesk_report_types=["calls", "audit_logs"],
        myreports_report_ids=["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"],
    )
    run = run_cli(tmp_path, config, "--test")
    assert run.returncode == 0, run.stderr[-2000:]
    ok = [line.split("connection test: ", 1)[1] for line in run.stderr_lines if "connection test: " in line]
    assert [line.split(":", 1)[0] for line in ok] == ["talkdesk", "zendesk", "myreports"]
    assert all(": ok: " in line for line in ok), ok
    assert error_lines(run) == []
    assert sandbox.app.events("job_created") == []  # neither a Talkdesk job nor a MyReports request
    assert sandbox.app.events("token_issued"), "the Talkdesk token was not checked"
    polled = {e["job_id"] for e in sandbox.app.events("job_polled")}
    assert polled == set()  # the probes asked for job ids that do not exist


@pytest.mark.parametrize(
    ("wrong", "refused", "reason"),
    [
        (
            {"zendesk_api_token": "wrong-token", "myreports_token": "expired-token"},
            ["zendesk", "myreports"],
            ["401 Unauthorized", "401 Unauthorized"],
        ),
        (
            {"talkdesk_client_secret": "wrong-secret", "myreports_report_ids": ["not-a-report"]},
            ["talkdesk", "myreports"],
            ["refused the client credentials", "not-a-report are not in workspace"],
        ),
    ],
)
def test_connection_test_names_each_vendor_that_refused(tmp_path, sandbox, wrong, refused, reason):
    run = run_cli(tmp_path, sandbox_config(sandbox, **wrong), "--test")
    assert run.returncode == 1
    lines = error_lines(run)
    assert [line.split("error: ", 1)[1].split(":", 1)[0] for line in lines] == refused
    for line, why in zip(lines, reason):
        assert ": refused: " in line and why in line, line
    assert "Traceback" not in run.stderr
    for secret in (*SANDBOX_SECRETS, *wrong.values()):
        if isinstance(secret, str) and secret.endswith(("token", "secret")):
            assert secret not in run.stderr
    ok_vendors = {"talkdesk", "zendesk", "myreports"} - set(refused)
    assert any(f"connection test: {vendor}: ok" in run.stderr for vendor in ok_vendors)
    assert sandbox.app.events("job_created") == []


# ---- config files ---------------------------------------------------------------------------------


def test_a_config_file_that_is_not_json_is_one_line_naming_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"start_date": "2026-10-01T00:00:00Z",\n  "zendesk_api_token": }\n')
    for args in (["--discover"], []):
        run = run_cli(tmp_path, None, "--config", str(path), *args)
        assert run.returncode == 1
        assert run.stderr_lines == [
            f"tap-callreports: error: config: {path} is not valid JSON (line 2 col 24: Expecting value); fix the file"
        ]


def test_a_missing_config_file_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "config.json"
    run = run_cli(tmp_path, None, f"--config={missing}", "--discover")
    assert run.returncode == 1
    assert run.stderr_lines == [
        f"tap-callreports: error: config: {missing} does not exist; give the path of a JSON file"
    ]


# ---- settings as Meltano passes them ------------------------------------------------------------------


NUMERIC_SETTINGS = [
    name for name, spec in SETTINGS_SCHEMA["properties"].items() if {"integer", "number"} & set(spec["type"])
]
BASE = {"start_date": "2026-10-01T00:00:00Z", "zendesk_api_url": "https://x.zendesk.com", "zendesk_oauth_token": "t"}


def _lowest(spec: dict) -> float:
    return spec["minimum"] if "minimum" in spec else spec["exclusiveMinimum"] + 1


@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_every_numeric_setting_reads_its_number_from_text_alike(name):
    """As Meltano environment variables deliver them: "5" is 5 for every numeric setting."""
    spec = SETTINGS_SCHEMA["properties"][name]
    low = int(_lowest(spec))
    for given in (low, str(low), f" {low} ", Decimal(low)):
        config = BASE | {name: given}
        assert read_number(config, name) == low, given
        load_settings(config)  # and the whole config reads
    whole = "integer" in spec["type"]
    kind = "a whole number" if whole else "a number of seconds"
    bounds = f"from {spec['minimum']} to {spec['maximum']}" if whole else "above 0"
    too_big = [spec["maximum"] + 1, str(spec["maximum"] + 1)] if whole else []
    for bad in ("soon", "", True, "-1", "nan", "1e3", -1, *too_big, *(["1.5", 1.5] if whole else [])):
        with pytest.raises(ConfigError) as caught:
            read_number(BASE | {name: bad}, name)
        assert str(caught.value) == (
            f"config: setting '{name}' must be {kind} {bounds} (got {bad!r}); "
            'change it in the config (a number, or the number as text: 5 and "5" both work)'
        )


@pytest.mark.parametrize(
    ("bounds", "said"),
    [
        ({"minimum": 1, "maximum": 20}, "from 1 to 20"),
        ({"minimum": 1}, "of at least 1"),
        ({"maximum": 5}, "at most 5"),
        ({"exclusiveMinimum": 0}, "above 0"),
        ({"exclusiveMinimum": 0, "maximum": 60}, "above 0 and at most 60"),
    ],
)
def test_a_bad_number_names_only_the_bounds_declared(monkeypatch, bounds, said):
    """A setting declared with one bound is not told as "from 1 to None"."""
    import tap_callreports.settings as settings

    spec = {"type": ["integer", "string"], "pattern": r"^\s*[0-9]+\s*$", **bounds}
    monkeypatch.setattr(settings, "declared", lambda _name: spec)
    with pytest.raises(ConfigError) as caught:
        read_number({"max_retries": "soon"}, "max_retries")
    assert f"must be a whole number {said} (got 'soon')" in str(caught.value)


def test_numbers_as_text_pass_the_cli_and_the_sdks_schema(tmp_path):
    config = BASE | {"max_retries": "5", "talkdesk_window_days": "14", "request_timeout_seconds": "120"}
    run = run_cli(tmp_path, config, "--discover")
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in run.stderr_lines if "WARNING" in line or "error" in line] == []
    tap = TapCallReports(config=config)
    assert (tap.settings.max_retries, tap.settings.request_timeout_seconds) == (5, 120.0)


def test_every_setting_is_described_with_its_range_and_no_kind_meltano_mishandles():
    for name, spec in SETTINGS_SCHEMA["properties"].items():
        assert spec.get("description") and spec.get("title"), name
        types = set(spec["type"])
        if types & {"integer", "number"}:
            assert {"minimum", "exclusiveMinimum"} & set(spec), f"{name} has no lower bound"
    hub = yaml.safe_load(generate.HUB_PATH.read_text())
    meltano = yaml.safe_load(generate.MELTANO_PATH.read_text())
    extractor = next(p for p in meltano["plugins"]["extractors"] if p["name"] == "tap-callreports")
    for settings in (hub["settings"], extractor["settings"]):
        assert all(s.get("description") for s in settings)
        assert "decimal" not in {s["kind"] for s in settings}  # Meltano 4.4 cannot serialise it from env vars
    about = generate.about()
    assert extractor["capabilities"] == hub["capabilities"] == about["capabilities"]


def test_generated_meltano_entry_hub_definition_and_settings_doc_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


SAMPLE_VALUES = {
    "talkdesk_client_id": "id",
    "talkdesk_client_secret": "secret",
    "talkdesk_account_name": "acme",
    "talkdesk_token_url": "https://acme.talkdeskid.com/oauth/token",
    "talkdesk_access_token": "token",
    "zendesk_email": "a@example.com",
    "zendesk_api_token": "token",
    "zendesk_oauth_token": "token",
    "zendesk_subdomain": "acme",
    "zendesk_api_url": "https://acme.zendesk.com",
    "myreports_token": "token",
    "myreports_refresh_token": "refresh",
    "myreports_token_url": "https://auth.myreports.cloud/oauth/token",
    "myreports_workspace_id": "ws",
    "myreports_report_ids": ["r1"],
}


@pytest.mark.parametrize(
    ("vendor", "group"),
    [(vendor, group) for vendor, groups in generate.VENDOR_REQUIREMENTS.items() for group in groups],
)
def test_each_meltano_settings_group_is_enough_for_its_vendor(vendor, group):
    config = {"start_date": "2026-10-01T00:00:00Z"} | {name: SAMPLE_VALUES[name] for name in group}
    settings = load_settings(config)
    assert getattr(settings, vendor) is not None
    assert ["start_date", *group] in generate.settings_group_validation()


# ---- packaging ------------------------------------------------------------------------------------------


def test_the_tap_imports_and_answers_about_without_the_sandbox_extra():
    # werkzeug is the sandbox extra's; the tap must not need it.
    script = (
        "import sys; sys.modules['werkzeug'] = None\n"
        "from tap_callreports.cli import main, sandbox_main\n"
        "try:\n    main(['--about', '--format=json'])\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "try:\n    sandbox_main()\nexcept SystemExit as exit:\n    assert exit.code == 1\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"capabilities"' in result.stdout
    assert "pip install 'tap-callreports[sandbox]'" in result.stderr


# ---- one error line for a stop, at any stage ------------------------------------------------------------

STRUCTURED_LOGGING = """version: 1
disable_existing_loggers: false
formatters:
  structured:
    (): singer_sdk.logging.StructuredFormatter
handlers:
  console:
    class: logging.StreamHandler
    formatter: structured
    stream: ext://sys.stderr
root:
  level: INFO
  handlers: [console]
"""


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable(vendor: str) -> dict:
    url = f"http://127.0.0.1:{closed_port()}"
    return {
        "talkdesk": {"talkdesk_api_url": url, "talkdesk_token_url": f"{url}/oauth/token"},
        "zendesk": {"zendesk_api_url": url},
        "myreports": {"myreports_api_url": f"{url}/api"},
    }[vendor] | {"max_retries": 0}


STOPS = {
    "a bad setting": ({"talkdesk_window_days": 45}, []),
    "a bad setting, discovery": ({"talkdesk_window_days": 45}, ["--discover"]),
    "a refused credential": ({"talkdesk_client_secret": "wrong-secret"}, []),
    "a refused credential, connection test": ({"zendesk_api_token": "wrong-token"}, ["--test"]),
    "an unreachable host": ("zendesk", []),
}


@pytest.mark.parametrize("structured", [False, True], ids=["plain", "meltano-logging"])
@pytest.mark.parametrize(("change", "args"), STOPS.values(), ids=list(STOPS))
def test_a_stop_is_one_error_line_the_taps_at_any_stage(tmp_path, sandbox, change, args, structured):
    env = {}
    if structured:  # as Meltano runs the tap: its log as JSON records on stderr
        (tmp_path / "logging.yml").write_text(STRUCTURED_LOGGING)
        env["SINGER_SDK_LOG_CONFIG"] = str(tmp_path / "logging.yml")
    config = sandbox_config(sandbox) | (unreachable(change) if isinstance(change, str) else change)
    run = run_cli(tmp_path, config, *args, env=env)
    assert run.returncode == 1
    errors = [line for line in run.stderr_lines if "error" in line.lower()]
    assert len(errors) == 1, errors
    assert "An unhandled error occurred" not in run.stderr
    assert "Traceback" not in run.stderr
    line = json.loads(errors[0])["message"] if structured else errors[0].removeprefix("tap-callreports: error: ")
    if not args:  # a stop while syncing names its stream (what the SDK's line said)
        assert line.split(":", 1)[0] in ("config", "talkdesk_imports", "zendesk_job_statuses"), line
    assert "; " in line  # what is wrong; what to do


UNREACHABLE = re.compile(
    r"cannot reach 127\.0\.0\.1:\d+ \(connection refused; 1 attempt\(s\)\); check (?P<settings>.+) and that "
    r"this machine can reach 127\.0\.0\.1:\d+ \(network, proxy, firewall\), then run again$"
)


@pytest.mark.parametrize(
    ("vendor", "stream", "settings"),
    [
        ("talkdesk", "talkdesk_imports", "talkdesk_token_url (or talkdesk_account_name and talkdesk_region)"),
        ("zendesk", "zendesk_job_statuses", "zendesk_api_url (or zendesk_subdomain)"),
        ("myreports", "myreports_call_rows", "myreports_api_url"),
    ],
)
def test_an_unreachable_host_is_the_same_line_for_every_vendor_saying_what_to_check(
    tmp_path, sandbox, vendor, stream, settings
):
    config = sandbox_config(sandbox, vendors=(vendor,)) | unreachable(vendor)
    for args, prefix in (([], f"{stream}: "), (["--test"], f"{vendor}: refused: ")):
        run = run_cli(tmp_path, config, *args)
        assert run.returncode == 1
        lines = error_lines(run)
        assert len(lines) == 1, run.stderr[-2000:]
        line = lines[0].removeprefix("tap-callreports: error: ")
        assert line.startswith(prefix), line
        matched = UNREACHABLE.match(line.removeprefix(prefix))
        assert matched, line
        assert matched["settings"] == settings


# ---- the demo's row counts -------------------------------------------------------------------------------


def test_the_demos_row_count_table_is_aligned_for_every_stream_name():
    import demo

    from tap_callreports.tap import ALL_STREAM_NAMES

    counts = [(f"callreports.callreports.{name}", 10**index) for index, name in enumerate(ALL_STREAM_NAMES)]
    lines = demo.count_table(counts)
    assert len({len(line) for line in lines}) == 1, "\n".join(lines)  # the counts end in one column
    for line, (name, count) in zip(lines[1:], counts):
        assert line.split() == [name, f"{count:,}"]


def test_an_unexpected_error_names_the_stream_it_stopped_before_its_traceback(monkeypatch, capsys):
    """The SDK's line that named the stream is not logged: the tap names it for a bug too."""
    from tap_callreports import cli
    from tap_callreports.sdk_hooks import STREAM_OF_ERROR

    def crash(_args):
        error = KeyError("boom")
        setattr(error, STREAM_OF_ERROR, "talkdesk_calls")
        raise error

    monkeypatch.setattr(cli, "check_input_files", crash)
    with pytest.raises(KeyError):
        cli.main(["--about"])
    assert capsys.readouterr().err.splitlines() == [
        "tap-callreports: error: talkdesk_calls: stopped by an unexpected KeyError; "
        "please report it with the traceback below"
    ]
