"""Deterministic vendor data for the sandbox: the same seed gives the same rows, whatever the
window boundaries a client asks for (rows are generated per hour bucket, then filtered)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from tap_callreports.sandbox.shapes import (
    UNTYPABLE_VALUES,
    carries_untypable_value,
    myreports_summary_fields,
    talkdesk_callback_at,
    talkdesk_extra_fields,
)

UTC = dt.UTC
HOUR = 3600

AGENTS = [f"Agent {n:02d}" for n in range(1, 41)]
QUEUES = ["Sales", "Support", "Billing", "Retention", "VIP"]
MYREPORTS_REPORTS = {
    # report id: (name, IANA time zone of the report)
    "00000000-0000-0000-0000-000000000001": ("Call list by user (London)", "Europe/London"),
    "00000000-0000-0000-0000-000000000002": ("Call list by user (New York)", "America/New_York"),
}
#: Report types that write instants as ISO UTC text (the others: wall-clock text in the job's zone).
ISO_TIMES = frozenset({"calls"})
MYREPORTS_WORKSPACE = "00000000-0000-0000-0000-000000000001"


def _rng(seed: int, *parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by random: stable across processes and runs.
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _uuid(bits: int) -> str:
    return str(uuid.UUID(int=bits & ((1 << 128) - 1), version=4))


def _iso_z(moment: dt.datetime, millis: bool = False) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def _wall(moment: dt.datetime, tz: ZoneInfo, millis: bool = False) -> str:
    text = moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{moment.microsecond // 1000:03d}" if millis else text


def _day_fraction(seconds: float) -> float:
    """A duration as Talkdesk's Explore reports write many: a fraction of a day, to about 8
    significant digits (0.000069444446 for 6 s, 1.6087963e-06 for 0.139 s)."""
    return float(f"{seconds / 86400:.8g}")


def _dhms(seconds: int) -> str:
    """A duration as messaging reports write some: `0d 0h 0m 42s`."""
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    day, hour = divmod(hours, 24)
    return f"{day}d {hour}h {minute}m {second}s"


def hour_buckets(start: dt.datetime, end: dt.datetime) -> range:
    return range(int(start.timestamp()) // HOUR, (int(end.timestamp()) - 1) // HOUR + 1)


@dataclass
class SandboxData:
    seed: int = 1
    scale: int = 1
    rows_per_hour: int | None = None  # exact talkdesk rows per hour (benchmarks); else random
    myreports_rows_per_hour: int | None = None
    imports_count: int | None = None
    job_statuses_count: int | None = None
    calls_rename_cutover: dt.datetime = dt.datetime(2026, 5, 11, tzinfo=UTC)
    talkdesk_extra_fields: bool = False  # shape talkdesk-extra-field
    talkdesk_callback_at: bool = False  # shape talkdesk-added-wall-time
    myreports_summary_template: bool = False  # shape myreports-other-template
    untypable: tuple[str, ...] = ()  # shapes untypable-value, untypable-added-column
    # Lists (imports, job statuses) end at the last midnight: recent enough for a demo's start_date,
    # and the same all day long.
    list_anchor: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    _added_imports: list[dict] = field(default_factory=list)

    # ---- Talkdesk bulk imports -------------------------------------------------------------

    def imports(self) -> list[dict]:
        count = self.imports_count if self.imports_count is not None else 45 * self.scale
        rng = _rng(self.seed, "imports")
        rows = []
        for n in range(count):
            created = self.list_anchor - dt.timedelta(seconds=rng.randint(0, 30 * 86400))
            rows.append(self._import_row(rng, n, created, created + dt.timedelta(seconds=rng.randint(5, 7200))))
        rows.extend(self._added_imports)
        rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return rows

    def add_imports(self, count: int, now: dt.datetime) -> list[dict]:
        rng = _rng(self.seed, "added-imports", len(self._added_imports))
        added = [self._import_row(rng, len(self._added_imports) + i, now, now) for i in range(count)]
        self._added_imports.extend(added)
        return added

    @staticmethod
    def _import_row(rng: random.Random, n: int, created: dt.datetime, updated: dt.datetime) -> dict:
        import_id = _uuid(rng.getrandbits(128))
        total = rng.randint(1, 1000)
        failed = rng.choice([0, 0, 0, rng.randint(1, total)])
        status = rng.choice(
            [
                "COMPLETED",
                "COMPLETED",
                "COMPLETED_WITH_ERRORS" if failed else "COMPLETED",
                "IN_PROGRESS",
                "QUEUED",
                "FAILED",
                "CANCELED",
            ]
        )
        user = rng.getrandbits(96).to_bytes(12, "big").hex()
        row = {
            "id": import_id,
            "filename": f"users-{n:04d}.csv",
            "total_records": total,
            "failed_records": failed,
            "completed_records": total - failed if status.startswith("COMPLETED") else 0,
            "status": status,
            "type": rng.choice(["CREATE_USERS", "UPDATE_USERS", "DELETE_USERS"]),
            "created_by": user,
            "created_at": _iso_z(created, millis=True),
            "updated_by": user if rng.random() < 0.7 else "system",
            "updated_at": _iso_z(updated, millis=True),
            "_links": {
                "self": {"href": f"/bulk-imports/users/{import_id}"},
                "records": {"href": f"/bulk-imports/users/{import_id}/records"},
            },
        }
        if status == "CANCELED":
            row["canceled_by"] = user
            row["canceled_at"] = row["updated_at"]
        return row

    # ---- Zendesk job statuses --------------------------------------------------------------

    def job_statuses(self) -> list[dict]:
        count = self.job_statuses_count if self.job_statuses_count is not None else 230 * self.scale
        rng = _rng(self.seed, "job-statuses")
        rows = []
        for _ in range(count):
            created = self.list_anchor - dt.timedelta(seconds=rng.randint(0, 86400))
            status = rng.choice(["completed", "completed", "completed", "failed", "working", "queued"])
            completed = (
                created + dt.timedelta(seconds=rng.randint(1, 600)) if status in ("completed", "failed") else None
            )
            kind = rng.choice(["bulk_create", "bulk_update", "permanent_delete", "ticket_update"])
            total = rng.randint(1, 8)
            stated_total: int | None = total
            results: object
            progress: int | None
            if status == "queued":
                results, progress = None, None
            elif kind == "permanent_delete":
                results, progress, stated_total = {"success": status == "completed"}, None, None
            elif kind == "bulk_create":
                results = [{"id": rng.randint(100, 99999), "index": i} for i in range(total)]
                progress = total
            else:
                results = [
                    {"action": "update", "id": rng.randint(100, 99999), "status": "Updated", "success": True}
                    if status != "failed" or i
                    else {
                        "action": "update",
                        "id": rng.randint(100, 99999),
                        "success": False,
                        "error": "TicketUpdateFailed",
                        "details": "Status: closed prevents ticket update",
                    }
                    for i in range(total)
                ]
                progress = total if status != "working" else total // 2
            rows.append(
                {
                    "id": rng.getrandbits(128).to_bytes(16, "big").hex(),
                    "job_type": {
                        "bulk_create": "Zendesk::Tickets::CreateMany",
                        "bulk_update": "Zendesk::Tickets::UpdateMany",
                        "permanent_delete": "Zendesk::Tickets::PermanentDelete",
                        "ticket_update": "Zendesk::Tickets::Update",
                    }[kind],
                    "message": f"Completed at {completed:%Y-%m-%d %H:%M:%S} +0000" if completed else None,
                    "progress": progress,
                    "results": results,
                    "status": status,
                    "total": stated_total,
                    "_completed": completed,
                    "_created": created,
                }
            )
        far_past = dt.datetime.min.replace(tzinfo=UTC)
        rows.sort(key=lambda r: (r["_completed"] or far_past, r["_created"]), reverse=True)
        return rows

    # ---- Talkdesk Explore reports ------------------------------------------------------------

    def talkdesk_columns(self, report_type: str, tz: ZoneInfo, requested_at: dt.datetime) -> list[str]:
        """A report type's columns: a CSV without rows is their header line alone."""
        new_names = requested_at >= self.calls_rename_cutover
        return list(_talkdesk_rows(report_type, 0, 1, 0, dt.datetime.fromtimestamp(0, UTC), tz, new_names)[0])

    def talkdesk_rows(
        self, report_type: str, start: dt.datetime, end: dt.datetime, tz: ZoneInfo, requested_at: dt.datetime
    ) -> Iterator[dict]:
        """Rows of one report type with their event time in [start, end)."""
        new_names = requested_at >= self.calls_rename_cutover
        start_ts, end_ts = start.timestamp(), end.timestamp()
        for bucket in hour_buckets(start, end):
            rng = _rng(self.seed, "talkdesk", report_type, bucket)
            count = self.rows_per_hour if self.rows_per_hour is not None else rng.randint(0, 6) * self.scale
            for index in range(count):
                bits = rng.getrandbits(160)
                ts = bucket * HOUR + (bits & 0xFFF) % HOUR
                if report_type == "user_status":  # a chain of changes from the hour's start: each
                    ts = bucket * HOUR  # change in the window holding its own start
                elif not start_ts <= ts < end_ts:
                    continue
                at = dt.datetime.fromtimestamp(ts, UTC)
                rows = _talkdesk_rows(report_type, bits, index, bucket, at, tz, new_names)
                if report_type == "user_status":
                    rows = [row for row, offset in zip(rows, _chain_offsets(bits)) if start_ts <= ts + offset < end_ts]
                for row in rows:
                    if self.talkdesk_extra_fields:  # times as the report writes its own
                        row.update(
                            talkdesk_extra_fields(bits, _iso_z(at) if report_type in ISO_TIMES else _wall(at, tz))
                        )
                    if self.talkdesk_callback_at:
                        row.update(
                            talkdesk_callback_at(bits, _iso_z(at) if report_type in ISO_TIMES else _wall(at, tz))
                        )
                    if report_type in ("calls", "contacts", "explore_calls"):
                        self._mark_untypable(row, f"talkdesk-{report_type}", bucket, index)
                    yield row

    # ---- MyReports -------------------------------------------------------------------------------

    def myreports_rows(self, report_id: str, start: dt.datetime, end: dt.datetime) -> list[tuple[float, dict]]:
        """(UTC instant, row) for calls starting in [start, end), sorted by instant."""
        tz = ZoneInfo(MYREPORTS_REPORTS[report_id][1])
        start_ts, end_ts = start.timestamp(), end.timestamp()
        found: list[tuple[float, dict]] = []
        for bucket in hour_buckets(start, end):
            rng = _rng(self.seed, "myreports", report_id, bucket)
            count = (
                self.myreports_rows_per_hour
                if self.myreports_rows_per_hour is not None
                else rng.randint(0, 8) * self.scale
            )
            for index in range(count):
                bits = rng.getrandbits(256)
                ts = bucket * HOUR + (bits & 0xFFF) % HOUR
                if start_ts <= ts < end_ts:
                    row = _myreports_row(bits, dt.datetime.fromtimestamp(ts, UTC), tz)
                    if self.myreports_summary_template:
                        row.update(myreports_summary_fields(bits))
                    self._mark_untypable(row, "myreports", bucket, index)
                    found.append((ts, row))
        found.sort(key=lambda pair: (pair[0], pair[1]["docId"]))
        return found

    def _mark_untypable(self, row: dict, kind: str, bucket: int, index: int) -> None:
        """The week's marked row carries each switched-on untypable shape's value (shapes.py)."""
        if self.untypable and carries_untypable_value(bucket, index):
            for shape in self.untypable:
                row.update(UNTYPABLE_VALUES.get((shape, kind), {}))


