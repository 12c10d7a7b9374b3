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
    talkdesk_extra_fields,
)

UTC = dt.timezone.utc
HOUR = 3600

AGENTS = [f"Agent {n:02d}" for n in range(1, 41)]
QUEUES = ["Sales", "Support", "Billing", "Retention", "VIP"]
MYREPORTS_REPORTS = {
    # report id: (name, IANA time zone of the report)
    "00000000-0000-0000-0000-000000000001": ("Call list by user (London)", "Europe/London"),
    "00000000-0000-0000-0000-000000000002": ("Call list by user (New York)", "America/New_York"),
}
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


def _wall(moment: dt.datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


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
    myreports_summary_template: bool = False  # shape myreports-other-template
    untypable: tuple[str, ...] = ()  # shapes untypable-value, untypable-added-column
    # Lists (imports, job statuses) end at the last midnight: recent enough for a demo's start_date,
    # and the same all day long.
    list_anchor: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
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
        status = rng.choice(["COMPLETED", "COMPLETED", "COMPLETED_WITH_ERRORS" if failed else "COMPLETED",
                             "IN_PROGRESS", "QUEUED", "FAILED", "CANCELED"])
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
            completed = created + dt.timedelta(seconds=rng.randint(1, 600)) if status in ("completed", "failed") else None
            kind = rng.choice(["bulk_create", "bulk_update", "permanent_delete", "ticket_update"])
            total = rng.randint(1, 8)
            results: object
            if status == "queued":
                results, progress = None, None
            elif kind == "permanent_delete":
                results, progress, total = {"success": status == "completed"}, None, None
            elif kind == "bulk_create":
                results = [{"id": rng.randint(100, 99999), "index": i} for i in range(total)]
                progress = total
            else:
                results = [
                    {"action": "update", "id": rng.randint(100, 99999), "status": "Updated", "success": True}
                    if status != "failed" or i else
                    {"action": "update", "id": rng.randint(100, 99999), "success": False,
                     "error": "TicketUpdateFailed", "details": "Status: closed prevents ticket update"}
                    for i in range(total)
                ]
                progress = total if status != "working" else total // 2
            rows.append({
                "id": rng.getrandbits(128).to_bytes(16, "big").hex(),
                "job_type": {"bulk_create": "Zendesk::Tickets::CreateMany", "bulk_update": "Zendesk::Tickets::UpdateMany",
                             "permanent_delete": "Zendesk::Tickets::PermanentDelete",
                             "ticket_update": "Zendesk::Tickets::Update"}[kind],
                "message": f"Completed at {completed:%Y-%m-%d %H:%M:%S} +0000" if completed else None,
                "progress": progress,
                "results": results,
                "status": status,
                "total": total,
                "_completed": completed,
                "_created": created,
            })
        far_past = dt.datetime.min.replace(tzinfo=UTC)
        rows.sort(key=lambda r: (r["_completed"] or far_past, r["_created"]), reverse=True)
        return rows

    # ---- Talkdesk Explore reports ------------------------------------------------------------

    def talkdesk_rows(self, report_type: str, start: dt.datetime, end: dt.datetime, tz: ZoneInfo,
                      requested_at: dt.datetime) -> Iterator[dict]:
        """Rows of one report type with their event time in [start, end)."""
        new_names = requested_at >= self.calls_rename_cutover
        start_ts, end_ts = start.timestamp(), end.timestamp()
        for bucket in hour_buckets(start, end):
            rng = _rng(self.seed, "talkdesk", report_type, bucket)
            count = self.rows_per_hour if self.rows_per_hour is not None else rng.randint(0, 6) * self.scale
            for index in range(count):
                bits = rng.getrandbits(160)
                ts = bucket * HOUR + (bits & 0xFFF) % HOUR
                if not start_ts <= ts < end_ts:
                    continue
                row = _talkdesk_row(report_type, bits, index, dt.datetime.fromtimestamp(ts, UTC), tz, new_names)
                if self.talkdesk_extra_fields:
                    row.update(talkdesk_extra_fields(bits))
                if report_type == "calls":
                    self._mark_untypable(row, "talkdesk-calls", bucket, index)
                yield row

    # ---- MyReports -------------------------------------------------------------------------------

    def myreports_rows(self, report_id: str, start: dt.datetime, end: dt.datetime) -> list[tuple[float, dict]]:
        """(UTC instant, row) for calls starting in [start, end), sorted by instant."""
        tz = ZoneInfo(MYREPORTS_REPORTS[report_id][1])
        start_ts, end_ts = start.timestamp(), end.timestamp()
        found: list[tuple[float, dict]] = []
        for bucket in hour_buckets(start, end):
            rng = _rng(self.seed, "myreports", report_id, bucket)
            count = (self.myreports_rows_per_hour if self.myreports_rows_per_hour is not None
                     else rng.randint(0, 8) * self.scale)
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


def _talkdesk_row(report_type: str, bits: int, index: int, at: dt.datetime, tz: ZoneInfo, new_names: bool) -> dict:
    agent = AGENTS[(bits >> 12) % len(AGENTS)]
    agent_id = f"{(bits >> 20) & 0xFFFFFF:024x}"
    duration = (bits >> 44) % 1800
    row_id = _uuid(bits >> 32)
    if report_type in ("calls", "explore_calls"):
        kind = ("inbound", "outbound", "abandoned", "missed", "voicemail")[(bits >> 50) % 5]
        row = {
            ("call_id" if new_names else "interaction_id"): row_id,
            ("type" if new_names else "call_type"): kind,
            ("start_at" if new_names else "start_time"): _iso_z(at),
            "end_at" if new_names else "end_time": _iso_z(at + dt.timedelta(seconds=duration)),
            "talk_time": duration if kind in ("inbound", "outbound") else 0,
            "wait_time": (bits >> 60) % 120,
            "hold_time": (bits >> 70) % 60,
            "agent_id": agent_id if kind != "abandoned" else None,
            "agent_name": agent if kind != "abandoned" else None,
            "ring_groups": QUEUES[(bits >> 80) % len(QUEUES)],
            "phone_number": f"+1555{(bits >> 90) % 10_000_000:07d}",
            "contact_phone_number": f"+1202{(bits >> 100) % 10_000_000:07d}",
            "disposition_code": ("resolved", "callback", "escalated", None)[(bits >> 110) % 4],
            "rating": (bits >> 115) % 6 or None,
        }
        if report_type == "explore_calls":
            row["team"] = QUEUES[(bits >> 120) % len(QUEUES)]
        return row
    if report_type == "contacts":
        return {
            "contact_id": row_id,
            "interaction_id": _uuid(bits),
            "channel": ("voice", "sms", "email", "chat")[(bits >> 50) % 4],
            "direction": ("inbound", "outbound")[(bits >> 55) % 2],
            "started_at": _wall(at, tz),
            "ended_at": _wall(at + dt.timedelta(seconds=duration), tz),
            "duration": duration,
            "agent_id": agent_id,
            "team": QUEUES[(bits >> 80) % len(QUEUES)],
            "status": ("completed", "abandoned", "transferred")[(bits >> 90) % 3],
        }
    if report_type == "user_status":
        return {
            "user_id": agent_id,
            "user_name": agent,
            "status_label": ("available", "away", "on_a_call", "after_call_work", "offline")[(bits >> 50) % 5],
            "status_start_at": _wall(at, tz),
            "status_end_at": _wall(at + dt.timedelta(seconds=duration), tz),
            "duration_seconds": duration,
        }
    if report_type == "ring_attempts":
        return {
            "ring_attempt_id": row_id,
            "call_id": _uuid(bits),
            "agent_id": agent_id,
            "agent_name": agent,
            "ring_start_at": _iso_z(at),
            "ring_duration": (bits >> 50) % 40,
            "answered": bool((bits >> 60) & 1),
            "attempt_number": index % 4 + 1,
        }
    if report_type == "studio_flow_execution":
        prefix = "studio_flow_executions_aggregated."
        return {
            prefix + "flow_execution_id": row_id,
            prefix + "flow_name": ("Main IVR", "After hours", "Callback")[(bits >> 50) % 3],
            prefix + "flow_execution_started_time": _wall(at, tz),
            prefix + "flow_execution_finished_time": _wall(at + dt.timedelta(seconds=duration % 300), tz),
            prefix + "exit_reason": ("transfer", "hangup", "voicemail", "error")[(bits >> 60) % 4],
            prefix + "steps_count": (bits >> 70) % 12 + 1,
        }
    if report_type == "audit_logs":
        return {
            "event_id": row_id,
            "event_type": ("user.login", "user.update", "role.assign", "number.release")[(bits >> 50) % 4],
            "actor_id": agent_id,
            "actor_name": agent,
            "occurred_at": _iso_z(at),
            "ip_address": f"10.{(bits >> 60) % 256}.{(bits >> 70) % 256}.{(bits >> 80) % 256}",
        }
    # messaging_contacts
    return {
        "conversation_id": row_id,
        "channel": ("sms", "whatsapp", "chat")[(bits >> 50) % 3],
        "started_at": _iso_z(at),
        "ended_at": _iso_z(at + dt.timedelta(seconds=duration)),
        "messages_count": (bits >> 60) % 40 + 1,
        "agent_id": agent_id,
    }


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
