"""The type check alone, as the row shaper calls it: today's `Conformer.check` (value types proven
column by column, `conform.ProvenTypes`, checked by code made for the layout once proven) against
the same check with the C-level probes only and the whole-row pattern cache before (issue 29), in
one process, on the rows as they reach the check (Talkdesk calls rows shaped by
`RowShaper`), rounds interleaved.

    python bench/typecheck_cost.py [--kind "calls (new names)"] [--rows 50000] [--rounds 5]

Prints microseconds per row (median and every round) and how many value-type patterns the rows
make (the old cache conformed each new one field by field).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import time
import typing as t

from rowshape_cost import rows_of

from tap_callreports.conform import Conformer, ProvenTypes
from tap_callreports.report_types import ROW_POLICIES
from tap_callreports.rowshape import RowShaper
from tap_callreports.schemas import load_schema


def rows_at_the_check(kind: str, count: int) -> tuple[Conformer, list[dict[str, t.Any]]]:
    """The stream's conformer, and copies of the rows as `RowShaper.shape` hands them to it."""
    report_type = kind.split()[0]
    policy, vendor = ROW_POLICIES[report_type], load_schema(f"talkdesk_{report_type}")
    schema = policy.output_schema(vendor)
    known = frozenset(schema["properties"]) | {"start_utc"}
    seen: list[dict[str, t.Any]] = []

    class Spy(Conformer):
        def check(self, row: dict[str, t.Any], proven: ProvenTypes) -> dict[str, t.Any]:
            seen.append(dict(row))
            return super().check(row, proven)

    shaper = RowShaper(
        policy,
        vendor["properties"],
        known=lambda: known,
        on_unknown=print,
        conformer=lambda: Spy(schema, "bench", policy.instants),
    )
    for row in rows_of(kind, count):
        shaper.shape(dict(row), dt.UTC)
    return Conformer(schema, "bench", policy.instants), seen


def by_pattern(conformer: Conformer, batch: list[dict[str, t.Any]]) -> int:
    """The check before: one tuple of value types a row; a new pattern conformed field by field."""
    proven: set[tuple[type, ...]] = set()
    for row in batch:
        if tuple(map(type, row.values())) not in proven:
            pattern = tuple(map(type, row.values()))
            conformer.conform(row)
            if tuple(map(type, row.values())) == pattern and not any(
                rule.nested or rule.items is not None or rule.date_time
                for name in row
                if (rule := conformer.rules.get(name)) is not None
            ):
                proven.add(pattern)
    return len(proven)


def by_column(conformer: Conformer, batch: list[dict[str, t.Any]]) -> None:
    """Today's check: the C-level probes until a row passes them, then the layout's own code."""
    proven, check = ProvenTypes(), conformer.check
    for row in batch:
        check(row, proven)


def by_probes(conformer: Conformer, batch: list[dict[str, t.Any]]) -> None:
    """The per-column check before the layout's own code (`ProvenTypes.compile`): the probes only."""
    proven, check = ProvenTypes(), conformer.check
    proven.compiled = ProvenTypes.MAX_COMPILES  # never made: every row takes the probes
    for row in batch:
        check(row, proven)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="calls (new names)", choices=["calls (new names)", "calls (old names)"])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    conformer, rows = rows_at_the_check(args.kind, args.rows)
    patterns = by_pattern(conformer, copy.deepcopy(rows))
    print(f"{args.kind}: {len(rows):,} rows of {len(rows[0])} fields, {patterns:,} value-type patterns")
    variants: dict[str, t.Callable[[Conformer, list[dict[str, t.Any]]], object]] = {
        "per pattern (before)": by_pattern,
        "per column, probes only": by_probes,
        "per column (Conformer.check)": by_column,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        shift = round_ % len(variants)
        order = list(variants)[shift:] + list(variants)[:shift]
        for name in order:
            batch = copy.deepcopy(rows)
            start = time.perf_counter()
            variants[name](conformer, batch)
            times[name].append((time.perf_counter() - start) / len(batch) * 1e6)
    for name, spent in times.items():
        print(f"  {name:30} median {statistics.median(spent):5.2f} us/row  rounds {[round(s, 2) for s in spent]}")


if __name__ == "__main__":
    main()
