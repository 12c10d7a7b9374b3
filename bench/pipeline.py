"""End to end (`python bench/run.py --pipeline`): the tap's Talkdesk calls rows piped into the
Singer targets meltano.yml pins, each target in its own venv under .tmp/bench-targets/.

For each setup and round: wall seconds from the tap's start to the last process's exit (what a
user waits for), rows/s on that, and CPU seconds and peak RSS of the tap and of the target
separately (GNU time around each). The rows that landed are counted after every run.
"""

from __future__ import annotations

import json
import math
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from run import HOURS, TARGETS, Sandbox, load, spawn_timed, tap_argv, tap_files, wait_timed

PG = {"host": "127.0.0.1", "port": 55432, "user": "postgres", "password": "postgres", "database": "postgres"}
INSTALL = {  # the versions meltano.yml's loaders pin
    "jsonl": "target-jsonl==0.1.4",
    "duckdb": "target-duckdb==0.8.0 duckdb==1.1.3",
    "postgres": "meltanolabs-target-postgres==0.8.1",
}


@dataclass
class Setup:
    name: str
    target: str | None  # venv name under TARGETS, or None for /dev/null
    target_config: dict = field(default_factory=dict)
    tap_config: dict = field(default_factory=dict)
    results: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    failed: str = ""


def target_ready(name: str) -> str:
    """'' when the target's venv is installed, else how to install it."""
    exe = TARGETS / name / "bin" / ("target-postgres" if name == "postgres" else f"target-{name}")
    if exe.exists():
        return ""
    return (f"not installed; python3 -m venv {TARGETS / name} && {TARGETS / name}/bin/pip install {INSTALL[name]}")


def postgres_running() -> bool:
    try:
        with socket.create_connection((PG["host"], PG["port"]), timeout=1):
            return True
    except OSError:
        return False


def count_rows(setup: Setup, run_dir: Path, schema: str) -> int:
    """Rows of talkdesk_calls that landed in the target."""
    if setup.target is None:
        return -1
    if setup.target == "jsonl":
        with open(run_dir / "jsonl" / "talkdesk_calls.jsonl", "rb") as lines:
            return sum(1 for _ in lines)
    venv_python = str(TARGETS / setup.target / "bin" / "python")
    if setup.target == "duckdb":
        code = (f"import duckdb; c = duckdb.connect({str(run_dir / 'out.duckdb')!r}); "
                f"print(c.execute('select count(*) from {schema}.talkdesk_calls').fetchone()[0])")
    else:
        code = ("import psycopg, sys; c = psycopg.connect(host='127.0.0.1', port=55432, user='postgres', "
                f"dbname='postgres', autocommit=True); print(c.execute('select count(*) from {schema}.talkdesk_calls')"
                f".fetchone()[0]); c.execute('drop schema {schema} cascade')")
    return int(subprocess.run([venv_python, "-c", code], capture_output=True, text=True, check=True).stdout)


