"""Talkdesk Explore reports: one row stream per report type (its spec: ../report_types.py), its jobs
run by `TalkdeskReportJobs` (jobs.py), and `talkdesk_report_jobs`."""

from __future__ import annotations

import datetime as dt
import difflib
import typing as t
from functools import cached_property

from tap_callreports.conform import json_types
from tap_callreports.report_types import ORIGIN_FIELDS, REPORT_TYPES
from tap_callreports.report_types import report_type as report_type_spec
from tap_callreports.reportjobs.stream import ReportJobStream
from tap_callreports.rowkeys import ROW_KEY
from tap_callreports.rowshape import RowShaper, ValueForm
from tap_callreports.schemagrowth import SchemaGrowth, text_or_instant
from tap_callreports.schemas import load_schema
from tap_callreports.settings import TALKDESK_MAX_WINDOW_DAYS
from tap_callreports.talkdesk.client import TalkdeskStream
from tap_callreports.talkdesk.jobs import TalkdeskReportJobs, jobs_path

if t.TYPE_CHECKING:
    from singer_sdk import Tap

    from tap_callreports.settings import TalkdeskSettings


class TalkdeskReportStream(TalkdeskStream, ReportJobStream):
    """Rows of one Explore report type, keyed by the report's natural id (`REPORT_TYPES`): a row
    read again (lookback, a resumed window) replaces itself in the warehouse. The bookmark is the
    end of the last window whose rows were all emitted."""

    replication_key = "report_window_end"
    job_stream_name = "talkdesk_report_jobs"
    max_window = dt.timedelta(days=TALKDESK_MAX_WINDOW_DAYS)
    shaper_checks_fields = True
    origin_fields = frozenset(ORIGIN_FIELDS)

    def __init__(self, tap: Tap, report_type: str) -> None:
        self.report_type = report_type
        self.spec = report_type_spec(report_type)
        self.row_policy = self.spec.row_policy
        self.vendor_schema = (
            load_schema(f"talkdesk_{report_type}") if report_type in REPORT_TYPES else generic_schema(report_type)
        )
        schema = self.row_policy.output_schema(self.vendor_schema)
        schema["properties"].update(ORIGIN_FIELDS)
        super().__init__(tap, name=f"talkdesk_{report_type}", schema=schema, path=jobs_path(report_type))
        self.primary_keys = list(self.row_policy.key)
        if report_type not in REPORT_TYPES:
            close = difflib.get_close_matches(report_type, list(REPORT_TYPES), n=1, cutoff=0.8)
            (self.logger.warning if close else self.logger.info)(
                "%s: the tap declares no layout for report type '%s'%s; it is read under the generic rules "
                "(columns from the rows, instants UTC, keyed by _row_key: docs/talkdesk-report-rows.md)",
                self.name,
                report_type,
                f" (did you mean {close[0]}?)" if close else "",
            )
        # A CSV header is decided by its structure (streaming.not_the_report); the layout's names only
        # tell a one-column header from a line of status text.
        declared, renamed = self.vendor_schema.get("properties", {}), self.row_policy.renamed
        self.report_columns = frozenset([*declared, *renamed, *renamed.values()])

    @cached_property
    def jobs(self) -> TalkdeskReportJobs:
        return TalkdeskReportJobs(
            self.port, self.report_type, row_keys=lambda: self.row_keys_needed, may_authenticate=self.may_authenticate
        )

    @cached_property
    def shaper(self) -> RowShaper:
        return self.new_shaper(
            self.row_policy,
            self.vendor_schema["properties"],
            self.instant_columns,
            instants=self.instant_columns,
            text_instants=lambda: self.schema_growth.text_instants,
            forms=self.value_forms,
        )

    def value_forms(self) -> dict[str, ValueForm]:
        """The columns whose vendor form is converted: the layout's, unless the catalog gives the
        column a type the conversion does not make (the way out ValueFormNotKnown names)."""
        properties = self.target_schema().get("properties", {})
        return {
            column: form
            for column, form in self.row_policy.forms.items()
            if form.kind in json_types(properties.get(column, {"type": form.kind}))
        }

    @cached_property
    def schema_growth(self) -> SchemaGrowth:
        """Fields the layout does not list are typed the same in every file format (text_or_instant)."""
        return SchemaGrowth(
            self.schema, typer=text_or_instant, declared=lambda: self.target_schema().get("properties", {})
        )

    def instant_columns(self) -> tuple[str, ...]:
        """The layout's instants and any added column whose values are instants."""
        return self.row_policy.instants + tuple(self.schema_growth.instants)

    @property
    def row_keys_needed(self) -> bool:
        return ROW_KEY in (self.primary_keys or ())

    @property
    def windows_settings(self) -> TalkdeskSettings:
        return self.talkdesk

    @property
    def data_lag(self) -> dt.timedelta:
        return max(super().data_lag, self.spec.min_data_lag)

    def get_new_paginator(self) -> None:
        return None


def generic_schema(report_type: str) -> dict:
    """The schema of a report type the tap declares no layout for: its columns come from the rows."""
    return {
        "type": "object",
        "description": f"Rows of the Talkdesk Explore '{report_type}' report, read under the generic rules "
        "(docs/talkdesk-report-rows.md): every column from the rows, instants UTC, keyed by _row_key.",
        "additionalProperties": True,
        "properties": {},
    }
