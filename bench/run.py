"""Benchmark: tap-callreports against the strongest no-SDK baselines, floors, and a naive
singer-sdk stream; and (--pipeline) the tap feeding real Singer targets.

    python bench/run.py                          # 1,000,080 and 100,080 rows, 5 rounds (~15 min)
    python bench/run.py --rows 100000 --small 0 --rounds 3 --naive-rounds 1   # quick
    python bench/run.py --profile                # also a pyinstrument profile of the tap
    python bench/run.py --pipeline               # tap | target-jsonl / -duckdb / -postgres, 200,160 rows

Method (docs/performance.md):
- Bodies come from the sandbox's generator and are served over loopback; Talkdesk calls JSON
  (`entries`) and a MyReports result (`data`, local times converted to UTC), one 10-day window.
- First a check on a small body: the tap, the orjson baseline and the ijson baseline must write
  the same RECORD bytes from the same body (time_extracted normalised), and both baselines must
  fail on a truncated and on a corrupted body. The bench stops if they do not.
- Every variant is its own process with stdout to /dev/null, run in every round, the order
  rotated each round; figures are the median and the min over rounds, with the 1-minute load
  average before each round. Throughput counts from the sandbox's first byte of the body (its
  file_download event) to the process's exit, so start-up is outside it and reported on its own.
- CPU seconds and peak RSS come from GNU time (`/usr/bin/time -f`), which forks each variant
  from its own small process: Python's wait4 on a child forked from this (bigger) process would
  report this process's size as a floor (checked and printed: `python -c pass`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TARGETS = ROOT / ".tmp" / "bench-targets"
PY = sys.executable
WINDOW_START, WINDOW_END, WINDOW_DAYS = "2026-10-01T00:00:00Z", "2026-10-11T00:00:00Z", 10
HOURS = WINDOW_DAYS * 24
WS = "00000000-0000-0000-0000-000000000001"
REPORT = "00000000-0000-0000-0000-000000000001"
TALKDESK_TOKEN = "sandbox-talkdesk-token"  # noqa: S105 - the sandbox's public demo token
MYREPORTS_TOKEN = "sandbox-myreports-token"  # noqa: S105
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
VENDORS = {
    "talkdesk": ("Talkdesk calls JSON", "talkdesk_calls", TALKDESK_TOKEN),
    "myreports": ("MyReports result", "myreports_call_rows", MYREPORTS_TOKEN),
}
RECORD_TIME = re.compile(rb'"time_extracted":"[^"]*"')


# ---- processes --------------------------------------------------------------------------------


@dataclass
class Usage:
    end: float  # wall clock at exit (time.time())
    cpu: float  # user + system seconds
    rss_mb: float  # peak RSS of the process itself
    code: int


def run_timed(
    argv: list[str],
    stdout: object = subprocess.DEVNULL,
    stdin: object = None,
    stderr: object = subprocess.DEVNULL,
    env: dict | None = None,
) -> Usage:
    proc, report = spawn_timed(argv, stdout=stdout, stdin=stdin, stderr=stderr, env=env)
    return wait_timed(proc, report)


def spawn_timed(argv: list[str], **kwargs: object) -> tuple[subprocess.Popen, str | None]:
    env = {**os.environ, **(kwargs.pop("env", None) or {})}  # type: ignore[dict-item]
    if GNU_TIME:
        fd, report = tempfile.mkstemp(prefix="bench-time-")
        os.close(fd)
        argv = [GNU_TIME, "-q", "-f", "%U %S %M", "-o", report, *argv]
    else:
        report = None
    return subprocess.Popen(argv, env=env, **kwargs), report  # type: ignore[call-overload]


def wait_timed(proc: subprocess.Popen, report: str | None) -> Usage:
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    end = time.time()
    if report is not None:
        text = Path(report).read_text().split()
        Path(report).unlink()
        user, system, rss_kb = float(text[-3]), float(text[-2]), int(text[-1])
        return Usage(end, user + system, rss_kb / 1024, proc.returncode)
    return Usage(end, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


def load() -> float:
    return os.getloadavg()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the sandbox --------------------------------------------------------------------------------


class Sandbox:
    def __init__(self, rows_per_hour: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "tap_callreports.sandbox",
                "--port",
                str(self.port),
                "--job-polls",
                "1",
                "--talkdesk-file-redirect",
                "never",
                "--rows-per-hour",
                str(rows_per_hour),
                "--myreports-rows-per-hour",
                str(rows_per_hour),
                "--myreports-row-limit",
                "100000000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                requests.get(f"{self.url}/_sandbox/health", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise SystemExit("bench: the sandbox did not start")

    def events(self, kind: str) -> list[dict]:
        return requests.get(f"{self.url}/_sandbox/events", params={"kind": kind}, timeout=30).json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def file_url(self, vendor: str, job_id: str) -> str:
        if vendor == "talkdesk":
            return f"{self.url}/data/reports/calls/files/{job_id}"
        return f"{self.url}/api/v1.0/workspaces/{WS}/reports/{REPORT}/requests/{job_id}/data"

    def new_file(self, vendor: str) -> str:
        """Run one job (outside any measurement) and return its file's URL."""
        if vendor == "talkdesk":
            headers = {"Authorization": f"Bearer {TALKDESK_TOKEN}"}
            job = requests.post(
                f"{self.url}/data/reports/calls/jobs",
                headers=headers,
                timeout=600,
                json={
                    "name": "bench",
                    "timezone": "UTC",
                    "format": "json",
                    "timespan": {"from": WINDOW_START, "to": WINDOW_END},
                },
            ).json()["job"]
            requests.get(
                f"{self.url}/data/reports/calls/jobs/{job['id']}", headers=headers, allow_redirects=False, timeout=600
            )
            return self.file_url(vendor, job["id"])
        headers = {"Authorization": f"Bearer {MYREPORTS_TOKEN}"}
        base = f"{self.url}/api/v1.0/workspaces/{WS}/reports/{REPORT}/requests"
        created = requests.post(
            base,
            headers=headers,
            timeout=600,
            json={
                "reportId": REPORT,
                "dateFilter": {"start": WINDOW_START.replace("Z", "+00:00"), "end": WINDOW_END.replace("Z", "+00:00")},
            },
        ).json()
        request_id = created["data"]["requestId"]
        requests.get(f"{base}/{request_id}", headers=headers, timeout=600)
        return self.file_url(vendor, request_id)


