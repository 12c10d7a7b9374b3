"""Generate everything that describes the settings from the tap's settings schema (one source of truth):

- the `tap-callreports` entry of meltano.yml's `plugins.extractors` (found by parsing the YAML, not by
  comment markers: `meltano config set` rewrites the file and drops comments),
- the Meltano Hub definition hub/extractors/tap-callreports/callreports.yml,
- the settings tables of docs/settings.md (the tap's own settings apart from the SDK's built-ins).

`python scripts/generate.py` writes them; `--check` exits 1 naming each stale file (tests run it).
meltano.yml is stale only when its entry *means* something else: Meltano's own formatting of the
same entry (key order, quoting, indentation) is current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from tap_callreports.settings import SETTINGS_SCHEMA
from tap_callreports.tap import TapCallReports

ROOT = Path(__file__).resolve().parent.parent
HUB_PATH = ROOT / "hub" / "extractors" / "tap-callreports" / "callreports.yml"
MELTANO_PATH = ROOT / "meltano.yml"
SETTINGS_DOC_PATH = ROOT / "docs" / "settings.md"
PLUGIN_NAME = "tap-callreports"

# Where the project lives: the Hub's `repo`/`docs` and the pip_url a user installs from (the package
# is not on PyPI; README "Installation" says so).
REPO_URL = "https://github.com/callreports/tap-callreports"
PIP_URL = f"git+{REPO_URL}.git"
SUPPORTED_PYTHON = ["3.11", "3.12", "3.13"]  # CI: .ci/run

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
    return {
        "capabilities": [str(c) for c in info.capabilities],
        "settings": info.settings["properties"],
        "required": info.settings.get("required", []),
    }


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
        "name": PLUGIN_NAME,
        "variant": "callreports",
        "namespace": "tap_callreports",
        "label": "Call reports (Talkdesk, Zendesk, MyReports)",
        "description": TapCallReports.__doc__,
        "pip_url": PIP_URL,
        "executable": "tap-callreports",
        "repo": REPO_URL,
        "docs": f"{REPO_URL}#readme",
        "logo_url": f"{REPO_URL}/raw/main/hub/logo.svg",
        # The source is three vendors' APIs, not one website: the tap's own home, not one vendor's.
        "domain_url": REPO_URL,
        "keywords": ["meltano_sdk", "talkdesk", "zendesk", "myreports", "contact center", "call reports"],
        "maintenance_status": "beta",
        # The Hub's maintainers grade connectors; a new definition starts ungraded.
        "quality": "unknown",
        "supported_python_versions": SUPPORTED_PYTHON,
        "log_parser": "singer-sdk",
        "capabilities": about()["capabilities"],
        "settings_group_validation": settings_group_validation(),
        "settings": all_settings(),
    }


# ---- meltano.yml: the plugin entry, found structurally ----------------------------------------


def meltano_entry() -> dict:
    """What meltano.yml's tap-callreports entry says (the project installs the tap from its checkout)."""
    return {
        "name": PLUGIN_NAME,
        "namespace": "tap_callreports",
        "pip_url": "-e .",
        "executable": "tap-callreports",
        "capabilities": about()["capabilities"],
        "settings_group_validation": settings_group_validation(),
        "settings": all_settings(),
    }


