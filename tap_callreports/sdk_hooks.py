"""Every override or use of a private singer-sdk member (written against 0.54), in one module.

An SDK upgrade means reading this file, not the package: each override says which SDK behaviour
it keeps and why it exists. The rest of the tap uses the SDK's public hooks (`get_records`,
`post_process`, `get_batches`, ...) and the public names defined here. The classes are bases the
tap's streams and tap inherit, because these members are methods the SDK calls on the stream or
tap itself.
"""

from __future__ import annotations

import logging
import sys
import typing as t
from functools import cached_property

from singer_sdk import RESTStream, Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_callreports.batches import WindowBatches
from tap_callreports.errors import ConfigError, TerminatedBySignal
from tap_callreports.timeutil import parse_instant
from tap_callreports.writer import FastSingerWriter

if t.TYPE_CHECKING:
    import datetime as dt

    import requests
    from singer_sdk.helpers._batch import BatchConfig as BatchConfig  # no public module exports it (0.54)
    from singer_sdk.helpers.types import Context


def selected_records(stream: Stream, context: Context | None, write: t.Callable[[dict], None]) -> None:
    """The SDK's record loop without RECORD messages (`_sync_records(write_messages=False)`), each
    record as the SDK would write it (`_generate_record_messages`: selection, stream maps,
    flattening) handed to `write`: BATCH files get what RECORD messages would carry."""
    for record in stream._sync_records(context, write_messages=False):
        for message in stream._generate_record_messages(record):
            write(message.record)


def whole_stream_batches(
    stream: t.Any, batch_config: BatchConfig, context: t.Any = None
) -> t.Iterator[tuple[t.Any, list[str]]]:
    """BATCH mode for the streams without windows (imports, job statuses, job records): their rows
    in the same files as report streams (same names, same clean-up by the next run), one BATCH
    at the end, then the SDK writes the STATE. Selection and stream maps apply as in RECORD mode."""
    files = WindowBatches(stream.name, batch_config)
    deleted = files.delete_earlier_runs()
    if deleted:
        stream.logger.info("%s: deleted %d batch file(s) of earlier runs", stream.name, deleted)
    selected_records(stream, context, files.write)
    manifest = files.finish_window()
    if manifest:
        yield batch_config.encoding, manifest


#: The SDK's ERROR line when a stream's sync raises (`Stream.sync`, 0.54), before the error goes on
#: up to the command, which prints the tap's own line for it.
SDK_UNHANDLED_ERROR = "An unhandled error occurred while syncing '%s'"
#: Attribute naming the stream an error stopped (set where the SDK's line would be logged): the
#: command's line names it when the error's own text does not (cli.error_line).
STREAM_OF_ERROR = "callreports_stream"


class OneErrorLine(Stream):
    """A stop is one line, the tap's (cli.report): the SDK's generic line for it is not logged;
    what it said, the stream's name, goes with the error to that line."""

    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        if level == logging.ERROR and message == SDK_UNHANDLED_ERROR:
            error = sys.exc_info()[1]
            if error is not None and not hasattr(error, STREAM_OF_ERROR):
                setattr(error, STREAM_OF_ERROR, self.name)
            return
        super().log(message, *args, level=level, **kwargs)


class RESTStreamSDKHooks(OneErrorLine, RESTStream):
    """The base of every stream of the tap (client.CallReportsStream)."""

    # METRIC lines name the endpoint, not the URL with its query (the SDK's default, pinned here).
    _LOG_REQUEST_METRIC_URLS = False

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The SDK makes one session per stream; the tap's `requests_session` is one per thread (jobs
        # run on worker threads, and a requests.Session is not thread-safe): the SDK's goes unused.
        self._requests_session = None

    def answered(self, response: requests.Response) -> None:
        """An answer that passed `validate_response`, on the SDK's paging loop (`_request`) and the
        tap's own requests (`CallReportsStream.send`) alike: what it says about the rate limit is
        noted for the next request by a stream that paces its requests (ratelimit.py); nothing here."""

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        response = super()._request(prepared_request, context)
        self.answered(response)
        return response

    def log_request_duration(
        self, response: requests.Response, endpoint: str, context: Context | None, extra_tags: dict | None
    ) -> None:
        """The SDK's METRIC line for a request (`_write_request_duration_log`), for the requests the
        tap sends itself (`CallReportsStream.send`: any thread, bodies left on the wire)."""
        self._write_request_duration_log(endpoint=endpoint, response=response, context=context, extra_tags=extra_tags)


class LookbackSDKHooks(Stream):
    """A sorted stream (`is_sorted = True`: its bookmark is resumable mid-stream) that reads again
    from before its bookmark (a lookback: zendesk.talk). Keeps the SDK's per-record bookmark
    (`_increment_stream_state`) for every record at or after the bookmark the state holds; a record
    before it (re-read by the lookback, emitted again) leaves the bookmark where it is. Without
    this the SDK's sort check (`check_sorted`) raises InvalidStreamSortException on the first
    re-read item, every run after the first fails and the bookmark never moves; with
    `check_sorted = False` it would move the bookmark back instead. Either way the bookmark stays
    the newest `replication_key` emitted, and only rises."""

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        if self.replication_key:
            held = parse_instant(self.get_context_state(context).get("replication_key_value"))
            value = parse_instant(latest_record.get(self.replication_key))
            if held is not None and value is not None and value < held:
                return
        super()._increment_stream_state(latest_record, context=context)


