"""End to end (`python bench/run.py --pipeline`): the tap's Talkdesk calls rows piped into the
Singer targets meltano.yml pins, each target in its own venv under .tmp/bench-targets/.

For each setup and round: wall seconds from the tap's start to the last process's exit (what a
user waits for), rows/s on that, CPU seconds and peak RSS of the tap and of the target separately
(GNU time around each), and the CPU the PostgreSQL server spent meanwhile. The rows that landed
are counted after every run (into PostgreSQL: distinct keys too). A second table splits each
wall into its phases, from the sandbox's events: the tap's start-up, the sandbox building the
file, the tap reading it, and the target's tail after the tap's exit.

Also runnable alone, to measure some setups only (names matched as substrings):
    python bench/pipeline.py --rows 200160 --rounds 2 --only defaults copy
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from run import HOURS, TARGETS, Sandbox, load, spawn_timed, tap_argv, tap_files, wait_timed

PG = {"host": "127.0.0.1", "port": 55432, "user": "postgres", "password": "postgres", "database": "postgres"}
PG_PIDFILE = Path("/tmp/callreports-pg/postmaster.pid")  # scripts/postgres.sh's PGDATA_DIR
INSTALL = {  # the versions meltano.yml's loaders pin
    "jsonl": "target-jsonl==0.1.4",
    "duckdb": "target-duckdb==0.8.0 duckdb==1.1.3",
    "postgres": "meltanolabs-target-postgres==0.8.1",
}
#: target-postgres's COPY loading without the SDK's per-record metadata columns (`_sdc_*`, which
#: BATCH records never fill anyway); activate_version must go off with them (the target insists).
PG_COPY_LEAN = {"use_copy": True, "add_record_metadata": False, "activate_version": False}
#: meltano.yml's target-postgres config (the tap proves its records conform: no re-validation).
MELTANO_YML_LOADER = {"validate_records": False} | PG_COPY_LEAN


@dataclass
class Result:
    wall: float
    tap_cpu: float
    target_cpu: float
    pg_cpu: float | None
    tap_rss: float
    target_rss: float
    phases: tuple[float, float, float, float]  # start-up, file built, tap done reading, target's tail


@dataclass
class Setup:
    name: str
    target: str | None  # venv name under TARGETS, or None for /dev/null
    target_config: dict = field(default_factory=dict)
    batch: dict | None = None  # the tap's batch_config extras (e.g. batch_size); None: RECORD messages
    tap_env: dict = field(default_factory=dict)  # e.g. PYTHONPATH to try a changed copy of the tap
    results: list[Result] = field(default_factory=list)
    failed: str = ""


def target_ready(name: str) -> str:
    """'' when the target's venv is installed, else how to install it."""
    exe = TARGETS / name / "bin" / ("target-postgres" if name == "postgres" else f"target-{name}")
    if exe.exists():
        return ""
    return f"not installed; python3 -m venv {TARGETS / name} && {TARGETS / name}/bin/pip install {INSTALL[name]}"


def postgres_running() -> bool:
    try:
        with socket.create_connection((PG["host"], PG["port"]), timeout=1):
            return True
    except OSError:
        return False