TEAMS = [("team-sales", "Sales"), ("team-support", "Support"), ("team-billing", "Billing")]
STUDIO_FLOWS = [
    ("flow-main-ivr", "Main IVR", ("Start", "Language menu", "Business hours", "Assign to queue")),
    ("flow-after-hours", "After hours", ("Start", "Play message", "Voicemail")),
    ("flow-callback", "Callback", ("Start", "Collect number", "Schedule callback", "Hang up")),
]


def _hex(bits: int, width: int = 32) -> str:
    return f"{bits & ((1 << (width * 4)) - 1):0{width}x}"


def _user(n: int) -> tuple[str, str, str]:
    """(user_id, user_name, user_email) of agent `n` (one of the AGENTS, numbered on past them)."""
    if n >= len(AGENTS):
        n %= 1 << 20
    name = AGENTS[n] if n < len(AGENTS) else f"Agent {n + 1}"
    return f"{n + 1:024x}", name, f"agent{n + 1:02d}@example.com"


def _maybe(value: object, bits: int, index: int, every: int = 3) -> object:
    """`value`, or null on some rows and on every bucket's first row (nullable fields whose first
    values are null: a reader that types a column from its first value learns nothing)."""
    return None if index == 0 or bits % every == 0 else value


def _none_text(value: object, bits: int) -> object:
    """A missing value as Talkdesk writes some: the text "None" on some rows, JSON null on others."""
    return value if value is not None else ("None" if bits & 1 else None)


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def _calls_row(bits: int, index: int, at: dt.datetime, new_names: bool) -> dict:
    """A calls row as the evidence records it: ISO UTC instants, boolean flags, integer seconds."""
    kind = ("inbound", "outbound", "outbound_missed", "missed", "abandoned", "short_abandoned", "voicemail")[
        (bits >> 50) % 7
    ]
    talked = kind in ("inbound", "outbound")
    talk = (bits >> 44) % 1800 if talked else 0
    wait, hold, ringing = (bits >> 60) % 120, (bits >> 70) % 60 if talked else 0, (bits >> 64) % 40
    user_id, user_name, user_email = _user((bits >> 12) % len(AGENTS))
    team_id, team_name = TEAMS[(bits >> 80) % len(TEAMS)]
    handled = talked or kind == "voicemail"
    surveyed = talked and (bits >> 112) % 3 == 0
    end = at + dt.timedelta(seconds=wait + ringing + talk + hold)
    return {
        ("call_id" if new_names else "interaction_id"): _hex(bits >> 32),
        "callsid": "CA" + _hex(bits >> 24),
        ("type" if new_names else "call_type"): kind,
        ("start_at" if new_names else "start_time"): _iso_z(at),
        ("end_at" if new_names else "end_time"): _iso_z(end),
        "talkdesk_phone_number": f"+1844{(bits >> 90) % 10_000_000:07d}",
        "talkdesk_phone_display_name": _maybe("Main line", bits >> 91, index),
        "contact_phone_number": f"+1202{(bits >> 100) % 10_000_000:07d}",
        "user_id": user_id if handled else None,
        "user_name": user_name if handled else None,
        "user_email": user_email if handled else None,
        "total_time": wait + ringing + talk + hold,
        "talk_time": talk,
        "wait_time": wait,
        "hold_time": hold,
        "abandon_time": wait if kind in ("abandoned", "short_abandoned") else 0,
        "total_ringing_time": ringing,
        "disposition_code": _maybe(("resolved", "callback", "escalated")[(bits >> 110) % 3], bits >> 110, index),
        "notes": _maybe("Customer asked for a refund", bits >> 108, index, 4),
        "user_voice_rating": _maybe((bits >> 115) % 5 + 1, bits >> 115, index) if talked else None,
        "ring_groups": QUEUES[(bits >> 84) % len(QUEUES)],
        "ivr_options": ",".join(str((bits >> (86 + 2 * n)) % 3 + 1) for n in range((bits >> 120) % 4)),
        "is_in_business_hours": bool((bits >> 121) & 1),
        "is_callback_from_queue": None if index == 0 else bool((bits >> 122) & 1),
        "is_call_forwarding": bool((bits >> 123) & 1),
        "is_if_no_answer": bool((bits >> 124) & 1),
        "is_transfer": bool((bits >> 125) & 1),
        "is_external_transfer": False,
        "handling_user_name": user_name if talked else None,
        "handling_user_id": user_id if talked else None,
        "handling_user_email": user_email if talked else None,
        "recording_url": f"/recordings/{_hex(bits >> 40, 20)}" if talked else None,
        "csat_score": (bits >> 126) % 5 + 1 if surveyed else None,
        "csat_survey_time": _iso_z(end + dt.timedelta(seconds=14)) if surveyed else "",  # "" when absent, as the page
        "mood": ("happy", "neutral", "sad")[(bits >> 127) % 3],
        "is_mood_prompted": None if index == 0 else bool((bits >> 128) & 1),
        "team_id": team_id if handled else None,
        "team_name": team_name if handled else None,
        # The fields Talkdesk's calls page adds (the payload of 2026-05-11; talkdesk-explore-official.md 2.1).
        "rating_reason": ("", "Too long on hold", "Great agent")[(bits >> 129) % 3] if surveyed else "",
        "agent_disconnected": _yes_no(bool((bits >> 130) & 1)) if talked else "No",
        "data_status": "Valid",
        "int_custom_field_n1": _maybe((bits >> 131) % 1000, bits >> 131, index),
        "int_custom_field_n2": None,
        "float_custom_field_n1": _maybe(round((bits >> 133) % 10000 / 100, 2), bits >> 133, index),
        "float_custom_field_n2": None,
        "text_custom_field_n1": _maybe(("gold", "silver", "bronze")[(bits >> 135) % 3], bits >> 135, index),
        "text_custom_field_n2": None,
        "text_custom_field_n3": None,
        "text_custom_field_n4": None,
        "timestamp_custom_field_n1": _maybe(_iso_z(at - dt.timedelta(days=3)), bits >> 137, index, 4),
        "disposition_set": ("Outbound", "Inbound", "Sales")[(bits >> 139) % 3],
        "nested_disposition": _maybe(("No Budget", "Interested", "Call back")[(bits >> 141) % 3], bits >> 141, index),
    }


