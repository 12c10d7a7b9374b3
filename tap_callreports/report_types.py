"""Talkdesk Explore report types as data: one `ReportType` per type, everything that differs
between them (key, renamed fields, instants, prefixes, lag). Adding a report type
is one entry in `REPORT_TYPES` plus its schema file (schemas/talkdesk_<type>.json); every type's
rows carry the same origin columns (`ORIGIN_FIELDS`). Declared data in the base layer, below the
settings that name the types (settings_schema.py: talkdesk_report_types' values and default), so
they import nothing of the talkdesk package; it imports only rowshape."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass, field
from functools import cached_property

from tap_callreports.rowshape import (
    DAY_FRACTION,
    DHMS_TEXT,
    FLAG,
    JSON_LIST,
    ROW_KEY,
    RowPolicy,
    ValueForm,
    seconds_column,
    sql_name,
)

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
    #: Vendor fields that are flags written as text (Yes/No, TRUE/FALSE, YES/NO): booleans.
    flags: tuple[str, ...] = ()
    #: Vendor fields that are durations, and their form (None: whole seconds already). Each lands
    #: as seconds in a column whose name says so (`seconds_column`).
    durations: t.Mapping[str, ValueForm | None] = field(default_factory=dict)
    #: Vendor fields that are lists (a JSON array, or text holding one): arrays of text.
    lists: tuple[str, ...] = ()

    @cached_property
    def row_policy(self) -> RowPolicy:
        """Any Talkdesk report may come as CSV: empty text is null in every format; and Talkdesk
        writes a missing value as null or as the text "None": null in every column, known or added.
        Durations move to their `_seconds` column; flags, durations and lists are converted."""
        seconds = {vendor: seconds_column(vendor, self.strip_prefixes) for vendor in self.durations}
        forms: dict[str, ValueForm] = {sql_name(name, self.strip_prefixes): FLAG for name in self.flags}
        forms.update({sql_name(name, self.strip_prefixes): JSON_LIST for name in self.lists})
        forms.update({seconds[vendor]: form for vendor, form in self.durations.items() if form is not None})
        return RowPolicy(
            key=self.key,
            forms=forms,
            renamed={**self.renamed, **seconds},
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
_EXPLORE_TIMES = ("start_time", "end_time", "csat_survey_time")
_MESSAGING_TIMES = (
    "contact_assigned_at",
    "contact_started_at",
    "contact_finished_at",
    "interaction_started_at",
    "interaction_finished_at",
)
# Calls payloads requested on or after 2026-05-11 renamed four fields: one column each, whichever arrives.
CALLS_RENAMED = {"interaction_id": "call_id", "call_type": "type", "start_time": "start_at", "end_time": "end_at"}


def _whole_seconds(*names: str) -> dict[str, ValueForm | None]:
    return dict.fromkeys(names)


#: Every report type the tap reads, by Talkdesk's name for it. Layouts: Talkdesk's own report pages
#: where they give one (../shared/api-docs/talkdesk-explore-official.md), else the community
#: evidence (contacts, ring_attempts); docs/talkdesk-report-rows.md says what was decided where.
REPORT_TYPES: dict[str, ReportType] = {
    "calls": ReportType(
        key=("call_id",),
        renamed=CALLS_RENAMED,
        instants=("start_at", "end_at", "csat_survey_time", "timestamp_custom_field_n1"),
        flags=("agent_disconnected",),
        durations=_whole_seconds(
            "total_time", "talk_time", "wait_time", "hold_time", "abandon_time", "total_ringing_time"
        ),
    ),
    "contacts": ReportType(
        key=("contact_id",),
        instants=_CONTACT_TIMES,
        local_instants=_CONTACT_TIMES,
        flags=("inside_business_hours", "inside_service_level", "within_service_level_threshold", "transfer_out"),
        durations=_whole_seconds(
            "wait_time",
            "time_to_missed",
            "abandon_time",
            "short_abandon_time",
            "time_to_voicemail",
            "ring_time",
            "connect_time",
            "talk_time",
            "hard_hold_time",
            "soft_hold_time",
            "hold_time",
            "after_call_work_time",
            "duration",
            "handle_time",
        ),
    ),
    # One row per status change: a user enters one status at a given instant.
    "user_status": ReportType(
        key=("user_id", "status_start_at"),
        instants=_STATUS_TIMES,
        local_instants=_STATUS_TIMES,
        durations=_whole_seconds("status_time"),
        lists=("ring_groups",),
    ),
    "ring_attempts": ReportType(
        key=("ring_attempt_id",),
        instants=_RING_TIMES,
        local_instants=_RING_TIMES,
        durations=_whole_seconds("ring_attempt_duration"),
    ),
    # One row per step of a flow execution, and no execution id: a step is its interaction's nth.
    "studio_flow_execution": ReportType(
        key=("interaction_id", "step_execution_order"),
        strip_prefixes=("studio_flow_executions_aggregated.",),
        instants=_STUDIO_TIMES,
        local_instants=_STUDIO_TIMES,
        durations={"time_in_step": DAY_FRACTION},
    ),
    # No id the pages call the row's own (interaction_id may repeat across a call's legs): the row key.
    "explore_calls": ReportType(
        key=(ROW_KEY,),
        instants=_EXPLORE_TIMES,
        local_instants=_EXPLORE_TIMES,
        flags=("in_business_hours?", "callback_from_queue?", "transfer?", "agent_disconnected"),
        durations=dict.fromkeys(("talk_time", "waiting_time", "agent_speed_to_answer", "holding_time"), DAY_FRACTION),
        read_by_default=False,
    ),
    # Audit logs reach the report about an hour late; no id of their own.
    "audit_logs": ReportType(
        key=(ROW_KEY,),
        instants=("timestamp",),
        local_instants=("timestamp",),
        lists=("ip_addresses",),
        min_data_lag=dt.timedelta(hours=1),
        read_by_default=False,
    ),
    # One row per contact: interaction fields repeat on each contact of the interaction.
    "messaging_contacts": ReportType(
        key=("contact_id",),
        instants=_MESSAGING_TIMES,
        local_instants=_MESSAGING_TIMES,
        flags=("is_virtual_agent", "transfer_out"),
        durations={
            **dict.fromkeys(("contact_duration", "interaction_duration", "wrap-up_duration"), DAY_FRACTION),
            **dict.fromkeys(("contact_handle_time", "interaction_handle_time", "first_response_time"), DHMS_TEXT),
        },
        read_by_default=False,
    ),
    # One row per message.
    "messaging_traffic": ReportType(
        key=("message_id",),
        instants=("message_created_at",),
        local_instants=("message_created_at",),
        read_by_default=False,
    ),
}

#: Per report type, the warehouse shape of its rows.
ROW_POLICIES: dict[str, RowPolicy] = {name: spec.row_policy for name, spec in REPORT_TYPES.items()}

#: A report type the tap declares no layout for, read under the generic rules: every column from
#: the rows (instants UTC, the rest text), keyed by `_row_key` (docs/talkdesk-report-rows.md).
GENERIC = ReportType(key=(ROW_KEY,), read_by_default=False)
#: What a report type name may be (Talkdesk's path names: lower snake_case).
REPORT_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def report_type(name: str) -> ReportType:
    """The type's declared layout, or the generic rules for a name the tap declares none for."""
    return REPORT_TYPES.get(name, GENERIC)
