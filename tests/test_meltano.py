"""The real pipeline: `meltano run tap-callreports target-…` against the sandbox, then what landed
in DuckDB, PostgreSQL and JSONL files, including an incremental second run with Meltano's state."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from helpers import (
    LONDON_REPORT,
    NEW_YORK_REPORT,
    PG,
    UNFINISHED,
    columns,
    file_lock,
    primary_keys,
    psql,
    require_postgres,
)
from tap_callreports.sandbox import SandboxConfig, start_sandbox

# (Under pytest-xdist the file runs in one worker, `--dist loadfile`: its tests share the Meltano
# project under .tmp, made by one `meltano install`.)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / ".tmp" / "meltano-project"
UTC = dt.UTC
START, FIRST_END, SECOND_END = "2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z", "2026-10-04T00:00:00Z"


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
    with file_lock("source-tree"):  # installs the tap from this checkout (pip writes its build files here)
        subprocess.run(
            [binary, "install"],
            cwd=PROJECT,
            check=True,
            env=meltano_env({}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=1800,
        )
    return PROJECT


def meltano_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_CALLREPORTS_", "VIRTUAL_ENV"))}
    return (
        env
        | {
            "MELTANO_ENVIRONMENT": "sandbox",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DISABLE_TRACKING": "true",
        }
        | extra
    )


def tap_env(sandbox, end_date: str) -> dict[str, str]:
    url = sandbox.url
    return {
        "TAP_CALLREPORTS_START_DATE": START,
        "TAP_CALLREPORTS_END_DATE": end_date,
        "TAP_CALLREPORTS_TALKDESK_API_URL": url,
        "TAP_CALLREPORTS_TALKDESK_TOKEN_URL": f"{url}/oauth/token",
        "TAP_CALLREPORTS_ZENDESK_API_URL": url,
        "TAP_CALLREPORTS_MYREPORTS_API_URL": f"{url}/api",
        "TAP_CALLREPORTS_TALKDESK_REPORT_TYPES": '["calls"]',
        "TAP_CALLREPORTS_TALKDESK_WINDOW_DAYS": "1",
        "TAP_CALLREPORTS_MYREPORTS_REPORT_IDS": json.dumps([LONDON_REPORT]),
        "TAP_CALLREPORTS_MYREPORTS_WINDOW_DAYS": "1",
        # seconds settings are `kind: string` (Meltano 4.4 cannot pass a `kind: decimal` read from here)
        "TAP_CALLREPORTS_JOB_POLL_INTERVAL_SECONDS": "0.1",
        "TAP_CALLREPORTS_REQUEST_TIMEOUT_SECONDS": "120",
    }


def meltano_run(project: Path, loader: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [meltano_bin(), "run", "tap-callreports", loader],
        cwd=project,
        env=meltano_env(env),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
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
    requests.post(
        f"{sandbox.url}/_sandbox/talkdesk/imports", params={"count": count, "at": at}, timeout=10
    ).raise_for_status()


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
    for needle in ("window(s) planned", "created report job", "done after", "rows so far", "METRIC"):
        assert needle in logs, needle
    assert "sandbox-client-secret" not in logs and "sandbox-myreports-token" not in logs

    add_imports(sandbox, 3, "2026-10-03T06:00:00Z")
    meltano_run(project, "target-duckdb", tap_env(sandbox, SECOND_END))
    assert_only_new_rows_added(first, counts(), expected_counts(sandbox, FIRST_END, SECOND_END), imports_added=3)

    meltano_run(project, "target-jsonl", tap_env(sandbox, FIRST_END))
    lines = {p.stem: len(p.read_text().splitlines()) for p in (project / "output").glob("*.jsonl")}
    assert lines["talkdesk_calls"] == first["talkdesk_calls"]
    assert lines["myreports_call_rows"] == first["myreports_call_rows"]


@pytest.fixture
def postgres():
    require_postgres()
    return psql


@pytest.fixture
def target_schema(postgres):
    """A schema of its own for target-postgres (TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA wins over
    meltano.yml's `callreports`): tests of other pytest-xdist workers, or of another checkout's
    run on the same `make postgres` server, never drop or fill it."""
    schema = f"callreports_{uuid.uuid4().hex[:10]}"
    yield schema
    postgres(f"drop schema if exists {schema} cascade")


def test_postgres_pipeline_types_keys_and_incremental(project, pipeline_sandbox, postgres, target_schema):
    sandbox = pipeline_sandbox
    schema = target_schema
    into_schema = {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema}
    meltano_run(project, "target-postgres", tap_env(sandbox, FIRST_END) | into_schema)
    first = expected_counts(sandbox, START, FIRST_END)

    def counts() -> dict[str, int]:
        return {t: int(postgres(f"select count(*) from {schema}.{t}")[0][0]) for t in first}

    assert counts() == first
    types = columns(schema)
    assert types["talkdesk_imports"]["updated_at"].startswith("timestamp")
    assert types["talkdesk_imports"]["total_records"] in ("bigint", "integer", "numeric")
    assert types["zendesk_job_statuses"]["results"] == "jsonb"
    assert types["myreports_requests"]["summary"] == "jsonb"
    assert types["myreports_call_rows"]["start_utc"].startswith("timestamp")
    assert types["myreports_call_rows"]["duration"] in ("numeric", "double precision", "real")
    assert types["talkdesk_calls"]["talk_time_seconds"] in ("bigint", "integer", "numeric")
    keys = {(t, c) for t, names in primary_keys(schema).items() for c in names}
    assert {("talkdesk_imports", "id"), ("zendesk_job_statuses", "id"), ("myreports_call_rows", "doc_id")} <= keys
    duplicates = postgres(f"select count(*) - count(distinct doc_id) from {schema}.myreports_call_rows")
    assert duplicates == [["0"]]

    add_imports(sandbox, 3, "2026-10-03T06:00:00Z")
    meltano_run(project, "target-postgres", tap_env(sandbox, SECOND_END) | into_schema)
    assert_only_new_rows_added(first, counts(), expected_counts(sandbox, FIRST_END, SECOND_END), imports_added=3)


# ---- the README's Meltano commands, as written ----------------------------------------------------------

README_START, README_END = "<!-- meltano-commands:start -->", "<!-- meltano-commands:end -->"


def readme_commands() -> list[tuple[dict[str, str], list[str]]]:
    """Each `meltano ...` line of the README's Meltano block: (leading VAR=value pairs, argv after `meltano`)."""
    text = (ROOT / "README.md").read_text()
    block = text.split(README_START, 1)[1].split(README_END, 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split(" # ", 1)[0].strip()) if line.strip() and not line.startswith("`") else []
        env = {}
        while words and "=" in words[0] and not words[0].startswith("-"):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if words and words[0] == "meltano":
            commands.append((env, words[1:]))
    return commands


def duckdb_counts(project: Path, tables) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(project / "output" / "callreports.duckdb"), read_only=True) as con:
        return {t: con.execute(f'select count(*) from callreports.callreports."{t}"').fetchone()[0] for t in tables}


