"""The base of every stream whose rows come from asynchronous report jobs.

Per stream (or partition) it plans windows from the bookmark, runs their jobs through the
shared engine, streams each result's rows in window order, and moves the bookmark to a window's
end only once every row of that window has been emitted and the result proved complete
(`completeness.py`). A connection cut mid-body downloads the same result again and skips the
rows already emitted; a window the vendor cut short (`SplitWindow`) is replaced by its halves
before anything of it is emitted.

Jobs outlive a run: each job is recorded in the STATE (per stream and partition, under
`report_jobs`) as soon as it is created, and a later run polls a recorded job instead of creating
it again. A record leaves the STATE when its window is committed.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import queue
import threading
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_callreports.batches import WindowBatches, whole_stream_batches
from tap_callreports.client import CallReportsStream
from tap_callreports.completeness import EmittedRows, IncompleteResult
from tap_callreports.conform import Conformer, ValueNotConformed
from tap_callreports.errors import CallReportsError, MalformedBodyError, ReportJobFailed, StreamError
from tap_callreports.redact import REGISTRY
from tap_callreports.reportjobs import JobTimedOut, OrderedJobs, Window, plan_windows
from tap_callreports.responses import vendor_error_details
from tap_callreports.retry import RETRY_AFTER_CAP_SECONDS, parse_retry_after
from tap_callreports.rowshape import KeyGuard, SchemaGrowth
from tap_callreports.schemas import load_schema
from tap_callreports.streaming import BodyInterrupted, BodyMalformed, not_the_report, peek_body
from tap_callreports.timeutil import iso_z, parse_instant, utc_now
from tap_callreports.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BatchConfig
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


@dataclass(frozen=True)
class JobStatus:
    """What one poll found: `location` when the rows can be downloaded, or `ended` (the vendor's
    word: failed, canceled, deleted; or "gone" when the vendor no longer has the job)."""

    location: str | None = None
    ended: str | None = None


class JobPhase(enum.Enum):
    """What a vendor's job status word means to the engine."""

    RUNNING = "running"
    DONE = "done"
    ENDED = "ended"  # failed, canceled, deleted: the job is created again


#: Words most job APIs use, beyond the documented ones; a vendor's table adds its own.
COMMON_STATUS_WORDS: dict[str, JobPhase] = {
    **dict.fromkeys(
        (
            "created",
            "new",
            "queued",
            "pending",
            "scheduled",
            "waiting",
            "accepted",
            "submitted",
            "processing",
            "running",
            "in_progress",
            "started",
            "generating",
            "uploading",
        ),
        JobPhase.RUNNING,
    ),
    **dict.fromkeys(
        ("done", "complete", "completed", "succeeded", "success", "successful", "finished", "ready", "available"),
        JobPhase.DONE,
    ),
    **dict.fromkeys(
        (
            "failed",
            "failure",
            "error",
            "errored",
            "canceled",
            "cancelled",
            "aborted",
            "deleted",
            "expired",
            "rejected",
            "timeout",
            "timed_out",
        ),
        JobPhase.ENDED,
    ),
}


class StatusWords:
    """One vendor's job status vocabulary: words (any case; spaces and dashes read as `_`) mapped
    to phases in one table. Vocabularies are open: a word not in the table is logged once per
    run with the raw answer, and the caller judges that answer by the rest of it (a files link,
    a status message) -- or keeps polling until the job times out."""

    def __init__(self, vendor: str, table: t.Mapping[str, JobPhase]) -> None:
        self.vendor = vendor
        self.table = dict(table)
        self._unknown_said: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def normal(word: t.Any) -> str:
        return str(word or "").strip().lower().replace(" ", "_").replace("-", "_")

    def phase(self, word: t.Any, answer: t.Any, logger: t.Any, stream: str) -> JobPhase | None:
        """The phase `word` names, or None (unknown: logged once with `answer`)."""
        normal = self.normal(word)
        phase = self.table.get(normal)
        if phase is None:
            with self._lock:
                first = normal not in self._unknown_said
                self._unknown_said.add(normal)
            if first:
                logger.warning(
                    "%s: %s answered the job status %r, which the tap does not know; it judges the "
                    "job by the rest of the answer (%s) and keeps polling until job_timeout_seconds "
                    "otherwise",
                    stream,
                    self.vendor,
                    word,
                    REGISTRY.redact(str(answer))[:400],
                )
        return phase


#: Times a result that proved incomplete is downloaded again before its job is created again.
INCOMPLETE_REFETCHES = 1
#: Redirects followed by hand on the way to a result.
MAX_REDIRECTS = 5
#: Where a partition's in-flight report jobs are kept in the STATE.
JOBS_STATE_KEY = "report_jobs"


