"""What a vendor's report-job API must offer the engine (`VendorJobs`), as an object the report
stream holds (like the repository of Airbyte's async-job CDK), and what every vendor does alike
(a job the vendor no longer has).

A vendor implements `VendorJobs` once (talkdesk/jobs.py `TalkdeskReportJobs`, myreports/requests.py
`MyReportsRequests`); the stream creates it with its `VendorPort` (reportjobs/ports.py: name,
settings, logger, HTTP, partition state, the reader's downloads, the row shaper) and the vendor's
own few values, never with itself, and the engine calls it: create on a worker thread, poll on
a worker thread until it answers, read on the main thread, delete when the tap will not read the
job, describe for every log and error line, record for the job-record stream, recorded_details
for a job resumed from the STATE. What a job
is (its ids, what polls and reads learnt) is a `JobResult`; what only one vendor keeps about a job
is its `vendor` details, a small dataclass of that vendor's."""

from __future__ import annotations

import typing as t
from http import HTTPStatus

from tap_callreports.errors import VendorRefused
from tap_callreports.ratelimit import Backoff
from tap_callreports.reportjobs.job import JobResult, JobStatus

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.job import Window

T = t.TypeVar("T")


class VendorJobs(t.Protocol):
    """One vendor's job API for one report stream."""

    def create(self, context: Context | None, window: Window, attempt: int) -> JobResult:
        """Create one job for `window` at the vendor (any thread), or raise AccountFull when the
        account holds as many jobs as it allows: the runner waits for a slot through the engine and
        calls again. `attempt` counts from 1."""
        ...

    def creation(self, context: Context | None, window: Window) -> str:
        """What a create for `window` waits for, in the engine's lines (the account at its job limit)."""
        ...

    def poll(self, context: Context | None, result: JobResult) -> JobStatus | Backoff | None:
        """Ask the vendor once how the job is (any thread): where its rows are once done, why it
        ended (failed, canceled, gone: `gone`); while it runs, the wait its answer asked for
        (`Backoff.asked_by`: its Retry-After), else None."""
        ...

    def read(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        """Download the result and yield its rows shaped for the warehouse, skipping the first
        `skip` (main thread). After the last row it checks completeness
        (`completeness.verify_counts`) and keeps the verdict on the result, or raises
        IncompleteResult (or SplitWindow before any row, when the window must be read in parts)."""
        ...

    def file_gone(self, context: Context | None, result: JobResult) -> str | None:
        """Whether a done job's file is gone with the job (any thread; asked only once a run has
        met such a job): why the job ended, or None when the file is there or cannot be told."""
        ...

    def delete(self, result: JobResult) -> None:
        """Free a job the tap will not read at the vendor, where its API allows (best effort)."""
        ...

    def describe(self, result: JobResult) -> str:
        """The job in words for log and error lines: 'report job <id> for calls <window>'."""
        ...

    def record(self, result: JobResult, rows: int, outcome: str) -> dict:
        """The job-record stream's record of the job (`outcome`: emitted, split, incomplete, or the
        word the job ended with), `rows` rows read from it."""
        ...

    def recorded_details(self, context: Context | None) -> t.Any:
        """The vendor's own details (`JobResult.vendor`) of a job an earlier run recorded in the
        partition `context`'s STATE, before its first poll."""
        ...


class WindowSettings(t.Protocol):
    """A vendor's settings the planner reads (each vendor's settings dataclass has them)."""

    @property
    def window_days(self) -> int: ...

    @property
    def lookback_minutes(self) -> int: ...

    @property
    def data_lag_minutes(self) -> int: ...


D = t.TypeVar("D")


def vendor_details(result: JobResult, kind: type[D]) -> D:
    """The vendor's own details of a job (`JobResult.vendor`), as the vendor's dataclass."""
    details = result.vendor
    assert isinstance(details, kind)
    return details


def unless_gone(ask: t.Callable[[], T]) -> T | None:
    """The vendor's answer to a poll, or None when it answers 404: it no longer has the job."""
    try:
        return ask()
    except VendorRefused as exc:
        if exc.status == HTTPStatus.NOT_FOUND:
            return None
        raise


def gone(vendor: str, job: str) -> JobStatus:
    """A job the vendor no longer has (`unless_gone` said so): ended, so it is created again."""
    return JobStatus.ended_as(f"gone (404: {vendor} no longer has the {job})")