def postgres_cpu() -> float | None:
    """CPU seconds the `make postgres` server has used so far: its processes alive now, plus the
    exited ones its postmaster reaped (a run's backend exits with the target). Other clients of
    the server and autovacuum count too. None when the server's processes cannot be read."""
    try:
        master = int(PG_PIDFILE.read_text().split()[0])
        ticks = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(entry.name) == master:
                ticks += sum(int(v) for v in stat[11:15])  # utime stime cutime cstime
            elif int(stat[1]) == master:
                ticks += int(stat[11]) + int(stat[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def count_rows(setup: Setup, run_dir: Path, schema: str) -> tuple[int, int]:
    """Rows of talkdesk_calls that landed in the target, and their distinct call ids."""
    if setup.target is None:
        return -1, -1
    if setup.target == "jsonl":
        with open(run_dir / "jsonl" / "talkdesk_calls.jsonl", "rb") as lines:
            ids = [json.loads(line)["call_id"] for line in lines]
        return len(ids), len(set(ids))
    venv_python = str(TARGETS / setup.target / "bin" / "python")
    query = f"select count(*), count(distinct call_id) from {schema}.talkdesk_calls"
    if setup.target == "duckdb":
        code = (
            f"import duckdb; c = duckdb.connect({str(run_dir / 'out.duckdb')!r}); "
            f"print(*c.execute({query!r}).fetchone())"
        )
    else:
        code = (
            "import psycopg, sys; c = psycopg.connect(host='127.0.0.1', port=55432, user='postgres', "
            f"dbname='postgres', autocommit=True); print(*c.execute({query!r}).fetchone()); "
            f"c.execute('drop schema {schema} cascade')"
        )
    out = subprocess.run([venv_python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def phases(sandbox: Sandbox, events_before: int, start: float, tap_end: float, end: float) -> tuple[float, ...]:
    """Seconds from the tap's start to: its job created (start-up), the file ready (the sandbox
    building it), the tap's exit; then the target's tail after the tap's exit."""
    events = sandbox.events(None)[events_before:]  # type: ignore[arg-type]
    first = {}
    for event in events:
        first.setdefault(event["kind"], event["wall"])
    created, ready = first.get("job_created", start), first.get("file_ready", start)
    return created - start, ready - created, tap_end - ready, max(0.0, end - tap_end)


def run_once(sandbox: Sandbox, setup: Setup, workdir: Path, run_no: int, rows: int) -> None:
    run_dir = workdir / f"run-{run_no}"
    run_dir.mkdir()
    schema = f"bench_{run_no}"
    tap_config: dict = {}
    if setup.batch is not None:
        tap_config["batch_config"] = {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{run_dir / 'batches'}", "prefix": "bench-"},
            **setup.batch,
        }
        (run_dir / "batches").mkdir()
    tap_args = tap_files(sandbox, "talkdesk", run_dir, tap_config)
    events_before = len(sandbox.events(None))  # type: ignore[arg-type]
    pg_before = postgres_cpu() if setup.target == "postgres" else None
    start = time.time()
    tap_err = open(run_dir / "tap.err", "wb")
    if setup.target is None:
        tap, tap_report = spawn_timed(tap_argv(tap_args), stdout=subprocess.DEVNULL, stderr=tap_err, env=setup.tap_env)
        target = target_report = None
    else:
        config = dict(setup.target_config)
        env = {}
        if setup.target == "jsonl":
            config |= {"destination_path": str(run_dir / "jsonl"), "do_timestamp_file": False}
            (run_dir / "jsonl").mkdir()
        elif setup.target == "duckdb":
            config |= {
                "filepath": str(run_dir / "out.duckdb"),
                "default_target_schema": schema,
                "primary_key_required": False,
            }
        else:
            config |= PG | {"default_target_schema": schema}
            env = {"PGTZ": "UTC"}  # as meltano.yml runs it
        config_path = run_dir / "target.json"
        config_path.write_text(json.dumps(config))
        exe = (
            TARGETS
            / setup.target
            / "bin"
            / ("target-postgres" if setup.target == "postgres" else f"target-{setup.target}")
        )
        tap, tap_report = spawn_timed(tap_argv(tap_args), stdout=subprocess.PIPE, stderr=tap_err, env=setup.tap_env)
        target, target_report = spawn_timed(
            [str(exe), "--config", str(config_path)],
            stdin=tap.stdout,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(run_dir / "target.err", "wb"),
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target holds the pipe now: its exit must reach the tap
    tap_usage = wait_timed(tap, tap_report)
    target_usage = wait_timed(target, target_report) if target is not None else None
    end = max(tap_usage.end, target_usage.end if target_usage else 0)
    pg_after = postgres_cpu() if pg_before is not None else None
    if tap_usage.code != 0 or (target_usage is not None and target_usage.code != 0):
        errors = (run_dir / "tap.err").read_text()[-300:] + (
            (run_dir / "target.err").read_text()[-300:] if target is not None else ""
        )
        setup.failed = f"tap exit {tap_usage.code}, target exit {getattr(target_usage, 'code', '-')}: {errors.strip()}"
        return
    landed, keys = count_rows(setup, run_dir, schema)
    if landed not in (-1, rows) or keys != landed:
        setup.failed = f"{landed:,} rows ({keys:,} distinct keys) landed, {rows:,} expected"
        return
    setup.results.append(
        Result(
            end - start,
            tap_usage.cpu,
            target_usage.cpu if target_usage else 0.0,
            pg_after - pg_before if pg_after is not None and pg_before is not None else None,
            tap_usage.rss_mb,
            target_usage.rss_mb if target_usage else 0.0,
            phases(sandbox, events_before, start, tap_usage.end, end),
        )
    )  # type: ignore[arg-type]


def all_setups() -> tuple[list[Setup], list[str]]:
    setups = [Setup("tap > /dev/null", None)]
    notes = []
    for name in ("jsonl", "duckdb"):
        if missing := target_ready(name):
            notes.append(f"target-{name} skipped: {missing}")
        else:
            setups.append(Setup(f"tap | target-{name}", name))
    if missing := target_ready("postgres"):
        notes.append(f"target-postgres skipped: {missing}")
    elif not postgres_running():
        notes.append("target-postgres skipped: no PostgreSQL on 127.0.0.1:55432 (start it with `make postgres`)")
    else:
        # (target-postgres does not validate BATCH records: validate_records changes nothing there.)
        setups += [
            Setup(DEFAULT_SETUP, "postgres"),
            Setup("tap | target-postgres validate_records=false", "postgres", {"validate_records": False}),
            Setup("tap | target-postgres, meltano.yml's loader", "postgres", MELTANO_YML_LOADER),
            Setup("tap (batch_config) | target-postgres (defaults)", "postgres", batch={"batch_size": 10_000}),
            Setup(MELTANO_YML_SETUP, "postgres", MELTANO_YML_LOADER, batch={"batch_size": 10_000}),
            Setup(  # the files' compression is the tap's other lever (docs/performance.md)
                "tap (batch_config, uncompressed) | meltano.yml's loader",
                "postgres",
                MELTANO_YML_LOADER,
                batch={"batch_size": 10_000, "encoding": {"format": "jsonl", "compression": "none"}},
            ),
            Setup(
                "tap (batch_config 50k) | meltano.yml's loader",
                "postgres",
                MELTANO_YML_LOADER,
                batch={"batch_size": 50_000},
            ),
        ]
    return setups, notes


def median(values: list[float]) -> float:
    return statistics.median(values)


#: The pipeline goal (`bench/goals.py`): meltano.yml's setup against the targets' defaults.
MELTANO_YML_SETUP, DEFAULT_SETUP = "tap (batch_config), meltano.yml's setup", "tap | target-postgres (defaults)"


def record_goal(setups: list[Setup], rows: int) -> None:
    import goals

    found = {s.name: s for s in setups if s.results}
    if MELTANO_YML_SETUP in found and DEFAULT_SETUP in found:
        ours = median([r.wall for r in found[MELTANO_YML_SETUP].results])
        default = median([r.wall for r in found[DEFAULT_SETUP].results])
        goals.record(
            "pipeline_vs_defaults",
            default / ours,
            f"{rows:,} rows, {rows / ours:,.0f} vs {rows / default:,.0f} rows/s, "
            f"{len(found[MELTANO_YML_SETUP].results)} rounds",
        )


def run_pipelines(rows_wanted: int, rounds: int, workdir: Path, only: list[str] | None = None) -> None:
    per_hour = math.ceil(rows_wanted / HOURS)
    rows = per_hour * HOURS
    setups, notes = all_setups()
    if only:
        setups = [s for s in setups if any(word in s.name for word in only)]
    for note in notes:
        print(f"pipeline: {note}")
    sandbox = Sandbox(per_hour)
    loads = []
    run_no = 0
    try:
        for round_no in range(rounds):
            loads.append(f"{load():.2f}")
            for setup in setups[round_no % len(setups) :] + setups[: round_no % len(setups)]:
                if setup.failed:
                    continue
                run_no += 1
                run_once(sandbox, setup, workdir, run_no, rows)
            print(f"  pipeline round {round_no + 1}/{rounds} done (load {load():.2f})", flush=True)
    finally:
        sandbox.stop()
    print(
        f"\nPipelines, Talkdesk calls JSON {rows:,} rows, {rounds} rounds; 1-minute load before each round: "
        f"{', '.join(loads)}"
    )
    print(
        "wall = tap start to the last exit (start-up and the sandbox's job included); CPU and RSS per process;\n"
        "PG CPU = the PostgreSQL server's CPU during the run (other clients and autovacuum included)"
    )
    print(
        f"{'setup':60} {'n':>2} {'wall med':>8} {'rows/s med':>10} {'rows/s min':>10} {'tap CPU':>7} "
        f"{'target CPU':>10} {'PG CPU':>6} {'tap RSS':>7} {'target RSS':>10} {'vs defaults':>11}"
    )
    defaults = next((s for s in setups if s.name == DEFAULT_SETUP and s.results), None)
    default_wall = median([r.wall for r in defaults.results]) if defaults else None
    for setup in setups:
        if not setup.results:
            print(f"{setup.name:60}  failed: {setup.failed or 'not run'}")
            continue
        res = setup.results
        wall, worst = median([r.wall for r in res]), max(r.wall for r in res)
        pg = [r.pg_cpu for r in res if r.pg_cpu is not None]
        pg_text = f"{median(pg):>5.2f}s" if pg else f"{'-':>6}"
        print(
            f"{setup.name:60} {len(res):>2} {wall:>7.2f}s {rows / wall:>10,.0f} {rows / worst:>10,.0f} "
            f"{median([r.tap_cpu for r in res]):>6.2f}s {median([r.target_cpu for r in res]):>9.2f}s {pg_text} "
            f"{max(r.tap_rss for r in res):>5.0f}MB {max(r.target_rss for r in res):>8.0f}MB "
            + (f"{default_wall / wall:>10.2f}x" if default_wall and setup.target == "postgres" else f"{'-':>11}")
            + (f"  (failed later: {setup.failed[:80]})" if setup.failed else "")
        )
    record_goal(setups, rows)
    print(
        "\nWhere the wall goes (medians, s): the tap's start-up to its job created; the sandbox building the\n"
        "file; the file ready to the tap's exit (polling, download, rows out); the target's tail after the tap's exit"
    )
    print(f"{'setup':60} {'start-up':>8} {'file built':>10} {'tap reads':>9} {'target tail':>11}")
    for setup in setups:
        if setup.results:
            parts = [median([r.phases[i] for r in setup.results]) for i in range(4)]
            print(f"{setup.name:60} {parts[0]:>7.2f}s {parts[1]:>9.2f}s {parts[2]:>8.2f}s {parts[3]:>10.2f}s")
    if any(s.failed for s in setups):
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="setups whose name contains one of these")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        run_pipelines(args.rows, args.rounds, Path(tmp), args.only)


if __name__ == "__main__":
    main()
