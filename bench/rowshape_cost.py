"""What warehouse-ready rows cost per row: the tap's row shaping (with its check for fields the schema
does not know, made once per set of vendor fields) and its key check, on rows from the sandbox's
generator, against the tap's whole per-row time.

    python bench/rowshape_cost.py [--rows 200000] [--rounds 5]

Prints microseconds per row (median of rounds) for each step on Talkdesk calls rows (new and old
field names), contacts rows (wall-clock times, Yes/No flags, "None" texts), explore_calls rows (with
the `_row_key` hash they are keyed by) and MyReports rows, and each step's share of the tap's own
per-row time measured by `bench/run.py` (pass it with --tap-rows-per-second; default: this
machine's last figure in docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from zoneinfo import ZoneInfo

from tap_callreports.conform import Conformer
from tap_callreports.myreports.streams import ROW_POLICY as MYREPORTS_POLICY
from tap_callreports.report_types import ROW_POLICIES
from tap_callreports.rowkeys import ROW_KEY, KeyGuard, RowKeys
from tap_callreports.rowshape import RowShaper
from tap_callreports.sandbox.data import MYREPORTS_REPORTS, SandboxData
from tap_callreports.schemas import load_schema

UTC = dt.UTC
START = dt.datetime(2026, 10, 1, tzinfo=UTC)


def rows_of(kind: str, count: int) -> list[dict]:
    hours = max(1, count // 1000)
    if kind == "myreports":
        data = SandboxData(seed=1, myreports_rows_per_hour=1000)
        report = next(iter(MYREPORTS_REPORTS))
        return [row for _ts, row in data.myreports_rows(report, START, START + dt.timedelta(hours=hours))]
    cutover = dt.datetime(2099, 1, 1, tzinfo=UTC) if kind == "calls (old names)" else START
    data = SandboxData(seed=1, rows_per_hour=1000, calls_rename_cutover=cutover)
    return list(data.talkdesk_rows(kind.split()[0], START, START + dt.timedelta(hours=hours), ZoneInfo("UTC"), START))


def per_row(step, rows: list[dict], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        batch = [dict(row) for row in rows]
        began = time.perf_counter()
        step(batch)
        timings.append((time.perf_counter() - began) / len(batch) * 1e6)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--tap-rows-per-second",
        type=float,
        default=157_000,
        help="the tap's own rate (bench/run.py) to express each step as a share of its per-row time",
    )
    args = parser.parse_args()
    tap_us = 1e6 / args.tap_rows_per_second
    print(f"tap per-row time for the shares: {tap_us:.2f} us ({args.tap_rows_per_second:,.0f} rows/s)")
    for kind in ("calls (new names)", "calls (old names)", "contacts", "explore_calls", "myreports"):
        rows = rows_of(kind, args.rows)
        if kind == "myreports":
            policy, vendor = MYREPORTS_POLICY, load_schema("myreports_call_rows")
        else:
            report_type = kind.split()[0]
            policy, vendor = ROW_POLICIES[report_type], load_schema(f"talkdesk_{report_type}")
        schema = policy.output_schema(vendor)
        known = frozenset(schema["properties"]) | {"start_utc"}
        if not vendor["properties"]:  # no declared columns: as after the stream's schema grew
            known |= {name for row in rows for name in row}
        shaper = RowShaper(policy, vendor["properties"], known=lambda known=known: known, on_unknown=print)
        checked = RowShaper(
            policy,
            vendor["properties"],
            known=lambda known=known: known,
            on_unknown=print,
            conformer=lambda schema=schema, policy=policy: Conformer(schema, "bench", policy.instants),
        )
        shaped = [shaper.shape(dict(row), UTC) for row in rows]
        for row in rows:  # the layouts and minutes seen, as in a run
            checked.shape(dict(row), UTC)

        def copy_only(batch):  # the floor: the loop itself
            for _row in batch:
                pass

        def shape(batch, shaper=shaper):
            for row in batch:
                shaper.shape(row, UTC)

        def shape_checked(batch, shaper=checked):
            for row in batch:
                shaper.shape(row, UTC)

        def keys(batch, policy=policy):
            add = KeyGuard(policy.key).add
            for row in batch:
                add(row)

        def row_keys(batch):
            add = RowKeys().add
            for row in batch:
                add(row)

        loop = per_row(copy_only, rows, args.rounds)
        shaping = per_row(shape, rows, args.rounds)
        costs = {
            "row shaping (names, canonical fields, UTC, new fields)": shaping - loop,
            "type check against the schema (Conformer)": per_row(shape_checked, rows, args.rounds) - shaping,
        }
        if ROW_KEY in policy.key:
            costs["_row_key (hash of the row, occurrence)"] = per_row(row_keys, shaped, args.rounds) - loop
            for row in shaped:
                row[ROW_KEY] = "x"
        costs["key check (KeyGuard: key and content hash)"] = per_row(keys, shaped, args.rounds) - loop
        print(f"\n{kind}: {len(rows):,} rows, {args.rounds} rounds (median)")
        for step, cost in costs.items():
            print(f"  {step:54} {cost:6.2f} us/row  {cost / tap_us:6.1%} of the tap's per-row time")
        total = sum(costs.values())
        print(f"  {'both':54} {total:6.2f} us/row  {total / tap_us:6.1%}")


if __name__ == "__main__":
    main()
