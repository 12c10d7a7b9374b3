"""What the engine's parts take from a report stream: small protocols a `ReportJobStream`
satisfies, so the runner, the reader and the STATE journal never import the stream (the glue
between them and the SDK) and the engine's imports flow one way; and `VendorPort`, the small
object a vendor's job object takes instead of the stream."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

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


class Send(t.Protocol):
    """One request with the stream's auth, retries and error sorting (`CallReportsStream.send`):
    `creates_job`, a 429 is AccountFull (the runner waits for a slot)."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        json: t.Any = None,
        allow_redirects: bool = True,
        creates_job: bool = False,
    ) -> requests.Response: ...


@dataclass(frozen=True)
class VendorPort:
    """What a vendor's job object (`VendorJobs`) takes from its report stream, built once by the
    stream (`ReportJobStream.port`): plain values and bound callables, never the stream. What one
    vendor needs besides (its report type, its key) its stream hands its job object as arguments."""

    #: The stream's name, for log and error lines.
    name: str
    settings: Settings
    logger: logging.Logger
    #: The stream's HTTP: auth, retries, error sorting.
    send: Send
    #: A partition's state (the SDK's `get_context_state`): a vendor keeps its own keys there.
    state: t.Callable[[Context | None], dict]
    #: A result's download, its body left on the wire (`WindowReader.open_download`).
    download: t.Callable[[str], requests.Response]
    #: A result's body once the answer is the report (`WindowReader.open_report`).
    open_report: t.Callable[[JobResult, str, t.Callable[[], requests.Response]], requests.Response]
    #: A done job whose file is missing asked once (`WindowReader.ask_job`).
    ask_job: t.Callable[[Context | None, JobResult, str], None]
    #: The stream's row shaper (made when first asked: it reads the catalog's schema).
    shaper: t.Callable[[], RowShaper]