def tap_files(sandbox: Sandbox, vendor: str, workdir: Path, extra: dict | None = None) -> list[str]:
    """Config and catalog arguments for the tap, selecting only the vendor's row stream."""
    config = {
        "start_date": WINDOW_START,
        "end_date": WINDOW_END,
        "job_poll_interval_seconds": 0.05,
        "job_poll_max_interval_seconds": 0.2,
    }
    if vendor == "talkdesk":
        config |= {
            "talkdesk_api_url": sandbox.url,
            "talkdesk_access_token": TALKDESK_TOKEN,
            "talkdesk_report_types": ["calls"],
            "talkdesk_window_days": WINDOW_DAYS,
        }
    else:
        config |= {
            "myreports_api_url": f"{sandbox.url}/api",
            "myreports_token": MYREPORTS_TOKEN,
            "myreports_workspace_id": WS,
            "myreports_report_ids": [REPORT],
            "myreports_window_days": WINDOW_DAYS,
        }
    config |= extra or {}
    name = f"{vendor}-{abs(hash(json.dumps(config, sort_keys=True)))}"
    config_path, catalog_path = workdir / f"config-{name}.json", workdir / f"catalog-{name}.json"
    config_path.write_text(json.dumps(config))
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import catalog_selecting

    catalog_path.write_text(json.dumps(catalog_selecting(config, [VENDORS[vendor][1]])))
    return ["--config", str(config_path), "--catalog", str(catalog_path)]


def tap_argv(args: list[str]) -> list[str]:
    return [PY, "-m", "tap_callreports", *args]


def nosdk_argv(mode: str, vendor: str, url: str, *extra: str) -> list[str]:
    return [
        PY,
        str(BENCH / "nosdk.py"),
        mode,
        vendor,
        url,
        VENDORS[vendor][2],
        "--window",
        WINDOW_START,
        WINDOW_END,
        *extra,
    ]


