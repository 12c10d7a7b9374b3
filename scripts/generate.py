"""Generate everything that describes the settings from the tap's settings schema (one source of truth):

- the `tap-callreports` plugin block of meltano.yml (between `# generated:start` and `# generated:end`),
- the Meltano Hub definition hub/extractors/tap-callreports/callreports.yml,
- the README's settings table (scripts/readme_settings.py).

`python scripts/generate.py` writes them; `--check` exits 1 naming each stale file (tests run it).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import yaml

from tap_callreports.tap import TapCallReports

ROOT = Path(__file__).resolve().parent.parent
HUB_PATH = ROOT / "hub" / "extractors" / "tap-callreports" / "callreports.yml"
MELTANO_PATH = ROOT / "meltano.yml"
README_PATH = ROOT / "README.md"
BLOCK_START = "    # generated:start (scripts/generate.py: edit tap_callreports/settings.py, then run it)\n"
BLOCK_END = "    # generated:end\n"

# What each vendor needs, as alternatives (Meltano's settings_group_validation: one group must be
# complete). The tap's own checks (tap_callreports/settings.py) accept each of these alone.
VENDOR_REQUIREMENTS: dict[str, list[list[str]]] = {
    "talkdesk": [
        ["talkdesk_client_id", "talkdesk_client_secret", "talkdesk_account_name"],
        ["talkdesk_client_id", "talkdesk_client_secret", "talkdesk_token_url"],
        ["talkdesk_access_token"],
    ],
    "zendesk": [
        [*credentials, host]
        for credentials in (["zendesk_email", "zendesk_api_token"], ["zendesk_oauth_token"])
        for host in ("zendesk_subdomain", "zendesk_api_url")
    ],
    "myreports": [
        [*credentials, "myreports_workspace_id", "myreports_report_ids"]
        for credentials in (["myreports_token"], ["myreports_refresh_token", "myreports_token_url"])
    ],
}


def settings_group_validation() -> list[list[str]]:
    return [["start_date", *group] for groups in VENDOR_REQUIREMENTS.values() for group in groups]


def about() -> dict:
    info = TapCallReports._get_about_info()
    return {"capabilities": [str(c) for c in info.capabilities], "settings": info.settings["properties"]}


def meltano_kind(spec: dict) -> str:
    """The Meltano setting kind for a JSON schema property. Never `decimal`: Meltano 4.4 turns a
    decimal read from the environment into a Decimal and fails to write the config file; numbers
    with fractions are `string` kind and the tap accepts numeric strings."""
    types = spec.get("type", [])
    types = {types} if isinstance(types, str) else set(types)
    if spec.get("format") == "date-time":
        return "date_iso8601"
    if spec.get("enum"):
        return "options"
    for json_type, kind in (("object", "object"), ("boolean", "boolean"), ("array", "array")):
        if json_type in types:
            return kind
    if "integer" in types:
        return "integer"
    return "string"


def setting(name: str, spec: dict) -> dict:
    entry: dict = {"name": name, "label": spec.get("title", name)}
    if spec.get("description"):
        entry["description"] = spec["description"]
    entry["kind"] = meltano_kind(spec)
    if entry["kind"] == "options":
        entry["options"] = [{"label": value, "value": value} for value in spec["enum"] if value is not None]
    if spec.get("secret"):
        entry["sensitive"] = True
    if "default" in spec:
        entry["value"] = spec["default"]
    return entry


def all_settings() -> list[dict]:
    """The tap's settings plus the SDK's built-in ones (stream maps, flattening, batch, faker)."""
    return [setting(name, spec) for name, spec in about()["settings"].items()]


def hub_definition() -> dict:
    return {
        "name": "tap-callreports",
        "variant": "callreports",
        "namespace": "tap_callreports",
        "label": "Call reports (Talkdesk, Zendesk, MyReports)",
        "description": TapCallReports.__doc__,
        "pip_url": "tap-callreports",
        "executable": "tap-callreports",
        # `repo`, `logo_url` and `docs` are added when the package is published.
        "capabilities": about()["capabilities"],
        "settings_group_validation": settings_group_validation(),
        "settings": all_settings(),
    }


def _flow(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()


def meltano_block() -> str:
    """The extractor entry of meltano.yml, one setting per line."""
    lines = [
        "    - name: tap-callreports",
        "      namespace: tap_callreports",
        "      pip_url: -e .",
        "      executable: tap-callreports",
        f"      capabilities: {_flow(about()['capabilities'])}",
        "      settings_group_validation:",
        *(f"        - {_flow(group)}" for group in settings_group_validation()),
        "      settings:",
        *(f"        - {_flow(entry)}" for entry in all_settings()),
    ]
    return "\n".join(lines) + "\n"


def render_meltano(text: str) -> str:
    before, rest = text.split(BLOCK_START, 1)
    _old, after = rest.split(BLOCK_END, 1)
    return f"{before}{BLOCK_START}{meltano_block()}{BLOCK_END}{after}"


def render_hub() -> str:
    return yaml.safe_dump(hub_definition(), sort_keys=False, width=110)


def render_readme(text: str) -> str:
    spec = importlib.util.spec_from_file_location("readme_settings", ROOT / "scripts" / "readme_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render(text)


def targets() -> dict[Path, str]:
    """Each generated file and what it should contain."""
    return {
        MELTANO_PATH: render_meltano(MELTANO_PATH.read_text()),
        HUB_PATH: render_hub(),
        README_PATH: render_readme(README_PATH.read_text()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    args = parser.parse_args(argv)
    stale = []
    for path, wanted in targets().items():
        current = path.read_text() if path.exists() else None
        if current == wanted:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted)
    if args.check and stale:
        print(f"generate.py: stale: {', '.join(map(str, stale))}; run python scripts/generate.py", file=sys.stderr)
        return 1
    print(f"generate.py: {'wrote ' + ', '.join(map(str, stale)) if stale else 'everything is current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
