"""What a stream is handed for a run: the services every stream shares, built once by the tap
(`TapCallReports.job_services`) and taken by each stream when it is made (`CallReportsStream`), so
no stream reaches into the tap for them while it runs."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import TapState

    from tap_callreports.reportjobs.engine import ReportJobEngine
    from tap_callreports.reportjobs.records import JobRecords
    from tap_callreports.reportjobs.state import UnsavedJobs


@dataclass(frozen=True)
class JobServices:
    """Built by `TapCallReports.job_services`."""

    #: Jobs at once per vendor, polling, results in window order.
    engine: ReportJobEngine
    #: Jobs created on worker threads, until the main thread records them in a STATE.
    unsaved: UnsavedJobs
    #: Records of the job-record streams (talkdesk_report_jobs, myreports_requests).
    job_records: JobRecords
    #: Where RECORD messages go (the tap's writer: the lean record path writes to it directly).
    message_writer: object
    #: Writes a STATE message of the given state (a window committed): the tap's state writer.
    write_state: t.Callable[[TapState], None]
