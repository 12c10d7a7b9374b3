"""Running the tap against the sandbox, in-process (fast) or as the real CLI (exit codes, stderr)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path

from tap_callreports.sandbox import RunningSandbox

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def file_lock(name: str) -> t.Iterator[None]:
    """Held by one pytest process at a time (the suite runs in pytest-xdist workers): for the steps
    that write shared places, a target's venv under .tmp, or the build files pip and `build` write
    into the checkout (`*.egg-info`, `build/`)."""
    locks = ROOT / ".tmp" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: The throwaway PostgreSQL of `make postgres` (loopback, trust auth).
PG = {"host": "127.0.0.1", "port": os.environ.get("PGPORT", "55432"), "user": "postgres", "database": "postgres"}

SANDBOX_SECRETS = (
    "sandbox-client-secret",
    "sandbox-talkdesk-token",
    "sandbox-zendesk-token",
    "sandbox-zendesk-oauth",
    "sandbox-myreports-token",
    "sandbox-myreports-secret",
    "sandbox-myreports-refresh",
)
MYREPORTS_WS = "00000000-0000-0000-0000-000000000001"
LONDON_REPORT = "00000000-0000-0000-0000-000000000001"
NEW_YORK_REPORT = "00000000-0000-0000-0000-000000000002"


def sandbox_config(
    sandbox: RunningSandbox, vendors: t.Iterable[str] = ("talkdesk", "zendesk", "myreports"), **overrides: t.Any
) -> dict[str, t.Any]:
    """A tap config pointing every configured vendor at the sandbox."""
    config: dict[str, t.Any] = {
        "start_date": "2026-10-01T00:00:00Z",
        "end_date": "2026-10-04T00:00:00Z",
        "job_poll_interval_seconds": 0.01,
        "job_poll_max_interval_seconds": 0.05,
        "retry_backoff_base_seconds": 0.01,
    }
    vendors = set(vendors)
    if "talkdesk" in vendors:
        config |= {
            "talkdesk_api_url": sandbox.url,
            "talkdesk_token_url": f"{sandbox.url}/oauth/token",
            "talkdesk_client_id": "sandbox-client-id",
            "talkdesk_client_secret": "sandbox-client-secret",
            "talkdesk_window_days": 1,
            "talkdesk_report_types": ["calls"],
        }
    if "zendesk" in vendors:
        config |= {
            "zendesk_api_url": sandbox.url,
            "zendesk_email": "agent@example.com",
            "zendesk_api_token": "sandbox-zendesk-token",
        }
    if "myreports" in vendors:
        config |= {
            "myreports_api_url": f"{sandbox.url}/api",
            "myreports_token": "sandbox-myreports-token",
            "myreports_workspace_id": MYREPORTS_WS,
            "myreports_report_ids": [LONDON_REPORT],
            "myreports_window_days": 1,
        }
    config.update(overrides)
    return config


#: Jobs that stay unfinished (done no sooner than job_seconds after creation) until `on_first_refusal`
#: lets them finish: the account is still full when the run asks for more, however slow the machine.
UNFINISHED = 1e9


def on_first_refusal(sandbox: RunningSandbox, **then: t.Any) -> None:
    """When the sandbox first refuses a job creation (its job_rejected event), set `then` in its
    config (read at each request): what was held until the run met a full account is let go."""
    app, note = sandbox.app, sandbox.app.event

    def event(kind: str, **details: t.Any) -> None:
        note(kind, **details)
        if kind == "job_rejected":
            for name, value in then.items():
                setattr(app.config, name, value)

    app.event = event  # the vendors note events through the app, in this process


@dataclass
class TapRun:
    messages: list[dict]
    stderr: str = ""
    returncode: int = 0
    error: BaseException | None = None

    def records(self, stream: str) -> list[dict]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict:
        return self.states[-1] if self.states else {}

    def schemas(self) -> dict[str, dict]:
        return {m["stream"]: m for m in self.messages if m["type"] == "SCHEMA"}

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _parse(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def catalog_selecting(config: dict, streams: t.Iterable[str]) -> dict:
    """Discover, then select only the named streams (all their fields)."""
    from tap_callreports.tap import TapCallReports

    catalog = TapCallReports(config=config, validate_config=False).catalog_dict
    wanted = set(streams)
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in wanted
    return catalog


def sync(
    config: dict, state: dict | None = None, catalog: dict | None = None, streams: t.Iterable[str] | None = None
) -> TapRun:
    """Run a sync in this process and collect its Singer messages; errors are kept, not raised."""
    from tap_callreports.tap import TapCallReports

    if streams is not None:
        catalog = catalog_selecting(config, streams)
    out = io.StringIO()
    error: BaseException | None = None
    with contextlib.redirect_stdout(out):
        try:
            tap = TapCallReports(config=config, state=state, catalog=catalog)
            tap.sync_all()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            error = exc
    return TapRun(messages=_parse(out.getvalue()), error=error, returncode=1 if error else 0)


def run_cli(
    tmp_path: Path,
    config: dict | None,
    *args: str,
    state: dict | None = None,
    catalog: dict | None = None,
    env: dict | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run the real `tap-callreports` command."""
    argv = [sys.executable, "-m", "tap_callreports"]
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
        argv += ["--config", str(tmp_path / "config.json")]
    if state is not None:
        (tmp_path / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(tmp_path / "state.json")]
    if catalog is not None:
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        argv += ["--catalog", str(tmp_path / "catalog.json")]
    argv += list(args)
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False
    )
    plain_json = "--about" in args or "--discover" in args
    messages = [] if plain_json else _parse(proc.stdout)
    run = TapRun(messages=messages, stderr=proc.stderr, returncode=proc.returncode)
    run.stdout = proc.stdout  # type: ignore[attr-defined]
    return run


