"""The base of every stream whose rows come from asynchronous report jobs: the glue between the
SDK's Stream and the report-job package.

Per stream (or partition) it plans windows from the bookmark (`planner.py`), runs their jobs
through the shared engine (`engine.py`, `runner.py`), streams each result's rows in window order
(`reader.py`), and moves the bookmark to a window's end only once every row of that window has
been emitted and the result proved complete (`completeness.py`). A window the vendor cut short
(`SplitWindow`) is replaced by its halves before anything of it is emitted.

Jobs outlive a run: each job is recorded in the STATE as soon as it is created (`state.py`), and
a later run polls a recorded job instead of creating it again.
"""

from __future__ import annotations

import abc
import datetime as dt
import time
import typing as t
from functools import cached_property

import requests
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_callreports.client import CallReportsStream
from tap_callreports.reportjobs.job import JobResult, SplitWindow, Window
from tap_callreports.reportjobs.planner import data_end, plan_run
from tap_callreports.reportjobs.ports import VendorPort
from tap_callreports.reportjobs.reader import WindowReader
from tap_callreports.reportjobs.runner import JobRunner
from tap_callreports.reportjobs.state import JOBS_STATE_KEY, context_key, forget_records, forget_window, record_window
from tap_callreports.rowshape import RowPolicy, RowShaper
from tap_callreports.schemagrowth import SchemaGrowth
from tap_callreports.sdk_hooks import ReportStreamSDKHooks
from tap_callreports.timeutil import duration_text, iso_z, parse_instant, utc_now
from tap_callreports.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.engine import OrderedJobs
    from tap_callreports.reportjobs.services import JobServices
    from tap_callreports.reportjobs.vendor import VendorJobs, WindowSettings


