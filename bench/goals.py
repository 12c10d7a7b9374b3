"""The performance goals, each figure against its goal: the last line of `make bench`.

    python bench/goals.py            # the figures the benches recorded last, against the goals

`bench/run.py`, `bench/run.py --pipeline` and `bench/latency.py` each print their own tables and
record their goal figures (ratios measured within one run, so the machine's load cancels out) in
`.tmp/bench-goals.json`; this prints them all, with when and under which load each was measured.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / ".tmp" / "bench-goals.json"


@dataclass(frozen=True)
class Goal:
    key: str
    figure: str
    goal: str
    met: float  # the bound
    at_least: bool  # True: value >= met; False: value <= met (or < for RSS)
    unit: str = "x"


GOALS = (
    Goal("talkdesk_vs_script", "Talkdesk calls, 1M rows: tap rows/s / same-output no-SDK script", ">= 0.8x", 0.8, True),
    Goal(
        "myreports_vs_script", "MyReports result, 1M rows: tap rows/s / same-output no-SDK script", ">= 0.8x", 0.8, True
    ),
    Goal("peak_rss_mb", "peak RSS of the tap, 1M rows (the larger of the two bodies)", "< 100 MB", 100, False, " MB"),
    Goal("pipeline_vs_defaults", "tap | target-postgres, meltano.yml's setup / default setup", ">= 3x", 3.0, True),
    Goal(
        "nightly_vs_slowest_job",
        "nightly run, one window of every stream, 20 s jobs: wall / slowest job",
        "<= 1.25x",
        1.25,
        False,
    ),
    Goal(
        "backfill_vs_floor",
        "90-day backfill, every Talkdesk type + 2 reports, 20 s jobs: wall / floor",
        "<= 1.15x",
        1.15,
        False,
    ),
)


def load_average() -> float:
    return os.getloadavg()[0]


def record(key: str, value: float, detail: str) -> None:
    """Keep a goal figure (replacing the last one of `key`) and print it against its goal."""
    goal = next(g for g in GOALS if g.key == key)
    figures = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    figures[key] = {"value": value, "detail": detail, "at": time.strftime("%Y-%m-%d %H:%M"), "load": load_average()}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(figures, indent=1))
    print(line(goal, figures[key]))


def met(goal: Goal, value: float) -> bool:
    if goal.at_least:
        return value >= goal.met
    return value < goal.met if goal.unit == " MB" else value <= goal.met


def line(goal: Goal, figure: dict | None) -> str:
    if figure is None:
        return f"{goal.figure:78} {'not measured':>10}  goal {goal.goal:9}"
    value = figure["value"]
    shown = f"{value:.0f}{goal.unit}" if goal.unit == " MB" else f"{value:.2f}{goal.unit}"
    verdict = "met" if met(goal, value) else "NOT MET"
    return (
        f"{goal.figure:78} {shown:>10}  goal {goal.goal:9} {verdict:7}  ({figure['detail']}; "
        f"{figure['at']}, load {figure['load']:.2f})"
    )


def main() -> None:
    figures = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    print("\nPerformance goals (each figure a ratio measured within one run; see docs/performance.md):")
    for goal in GOALS:
        print(line(goal, figures.get(goal.key)))


if __name__ == "__main__":
    main()
