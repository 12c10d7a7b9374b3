"""One window's rows, exactly once: from a result proved complete, downloaded again when the
connection breaks, its job created again when it proves incomplete (rows already out are known
by position, then by digest), and none of them out before the window's keys are proven (the
stream holds the window's lines until then: `ReportJobStream.hold_window`)."""

from __future__ import annotations

import functools
import threading
import time
import typing as t
from http import HTTPStatus
from urllib.parse import urlsplit

import requests

from tap_callreports.completeness import IncompleteResult
from tap_callreports.errors import MalformedBodyError, StreamError
from tap_callreports.ratelimit import Backoff
from tap_callreports.reportjobs.job import JobStatus
from tap_callreports.responses import vendor_error_details
from tap_callreports.rowkeys import KeyGuard
from tap_callreports.streaming import BodyInterrupted, BodyMalformed, not_the_report, peek_body
from tap_callreports.timeutil import iso_z, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.engine import OrderedJobs
    from tap_callreports.reportjobs.job import JobResult
    from tap_callreports.reportjobs.ports import ReadStream
    from tap_callreports.reportjobs.records import JobRecords
    from tap_callreports.reportjobs.runner import JobRunner
    from tap_callreports.reportjobs.state import UnsavedJobs

#: Times a result that proved incomplete is downloaded again before its job is created again.
INCOMPLETE_REFETCHES = 1
#: Redirects followed by hand on the way to a result.
MAX_REDIRECTS = 5
KEY_OVERRIDE = (
    "give the stream a key its rows do carry in the catalog: key_properties, or the "
    "table-key-properties metadata (Meltano: the extractor's `metadata` extra, "
    "{stream}: {{table-key-properties: [...]}}), and run again"
)


class JobVanished(IncompleteResult):
    """A done job's file is gone and the job ended or is gone too (`WindowReader.ask_job`): it is
    created again at once, without asking for the file again."""


class WindowRows:
    """The row accounting of one window: rows emitted (from every result read for it), rows of the
    result being read handled (by position: a broken download skips them), the result's keys, and
    the schema grown for fields it did not know."""

    def __init__(self, stream: ReadStream, unsaved: UnsavedJobs) -> None:
        self.stream = stream
        self.unsaved = unsaved
        self.key = tuple(stream.primary_keys or ())
        self.known = None if stream.shaper_checks_fields else stream.schema_growth.known
        self.emitted = 0
        self.handled = 0
        self.keys = KeyGuard(self.key)

    def restart(self) -> None:
        """The window is read again from its first row (what it held was dropped)."""
        self.emitted = self.handled = 0

    def of(
        self, rows: t.Iterable[dict], keyless: t.Callable[[dict, JobResult], Exception], result: JobResult
    ) -> t.Iterator[dict]:
        """`rows` (the result's, from `handled` on), counted, their keys noted, none out keyless."""
        if self.handled == 0:
            self.keys = KeyGuard(self.key)  # the rows of the result being read
        add_key, journal, stream = self.keys.add, self.unsaved, self.stream
        known, growth = self.known, stream.schema_growth
        first = handled = self.handled
        try:
            for row in rows:
                handled += 1
                if journal.pending:
                    journal.record()
                if known is not None and not row.keys() <= known:  # a C-level subset test
                    stream.grow_schema(row)
                    known = self.known = growth.known
                if add_key(row):
                    raise keyless(row, result)  # before the row leaves: none goes out keyless
                yield row
        finally:
            self.emitted += handled - first
            self.handled = handled


