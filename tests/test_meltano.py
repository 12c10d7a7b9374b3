"""The real pipeline: `meltano run tap-callreports target-…` against the sandbox, then what landed
in DuckDB, PostgreSQL and JSONL files, including an incremental second run with Meltano's state."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from helpers import LONDON_REPORT
from tap_callreports.sandbox import SandboxConfig, start_sandbox

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / ".tmp" / "meltano-project"
UTC = dt.timezone.utc
START, FIRST_END, SECOND_END = "2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z", "2026-10-04T00:00:00Z"
PG = {"host": "127.0.0.1", "port": os.environ.get("PGPORT", "55432"), "user": "postgres", "database": "postgres"}


def meltano_bin() -> str | None:
    return os.environ.get("MELTANO") or shutil.which("meltano")


@pytest.fixture(scope="module")
def project() -> Path:
    """A Meltano project made from the repo's meltano.yml (the tap installed from this checkout)."""
    binary = meltano_bin()
    if not binary:
        if os.environ.get("CI"):
            pytest.fail("meltano is not installed: `make test` installs it (.venv-meltano)")
        pytest.skip("meltano is not installed (run `make test`, which installs it)")
    PROJECT.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "meltano.yml").read_text().replace("pip_url: -e .", f"pip_url: -e {ROOT}")
    (PROJECT / "meltano.yml").write_text(text)
    for stale in ("output", ".meltano/meltano.db"):
        path = PROJECT / stale
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    (PROJECT / "output").mkdir()
    subprocess.run([binary, "install"], cwd=PROJECT, check=True, env=meltano_env({}),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    return PROJECT


def meltano_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_CALLREPORTS_", "VIRTUAL_ENV"))}
    return env | {"MELTANO_ENVIRONMENT": "sandbox", "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                  "MELTANO_DISABLE_TRACKING": "true"} | extra


def tap_env(sandbox, end_date: str) -> dict[str, str]:
    url = sandbox.url
    return {
        "TAP_CALLREPORTS_START_DATE": START, "TAP_CALLREPORTS_END_DATE": end_date,
        "TAP_CALLREPORTS_TALKDESK_API_URL": url, "TAP_CALLREPORTS_TALKDESK_TOKEN_URL": f"{url}/oauth/token",
        "TAP_CALLREPORTS_ZENDESK_API_URL": url, "TAP_CALLREPORTS_MYREPORTS_API_URL": f"{url}/api",
        "TAP_CALLREPORTS_TALKDESK_REPORT_TYPES": '["calls"]', "TAP_CALLREPORTS_TALKDESK_WINDOW_DAYS": "1",
        "TAP_CALLREPORTS_MYREPORTS_REPORT_IDS": json.dumps([LONDON_REPORT]),
        "TAP_CALLREPORTS_MYREPORTS_WINDOW_DAYS": "1",
        # (decimal settings come from meltano.yml's sandbox environment: Meltano 4.4 turns `kind: decimal`
        # values read from the environment into Decimal and then fails to write them as JSON)
    }


def meltano_run(project: Path, loader: str, env: dict[str, str]) -> str:
    result = subprocess.run([meltano_bin(), "run", "tap-callreports", loader], cwd=project, env=meltano_env(env),
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr


def expected_counts(sandbox, start: str, end: str) -> dict[str, int]:
    lo, hi = (dt.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (start, end))
    data = sandbox.app.data
    return {
        "talkdesk_calls": sum(1 for _ in data.talkdesk_rows("calls", lo, hi, ZoneInfo("UTC"), dt.datetime.now(UTC))),
        "myreports_call_rows": len(data.myreports_rows(LONDON_REPORT, lo, hi)),
        "talkdesk_imports": sum(1 for r in data.imports() if start <= r["updated_at"] < end),
        "zendesk_job_statuses": len(data.job_statuses()),
    }


def assert_only_new_rows_added(first: dict, after: dict, new: dict, imports_added: int) -> None:
    """After the incremental second run: appended/upserted exactly the rows of the new window."""
    assert after["talkdesk_calls"] == first["talkdesk_calls"] + new["talkdesk_calls"]
    assert after["myreports_call_rows"] == first["myreports_call_rows"] + new["myreports_call_rows"]
    assert after["talkdesk_imports"] == first["talkdesk_imports"] + imports_added
    assert after["zendesk_job_statuses"] == first["zendesk_job_statuses"]  # full table, upserted by id


@pytest.fixture
def pipeline_sandbox():
    sandbox = start_sandbox(SandboxConfig(seed=5, list_anchor=FIRST_END, job_polls=2))
    yield sandbox
    sandbox.stop()


def add_imports(sandbox, count: int, at: str) -> None:
    requests.post(f"{sandbox.url}/_sandbox/talkdesk/imports", params={"count": count, "at": at}, timeout=10).raise_for_status()


def test_duckdb_and_jsonl_pipelines_and_incremental_state(project, pipeline_sandbox):
    import duckdb

    sandbox = pipeline_sandbox
    logs = meltano_run(project, "target-duckdb", tap_env(sandbox, FIRST_END))
    first = expected_counts(sandbox, START, FIRST_END)
    assert min(first.values()) > 0
    db = project / "output" / "callreports.duckdb"

    def counts() -> dict[str, int]:
        with duckdb.connect(str(db), read_only=True) as con:
            return {t: con.execute(f'select count(*) from callreports.callreports."{t}"').fetchone()[0] for t in first}

    assert counts() == first
    # logs a user can follow: windows, jobs, rows so far, SDK metrics; no secrets
    for needle in ("window(s) planned", "created job", "done after", "rows so far", "METRIC"):
        assert needle in logs, needle
    assert "sandbox-client-secret" not in logs and "sandbox-myreports-token" not in logs

    add_imports(sandbox, 3, "2026-10-03T06:00:00Z")
    meltano_run(project, "target-duckdb", tap_env(sandbox, SECOND_END))
    assert_only_new_rows_added(first, counts(), expected_counts(sandbox, FIRST_END, SECOND_END), imports_added=3)

    meltano_run(project, "target-jsonl", tap_env(sandbox, FIRST_END))
    lines = {p.stem: len(p.read_text().splitlines()) for p in (project / "output").glob("*.jsonl")}
    assert lines["talkdesk_calls"] == first["talkdesk_calls"]
    assert lines["myreports_call_rows"] == first["myreports_call_rows"]


def psql(sql: str) -> list[list[str]]:
    result = subprocess.run(["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-d", PG["database"],
                             "-At", "-F", "\t", "-c", sql], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines() if line]


@pytest.fixture
def postgres():
    if shutil.which("psql") is None or subprocess.run(
            ["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-c", "select 1"],
            capture_output=True, timeout=30, check=False).returncode != 0:
        if os.environ.get("CI_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not running on 127.0.0.1:55432: `make postgres` starts it")
        pytest.skip("PostgreSQL is not running (`make postgres` starts one on 127.0.0.1:55432)")
    psql("drop schema if exists callreports cascade")
    return psql


def test_postgres_pipeline_types_keys_and_incremental(project, pipeline_sandbox, postgres):
    sandbox = pipeline_sandbox
    meltano_run(project, "target-postgres", tap_env(sandbox, FIRST_END))
    first = expected_counts(sandbox, START, FIRST_END)

    def counts() -> dict[str, int]:
        return {t: int(postgres(f"select count(*) from callreports.{t}")[0][0]) for t in first}

    assert counts() == first
    types = collections.defaultdict(dict)
    for table, column, data_type in postgres(
            "select table_name, column_name, data_type from information_schema.columns where table_schema='callreports'"):
        types[table][column] = data_type
    assert types["talkdesk_imports"]["updated_at"].startswith("timestamp")
    assert types["talkdesk_imports"]["total_records"] in ("bigint", "integer", "numeric")
    assert types["zendesk_job_statuses"]["results"] == "jsonb"
    assert types["myreports_requests"]["summary"] == "jsonb"
    assert types["myreports_call_rows"]["start_utc"].startswith("timestamp")
    assert types["myreports_call_rows"]["duration"] in ("numeric", "double precision", "real")
    assert types["talkdesk_calls"]["talk_time"] in ("bigint", "integer", "numeric")
    keys = {(t, c) for t, c in postgres(
        "select tc.table_name, kcu.column_name from information_schema.table_constraints tc "
        "join information_schema.key_column_usage kcu using (constraint_schema, constraint_name) "
        "where tc.table_schema='callreports' and tc.constraint_type='PRIMARY KEY'")}
    assert {("talkdesk_imports", "id"), ("zendesk_job_statuses", "id"), ("myreports_call_rows", "docId")} <= keys
    duplicates = postgres('select count(*) - count(distinct "docId") from callreports.myreports_call_rows')
    assert duplicates == [["0"]]

    add_imports(sandbox, 3, "2026-10-03T06:00:00Z")
    meltano_run(project, "target-postgres", tap_env(sandbox, SECOND_END))
    assert_only_new_rows_added(first, counts(), expected_counts(sandbox, FIRST_END, SECOND_END), imports_added=3)
