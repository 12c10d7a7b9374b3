"""`make demo`: sandbox -> tap-callreports -> DuckDB through Meltano, then per-table row counts.

Starts the sandbox on 127.0.0.1:PORT (default 8765, the port meltano.yml's sandbox environment
uses; another port's URLs are passed as TAP_CALLREPORTS_* variables, which win over meltano.yml),
runs `meltano install` and `meltano run tap-callreports target-duckdb`, prints what landed, stops.
A port something else listens on is refused: the demo would otherwise talk to that.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def sandbox_env(url: str) -> dict[str, str]:
    """The sandbox environment's URLs for a sandbox at `url`."""
    return {
        "TAP_CALLREPORTS_TALKDESK_API_URL": url,
        "TAP_CALLREPORTS_TALKDESK_TOKEN_URL": f"{url}/oauth/token",
        "TAP_CALLREPORTS_ZENDESK_API_URL": url,
        "TAP_CALLREPORTS_MYREPORTS_API_URL": f"{url}/api",
    }


def port_is_free(port: int) -> bool:
    """Nothing listens there. SO_REUSEADDR, as the sandbox's own server sets it: a port whose last
    connections are in TIME-WAIT (the sandbox of a demo that just ended) is free, not busy for a minute."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_sandbox/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    sys.exit(f"demo: the sandbox did not start at {url}")


# A query to paste after the demo. Tables are named database.schema.table: target-duckdb's schema
# is `callreports` inside the database file `callreports`, so `callreports.talkdesk_calls` alone is ambiguous.
EXAMPLE_QUERY = (
    "select type, count(*) as calls, round(avg(talk_time_seconds)) as avg_talk_seconds "
    "from callreports.callreports.talkdesk_calls group by type order by calls desc"
)


def query_command(db_path: Path) -> str:
    """The query as a shell command to paste in the repo, with the .venv's duckdb (no duckdb CLI needed)."""
    return (
        f".venv/bin/python -c \"import duckdb; duckdb.connect('{db_path.relative_to(ROOT)}', read_only=True)"
        f".sql('{EXAMPLE_QUERY}').show()\""
    )


def count_table(counts: list[tuple[str, int]]) -> list[str]:
    """The rows-per-table lines, as wide as the longest table name and the largest count."""
    name_width = max([len("table"), *(len(name) for name, _ in counts)])
    count_width = max([len("rows"), *(len(f"{count:,}") for _, count in counts)])
    return [
        f"  {'table':<{name_width}}  {'rows':>{count_width}}",
        *(f"  {name:<{name_width}}  {count:>{count_width},}" for name, count in counts),
    ]


def print_counts(db_path: Path) -> None:
    import duckdb

    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = con.execute(
            "select table_catalog, table_schema, table_name from information_schema.tables "
            "where table_schema = 'callreports' order by table_name"
        ).fetchall()
        counts = [
            (
                f"{catalog}.{schema}.{table}",
                con.execute(f'select count(*) from "{catalog}"."{schema}"."{table}"').fetchall()[0][0],
            )
            for catalog, schema, table in tables
        ]
        con.sql(EXAMPLE_QUERY).fetchall()  # the query printed below works, or the demo fails here
    print(f"\nLanded in {db_path.relative_to(ROOT)}:")
    print("\n".join(count_table(counts)))
    print(f"\nQuery it (paste this in the repository's folder):\n{query_command(db_path)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meltano", default=str(ROOT / ".venv-meltano/bin/meltano"))
    parser.add_argument("--port", type=int, default=8765, help="port of the sandbox (8765: meltano.yml's URLs)")
    args = parser.parse_args()

    if not port_is_free(args.port):
        sys.exit(
            f"demo: error: port {args.port} on {HOST} is in use; stop what listens there or run "
            f"make demo PORT=<another port>"
        )
    url = f"http://{HOST}:{args.port}"
    sandbox_bin = Path(sys.executable).parent / "callreports-sandbox"
    sandbox = subprocess.Popen(
        [str(sandbox_bin), "--port", str(args.port), "--seed", "1", "--job-polls", "2"], cwd=ROOT
    )
    try:
        wait_for(url)
        env = {
            **os.environ,
            "MELTANO_ENVIRONMENT": "sandbox",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            **sandbox_env(url),
        }
        (ROOT / "output").mkdir(exist_ok=True)
        subprocess.run([args.meltano, "install"], cwd=ROOT, env=env, check=True)
        subprocess.run([args.meltano, "run", "tap-callreports", "target-duckdb"], cwd=ROOT, env=env, check=True)
        print_counts(ROOT / "output" / "callreports.duckdb")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    main()
