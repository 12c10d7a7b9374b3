"""What lands in a warehouse: the tap's CLI piped into the real targets (meltanolabs-target-postgres
into the PostgreSQL of `make postgres`, target-duckdb), over real HTTP against the sandbox.

- A run SIGKILLed mid-window, resumed from the STATE the target confirmed, then an incremental run
  with the default lookback: per table one row per key, exactly the sandbox's rows, UTC instants
  equal to the generator's across the Europe/Lisbon fall-back, timestamp columns, plain column names.
- Fields the schemas do not know (sandbox shapes talkdesk-extra-field, myreports-other-template)
  become columns with their values, announced by a new SCHEMA before the first record carrying them.

The targets are installed once into .tmp/warehouse-targets/<name> (a venv each, reused).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import typing as t
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from helpers import (
    LONDON_REPORT,
    PG,
    columns,
    file_lock,
    primary_keys,
    psql,
    require_postgres,
    run_cli,
    sandbox_config,
    sync,
)
from tap_callreports.report_types import REPORT_TYPES
from tap_callreports.sandbox import RunningSandbox, SandboxConfig, start_sandbox

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / ".tmp" / "warehouse-targets"
UTC = dt.UTC
UTC_ZONE = ZoneInfo("UTC")
LISBON = ZoneInfo("Europe/Lisbon")
PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Per table: its key and the columns that must be `timestamp with time zone`.
TABLES = {
    "talkdesk_calls": (("call_id",), ("start_at", "end_at")),
    "talkdesk_user_status": (("user_id", "status_start_at"), ("status_start_at", "status_end_at")),
    "myreports_call_rows": (("doc_id",), ("start_utc",)),
}


# ---- the targets -------------------------------------------------------------------------------


def install_target(name: str, packages: t.Sequence[str]) -> Path:
    """The target's executable, from its own venv under .tmp/warehouse-targets (made once)."""
    with file_lock(f"target-{name}"):  # another xdist worker may be making it right now
        return _install_target(name, packages)


def _install_target(name: str, packages: t.Sequence[str]) -> Path:
    venv = TARGETS / name
    executable = venv / "bin" / f"target-{name}"
    if executable.exists():
        return executable
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True, timeout=300
        )
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *packages],
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(venv, ignore_errors=True)
        reason = f"could not install {' '.join(packages)}: {str(exc.stderr)[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return executable


@pytest.fixture(scope="module")
def target_postgres() -> Path:
    return install_target("postgres", ["meltanolabs-target-postgres==0.8.1"])


@pytest.fixture(scope="module")
def target_duckdb() -> Path:
    # duckdb 1.1: with duckdb 2.x, target-duckdb 0.8.0 drops the first row of some tables (see meltano.yml)
    return install_target("duckdb", ["target-duckdb==0.8.0", "duckdb==1.1.3"])


@pytest.fixture
def pg_schema() -> t.Iterator[str]:
    """A fresh schema in the `make postgres` server, dropped afterwards."""
    require_postgres()
    schema = f"warehouse_{uuid.uuid4().hex[:10]}"
    yield schema
    psql(f"drop schema if exists {schema} cascade")


def postgres_config(schema: str) -> dict:
    return {
        "host": PG["host"],
        "port": int(PG["port"]),
        "user": PG["user"],
        "password": "postgres",
        "database": PG["database"],
        "default_target_schema": schema,
    }


# ---- tap | target --------------------------------------------------------------------------------


@dataclass
class Pipe:
    """One `tap | target` run: what the tap wrote (the complete lines), what the target confirmed."""

    messages: list[dict] = field(default_factory=list)
    target_states: list[dict] = field(default_factory=list)
    killed: bool = False

    def sent(self, stream: str) -> int:
        return sum(1 for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream)

    @property
    def confirmed_state(self) -> dict | None:
        return self.target_states[-1] if self.target_states else None


