"""Job concurrency per vendor and the poll schedule (reportjobs.JobSlots, PollPolicy): a full
account lowers the ceiling and makes jobs wait, never fail; the order of windows and STATEs does
not depend on it. Speed is measured by bench/latency.py, not here."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import types

import pytest

from helpers import LONDON_REPORT, NEW_YORK_REPORT, UNFINISHED, on_first_refusal, sandbox_config, sync
from tap_callreports.errors import AccountFull
from tap_callreports.ratelimit import Backoff
from tap_callreports.report_types import ROW_POLICIES
from tap_callreports.reportjobs import engine as job_engine
from tap_callreports.reportjobs.engine import PollPolicy, ReportJobEngine
from tap_callreports.reportjobs.job import JobTimedOut, Window
from tap_callreports.settings import load_settings
from tap_callreports.timeutil import iso_z
from tap_callreports.vendors import job_ceilings

UTC = dt.UTC
OCT1, OCT3 = dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 10, 3, tzinfo=UTC)
WAIT_LINE = "is at its job limit"


class Account:
    """A vendor account that holds `capacity` jobs at once and refuses more (a 429)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.lock = threading.Lock()
        self.active = self.refused = self.peak = 0

    def create(self) -> str:
        with self.lock:
            if self.active >= self.capacity:
                self.refused += 1
                raise AccountFull("429 for POST /jobs")
            self.active += 1
            self.peak = max(self.peak, self.active)
            return "job"

    def finish(self) -> None:
        with self.lock:
            self.active -= 1


def engine(ceiling: int, timeout: float = 30.0) -> ReportJobEngine:
    return ReportJobEngine({"talkdesk": ceiling}, PollPolicy(0.01, 0.05, timeout), logging.getLogger("test.jobs"))


def windows(count: int) -> list[Window]:
    return [Window(OCT1 + dt.timedelta(days=n), OCT1 + dt.timedelta(days=n + 1)) for n in range(count)]


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_a_full_account_lowers_the_ceiling_and_every_job_still_runs_in_window_order(caplog):
    """Five jobs start at once; the account holds three (other clients hold the rest): two are
    refused, wait (no failure), and the ceiling drops to the three the account gave this run."""
    jobs, account, finish = engine(5), Account(capacity=3), threading.Event()

    def run_job(window: Window, stop: threading.Event) -> Window:
        jobs.create("talkdesk", account.create, f"job {window}", stop)
        finish.wait(20)
        account.finish()
        return window

    planned = windows(6)
    with caplog.at_level(logging.INFO, logger="test.jobs"):
        ordered = jobs.ordered("talkdesk", planned, run_job, start_now=True)
        wait_until(lambda: account.refused >= 2, "two creations refused")
        assert jobs.ceiling("talkdesk") == 3
        finish.set()
        done = [window for window, _result in ordered]
    assert jobs.ceiling("talkdesk") == 3  # for the rest of the run
    jobs.shutdown()
    assert done == planned
    assert account.peak == 3
    waits = [r for r in caplog.records if WAIT_LINE in r.getMessage()]
    assert len(waits) == account.refused == jobs.slots["talkdesk"].refusals
    assert all(r.levelno == logging.INFO for r in waits)
    # Each refusal that lowers the ceiling says to what (the first to 4, the next to 3); refused
    # threads log in either order, so the last line need not be the lowest.
    lowered = [
        re.search(r"at most (\d+) talkdesk job\(s\) at once for the rest of the run", r.getMessage()) for r in waits
    ]
    assert min(int(found.group(1)) for found in lowered if found) == 3