class ReportJobStream(ReportStreamSDKHooks, CallReportsStream, abc.ABC):
    """Rows from report jobs, one window at a time, in window order."""

    #: The run's services (`reportjobs/services.py`), handed by the tap (`CallReportsStream`).
    services: JobServices

    is_sorted = False  # rows inside a window come in any order; the bookmark moves per window
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
    def windows_settings(self) -> WindowSettings:
        """The vendor's settings of window length, lookback and lag (reportjobs/vendor.py)."""

    @property
    def window_days(self) -> int:
        return self.windows_settings.window_days

    @property
    def data_lag(self) -> dt.timedelta:
        """How long after the fact the vendor's reports hold every row."""
        return dt.timedelta(minutes=self.windows_settings.data_lag_minutes)

    @property
    @abc.abstractmethod
    def jobs(self) -> VendorJobs:
        """The vendor's job API for this stream: create, poll, read, delete, describe, record
        (reportjobs/vendor.py), made with `port`."""

    @property
    @abc.abstractmethod
    def shaper(self) -> RowShaper:
        """The stream's RowShaper (`new_shaper`): the vendor's job object shapes each row with it."""

    @cached_property
    def port(self) -> VendorPort:
        """What the vendor's job object takes from this stream, instead of the stream."""
        return VendorPort(
            name=self.name,
            settings=self.settings,
            logger=self.logger,
            send=self.send,
            state=self.get_context_state,
            download=self.open_download,
            open_report=self.open_report,
            ask_job=self.ask_job,
            shaper=lambda: self.shaper,
        )

    # ---- windows -----------------------------------------------------------------------------

    def data_end(self) -> dt.datetime:
        """No window ends after now minus the vendor's lag, nor after end_date."""
        return data_end(utc_now(), self.data_lag, self.settings.end_date)

    @property
    def lookback(self) -> dt.timedelta:
        """How much before the bookmark an incremental run reads again (late or changed rows)."""
        return dt.timedelta(minutes=self.windows_settings.lookback_minutes)

    #: The longest window one job may cover (the vendor's limit).
    max_window: t.ClassVar[dt.timedelta] = dt.timedelta(days=366)

    def plan(self, context: Context | None) -> list[Window]:
        """The windows of this run (`planner.plan_run`); recorded jobs the plan no longer uses are
        dropped from the STATE and deleted at the vendor where it allows."""
        state = self.get_context_state(context)
        bookmark = None
        if state.get("replication_key") == self.replication_key and state.get("replication_key_value"):
            bookmark = parse_instant(state["replication_key_value"])
        plan = plan_run(
            bookmark=bookmark,
            recorded=state.get(JOBS_STATE_KEY) or [],
            start_date=self.settings.start_date,
            end_date=self.settings.end_date,
            now=utc_now(),
            lag=self.data_lag,
            lookback=self.lookback,
            window_days=self.window_days,
            min_window=dt.timedelta(minutes=self.settings.jobs.min_window_minutes),
            max_window=self.max_window,
        )
        where = self.describe_context(context)
        if plan.stale:
            self.logger.info(
                "%s%s: %d recorded job(s) no longer match the plan; they are dropped (and deleted "
                "at the vendor where it allows)",
                self.name,
                where,
                len(plan.stale),
            )
            forget_records(state, plan.stale)
            for record in plan.stale:
                window = record_window(record)
                if window is not None and record.get("job_id"):
                    self.jobs.delete(self.runner.resume(context, window, record))
        self.runner.recorded[context_key(context)] = plan.reused
        windows, bookmark, cursor = plan.windows, plan.bookmark, plan.new_from
        if plan.too_short:
            if plan.end > cursor:
                self.logger.info(
                    "%s%s: only %s of new data since %s, under min_window_minutes (%d): no new job this run",
                    self.name,
                    where,
                    plan.end - cursor,
                    iso_z(cursor),
                    self.settings.jobs.min_window_minutes,
                )
            elif not windows:
                self._log_nothing_to_extract(where, bookmark)
            return windows
        if bookmark is not None and plan.looked_back < bookmark:
            self.logger.info(
                "%s%s: re-reading %s before the bookmark %s (lookback)",
                self.name,
                where,
                bookmark - plan.looked_back,
                iso_z(bookmark),
            )
        if not windows:
            self._log_nothing_to_extract(where, bookmark)
        return windows

    def _log_nothing_to_extract(self, where: str, bookmark: dt.datetime | None) -> None:
        since = (
            f"bookmark {iso_z(bookmark)}" if bookmark is not None else f"start_date {iso_z(self.settings.start_date)}"
        )
        self.logger.info(
            "%s%s: nothing to extract (%s is at or after the end of the data, %s)",
            self.name,
            where,
            since,
            iso_z(self.data_end()),
        )

    def prefetch(self) -> None:
        """Start this stream's first jobs now, before its turn to sync (called by the tap for every
        selected report stream when the sync begins): N streams' jobs then take about as long
        as the slowest, not the sum."""
        contexts: list[Context | None] = [*self.partitions] if self.partitions else [None]
        for context in contexts:
            windows = self.plan(context)
            self._prefetched[context_key(context)] = None  # planned: the sync does not plan (and say why) again
            if windows:
                self._prefetched[context_key(context)] = self.runner.engine.ordered(
                    self.vendor,
                    windows,
                    self.runner.for_context(context),
                    start_now=True,
                    while_waiting=self.runner.unsaved.record,
                )

    def describe_context(self, context: Context | None) -> str:
        return ""

    # ---- the job services -----------------------------------------------------------------------

    @cached_property
    def runner(self) -> JobRunner:
        services = self.services
        return JobRunner(self, services.engine, services.unsaved, services.job_records)

    @cached_property
    def reader(self) -> WindowReader:
        return WindowReader(self, self.runner, self.services.unsaved, self.services.job_records)

    # ---- the loop ----------------------------------------------------------------------------

    @cached_property
    def _prefetched(self) -> dict[str, OrderedJobs[JobResult] | None]:
        return {}

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        where = self.describe_context(context)
        planned_already = context_key(context) in self._prefetched
        jobs = self._prefetched.pop(context_key(context), None)
        if jobs is None:
            windows = [] if planned_already else self.plan(context)
            if not windows:
                return  # the plan said why
            jobs = self.runner.engine.ordered(
                self.vendor, windows, self.runner.for_context(context), while_waiting=self.runner.unsaved.record
            )
        planned = jobs.windows
        self.logger.info(
            "%s%s: %d window(s) planned, %s .. %s, up to %d jobs at once",
            self.name,
            where,
            len(planned),
            iso_z(planned[0].start),
            iso_z(planned[-1].end),
            self.runner.engine.ceiling(self.vendor),
        )
        progress = _Progress()
        for window, result in jobs:
            self.hold_window()
            try:
                rows = yield from self.reader.read(context, result, jobs.stop, jobs)
            except BaseException as exc:
                self.drop_window()  # nothing of a window leaves before its keys are proven
                if not isinstance(exc, SplitWindow):
                    raise
                split = exc
                self.logger.info(
                    "%s%s: window %s split in %d (%s)", self.name, where, window, len(split.windows), split.reason
                )
                self.runner.job_records.add(self.job_stream_name, self.jobs.record(result, 0, "split"))
                forget_window(self.get_context_state(context), window, through_end=False)
                jobs.push_front(split.windows)
                continue
            self.runner.job_records.add(self.job_stream_name, self.jobs.record(result, rows, "emitted"))
            self.commit_window(context, result.window)
            progress.window_done(rows)
            outlook = self.runner.engine.outlook()
            self.logger.info(
                "%s%s: window %d of %d %s done: %s; %s%s",
                self.name,
                where,
                progress.windows,
                progress.windows + len(jobs.windows),
                result.window,
                result.verdict,
                progress.describe(len(jobs.windows)),
                f"; {outlook}" if outlook else "",
            )

    # ---- rows a warehouse can take ----------------------------------------------------------------

    @cached_property
    def schema_growth(self) -> SchemaGrowth:
        return SchemaGrowth(self.schema)

    def new_shaper(
        self,
        policy: RowPolicy,
        vendor_names: t.Iterable[str],
        checked: t.Callable[[], t.Iterable[str]],
        **instants: t.Any,
    ) -> RowShaper:
        """The stream's RowShaper: fields the schema does not know grow it (`grow_schema`); values are
        conformed to the target's schema, `checked()` naming the instant columns the conformer leaves
        to the shaper; `instants`: RowShaper's `instants` / `text_instants` where the stream has them."""
        return RowShaper(
            policy,
            vendor_names,
            known=lambda: self.schema_growth.known,
            on_unknown=self.grow_schema,
            conformer=lambda: self.new_conformer(checked()),
            stream=self.name,
            **instants,
        )

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
                self.write_schema_message()
        shaper = getattr(self, "shaper", None)
        if shaper is not None and (added or not maps_identity):
            shaper.schema_changed()  # (nothing added: a field that is null so far; nothing to redo)

    # ---- the record path (the SDK's loop and BATCH messages: sdk_hooks.ReportStreamSDKHooks) -------

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return row  # conformed while shaped (RowShaper calls the stream's Conformer)

    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        return ()  # report streams have no child streams

    def commit_window(self, context: Context | None, window: Window) -> None:
        """Every row of `window` is read and verified: its held rows go out, the bookmark moves to its
        end, its job record is dropped, and a STATE says so (in BATCH mode after the BATCH message
        holding the rows)."""
        self.release_window()
        self.write_window_batch()
        forget_window(self.get_context_state(context), window, through_end=True)
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = iso_z(window.end)
        state.pop("progress_markers", None)
        self.services.write_state(self.tap_state)

    # ---- a window held until its keys are proven (`writer.py`, `batches.py`) ----------------------

    @property
    def _held_writer(self) -> FastSingerWriter | None:
        writer = self.services.message_writer
        return writer if isinstance(writer, FastSingerWriter) else None

    def hold_window(self) -> None:
        """The window's RECORD and BATCH lines wait in a spool file until `release_window`."""
        if (writer := self._held_writer) is not None:
            writer.hold()

    def release_window(self) -> None:
        if (writer := self._held_writer) is not None:
            writer.release()

    def drop_window(self) -> None:
        """Nothing the window wrote leaves: its held lines and its batch files are dropped."""
        if (writer := self._held_writer) is not None:
            writer.discard()
        if self._batches is not None:
            self._batches.discard_window()

    def restart_window(self) -> None:
        """The window is read again from its first row (another download or job): what it held so
        far is dropped, and its lines are held again."""
        self.drop_window()
        self.hold_window()

    # ---- downloads (`reader.py`) -------------------------------------------------------------

    def open_download(self, url: str) -> requests.Response:
        return self.reader.open_download(url)

    def open_report(self, result: JobResult, fmt: str, fetch: t.Callable[[], requests.Response]) -> requests.Response:
        return self.reader.open_report(result, fmt, fetch)

    def ask_job(self, context: Context | None, result: JobResult, problem: str) -> None:
        self.reader.ask_job(context, result, problem)


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
            text += f", about {duration_text(left)} left ({windows_left} window(s))"
        return text