def pipe(
    tmp: Path,
    name: str,
    tap_config: dict,
    target: Path,
    target_config: dict,
    state: dict | None = None,
    kill: t.Callable[[list[dict]], bool] | None = None,
    target_env: dict | None = None,
) -> Pipe:
    """Run the tap's CLI into the target, relaying whole lines; `kill(messages)` (asked after every
    RECORD) SIGKILLs the tap: the target gets every complete line that arrived, then end of input."""
    run_dir = tmp / name
    run_dir.mkdir()
    (run_dir / "tap.json").write_text(json.dumps(tap_config))
    (run_dir / "target.json").write_text(json.dumps(target_config))
    argv = [sys.executable, "-m", "tap_callreports", "--config", str(run_dir / "tap.json")]
    if state is not None:
        (run_dir / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(run_dir / "state.json")]
    result = Pipe()
    with (
        open(run_dir / "tap.err", "wb") as tap_err,
        open(run_dir / "target.out", "wb") as target_out,
        open(run_dir / "target.err", "wb") as target_err,
    ):
        loader = subprocess.Popen(
            [str(target), "--config", str(run_dir / "target.json")],
            stdin=subprocess.PIPE,
            stdout=target_out,
            stderr=target_err,
            env={**os.environ, **(target_env or {})},
        )
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=tap_err) as tap:
            assert tap.stdout is not None and loader.stdin is not None
            for line in tap.stdout:
                if not line.endswith(b"\n"):
                    break  # cut mid-line by the kill: the target never sees half a message
                message = json.loads(line)
                result.messages.append(message)
                try:
                    loader.stdin.write(line)
                except BrokenPipeError:  # the target stopped: its stderr says why
                    tap.kill()
                    break
                if message["type"] == "RECORD" and kill is not None and kill(result.messages):
                    tap.send_signal(signal.SIGKILL)
                    result.killed = True
                    break
            tap.wait(timeout=300)
        try:
            loader.stdin.close()
        except BrokenPipeError:
            pass
        assert loader.wait(timeout=600) == 0, f"{target.name}: {(run_dir / 'target.err').read_text()[-3000:]}"
    if not result.killed:
        assert tap.returncode == 0, (run_dir / "tap.err").read_text()[-4000:]
    result.target_states = [json.loads(line) for line in (run_dir / "target.out").read_text().splitlines() if line]
    return result


def kill_mid_window(stream: str, after: int) -> t.Callable[[list[dict]], bool]:
    """Kill once `after` records of `stream` followed the STATE that committed its first window:
    the second window is partly out and not committed."""
    seen = {"committed": False, "records": 0, "checked": 0}

    def decide(messages: list[dict]) -> bool:
        for message in messages[seen["checked"] :]:
            if message["type"] == "STATE":
                bookmark = message["value"].get("bookmarks", {}).get(stream, {})
                seen["committed"] = seen["committed"] or bool(bookmark.get("replication_key_value"))
            elif message["type"] == "RECORD" and message["stream"] == stream and seen["committed"]:
                seen["records"] += 1
        seen["checked"] = len(messages)
        return seen["records"] >= after

    return decide


# ---- what the sandbox holds ----------------------------------------------------------------------


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def wall_to_z(wall: str) -> str:
    """A wall time the generator wrote in UTC ('2026-10-25 00:30:00') as RFC 3339 UTC."""
    return wall.replace(" ", "T") + "Z"


def talkdesk_rows(
    sandbox: RunningSandbox, report_type: str, start: str, end: str, zone: ZoneInfo = UTC_ZONE
) -> list[dict]:
    """The sandbox's rows of one report type in [start, end), wall times written in `zone`."""
    now = dt.datetime.now(UTC)  # after the calls rename: the new field names
    return list(sandbox.app.data.talkdesk_rows(report_type, moment(start), moment(end), zone, now))


