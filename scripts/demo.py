"""`make demo`: sandbox -> tap-callreports -> DuckDB through Meltano, then per-table row counts.

Starts the sandbox on 127.0.0.1:8765 (the port meltano.yml's sandbox environment uses), runs
`meltano install` and `meltano run tap-callreports target-duckdb`, prints what landed, stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_URL = "http://127.0.0.1:8765"


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_sandbox/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    sys.exit(f"demo: the sandbox did not start at {url}")


def print_counts(db_path: Path) -> None:
    import duckdb

    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = con.execute(
            "select table_catalog, table_schema, table_name from information_schema.tables "
            "where table_schema = 'callreports' order by table_name"
        ).fetchall()
        print(f"\nLanded in {db_path.relative_to(ROOT)}:")
        print(f"  {'table':40} {'rows':>8}")
        for catalog, schema, table in tables:
            count = con.execute(f'select count(*) from "{catalog}"."{schema}"."{table}"').fetchone()[0]
            print(f"  {schema + '.' + table:40} {count:>8}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meltano", default=str(ROOT / ".venv-meltano/bin/meltano"))
    parser.add_argument("--days", type=int, default=14, help="history to extract on the first run")
    args = parser.parse_args()

    sandbox_bin = Path(sys.executable).parent / "callreports-sandbox"
    sandbox = subprocess.Popen([str(sandbox_bin), "--port", "8765", "--seed", "1", "--job-polls", "2"], cwd=ROOT)
    try:
        wait_for(SANDBOX_URL)
        env = {**os.environ, "MELTANO_ENVIRONMENT": "sandbox", "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
        env.setdefault("TAP_CALLREPORTS_START_DATE",
                       (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=args.days)).strftime("%Y-%m-%dT00:00:00Z"))
        (ROOT / "output").mkdir(exist_ok=True)
        subprocess.run([args.meltano, "install"], cwd=ROOT, env=env, check=True)
        subprocess.run([args.meltano, "run", "tap-callreports", "target-duckdb"], cwd=ROOT, env=env, check=True)
        print_counts(ROOT / "output" / "callreports.duckdb")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    main()