def run_once(sandbox: Sandbox, setup: Setup, workdir: Path, run_no: int, rows: int) -> None:
    run_dir = workdir / f"run-{run_no}"
    run_dir.mkdir()
    schema = f"bench_{run_no}"
    tap_config = dict(setup.tap_config)
    if "batch_config" in tap_config:
        tap_config["batch_config"] = {"encoding": {"format": "jsonl", "compression": "gzip"},
                                      "storage": {"root": f"file://{run_dir / 'batches'}", "prefix": "bench-"}}
        (run_dir / "batches").mkdir()
    tap_args = tap_files(sandbox, "talkdesk", run_dir, tap_config)
    start = time.time()
    tap_err = open(run_dir / "tap.err", "wb")
    if setup.target is None:
        tap, tap_report = spawn_timed(tap_argv(tap_args), stdout=subprocess.DEVNULL, stderr=tap_err)
        target = target_report = None
    else:
        config = dict(setup.target_config)
        if setup.target == "jsonl":
            config |= {"destination_path": str(run_dir / "jsonl"), "do_timestamp_file": False}
            (run_dir / "jsonl").mkdir()
        elif setup.target == "duckdb":
            config |= {"filepath": str(run_dir / "out.duckdb"), "default_target_schema": schema,
                       "primary_key_required": False}
        else:
            config |= PG | {"default_target_schema": schema}
        config_path = run_dir / "target.json"
        config_path.write_text(json.dumps(config))
        exe = TARGETS / setup.target / "bin" / ("target-postgres" if setup.target == "postgres" else f"target-{setup.target}")
        tap, tap_report = spawn_timed(tap_argv(tap_args), stdout=subprocess.PIPE, stderr=tap_err)
        target, target_report = spawn_timed([str(exe), "--config", str(config_path)], stdin=tap.stdout,
                                            stdout=subprocess.DEVNULL, stderr=open(run_dir / "target.err", "wb"))
        assert tap.stdout is not None
        tap.stdout.close()  # the target holds the pipe now: its exit must reach the tap
    tap_usage = wait_timed(tap, tap_report)
    target_usage = wait_timed(target, target_report) if target is not None else None
    wall = max(tap_usage.end, target_usage.end if target_usage else 0) - start
    if tap_usage.code != 0 or (target_usage is not None and target_usage.code != 0):
        errors = (run_dir / "tap.err").read_text()[-300:] + (
            (run_dir / "target.err").read_text()[-300:] if target is not None else "")
        setup.failed = f"tap exit {tap_usage.code}, target exit {getattr(target_usage, 'code', '-')}: {errors.strip()}"
        return
    landed = count_rows(setup, run_dir, schema)
    if landed not in (-1, rows):
        setup.failed = f"{landed:,} rows landed, {rows:,} expected"
        return
    setup.results.append((wall, tap_usage.cpu, target_usage.cpu if target_usage else 0.0,
                          tap_usage.rss_mb, target_usage.rss_mb if target_usage else 0.0))


def run_pipelines(rows_wanted: int, rounds: int, workdir: Path) -> None:
    per_hour = math.ceil(rows_wanted / HOURS)
    rows = per_hour * HOURS
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
        setups += [
            Setup("tap | target-postgres (defaults)", "postgres"),
            Setup("tap | target-postgres validate_records=false", "postgres", {"validate_records": False}),
            Setup("tap (batch_config) | target-postgres", "postgres", tap_config={"batch_config": True}),
            Setup("tap (batch_config) | target-postgres validate_records=false", "postgres",
                  {"validate_records": False}, tap_config={"batch_config": True}),
        ]
    for note in notes:
        print(f"pipeline: {note}")
    sandbox = Sandbox(per_hour)
    loads = []
    run_no = 0
    try:
        for round_no in range(rounds):
            loads.append(f"{load():.2f}")
            for setup in setups[round_no % len(setups):] + setups[:round_no % len(setups)]:
                if setup.failed:
                    continue
                run_no += 1
                run_once(sandbox, setup, workdir, run_no, rows)
            print(f"  pipeline round {round_no + 1}/{rounds} done (load {load():.2f})", flush=True)
    finally:
        sandbox.stop()
    print(f"\nPipelines, Talkdesk calls JSON {rows:,} rows, {rounds} rounds; 1-minute load before each round: "
          f"{', '.join(loads)}")
    print("wall = tap start to the last exit (start-up and the sandbox's job included); CPU and RSS per process")
    print(f"{'setup':62} {'n':>2} {'wall med':>8} {'rows/s med':>10} {'rows/s min':>10} {'tap CPU':>7} "
          f"{'target CPU':>10} {'tap RSS':>7} {'target RSS':>10}")
    for setup in setups:
        if not setup.results:
            print(f"{setup.name:62}  failed: {setup.failed or 'not run'}")
            continue
        wall = statistics.median(r[0] for r in setup.results)
        worst = max(r[0] for r in setup.results)
        med = [statistics.median(r[i] for r in setup.results) for i in (1, 2)]
        rss = [max(r[i] for r in setup.results) for i in (3, 4)]
        print(f"{setup.name:62} {len(setup.results):>2} {wall:>7.2f}s {rows / wall:>10,.0f} {rows / worst:>10,.0f} "
              f"{med[0]:>6.2f}s {med[1]:>9.2f}s {rss[0]:>5.0f}MB {rss[1]:>8.0f}MB")
    if any(s.failed for s in setups):
        sys.exit(1)