def z(column: str) -> str:
    """SQL: a timestamptz column as RFC 3339 UTC text (what the generator's instants look like)."""
    return f"""to_char({column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


# ---- a. killed, resumed, then incremental with lookback: one row per key, true instants -------------

START, FIRST_END, SECOND_END = "2026-09-20T00:00:00Z", "2026-11-10T00:00:00Z", "2026-11-20T00:00:00Z"
FALL_BACK = "2026-10-25T01:00:00Z"  # Lisbon and London: 02:00 summer time -> 01:00


def test_killed_resumed_and_incremental_runs_land_one_row_per_key_with_true_instants(
    tmp_path, target_postgres, pg_schema
):
    sandbox = start_sandbox(
        SandboxConfig(seed=21, rows_per_hour=10, myreports_rows_per_hour=4, job_polls=2, list_anchor=START)
    )
    try:
        config = sandbox_config(
            sandbox,
            vendors=("talkdesk", "myreports"),
            start_date=START,
            end_date=FIRST_END,
            talkdesk_report_types=["calls", "user_status"],
            talkdesk_report_timezone="Europe/Lisbon",
            talkdesk_window_days=31,
            myreports_report_ids=[LONDON_REPORT],
            myreports_window_days=31,
        )
        target_config = postgres_config(pg_schema)

        killed = pipe(
            tmp_path,
            "1-killed",
            config,
            target_postgres,
            target_config,
            kill=kill_mid_window("talkdesk_calls", after=2500),
            target_env={"PGTZ": "UTC"},
        )
        assert killed.killed, "the tap finished before the kill"
        state = killed.confirmed_state
        assert state is not None and state["bookmarks"]["talkdesk_calls"]["replication_key_value"]
        landed = int(psql(f"select count(*) from {pg_schema}.talkdesk_calls")[0][0])
        assert landed == killed.sent("talkdesk_calls")  # the rows of the cut window reached the warehouse

        resumed = pipe(
            tmp_path, "2-resumed", config, target_postgres, target_config, state=state, target_env={"PGTZ": "UTC"}
        )
        assert resumed.confirmed_state is not None

        # meltanolabs-target-postgres 0.8.1 creates every `format: date-time` column as `timestamp without
        # time zone` (run with PGTZ=UTC, as meltano.yml does, it holds UTC). The README's one-time
        # migration makes them timestamptz; the target keeps them so, and then the session's zone no
        # longer matters (the incremental run uses New York's).
        for table, (_, instants) in TABLES.items():
            for column in instants:
                psql(
                    f"alter table {pg_schema}.{table} alter column {column} type timestamptz "
                    f"using {column} at time zone 'UTC'"
                )
        incremental = pipe(
            tmp_path,
            "3-incremental",
            config | {"end_date": SECOND_END},
            target_postgres,
            target_config,
            state=resumed.confirmed_state,
            target_env={"PGTZ": "America/New_York"},
        )

        expected = {
            "talkdesk_calls": talkdesk_rows(sandbox, "calls", START, SECOND_END),
            "talkdesk_user_status": talkdesk_rows(sandbox, "user_status", START, SECOND_END),
            "myreports_call_rows": sandbox.app.data.myreports_rows(LONDON_REPORT, moment(START), moment(SECOND_END)),
        }
        new = {
            "talkdesk_calls": len(talkdesk_rows(sandbox, "calls", FIRST_END, SECOND_END)),
            "talkdesk_user_status": len(talkdesk_rows(sandbox, "user_status", FIRST_END, SECOND_END)),
            "myreports_call_rows": len(
                sandbox.app.data.myreports_rows(LONDON_REPORT, moment(FIRST_END), moment(SECOND_END))
            ),
        }
        runs = (killed, resumed, incremental)
        # Rows went out more than once (the cut window again, the lookback), yet each lands once.
        assert sum(run.sent("talkdesk_calls") for run in runs) > len(expected["talkdesk_calls"])
        for table, rows in expected.items():
            assert incremental.sent(table) > new[table], f"{table}: the lookback re-read nothing"
            key, _ = TABLES[table]
            count, distinct = psql(f"select count(*), count(distinct ({', '.join(key)})) from {pg_schema}.{table}")[0]
            assert int(count) == int(distinct) == len(rows) > 5000, table

        types = columns(pg_schema)
        keys = primary_keys(pg_schema)
        for table, table_columns in types.items():
            unquotable = [c for c in table_columns if not PLAIN_NAME.match(c)]
            assert not unquotable, f"{table}: {unquotable} need quoting"
        for table, (key, _) in TABLES.items():
            assert keys.get(table) == set(key), table

        # calls: start_at/end_at are the generator's instants
        calls = {r["call_id"]: (r["start_at"], r["end_at"]) for r in expected["talkdesk_calls"]}
        landed_calls = {
            row[0]: (row[1], row[2])
            for row in psql(f"select call_id, {z('start_at')}, {z('end_at')} from {pg_schema}.talkdesk_calls")
        }
        assert landed_calls == calls

        # user_status: wall times in the report zone; the generator's instants (its UTC wall times)
        # in status_*_at, the Lisbon wall times in status_*_at_local, across the fall-back
        in_lisbon = talkdesk_rows(sandbox, "user_status", START, SECOND_END, LISBON)
        statuses = {
            (r["user_id"], r["status_label"], wall_to_z(r["status_start_at"])): (
                wall_to_z(r["status_end_at"]),
                *(lisbon[c].replace(" ", "T") for c in ("status_start_at", "status_end_at")),
            )
            for r, lisbon in zip(expected["talkdesk_user_status"], in_lisbon, strict=True)
        }
        landed_statuses = {
            (row[0], row[1], row[2]): (row[3], row[4], row[5])
            for row in psql(
                f"select user_id, status_label, {z('status_start_at')}, {z('status_end_at')}, status_start_at_local, "
                f"status_end_at_local from {pg_schema}.talkdesk_user_status"
            )
        }
        assert landed_statuses == statuses
        # the repeated wall hour (01:xx in Lisbon, twice) holds rows of both instants
        repeated = [k for k, v in statuses.items() if v[1].startswith("2026-10-25T01:")]
        assert {k[2] < FALL_BACK for k in repeated} == {True, False}

        # MyReports: start_utc is the generator's instant, start_local the report's wall time
        calls_rows = {
            row["docId"]: (dt.datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), row["start"])
            for ts, row in expected["myreports_call_rows"]
        }
        landed_rows = {
            row[0]: (row[1], row[2])
            for row in psql(f"select doc_id, {z('start_utc')}, start_local from {pg_schema}.myreports_call_rows")
        }
        assert landed_rows == calls_rows
        london_repeated = [v for v in calls_rows.values() if v[1].startswith("2026-10-25T01:")]
        assert {utc < FALL_BACK for utc, _ in london_repeated} == {True, False}

        # the Talkdesk jobs ran in the report zone, and in UTC within a day of the fall-back
        assert {row[0] for row in psql(f"select distinct timezone from {pg_schema}.talkdesk_report_jobs")} == {
            "Europe/Lisbon",
            "UTC",
        }

        time_types = {
            f"{table}.{column}": types[table][column] for table, (_, instants) in TABLES.items() for column in instants
        }
        assert set(time_types.values()) == {"timestamp with time zone"}, time_types
    finally:
        sandbox.stop()


# ---- b. fields the schema does not know become columns, in PostgreSQL and DuckDB ------------------

NEW_COLUMNS = {
    "talkdesk_calls": ("sentiment_score", "queue_tags", "sentiment_scored_at"),
    "talkdesk_user_status": ("sentiment_score", "queue_tags", "sentiment_scored_at"),
    "myreports_call_rows": ("talk_time", "hold_count", "transferred_to"),
}
SHAPED_START, SHAPED_END = "2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z"


@pytest.fixture(scope="module")
def shaped_run() -> t.Iterator[tuple[RunningSandbox, dict]]:
    sandbox = start_sandbox(
        SandboxConfig(
            seed=8,
            rows_per_hour=4,
            myreports_rows_per_hour=4,
            job_polls=1,
            list_anchor=SHAPED_START,
            shapes=("talkdesk-extra-field", "myreports-other-template"),
        )
    )
    config = sandbox_config(
        sandbox,
        vendors=("talkdesk", "myreports"),
        start_date=SHAPED_START,
        end_date=SHAPED_END,
        talkdesk_report_types=["calls", "user_status"],
    )
    yield sandbox, config
    sandbox.stop()


def shaped_expectations(sandbox: RunningSandbox) -> dict[str, dict[str, dict]]:
    """Per table: key text -> the new columns' values, as the sandbox wrote them."""
    calls = talkdesk_rows(sandbox, "calls", SHAPED_START, SHAPED_END)
    statuses = talkdesk_rows(sandbox, "user_status", SHAPED_START, SHAPED_END)
    rows = sandbox.app.data.myreports_rows(LONDON_REPORT, moment(SHAPED_START), moment(SHAPED_END))

    def added(row: dict) -> dict:
        """Unknown Talkdesk fields land as text (JSON values as their JSON text), instants as UTC."""
        scored = row["sentiment_scored_at"]
        return {
            "sentiment_score": row["sentiment_score"],
            "queue_tags": json.dumps(row["queue_tags"], separators=(",", ":")),
            "sentiment_scored_at": scored if scored is None or scored.endswith("Z") else wall_to_z(scored),
        }

    return {
        "talkdesk_calls": {r["call_id"]: added(r) for r in calls},
        "talkdesk_user_status": {
            f"{r['user_id']}|{r['status_label']}|{wall_to_z(r['status_start_at'])}": added(r) for r in statuses
        },
        "myreports_call_rows": {
            r["docId"]: {
                "talk_time": r["talkTime"],
                "hold_count": r["holdCount"],
                "transferred_to": r.get("transferredTo"),
            }
            for _, r in rows
        },
    }