class WindowReader:
    """Reads the windows of one stream (`read`), and opens its results' bodies (`open_report`)."""

    def __init__(self, stream: ReadStream, runner: JobRunner, unsaved: UnsavedJobs, job_records: JobRecords) -> None:
        self.stream = stream
        self.runner = runner
        self.unsaved = unsaved
        self.job_records = job_records

    def keyless(self, row: dict, result: JobResult) -> StreamError:
        stream = self.stream
        carried = sorted(
            name for name, value in row.items() if value not in (None, "") and name not in stream.origin_fields
        )
        shown = ", ".join(carried[:12]) + (", ..." if len(carried) > 12 else "")
        return StreamError(
            stream.name,
            f"a row of {stream.jobs.describe(result)} has no value for the key ({', '.join(stream.primary_keys)}): "
            f"the report's layout differs from what the tap expects (the row carries {shown}). Nothing of this "
            f"window was emitted and no bookmark moved past {iso_z(result.window.start)}; "
            + KEY_OVERRIDE.format(stream=stream.name),
        )

    def check_keys(self, keys: KeyGuard, result: JobResult) -> None:
        """The window's keys are proven before any of its rows leaves (they are held until then):
        every row has its key, and rows that share a key are identical (a warehouse merging on the
        key loses nothing). Rows that share a key with different content would be merged into one
        by the warehouse: the stream stops with nothing of the window emitted. `KeyGuard` compares
        the rows' content as they were read, so this holds whatever the rows became afterwards (a
        stream map) and wherever they are held (BATCH files on any storage)."""
        stream = self.stream
        conflicting = keys.conflicts() if not keys.missing else 0
        if keys.missing or conflicting:
            raise StreamError(
                stream.name,
                f"the result of {stream.jobs.describe(result)} has {keys.missing} row(s) without the key "
                f"({', '.join(stream.primary_keys)}) and {conflicting} row(s) repeating another row's key with "
                f"other content; a warehouse would drop or merge them, so nothing of this window was emitted and "
                f"no bookmark moved past {iso_z(result.window.start)}; " + KEY_OVERRIDE.format(stream=stream.name),
            )

    def ask_job(self, context: Context | None, result: JobResult, problem: str) -> None:
        """A done job's file is missing (`problem`): ask the job once. A job that ended (deleted,
        failed, canceled) or that the vendor no longer has raises JobVanished; one still done or
        running returns (its file may just not be there yet)."""
        status = self.stream.jobs.poll(context, result)
        if isinstance(status, JobStatus) and status.ended:
            raise JobVanished(f"{problem}, and the job is now '{status.word}'", 0)

    def read(
        self,
        context: Context | None,
        result: JobResult,
        stop: threading.Event,
        ahead: OrderedJobs[JobResult] | None = None,
    ) -> t.Generator[dict, None, int]:
        """Yield every row of one window exactly once, from a result proved complete.

        A connection broken mid-body downloads the same result again and skips, by position, the
        rows already handled (`_after_break`). A result that proves incomplete is downloaded again
        (`_download_again`), then its job is created again (`_create_again`); each time the window
        is read again from its first row, and what it held so far is dropped (none of it has left:
        `ReportJobStream.restart_window`), so a row the vendor changed in between goes out once, as
        it is now. A job whose file is gone with the job (JobVanished) is created again at once,
        and the results `ahead` in hand are checked for the same on worker threads.
        """
        stream = self.stream
        rows = WindowRows(stream, self.unsaved)
        breaks = downloads = 0
        # time_extracted: the rows of one result are extracted by one download.
        stream.extracted_at = utc_now()
        stream.mark_state_unflushed()  # what the SDK's record path sets per record
        while True:
            try:
                yield from rows.of(stream.jobs.read(context, result, skip=rows.handled), self.keyless, result)
                self.check_keys(rows.keys, result)
                return rows.emitted
            except BodyInterrupted as exc:
                breaks += 1
                self._after_break(result, exc, breaks, rows.handled)
            except BodyMalformed as exc:
                raise MalformedBodyError(
                    stream.name,
                    f"the result of job {result.job_id} ({result.window}) at {_path(result.location)} is "
                    f"malformed: {exc}; nothing of this window was emitted and the bookmark stays at its start; "
                    "run again, and report it to the vendor if it persists",
                ) from None
            except IncompleteResult as exc:
                downloads += 1
                # Nothing of the window has left (its rows are held until proven): what it held is
                # dropped, and the window is read again from its first row.
                stream.restart_window()
                rows.restart()
                if self._download_again(result, exc, downloads):
                    continue
                result = self._create_again(context, result, exc, stop, ahead)
                downloads = 0
                stream.extracted_at = utc_now()

    def _after_break(self, result: JobResult, exc: BodyInterrupted, breaks: int, handled: int) -> None:
        """The re-download policy: a download broken mid-body (the `breaks`-th time) is downloaded
        again after the retry policy's backoff, up to max_retries times, then the stream stops."""
        stream = self.stream
        if breaks > stream.settings.max_retries:
            raise StreamError(
                stream.name,
                f"the download of job {result.job_id} ({result.window}) broke "
                f"{breaks} times, last after {exc.rows_read} rows; no bookmark moved past "
                f"{iso_z(result.window.start)}; run again later",
            ) from None
        wait = stream.retry_policy.wait_seconds(None, breaks)
        stream.logger.warning(
            "%s: download of job %s broke after %d rows; downloading again in %.1fs, "
            "skipping the %d rows already handled",
            stream.name,
            result.job_id,
            exc.rows_read,
            wait,
            handled,
        )
        time.sleep(wait)

    def _download_again(self, result: JobResult, exc: IncompleteResult, downloads: int) -> bool:
        """The re-fetch policy: whether a result that proved incomplete (the `downloads`-th time)
        is downloaded again, after a backoff (INCOMPLETE_REFETCHES times, never a vanished job's)."""
        if downloads > INCOMPLETE_REFETCHES or isinstance(exc, JobVanished):
            return False
        stream = self.stream
        wait = stream.retry_policy.wait_seconds(None, downloads)
        stream.logger.warning(
            "%s: the result of %s is incomplete: %s (%s); downloading it again in %.1fs",
            stream.name,
            stream.jobs.describe(result),
            exc.problem,
            exc.counts,
            wait,
        )
        time.sleep(wait)
        return True

    def _create_again(
        self,
        context: Context | None,
        result: JobResult,
        exc: IncompleteResult,
        stop: threading.Event,
        ahead: OrderedJobs[JobResult] | None,
    ) -> JobResult:
        """The re-create policy: the window's job, created again (up to job_max_attempts; then the
        stream stops with the bookmark unmoved). The old job is recorded and deleted; a vanished
        job's is created at once, before every waiting job, and the results `ahead` are checked."""
        stream = self.stream
        window = result.window
        attempts = stream.settings.jobs.max_attempts
        vanished = isinstance(exc, JobVanished)
        if result.attempt >= attempts:
            # Out of attempts: the bookmark stays; a later run reads the window again.
            raise StreamError(
                stream.name,
                f"the result of {stream.jobs.describe(result)} stayed incomplete: {exc.problem} "
                f"({exc.counts}) after {result.attempt} job(s); no bookmark moved past "
                f"{iso_z(window.start)}; run again later, and report it to the vendor if it persists",
            ) from None
        if vanished:
            stream.logger.info(
                "%s: %s is gone: %s; creating it again now (attempt %d of %d)",
                stream.name,
                stream.jobs.describe(result),
                exc.problem,
                result.attempt + 1,
                attempts,
            )
            if ahead is not None and not self.runner.check_files:
                # What took this job's file likely took others: check the results in hand
                # now, and each job's file once it is done, on worker threads.
                self.runner.check_files = True
                ahead.recheck(self.runner.checked(context))
        else:
            stream.logger.warning(
                "%s: the result of %s is incomplete: %s (%s); creating the job again (attempt %d of %d)",
                stream.name,
                stream.jobs.describe(result),
                exc.problem,
                exc.counts,
                result.attempt + 1,
                attempts,
            )
        self.job_records.add(
            stream.job_stream_name, stream.jobs.record(result, 0, "gone" if vanished else "incomplete")
        )
        stream.jobs.delete(result)
        again = functools.partial(
            self.runner.run_loudly, context, window, first_attempt=result.attempt + 1
        )  # (stop) -> the window's job, created again
        # A vanished job: in the vendor's slots, before every waiting job (others are too).
        created = ahead.run_now(again) if vanished and ahead is not None else again(stop)
        self.unsaved.record()
        return created

    def open_download(self, url: str) -> requests.Response:
        """GET a result with the body left on the wire. A 3xx is followed by hand (requests does
        not follow 300): to a signed URL or any other host without the Authorization header
        (`send` sends credentials only to the API host)."""
        stream = self.stream
        response = stream.send("GET", url, stream=True, allow_redirects=False)
        hops = 0
        while response.is_redirect and response.headers.get("Location") and hops < MAX_REDIRECTS:
            location = requests.compat.urljoin(url, response.headers["Location"])
            response.close()
            url, hops = location, hops + 1
            response = stream.send("GET", url, stream=True, allow_redirects=False)
        if response.is_redirect:
            response.close()
            raise StreamError(
                stream.name,
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
        stream = self.stream
        deadline = time.monotonic() + stream.settings.jobs.timeout_seconds
        tries = 0
        while True:
            response = fetch()
            asked = Backoff.asked_by(response)
            not_yet = response.status_code == HTTPStatus.ACCEPTED or asked is not None
            problem: str | None
            if not_yet:
                problem = (
                    f"{response.status_code} {response.reason} with Retry-After "
                    f"{response.headers.get('Retry-After', '(none)')} ({vendor_error_details(response) or 'no body'})"
                )
            else:
                head, response.raw = peek_body(response.raw)
                problem = not_the_report(fmt, response.headers.get("Content-Type", ""), head, stream.report_columns)
                if problem is None:
                    return response
            response.close()
            tries += 1
            wait = asked.capped if asked is not None else stream.retry_policy.wait_seconds(None, tries)
            if time.monotonic() + wait > deadline or (not not_yet and tries > stream.settings.max_retries):
                raise IncompleteResult(f"{_path(response.url)} answered {problem}, not the report, {tries} time(s)", 0)
            stream.logger.warning(
                "%s: %s answered %s, not the report; asking again in %.1fs",
                stream.name,
                _path(response.url),
                problem,
                wait,
            )
            time.sleep(wait)


def _path(url: str) -> str:
    return urlsplit(url).path
