"""The tap's output as a Singer target sees it: every RECORD valid against its SCHEMA, every
STATE valid JSON that the tap accepts back."""

from __future__ import annotations

import json

import jsonschema
import yaml

from helpers import LONDON_REPORT, NEW_YORK_REPORT, run_cli, sandbox_config
from tap_callreports.report_types import REPORT_TYPES
from tap_callreports.settings import SETTINGS_SCHEMA

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_every_record_matches_its_schema_and_every_state_is_accepted_back(tmp_path, make_sandbox):
    sandbox = make_sandbox(list_anchor="2026-10-03T00:00:00Z")
    config = sandbox_config(
        sandbox,
        myreports_report_ids=[LONDON_REPORT, NEW_YORK_REPORT],
        talkdesk_report_types=list(REPORT_TYPES),
        start_date="2026-10-01T00:00:00Z",
        end_date="2026-10-03T00:00:00Z",
    )
    run = run_cli(tmp_path, config)
    assert run.returncode == 0, run.stderr[-2000:]
    validators, counts = {}, {}
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    for message in run.messages:
        if message["type"] == "SCHEMA":
            jsonschema.Draft7Validator.check_schema(message["schema"])
            validators[message["stream"]] = jsonschema.Draft7Validator(message["schema"], format_checker=checker)
            assert isinstance(message["key_properties"], list)
        elif message["type"] == "RECORD":
            errors = list(validators[message["stream"]].iter_errors(message["record"]))
            assert errors == [], (message["stream"], errors[0].message)
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    assert set(validators) - set(counts) == set(), set(validators) - set(counts)  # every stream had rows to check

    assert len(run.states) >= 10
    for state in run.states[:: max(1, len(run.states) // 5)] + [run.final_state]:
        json.dumps(state)  # plain JSON
        again = run_cli(tmp_path, config, state=state)
        assert again.returncode == 0, again.stderr[-1000:]
    resumed = run_cli(tmp_path, config, state=run.final_state)
    assert not resumed.records("talkdesk_calls") and not resumed.records("myreports_call_rows")
    assert not resumed.records("talkdesk_imports")


def test_hub_definition_matches_the_tap():
    from tap_callreports.tap import TapCallReports

    every_setting = set(TapCallReports._get_about_info().settings["properties"])  # with the SDK's built-ins
    assert set(SETTINGS_SCHEMA["properties"]) < every_setting and "stream_maps" in every_setting
    hub = yaml.safe_load((ROOT / "hub" / "extractors" / "tap-callreports" / "callreports.yml").read_text())
    assert hub["name"] == "tap-callreports" and hub["namespace"] == "tap_callreports"
    assert {s["name"] for s in hub["settings"]} == every_setting
    secret = {name for name, spec in SETTINGS_SCHEMA["properties"].items() if spec.get("secret")}
    assert {s["name"] for s in hub["settings"] if s.get("sensitive")} == secret
    meltano = yaml.safe_load((ROOT / "meltano.yml").read_text())
    extractor = meltano["plugins"]["extractors"][0]
    assert {s["name"] for s in extractor["settings"]} == every_setting
    assert set(hub["capabilities"]) == set(extractor["capabilities"])


def test_settings_doc_tables_are_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", ROOT / "scripts" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = module.SETTINGS_DOC_PATH.read_text()
    assert module.render_settings_doc(doc) == doc, "run: python scripts/generate.py"
    tap_section, sdk_section = doc.split("### The Singer SDK's built-in settings", 1)
    assert "`talkdesk_window_days`" in tap_section and "`stream_maps`" not in tap_section
    assert "`stream_maps`" in sdk_section and "`batch_config.encoding.format`" in sdk_section
    assert "`start_date`" not in sdk_section
