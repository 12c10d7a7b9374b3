"""Talkdesk Explore report types as data: one `ReportType` per type, everything that differs
between them (key, renamed fields, instants, prefixes, lag). Adding a report type
is one entry in `REPORT_TYPES` plus its schema file (schemas/talkdesk_<type>.json); every type's
rows carry the same origin columns (`ORIGIN_FIELDS`)."""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field
from functools import cached_property

from tap_callreports.rowshape import ROW_KEY, RowPolicy

#: The columns the tap adds to every Talkdesk report row: the job and the window it came from.
ORIGIN_FIELDS = {
    "report_job_id": {"type": ["string"], "description": "The Talkdesk report job this row came from."},
    "report_window_start": {
        "type": ["string"],
        "format": "date-time",
        "description": "Start (inclusive) of the job's timespan.",
    },
    "report_window_end": {
        "type": ["string"],
        "format": "date-time",
        "description": "End (exclusive) of the job's timespan; the replication key.",
    },
}


@dataclass(frozen=True)
class ReportType:
    """What makes one Explore report type's rows warehouse rows (docs/talkdesk-report-rows.md).

    Keys: the fewest evidenced fields unique on the evidenced rows (tests/test_report_layouts.py
    proves each on the sandbox's layouts); types without evidence carry no id the tap has seen, so
    their key is the tap's `_row_key`. Instants: every time field of the layout; those the vendor
    writes as wall-clock text are in `local_instants` too (they keep a `_local` copy)."""

    key: tuple[str, ...]
    #: Old vendor names -> the column they fill (a payload version renamed them).
    renamed: t.Mapping[str, str] = field(default_factory=dict)
    instants: tuple[str, ...] = ()
    local_instants: tuple[str, ...] = ()
    #: Vendor name prefixes dropped from column names.
    strip_prefixes: tuple[str, ...] = ()
    #: The least time between now and a window's end, whatever talkdesk_data_lag_minutes says.
    min_data_lag: dt.timedelta = dt.timedelta(0)
    #: In talkdesk_report_types' default (the types real accounts are documented to send).
    read_by_default: bool = True

    @cached_property
    def row_policy(self) -> RowPolicy:
        """Any Talkdesk report may come as CSV: empty text is null in every format; and Talkdesk
        writes a missing value as null or as the text "None": null in every column, known or added."""
        return RowPolicy(
            key=self.key,
            renamed=self.renamed,
            instants=self.instants,
            local_instants=self.local_instants,
            strip_prefixes=self.strip_prefixes,
            empty_text_is_null=True,
            none_text_is_null=True,
        )


_CONTACT_TIMES = ("started_at", "answered_at", "connected_at", "finished_at")
_RING_TIMES = ("ring_started_at_time", "ring_finished_at_time")
_STUDIO_TIMES = ("timestamp", "flow_execution_finished_time")
_STATUS_TIMES = ("status_start_at", "status_end_at")
# Calls payloads requested on or after 2026-05-11 renamed four fields: one column each, whichever arrives.
CALLS_RENAMED = {"interaction_id": "call_id", "call_type": "type", "start_time": "start_at", "end_time": "end_at"}

#: Every report type the tap reads, by Talkdesk's name for it.
REPORT_TYPES: dict[str, ReportType] = {
    "calls": ReportType(key=("call_id",), renamed=CALLS_RENAMED, instants=("start_at", "end_at", "csat_survey_time")),
    "contacts": ReportType(key=("contact_id",), instants=_CONTACT_TIMES, local_instants=_CONTACT_TIMES),
    # One row per status change: a user enters one status at a given instant.
    "user_status": ReportType(key=("user_id", "status_start_at"), instants=_STATUS_TIMES, local_instants=_STATUS_TIMES),
    "ring_attempts": ReportType(key=("ring_attempt_id",), instants=_RING_TIMES, local_instants=_RING_TIMES),
    # One row per step of a flow execution, and no execution id: a step is its interaction's nth.
    "studio_flow_execution": ReportType(
        key=("interaction_id", "step_execution_order"),
        strip_prefixes=("studio_flow_executions_aggregated.",),
        instants=_STUDIO_TIMES,
        local_instants=_STUDIO_TIMES,
    ),
    "explore_calls": ReportType(key=(ROW_KEY,), renamed=CALLS_RENAMED, read_by_default=False),
    # Audit logs reach the report about an hour late.
    "audit_logs": ReportType(key=(ROW_KEY,), min_data_lag=dt.timedelta(hours=1), read_by_default=False),
    "messaging_contacts": ReportType(key=(ROW_KEY,), read_by_default=False),
}

#: Per report type, the warehouse shape of its rows.
ROW_POLICIES: dict[str, RowPolicy] = {name: spec.row_policy for name, spec in REPORT_TYPES.items()}