def key_sql(table: str, instant: t.Callable[[str], str]) -> str:
    if table == "talkdesk_user_status":
        return f"user_id || '|' || status_label || '|' || {instant('status_start_at')}"
    return TABLES[table][0][0]


def same_values(landed: dict[str, dict], expected: dict[str, dict]) -> None:
    assert landed.keys() == expected.keys()
    for key, values in expected.items():
        for column, value in values.items():
            got = landed[key][column]
            if column.endswith("_at") and got is not None:  # an instant: compared as one
                got = dt.datetime.fromisoformat(str(got).replace("Z", "+00:00"))
                got = (got if got.tzinfo else got.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(value, float) or isinstance(got, float):
                assert got is not None and value is not None and abs(float(got) - value) < 1e-9, (key, column)
            else:
                assert got == value, (key, column, got, value)


def test_new_vendor_fields_get_a_schema_before_their_first_record(shaped_run, tmp_path):
    """The tap's own output: for every record, the last SCHEMA of its stream lists each of its
    non-null fields, and each stream's schema grew (2 or more SCHEMAs) with exactly the new fields."""
    _, config = shaped_run
    tap = run_cli(tmp_path, config)
    assert tap.returncode == 0, tap.stderr[-3000:]
    current: dict[str, set[str]] = {}
    schemas: dict[str, list[set[str]]] = {}
    for message in tap.messages:
        if message["type"] == "SCHEMA":
            current[message["stream"]] = set(message["schema"]["properties"])
            schemas.setdefault(message["stream"], []).append(current[message["stream"]])
        elif message["type"] == "RECORD":
            carried = {k for k, v in message["record"].items() if v is not None}
            assert carried <= current[message["stream"]], (message["stream"], carried - current[message["stream"]])
    for table, new in NEW_COLUMNS.items():
        grown = schemas[table]
        assert 2 <= len(grown) <= 1 + len(new), table
        assert grown[-1] - grown[0] == set(new), table
        assert all(a < b for a, b in zip(grown, grown[1:])), table  # only ever adds


def test_new_vendor_fields_become_columns_in_postgres_with_their_values(
    shaped_run, tmp_path, target_postgres, pg_schema
):
    sandbox, config = shaped_run
    pipe(tmp_path, "postgres", config, target_postgres, postgres_config(pg_schema))
    types = columns(pg_schema)
    for table, new in NEW_COLUMNS.items():
        assert set(new) <= set(types[table]), table
    assert types["talkdesk_calls"]["queue_tags"] in ("text", "character varying")  # unknown: text in every format
    assert types["talkdesk_calls"]["sentiment_scored_at"].startswith("timestamp")
    assert types["myreports_call_rows"]["transferred_to"] in ("text", "character varying")
    for table, expected in shaped_expectations(sandbox).items():
        new = NEW_COLUMNS[table]
        select = ", ".join(f"coalesce(to_json({c})::text, 'null')" for c in new)
        landed = {
            row[0]: {c: json.loads(v) for c, v in zip(new, row[1:])}
            for row in psql(f"select {key_sql(table, z)}, {select} from {pg_schema}.{table}")
        }
        same_values(landed, expected)


DUCKDB_QUERY = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
plain = lambda v: v if v is None or isinstance(v, (int, float, str, list)) else str(v)
print(json.dumps({q: [[plain(v) for v in row] for row in con.execute(q).fetchall()] for q in json.loads(sys.argv[2])}))
"""


def duckdb_query(target: Path, database: Path, queries: list[str]) -> dict[str, list[list]]:
    """Run queries with the target's own duckdb (the version that wrote the file)."""
    result = subprocess.run(
        [str(target.parent / "python"), "-c", DUCKDB_QUERY, str(database), json.dumps(queries)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_new_vendor_fields_become_columns_in_duckdb_with_their_values(shaped_run, tmp_path, target_duckdb):
    sandbox, config = shaped_run
    database = tmp_path / "warehouse.duckdb"
    pipe(tmp_path, "duckdb", config, target_duckdb, {"filepath": str(database), "default_target_schema": "callreports"})
    kinds_query = (
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 'callreports'"
    )
    expectations = shaped_expectations(sandbox)

    def utc_text(column: str) -> str:  # target-duckdb writes instants as UTC `timestamp`s
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%SZ')"

    queries = {
        table: f"select {key_sql(table, utc_text)}, {', '.join(NEW_COLUMNS[table])} from callreports.{table}"
        for table in expectations
    }
    types: dict[str, dict[str, str]] = {}
    for table, column, data_type in duckdb_query(target_duckdb, database, [kinds_query])[kinds_query]:
        types.setdefault(table, {})[column] = data_type
    for table in expectations:
        assert set(NEW_COLUMNS[table]) <= set(types[table]), table
    answers = duckdb_query(target_duckdb, database, list(queries.values()))
    for table, expected in expectations.items():
        landed = {}
        for row in answers[queries[table]]:
            values = dict(zip(NEW_COLUMNS[table], row[1:]))
            landed[row[0]] = values
        same_values(landed, expected)


# ---- c. no new field, no new SCHEMA ------------------------------------------------------------------

ALL_TALKDESK_TYPES = [
    *REPORT_TYPES,
    "feedback_flow",  # no declared layout: read under the generic rules
]


def schema_counts(run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in run.messages:
        if message["type"] == "SCHEMA":
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    return counts


@pytest.mark.parametrize("fmt", ["json", "csv", "json_bulk"])
def test_schema_grows_only_when_a_field_is_new(make_sandbox, fmt):
    """Every report type and format: a plain run writes one SCHEMA per stream (renamed, dotted,
    UTC and `_local` columns are all known); the same run with unknown fields writes more."""
    counts = {}
    for shapes in ((), ("talkdesk-extra-field",)):
        sandbox = make_sandbox(rows_per_hour=4, myreports_rows_per_hour=4, job_polls=1, shapes=shapes)
        run = sync(
            sandbox_config(
                sandbox,
                vendors=("talkdesk", "myreports"),
                end_date="2026-10-02T00:00:00Z",
                talkdesk_report_types=ALL_TALKDESK_TYPES,
                talkdesk_report_format=fmt,
            )
        )
        assert run.error is None, run.error
        for report_type in ALL_TALKDESK_TYPES:
            assert run.records(f"talkdesk_{report_type}"), report_type
        counts[shapes] = schema_counts(run)
    # A type without a declared layout has no vendor column: its schema grows from its rows.
    unevidenced = {"talkdesk_feedback_flow"}
    assert {count for stream, count in counts[()].items() if stream not in unevidenced} == {1}, counts[()]
    assert all(counts[()][stream] > 1 for stream in unevidenced), counts[()]
    grown = {stream for stream, count in counts[("talkdesk-extra-field",)].items() if count > 1}
    assert grown == {f"talkdesk_{report_type}" for report_type in ALL_TALKDESK_TYPES}


# ---- d. BATCH messages land the same rows as RECORD messages in PostgreSQL ----------------------------


def test_batch_and_record_runs_land_the_same_rows_in_postgres(tmp_path, target_postgres):
    require_postgres()
    sandbox = start_sandbox(SandboxConfig(seed=23, rows_per_hour=6, myreports_rows_per_hour=3, job_polls=1))
    schemas = [f"warehouse_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        config = sandbox_config(
            sandbox,
            vendors=("talkdesk", "myreports"),
            start_date="2026-10-01T00:00:00Z",
            end_date="2026-10-04T00:00:00Z",
            myreports_report_ids=[LONDON_REPORT],
        )
        batches = {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": (tmp_path / "batches").as_uri()},
            "batch_size": 100,
        }
        as_records = pipe(
            tmp_path, "records", config, target_postgres, postgres_config(schemas[0]), target_env={"PGTZ": "UTC"}
        )
        as_batches = pipe(
            tmp_path,
            "batches",
            config | {"batch_config": batches},
            target_postgres,
            postgres_config(schemas[1]),
            target_env={"PGTZ": "UTC"},
        )
        assert as_batches.sent("talkdesk_calls") == 0 and any(m["type"] == "BATCH" for m in as_batches.messages)
        for table, columns in (
            ("talkdesk_calls", "call_id, type, start_at, end_at, talk_time_seconds, user_id"),
            ("myreports_call_rows", "doc_id, start_utc, start_local, user_name, duration"),
        ):
            landed = [psql(f"select {columns} from {schema}.{table} order by 1") for schema in schemas]
            assert landed[0] == landed[1] and len(landed[0]) == as_records.sent(table) > 100, table
        assert as_batches.confirmed_state == as_records.confirmed_state
    finally:
        sandbox.stop()
        for schema in schemas:
            psql(f"drop schema if exists {schema} cascade")


# ---- e. one table whatever the file format: the evidenced layouts in PostgreSQL and DuckDB ------------

#: Every report type the sandbox serves: the official layouts, the community ones (contacts,
#: ring_attempts) and one read under the generic rules (feedback_flow).
LAYOUT_TABLES = [f"talkdesk_{kind}" for kind in (*REPORT_TYPES, "feedback_flow")]
FORMATS = ("json", "csv", "json_bulk")


def test_every_file_format_lands_the_same_tables_in_postgres_and_duckdb(tmp_path, target_postgres, target_duckdb):
    """json, csv and json_bulk of the same reports (Lisbon, across the fall-back) give tables with
    the same column names and types, the same row counts and, in PostgreSQL, the same values."""
    require_postgres()
    sandbox = start_sandbox(SandboxConfig(seed=17, job_polls=1))
    schemas = {fmt: f"warehouse_{uuid.uuid4().hex[:10]}" for fmt in FORMATS}
    kinds_query = (
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'callreports' order by 1, 2"
    )
    count_queries = [f"select count(*) from callreports.{table}" for table in LAYOUT_TABLES]
    try:
        postgres, duckdb, values = {}, {}, {}
        for fmt in FORMATS:
            config = sandbox_config(
                sandbox,
                vendors=("talkdesk",),
                start_date="2026-10-22T00:00:00Z",
                end_date="2026-10-28T00:00:00Z",
                talkdesk_report_format=fmt,
                talkdesk_report_timezone="Europe/Lisbon",
                talkdesk_report_types=[t.removeprefix("talkdesk_") for t in LAYOUT_TABLES],
            )
            pipe(
                tmp_path,
                f"postgres-{fmt}",
                config,
                target_postgres,
                postgres_config(schemas[fmt]),
                target_env={"PGTZ": "UTC"},
            )
            database = tmp_path / f"{fmt}.duckdb"
            pipe(
                tmp_path,
                f"duckdb-{fmt}",
                config,
                target_duckdb,
                {"filepath": str(database), "default_target_schema": "callreports"},
            )
            types = columns(schemas[fmt])
            postgres[fmt] = {
                table: (types[table], int(psql(f"select count(*) from {schemas[fmt]}.{table}")[0][0]))
                for table in LAYOUT_TABLES
            }
            values[fmt] = {}
            for table in LAYOUT_TABLES:
                # numeric compared as a number: json's 2.0 and csv's "2.0" (read as 2) differ only in scale
                shown = ", ".join(
                    f"coalesce({c}{'::float8' if types[table][c] == 'numeric' else ''}::text, 'NULL')"
                    for c in sorted(types[table])
                    if c != "report_job_id" and not c.startswith("_sdc_")
                )  # the load's own
                values[fmt][table] = psql(f"select {shown} from {schemas[fmt]}.{table} order by 1, 2, 3, 4, 5")
            answers = duckdb_query(target_duckdb, database, [kinds_query, *count_queries])
            kinds: dict[str, dict[str, str]] = {}
            for table, column, data_type in answers[kinds_query]:
                kinds.setdefault(table, {})[column] = data_type
            duckdb[fmt] = {
                table: (kinds[table], answers[query][0][0]) for table, query in zip(LAYOUT_TABLES, count_queries)
            }
        for fmt in ("csv", "json_bulk"):
            assert postgres[fmt] == postgres["json"], fmt
            assert duckdb[fmt] == duckdb["json"], fmt
            for table in LAYOUT_TABLES:
                assert values[fmt][table] == values["json"][table], (fmt, table)
        tables = postgres["json"]
        assert all(count > 100 for _, count in tables.values()), {t: c for t, (_, c) in tables.items()}  # noqa: PLR2004
        contacts = tables["talkdesk_contacts"][0]
        assert contacts["answered_at"].startswith("timestamp") and contacts["inside_business_hours"] == "boolean"
        assert contacts["talk_time_seconds"] in ("bigint", "integer") and contacts["answered_at_local"] != "boolean"
        studio = tables["talkdesk_studio_flow_execution"][0]
        assert studio["timestamp"].startswith("timestamp") and studio["step_execution_order"] in ("bigint", "integer")
        # Flags boolean, numbers numeric, durations seconds, lists arrays, whatever the file format.
        explore = tables["talkdesk_explore_calls"][0]
        assert explore["in_business_hours"] == explore["transfer"] == "boolean", explore
        assert explore["talk_time_seconds"] == "numeric" and explore["rating"] in ("bigint", "integer"), explore
        assert explore["start_time"].startswith("timestamp") and "talk_time" not in explore, explore
        messaging = tables["talkdesk_messaging_contacts"][0]
        assert messaging["wrap_up_duration_seconds"] == messaging["contact_handle_time_seconds"] == "numeric"
        assert messaging["is_virtual_agent"] == "boolean" and messaging["contact_started_at"].startswith("timestamp")
        assert tables["talkdesk_audit_logs"][0]["ip_addresses"] == "ARRAY"  # text[]
        assert tables["talkdesk_user_status"][0]["ring_groups"] == "ARRAY"
        assert tables["talkdesk_calls"][0]["agent_disconnected"] == "boolean"
        assert studio["time_in_step_seconds"] == "numeric" and "time_in_step" not in studio
        assert tables["talkdesk_feedback_flow"][0]["date_time"].startswith("timestamp")
        assert primary_keys(schemas["json"])["talkdesk_messaging_contacts"] == {"contact_id"}
        assert primary_keys(schemas["json"])["talkdesk_studio_flow_execution"] == {
            "interaction_id",
            "step_execution_order",
        }
    finally:
        sandbox.stop()
        for schema in schemas.values():
            psql(f"drop schema if exists {schema} cascade")