def _contacts_row(bits: int, index: int, at: dt.datetime, tz: ZoneInfo) -> dict:
    """A contacts row as the evidence records it: wall-clock times in the job's zone, Yes/No flags,
    "None" as text for some missing values."""
    kind = ("Answered", "Missed", "Abandoned", "Voicemail", "Outbound")[(bits >> 50) % 5]
    answered = kind in ("Answered", "Outbound")
    wait, ring, talk = (bits >> 60) % 120, (bits >> 66) % 40, (bits >> 44) % 1800 if answered else 0
    hold = (bits >> 72) % 60 if answered else 0
    acw = (bits >> 78) % 90 if answered else 0
    answered_at = at + dt.timedelta(seconds=wait + ring)
    finished = answered_at + dt.timedelta(seconds=talk + hold)
    user_id, user_name, _email = _user((bits >> 12) % len(AGENTS))
    team_id, team_name = TEAMS[(bits >> 80) % len(TEAMS)]
    transferred = answered and (bits >> 84) % 4 == 0
    return {
        "interaction_id": _hex(bits),
        "contact_id": _hex(bits >> 32),
        "company_number": f"+1844{(bits >> 90) % 10_000_000:07d}",
        "contact_person_number": f"+1202{(bits >> 100) % 10_000_000:07d}",
        "phone_display_name": _maybe("Main line", bits >> 91, index),
        "external_phone_number": _none_text(None, bits >> 92) if kind != "Outbound" else "+15550100",
        "direction": "OUT" if kind == "Outbound" else "IN",
        "contact_type": kind,
        "started_at": _wall(at, tz),
        "answered_at": _wall(answered_at, tz) if answered else None,
        "connected_at": _wall(answered_at, tz) if answered else None,
        "finished_at": _wall(finished, tz) if index % 7 != 3 else None,  # still open when the report ran
        "wait_time": wait,
        "time_to_missed": None if kind != "Missed" else wait + ring,
        "abandon_time": wait if kind == "Abandoned" else None,
        "short_abandon_time": None,
        "time_to_voicemail": wait + ring if kind == "Voicemail" else None,
        "ring_time": ring,
        "connect_time": ring if answered else None,
        "talk_time": talk if answered else None,
        "hard_hold_time": hold if answered else None,
        "soft_hold_time": 0 if answered else None,
        "hold_time": hold if answered else None,
        "after_call_work_time": acw if answered else None,
        "duration": wait + ring + talk + hold,
        "handle_time": talk + hold + acw if answered else None,
        "inside_business_hours": _yes_no(bool((bits >> 121) & 1)),
        "inside_service_level": _yes_no(wait < 60),
        "within_service_level_threshold": _yes_no(wait < 30),
        "transfer_out": _yes_no(transferred),
        "transfer_out_type": "cold" if transferred else _none_text(None, bits >> 93),
        "transfer_in": None,
        "transfer_in_type": None,
        "callback": _none_text(None, bits >> 94),
        "ring_groups": QUEUES[(bits >> 86) % len(QUEUES)],
        "handling_ring_groups": QUEUES[(bits >> 86) % len(QUEUES)] if answered else None,
        "user_name": user_name if answered else None,
        "user_id": user_id if answered else None,
        "team_name": team_name if answered else _none_text(None, bits >> 95),
        "team_id": team_id if answered else None,
        "direct_assignment_user": _none_text(None, bits >> 96),
        "direct_assignment_ids": _none_text(None, bits >> 97),
    }


