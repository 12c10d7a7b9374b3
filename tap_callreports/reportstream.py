"""The base of every stream whose rows come from asynchronous report jobs.

Per stream (or partition) it plans windows from the bookmark, runs their jobs through the
shared engine, streams each result's rows in window order, and moves the bookmark to a window's
end only once every row of that window has been emitted. A connection cut mid-body downloads
the same result again and skips the rows already emitted; a window the vendor cut short
(`SplitWindow`) is replaced by its halves before anything of it is emitted.
"""

from __future__ import annotations

import abc
import datetime as dt
import threading
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property

import requests
from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_callreports.client import CallReportsStream
from tap_callreports.errors import CallReportsError, MalformedBodyError, ReportJobFailed, StreamError
from tap_callreports.reportjobs import JobTimedOut, OrderedJobs, Window, plan_windows
from tap_callreports.schemas import load_schema
from tap_callreports.streaming import BodyInterrupted, BodyMalformed
from tap_callreports.timeutil import iso_z, parse_instant, utc_now
from tap_callreports.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.tap import TapCallReports


class SplitWindow(Exception):
    """Run these windows instead of the one being read (nothing of it was emitted)."""

    def __init__(self, windows: t.Sequence[Window], reason: str) -> None:
        super().__init__(reason)
        self.windows = list(windows)
        self.reason = reason


@dataclass
class JobResult:
    """What a finished job hands to the reader: vendor ids and where the rows are."""

    job_id: str
    window: Window
    attempt: int
    location: str
    details: dict[str, t.Any] = field(default_factory=dict)


