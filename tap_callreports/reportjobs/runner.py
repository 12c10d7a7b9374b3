"""One job's life, for one report stream: create it (or resume one an earlier run recorded), poll
it until its rows can be read, and create it again when it ends without them."""

from __future__ import annotations

import threading
import time
import typing as t

from tap_callreports.errors import CallReportsError, ReportJobFailed
from tap_callreports.reportjobs.job import JobResult, JobTimedOut, Window
from tap_callreports.reportjobs.state import context_key
from tap_callreports.timeutil import iso_z

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.engine import ReportJobEngine
    from tap_callreports.reportjobs.ports import JobStream
    from tap_callreports.reportjobs.records import JobRecords
    from tap_callreports.reportjobs.state import UnsavedJobs


class JobRunner:
    """Runs the jobs of one stream through the shared engine (`run` is called on worker threads)."""

    def __init__(
        self, stream: JobStream, engine: ReportJobEngine, unsaved: UnsavedJobs, job_records: JobRecords
    ) -> None:
        self.stream = stream
        self.engine = engine
        self.unsaved = unsaved
        self.job_records = job_records
        #: Per partition (`context_key`): the recorded jobs the plan reuses, by window.
        self.recorded: dict[str, dict[Window, dict]] = {}
        #: Set once a done job's file was found gone with its job: from then on each job's file is
        #: checked when the job is done (`VendorJobs.file_gone`), on the worker thread.
        self.check_files = False

    def for_context(self, context: Context | None) -> t.Callable[[Window, threading.Event], JobResult]:
        """What the engine runs for each window of this partition (a recorded job is used once)."""
        recorded = self.recorded.setdefault(context_key(context), {})
        return lambda window, stop: self.run_loudly(context, window, stop, recorded=recorded.pop(window, None))

    def run_loudly(self, context: Context | None, window: Window, stop: threading.Event, **how: t.Any) -> JobResult:
        try:
            return self.run(context, window, stop, **how)
        except JobTimedOut as exc:
            # Its text starts with the stream's name; the job stays in the STATE for the next run.
            raise CallReportsError(
                f"{exc}; the job stays recorded in the STATE, so the next run polls it instead of creating it again"
            ) from None

    def checked(self, context: Context | None) -> t.Callable[[JobResult, threading.Event], JobResult]:
        """What re-checks a result in hand (`OrderedJobs.recheck`): a done job whose file is gone
        with the job is created again (within job_max_attempts)."""

        def check(result: JobResult, stop: threading.Event) -> JobResult:
            if result.attempt >= self.stream.settings.jobs.max_attempts:
                return result  # the reader finds it gone and stops loudly
            ended = self.stream.jobs.file_gone(context, result)
            if ended is None:
                return result
            self.job_records.add(self.stream.job_stream_name, self.stream.jobs.record(result, 0, ended))
            self.stream.logger.info(
                "%s: %s ended '%s'; creating it again (attempt %d)",
                self.stream.name,
                self.stream.jobs.describe(result),
                ended,
                result.attempt + 1,
            )
            return self.run_loudly(context, result.window, stop, first_attempt=result.attempt + 1)

        return check

    def resume(self, context: Context | None, window: Window, record: dict) -> JobResult:
        """A job an earlier run created and recorded: polled again, not created again."""
        return JobResult(
            job_id=str(record["job_id"]),
            window=window,
            attempt=int(record.get("attempt") or 1),
            created_at=record.get("created_at"),
            timezone=record.get("timezone"),
            requested_start=record.get("requested_start"),
            vendor=self.stream.jobs.recorded_details(context),
        )

    def create(self, context: Context | None, window: Window, attempt: int, stop: threading.Event) -> JobResult:
        """The runner takes the slot: the vendor's create, asked again through the engine while the
        account is full (AccountFull) until a slot frees or `stop` is set."""
        jobs = self.stream.jobs
        return self.engine.create(
            self.stream.vendor,
            lambda: jobs.create(context, window, attempt),
            f"{self.stream.name}: {jobs.creation(context, window)}",
            stop,
        )

    def run(
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
        stream = self.stream
        attempts = stream.settings.jobs.max_attempts
        attempt = first_attempt
        result: JobResult | None = None
        if recorded is not None:
            result = self.resume(context, window, recorded)
            stream.logger.info("%s: resuming %s, recorded by an earlier run", stream.name, stream.jobs.describe(result))
        since: float | None = None  # when the vendor answered the creation: the polls count from it
        while True:
            if result is None:
                result = self.create(context, window, attempt, stop)
                since = time.monotonic()
                stream.logger.info("%s: created %s (attempt %d)", stream.name, stream.jobs.describe(result), attempt)
                self.unsaved.created(stream, context, result)
            current = result
            what = f"{stream.name}: {stream.jobs.describe(current)}"
            status = self.engine.wait_for(lambda: stream.jobs.poll(context, current), what, stop, since)  # noqa: B023 - called before the loop moves on
            ended: str | None = status.word
            if status.done:
                result.location = str(status.location)
                stream.logger.info("%s: job %s done after %d polls", stream.name, result.job_id, result.polls)
                ended = stream.jobs.file_gone(context, result) if self.check_files else None
                if ended is None:
                    return result
            self.job_records.add(stream.job_stream_name, stream.jobs.record(result, 0, str(ended)))
            if attempt >= attempts:
                raise ReportJobFailed(
                    stream.name,
                    f"{stream.jobs.describe(result)} ended '{ended}' ({attempts} attempts); the bookmark "
                    f"stays at {iso_z(window.start)}, the end of the last complete window; run again later, or check "
                    "the report at the vendor",
                )
            (stream.logger.info if status.done else stream.logger.warning)(
                "%s: %s ended '%s'; creating it again (attempt %d of %d)",
                stream.name,
                stream.jobs.describe(result),
                ended,
                attempt + 1,
                attempts,
            )
            attempt += 1
            result = None