def _ring_attempts_row(bits: int, index: int, at: dt.datetime, tz: ZoneInfo) -> dict:
    """A ring attempts row: wall-clock times in the job's zone; an attempt still ringing has no
    finish yet (and the first rows have none either)."""
    user_id, user_name, user_email = _user((bits >> 12) % len(AGENTS))
    duration = (bits >> 50) % 40
    finished = index % 5 != 0
    return {
        "interaction_id": _hex(bits),
        "contact_id": _hex(bits >> 16),
        "batch_ring_id": _hex(bits >> 24),
        "ring_attempt_id": _hex(bits >> 32),
        "attempt_type": _maybe(("Ignored", "Answered", "Rejected", "Missed")[(bits >> 56) % 4], bits >> 56, index, 5),
        "ring_started_at_time": _wall(at, tz),
        "ring_finished_at_time": _wall(at + dt.timedelta(seconds=duration), tz) if finished else None,
        "ring_attempt_duration": duration if finished else None,
        "user_name": user_name,
        "user_email": user_email,
        "team_name": _maybe(TEAMS[(bits >> 80) % len(TEAMS)][1], bits >> 80, index),
    }


def _chain_offsets(bits: int) -> list[int]:
    """Seconds into the hour at which one user's status changes (the first on the hour)."""
    changes = (bits >> 20) % 4 + 1
    return [0, *sorted({(bits >> (30 + 12 * n)) % 3540 + 30 for n in range(changes - 1)})]