def _flow(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()


def render_entry(indent: str) -> str:
    """The entry as YAML lines, one setting per line, its `- ` at `indent`."""
    entry = meltano_entry()
    inner = indent + "  "
    lines = [f"{indent}- name: {entry['name']}"]
    for key in ("namespace", "pip_url", "executable"):
        lines.append(f"{inner}{key}: {entry[key]}")
    lines.append(f"{inner}capabilities: {_flow(entry['capabilities'])}")
    for key in ("settings_group_validation", "settings"):
        lines.append(f"{inner}{key}:")
        lines.extend(f"{inner}  - {_flow(item)}" for item in entry[key])
    return "\n".join(lines) + "\n"


def _last_mark(node: yaml.Node) -> yaml.Mark:
    """Where a node's own text ends: a block collection's BLOCK-END mark lies at the next token,
    past any comment between, so descend to its last child instead."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_mark(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_mark(node.value[-1])
    return node.end_mark


def _child(node: yaml.Node, key: str) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if key_node.value == key:
                return value
    raise ValueError(f"meltano.yml has no '{key}' where the tap's plugin entry belongs")


def find_entry(text: str) -> tuple[int, int, str]:
    """(first line, line after the last, indentation of its `- `) of the tap-callreports entry
    under plugins.extractors, whatever the file's formatting and comments."""
    extractors = _child(_child(yaml.compose(text), "plugins"), "extractors")
    if not isinstance(extractors, yaml.SequenceNode) or extractors.flow_style:
        raise ValueError("meltano.yml: plugins.extractors is not a block list")
    for item in extractors.value:
        if isinstance(item, yaml.MappingNode) and _child(item, "name").value == PLUGIN_NAME:
            first = item.start_mark.line
            line = text.splitlines()[first]
            dash = line.rfind("-", 0, item.start_mark.column)
            if dash < 0 or line[:dash].strip():
                raise ValueError(f"meltano.yml line {first + 1}: the {PLUGIN_NAME} entry does not start its line")
            end = _last_mark(item)
            return first, end.line + (1 if end.column else 0), line[:dash]
    raise ValueError(f"meltano.yml: plugins.extractors has no '{PLUGIN_NAME}' entry")


def current_entry(text: str) -> dict:
    extractors = yaml.safe_load(text)["plugins"]["extractors"]
    return next(p for p in extractors if p.get("name") == PLUGIN_NAME)


def render_meltano(text: str) -> str:
    """meltano.yml with the entry replaced; unchanged when it already means the generated entry."""
    if current_entry(text) == meltano_entry():
        return text
    first, end, indent = find_entry(text)
    lines = text.splitlines(keepends=True)
    rendered = "".join(lines[:first]) + render_entry(indent) + "".join(lines[end:])
    assert current_entry(rendered) == meltano_entry(), "generate.py: the rendered meltano.yml entry does not parse back"
    return rendered


# ---- docs/settings.md: the tap's settings, grouped, apart from the SDK's ---------------------------

SETTINGS_START, SETTINGS_END = "<!-- settings:start (scripts/generate.py) -->", "<!-- settings:end -->"
GROUPS = [("Every vendor", ""), ("Talkdesk", "talkdesk_"), ("Zendesk", "zendesk_"), ("MyReports", "myreports_")]


def _cell(value: object) -> str:
    text = "" if value is None else (", ".join(map(str, value)) if isinstance(value, list) else str(value))
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(properties: dict, required: list[str]) -> list[str]:
    """One row per setting, nested object members (batch_config.encoding...) as dotted names."""
    rows = []
    for name, spec in properties.items():
        default = f"`{_cell(spec['default'])}`" if spec.get("default") not in (None, []) else ""
        secret = " (secret)" if spec.get("secret") else ""
        rows.append(
            f"| `{name}` | {'yes' if name in required else ''} | {default} | "
            f"{_cell(spec.get('description', ''))}{secret} |"
        )
        if spec.get("properties"):
            nested = {f"{name}.{k}": v for k, v in spec["properties"].items()}
            rows.extend(_rows(nested, []))
    return rows


def settings_tables() -> str:
    info = about()
    header = ["| Setting | Required | Default | Description |", "|:--|:-:|:--|:--|"]
    ours = SETTINGS_SCHEMA["properties"]
    out = []
    for title, prefix in GROUPS:
        group = {
            name: spec
            for name, spec in ours.items()
            if (name.startswith(prefix) if prefix else not name.startswith(tuple(p for _, p in GROUPS if p)))
        }
        out += [f"### {title}", "", *header, *_rows(group, info["required"]), ""]
    sdk = {name: spec for name, spec in info["settings"].items() if name not in ours}
    out += [
        "### The Singer SDK's built-in settings",
        "",
        "Stream maps, flattening and BATCH files, as every SDK tap has them "
        "([SDK docs](https://sdk.meltano.com/en/latest/)).",
        "",
        *header,
        *_rows(sdk, []),
    ]
    return "\n".join(out)


def render_settings_doc(text: str) -> str:
    before, rest = text.split(SETTINGS_START, 1)
    _old, after = rest.split(SETTINGS_END, 1)
    return f"{before}{SETTINGS_START}\n{settings_tables()}\n{SETTINGS_END}{after}"


def render_hub() -> str:
    return yaml.safe_dump(hub_definition(), sort_keys=False, width=110)


def targets() -> dict[Path, str]:
    """Each generated file and what it should contain."""
    return {
        MELTANO_PATH: render_meltano(MELTANO_PATH.read_text()),
        HUB_PATH: render_hub(),
        SETTINGS_DOC_PATH: render_settings_doc(SETTINGS_DOC_PATH.read_text()),
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
