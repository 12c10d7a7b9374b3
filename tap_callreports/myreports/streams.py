"""MyReports: `myreports_call_rows` (rows of report results, one partition per report id), its
requests run by `MyReportsRequests` (requests.py), and `myreports_requests`."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_callreports.myreports.client import MyReportsStream
from tap_callreports.myreports.requests import MyReportsRequests
from tap_callreports.reportjobs.job import Window
from tap_callreports.reportjobs.stream import ReportJobStream
from tap_callreports.rowshape import RowPolicy, RowShaper
from tap_callreports.schemas import load_schema

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.settings import MyReportsSettings

#: The warehouse shape of call rows: snake_case columns (docId -> doc_id), `start` (local wall time in
#: the report's time zone) kept as start_local beside start_utc.
ROW_POLICY = RowPolicy(key=("doc_id",), renamed={"start": "start_local"})  # start_utc: converted before


class MyReportsCallRowsStream(MyReportsStream, ReportJobStream):
    """Call rows, one partition (and bookmark) per report id."""

    name = "myreports_call_rows"
    path = "/v1.0/workspaces/{workspace_id}/reports/{report_id}/requests"  # a label for request metrics
    primary_keys = ROW_POLICY.key
    replication_key = "start_utc"
    job_stream_name = "myreports_requests"
    shaper_checks_fields = True
    origin_fields = frozenset({"start_utc", "report_id", "request_id"})

    def __init__(self, tap: t.Any) -> None:
        super().__init__(tap, schema=ROW_POLICY.output_schema(load_schema("myreports_call_rows")))

    @cached_property
    def shaper(self) -> RowShaper:
        # start_utc is the tap's own UTC text (LocalTimeConverter), set before the row is shaped.
        return self.new_shaper(ROW_POLICY, load_schema("myreports_call_rows")["properties"], lambda: ("start_utc",))

    @property
    def partitions(self) -> list[dict] | None:
        return [{"report_id": report_id} for report_id in self.myreports.report_ids] or None

    @property
    def windows_settings(self) -> MyReportsSettings:
        return self.myreports

    def get_new_paginator(self) -> None:
        return None

    def describe_context(self, context: Context | None) -> str:
        return f" [report {context['report_id']}]" if context else ""

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        if not context:
            return  # no report ids configured
        yield from super().extract_records(context)

    # ---- overlapping requests: a call that straddles a window's end is in the next request ------------
    # (the state is the vendor's: myreports/requests.py `Overlap`)

    def plan(self, context: Context | None) -> list[Window]:
        windows = super().plan(context)
        if windows:
            self.jobs.overlap.run_starts[(context or {}).get("report_id")] = windows[0].start
        return windows

    def restart_window(self) -> None:
        super().restart_window()
        self.jobs.overlap.restart_window()

    def commit_window(self, context: Context | None, window: Window) -> None:
        super().commit_window(context, window)
        self.jobs.overlap.commit_window((context or {}).get("report_id"), window, self.lookback)

    @cached_property
    def jobs(self) -> MyReportsRequests:
        return MyReportsRequests(self.port, keys=lambda: self.primary_keys, columns=lambda: self.schema_growth.known)
