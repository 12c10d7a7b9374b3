"""`callreports-sandbox --port P --seed S [--scale N] [--faults PROFILE] [--shape NAME ...]`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tap_callreports.sandbox.faults import PROFILES
from tap_callreports.sandbox.server import SandboxConfig, start_sandbox
from tap_callreports.sandbox.shapes import SHAPES

# Credentials a client needs, printed at start (all are public sandbox demo values).
CREDENTIALS = (
    "talkdesk_client_id",
    "talkdesk_client_secret",
    "talkdesk_access_token",
    "zendesk_email",
    "zendesk_api_token",
    "zendesk_oauth_token",
    "myreports_token",
    "myreports_client_id",
    "myreports_client_secret",
    "myreports_refresh_token",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="callreports-sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="shapes:\n" + "\n".join(f"  {name:32} {about}" for name, about in SHAPES.items()),
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1, help="multiplies generated volumes")
    parser.add_argument("--faults", default="none", choices=sorted(PROFILES))
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME",
        help="answer in this documented shape (repeatable; see the list below)",
    )
    parser.add_argument("--job-polls", type=int, default=3)
    parser.add_argument("--job-seconds", type=float, default=0.0, help="a job is done no sooner than this")
    parser.add_argument(
        "--job-wall-seconds",
        type=float,
        default=10.0,
        help="a job is done this long after creation even if nobody polls it (or after --job-polls polls, if sooner)",
    )
    parser.add_argument("--talkdesk-max-active-jobs", type=int, default=15, help="report jobs per account (then 429)")
    parser.add_argument(
        "--talkdesk-held-jobs",
        type=int,
        default=0,
        help="of those, held by another client from the first job request on ...",
    )
    parser.add_argument("--talkdesk-held-seconds", type=float, default=0.0, help="... for this many seconds")
    parser.add_argument("--talkdesk-done-status", type=int, choices=[200, 300, 303], default=300)
    parser.add_argument("--talkdesk-file-redirect", choices=["always", "never", "alternate"], default="alternate")
    parser.add_argument("--token-ttl", type=int, default=3600, help="seconds a Talkdesk access token lives")
    parser.add_argument(
        "--myreports-access-ttl",
        type=int,
        default=3600,
        help="seconds a MyReports access token from the refresh grant lives",
    )
    parser.add_argument(
        "--myreports-rotate-refresh",
        action="store_true",
        help="every MyReports refresh grant returns a new refresh token; the used one stops working",
    )
    parser.add_argument("--myreports-row-limit", type=int, default=1_000_000)
    parser.add_argument("--rows-per-hour", type=int, default=None, help="exact Talkdesk report rows per hour")
    parser.add_argument("--myreports-rows-per-hour", type=int, default=None)
    parser.add_argument("--zendesk-rate-limit", type=int, default=700)
    parser.add_argument(
        "--zendesk-talk-rate-limit", type=int, default=10, help="Talk export requests per window, per endpoint"
    )
    parser.add_argument("--zendesk-talk-rate-window-seconds", type=float, default=60.0)
    parser.add_argument("--zendesk-talk-days", type=float, default=14.0, help="days of Talk calls before the anchor")
    parser.add_argument("--zendesk-talk-calls-per-hour", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        config = SandboxConfig(
            host=args.host,
            port=args.port,
            seed=args.seed,
            scale=args.scale,
            faults=args.faults,
            shapes=tuple(name for given in args.shape for name in given.split(",") if name),
            job_polls=args.job_polls,
            job_seconds=args.job_seconds,
            job_wall_seconds=args.job_wall_seconds,
            talkdesk_done_status=args.talkdesk_done_status,
            talkdesk_max_active_jobs=args.talkdesk_max_active_jobs,
            talkdesk_held_jobs=args.talkdesk_held_jobs,
            talkdesk_held_seconds=args.talkdesk_held_seconds,
            talkdesk_file_redirect=args.talkdesk_file_redirect,
            token_ttl=args.token_ttl,
            myreports_access_ttl=args.myreports_access_ttl,
            myreports_rotate_refresh=args.myreports_rotate_refresh,
            myreports_row_limit=args.myreports_row_limit,
            rows_per_hour=args.rows_per_hour,
            myreports_rows_per_hour=args.myreports_rows_per_hour,
            zendesk_rate_limit=args.zendesk_rate_limit,
            zendesk_talk_rate_limit=args.zendesk_talk_rate_limit,
            zendesk_talk_rate_window_seconds=args.zendesk_talk_rate_window_seconds,
            zendesk_talk_days=args.zendesk_talk_days,
            zendesk_talk_calls_per_hour=args.zendesk_talk_calls_per_hour,
        )
    except ValueError as exc:
        parser.error(str(exc))
    sandbox = start_sandbox(config)
    print(
        f"callreports-sandbox listening on {sandbox.url} (seed {config.seed}, scale {config.scale}, "
        f"faults {config.faults}, shapes {','.join(config.shapes) or 'none'})",
        flush=True,
    )
    print("sandbox credentials: " + ", ".join(f"{k}={getattr(config, k)}" for k in CREDENTIALS), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