def _user_status_rows(bits: int, user: int, bucket: int, tz: ZoneInfo) -> list[dict]:
    """One user's status changes within one hour: several rows per user, back to back. The first
    change is on the hour itself (a shift starting): many users share that instant. `user`: one per
    generated event of the hour (a user has one status at a time)."""
    user_id, user_name, user_email = _user(user)
    team_id, team_name = TEAMS[(bits >> 80) % len(TEAMS)]
    starts = _chain_offsets(bits)
    rows = []
    for n, offset in enumerate(starts):
        start = dt.datetime.fromtimestamp(bucket * HOUR + offset, UTC)
        end_offset = starts[n + 1] if n + 1 < len(starts) else HOUR
        end = dt.datetime.fromtimestamp(bucket * HOUR + end_offset, UTC)
        rows.append(
            {
                "user_id": user_id,
                "user_name": user_name,
                "user_email": user_email,
                "status_label": ("Available", "Away", "On a call", "After call work", "Offline")[
                    (bits >> (90 + 3 * n)) % 5
                ],
                "status_start_at": _wall(start, tz),
                "status_end_at": _wall(end, tz),
                "status_time": end_offset - offset,
                "is_user_active": bool((bits >> (100 + n)) & 1) or n == 0,
                "team_id": team_id if (bits >> 110) % 4 else None,
                "team_name": team_name if (bits >> 110) % 4 else None,
                # Text holding a list, as the Explore page writes it (not a JSON array).
                "ring_groups": "[" + ", ".join(f'"{q.lower()}"' for q in _ring_groups(bits >> 120)) + "]",
            }
        )
    return rows


def _ring_groups(bits: int) -> list[str]:
    return [queue for n, queue in enumerate(QUEUES) if (bits >> n) & 1][:2]


