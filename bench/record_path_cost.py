"""What the tap's record path pays that the same-output script does not, in one process: the tap's
own stream objects (its row shaper with the type check, the key check, the writer holding the
window in its spool file) against bench/nosdk.py's functions, on one Talkdesk calls body from the
sandbox, with the type check or the hold switched off in variants of the same run; rounds
alternated, CPU microseconds per row (process time, so the machine's other load counts less).

    python bench/record_path_cost.py [--rows 60000] [--rounds 7]

The tap's loop is its record path without the job engine and the SDK's loop around it: the body
parsed by `ReportDocument`, each row shaped by the stream's `RowShaper` (type check included),
its origin fields added, counted and key-checked by `WindowRows`, written by `FastSingerWriter`
while the window is held, the keys proven, the window released (stdout is /dev/null).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import tempfile
import typing as t
from pathlib import Path
from zoneinfo import ZoneInfo

import nosdk
import requests
import run

from tap_callreports import conform
from tap_callreports import writer as writer_module
from tap_callreports.reportjobs.reader import WindowRows
from tap_callreports.streaming import ReportDocument
from tap_callreports.tap import TapCallReports

ORIGIN = {"report_job_id": "bench", "report_window_start": run.WINDOW_START, "report_window_end": run.WINDOW_END}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def script(body: Path, url: str) -> float:
    """bench/nosdk.py's orjson baseline on the body, stdout to /dev/null."""
    vendor = nosdk.Vendor("talkdesk", url, (run.WINDOW_START, run.WINDOW_END))
    with open("/dev/null", "w") as null, open(body, "rb") as raw:
        stdout, sys.stdout = sys.stdout, null
        try:
            out = nosdk.Output(vendor.stream)
            began = cpu()
            nosdk.orjson_rows(raw, vendor, out)
            sys.stdout.buffer.flush()
            return cpu() - began
        finally:
            sys.stdout = stdout


def tap(body: Path, config: dict, catalog: dict) -> float:
    """The tap's record path on the body (see the module's doc), with a new stream each time."""
    stream = TapCallReports(config=config, catalog=catalog, parse_env_config=False).streams["talkdesk_calls"]
    writer = t.cast(writer_module.FastSingerWriter, stream.services.message_writer)
    shape, zone = stream.shaper.shape, ZoneInfo("UTC")
    rows = WindowRows(stream, stream.services.unsaved)
    stream.extracted_at = "2026-12-07T00:00:00+00:00"

    def vendor_rows(raw: t.Any) -> t.Iterator[dict]:
        for row in ReportDocument(raw, ["entries", ""]).rows(0):
            row = shape(row, zone, None)
            row.update(ORIGIN)
            yield row

    with open("/dev/null", "w") as null, open(body, "rb") as raw:
        stdout, sys.stdout = sys.stdout, null
        try:
            began = cpu()
            stream.hold_window()
            write, name = writer.write_record, stream.name
            for row in rows.of(vendor_rows(raw), t.cast(t.Any, None), t.cast(t.Any, None)):
                write(name, row, stream.extracted_at)
            assert not rows.keys.missing and not rows.keys.conflicts()
            stream.release_window()
            writer.flush()
            return cpu() - began
        finally:
            sys.stdout = stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    per_hour = math.ceil(args.rows / run.HOURS)
    rows = per_hour * run.HOURS
    sandbox = run.Sandbox(per_hour)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        try:
            url = sandbox.new_file("talkdesk")
            body = workdir / "calls.json"
            with requests.get(
                url, headers={"Authorization": f"Bearer {run.TALKDESK_TOKEN}"}, stream=True, timeout=600
            ) as got:
                got.raise_for_status()
                with open(body, "wb") as out:
                    for chunk in got.iter_content(1 << 20):
                        out.write(chunk)
            argv = run.tap_files(sandbox, "talkdesk", workdir)
            config, catalog = json.loads(Path(argv[1]).read_text()), json.loads(Path(argv[3]).read_text())
        finally:
            sandbox.stop()

        def switched(attribute: tuple[t.Any, str], value: t.Any) -> t.Callable[[], float]:
            def measured() -> float:
                owner, name = attribute
                before = getattr(owner, name)
                setattr(owner, name, value)
                try:
                    return tap(body, config, catalog)
                finally:
                    setattr(owner, name, before)

            return measured

        variants: dict[str, t.Callable[[], float]] = {
            "the script (parse, shape, key check, write)": lambda: script(body, url),
            "the tap, with the layout's own type check": lambda: tap(body, config, catalog),
            "the same, type check off": switched((conform.Conformer, "check"), lambda self, row, proven: row),
            "the same, window not held (no spool)": switched(
                (writer_module.FastSingerWriter, "hold"), lambda self: None
            ),
            "the tap with the type check's probes only": switched((conform.ProvenTypes, "MAX_COMPILES"), 0),
        }
        spent: dict[str, list[float]] = {name: [] for name in variants}
        print(f"{rows:,} Talkdesk calls rows; load {run.load():.2f}", flush=True)
        for round_ in range(args.rounds):
            names = list(variants)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                spent[name].append(variants[name]() / rows * 1e6)
            print(f"  round {round_ + 1}/{args.rounds} done (load {run.load():.2f})", flush=True)
    for name, values in spent.items():
        print(f"  {name:45} median {statistics.median(values):6.2f} us/row, min {min(values):6.2f}")


if __name__ == "__main__":
    main()
