"""What the engine's parts take from a report stream: small protocols a `ReportJobStream`
satisfies, so the runner, the reader and the STATE journal never import the stream (the glue
between them and the SDK) and the engine's imports flow one way."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    import datetime as dt
    import logging

    import requests
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.job import JobResult
    from tap_callreports.reportjobs.vendor import VendorJobs
    from tap_callreports.retry import RetryPolicy
    from tap_callreports.rowshape import RowShaper
    from tap_callreports.schemagrowth import SchemaGrowth
    from tap_callreports.settings import Settings


class ContextState(t.Protocol):
    """Where a stream keeps a partition's state (the SDK's `get_context_state`)."""

    def get_context_state(self, context: Context | None) -> dict: ...


class JobStream(ContextState, t.Protocol):
    """What the runner takes from a stream: its name, vendor, settings, logger and job API."""

    @property
    def name(self) -> str: ...

    @property
    def vendor(self) -> str: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def logger(self) -> logging.Logger: ...

    @property
    def jobs(self) -> VendorJobs: ...

    @property
    def job_stream_name(self) -> str: ...


class ReadStream(JobStream, t.Protocol):
    """What the reader takes from a stream besides: its HTTP, its key, the rows it holds for the
    window being read, and its schema's growth."""

    extracted_at: dt.datetime | None

    @property
    def primary_keys(self) -> t.Sequence[str]: ...

    @property
    def origin_fields(self) -> frozenset[str]: ...

    @property
    def shaper_checks_fields(self) -> bool: ...

    @property
    def report_columns(self) -> t.Collection[str]: ...

    @property
    def retry_policy(self) -> RetryPolicy: ...

    @property
    def schema_growth(self) -> SchemaGrowth: ...

    def grow_schema(self, row: dict) -> None: ...

    def mark_state_unflushed(self) -> None: ...

    def restart_window(self) -> None: ...

    def send(
        self, method: str, url: str, *, stream: bool = False, allow_redirects: bool = True
    ) -> requests.Response: ...


class JobAsker(t.Protocol):
    """The reader's check of a done job whose file is missing (`WindowReader.ask_job`)."""

    def ask_job(self, context: Context | None, result: JobResult, problem: str) -> None: ...


class VendorStream(ContextState, t.Protocol):
    """What a vendor's job object (`VendorJobs`) takes from its report stream: its name, settings
    and logger, its HTTP (auth, retries, error sorting), its partition state, and the reader's
    downloads and row shaper. Each vendor's object lists its few extras in its own protocol
    (talkdesk/jobs.py `TalkdeskJobsStream`, myreports/requests.py `MyReportsRequestsStream`)."""

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def logger(self) -> logging.Logger: ...

    @property
    def reader(self) -> JobAsker: ...

    @property
    def shaper(self) -> RowShaper: ...

    def send(
        self,
        method: str,
        url: str,
        *,
        json: t.Any = None,
        allow_redirects: bool = True,
        creates_job: bool = False,
    ) -> requests.Response: ...

    def open_download(self, url: str) -> requests.Response: ...

    def open_report(
        self, result: JobResult, fmt: str, fetch: t.Callable[[], requests.Response]
    ) -> requests.Response: ...