def _studio_flow_rows(bits: int, at: dt.datetime, tz: ZoneInfo) -> list[dict]:
    """One flow execution as studio_flow_execution reports it: one row per step, no execution id,
    steps ordered by step_execution_order from 0; each row repeats the execution's finish time."""
    flow_id, flow_name, steps = STUDIO_FLOWS[(bits >> 50) % len(STUDIO_FLOWS)]
    taken = steps[: (bits >> 52) % (len(steps) - 1) + 2]
    spent = [((bits >> (60 + 8 * n)) % 200) / 10 or 0.139 for n in range(len(taken))]
    finished = at + dt.timedelta(seconds=sum(spent))
    rows, moment = [], at
    for order, step in enumerate(taken):
        rows.append(
            {
                "call_sid": "CA" + _hex(bits >> 24),
                "interaction_id": _hex(bits),
                "destination_number": f"+1844{(bits >> 90) % 10_000_000:07d}",
                "origin_number": f"+1202{(bits >> 100) % 10_000_000:07d}",
                "flow_name": flow_name,
                "flow_id": flow_id,
                "component_title": step,
                "step_name": step.lower().replace(" ", "_"),
                "exit": "ok" if order + 1 < len(taken) or (bits >> 110) % 5 else "error",
                "time_in_step": _day_fraction(spent[order]),  # a fraction of a day, as the page
                "timestamp": _wall(moment, tz),
                "studio_flow_executions_aggregated.flow_execution_finished_time": _wall(finished, tz),
                "step_execution_order": order,
            }
        )
        moment += dt.timedelta(seconds=spent[order])
    return rows


def _talkdesk_rows(
    report_type: str, bits: int, index: int, bucket: int, at: dt.datetime, tz: ZoneInfo, new_names: bool
) -> list[dict]:
    """The rows one generated event gives, in the layouts Talkdesk's own report pages give
    (../shared/api-docs/talkdesk-explore-official.md), else the community evidence (contacts,
    ring_attempts: talkdesk-report-layouts.md). Types keyed by `_row_key` (explore_calls,
    audit_logs) now and then send one row twice, identical."""
    if report_type == "calls":
        return [_calls_row(bits, index, at, new_names)]
    if report_type == "contacts":
        return [_contacts_row(bits, index, at, tz)]
    if report_type == "ring_attempts":
        return [_ring_attempts_row(bits, index, at, tz)]
    if report_type == "user_status":
        return _user_status_rows(bits, (bucket * 7 + index) % len(AGENTS) if index < len(AGENTS) else index, bucket, tz)
    if report_type == "studio_flow_execution":
        return _studio_flow_rows(bits, at, tz)
    if report_type == "messaging_contacts":
        return _messaging_contacts_rows(bits, index, at, tz)
    if report_type == "messaging_traffic":
        return _messaging_traffic_rows(bits, at, tz)
    if report_type == "feedback_flow":
        return _feedback_flow_rows(bits, at, tz)
    row = _explore_calls_row(bits, index, at, tz) if report_type == "explore_calls" else _audit_logs_row(bits, at, tz)
    return [row, dict(row)] if (bits >> 140) % 6 == 0 else [row]


def _explore_calls_row(bits: int, index: int, at: dt.datetime, tz: ZoneInfo) -> dict:
    """An explore_calls row as its page shows it: `?` flags as TRUE/FALSE, Yes/No flags, wall-clock
    times in the job's zone, durations as fractions of a day."""
    kind = ("inbound", "outbound", "abandoned", "missed", "voicemail")[(bits >> 50) % 5]
    talked = kind in ("inbound", "outbound")
    talk, wait, answer = (bits >> 44) % 1800 if talked else 0, (bits >> 60) % 120, (bits >> 66) % 30
    hold = (bits >> 70) % 60 if talked and (bits >> 76) % 3 == 0 else 0
    end = at + dt.timedelta(seconds=wait + talk + hold)
    surveyed = talked and (bits >> 112) % 3 == 0
    agent = AGENTS[(bits >> 12) % len(AGENTS)]
    return {
        "interaction_id": _hex(bits >> 32),
        "call_type": kind,
        "start_time": _wall(at, tz),
        "end_time": _wall(end, tz),
        "talkdesk_phone_number": f"+1844{(bits >> 90) % 10_000_000:07d}",
        "customer_phone_number": f"+1202{(bits >> 100) % 10_000_000:07d}",
        "talk_time": _day_fraction(talk),
        "record": f"/recordings/{_hex(bits >> 40, 20)}" if talked else None,
        "hangup": ("disconnected", "agent", "customer")[(bits >> 80) % 3],
        "in_business_hours?": "TRUE" if (bits >> 121) & 1 else "FALSE",
        "callback_from_queue?": "TRUE" if (bits >> 122) & 1 else "FALSE",
        "waiting_time": _day_fraction(wait),
        "agent_speed_to_answer": _day_fraction(answer) if talked else 0.0,
        "holding_time": _day_fraction(hold),
        "rating": _maybe((bits >> 115) % 5 + 1, bits >> 115, index) if talked else None,
        "description": _maybe("Customer asked for a refund, then for a manager", bits >> 108, index, 4),
        "agent_name": agent if kind != "abandoned" else None,
        "phone_display_name": "support",
        "disposition_code": _maybe(("resolved", "callback", "escalated")[(bits >> 110) % 3], bits >> 110, index),
        "handling_agent": agent if talked else None,
        "team": TEAMS[(bits >> 82) % len(TEAMS)][1],
        "transfer?": _yes_no(bool((bits >> 125) & 1)),
        "tags": "agents+" + QUEUES[(bits >> 84) % len(QUEUES)].lower(),
        "ivr_options": ",".join(str((bits >> (86 + 2 * n)) % 3 + 1) for n in range((bits >> 120) % 4)),
        "csat_score": (bits >> 126) % 5 + 1 if surveyed else None,
        "csat_survey_time": _wall(end + dt.timedelta(seconds=14), tz) if surveyed else None,
        "rating_reason": "",
        "agent_disconnected": _yes_no(bool((bits >> 130) & 1)),
        "disposition_set": ("Outbound", "Inbound", "Sales")[(bits >> 139) % 3],
        "nested_disposition": _maybe("No Budget", bits >> 141, index),
    }


USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/109.0.0.0 Safari/537.36"
)


def _audit_logs_row(bits: int, at: dt.datetime, tz: ZoneInfo) -> dict:
    """An audit_logs row as its page shows it: ip_addresses a JSON array, the time with milliseconds."""
    user_id, agent, email = _user((bits >> 12) % len(AGENTS))
    at = at + dt.timedelta(milliseconds=(bits >> 100) % 1000)
    addresses = [f"85.{(bits >> 60) % 256}.{(bits >> 70) % 256}.{(bits >> 80) % 256}"]
    if (bits >> 90) % 4 == 0:
        addresses.append(f"10.0.{(bits >> 92) % 256}.1")
    operation = ("read_ring_groups", "update_user", "assign_role", "release_number")[(bits >> 50) % 4]
    return {
        "actor_id": _hex(bits >> 20) if (bits >> 94) % 5 else "",
        "generator_name": ("ring-groups-api", "users-api", "TALKDESK-ID")[(bits >> 96) % 3],
        "ip_addresses": addresses,
        "operation": operation,
        "platform_tid": _uuid(bits >> 8),
        "resource_id": f"/{operation.split('_', 1)[1].replace('_', '-')}",
        "operation_status": "success" if (bits >> 98) % 7 else "failure",
        "user_agent": USER_AGENT,
        "timestamp": _wall(at, tz, millis=True),
        "user_id": f"{(bits >> 104) % 10**9:09d}ID",
        "agent_name": agent,
        "agent_email": email,
    }


def _messaging_contacts_rows(bits: int, index: int, at: dt.datetime, tz: ZoneInfo) -> list[dict]:
    """One messaging interaction's contacts (one or two; interaction fields repeat on each), keys in
    alphabetical order as the page's example: durations as fractions of a day and `0d 0h 0m 42s`
    text, YES/NO and Yes/No flags, `wrap-up_duration`."""
    interaction = _hex(bits >> 32)
    channel = ("SMS", "WhatsApp", "Chat")[(bits >> 50) % 3]
    queues = " + ".join(("agents", QUEUES[(bits >> 52) % len(QUEUES)].lower()))
    rows, moment = [], at
    interaction_length = sum(60 + (bits >> (60 + 8 * n)) % 240 for n in range((bits >> 56) % 2 + 1))
    for n in range((bits >> 56) % 2 + 1):
        length = 60 + (bits >> (60 + 8 * n)) % 240
        handle, first, wrap = length - 20, (bits >> (64 + 8 * n)) % 60, (bits >> (68 + 8 * n)) % 30
        user_id, user_name, _email = _user((bits >> (12 + n)) % len(AGENTS))
        virtual = n == 0 and (bits >> 58) % 4 == 0
        rows.append(
            {
                "channel_type": channel,
                "contact_assigned_at": _wall(moment + dt.timedelta(seconds=5), tz),
                "contact_duration": _day_fraction(length),
                "contact_finished_at": _wall(moment + dt.timedelta(seconds=length), tz),
                "contact_finished_reason": ("MANUALLY CLOSED", "TRANSFERRED", "TIMEOUT")[(bits >> (72 + n)) % 3],
                "contact_handle_time": _dhms(handle),
                "contact_id": _uuid((bits >> 16) + n),
                "contact_person_channel_identifier": f"+1330{(bits >> 100) % 10_000_000:07d}",
                "contact_person_id": _hex(bits >> 20, 24),
                "contact_person_name": "",
                "contact_started_at": _wall(moment, tz),
                "conversation": f"https://demo.talkdeskapp.com/atlas/apps/conversation-history/{channel}/{interaction}",
                "direct_assignment_user": None,
                "direct_assignment_user_id": None,
                "direction": ("Outbound", "Inbound")[(bits >> 76) % 2],
                "disposition_name": _maybe("Resolved", bits >> 78, index),
                "first_response_time": _dhms(first),
                "handling_queues": queues,
                "interaction_duration": _day_fraction(interaction_length),
                "interaction_finished_at": _wall(at + dt.timedelta(seconds=interaction_length), tz),
                "interaction_handle_time": _dhms(interaction_length - 20),
                "interaction_id": interaction,
                "interaction_started_at": _wall(at, tz),
                "interaction_status": "CLOSED",
                "is_virtual_agent": "YES" if virtual else "NO",
                "notes": None,
                "queues": queues,
                "touchpoint_identifier": f"+1774{(bits >> 110) % 10_000_000:07d}",
                "touchpoint_name": "Support line",
                "transfer_out": _yes_no(n == 0 and (bits >> 56) % 2 == 1),
                "user_id": None if virtual else user_id,
                "user_name": None if virtual else user_name,
                "virtual_agent_id": _hex(bits >> 80) if virtual else None,
                "virtual_agent_name": "Virtual agent" if virtual else None,
                "wrap-up_duration": _day_fraction(wrap),
            }
        )
        moment += dt.timedelta(seconds=length)
    return rows


