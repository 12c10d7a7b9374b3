"""Latency benchmark: how long a run waits for the vendors' report jobs, against the floor.

    python bench/latency.py                      # jobs of 20 s (about 2 minutes)
    python bench/latency.py --job-seconds 60 --cases free,backfill

The sandbox runs in this process; every report job and request takes `--job-seconds` (J) after
its creation; the Talkdesk account allows 15 jobs queued or running (then 429). The tap runs
with its default job settings (nothing about concurrency or polling in the config), as its own
process with stdout to /dev/null. Cases:

- free:     all 8 Talkdesk report types and 2 MyReports reports, one window each (10 jobs), plus
            the list stream (imports). Floor: J (every job at once).
- shared:   the same, while another client holds `--held` of the 15 Talkdesk slots for the first
            J seconds after the first job request (the tap meets 429s and waits). Floor: 2 x J when
            the 8 Talkdesk jobs do not fit in the slots left (the rest start as the first finish).
- backfill: talkdesk_calls over `--backfill-days` days in `--window-days` windows. Floor:
            ceil(windows / 15) x J.
- backfill-all: every Talkdesk report type (9: 117 jobs) and 2 MyReports reports (26 requests,
            30 with the windows split at a fall-back) over `--backfill-days` days, every other
            setting default (7-day windows). Floor: the larger of ceil(Talkdesk jobs / 15) x J and
            ceil(MyReports jobs / 10) x J (MyReports' default ceiling). Goal <= 1.15x.

The sandbox builds each job's file while the job runs (`build_files_early`), as a vendor does:
otherwise it builds them at the poll that finds the job done, one at a time under its lock, and
15 jobs finishing together are seen up to several seconds late because of the sandbox's own CPU.

Printed per case: wall time of the process (start-up included), wall / floor, jobs created,
429s met, the tap's wait lines (one per 429), polls per job.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_callreports.sandbox.server import SandboxConfig, start_sandbox  # noqa: E402
from tap_callreports.settings import TALKDESK_MAX_CONCURRENT_JOBS, TALKDESK_REPORT_TYPES  # noqa: E402
from tap_callreports.vendors import MYREPORTS  # noqa: E402

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
WS = "00000000-0000-0000-0000-000000000001"
REPORTS = ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"]
WAIT_LINE = "is at its job limit"


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def config_for(url: str, case: str, args: argparse.Namespace) -> dict:
    common = {"start_date": iso(START), "talkdesk_api_url": url, "talkdesk_access_token": "sandbox-talkdesk-token"}
    myreports = {
        "myreports_api_url": f"{url}/api",
        "myreports_token": "sandbox-myreports-token",
        "myreports_workspace_id": WS,
        "myreports_report_ids": REPORTS,
    }
    if case == "backfill-all":  # every default stream, default windows, the last `--backfill-days` whole days
        end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return (
            common
            | myreports
            | {
                "start_date": iso(end - dt.timedelta(days=args.backfill_days)),
                "end_date": iso(end),
                "talkdesk_report_types": TALKDESK_REPORT_TYPES,
            }
        )
    if case == "backfill":  # the last `--backfill-days` whole days (windows never end after now)
        end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return common | {
            "start_date": iso(end - dt.timedelta(days=args.backfill_days)),
            "end_date": iso(end),
            "talkdesk_report_types": ["calls"],
            "talkdesk_window_days": args.window_days,
        }
    return (
        common
        | {
            "end_date": iso(START + dt.timedelta(days=1)),
            "talkdesk_report_types": TALKDESK_REPORT_TYPES,
            "talkdesk_window_days": 1,
            "myreports_window_days": 1,
        }
        | myreports
    )


def run_case(case: str, args: argparse.Namespace, workdir: Path) -> dict:
    held = args.held if case == "shared" else 0
    sandbox = start_sandbox(
        SandboxConfig(
            seed=1,
            job_polls=1,
            job_seconds=args.job_seconds,
            rows_per_hour=args.rows_per_hour,
            myreports_rows_per_hour=args.rows_per_hour,
            talkdesk_max_active_jobs=TALKDESK_MAX_CONCURRENT_JOBS,
            talkdesk_held_jobs=held,
            talkdesk_held_seconds=args.job_seconds if held else 0.0,
            build_files_early=True,  # as a vendor: the file is built during the job, not at the poll that ends it
        )
    )
    try:
        config = config_for(sandbox.url, case, args)
        path = workdir / f"config-{case}.json"
        path.write_text(json.dumps(config))
        started = time.monotonic()
        proc = subprocess.run(
            [*(args.tap.split() if args.tap else [sys.executable, "-m", "tap_callreports"]), "--config", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            (Path(args.logs) / f"{case}.log").write_text(proc.stderr)
        app = sandbox.app
        created = len(app.events("job_created"))
        polls = len(app.events("job_polled"))
        windows = math.ceil(args.backfill_days / args.window_days) if case == "backfill" else 1
        floor = math.ceil(windows / TALKDESK_MAX_CONCURRENT_JOBS) * args.job_seconds
        if case == "backfill-all":  # the jobs each vendor created, in rounds of its ceiling
            talkdesk = sum(1 for e in app.events("job_created") if e.get("vendor") == "talkdesk")
            windows = created
            floor = (
                max(
                    math.ceil(talkdesk / TALKDESK_MAX_CONCURRENT_JOBS),
                    math.ceil((created - talkdesk) / MYREPORTS.concurrent_jobs),
                )
                * args.job_seconds
            )
        if held and len(TALKDESK_REPORT_TYPES) > TALKDESK_MAX_CONCURRENT_JOBS - held:
            floor += args.job_seconds  # the jobs that found no slot start when the first ones finish
        return {
            "case": case,
            "exit": proc.returncode,
            "wall": wall,
            "floor": floor,
            "created": created,
            "refused": len(app.events("job_rejected")),
            "waits": proc.stderr.count(WAIT_LINE),
            "polls_per_job": polls / created if created else 0.0,
            "windows": windows,
            "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else [],
        }
    finally:
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job-seconds", type=float, default=20.0, help="J: how long every job takes")
    parser.add_argument("--held", type=int, default=10, help="Talkdesk slots another client holds (case shared)")
    parser.add_argument("--backfill-days", type=int, default=90)
    parser.add_argument("--window-days", type=int, default=7)
    parser.add_argument("--rows-per-hour", type=int, default=20, help="rows per hour per report (kept small)")
    parser.add_argument(
        "--tap", help="the tap's command (default: this checkout's), e.g. another checkout's to compare"
    )
    parser.add_argument("--logs", help="a directory to keep each case's tap log in (<case>.log)")
    parser.add_argument("--cases", default="free,shared,backfill,backfill-all")
    args = parser.parse_args()
    print(
        f"latency bench: jobs of J={args.job_seconds:g}s, Talkdesk account limit {TALKDESK_MAX_CONCURRENT_JOBS}, "
        "default tap settings (python bench/latency.py " + " ".join(sys.argv[1:]) + ")"
    )
    print(
        f"{'case':9} {'exit':>4} {'wall s':>7} {'floor s':>7} {'wall/floor':>10} {'jobs':>5} {'429s':>5} "
        f"{'waits':>5} {'polls/job':>9}"
    )
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            r = run_case(case, args, Path(tmp))
            failed |= r["exit"] != 0
            print(
                f"{case:9} {r['exit']:>4} {r['wall']:>7.1f} {r['floor']:>7.0f} {r['wall'] / r['floor']:>10.2f} "
                f"{r['created']:>5} {r['refused']:>5} {r['waits']:>5} {r['polls_per_job']:>9.1f}"
                + (f"   ({r['windows']} windows)" if case.startswith("backfill") else "")
                + (f"   {r['stderr_tail']}" if r["stderr_tail"] else ""),
                flush=True,
            )
            record_goal(r)
    sys.exit(1 if failed else 0)


def record_goal(r: dict) -> None:
    """The latency goals (`bench/goals.py`): the nightly run (`free`) against its slowest job, the
    backfill of every stream against the account's floor."""
    import goals

    key = {"free": "nightly_vs_slowest_job", "backfill-all": "backfill_vs_floor"}.get(r["case"])
    if key is not None and r["exit"] == 0:
        goals.record(key, r["wall"] / r["floor"], f"{r['wall']:.1f} s, floor {r['floor']:.0f} s, {r['created']} jobs")


if __name__ == "__main__":
    main()
