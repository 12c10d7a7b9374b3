"""What a user installs: the package (one backoff distribution, a clean `pip check`, a wheel and an
sdist that install and answer `--about`), the Meltano Hub definition, and meltano.yml's generated
entry surviving Meltano's own rewrite of the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import generate  # noqa: E402
from helpers import file_lock, run_cli  # noqa: E402

# ---- the Hub definition ------------------------------------------------------------------------------

# Meltano Hub's rules for an extractor definition, restated from meltano/hub `schemas/`
# (plugin_definitions/extractors.schema.json, hub_metadata.schema.json, common/common.schema.json,
# common/extractors_specific.schema.json, common/base_setting.schema.json; the version that made
# `quality` required). The Hub validates every definition against them in its CI.
_STRINGS = {"type": "array", "items": {"type": "string"}}
HUB_SETTING = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "aliases": _STRINGS,
        "label": {"type": "string"},
        "value": {},
        "placeholder": {"type": "string"},
        "description": {"type": "string"},
        "tooltip": {"type": "string"},
        "documentation": {"type": "string"},
        "env": {"type": "string"},
        "docs": {"type": "string"},
        "kind": {
            "enum": [
                "oauth",
                "hidden",
                "password",
                "date_iso8601",
                "file",
                "email",
                "integer",
                "options",
                "object",
                "array",
                "boolean",
                "string",
                "decimal",
            ]
        },
        "value_processor": {"enum": ["upcase_string", "nest_object", "stringify"]},
        "value_post_processor": {"enum": ["upcase_string", "nest_object", "stringify"]},
        "oauth": {"type": "object", "required": ["provider"]},
        "options": {
            "type": "array",
            "items": {"type": "object", "properties": {"label": {"type": "string"}, "value": {"type": "string"}}},
        },
        "hidden": {"type": "boolean"},
        "sensitive": {"type": "boolean"},
    },
}
HUB_EXTRACTOR = {
    "type": "object",
    "required": ["name", "namespace", "variant", "quality"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "variant": {"type": "string"},
        "namespace": {"type": "string"},
        "label": {"type": "string"},
        "description": {"type": "string"},
        "pip_url": {"type": "string"},
        "executable": {"type": "string"},
        "docs": {"type": "string"},
        "repo": {"type": "string"},
        "logo_url": {"type": ["string", "null"]},
        "hidden": {"type": "boolean"},
        "python": {"type": "string"},
        "settings": {"type": "array", "items": HUB_SETTING},
        "settings_group_validation": {"type": "array", "items": _STRINGS},
        "commands": {"type": "object"},
        "metadata": {"type": "object"},
        "schema": {"type": "object"},
        "select": _STRINGS,
        "capabilities": {
            "type": "array",
            "items": {
                "enum": [
                    "properties",
                    "catalog",
                    "discover",
                    "state",
                    "about",
                    "stream-maps",
                    "schema-flattening",
                    "activate-version",
                    "batch",
                    "test",
                    "log-based",
                    "structured-logging",
                ]
            },
        },
        "maintenance_status": {"enum": ["active", "beta", "development", "inactive", "unknown"]},
        "quality": {"enum": ["gold", "silver", "bronze", "unknown"]},
        "domain_url": {"type": ["string", "null"], "format": "uri"},
        "keywords": _STRINGS,
        "requires": {"type": "object"},
        "definition": {"type": "string"},
        "next_steps": {"type": "string"},
        "settings_preamble": {"type": "string"},
        "usage": {"type": "string"},
        "prereq": {"type": "string"},
        "supported_python_versions": {"type": "array", "items": {"type": "string", "pattern": r"^3\.\d+$"}},
        "log_parser": {"type": "string"},
    },
}


def test_hub_definition_validates_against_the_hubs_extractor_schema():
    hub = yaml.safe_load(generate.HUB_PATH.read_text())
    validator = jsonschema.Draft7Validator(HUB_EXTRACTOR, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(hub)]
    assert errors == []
    # What a user and the Hub's page need beyond the schema's minimum.
    for field in ("repo", "keywords", "domain_url", "logo_url", "maintenance_status", "pip_url", "docs"):
        assert hub.get(field), field
    assert hub["domain_url"].startswith("https://") and hub["logo_url"].startswith("https://")
    # Three vendors: the domain is the tap's own, not one vendor's site.
    assert not any(vendor in hub["domain_url"] for vendor in ("talkdesk", "zendesk", "myreports")), hub["domain_url"]
    assert (ROOT / "hub" / "logo.svg").read_text().lstrip().startswith("<svg")  # what logo_url names
    # The supported versions are the ones CI runs and pyproject declares.
    ci = (ROOT / ".ci" / "run").read_text()
    assert all(re.search(rf"\b{re.escape(v)}\b", ci) for v in hub["supported_python_versions"]), ci
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert all(f"Python :: {v}" in pyproject for v in hub["supported_python_versions"])


def test_the_hub_pip_url_is_the_one_the_readme_tells_users_to_install():
    hub = yaml.safe_load(generate.HUB_PATH.read_text())
    assert hub["pip_url"].startswith("git+https://") and hub["pip_url"].endswith(".git")
    assert hub["pip_url"] in (ROOT / "README.md").read_text()


# ---- meltano.yml's entry, found structurally ---------------------------------------------------------


def meltanos_rewrite(text: str) -> str:
    """What `meltano config set` does to the file: re-dumped, comments gone, keys and indentation its own."""
    data = yaml.safe_load(text)
    entry = next(p for p in data["plugins"]["extractors"] if p["name"] == generate.PLUGIN_NAME)
    entry["settings"] = [dict(sorted(s.items())) for s in entry["settings"]]  # another key order
    return yaml.safe_dump(data, sort_keys=False, width=100)


def test_a_rewritten_meltano_yml_is_current_and_regenerates_in_place():
    original = generate.MELTANO_PATH.read_text()
    rewritten = meltanos_rewrite(original)
    assert "#" not in rewritten
    assert generate.render_meltano(rewritten) == rewritten  # the same entry in Meltano's format: current

    # A stale entry (an old description, a setting gone) is replaced where it stands; the rest is untouched.
    data = yaml.safe_load(rewritten)
    entry = next(p for p in data["plugins"]["extractors"] if p["name"] == generate.PLUGIN_NAME)
    entry["settings"][0]["description"] = "an old description"
    del entry["settings"][-1]
    stale = yaml.safe_dump(data, sort_keys=False, width=100)
    regenerated = generate.render_meltano(stale)
    assert generate.current_entry(regenerated) == generate.meltano_entry()
    again = yaml.safe_load(regenerated)
    assert {k: v for k, v in again.items() if k != "plugins"} == {k: v for k, v in data.items() if k != "plugins"}
    assert again["plugins"]["extractors"][1:] == data["plugins"]["extractors"][1:]
    assert again["plugins"]["loaders"] == data["plugins"]["loaders"]
    assert generate.render_meltano(regenerated) == regenerated


def test_the_entry_is_found_among_comments_and_other_extractors():
    text = (
        "plugins:\n"
        "  extractors:\n"
        "  # a comment Meltano kept\n"
        "  - name: tap-other\n"
        "    pip_url: tap-other\n"
        "  - name: tap-callreports   # the entry\n"
        "    settings:\n"
        "    - name: old\n"
        "\n"
        "  # the next plugin's comment stays\n"
        "  - name: tap-last\n"
        "  loaders: []\n"
    )
    first, end, indent = generate.find_entry(text)
    assert (first, end, indent) == (5, 8, "  ")
    rendered = generate.render_meltano(text)
    assert "  # the next plugin's comment stays\n  - name: tap-last\n" in rendered
    assert rendered.startswith(text[: text.index("  - name: tap-callreports")])
    assert generate.current_entry(rendered) == generate.meltano_entry()


def test_a_meltano_yml_without_the_entry_is_named():
    with pytest.raises(ValueError, match="has no 'tap-callreports' entry"):
        generate.find_entry("plugins:\n  extractors:\n  - name: tap-other\n")


# ---- catalog.example.json ------------------------------------------------------------------------------


def test_catalog_example_is_what_discovery_writes():
    import catalog_example

    assert catalog_example.PATH.read_text() == catalog_example.render(), "run: python scripts/catalog_example.py"
    catalog = json.loads(catalog_example.PATH.read_text())
    assert all(entry["key_properties"] for entry in catalog["streams"])  # every stream keyed


def test_catalog_example_as_the_catalog_syncs_every_stream(tmp_path, sandbox):
    import catalog_example

    catalog = json.loads(catalog_example.PATH.read_text())
    config = catalog_example.example_config(sandbox) | {"end_date": "2026-10-02T00:00:00Z"}
    run = run_cli(tmp_path, config, catalog=catalog, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    every = {entry["tap_stream_id"] for entry in catalog["streams"]}
    assert {m["stream"] for m in run.messages if m["type"] == "SCHEMA"} == every
    # Records from every stream but talkdesk_imports and the Talk exports (the sandbox's imports and
    # Talk calls end at its last midnight, not on this day).
    no_rows = {"talkdesk_imports", "zendesk_talk_calls", "zendesk_talk_legs"}
    assert {m["stream"] for m in run.messages if m["type"] == "RECORD"} == every - no_rows


# ---- the package -----------------------------------------------------------------------------------------


def _venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin"


def _run(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=900, check=False)
    assert result.returncode == 0, (argv, result.stdout[-2000:], result.stderr[-3000:])
    return result


# Every module the installed tap imports at run time (the sandbox needs its extra and is left out;
# `__main__` runs the command).
IMPORT_EVERY_MODULE = """
import importlib, importlib.metadata, pkgutil, tap_callreports
names = [m.name for m in pkgutil.walk_packages(tap_callreports.__path__, "tap_callreports.")
         if not m.name.startswith("tap_callreports.sandbox") and not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
import backoff
try:
    importlib.metadata.distribution("backoff")
except importlib.metadata.PackageNotFoundError:
    pass
else:
    raise SystemExit("two distributions own backoff/: the unmaintained `backoff` is installed too")
print(len(names), importlib.metadata.distribution("python-backoff").version)
"""


@pytest.mark.slow
def test_the_wheel_and_sdist_pass_twine_check_and_the_wheel_installs_clean_and_answers(tmp_path):
    """What `pip install tap-callreports` gets: the wheel built from this checkout (as `pip install .`
    builds it), in a fresh venv: a clean `pip check`, every module importable, `--about` answers."""
    dist = tmp_path / "dist"
    with file_lock("source-tree"):  # `build` writes the egg-info into the checkout
        _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    checked = _run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists).stdout
    assert checked.count("PASSED") == 2, checked

    import tarfile
    import zipfile

    wheel_files = zipfile.ZipFile(wheels[0]).namelist()
    assert "tap_callreports/schemas/talkdesk_calls.json" in wheel_files
    assert any(name.endswith("licenses/LICENSE") for name in wheel_files)
    sdist_files = {name.split("/", 1)[1] for name in tarfile.open(sdists[0]).getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "tap_callreports/schemas/talkdesk_calls.json"} <= sdist_files

    # One fresh venv for both questions: a second install of every dependency costs minutes of CI.
    bin_ = _venv(tmp_path / "venv")
    _run(bin_ / "pip", "install", "--quiet", "--disable-pip-version-check", wheels[0])
    _run(bin_ / "pip", "check")
    imported = _run(bin_ / "python", "-c", IMPORT_EVERY_MODULE, cwd=tmp_path).stdout.split()
    assert int(imported[0]) >= 20, imported
    about = json.loads(_run(bin_ / "tap-callreports", "--about", "--format=json", cwd=tmp_path).stdout)
    assert about["name"] == "tap-callreports" and "batch" in about["capabilities"]
    assert "start_date" in about["settings"]["properties"]