class WriterServices(t.Protocol):
    """What the record path takes of the run's services: the tap's message writer."""

    @property
    def message_writer(self) -> object: ...


class ReportStreamSDKHooks(OneErrorLine):
    """The record path of report streams (reportjobs.stream.ReportJobStream): the SDK's RECORD,
    STATE and BATCH messages, written by a lean loop where it would write exactly the same."""

    services: WriterServices
    #: time_extracted of the rows being read (set per result by the reader).
    extracted_at: dt.datetime | None = None

    def write_schema_message(self) -> None:
        """A new SCHEMA (the stream's schema grew): the SDK's own `_write_schema_message`."""
        self._write_schema_message()

    def mark_state_unflushed(self) -> None:
        """Rows of a new result are about to go out: the STATE is not flushed (what the SDK's
        record path sets per record, `state_manager.is_flushed`; the lean path sets it per result)."""
        self.state_manager.is_flushed = False

    # ---- RECORD messages ------------------------------------------------------------------------

    @cached_property
    def lean_records(self) -> bool:
        """Whether a RECORD can go straight to the writer: exactly what the SDK's own path
        (pop deselected fields, conform, map, RecordMessage) would write, because nothing is
        deselected, conformance is NONE and the only stream map is the identity."""
        maps = self.stream_maps
        return (
            isinstance(self.services.message_writer, FastSingerWriter)
            and self.TYPE_CONFORMANCE_LEVEL is TypeConformanceLevel.NONE
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and all(self.mask.values())
            and self.replication_method != "FULL_TABLE"  # no ACTIVATE_VERSION versions to stamp
        )

    @cached_property
    def _lean_write(self) -> t.Callable[[str, dict, t.Any], None] | None:
        return t.cast(FastSingerWriter, self.services.message_writer).write_record if self.lean_records else None

    def _write_record_message(self, record: dict) -> None:
        """Keeps the SDK's RECORD (its own path when not `lean_records`); exists so a row the SDK's
        loop hands over skips the per-row message objects when they would change nothing."""
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
                rows = t.cast("t.Iterable[dict]", self.get_records(current_context))  # report rows: no tuples
                counted = 0
                try:
                    if write_messages:
                        write = t.cast(FastSingerWriter, self.services.message_writer).write_record
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

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """No per-record bookmark: `commit_window` moves it once a whole window is out (the SDK's
        per-record progress markers would only say, wrongly, that progress is not resumable)."""

    # ---- BATCH messages -------------------------------------------------------------------------

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
            if self.lean_loop:
                for _ in self._sync_records(context, write_messages=False):
                    pass  # the lean loop writes the files itself and yields nothing
            else:
                selected_records(self, context, self._batches.write)
            leftover = self._batches.finish_window()  # rows of no window: cannot happen, but never lose them
            if leftover:
                self._write_batch_message(encoding=self._batch_encoding, manifest=leftover)
        finally:
            self._batches = None
        yield from ()

    def write_window_batch(self) -> None:
        """BATCH mode: the BATCH message of the files holding the window's last rows (before its STATE)."""
        if self._batches is not None:
            manifest = self._batches.finish_window()
            if manifest:
                self._write_batch_message(encoding=self._batch_encoding, manifest=manifest)


class TapSDKHooks(Tap):
    """The tap's overrides of private (or final) members of singer-sdk's Tap."""

    def check_config(self, config: dict) -> None:
        """The tap's own config checks, each naming its setting in one line (see TapCallReports)."""

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Keeps the SDK's JSON-schema validation; the tap's own checks run first (one line naming
        the setting), and the SDK's ConfigValidationError becomes one ConfigError line."""
        self.check_config(self._config)  # also when the SDK only warns (--discover): one line, not two
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise ConfigError("(schema)", "; ".join(exc.errors) or str(exc)) from None

    def _handle_termination(self, signum: int, frame: t.Any) -> None:
        """SIGTERM/SIGINT: unwind the sync like any error, so the buffered RECORDs and STATEs already
        written leave in order (a STATE written from here could overtake records being flushed), and
        exit non-zero: the SDK's exit 0 would make an interrupted run look complete."""
        raise TerminatedBySignal(signum)

    def check_selection(self) -> None:
        """Before the sync: the catalog selects only streams this config produces (see TapCallReports)."""

    def start_sync(self) -> None:
        """When the sync begins (report jobs start early: see TapCallReports)."""

    def end_sync(self) -> None:
        """After the sync, also when it failed (see TapCallReports)."""

    def sync_all(self) -> None:  # type: ignore[misc]  # final in the SDK
        """Keeps the SDK's sync of every stream, between the tap's `start_sync` and `end_sync` (which
        runs also when the sync fails: jobs stop, records written reach the target)."""
        self.check_selection()
        try:
            self.start_sync()
            super().sync_all()
        finally:
            self.end_sync()

    def run_connection_test(self) -> bool:  # type: ignore[misc]  # final in the SDK
        """`--test`: check each configured vendor cheaply, creating no report job (not the SDK's
        one-record sync, which starts every report job and stops at the first vendor's record)."""
        return self.check_connection()

    def check_connection(self) -> bool:
        """The tap's `--test` (see TapCallReports)."""
        raise NotImplementedError

    def load_streams(self) -> list[Stream]:  # type: ignore[misc]  # final in the SDK; see the comment
        # Keep discovery order (the SDK sorts by name): job-record streams must sync after
        # the row streams whose jobs they report.
        return list(self.discover_streams())