def test_a_job_refused_with_none_of_this_run_to_wait_for_asks_again_after_a_pause():
    """Another client holds every slot for a while: the job backs off and is created once a
    slot frees at the vendor, without failing."""
    jobs, account = engine(4), Account(capacity=0)

    def run_job(window: Window, stop: threading.Event) -> Window:
        jobs.create("talkdesk", account.create, f"job {window}", stop)
        account.finish()
        return window

    ordered = jobs.ordered("talkdesk", windows(2), run_job, start_now=True)
    wait_until(lambda: account.refused >= 3, "creations refused while the account is full")
    with account.lock:
        account.capacity = 15  # the other client is done
    assert [window for window, _result in ordered] == windows(2)
    assert jobs.ceiling("talkdesk") == 1  # lowered for the rest of the run
    jobs.shutdown()


def test_a_freed_slot_starts_the_next_job_while_earlier_results_are_still_unread():
    """The account stays full: with 2 slots, every job of two streams runs while the first window
    of the stream being read is still being read (its consumer has not asked for the next)."""
    jobs = engine(2)
    started: list[tuple[str, Window]] = []
    lock = threading.Lock()

    def job_of(stream: str):
        def run_job(window: Window, stop: threading.Event) -> Window:
            with lock:
                started.append((stream, window))
            return window

        return run_job

    first = jobs.ordered("talkdesk", windows(6), job_of("a"), start_now=True)
    second = jobs.ordered("talkdesk", windows(4), job_of("b"), start_now=True)
    reading = iter(first)
    window, _result = next(reading)  # window 1 of stream a is being read...
    assert window == windows(6)[0]
    wait_until(lambda: len(started) == 10, "every job started while window 1 is read")  # ...all 10 ran
    # Each stream's jobs ran once each; two workers may note two jobs taken together in either
    # order, so the order they are taken in is pinned by the ranking test below, not here.
    assert sorted(w for name, w in started if name == "a") == windows(6)
    assert [w for w, _r in reading] == windows(6)[1:]
    assert [w for w, _r in second] == windows(4)
    jobs.shutdown()


def test_a_freed_slot_goes_to_the_stream_being_read_first():
    """Streams planned in one order and read in another (a stream that syncs before a prefetched
    one): the waiting jobs of the stream being read take the freed slots first."""
    jobs = engine(1)
    started: list[str] = []
    gate = threading.Event()

    def job_of(stream: str):
        def run_job(window: Window, stop: threading.Event) -> Window:
            started.append(stream)
            gate.wait(20)
            return window

        return run_job

    later = jobs.ordered("talkdesk", windows(2), job_of("later"), start_now=True)  # holds the one slot
    now = jobs.ordered("talkdesk", windows(2), job_of("now"))
    wait_until(lambda: started == ["later"], "the first job running")
    reading = threading.Thread(target=lambda: list(now))
    reading.start()  # `now` is read: its waiting jobs go before `later`'s second
    wait_until(lambda: now.reading, "the stream being read")
    gate.set()
    reading.join(20)
    assert started[:3] == ["later", "now", "now"]
    assert [w for w, _r in later] == windows(2)
    jobs.shutdown()


def test_the_outlook_says_how_many_jobs_are_done_and_how_long_the_rest_take():
    jobs = engine(2)
    finish = threading.Event()

    def run_job(window: Window, stop: threading.Event) -> Window:
        if window != windows(5)[0]:
            finish.wait(20)
        return window

    ordered = jobs.ordered("talkdesk", windows(5), run_job, start_now=True)
    assert jobs.outlook().startswith("report jobs of the run: talkdesk ")
    wait_until(lambda: jobs.slots["talkdesk"].finished == 1, "the first job done")
    text = jobs.outlook()
    assert "talkdesk 1/5 done, 2 running" in text and "the last about" in text, text
    finish.set()
    assert [w for w, _r in ordered] == windows(5)
    wait_until(lambda: jobs.outlook().endswith("none left"), "every job done")
    assert "talkdesk 5/5 done" in jobs.outlook()
    jobs.shutdown()


