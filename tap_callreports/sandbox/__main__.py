"""`callreports-sandbox --port P --seed S [--scale N] [--faults PROFILE]`."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading

from tap_callreports.sandbox.faults import PROFILES
from tap_callreports.sandbox.server import SandboxConfig, start_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="callreports-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1, help="multiplies generated volumes")
    parser.add_argument("--faults", default="none", choices=sorted(PROFILES))
    parser.add_argument("--job-polls", type=int, default=3)
    parser.add_argument("--job-seconds", type=float, default=0.0)
    parser.add_argument("--talkdesk-done-status", type=int, choices=[200, 300, 303], default=300)
    parser.add_argument("--talkdesk-file-redirect", choices=["always", "never", "alternate"], default="alternate")
    parser.add_argument("--myreports-row-limit", type=int, default=1_000_000)
    parser.add_argument("--rows-per-hour", type=int, default=None, help="exact Talkdesk report rows per hour")
    parser.add_argument("--myreports-rows-per-hour", type=int, default=None)
    parser.add_argument("--zendesk-rate-limit", type=int, default=700)
    args = parser.parse_args(argv)
    config = SandboxConfig(
        host=args.host, port=args.port, seed=args.seed, scale=args.scale, faults=args.faults,
        job_polls=args.job_polls, job_seconds=args.job_seconds, talkdesk_done_status=args.talkdesk_done_status,
        talkdesk_file_redirect=args.talkdesk_file_redirect, myreports_row_limit=args.myreports_row_limit,
        rows_per_hour=args.rows_per_hour, myreports_rows_per_hour=args.myreports_rows_per_hour,
        zendesk_rate_limit=args.zendesk_rate_limit,
    )
    sandbox = start_sandbox(config)
    credentials = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                   if f.name.startswith(("talkdesk_client", "talkdesk_access", "zendesk_email", "zendesk_api",
                                         "zendesk_oauth", "myreports_token"))}
    print(f"callreports-sandbox listening on {sandbox.url} (seed {config.seed}, scale {config.scale}, "
          f"faults {config.faults})", flush=True)
    print("sandbox credentials: " + ", ".join(f"{k}={v}" for k, v in credentials.items()), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
