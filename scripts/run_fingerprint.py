"""A fingerprint of what the tap sends, to show a refactor changed no behaviour.

    python scripts/run_fingerprint.py --out DIR [--repo CHECKOUT]
    python scripts/run_fingerprint.py --compare DIR_A DIR_B

`--out` runs the tap's CLI (`python -m tap_callreports`, as a user would) against the sandbox
(seed 1, fixed data clocks) with every vendor and every default stream, in four cases, and writes
one normalised text file per case:

- full.txt: a full run;
- resume.txt: the run resumed from full's last STATE, on the same sandbox;
- fail.txt: a run whose zendesk_job_statuses stops partway (the sandbox shape
  zendesk-cursor-expired-always: the list's cursors expire from its third page on, the tap
  exits 1 after every stream before it has synced and with report jobs still in flight);
- fail-resume.txt: the run resumed from fail's last STATE, on the same sandbox with the shape off.

Normalised: a report job's (request's) id is named by its vendor, report, window and attempt (from
the sandbox's job_created events); the sandbox's host:port is `<sandbox>`; a time from the clock
(today's date: time_extracted, finished_at, created_at of a job...) is `<clock>`; log lines lose
their timestamps and only WARNING and above are kept, sorted. Streams are synced one at a time, in
an order the tap decides, so each stream gets its own section with its messages in the tap's order;
a stream's STATE lines are its bookmark when it changed, without what a STATE written mid-stream
shows or not by when it is written (TRANSIENT: report jobs in flight, the SDK's progress markers);
the final state has everything, its lists of report jobs in flight sorted (threads create them in
any order).

`--compare` prints the first differing lines of each case and exits 1 when any case differs.
`--repo` runs the tap and the sandbox of another checkout (e.g. a baseline's `git worktree`) with
this script and this interpreter; that checkout's dependencies must be the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("full", "resume", "fail", "fail-resume")
FAULT = "zendesk-cursor-expired-always"
LONDON_REPORT = "00000000-0000-0000-0000-000000000001"
NEW_YORK_REPORT = "00000000-0000-0000-0000-000000000002"
WORKSPACE = "00000000-0000-0000-0000-000000000001"
#: The sandbox: fixed data clocks (lists end at the anchor, Talk's "now" is fixed) and a file
#: delivery that does not depend on a job's random id ("alternate" does).
SANDBOX: dict[str, t.Any] = {
    "seed": 1,
    "list_anchor": "2026-10-04T00:00:00Z",
    "zendesk_talk_now": "2026-10-03T12:00:00Z",
    "zendesk_talk_days": 3,
    "zendesk_talk_calls_per_hour": 10,
    "zendesk_talk_rate_window_seconds": 1.0,
    "job_polls": 2,
}
#: A date-time (ISO 8601, or a log line's "2026-12-07 13:36:35,508").
MOMENT = re.compile(r"\b(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d+ \| (\w+)\s*\| (.*)$")


def tap_config(url: str) -> dict[str, t.Any]:
    """Every vendor at the sandbox; report types, streams and most settings left at their defaults."""
    return {
        "start_date": "2026-10-01T00:00:00Z",
        "end_date": "2026-10-04T00:00:00Z",
        "job_poll_interval_seconds": 0.01,
        "job_poll_max_interval_seconds": 0.05,
        "retry_backoff_base_seconds": 0.01,
        "talkdesk_api_url": url,
        "talkdesk_token_url": f"{url}/oauth/token",
        "talkdesk_client_id": "sandbox-client-id",
        "talkdesk_client_secret": "sandbox-client-secret",
        "talkdesk_window_days": 1,
        "zendesk_api_url": url,
        "zendesk_email": "agent@example.com",
        "zendesk_api_token": "sandbox-zendesk-token",
        "zendesk_talk_rate_limit": 10,
        "zendesk_talk_rate_window_seconds": 1,
        "myreports_api_url": f"{url}/api",
        "myreports_token": "sandbox-myreports-token",
        "myreports_workspace_id": WORKSPACE,
        "myreports_report_ids": [LONDON_REPORT, NEW_YORK_REPORT],
        "myreports_window_days": 1,
    }


class Run(t.NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def last_state(self) -> dict:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else {}


def run_tap(repo: Path, work: Path, config: dict, state: dict | None) -> Run:
    argv = [sys.executable, "-m", "tap_callreports", "--config", str(work / "config.json")]
    (work / "config.json").write_text(json.dumps(config))
    if state is not None:
        (work / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(work / "state.json")]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=work, env=env, timeout=900, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


class Masker:
    """Replaces what differs from run to run by what it stands for."""

    def __init__(self, sandbox: t.Any) -> None:
        host, port = sandbox.url.removeprefix("http://").rsplit(":", 1)
        self.host = re.compile(rf"https?://(?:{re.escape(host)}|localhost|127\.0\.0\.1):{port}\b")
        self.ids: dict[str, str] = {}
        for event in sandbox.app.events("job_created"):
            what = event.get("report_type") or event.get("report_id")
            self.ids[event["job_id"]] = (
                f"<{event['vendor']} job {what} {event['start']}..{event['end']} attempt {event['attempt']}>"
            )
        self.id_pattern = re.compile("|".join(map(re.escape, self.ids)) or r"(?!)")
        self.clock_from = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)

    def text(self, text: str) -> str:
        text = self.host.sub("<sandbox>", text)
        text = self.id_pattern.sub(lambda m: self.ids[m.group(0)], text)
        return MOMENT.sub(self._moment, text)

    def _moment(self, match: re.Match) -> str:
        return "<clock>" if dt.date.fromisoformat(match.group(1)) >= self.clock_from else match.group(0)


#: What a STATE written mid-stream may or may not show, by when it is written: the report jobs in
#: flight (worker threads create them; the main thread writes them in the next STATE, at whichever
#: row of whichever stream it is then at) and the SDK's markers of a stream in progress (such a
#: write shows them; the stream's own STATEs would not). The final state shows them all.
TRANSIENT = frozenset({"report_jobs", "progress_markers", "starting_replication_value", "replication_key_signpost"})


def progress(value: t.Any) -> t.Any:
    """A bookmark without what is TRANSIENT."""
    if isinstance(value, dict):
        return {k: progress(v) for k, v in value.items() if k not in TRANSIENT}
    if isinstance(value, list):
        return [progress(v) for v in value]
    return value


def jobs_by_window(value: t.Any) -> t.Any:
    """The lists of report jobs in flight sorted (threads create them in any order)."""
    if isinstance(value, dict):
        return {
            k: sorted(v, key=lambda job: json.dumps(job, sort_keys=True)) if k == "report_jobs" else jobs_by_window(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [jobs_by_window(v) for v in value]
    return value


def fingerprint(case: str, run: Run, mask: Masker) -> str:
    sections: dict[str, list[str]] = {}
    bookmarks: dict[str, str] = {}
    synced: dict[str, None] = {}  # the streams in the order of their first message
    for message in run.messages:
        if message["type"] == "STATE":
            for stream, bookmark in message["value"].get("bookmarks", {}).items():
                seen = mask.text(json.dumps(progress(bookmark), sort_keys=True))
                if bookmarks.get(stream, "{}") != seen:
                    bookmarks[stream] = seen
                    sections.setdefault(stream, []).append(f"STATE {seen}")
            continue
        stream = message.get("stream", "")
        synced.setdefault(stream, None)
        body = {k: v for k, v in message.items() if k not in ("type", "stream")}
        sections.setdefault(stream, []).append(f"{message['type']} {mask.text(json.dumps(body))}")
    logs = []
    for line in run.stderr.splitlines():
        logged = LOG_LINE.match(line)
        if logged is None:
            logs.append(mask.text(line))
        elif logged.group(1) not in ("DEBUG", "INFO"):
            logs.append(mask.text(f"{logged.group(1)} | {logged.group(2)}"))
    final = json.dumps(jobs_by_window(json.loads(mask.text(json.dumps(run.last_state)))), indent=1, sort_keys=True)
    lines = [f"# case {case}: exit code {run.returncode}", f"# streams in the order synced: {', '.join(synced)}"]
    for stream, section in sections.items():
        lines += [f"## stream {stream}", *section]
    lines += ["## final state", final, "## stderr (WARNING and above, sorted)", *sorted(logs)]
    return "\n".join(lines) + "\n"


def make_fingerprints(out: Path, repo: Path) -> None:
    sys.path.insert(0, str(repo))
    import tap_callreports
    from tap_callreports.sandbox import SandboxConfig, start_sandbox

    if not Path(tap_callreports.__file__).resolve().is_relative_to(repo):
        sys.exit(f"run_fingerprint: tap_callreports comes from {tap_callreports.__file__}, not from {repo}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fingerprint-") as tmp:
        work = Path(tmp)
        runs: dict[str, tuple[Run, t.Any]] = {}
        with start_sandbox(SandboxConfig(**SANDBOX, talkdesk_file_redirect="always")) as box:
            config = tap_config(box.url)
            runs["full"] = (run_tap(repo, work, config, None), box)
            runs["resume"] = (run_tap(repo, work, config, runs["full"][0].last_state), box)
            masks = {case: Masker(box) for case in ("full", "resume")}
        with start_sandbox(SandboxConfig(**SANDBOX, talkdesk_file_redirect="never", shapes=(FAULT,))) as box:
            config = tap_config(box.url)
            runs["fail"] = (run_tap(repo, work, config, None), box)
            box.app.config.shapes = ()  # the fault is over
            runs["fail-resume"] = (run_tap(repo, work, config, runs["fail"][0].last_state), box)
            masks |= {case: Masker(box) for case in ("fail", "fail-resume")}
    for case in CASES:
        run = runs[case][0]
        (out / f"{case}.txt").write_text(fingerprint(case, run, masks[case]))
        print(f"{case}: exit code {run.returncode}, {len(run.messages)} messages -> {out / f'{case}.txt'}")


def clip(line: str, at: int, width: int = 110) -> str:
    """The line around column `at` (where it first differs), with ... where cut."""
    begin = max(0, at - width // 2)
    return ("..." if begin else "") + line[begin : begin + width] + ("..." if begin + width < len(line) else "")


def first_differences(left: list[str], right: list[str], most: int = 8) -> list[str]:
    """The first `most` differing lines of two fingerprints, as `-`/`+` pairs cut around the difference."""
    shown: list[str] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        shown.append(f"@@ line {i1 + 1} of A ({i2 - i1} lines) / line {j1 + 1} of B ({j2 - j1} lines): {op}")
        for a, b in zip(left[i1:i2], right[j1:j2]):
            at = next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            shown += [f"- {clip(a, at)}", f"+ {clip(b, at)}"]
            if len(shown) >= most * 3:
                return shown
        shown += [f"- {clip(a, 0)}" for a in left[i1 + (j2 - j1) : i2][:most]]
        shown += [f"+ {clip(b, 0)}" for b in right[j1 + (i2 - i1) : j2][:most]]
        if len(shown) >= most * 3:
            break
    return shown


def compare(a: Path, b: Path) -> bool:
    """Print the first differing lines of each case; True when every case is the same."""
    same = True
    for case in CASES:
        left, right = a / f"{case}.txt", b / f"{case}.txt"
        missing = [str(path) for path in (left, right) if not path.exists()]
        if missing:
            print(f"{case}: missing {', '.join(missing)}")
            same = False
            continue
        differences = first_differences(left.read_text().splitlines(), right.read_text().splitlines())
        print(f"{case}: {'DIFFERS (A: ' + str(left) + ', B: ' + str(right) + ')' if differences else 'same'}")
        if differences:
            print("\n".join(differences))
        same = same and not differences
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", type=Path, help="write the fingerprints of the four cases here")
    action.add_argument("--compare", type=Path, nargs=2, metavar=("DIR_A", "DIR_B"))
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose tap runs (default: this one)")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    make_fingerprints(args.out, args.repo.resolve())


if __name__ == "__main__":
    main()