def test_vendors_have_separate_ceilings():
    """Talkdesk jobs and MyReports requests do not share a limit; max_concurrent_jobs bounds both."""
    base = {
        "start_date": "2026-10-01T00:00:00Z",
        "talkdesk_access_token": "t",
        "myreports_token": "m",
        "myreports_workspace_id": "w",
        "myreports_report_ids": ["r"],
    }
    assert job_ceilings(load_settings(base)) == {"talkdesk": 15, "myreports": 10}
    assert job_ceilings(load_settings(base | {"max_concurrent_jobs": 3})) == {"talkdesk": 3, "myreports": 3}


def test_the_poll_pause_stays_a_tenth_of_the_jobs_age():
    policy = PollPolicy(5, 60, 3600)
    assert [policy.pause(age) for age in (0, 20, 49)] == [5, 5, 5]  # the first interval while the job is young
    assert policy.pause(100) == pytest.approx(10)  # then a tenth of its age: seen at most ~10 % late
    assert policy.pause(5000) == 60  # never longer than the cap


class RecordingStop(threading.Event):
    """A stop event that records each pause asked of it, without waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0.0)
        return False


class ClockedStop(RecordingStop):
    """A RecordingStop whose pauses move a fake monotonic clock (what the engine's deadline reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timeout or 0.0
        return super().wait(timeout)


def test_a_retry_after_on_a_poll_sets_the_next_pause(monkeypatch):
    jobs = ReportJobEngine({"talkdesk": 1}, PollPolicy(2, 60, 3600), logging.getLogger("test.jobs"))
    answers = iter([(7.0, None), (None, None), (None, "done")])  # (Retry-After, status) of each poll
    stop = ClockedStop()
    monkeypatch.setattr(job_engine, "time", types.SimpleNamespace(monotonic=lambda: stop.now))

    def poll_once() -> str | Backoff | None:
        retry_after, status = next(answers)
        # what a vendor's poll returns for a job still running, with its answer's Retry-After
        return status or (Backoff(retry_after) if retry_after is not None else None)

    assert jobs.wait_for(poll_once, "job", stop) == "done"
    assert stop.pauses == [2, 7.0, 2]  # the schedule, then the vendor's Retry-After, then the schedule


def test_slow_poll_answers_do_not_push_the_schedule_back(monkeypatch):
    """Each poll answer takes 1 s: the polls still come 5, 10, 15, 20 s after the job was created
    (a 20 s job is seen at 20 s, not at 23 s), and no more of them than the schedule asks."""
    jobs = ReportJobEngine({"talkdesk": 1}, PollPolicy(5, 60, 3600), logging.getLogger("test.jobs"))
    stop = ClockedStop()
    created = stop.now
    monkeypatch.setattr(job_engine, "time", types.SimpleNamespace(monotonic=lambda: stop.now))
    polled_at: list[float] = []

    def poll_once() -> str | None:
        polled_at.append(stop.now - created)
        stop.now += 1.0  # the answer takes a second
        return "done" if stop.now - created >= 20 else None

    assert jobs.wait_for(poll_once, "job", stop, since=created) == "done"
    assert polled_at == [5, 10, 15, 20]


def test_a_retry_after_past_the_job_timeout_ends_in_a_timeout_not_a_hang(monkeypatch):
    jobs = ReportJobEngine({"talkdesk": 1}, PollPolicy(2, 60, 30), logging.getLogger("test.jobs"))
    stop = ClockedStop()
    monkeypatch.setattr(job_engine, "time", types.SimpleNamespace(monotonic=lambda: stop.now))

    def poll_once() -> Backoff:
        return Backoff(86400.0)  # "come back tomorrow", on every answer

    with pytest.raises(JobTimedOut):
        jobs.wait_for(poll_once, "job", stop)
    assert stop.pauses[0] == 2
    assert all(pause <= 30 for pause in stop.pauses)  # never past the 30 s job timeout


def keys(row: dict, key: tuple[str, ...]) -> tuple:
    return tuple(row[field] for field in key)


def run_all_report_streams(sandbox) -> tuple:
    types = sorted(ROW_POLICIES)
    config = sandbox_config(
        sandbox,
        vendors=("talkdesk", "myreports"),
        end_date=iso_z(OCT3),
        talkdesk_report_types=types,
        myreports_report_ids=[LONDON_REPORT, NEW_YORK_REPORT],
    )
    streams = [f"talkdesk_{t}" for t in types] + ["myreports_call_rows"]
    return sync(config, streams=streams), types


def bookmarks(run) -> dict[str, list]:
    """Per stream (and report), the bookmarks its STATEs carried, in order, repeats dropped."""
    seen: dict[str, list] = {}
    for state in run.states:
        for stream, entry in state.get("bookmarks", {}).items():
            for scope in [entry, *entry.get("partitions", [])]:
                value = scope.get("replication_key_value")
                name = f"{stream} {scope.get('context', '')}"
                if value and (not seen.get(name) or seen[name][-1] != value):
                    seen.setdefault(name, []).append(value)
    return seen


def window_order(run) -> list[tuple[str, str]]:
    """Streams and windows in the order their records went out, repeats dropped."""
    order: list[tuple[str, str]] = []
    for message in run.messages:
        if message["type"] == "RECORD":
            record = message["record"]
            step = (message["stream"], record.get("report_window_end") or record.get("report_id"))
            if not order or order[-1] != step:
                order.append(step)
    return order


def test_another_client_holding_slots_makes_the_run_wait_not_fail(make_sandbox, caplog):
    """The account allows 15 jobs; another client holds 10 of them for the first part of the
    run (until the run's first refused job; its own 5 jobs run until then). With default settings
    the run waits for slots, logs each 429 once as a wait, and emits every row once, with windows
    and STATEs in the same order as on a free account."""
    free = make_sandbox(job_polls=1)
    expected, _types = run_all_report_streams(free)
    assert expected.error is None, expected.error
    assert not free.app.events("job_rejected")

    shared = make_sandbox(
        job_polls=1,
        job_seconds=UNFINISHED,
        talkdesk_max_active_jobs=15,
        talkdesk_held_jobs=10,
        talkdesk_held_seconds=UNFINISHED,
    )
    on_first_refusal(shared, job_seconds=0.0, talkdesk_held_seconds=0.0)
    with caplog.at_level(logging.INFO):
        run, types = run_all_report_streams(shared)
    assert run.error is None, run.error
    refused = shared.app.events("job_rejected")
    assert refused  # the account was full for a while...
    waits = [r for r in caplog.records if WAIT_LINE in r.getMessage()]
    assert len(waits) == len(refused) and all(r.levelno == logging.INFO for r in waits)  # ...each 429 one wait line
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "429" in r.getMessage()]
    assert any("for the rest of the run" in r.getMessage() for r in waits)  # the ceiling was lowered
    for report_type in types:  # every row once
        stream, key = f"talkdesk_{report_type}", ROW_POLICIES[report_type].key
        rows = [keys(row, key) for row in run.records(stream)]
        assert len(rows) == len(set(rows)) == len(expected.records(stream)) > 0, stream
        assert set(rows) == {keys(row, key) for row in expected.records(stream)}, stream
    mr_rows = [row["doc_id"] for row in run.records("myreports_call_rows")]
    assert sorted(mr_rows) == sorted(row["doc_id"] for row in expected.records("myreports_call_rows"))
    assert len(mr_rows) == len(set(mr_rows)) > 0
    assert window_order(run) == window_order(expected)
    assert bookmarks(run) == bookmarks(expected)
    assert run.final_state["bookmarks"] == expected.final_state["bookmarks"]