def repo_copy(dest: Path) -> Path:
    """The repository as a fresh clone has it (tracked and new files, not ignored ones), with the
    venvs `make test` already built linked in: `make demo` and the README then run there."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # a tracked file deleted in the work tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (dest / ".venv-meltano").symlink_to(Path(meltano_bin()).parent.parent)
    return dest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rewrite_story(before: str, after: str, what: str) -> str:
    """What differs between two versions of a meltano.yml, and why it would (for failure messages)."""
    if before == after:
        return f"{what} is unchanged"
    changed = sum(
        1
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )
    comments = [line.strip() for line in before.splitlines() if line.lstrip().startswith("#")]
    gone = [comment for comment in comments if comment not in after]
    return f"{what} differs in {changed} changed line(s), {len(gone)} of {len(comments)} comment(s) gone" + (
        ": Meltano rewrote it (`meltano config set` without --store=dotenv stores the value in meltano.yml "
        "and writes the whole file again in its own layout, without comments; `git checkout meltano.yml` "
        "restores it, `meltano config set --store=dotenv ...` keeps values in .env instead)"
        if gone
        else ""
    )


#: The sandbox's job limits in the newcomer's test: small, so the report jobs `meltano config test`
#: leaves behind fill the account the way the README's own config fills Talkdesk's 15 slots.
NEWCOMER_LIMITS = {"talkdesk_max_active_jobs": 2, "myreports_max_active_requests": 1}


def test_the_newcomers_path_on_a_fresh_copy(tmp_path):
    """`make demo`, then every Meltano command of the README as written, in order, in place (no
    restore), then the checks of `make test` that a rewrite of meltano.yml could break. `config
    test` stops the tap at its first record and leaves report jobs at the sandbox, enough to fill
    its (small) job limits: the `run` after it gets slots only because jobs finish on the
    sandbox's clock, polled or not, as the vendors' do. Each command's time is printed (-s)."""
    if not meltano_bin():
        pytest.skip("meltano is not installed (run `make test`, which installs it)")
    clone = repo_copy(tmp_path / "tap-callreports")
    committed = subprocess.run(
        ["git", "show", "HEAD:meltano.yml"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    checkout_story = rewrite_story(
        committed, (ROOT / "meltano.yml").read_text(), "this checkout's meltano.yml (from HEAD's)"
    )

    # make demo (its install steps are done: the linked venvs are those `make test` built)
    demo = subprocess.run(
        [
            "make",
            "demo",
            f"PORT={free_port()}",
            "-o",
            ".venv/bin/.installed",
            "-o",
            ".venv-meltano/.installed-4.4.1-postgres",
        ],
        cwd=clone,
        # As a newcomer types it: not a sub-make of `make test` (which would print make[1]'s
        # "Entering/Leaving directory" lines around the demo's output).
        env={k: v for k, v in meltano_env({}).items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert demo.returncode == 0, (demo.stdout[-3000:], demo.stderr[-3000:])
    pasted = demo.stdout.strip().splitlines()[-1]  # the query it prints, pasted as printed
    assert pasted.startswith(".venv/bin/python -c "), demo.stdout[-2000:]
    query = subprocess.run(["bash", "-c", pasted], cwd=clone, capture_output=True, text=True, timeout=120, check=False)
    assert query.returncode == 0 and "avg_talk_seconds" in query.stdout, query.stderr[-2000:]

    # the README's Meltano commands, against a sandbox whose rows are counted exactly (so the demo's
    # state and tables go first: the README's runs load a window of their own)
    sandbox = start_sandbox(SandboxConfig(seed=5, list_anchor=FIRST_END, job_polls=2, **NEWCOMER_LIMITS))
    try:
        timings = replay_readme(clone, sandbox)
    finally:
        sandbox.stop()
    print("\nthe README's Meltano commands on a fresh copy (seconds):")
    for command, seconds in timings:
        print(f"  {seconds:6.1f}  meltano {command}")

    # make test's checks of the generated files, on the meltano.yml the commands left
    copied = (ROOT / "meltano.yml").read_text()
    after = (clone / "meltano.yml").read_text()
    story = f"{rewrite_story(copied, after, 'the copy of meltano.yml after the README')}; {checkout_story}"
    assert (clone / "meltano.yml").read_text() == copied, story  # the README's commands leave it as it was
    generate = subprocess.run(
        [sys.executable, "scripts/generate.py", "--check"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generate.returncode == 0, f"{generate.stderr}\n{story}"
    settings_tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_operator.py::test_generated_meltano_entry_hub_definition_and_settings_doc_are_current",
            "tests/test_operator.py::test_every_setting_is_described_with_its_range_and_no_kind_meltano_mishandles",
            "tests/test_singer_messages.py::test_hub_definition_matches_the_tap",
            "tests/test_singer_messages.py::test_settings_doc_tables_are_current",
            "tests/test_packaging.py::test_a_rewritten_meltano_yml_is_current_and_regenerates_in_place",
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert settings_tests.returncode == 0, f"{settings_tests.stdout[-3000:]}\n{story}"
    assert "5 passed in" in settings_tests.stdout, settings_tests.stdout[-1000:]


def replay_readme(clone: Path, sandbox) -> list[tuple[str, float]]:
    """Every `meltano ...` line of the README's Meltano block, in order, each checked; their times."""
    env = tap_env(sandbox, FIRST_END)
    binary = meltano_bin()
    for state_id in ("sandbox:tap-callreports-to-target-duckdb", "sandbox:tap-callreports-to-target-jsonl"):
        subprocess.run(
            [binary, "state", "clear", "--force", state_id],
            cwd=clone,
            env=meltano_env(env),
            capture_output=True,
            timeout=300,
            check=False,
        )
    shutil.rmtree(clone / "output")
    (clone / "output").mkdir()

    checks = {
        "install": lambda out: True,
        "config list tap-callreports": lambda out: (
            f"'{FIRST_END}' (from the TAP_CALLREPORTS_END_DATE" in out and "Earliest moment to extract" in out
        ),
        "config set --store=dotenv tap-callreports talkdesk_window_days 14": lambda out: (
            "TAP_CALLREPORTS_TALKDESK_WINDOW_DAYS" in (clone / ".env").read_text()
            and "14" in (clone / ".env").read_text()
        ),
        "invoke tap-callreports --test": lambda out: (
            all(f"connection test: {v}: ok" in out for v in ("talkdesk", "zendesk", "myreports"))
            and not sandbox.app.events("job_created")
        ),
        # Meltano's test runs a sync until its first record: it creates report jobs and leaves them
        "config test tap-callreports": lambda out: (
            "Plugin configuration is valid" in out and len(sandbox.app.events("job_created")) >= 2
        ),
        "select tap-callreports --list --all": lambda out: "talkdesk_calls" in out and "myreports_call_rows" in out,
        "invoke tap-callreports --discover": lambda out: (
            {"talkdesk_calls", "zendesk_job_statuses"}
            <= {s["tap_stream_id"] for s in json.loads(out[out.index("{") :])["streams"]}
        ),
        "run tap-callreports target-duckdb": lambda out: duckdb_counts(clone, expected) == expected,
        "run tap-callreports target-jsonl": lambda out: (clone / "output" / "talkdesk_calls.jsonl").exists(),
        "state list": lambda out: (
            "sandbox:tap-callreports-to-target-duckdb" in out and "sandbox:tap-callreports-to-target-jsonl" in out
        ),
        "state get sandbox:tap-callreports-to-target-duckdb": lambda out: (
            "talkdesk_calls" in json.loads(out[out.index("{") :])["singer_state"]["bookmarks"]
        ),
    }
    expected = expected_counts(sandbox, START, FIRST_END)
    commands = readme_commands()
    assert len(commands) >= 10
    timings = []
    left_behind: set[str] = set()
    for extra_env, argv in commands:
        assert argv[0] == "--environment=sandbox" or argv == ["install"], argv
        key = " ".join(argv[1:] if argv[0].startswith("--environment") else argv)
        assert key in checks, f"README command without a check here: meltano {' '.join(argv)}"
        began = time.monotonic()
        result = subprocess.run(
            [binary, *argv],
            cwd=clone,
            env=meltano_env(env | extra_env),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        timings.append((" ".join(argv), time.monotonic() - began))
        if "config test" in key:
            left_behind = {e["job_id"] for e in sandbox.app.events("job_created")}
        output = result.stdout + result.stderr
        assert result.returncode == 0, (argv, output[-3000:])
        assert "Traceback" not in output and "deprecated" not in output.lower(), (argv, output[-3000:])
        assert checks[key](result.stdout if "discover" in key or "state get" in key else output), (argv, output[-3000:])
    # jobs `config test` left unfinished (nobody polls them any more) finished on the sandbox's clock
    by_clock = {e["job_id"] for e in sandbox.app.events("job_finished") if e.get("by") == "clock"}
    assert by_clock & left_behind, "config test left no job unfinished: the test proved nothing about them"
    return timings


# ---- scale-out: two extractors in parallel, state on PostgreSQL ------------------------------------------------

SCALE_TYPES = ["calls", "contacts", "user_status"]
SCALE_END, SCALE_NEXT_END = "2026-10-05T00:00:00Z", "2026-10-06T00:00:00Z"
TALKDESK_EXTRACTOR_JOBS = 10  # meltano.yml: tap-callreports--talkdesk max_concurrent_jobs


def scale_counts(sandbox, start: str, end: str) -> dict[str, int]:
    lo, hi = (dt.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (start, end))
    data, now = sandbox.app.data, dt.datetime.now(UTC)
    counts = {
        f"talkdesk_{kind}": sum(1 for _ in data.talkdesk_rows(kind, lo, hi, ZoneInfo("UTC"), now))
        for kind in SCALE_TYPES
    }
    counts["myreports_call_rows"] = sum(len(data.myreports_rows(r, lo, hi)) for r in (LONDON_REPORT, NEW_YORK_REPORT))
    return counts


def run_jobs_in_parallel(project: Path, env: dict[str, str]) -> None:
    procs = [
        subprocess.Popen(
            [meltano_bin(), "--environment=sandbox", "run", job],
            cwd=project,
            env=meltano_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for job in ("talkdesk-reports", "myreports")
    ]
    outputs = [proc.communicate(timeout=900)[0] for proc in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-4000:]


#: The longest the sandbox keeps one extractor's jobs unfinished waiting for the other's first job
#: (a guard against a hang: the test fails when it is what let them go).
OVERLAP_GUARD_SECONDS = 600.0


def hold_jobs_until_both_vendors_created_one(sandbox) -> dict[str, str]:
    """Keep every job of the sandbox unfinished (done no sooner than job_seconds after its creation)
    until Talkdesk and MyReports each have a job created: then both extractors were running at
    once, whichever started first and however slowly. The answer says what let the jobs go:
    "both" (that) or "guard" (OVERLAP_GUARD_SECONDS passed without it)."""
    app, note = sandbox.app, sandbox.app.event
    app.config.job_seconds = UNFINISHED
    released: dict[str, str] = {}
    vendors: set[str] = set()

    def release(by: str) -> None:
        released.setdefault("by", by)
        app.config.job_seconds = 0.0  # read at each poll

    def event(kind: str, **details) -> None:
        note(kind, **details)
        if kind == "job_created":
            vendors.add(details["vendor"])
            if vendors >= {"talkdesk", "myreports"}:
                release("both")

    app.event = event  # the vendors note events through the app, in this process
    guard = threading.Timer(OVERLAP_GUARD_SECONDS, release, args=("guard",))
    guard.daemon = True
    guard.start()
    return released


def test_two_inherited_extractors_run_in_parallel_sharing_postgres_state(project, postgres, target_schema):
    database = f"meltano_scaleout_{uuid.uuid4().hex[:10]}"
    schema = target_schema
    postgres(f"create database {database}")
    postgres(f"create schema {schema}")  # the two loaders would race to create it
    sandbox = start_sandbox(
        SandboxConfig(seed=7, list_anchor=SCALE_END, job_polls=2, talkdesk_max_active_jobs=TALKDESK_EXTRACTOR_JOBS)
    )
    try:
        env = tap_env(sandbox, SCALE_END) | {
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
            "MELTANO_DATABASE_URI": f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
            "TAP_CALLREPORTS_TALKDESK_REPORT_TYPES": json.dumps(SCALE_TYPES),
            "TAP_CALLREPORTS_MYREPORTS_REPORT_IDS": json.dumps([LONDON_REPORT, NEW_YORK_REPORT]),
        }
        migrate = subprocess.run(
            [meltano_bin(), "--environment=sandbox", "state", "list"],
            cwd=project,
            env=meltano_env(env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]

        released = hold_jobs_until_both_vendors_created_one(sandbox)
        run_jobs_in_parallel(project, env)
        # The runs overlapped: neither extractor's jobs could finish before the other had created one.
        assert released == {"by": "both"}, "the runs did not overlap: one extractor's jobs waited for the guard"
        first = scale_counts(sandbox, START, SCALE_END)
        assert min(first.values()) > 0

        def counts() -> dict[str, int]:
            return {t: int(postgres(f"select count(*) from {schema}.{t}")[0][0]) for t in first}

        assert counts() == first
        # meltano.yml runs these extractors in BATCH mode: the rows went through files.
        batches = project / "output" / "batches"
        first_files = {p.name for p in batches.glob("tap-callreports--*.json.gz")}
        assert {name.split("--")[1] for name in first_files} >= set(first), first_files
        created = sandbox.app.events("job_created")
        assert len([e for e in created if e["vendor"] == "talkdesk"]) == len(SCALE_TYPES) * 4 > TALKDESK_EXTRACTOR_JOBS
        assert sandbox.app.events("job_rejected") == []  # never above the account's job limit
        listed = subprocess.run(
            [meltano_bin(), "--environment=sandbox", "state", "list"],
            cwd=project,
            env=meltano_env(env),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout
        assert "sandbox:tap-callreports--talkdesk-to-target-postgres" in listed
        assert "sandbox:tap-callreports--myreports-to-target-postgres" in listed

        run_jobs_in_parallel(project, env | {"TAP_CALLREPORTS_END_DATE": SCALE_NEXT_END})
        new = scale_counts(sandbox, SCALE_END, SCALE_NEXT_END)
        assert counts() == {t: first[t] + new[t] for t in first}  # each resumed from its own state
        assert not first_files & {p.name for p in batches.glob("*")}  # earlier runs' files deleted
        assert sandbox.app.events("job_rejected") == []
    finally:
        sandbox.stop()
        postgres(f"drop database if exists {database} with (force)")