# ---- the same bytes in, the same bytes out --------------------------------------------------------


def record_lines(data: bytes) -> list[bytes]:
    return [
        RECORD_TIME.sub(b'"time_extracted":"-"', line)
        for line in data.splitlines()
        if line.startswith(b'{"type":"RECORD"')
    ]


def check(vendor: str, workdir: Path) -> bool:
    """On a small body: tap, orjson and ijson baselines write the same RECORD bytes; the
    baselines fail on a truncated and on a corrupted body."""
    label = VENDORS[vendor][0]
    sandbox = Sandbox(10)
    try:
        before = len(sandbox.events("file_download"))
        tap = subprocess.run(tap_argv(tap_files(sandbox, vendor, workdir)), capture_output=True)
        if tap.returncode != 0:
            print(f"check {label}: the tap failed: {tap.stderr.decode()[-500:]}")
            return False
        job_id = sandbox.events("file_download")[before]["job_id"]
        url = sandbox.file_url(vendor, job_id)
        expected = record_lines(tap.stdout)
        ok = bool(expected)
        for mode in ("orjson", "ijson"):
            out = subprocess.run(nosdk_argv(mode, vendor, url), capture_output=True)
            same = out.returncode == 0 and record_lines(out.stdout) == expected
            ok &= same
            print(
                f"check {label}: {mode} baseline {'writes the same' if same else 'DIFFERS FROM the'} "
                f"{len(expected):,} RECORD lines as the tap"
            )
            if not same:
                got = record_lines(out.stdout)
                first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
                print(
                    f"  exit {out.returncode}, {len(got):,} lines; first difference at line {first + 1}:\n"
                    f"  tap:      {expected[first][:400] if first < len(expected) else b'(none)'}\n"
                    f"  baseline: {got[first][:400] if first < len(got) else out.stderr[-300:]}"
                )
        body = requests.get(url, headers={"Authorization": f"Bearer {VENDORS[vendor][2]}"}, timeout=60).content
        cut = body.index(b'":"', len(body) // 2) + 2  # drop a string's opening quote mid-body
        for name, bad in (("truncated", body[:-25]), ("corrupted", body[:cut] + body[cut + 1 :])):
            path = workdir / f"{vendor}-{name}.json"
            path.write_bytes(bad)
            for mode in ("orjson", "ijson"):
                failed = (
                    subprocess.run(
                        nosdk_argv(mode, vendor, url, "--body-file", str(path)), capture_output=True
                    ).returncode
                    != 0
                )
                ok &= failed
                print(f"check {label}: {mode} baseline {'fails' if failed else 'DOES NOT FAIL'} on a {name} body")
        return ok
    finally:
        sandbox.stop()


# ---- measured runs ------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    argv: list[str]
    rounds: int | None = None  # None: every round
    results: list[tuple[float, float, float]] = field(default_factory=list)  # seconds, cpu, rss
    failed: str = ""


@dataclass
class Body:
    label: str
    rows: int
    variants: list[Variant]


def measure(sandbox: Sandbox, variant: Variant) -> None:
    before = len(sandbox.events("file_download"))
    stderr = tempfile.TemporaryFile()
    usage = run_timed(variant.argv, stderr=stderr)
    downloads = sandbox.events("file_download")[before:]
    if usage.code != 0 or not downloads:
        stderr.seek(0)
        variant.failed = f"exit {usage.code}: {stderr.read().decode(errors='replace').strip()[-300:]}"
        return
    variant.results.append((usage.end - downloads[0]["wall"], usage.cpu, usage.rss_mb))


def bench_size(
    rows_wanted: int, rounds: int, naive_rounds: int, workdir: Path, vendors: list[str], loads: list[str]
) -> list[Body]:
    per_hour = math.ceil(rows_wanted / HOURS)
    rows = per_hour * HOURS
    sandbox = Sandbox(per_hour)
    bodies: list[tuple[Body, Sandbox]] = []
    try:
        for vendor in vendors:
            url = sandbox.new_file(vendor)
            rendered = workdir / f"rendered-{vendor}-{rows}.jsonl"
            with open(rendered, "wb") as out:
                made = run_timed(nosdk_argv("orjson", vendor, url), stdout=out)
            if made.code != 0:
                raise SystemExit(f"bench: rendering the {vendor} lines failed")
            variants = [
                Variant("baseline: orjson row batches, no SDK", nosdk_argv("orjson", vendor, url)),
                Variant("baseline: ijson C, no SDK", nosdk_argv("ijson", vendor, url)),
                Variant(
                    "same bytes, no parse (1 MB blocks)", nosdk_argv("copy", vendor, url, "--rendered", str(rendered))
                ),
                Variant(
                    "same bytes, no parse (line by line)",
                    nosdk_argv("copy-lines", vendor, url, "--rendered", str(rendered)),
                ),
                Variant("socket read only", nosdk_argv("socket", vendor, url)),
                Variant("tap-callreports", tap_argv(tap_files(sandbox, vendor, workdir))),
            ]
            if naive_rounds:
                variants.append(
                    Variant(
                        "naive singer-sdk (response.json)",
                        [PY, str(BENCH / "naive_tap.py"), vendor, url, VENDORS[vendor][2]],
                        rounds=naive_rounds,
                    )
                )
            bodies.append((Body(f"{VENDORS[vendor][0]}", rows, variants), sandbox))
        for round_no in range(rounds):
            loads.append(f"{rows:,} rows, round {round_no + 1}: {load():.2f}")
            for body, box in bodies:
                order = body.variants[round_no % len(body.variants) :] + body.variants[: round_no % len(body.variants)]
                for variant in order:
                    if variant.failed or (variant.rounds is not None and round_no >= variant.rounds):
                        continue
                    measure(box, variant)
            print(f"  {rows:,} rows: round {round_no + 1}/{rounds} done (load {load():.2f})", flush=True)
        for vendor in vendors:
            (workdir / f"rendered-{vendor}-{rows}.jsonl").unlink(missing_ok=True)
    finally:
        sandbox.stop()
    return [body for body, _ in bodies]


def startup(rounds: int) -> list[str]:
    lines = []
    for name, argv in (
        ("python -c pass", [PY, "-c", "pass"]),
        ("python -c 'import singer_sdk'", [PY, "-c", "import singer_sdk"]),
        ("tap-callreports --about", tap_argv(["--about"])),
    ):
        walls, rss = [], []
        for _ in range(rounds):
            start = time.time()
            usage = run_timed(argv)
            walls.append(usage.end - start)
            rss.append(usage.rss_mb)
        lines.append(
            f"  {name:32} median {statistics.median(walls):.3f} s, min {min(walls):.3f} s, peak RSS {max(rss):.0f} MB"
        )
    return lines


def rss_method_check() -> str:
    proc = subprocess.Popen([PY, "-c", "pass"])
    _pid, _status, usage = os.wait4(proc.pid, 0)
    own = run_timed([PY, "-c", "pass"]).rss_mb
    return (
        f"RSS method: `python -c pass` peaks at {own:.0f} MB via {'GNU time' if GNU_TIME else 'wait4'}; "
        f"via wait4 from this {usage.ru_maxrss / 1024:.0f} MB-floored parent it would read "
        f"{usage.ru_maxrss / 1024:.0f} MB"
    )


def print_table(bodies: list[Body]) -> None:
    print(
        f"\n{'body':22} {'variant':38} {'rows':>10} {'n':>2} {'med s':>7} {'rows/s med':>11} {'rows/s min':>11} "
        f"{'vs orjson':>9} {'CPU s':>6} {'peak RSS':>9}"
    )
    for body in bodies:
        strong = next((v for v in body.variants if v.name.startswith("baseline: orjson") and v.results), None)
        strong_rate = body.rows / statistics.median(r[0] for r in strong.results) if strong else float("nan")
        for v in body.variants:
            if not v.results:
                print(f"{body.label:22} {v.name:38} {body.rows:>10,}  failed: {v.failed or 'not run'}")
                continue
            secs = statistics.median(r[0] for r in v.results)
            rate, worst = body.rows / secs, body.rows / max(r[0] for r in v.results)
            print(
                f"{body.label:22} {v.name:38} {body.rows:>10,} {len(v.results):>2} {secs:>7.2f} {rate:>11,.0f} "
                f"{worst:>11,.0f} {rate / strong_rate:>8.2f}x {statistics.median(r[1] for r in v.results):>6.2f} "
                f"{max(r[2] for r in v.results):>6.0f} MB"
            )


def record_goals(bodies: list[Body]) -> None:
    """The goal figures (`bench/goals.py`) of the biggest body of each vendor: the tap's median
    rows/s over the same-output script's, in the same interleaved rounds; the tap's peak RSS."""
    import goals

    biggest: dict[str, Body] = {}
    for body in bodies:
        if body.label not in biggest or body.rows > biggest[body.label].rows:
            biggest[body.label] = body
    rss = []
    print()
    for body in biggest.values():
        tap = next((v for v in body.variants if v.name == "tap-callreports" and v.results), None)
        script = next((v for v in body.variants if v.name.startswith("baseline: orjson") and v.results), None)
        if tap is None or script is None:
            continue
        tap_s, script_s = statistics.median(r[0] for r in tap.results), statistics.median(r[0] for r in script.results)
        key = "talkdesk_vs_script" if body.label == VENDORS["talkdesk"][0] else "myreports_vs_script"
        goals.record(
            key,
            script_s / tap_s,
            f"{body.rows:,} rows, {body.rows / tap_s:,.0f} vs {body.rows / script_s:,.0f} rows/s, "
            f"{len(tap.results)} rounds",
        )
        rss.append((max(r[2] for r in tap.results), body.label))
    if rss:
        peak, label = max(rss)
        goals.record("peak_rss_mb", peak, f"{label}, {', '.join(f'{mb:.0f} MB' for mb, _ in rss)}")


def profile(workdir: Path, rows_wanted: int) -> None:
    per_hour = math.ceil(rows_wanted / HOURS)
    sandbox = Sandbox(per_hour)
    try:
        out = workdir / "profile.txt"
        subprocess.run(
            [
                PY,
                "-m",
                "pyinstrument",
                "-o",
                str(out),
                "-m",
                "tap_callreports",
                *tap_files(sandbox, "talkdesk", workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        print(
            f"\n--- pyinstrument profile of tap-callreports, Talkdesk calls JSON {per_hour * HOURS:,} rows "
            "(the wait is the sandbox building the file) ---"
        )
        print("\n".join(out.read_text().splitlines()[:70]))
    finally:
        sandbox.stop()


def describe_machine() -> None:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("singer-sdk", "orjson", "ijson"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}; {versions}"
    )
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="the big size (rounded up to whole hours)")
    parser.add_argument("--small", type=int, default=100_000, help="a second size, to show RSS is flat (0: none)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per variant (default 5; pipeline 3)")
    parser.add_argument("--naive-rounds", type=int, default=2, help="rounds of the naive SDK stream (big size only)")
    parser.add_argument("--vendors", nargs="+", choices=list(VENDORS), default=list(VENDORS))
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of the tap (Talkdesk, big size)")
    parser.add_argument("--pipeline", action="store_true", help="tap | targets end to end instead")
    parser.add_argument("--pipeline-rows", type=int, default=200_160)
    args = parser.parse_args()

    describe_machine()
    print(rss_method_check())
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if args.pipeline:
            from pipeline import run_pipelines

            run_pipelines(args.pipeline_rows, args.rounds or 3, workdir)
            return
        ok = True
        vendors = []
        for vendor in args.vendors:
            if check(vendor, workdir):
                vendors.append(vendor)
            else:
                ok = False
                print(f"bench: {VENDORS[vendor][0]} left out: the check failed")
        print("start-up (process start to exit, not inside any figure below):")
        print("\n".join(startup(5)))
        rounds = args.rounds or 5
        loads: list[str] = []
        bodies: list[Body] = []
        for size, naive in ((args.rows, args.naive_rounds), (args.small, 0)):
            if size and vendors:
                bodies += bench_size(size, rounds, naive, workdir, vendors, loads)
        print("\n1-minute load average before each round: " + "; ".join(loads))
        print_table(bodies)
        record_goals(bodies)
        if args.profile and "talkdesk" in vendors:
            profile(workdir, args.rows)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