class JobJournal:
    """Jobs created on worker threads wait here until the main thread records them in the STATE
    (only the main thread writes messages or touches the state)."""

    def __init__(self, tap: TapCallReports) -> None:
        self.tap = tap
        self._queue: queue.SimpleQueue[tuple[ReportJobStream, Context | None, JobResult]] = queue.SimpleQueue()
        self.pending = False  # a plain flag: checked once per row on the hot path

    def created(self, stream: ReportJobStream, context: Context | None, result: JobResult) -> None:
        self._queue.put((stream, context, result))
        self.pending = True
        if threading.current_thread() is threading.main_thread():
            self.record()

    def record(self) -> None:
        """Main thread: write every new job into its partition's state and emit one STATE."""
        self.pending = False
        changed = False
        while True:
            try:
                stream, context, result = self._queue.get_nowait()
            except queue.Empty:
                break
            stream.remember_job(context, result)
            changed = True
        if changed:
            self.tap.state_writer.write_state(self.tap.state)


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

    @cached_property
    def conformer(self) -> Conformer:
        return Conformer(self.effective_schema, self.name)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Job records are the tap's bookkeeping, some fields copied from vendor metadata: a field
        that does not fit its column is logged and left empty rather than failing a run whose rows
        are all in (its key fields never come from the vendor's metadata)."""
        while True:
            try:
                return self.conformer.conform(row)
            except ValueNotConformed as refused:
                rule = self.conformer.rules.get(refused.column)
                if refused.column not in row or rule is None or "null" not in rule.types:
                    raise
                self.logger.warning(
                    "%s: %s is %r, not %s: left empty in this job record",
                    self.name,
                    refused.column,
                    refused.value,
                    "/".join(rule.types),
                )
                row[refused.column] = None

    def get_batches(self, batch_config: BatchConfig, context: Context | None = None) -> t.Iterable[t.Any]:
        return whole_stream_batches(self, batch_config, context)


def honour_catalog_keys(catalog: t.Any, declared: t.Mapping[str, t.Sequence[str]]) -> None:
    """A key given in the catalog is honoured: `key_properties`, or the `table-key-properties`
    metadata (what Meltano's `metadata` extra sets), whichever differs from the tap's own key
    (`declared`, per stream). The entry is settled before the stream maps and the streams read
    it, so the SCHEMA messages and the key checks use the same key."""
    for entry in catalog.streams:
        own = declared.get(entry.tap_stream_id or "")
        if own is None:
            continue
        root = entry.metadata.get(())
        for given in (getattr(root, "table_key_properties", None), entry.key_properties):
            if given and list(given) != list(own):
                entry.key_properties = list(given)
                if root is not None:
                    root.table_key_properties = list(given)
                break


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
    #: Fields the tap adds to each vendor row (not part of what the vendor sent).
    origin_fields: t.ClassVar[frozenset[str]] = frozenset()
    #: The stream's RowShaper reports fields the schema does not know (`grow_schema`), once per set
    #: of vendor fields; otherwise every row is checked here.
    shaper_checks_fields: t.ClassVar[bool] = False
    #: Vendor column names a CSV result's header must name one of (none: it must look like a header).
    report_columns: t.Collection[str] = ()

    # ---- vendor hooks ------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def window_days(self) -> int: ...

    @property
    @abc.abstractmethod
    def data_lag(self) -> dt.timedelta: ...

    @abc.abstractmethod
    def create_job(self, context: Context | None, window: Window, attempt: int, stop: threading.Event) -> JobResult:
        """Create one job at the vendor (any thread)."""

    @abc.abstractmethod
    def poll_job(self, context: Context | None, result: JobResult) -> JobStatus | None:
        """Poll the job once (any thread): its status, or None while it runs."""

    @abc.abstractmethod
    def describe_job(self, result: JobResult) -> str:
        """'report job <id> for calls <window>' — for logs and errors."""

    @abc.abstractmethod
    def read_result(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        """Download the result and yield its rows, skipping the first `skip` (main thread). After
        the last row it checks completeness (`completeness.verify_counts`), storing the verdict in
        `result.details["verdict"]`, or raises IncompleteResult."""

    @abc.abstractmethod
    def job_record(self, result: JobResult, rows: int, outcome: str) -> dict: ...

    def delete_job(self, result: JobResult) -> None:
        """Delete a job the tap will not use, where the vendor API allows it (best effort)."""

    # ---- windows -----------------------------------------------------------------------------

    def data_end(self) -> dt.datetime:
        """No window ends after now minus the vendor's lag, nor after end_date."""
        end = utc_now() - self.data_lag
        if self.settings.end_date is not None:
            end = min(end, self.settings.end_date)
        return end.replace(microsecond=0)

    @property
    def lookback(self) -> dt.timedelta:
        """How much before the bookmark an incremental run reads again (late or changed rows)."""
        return dt.timedelta(0)

    #: The longest window one job may cover (the vendor's limit).
    max_window: t.ClassVar[dt.timedelta] = dt.timedelta(days=366)

    def plan(self, context: Context | None) -> list[Window]:
        """The windows of this run, from the bookmark (or start_date) to `data_end`:

        - an incremental run re-reads `lookback` before its bookmark (late or changed rows);
        - windows whose jobs an earlier run recorded are kept as they were (their jobs are polled,
          not created again), wherever they fall in that span: jobs are recorded in the order they
          were created, so a killed run may have recorded a later window and not an earlier one;
        - the gaps between them, and the span after them, get new windows, except a new span shorter
          than min_window_minutes after a bookmark (a run right after another makes no tiny jobs).
        """
        start_date = self.settings.start_date.replace(microsecond=0)
        state = self.get_context_state(context)
        bookmark = None
        if state.get("replication_key") == self.replication_key and state.get("replication_key_value"):
            bookmark = parse_instant(state["replication_key_value"])
        if bookmark is not None and bookmark < start_date:
            bookmark = None
        base = bookmark or start_date
        looked_back = max(start_date, bookmark - self.lookback) if bookmark is not None else base
        end = self.data_end()
        where = self.describe_context(context)
        records = sorted(state.get(JOBS_STATE_KEY) or [], key=lambda r: str(r.get("window_start")))
        kept: list[Window] = []
        reused: dict[Window, dict] = {}
        for record in records:
            window = _record_window(record)
            if (
                window is None
                or window.start < looked_back
                or window.end > end
                or (kept and window.start < kept[-1].end)
            ):
                continue
            kept.append(window)
            reused[window] = record
        stale = [r for r in records if _record_window(r) not in reused]
        if stale:
            self.logger.info(
                "%s%s: %d recorded job(s) no longer match the plan; they are dropped (and deleted "
                "at the vendor where it allows)",
                self.name,
                where,
                len(stale),
            )
            self.forget_recorded(context, stale)
            for record in stale:
                window = _record_window(record)
                if window is not None and record.get("job_id"):
                    self.delete_job(self.resume_job(context, window, record))
        self._recorded[_context_key(context)] = reused
        windows: list[Window] = []
        cursor = looked_back if kept else base
        for window in kept:  # new windows in the gaps before each recorded one
            if cursor < window.start:
                windows += plan_windows(cursor, window.start, self.window_days)
            windows.append(window)
            cursor = window.end
        minimum = dt.timedelta(minutes=self.settings.jobs.min_window_minutes)
        if bookmark is not None and end - max(cursor, bookmark) < minimum:
            if end > cursor:
                self.logger.info(
                    "%s%s: only %s of new data since %s, under min_window_minutes (%d): no new job this run",
                    self.name,
                    where,
                    end - cursor,
                    iso_z(cursor),
                    self.settings.jobs.min_window_minutes,
                )
            elif not windows:
                self._log_nothing_to_extract(where)
            return windows
        fresh = plan_windows(cursor, end, self.window_days)
        if not kept and looked_back < cursor:
            if fresh and fresh[0].end - looked_back <= self.max_window:
                fresh[0] = Window(looked_back, fresh[0].end)  # the lookback rides on the first new window
            else:
                windows.append(Window(looked_back, cursor))
        windows += fresh
        if bookmark is not None and looked_back < bookmark:
            self.logger.info(
                "%s%s: re-reading %s before the bookmark %s (lookback)",
                self.name,
                where,
                bookmark - looked_back,
                iso_z(bookmark),
            )
        if not windows:
            self._log_nothing_to_extract(where)
        return windows

    def _log_nothing_to_extract(self, where: str) -> None:
        self.logger.info("%s%s: nothing to extract (bookmark at or after %s)", self.name, where, iso_z(self.data_end()))

    def prefetch(self) -> None:
        """Start this stream's first jobs now, before its turn to sync (called by the tap for every
        selected report stream when the sync begins): N streams' jobs then take about as long
        as the slowest, not the sum."""
        contexts: list[Context | None] = [*self.partitions] if self.partitions else [None]
        for context in contexts:
            windows = self.plan(context)
            self._prefetched[_context_key(context)] = None  # planned: the sync does not plan (and say why) again
            if windows:
                self._prefetched[_context_key(context)] = self.tap.engine.ordered(
                    self.vendor,
                    windows,
                    self._job_runner(context),
                    start_now=True,
                    while_waiting=self.tap.job_journal.record,
                )

    def _job_runner(self, context: Context | None) -> t.Callable[[Window, threading.Event], JobResult]:
        recorded = self._recorded.setdefault(_context_key(context), {})
        return lambda window, stop: self._run_job_in_worker(context, window, stop, recorded.pop(window, None))

    def describe_context(self, context: Context | None) -> str:
        return ""

    # ---- jobs in the STATE --------------------------------------------------------------------

    @cached_property
    def _recorded(self) -> dict[str, dict[Window, dict]]:
        return {}

    def remember_job(self, context: Context | None, result: JobResult) -> None:
        """Main thread: record a created job in its partition's state (replacing its window's old one)."""
        state = self.get_context_state(context)
        records = [r for r in state.get(JOBS_STATE_KEY) or [] if _record_window(r) != result.window]
        record = {
            "window_start": iso_z(result.window.start),
            "window_end": iso_z(result.window.end),
            "job_id": result.job_id,
            "created_at": result.details.get("created_at"),
            "attempt": result.attempt,
        }
        if result.details.get("timezone"):
            record["timezone"] = result.details["timezone"]  # how its rows' wall times must be read
        if result.details.get("requested_start"):
            record["requested_start"] = result.details["requested_start"]  # asked from before the window (overlap)
        records.append(record)
        state[JOBS_STATE_KEY] = records

    def forget_recorded(self, context: Context | None, records: t.Sequence[dict]) -> None:
        gone = {(r.get("job_id"), r.get("window_start")) for r in records}
        self._keep_records(context, lambda r: (r.get("job_id"), r.get("window_start")) not in gone)

    def _forget_window(self, context: Context | None, window: Window, *, through_end: bool) -> None:
        """Drop the records of `window` (and, once it is committed, of everything before its end)."""

        def keep(record: dict) -> bool:
            recorded = _record_window(record)
            return recorded is not None and recorded != window and not (through_end and recorded.end <= window.end)

        self._keep_records(context, keep)

    def _keep_records(self, context: Context | None, keep: t.Callable[[dict], bool]) -> None:
        """Keep the partition's job records that `keep` accepts; no empty list is left in the STATE."""
        state = self.get_context_state(context)
        kept = [r for r in state.get(JOBS_STATE_KEY) or [] if keep(r)]
        if kept:
            state[JOBS_STATE_KEY] = kept
        else:
            state.pop(JOBS_STATE_KEY, None)

    # ---- the loop ----------------------------------------------------------------------------

    @cached_property
    def _prefetched(self) -> dict[str, OrderedJobs[JobResult] | None]:
        return {}

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        where = self.describe_context(context)
        planned_already = _context_key(context) in self._prefetched
        jobs = self._prefetched.pop(_context_key(context), None)
        if jobs is None:
            windows = [] if planned_already else self.plan(context)
            if not windows:
                return  # the plan said why
            jobs = self.tap.engine.ordered(
                self.vendor, windows, self._job_runner(context), while_waiting=self.tap.job_journal.record
            )
        planned = jobs.windows
        self.logger.info(
            "%s%s: %d window(s) planned, %s .. %s, up to %d jobs at once",
            self.name,
            where,
            len(planned),
            iso_z(planned[0].start),
            iso_z(planned[-1].end),
            self.tap.engine.ceiling(self.vendor),
        )
        progress = _Progress()
        for window, result in jobs:
            try:
                rows = yield from self._read_window(context, result, jobs.stop)
            except SplitWindow as split:
                self.logger.info(
                    "%s%s: window %s split in %d (%s)", self.name, where, window, len(split.windows), split.reason
                )
                self.tap.job_log.add(self.job_stream_name, self.job_record(result, 0, "split"))
                self._forget_window(context, window, through_end=False)
                jobs.push_front(split.windows)
                continue
            self.tap.job_log.add(self.job_stream_name, self.job_record(result, rows, "emitted"))
            self.commit_window(context, result.window)
            progress.window_done(rows)
            self.logger.info(
                "%s%s: window %d of %d %s done: %s; %s",
                self.name,
                where,
                progress.windows,
                progress.windows + len(jobs.windows),
                result.window,
                result.details.get("verdict"),
                progress.describe(len(jobs.windows)),
            )

    # ---- rows a warehouse can take ----------------------------------------------------------------

    @cached_property
    def schema_growth(self) -> SchemaGrowth:
        return SchemaGrowth(self.schema)

    def grow_schema(self, row: dict) -> None:
        """A row carries fields the schema does not list: add them (a new SCHEMA goes out first)."""
        maps = self.stream_maps
        maps_identity = self.maps_are_identity
        if not maps_identity:
            if not getattr(self, "_growth_warned", False):
                self._growth_warned = True
                self.logger.warning(
                    "%s: rows carry fields the schema does not list (%s); with stream maps or "
                    "flattening on they are not added as columns",
                    self.name,
                    ", ".join(sorted(set(row) - self.schema_growth.known)),
                )
            self.schema_growth.known = self.schema_growth.known | set(row)
            added = []
        else:
            added = self.schema_growth.grow(row)
            if added:
                # The SCHEMA message is the map's schema (built from the catalog): it gains them too.
                mapped = maps[0].transformed_schema.setdefault("properties", {})
                for name in added:
                    mapped[name] = self.schema["properties"][name]
                self.logger.info("%s: new field(s) %s: a new SCHEMA adds them as columns", self.name, ", ".join(added))
                self._write_schema_message()
        shaper = getattr(self, "shaper", None)
        if shaper is not None and (added or not maps_identity):
            shaper.schema_changed()  # (nothing added: a field that is null so far; nothing to redo)

    KEY_OVERRIDE = (
        "give the stream a key its rows do carry in the catalog: key_properties, or the "
        "table-key-properties metadata (Meltano: the extractor's `metadata` extra, "
        "{stream}: {{table-key-properties: [...]}}), and run again"
    )

    def _keyless(self, row: dict, result: JobResult) -> StreamError:
        carried = sorted(
            name for name, value in row.items() if value not in (None, "") and name not in self.origin_fields
        )
        shown = ", ".join(carried[:12]) + (", ..." if len(carried) > 12 else "")
        return StreamError(
            self.name,
            f"a row of {self.describe_job(result)} has no value for the key ({', '.join(self.primary_keys)}): "
            f"the report's layout differs from what the tap expects (the row carries {shown}). No row without its "
            f"key was emitted and no bookmark moved past {iso_z(result.window.start)}; "
            + self.KEY_OVERRIDE.format(stream=self.name),
        )

    def _check_keys(self, keys: KeyGuard, result: JobResult) -> None:
        """A row without its key or two rows with one key would be dropped or merged by the warehouse."""
        duplicates = keys.duplicates()
        if keys.missing or duplicates:
            raise StreamError(
                self.name,
                f"the result of {self.describe_job(result)} has {keys.missing} row(s) without the key "
                f"({', '.join(self.primary_keys)}) and {duplicates} row(s) repeating another row's key; a warehouse "
                f"would drop or merge them, so no bookmark moved past {iso_z(result.window.start)}; "
                + self.KEY_OVERRIDE.format(stream=self.name),
            )

    def _run_job_in_worker(
        self, context: Context | None, window: Window, stop: threading.Event, recorded: dict | None
    ) -> JobResult:
        return self._run_job_loudly(context, window, stop, recorded=recorded)

    def _run_job_loudly(
        self, context: Context | None, window: Window, stop: threading.Event, **how: t.Any
    ) -> JobResult:
        try:
            return self.run_job(context, window, stop, **how)
        except JobTimedOut as exc:
            # Its text starts with the stream's name; the job stays in the STATE for the next run.
            raise CallReportsError(
                f"{exc}; the job stays recorded in the STATE, so the next run polls it instead of creating it again"
            ) from None

    def resume_job(self, context: Context | None, window: Window, record: dict) -> JobResult:
        """A job an earlier run created and recorded: polled again, not created again."""
        return JobResult(
            job_id=str(record["job_id"]),
            window=window,
            attempt=int(record.get("attempt") or 1),
            location="",
            details={
                **(context or {}),
                "created_at": record.get("created_at"),
                "timezone": record.get("timezone"),
                "resumed": True,
                "requested_start": record.get("requested_start"),
            },
        )

    def run_job(
        self,
        context: Context | None,
        window: Window,
        stop: threading.Event,
        *,
        first_attempt: int = 1,
        recorded: dict | None = None,
    ) -> JobResult:
        """Create (or resume) and poll a job until its rows can be read. A job that ended failed,
        canceled or deleted, or that the vendor no longer has, is created again, up to
        job_max_attempts."""
        attempts = self.settings.jobs.max_attempts
        attempt = first_attempt
        result: JobResult | None = None
        if recorded is not None:
            result = self.resume_job(context, window, recorded)
            self.logger.info("%s: resuming %s, recorded by an earlier run", self.name, self.describe_job(result))
        while True:
            if result is None:
                result = self.create_job(context, window, attempt, stop)
                self.logger.info("%s: created %s (attempt %d)", self.name, self.describe_job(result), attempt)
                self.tap.job_journal.created(self, context, result)
            current = result
            what = f"{self.name}: {self.describe_job(current)}"
            status = self.tap.engine.wait_for(lambda: self.poll_job(context, current), what, stop)  # noqa: B023 - called before the loop moves on
            if status.location:
                result.location = status.location
                self.logger.info(
                    "%s: job %s done after %d polls", self.name, result.job_id, result.details.get("polls", 0)
                )
                return result
            self.tap.job_log.add(self.job_stream_name, self.job_record(result, 0, str(status.ended)))
            if attempt >= attempts:
                raise ReportJobFailed(
                    self.name,
                    f"{self.describe_job(result)} ended '{status.ended}' ({attempts} attempts); the bookmark "
                    f"stays at {iso_z(window.start)}, the end of the last complete window; run again later, or check "
                    "the report at the vendor",
                )
            self.logger.warning(
                "%s: %s ended '%s'; creating it again (attempt %d of %d)",
                self.name,
                self.describe_job(result),
                status.ended,
                attempt + 1,
                attempts,
            )
            attempt += 1
            result = None

    def _read_window(
        self, context: Context | None, result: JobResult, stop: threading.Event
    ) -> t.Generator[dict, None, int]:
        """Yield every row of one window exactly once, from a result proved complete.

        A connection broken mid-body downloads the same result again and skips, by position, the
        rows already handled. A result that proves incomplete is downloaded again, then its job
        is created again; from the first incomplete result on, the rows emitted are remembered by
        digest (`EmittedRows`), so a re-read emits only what was not out yet (a row the vendor
        changed in between goes out again, and replaces the old one by key).
        """
        window = result.window
        journal = self.tap.job_journal
        key = tuple(self.primary_keys or ())
        growth = self.schema_growth
        known = None if self.shaper_checks_fields else growth.known
        emitted = 0  # rows of this window emitted, from every result read for it
        handled = 0  # rows of the current result handled (emitted, matched or learned), by position
        learn = 0  # rows at the start of the current result emitted before digests were kept
        memory: EmittedRows | None = None
        breaks = downloads = 0
        # time_extracted: the rows of one result are extracted by one download.
        self.extracted_at = utc_now()
        self.state_manager.is_flushed = False  # what the SDK's record path sets per record
        while True:
            if handled == 0:
                keys = KeyGuard(key)  # the rows of the result being read
            add_key = keys.add
            try:
                position = handled if memory is None else 0
                for row in self.read_result(context, result, skip=handled if memory is None else 0):
                    position += 1
                    if memory is not None:
                        if position <= handled:
                            continue  # handled before the connection broke
                        handled = position
                        if position <= learn:
                            memory.add(row)  # emitted before digests were kept: not again
                            add_key(row)
                            continue
                        if memory.already_emitted(row):
                            add_key(row)
                            continue
                    else:
                        handled = position
                    emitted += 1
                    if journal.pending:
                        journal.record()
                    if known is not None and not row.keys() <= known:  # a C-level subset test
                        self.grow_schema(row)
                        known = growth.known
                    if add_key(row):
                        raise self._keyless(row, result)  # before the row leaves: none goes out keyless
                    yield row
                self._check_keys(keys, result)
                return emitted
            except BodyInterrupted as exc:
                breaks += 1
                if breaks > self.settings.max_retries:
                    raise StreamError(
                        self.name,
                        f"the download of job {result.job_id} ({window}) broke "
                        f"{breaks} times, last after {exc.rows_read} rows; no bookmark moved past "
                        f"{iso_z(window.start)}; run again later",
                    ) from None
                wait = self.retry_policy.wait_seconds(None, breaks)
                self.logger.warning(
                    "%s: download of job %s broke after %d rows; downloading again in %.1fs, "
                    "skipping the %d rows already handled",
                    self.name,
                    result.job_id,
                    exc.rows_read,
                    wait,
                    handled,
                )
                time.sleep(wait)
            except BodyMalformed as exc:
                raise MalformedBodyError(
                    self.name,
                    f"the result of job {result.job_id} ({window}) at {_path(result.location)} is "
                    f"malformed: {exc}; rows before it were emitted but the bookmark stays at the window start; "
                    "run again, and report it to the vendor if it persists",
                ) from None
            except IncompleteResult as exc:
                downloads += 1
                if memory is None:
                    # From now on remember what goes out; rows already out are learned on the re-read.
                    memory = EmittedRows(self.origin_fields)
                    learn, handled = handled, 0
                attempts = self.settings.jobs.max_attempts
                if downloads <= INCOMPLETE_REFETCHES:
                    wait = self.retry_policy.wait_seconds(None, downloads)
                    self.logger.warning(
                        "%s: the result of %s is incomplete: %s (%s); downloading it again in %.1fs",
                        self.name,
                        self.describe_job(result),
                        exc.problem,
                        exc.counts,
                        wait,
                    )
                    time.sleep(wait)
                    continue
                if result.attempt >= attempts or len(memory) < emitted:
                    # Out of attempts, or rows went out that the re-read could not learn: a new job
                    # could send them twice. The bookmark stays; a later run reads the window again.
                    raise StreamError(
                        self.name,
                        f"the result of {self.describe_job(result)} stayed incomplete: {exc.problem} "
                        f"({exc.counts}) after {result.attempt} job(s); no bookmark moved past "
                        f"{iso_z(window.start)}; run again later, and report it to the vendor if it persists",
                    ) from None
                self.logger.warning(
                    "%s: the result of %s is incomplete: %s (%s); creating the job again (attempt %d of %d)",
                    self.name,
                    self.describe_job(result),
                    exc.problem,
                    exc.counts,
                    result.attempt + 1,
                    attempts,
                )
                self.tap.job_log.add(self.job_stream_name, self.job_record(result, 0, "incomplete"))
                self.delete_job(result)
                result = self._run_job_loudly(context, window, stop, first_attempt=result.attempt + 1)
                journal.record()
                downloads, handled, learn = 0, 0, 0
                memory.start_result()
                self.extracted_at = utc_now()

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
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and all(self.mask.values())
            and self.replication_method != "FULL_TABLE"  # no ACTIVATE_VERSION versions to stamp
        )

    @cached_property
    def _lean_write(self) -> t.Callable[[str, dict, t.Any], None] | None:
        return t.cast(FastSingerWriter, self.tap.message_writer).write_record if self.lean_records else None

    def _write_record_message(self, record: dict) -> None:
        write = self._lean_write
        if write is not None:
            write(self.name, record, self.extracted_at)  # state_manager.is_flushed: set per window
        else:
            super()._write_record_message(record)

    @property
    def lean_loop(self) -> bool:
        """Whether `_sync_records` takes the lean loop (a dry run's record limit needs the SDK's)."""
        return self.lean_records and self.selected and self.ABORT_AT_RECORD_COUNT is None

    #: Rows between two updates of the SDK's record counter on the lean path (it logs on a timer).
    COUNT_EVERY = 4096

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's record loop, lean where it can be (`lean_records`): the same RECORD and STATE
        messages, metrics and state finalisation, without the per-row calls that do nothing for a
        report stream (post-processing and child contexts: none; per-row bookmark: the window's;
        a STATE every 10,000 rows: one after each window instead). A dry run's record limit, a
        deselected stream or BATCH mode without the lean path take the SDK's loop."""
        if not (self.lean_loop and (write_messages or self._batches is not None)):
            yield from super()._sync_records(context, write_messages=write_messages)
            return
        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        name, every = self.name, self.COUNT_EVERY
        with record_counter, timer:
            for context_element in ([context] if context is not None else self.partitions) or [{}]:
                record_counter.with_context(context_element)
                timer.with_context(context_element)
                current_context = context_element or None
                partition_context = self._get_state_partition_context(current_context)
                self._write_starting_replication_value(current_context)
                fill = tuple((partition_context or {}).items())  # what _process_record adds
                rows = self.get_records(current_context)
                counted = 0
                try:
                    if write_messages:
                        write = t.cast(FastSingerWriter, self.tap.message_writer).write_record
                        for counted, record in enumerate(rows, 1):  # noqa: B007 - counted: after the loop
                            for key, value in fill:
                                if key not in record:
                                    record[key] = value
                            write(name, record, self.extracted_at)
                            if not counted % every:
                                record_counter.increment(every)
                    else:
                        write_batch = self._batches.write  # type: ignore[union-attr]
                        for counted, record in enumerate(rows, 1):  # noqa: B007
                            for key, value in fill:
                                if key not in record:
                                    record[key] = value
                            write_batch(record)
                            if not counted % every:
                                record_counter.increment(every)
                finally:  # rows out before an error count too
                    record_counter.increment(counted % every)
                if current_context == partition_context:
                    self._finalize_state(self.get_context_state(current_context))
        if not context:
            self._finalize_state(self.stream_state)
        if write_messages:
            self._write_state_message()

    # ---- BATCH mode ----------------------------------------------------------------------------------

    _batches: WindowBatches | None = None

    def get_batches(self, batch_config: BatchConfig, context: Context | None = None) -> t.Iterable[t.Any]:
        """BATCH mode: rows go to gzip JSON Lines files per window (`batches.py`); a file that fills
        up is announced in a BATCH at once, and `commit_window` writes the BATCH of the window's
        last file, then its STATE. Yields nothing to the SDK's loop."""
        self._batch_encoding = batch_config.encoding
        self._batches = WindowBatches(
            self.name,
            batch_config,
            on_full=lambda manifest: self._write_batch_message(encoding=self._batch_encoding, manifest=manifest),
        )
        deleted = self._batches.delete_earlier_runs()
        if deleted:
            self.logger.info("%s: deleted %d batch file(s) of earlier runs", self.name, deleted)
        try:
            write = self._batches.write
            lean = self.lean_loop
            for record in self._sync_records(context, write_messages=False):
                # The lean loop writes the files itself and yields nothing; the SDK's loop yields
                # every row, with selection, stream maps and flattening applied here.
                if not lean:
                    for message in self._generate_record_messages(record):
                        write(message.record)
            leftover = self._batches.finish_window()  # rows of no window: cannot happen, but never lose them
            if leftover:
                self._write_batch_message(encoding=self._batch_encoding, manifest=leftover)
        finally:
            self._batches = None
        yield from ()

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return row  # conformed while shaped (RowShaper calls the stream's Conformer)

    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        return ()  # report streams have no child streams

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """No per-record bookmark: `commit_window` moves it once a whole window is out (the SDK's
        per-record progress markers would only say, wrongly, that progress is not resumable)."""

    def commit_window(self, context: Context | None, window: Window) -> None:
        """Every row of `window` is out and verified: move the bookmark to its end, drop its job
        record, and say so in a STATE (in BATCH mode after the BATCH message holding the rows)."""
        if self._batches is not None:
            manifest = self._batches.finish_window()
            if manifest:
                self._write_batch_message(encoding=self._batch_encoding, manifest=manifest)
        self._forget_window(context, window, through_end=True)
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = iso_z(window.end)
        state.pop("progress_markers", None)
        self.tap.state_writer.write_state(self.tap_state)

    # ---- downloads ---------------------------------------------------------------------------

    def open_download(self, url: str) -> requests.Response:
        """GET a result with the body left on the wire. A 3xx is followed by hand (requests does
        not follow 300): to a signed URL or any other host without the Authorization header
        (`send` sends credentials only to the API host)."""
        response = self.send("GET", url, stream=True, allow_redirects=False)
        hops = 0
        while response.is_redirect and response.headers.get("Location") and hops < MAX_REDIRECTS:
            location = requests.compat.urljoin(url, response.headers["Location"])
            response.close()
            url, hops = location, hops + 1
            response = self.send("GET", url, stream=True, allow_redirects=False)
        if response.is_redirect:
            response.close()
            raise StreamError(
                self.name,
                f"the download of {_path(url)} kept redirecting ({hops} hops); no bookmark "
                "moved; run again later, and report it to the vendor if it persists",
            )
        response.raw.decode_content = True
        return response

    def open_report(self, result: JobResult, fmt: str, fetch: t.Callable[[], requests.Response]) -> requests.Response:
        """The body of a result, once the answer says it is the report (`fetch()` asks for it).

        A 202, a Retry-After, or a body whose content type or first bytes are not `fmt` (an HTML
        page, an XML or JSON error, a job status, a line of text or nothing for a CSV, an empty
        text body for JSON lines) is never read as rows: it is waited out (its
        Retry-After, else the retry policy's backoff) and asked again -- a "not yet" (202 or
        Retry-After) within job_timeout_seconds, any other body up to max_retries times. After
        that the result counts as incomplete: the job is created again, and the run stops
        loudly with the bookmark unmoved if it stays so."""
        deadline = time.monotonic() + self.settings.jobs.timeout_seconds
        tries = 0
        while True:
            response = fetch()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            not_yet = response.status_code == HTTPStatus.ACCEPTED or retry_after is not None
            problem: str | None
            if not_yet:
                problem = (
                    f"{response.status_code} {response.reason} with Retry-After "
                    f"{response.headers.get('Retry-After', '(none)')} ({vendor_error_details(response) or 'no body'})"
                )
            else:
                head, response.raw = peek_body(response.raw)
                problem = not_the_report(fmt, response.headers.get("Content-Type", ""), head, self.report_columns)
                if problem is None:
                    return response
            response.close()
            tries += 1
            wait = (
                min(retry_after, RETRY_AFTER_CAP_SECONDS)
                if retry_after is not None
                else self.retry_policy.wait_seconds(None, tries)
            )
            if time.monotonic() + wait > deadline or (not not_yet and tries > self.settings.max_retries):
                raise IncompleteResult(f"{_path(response.url)} answered {problem}, not the report, {tries} time(s)", 0)
            self.logger.warning(
                "%s: %s answered %s, not the report; asking again in %.1fs",
                self.name,
                _path(response.url),
                problem,
                wait,
            )
            time.sleep(wait)


def _record_window(record: dict) -> Window | None:
    start, end = parse_instant(record.get("window_start")), parse_instant(record.get("window_end"))
    return Window(start, end) if start is not None and end is not None and start < end else None


def _path(url: str) -> str:
    return urlsplit(url).path


class _Progress:
    """Per stream: windows done, rows, rows/s and an estimate of the time left, for the log."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.windows = 0
        self.rows = 0

    def window_done(self, rows: int) -> None:
        self.windows += 1
        self.rows += rows

    def describe(self, windows_left: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = f"{self.rows:,} rows so far, {self.rows / elapsed:,.0f} rows/s"
        if windows_left:
            left = elapsed / self.windows * windows_left
            text += f", about {_duration(left)} left ({windows_left} window(s))"
        return text


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