def test_myreports_requests_wait_at_their_own_limit(make_sandbox, caplog):
    """MyReports states no limit; a server that answers 429 at request creation gets the same
    treatment as Talkdesk's account limit, on its own ceiling: every row once, no error."""
    config = {
        "vendors": ("myreports",),
        "end_date": iso_z(OCT3),
        "myreports_report_ids": [LONDON_REPORT, NEW_YORK_REPORT],
    }
    free = make_sandbox(job_polls=1)
    expected = sync(sandbox_config(free, **config), streams=["myreports_call_rows"])
    assert expected.error is None, expected.error
    # the first request stays unfinished until a second one is refused
    limited = make_sandbox(job_polls=1, job_seconds=UNFINISHED, myreports_max_active_requests=1)
    on_first_refusal(limited, job_seconds=0.0)
    with caplog.at_level(logging.INFO):
        run = sync(sandbox_config(limited, **config), streams=["myreports_call_rows"])
    assert run.error is None, run.error
    refused = limited.app.events("job_rejected")
    waits = [r.getMessage() for r in caplog.records if WAIT_LINE in r.getMessage()]
    assert refused and len(waits) == len(refused)
    assert all("the myreports account" in line for line in waits)
    assert "at most 1 myreports job(s) at once for the rest of the run" in " ".join(waits)
    rows = [row["doc_id"] for row in run.records("myreports_call_rows")]
    assert len(rows) == len(set(rows)) and sorted(rows) == sorted(
        r["doc_id"] for r in expected.records("myreports_call_rows")
    )
    assert window_order(run) == window_order(expected) and bookmarks(run) == bookmarks(expected)