class JobLog:
    """Records for the job-record streams (talkdesk_report_jobs, myreports_requests), filled by
    the row streams as their jobs run; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[dict]] = {}

    def add(self, stream: str, record: dict) -> None:
        with self._lock:
            self._records.setdefault(stream, []).append(record)

    def records(self, stream: str) -> list[dict]:
        with self._lock:
            return list(self._records.get(stream, []))


class JobLogStream(Stream):
    """One record per report job or request this run made (talkdesk_report_jobs,
    myreports_requests). Synced after the row streams whose jobs it reports: empty when none of
    them is selected."""

    replication_key = None

    def __init__(self, tap: TapCallReports, name: str, key: str) -> None:
        self.job_log = tap.job_log
        super().__init__(tap, name=name, schema=load_schema(name))
        self.primary_keys = [key]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self.job_log.records(self.name)


def _context_key(context: Context | None) -> str:
    return repr(sorted((context or {}).items()))


class ReportJobStream(CallReportsStream, abc.ABC):
    """Rows from report jobs, one window at a time, in window order."""

    is_sorted = False  # rows inside a window come in any order; the bookmark moves per window
    extracted_at: dt.datetime | None = None
    # The readers already give schema types (ijson: int/float/str/bool/None; CSV: converted per
    # the schema), and the schemas keep unknown fields: the SDK's per-value pass would change nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: The job-record stream this stream's jobs are reported in.
    job_stream_name: t.ClassVar[str]

    # ---- vendor hooks ------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def window_days(self) -> int: ...

    @property
    @abc.abstractmethod
    def data_lag(self) -> dt.timedelta: ...

    @abc.abstractmethod
    def start_and_wait(self, context: Context | None, window: Window, attempt: int,
                       stop: threading.Event) -> tuple[JobResult, str | None]:
        """Create one job and poll it until it ends (worker thread): the result, and None when its
        rows can be downloaded, or the vendor's word for how it ended (failed, canceled...)."""

    @abc.abstractmethod
    def describe_job(self, result: JobResult) -> str:
        """'report job <id> for calls <window>' — for logs and errors."""

    @abc.abstractmethod
    def read_result(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        """Download the result and yield its rows, skipping the first `skip` (main thread)."""

    @abc.abstractmethod
    def job_record(self, result: JobResult, rows: int, outcome: str) -> dict: ...

    # ---- windows -----------------------------------------------------------------------------

    def data_end(self) -> dt.datetime:
        """No window ends after now minus the vendor's lag, nor after end_date."""
        end = utc_now() - self.data_lag
        if self.settings.end_date is not None:
            end = min(end, self.settings.end_date)
        return end.replace(microsecond=0)

    def plan(self, context: Context | None) -> list[Window]:
        """Windows from the bookmark (or start_date, whichever is later) to `data_end`."""
        start = self.settings.start_date
        state = self.get_context_state(context)
        if state.get("replication_key") == self.replication_key and state.get("replication_key_value"):
            start = max(start, parse_instant(state["replication_key_value"]) or start)
        return plan_windows(start, self.data_end(), self.window_days)

    def prefetch(self) -> None:
        """Start this stream's first jobs now, before its turn to sync (called by the tap for every
        selected report stream when the sync begins): N streams' jobs then take about as long
        as the slowest, not the sum."""
        for context in self.partitions or [None]:
            windows = self.plan(context)
            if windows:
                self._prefetched[_context_key(context)] = self.tap.engine.ordered(
                    windows, self._job_runner(context), start_now=True)

    def _job_runner(self, context: Context | None) -> t.Callable[[Window, threading.Event], JobResult]:
        return lambda window, stop: self._run_job_in_worker(context, window, stop)

    def describe_context(self, context: Context | None) -> str:
        return ""

    # ---- the loop ----------------------------------------------------------------------------

    @cached_property
    def _prefetched(self) -> dict[str, OrderedJobs[JobResult]]:
        return {}

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        where = self.describe_context(context)
        jobs = self._prefetched.pop(_context_key(context), None)
        if jobs is None:
            windows = self.plan(context)
            if not windows:
                self.logger.info("%s%s: nothing to extract (bookmark at or after %s)", self.name, where,
                                 iso_z(self.data_end()))
                return
            jobs = self.tap.engine.ordered(windows, self._job_runner(context))
        planned = jobs.windows
        self.logger.info("%s%s: %d window(s) planned, %s .. %s, up to %d jobs at once", self.name, where,
                         len(planned), iso_z(planned[0].start), iso_z(planned[-1].end), self.tap.engine.max_concurrent)
        done = total_rows = 0
        for window, result in jobs:
            try:
                rows = yield from self._read_window(context, result)
            except SplitWindow as split:
                self.logger.info("%s%s: window %s split in %d (%s)", self.name, where, window, len(split.windows),
                                 split.reason)
                self.tap.job_log.add(self.job_stream_name, self.job_record(result, 0, "split"))
                jobs.push_front(split.windows)
                continue
            done += 1
            total_rows += rows
            self.tap.job_log.add(self.job_stream_name, self.job_record(result, rows, "emitted"))
            self.commit_window(context, window)
            self.logger.info("%s%s: window %s done: %d rows (%d windows, %d rows so far)", self.name, where,
                             window, rows, done, total_rows)

    def _run_job_in_worker(self, context: Context | None, window: Window, stop: threading.Event) -> JobResult:
        try:
            return self.run_job(context, window, stop)
        except JobTimedOut as exc:
            raise CallReportsError(str(exc)) from None  # its text starts with the stream's name

    def run_job(self, context: Context | None, window: Window, stop: threading.Event) -> JobResult:
        """A job that ended failed/canceled/deleted is created again, up to job_max_attempts."""
        attempts = self.settings.jobs.max_attempts
        for attempt in range(1, attempts + 1):
            result, ended = self.start_and_wait(context, window, attempt, stop)
            if ended is None:
                return result
            self.tap.job_log.add(self.job_stream_name, self.job_record(result, 0, ended))
            if attempt < attempts:
                self.logger.warning("%s: %s ended '%s'; creating it again (attempt %d of %d)", self.name,
                                    self.describe_job(result), ended, attempt + 1, attempts)
                continue
            raise ReportJobFailed(
                self.name, f"{self.describe_job(result)} ended '{ended}' ({attempts} attempts); the bookmark stays "
                f"at {iso_z(window.start)}, the end of the last complete window; run again later, or check the "
                "report at the vendor")
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_window(self, context: Context | None, result: JobResult) -> t.Generator[dict, None, int]:
        """Yield every row of one result exactly once, downloading again after a broken connection."""
        emitted = 0
        breaks = 0
        # time_extracted: the rows of one result are extracted by one download.
        self.extracted_at = utc_now()
        while True:
            try:
                for row in self.read_result(context, result, skip=emitted):
                    emitted += 1
                    yield row
                return emitted
            except BodyInterrupted as exc:
                breaks += 1
                if breaks > self.settings.max_retries:
                    raise StreamError(self.name, f"the download of job {result.job_id} ({result.window}) broke "
                                      f"{breaks} times, last after {exc.rows_read} rows; no bookmark moved past "
                                      f"{result.window.start:%Y-%m-%dT%H:%M:%SZ}; run again later") from None
                wait = self.retry_policy.wait_seconds(None, breaks)
                self.logger.warning("%s: download of job %s broke after %d rows; downloading again in %.1fs, "
                                    "skipping the %d rows already emitted", self.name, result.job_id,
                                    exc.rows_read, wait, emitted)
                time.sleep(wait)
            except BodyMalformed as exc:
                raise MalformedBodyError(
                    self.name, f"the result of job {result.job_id} ({result.window}) at {result.location} is "
                    f"malformed: {exc}; rows before it were emitted but the bookmark stays at the window start; "
                    "run again, and report it to the vendor if it persists") from None

    # ---- the record path ------------------------------------------------------------------------

    @cached_property
    def lean_records(self) -> bool:
        """Whether a RECORD can go straight to the writer: exactly what the SDK's own path
        (pop deselected fields, conform, map, RecordMessage) would write, because nothing is
        deselected, conformance is NONE and the only stream map is the identity."""
        maps = self.stream_maps
        return (
            isinstance(self.tap.message_writer, FastSingerWriter)
            and self.TYPE_CONFORMANCE_LEVEL is TypeConformanceLevel.NONE
            and len(maps) == 1 and type(maps[0]) is SameRecordTransform and maps[0].stream_alias == self.name
            and all(self.mask.values())
            and self.replication_method != "FULL_TABLE"  # no ACTIVATE_VERSION versions to stamp
        )

    def _write_record_message(self, record: dict) -> None:
        if self.lean_records:
            self.tap.message_writer.write_record(self.name, record, self.extracted_at)
            self.state_manager.is_flushed = False
        else:
            super()._write_record_message(record)

    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        return ()  # report streams have no child streams

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """No per-record bookmark: `commit_window` moves it once a whole window is out (the SDK's
        per-record progress markers would only say, wrongly, that progress is not resumable)."""

    def commit_window(self, context: Context | None, window: Window) -> None:
        """Every row of `window` is out: move the bookmark to its end and say so in a STATE."""
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = iso_z(window.end)
        state.pop("progress_markers", None)
        self.tap.state_writer.write_state(self.tap_state)

    # ---- downloads ---------------------------------------------------------------------------

    def open_download(self, url: str) -> requests.Response:
        """GET a result with the body left on the wire; a 3xx to a signed URL is fetched without
        the Authorization header (signed URLs carry their own credentials)."""
        response = self.send("GET", url, stream=True, allow_redirects=False)
        if response.is_redirect and response.headers.get("Location"):
            location = requests.compat.urljoin(url, response.headers["Location"])
            response.close()
            response = self.send("GET", location, stream=True, authenticate=False)
        response.raw.decode_content = True
        return response