def _feedback_flow_rows(bits: int, at: dt.datetime, tz: ZoneInfo) -> list[dict]:
    """One survey's answers, one row per component. Talkdesk publishes no API layout for
    feedback_flow: the names are the data dictionary's labels (spaces, `&`, capitals), a guess the
    tap reads under its generic rules. Some answers come twice, identical."""
    agent = AGENTS[(bits >> 12) % len(AGENTS)]
    rows = []
    for n, (component, kind, text) in enumerate(
        (("c1", "Rating", "How would you rate the agent?"), ("c2", "Yes/No", "Was your issue solved?"))
    ):
        rows.append(
            {
                "Date & Time": _wall(at + dt.timedelta(seconds=30 * n), tz),
                "Interaction ID": _hex(bits >> 32),
                "Flow Name": "Post-call survey",
                "Component ID": component,
                "Component Name": kind,
                "Component Type": kind.lower(),
                "Component Text": text,
                "Response": str((bits >> (40 + n)) % 5 + 1) if n == 0 else ("yes", "no")[(bits >> 46) % 2],
                "Is KPI": ("yes", "no")[n],
                "Pertains to Agent": ("yes", "no")[(bits >> 47) % 2],
                "Recording URL": f"/recordings/{_hex(bits >> 40, 20)}",
                "Agent Name": agent,
                "Respondent Phone Number": f"+1202{(bits >> 100) % 10_000_000:07d}",
                "Talkdesk Phone Number": f"+1844{(bits >> 90) % 10_000_000:07d}",
                "Ring Group": QUEUES[(bits >> 84) % len(QUEUES)],
                "Team Name": TEAMS[(bits >> 80) % len(TEAMS)][1],
                "Interaction Direction": ("Inbound", "Outbound")[(bits >> 48) % 2],
                "Survey Channel": ("Voice", "SMS")[(bits >> 49) % 2],
            }
        )
    return rows + [dict(rows[-1])] if (bits >> 140) % 6 == 0 else rows


def _messaging_traffic_rows(bits: int, at: dt.datetime, tz: ZoneInfo) -> list[dict]:
    """One conversation's messages, one row each (message_id), as the messaging_traffic page shows."""
    channel = ("EMAIL", "SMS", "WhatsApp")[(bits >> 50) % 3]
    user_id, user_name, _email = _user((bits >> 12) % len(AGENTS))
    rows = []
    for n in range((bits >> 52) % 4 + 1):
        inbound = n % 2 == 0
        rows.append(
            {
                "contact_id": _uuid(bits >> 16),
                "channel_type": channel,
                "contact_person_id": f"customer{(bits >> 60) % 1000}@example.com"
                if channel == "EMAIL"
                else _hex(bits >> 60, 24),
                "contact_person_name": "",
                "interaction_id": _hex(bits >> 32),
                "message_created_at": _wall(at + dt.timedelta(seconds=40 * n), tz),
                "message_direction": "Inbound" if inbound else "Outbound",
                "message_id": _uuid((bits >> 24) + n),
                "user_id": None if inbound else user_id,
                "user_name": None if inbound else user_name,
            }
        )
    return rows


def _myreports_row(bits: int, at: dt.datetime, tz: ZoneInfo) -> dict:
    answered = (bits >> 40) % 10 < 7
    direction = (bits >> 44) % 3 + 1
    user = (bits >> 48) % len(AGENTS)
    ring = float((bits >> 56) % 30)
    row: dict = {
        "connId": _uuid(bits >> 64),
        "start": at.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S"),
        "userName": f"Test User {user + 1}",
        "userNum": str(101 + user),
        "callType": (bits >> 12) % 3 + 1,
        "callDir": direction,
        "ring": ring,
        "duration": ring + (float((bits >> 20) % 900) if answered else 0.0),
        "docId": _uuid(bits >> 128),
    }
    if answered:
        row["ans"] = 1
    elif (bits >> 30) & 1:
        row["lost"] = 1
    else:
        row["ref"] = 1
    if (bits >> 32) % 4:  # sparse rows: not every call has caller details
        row["cli"] = f"+4420{(bits >> 100) % 100_000_000:08d}"
        row["cliName"] = "" if (bits >> 34) & 1 else "Caller"
        row["callUserNum"] = row["cli"]
    if (bits >> 36) % 3 == 0:
        row["hgNum"] = str(200 + (bits >> 38) % 5)
        row["hgName"] = f"Queue {row['hgNum']}"
    if direction == 2:
        row["calledUserNum"] = f"+1987{(bits >> 160) % 10_000_000:07d}"
        row["calledUserName"] = "Unknown"
    else:
        row["calledUserNum"] = row["userNum"]
        row["calledUserName"] = row["userName"]
        row["callUserName"] = row["userName"]
    return row