def test_the_vendor_whose_jobs_end_first_is_read_first(make_sandbox, caplog):
    """8 Talkdesk jobs in 15 slots (0.53 rounds) and 2 MyReports requests in 10 (0.2 rounds):
    MyReports' rows are read first, while Talkdesk's jobs still run; the run says so once. The
    job-record streams stay last."""
    sandbox = make_sandbox(job_polls=1, job_seconds=0.2)
    with caplog.at_level(logging.INFO):
        run, types = run_all_report_streams(sandbox)
    assert run.error is None, run.error
    streams = list(dict.fromkeys(m["stream"] for m in run.messages if m["type"] == "RECORD"))
    assert streams[0] == "myreports_call_rows", streams
    assert streams[1:] == [f"talkdesk_{t}" for t in types if run.records(f"talkdesk_{t}")], streams
    orders = [r.getMessage() for r in caplog.records if "read in the order their jobs end" in r.getMessage()]
    assert len(orders) == 1 and orders[0].endswith(
        ", ".join(["myreports_call_rows", *(f"talkdesk_{t}" for t in types)])
    ), orders


def test_a_job_status_is_a_terminal_phase_with_the_vendors_word():
    from tap_callreports.reportjobs.job import JobPhase, JobStatus

    assert [phase.terminal for phase in JobPhase] == [False, True, True]
    done, ended = JobStatus.done_at("https://x/files/1"), JobStatus.ended_as("canceled")
    assert (done.phase, done.done, done.ended) == (JobPhase.DONE, True, False)
    assert (ended.phase, ended.done, ended.ended, ended.word) == (JobPhase.ENDED, False, True, "canceled")
    with pytest.raises(ValueError, match="terminal"):
        JobStatus(JobPhase.RUNNING)  # a job still running is no status: the poll returns None or a Backoff


def test_each_vendor_has_its_own_status_table_with_its_documented_words():
    from tap_callreports.myreports import requests as myreports
    from tap_callreports.reportjobs.job import COMMON_STATUS_WORDS, JobPhase
    from tap_callreports.talkdesk import jobs as talkdesk

    assert talkdesk.STATUS_WORDS is not COMMON_STATUS_WORDS
    assert myreports.STATUS_WORDS is not COMMON_STATUS_WORDS
    assert talkdesk.STATUS_WORDS is not myreports.STATUS_WORDS
    documented = [
        (talkdesk.STATUS_WORDS, {"uploading": JobPhase.RUNNING, "done": JobPhase.DONE, "deleted": JobPhase.ENDED}),
        (myreports.STATUS_WORDS, {"pending": JobPhase.RUNNING, "complete": JobPhase.DONE, "cancelled": JobPhase.ENDED}),
    ]
    for table, words in documented:
        assert {word: table[word] for word in words} == words