def psql(sql: str) -> list[list[str]]:
    """Run SQL on the `make postgres` server; rows as lists of text."""
    result = subprocess.run(
        [
            "psql",
            "-h",
            PG["host"],
            "-p",
            PG["port"],
            "-U",
            PG["user"],
            "-d",
            PG["database"],
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-F",
            "\t",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def columns(schema: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in psql(
        f"select table_name, column_name, data_type from information_schema.columns where table_schema = '{schema}'"
    ):
        found.setdefault(table, {})[column] = data_type
    return found


def primary_keys(schema: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table, column in psql(
        "select tc.table_name, kcu.column_name from information_schema.table_constraints tc "
        "join information_schema.key_column_usage kcu using (constraint_schema, constraint_name) "
        f"where tc.table_schema = '{schema}' and tc.constraint_type = 'PRIMARY KEY'"
    ):
        found.setdefault(table, set()).add(column)
    return found


def require_postgres() -> None:
    """Skip without the `make postgres` server; in CI (CI_REQUIRE_POSTGRES) fail instead."""
    import pytest

    if (
        shutil.which("psql") is None
        or subprocess.run(
            ["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-c", "select 1"],
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
        != 0
    ):
        if os.environ.get("CI_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not running on 127.0.0.1:55432: `make postgres` starts it")
        pytest.skip("PostgreSQL is not running (`make postgres` starts one on 127.0.0.1:55432)")


#: Talkdesk calls durations (whole seconds) land in `<name>_seconds` (docs/talkdesk-report-rows.md).
CALLS_DURATIONS = ("total_time", "talk_time", "wait_time", "hold_time", "abandon_time", "total_ringing_time")


def landed_calls_row(row: dict) -> dict:
    """A sandbox calls row as the tap lands it: durations in `_seconds` columns, the Yes/No flag a
    boolean, empty text null (a CSV cell cannot tell "" from null)."""
    landed = {}
    for name, value in row.items():
        if value == "":
            value = None
        if name == "agent_disconnected" and value is not None:
            value = {"Yes": True, "No": False}[value]
        landed[f"{name}_seconds" if name in CALLS_DURATIONS else name] = value
    return landed
