"""Write the Meltano Hub style definition hub/extractors/tap-callreports/callreports.yml from the
tap's own settings schema (so the two cannot drift; tests/test_singer_messages.py checks it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tap_callreports.tap import TapCallReports

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = ["state", "catalog", "discover", "about", "stream-maps", "schema-flattening", "structured-logging"]


def all_settings() -> dict:
    """The tap's settings plus the SDK's built-in ones (stream maps, flattening, batch, faker)."""
    return TapCallReports._get_about_info().settings["properties"]


def setting(name: str, spec: dict) -> dict:
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else types
    entry: dict = {"name": name, "label": spec.get("title", name)}
    if spec.get("description"):
        entry["description"] = spec["description"]
    if spec.get("format") == "date-time":
        entry["kind"] = "date_iso8601"
    elif spec.get("enum"):
        entry["kind"] = "options"
        entry["options"] = [{"label": value, "value": value} for value in spec["enum"] if value is not None]
    elif "object" in types:
        entry["kind"] = "object"
    elif "boolean" in types:
        entry["kind"] = "boolean"
    elif "array" in types:
        entry["kind"] = "array"
    elif "integer" in types:
        entry["kind"] = "integer"
    elif "number" in types:
        entry["kind"] = "decimal"
    else:
        entry["kind"] = "string"
    if spec.get("secret"):
        entry["sensitive"] = True
    if "default" in spec:
        entry["value"] = spec["default"]
    return entry


def definition() -> dict:
    return {
        "name": "tap-callreports",
        "variant": "callreports",
        "namespace": "tap_callreports",
        "label": "Call reports (Talkdesk, Zendesk, MyReports)",
        "description": TapCallReports.__doc__,
        "pip_url": "tap-callreports",
        "executable": "tap-callreports",
        # `repo`, `logo_url` and `docs` are added when the package is published.
        "capabilities": CAPABILITIES,
        "settings_group_validation": [
            ["start_date", "talkdesk_client_id", "talkdesk_client_secret"],
            ["start_date", "talkdesk_access_token"],
            ["start_date", "zendesk_email", "zendesk_api_token"],
            ["start_date", "zendesk_oauth_token"],
            ["start_date", "myreports_token"],
        ],
        "settings": [setting(name, spec) for name, spec in all_settings().items()],
    }


if __name__ == "__main__":
    path = ROOT / "hub" / "extractors" / "tap-callreports" / "callreports.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(definition(), sort_keys=False, width=110))
    print(f"wrote {path.relative_to(ROOT)}")
