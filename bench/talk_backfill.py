"""Talk backfill benchmark: calls read per minute from the Talk calls export, against its ceiling.

    python bench/talk_backfill.py                       # 30 days x 60 calls/h, clock 10x (about 1 min)
    python bench/talk_backfill.py --speedup 1 --days 3  # the real minute: about 10 s per 1000 calls

Zendesk allows 10 requests a minute per export and answers 1000 items a page, so no client reads
more than 10 x 1000 = 10,000 calls a minute (the ceiling). The sandbox runs in this process with
`--days` days of calls (`--calls-per-hour` each hour, each call in its final version) and a Talk
limit of 10 requests per 60/`--speedup` seconds; the tap runs as its own process (stdout to
a file) with the matching `zendesk_talk_rate_limit` / `zendesk_talk_rate_window_seconds` and
only zendesk_talk_calls selected, from the first day.

The sped-up clock shortens the rate window only; the tap's own work per page (parsing, conforming,
writing 1000 records) and each request's latency are not sped up, so the figure is a lower bound
of what the real minute gives. Converted: calls per real minute = calls read / (wall seconds /
window seconds), i.e. calls per sandbox window.

Printed: calls, pages (requests answered 200), 429s (the tap's pacing should meet none), wall
seconds, calls per (converted) minute, and that as a share of the ceiling; the tap's progress lines
(their time-left estimates) with --progress. With --resume, a second run starts the moment the
first ends, from its last STATE (as a scheduler chaining runs would): its requests, the 429s it
met (the first run's last requests are still inside Zendesk's window; a new process does not know
them) and the calls it sent again (only the bookmark's second).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_callreports.sandbox.server import SandboxConfig, start_sandbox  # noqa: E402
from tap_callreports.zendesk.talk import PAGE_SIZE  # noqa: E402

LIMIT = 10  # requests per window per export (Zendesk: per minute)
ANCHOR = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tap(config: Path, catalog: Path, state: dict | None, tmp: Path) -> tuple[subprocess.CompletedProcess, list]:
    """One run of the tap's CLI; its STATE values (records are counted by the sandbox)."""
    argv = [sys.executable, "-m", "tap_callreports", "--config", str(config), "--catalog", str(catalog)]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(tmp / "state.json")]
    with open(tmp / "out.jsonl", "wb") as out:
        run = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, text=True, check=False)
    states = []
    with open(tmp / "out.jsonl", "rb") as out:
        for line in out:
            if line.startswith(b'{"type":"STATE"') or b'"type": "STATE"' in line[:40]:
                states.append(json.loads(line)["value"])
    return run, states


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--calls-per-hour", type=int, default=60)
    parser.add_argument("--speedup", type=float, default=10.0, help="the rate window is 60/speedup seconds")
    parser.add_argument("--progress", action="store_true", help="print the tap's progress lines")
    parser.add_argument("--resume", action="store_true", help="then a second run from the first's STATE")
    args = parser.parse_args()
    window = 60.0 / args.speedup
    start = ANCHOR - dt.timedelta(days=args.days)
    sandbox = start_sandbox(
        SandboxConfig(
            seed=7,
            list_anchor=iso(ANCHOR),
            zendesk_talk_days=args.days,
            zendesk_talk_calls_per_hour=args.calls_per_hour,
            zendesk_talk_now=iso(ANCHOR + dt.timedelta(days=3)),  # every call in its final version
            zendesk_talk_rate_limit=LIMIT,
            zendesk_talk_rate_window_seconds=window,
        )
    )
    try:
        zendesk = next(vendor for vendor in sandbox.app.vendors if vendor.NAME == "zendesk")
        zendesk.talk.build()  # not timed
        config = {
            "start_date": iso(start),
            "zendesk_api_url": sandbox.url,
            "zendesk_email": "agent@example.com",
            "zendesk_api_token": "sandbox-zendesk-token",
            "zendesk_talk_rate_limit": LIMIT,
            "zendesk_talk_rate_window_seconds": window,
        }
        with tempfile.TemporaryDirectory() as tmp:
            config_path = Path(tmp) / "config.json"
            config_path.write_text(json.dumps(config))
            catalog = subprocess.run(
                [sys.executable, "-m", "tap_callreports", "--config", str(config_path), "--discover"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            streams = json.loads(catalog)
            for entry in streams["streams"]:
                for item in entry["metadata"]:
                    if item["breadcrumb"] == []:
                        item["metadata"]["selected"] = entry["tap_stream_id"] == "zendesk_talk_calls"
            catalog_path = Path(tmp) / "catalog.json"
            catalog_path.write_text(json.dumps(streams))
            began = time.monotonic()
            run, states = tap(config_path, catalog_path, None, Path(tmp))
            wall = time.monotonic() - began
            pages = [e for e in sandbox.app.events("zendesk_talk_page") if e["resource"] == "calls"]
            limited = [e for e in sandbox.app.events("rate_limited") if e.get("resource") == "calls"]
            resumed_line = ""
            if args.resume and run.returncode == 0:
                before = len(sandbox.app.events("zendesk_talk_page"))
                limited_before = len(sandbox.app.events("rate_limited"))
                resumed, _ = tap(config_path, catalog_path, states[-1], Path(tmp))
                if resumed.returncode != 0:
                    print(resumed.stderr[-3000:], file=sys.stderr)
                    return 1
                asked = sandbox.app.events("zendesk_talk_page")[before:]
                bookmark = states[-1]["bookmarks"]["zendesk_talk_calls"]["replication_key_value"]
                resumed_line = (
                    f"  resumed run: {len(asked)} request(s) from start_time {asked[0]['start_time']} "
                    f"(the bookmark {bookmark}), {len(sandbox.app.events('rate_limited')) - limited_before} 429(s) "
                    f"waited out, {sum(e['count'] for e in asked)} call(s) read again (those of the bookmark's second)"
                )
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            return 1
        calls = len(zendesk.talk.latest("calls", int((ANCHOR + dt.timedelta(days=3)).timestamp())))
        per_minute = calls / (wall / window)
        ceiling = LIMIT * PAGE_SIZE
        if args.progress:
            for line in run.stderr.splitlines():
                if "zendesk_talk_calls: page" in line or "zendesk_talk_calls: read" in line:
                    print("  " + line.strip()[:220])
        print(
            f"talk calls backfill: {args.days:g} days, {calls} calls, {len(pages)} pages, {len(limited)} 429s, "
            f"rate window {window:g}s (speed-up {args.speedup:g}x)"
        )
        print(
            f"  wall {wall:.1f}s = {wall / window:.2f} windows; {per_minute:,.0f} calls per (converted) minute; "
            f"ceiling {ceiling:,} (10 requests x {PAGE_SIZE}); {100 * per_minute / ceiling:.0f}% of it"
        )
        if len(pages) <= LIMIT:
            print(f"  (only {len(pages)} pages: one window's worth, not bound by the limit; use more --days)")
        if resumed_line:
            print(resumed_line)
        print(f"  load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
