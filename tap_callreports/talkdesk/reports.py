"""Talkdesk Explore reports: one row stream per report type, and `talkdesk_report_jobs`.

Job flow (per type and window): POST /data/reports/{type}/jobs -> 202 with the job (under `job`,
or bare); poll GET /data/reports/{type}/jobs/{id} -> 200 while created/processing/uploading,
then 300 (or 303) with Location, or 200 with status done and `_links.files`; GET the file, which
answers 200 or 303 to a short-lived signed URL fetched without Authorization.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import requests

from tap_callreports.client import VendorRefused
from tap_callreports.completeness import IncompleteResult, missing_rows, stated_empty, verify_counts
from tap_callreports.errors import ReportJobFailed
from tap_callreports.reportjobs.job import (
    COMMON_STATUS_WORDS,
    JobPhase,
    JobResult,
    JobStatus,
    StatusWords,
    Window,
)
from tap_callreports.reportjobs.stream import ReportJobStream
from tap_callreports.responses import created_body, dig, id_from_location, json_body, vendor_words
from tap_callreports.rowshape import ROW_KEY, RowKeys, RowPolicy, RowShaper, SchemaGrowth, text_or_instant
from tap_callreports.schemas import load_schema
from tap_callreports.settings import TALKDESK_MAX_WINDOW_DAYS
from tap_callreports.streaming import ReportDocument, csv_rows, ndjson_rows
from tap_callreports.talkdesk.client import TalkdeskStream
from tap_callreports.timeutil import iso_z, offset_changes, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.tap import TapCallReports

#: Talkdesk's job status words (the doc's: created, processing, uploading, done, failed, canceled,
#: deleted; any case) and those other job APIs use.
STATUS_WORDS = COMMON_STATUS_WORDS
REDIRECTS = (300, 301, 302, 303, 307, 308)
#: What storage answers for a short-lived link it no longer (or not yet) honours.
STORAGE_REFUSALS = (HTTPStatus.BAD_REQUEST, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND)
# Row times just outside a window (a call's end) may fall in a nearby repeated hour too.
DST_MARGIN = dt.timedelta(days=1)
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
AUDIT_LOG_LAG = dt.timedelta(hours=1)

_CONTACT_TIMES = ("started_at", "answered_at", "connected_at", "finished_at")
_RING_TIMES = ("ring_started_at_time", "ring_finished_at_time")
_STUDIO_TIMES = ("timestamp", "flow_execution_finished_time")
# Calls payloads requested on or after 2026-05-11 renamed four fields: one column each, whichever arrives.
CALLS_RENAMED = {"interaction_id": "call_id", "call_type": "type", "start_time": "start_at", "end_time": "end_at"}


def _policy(**how: t.Any) -> RowPolicy:
    """Any Talkdesk report may come as CSV: empty text is null in every format; and Talkdesk writes
    a missing value as null or as the text "None": null in every column, known or added."""
    return RowPolicy(empty_text_is_null=True, none_text_is_null=True, **how)


#: Per report type, the warehouse shape of its rows (docs/talkdesk-report-rows.md documents each).
#: Keys: the fewest evidenced fields unique on the evidenced rows (tests/test_report_layouts.py
#: proves each on the sandbox's layouts); types without evidence carry no id the tap has seen, so
#: their key is the tap's `_row_key`. Instants: every time field of the layout; those the vendor
#: writes as wall-clock text keep a `_local` copy.
ROW_POLICIES: dict[str, RowPolicy] = {
    "calls": _policy(key=("call_id",), renamed=CALLS_RENAMED, instants=("start_at", "end_at", "csat_survey_time")),
    "contacts": _policy(key=("contact_id",), instants=_CONTACT_TIMES, local_instants=_CONTACT_TIMES),
    # One row per status change: a user enters one status at a given instant.
    "user_status": _policy(
        key=("user_id", "status_start_at"),
        instants=("status_start_at", "status_end_at"),
        local_instants=("status_start_at", "status_end_at"),
    ),
    "ring_attempts": _policy(key=("ring_attempt_id",), instants=_RING_TIMES, local_instants=_RING_TIMES),
    # One row per step of a flow execution, and no execution id: a step is its interaction's nth.
    "studio_flow_execution": _policy(
        key=("interaction_id", "step_execution_order"),
        strip_prefixes=("studio_flow_executions_aggregated.",),
        instants=_STUDIO_TIMES,
        local_instants=_STUDIO_TIMES,
    ),
    "explore_calls": _policy(key=(ROW_KEY,), renamed=CALLS_RENAMED),
    "audit_logs": _policy(key=(ROW_KEY,)),
    "messaging_contacts": _policy(key=(ROW_KEY,)),
}


class TalkdeskReportStream(TalkdeskStream, ReportJobStream):
    """Rows of one Explore report type, keyed by the report's natural id (`ROW_POLICIES`): a row
    read again (lookback, a resumed window) replaces itself in the warehouse. The bookmark is the
    end of the last window whose rows were all emitted."""

    replication_key = "report_window_end"
    job_stream_name = "talkdesk_report_jobs"
    max_window = dt.timedelta(days=TALKDESK_MAX_WINDOW_DAYS)
    shaper_checks_fields = True
    origin_fields = frozenset(ORIGIN_FIELDS)

    def __init__(self, tap: TapCallReports, report_type: str) -> None:
        self.report_type = report_type
        self.row_policy = ROW_POLICIES[report_type]
        self.vendor_schema = load_schema(f"talkdesk_{report_type}")
        schema = self.row_policy.output_schema(self.vendor_schema)
        schema["properties"].update(ORIGIN_FIELDS)
        super().__init__(tap, name=f"talkdesk_{report_type}", schema=schema, path=f"/data/reports/{report_type}/jobs")
        self.primary_keys = list(self.row_policy.key)
        # A CSV is this report only if its header names a column of the layout, old or new name
        # (types without an evidenced layout declare none: their header must look like one).
        declared, renamed = self.vendor_schema.get("properties", {}), self.row_policy.renamed
        self.report_columns = frozenset([*declared, *renamed, *renamed.values()]) if declared else frozenset()

    @cached_property
    def shaper(self) -> RowShaper:
        return RowShaper(
            self.row_policy,
            self.vendor_schema["properties"],
            known=lambda: self.schema_growth.known,
            on_unknown=self.grow_schema,
            conformer=lambda: self.new_conformer(self.instant_columns()),
            stream=self.name,
            instants=self.instant_columns,
            text_instants=lambda: self.schema_growth.text_instants,
        )

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

    def job_zone(self, window: Window) -> str:
        """The time zone a window's job is requested in: the configured one, except within a day of
        a daylight-saving change. There, wall times repeat (a fall-back: a boundary or a row's wall
        time could name two instants) or are skipped (a spring-forward: a month of wall time is a
        month and an hour), so those windows are requested in UTC; the `_local` copies are still the
        report zone's wall times. Every other boundary names one instant in the report zone."""
        if self.talkdesk.report_timezone != "UTC" and offset_changes(
            self.report_zone, window.start - DST_MARGIN, window.end + DST_MARGIN
        ):
            return "UTC"
        return self.talkdesk.report_timezone

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.talkdesk.lookback_minutes)

    @property
    def window_days(self) -> int:
        return self.talkdesk.window_days

    @property
    def data_lag(self) -> dt.timedelta:
        lag = dt.timedelta(minutes=self.talkdesk.data_lag_minutes)
        return max(lag, AUDIT_LOG_LAG) if self.report_type == "audit_logs" else lag

    def get_new_paginator(self) -> None:
        return None

    # ---- windows: boundaries every reading of the timespan agrees on ------------------------------

    @cached_property
    def report_zone(self) -> ZoneInfo:
        return ZoneInfo(self.talkdesk.report_timezone)

    def timespan_text(self, moment: dt.datetime, zone: str) -> str:
        """The doc says the job's timezone "will be applied" to from/to. Sent as wall-clock times in
        that zone without an offset, they mean the same instant whether Talkdesk honours an offset
        or reads the wall clock in the timezone (`job_zone` keeps boundaries off ambiguous times)."""
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")

    # ---- the job (any thread) ------------------------------------------------------------------

    def create_job(self, context: Context | None, window: Window, attempt: int, stop: threading.Event) -> JobResult:
        zone = self.job_zone(window)
        job = self._create_when_a_slot_is_free(window, zone, stop)
        return JobResult(
            job_id=str(job.get("id")),
            window=window,
            attempt=attempt,
            location="",
            details={
                "job": job,
                "links": {},
                "created_at": iso_z(utc_now()),
                "status": _status(job) or "created",
                "timezone": zone,
            },
        )

    def describe_job(self, result: JobResult) -> str:
        return f"report job {result.job_id} for {self.report_type} {result.window}"

    def delete_job(self, result: JobResult) -> None:
        """A job the tap will not read (its file proved incomplete): free it at Talkdesk."""
        try:
            self.send("DELETE", f"{self.url_base}{self.path}/{result.job_id}").close()
        except Exception as exc:  # noqa: BLE001 - best effort: the job expires at Talkdesk anyway
            self.logger.info("%s: could not delete job %s (%s)", self.name, result.job_id, type(exc).__name__)

    def _create_when_a_slot_is_free(self, window: Window, zone: str, stop: threading.Event) -> dict:
        """Talkdesk allows 15 report jobs queued or running per account (other tools' jobs count
        too) and answers 429 past that: the engine waits for a slot (`JobSlots.create`)."""
        return self.tap.engine.create(
            self.vendor,
            lambda: self._create(window, zone),
            f"{self.name}: a free report-job slot for {self.report_type} {window}",
            stop,
        )

    def _create(self, window: Window, zone: str) -> dict:
        body = {
            "name": f"tap-callreports {self.report_type} {window}",
            "timezone": zone,
            "format": self.talkdesk.report_format,
            "timespan": {"from": self.timespan_text(window.start, zone), "to": self.timespan_text(window.end, zone)},
        }
        response = self.send("POST", f"{self.url_base}{self.path}", json=body, creates_job=True)
        answer = created_body(response, self.name)
        job = answer.get("job", answer) if isinstance(answer, dict) else None
        if (not isinstance(job, dict) or not job.get("id")) and id_from_location(response):
            # Created, its id only in the Location header (an empty 201/202 body).
            job = {**(job or {}), "id": id_from_location(response), "status": "created"}
        if not isinstance(job, dict) or not job.get("id"):
            raise ReportJobFailed(
                self.name,
                f"creating a {self.report_type} report job answered "
                f"{response.status_code} without a job id (in its body or a Location header): "
                f"{vendor_words(answer)}; run again later, and report it to Talkdesk if it persists",
            )
        return job

    def poll_job(self, context: Context | None, result: JobResult) -> JobStatus | None:
        """One poll: 300/303 with Location, or 200 with a status meaning done (`STATUS_WORDS`) -> the
        file URL; a status meaning ended, or a job Talkdesk no longer has (404) -> ended; a status
        the tap does not know -> done when the answer links the file, else polled again."""
        url = f"{self.url_base}{self.path}/{result.job_id}"
        details = result.details
        try:
            response = self.send("GET", url, allow_redirects=False)
        except VendorRefused as exc:
            if exc.status == HTTPStatus.NOT_FOUND:
                return JobStatus(ended="gone (404: Talkdesk no longer has the job)")
            raise
        details["polls"] = details.get("polls", 0) + 1
        body = json_body(response, self.name) if response.content else {}
        job = body.get("job", body) if isinstance(body, dict) else {}
        if isinstance(job, dict) and job:
            details["job"] = job
            details["links"] = body.get("_links") or {}
        if response.status_code in REDIRECTS and response.headers.get("Location"):
            details["status"] = "done"
            return JobStatus(location=urljoin(url, response.headers["Location"]))
        word = job.get("status") if isinstance(job, dict) else None
        status = _status(job) if isinstance(job, dict) else ""
        if status != details.get("status"):
            self.logger.info("%s: %s is %s", self.name, self.describe_job(result), status or "(no status)")
            details["status"] = status
        files = dig(body, "_links", "files", "href")
        phase = self.status_words.phase(word, body, self.logger, self.name)
        if phase is None and files:
            phase = JobPhase.DONE  # a word the tap does not know, but a files link: the file is there
        if phase is JobPhase.DONE:
            return JobStatus(location=urljoin(url, files or f"/data/reports/{self.report_type}/files/{result.job_id}"))
        if phase is JobPhase.ENDED:
            return JobStatus(ended=status)
        return None

    @cached_property
    def status_words(self) -> StatusWords:
        return StatusWords("Talkdesk", STATUS_WORDS)

    # ---- the rows (main thread) ----------------------------------------------------------------

    def _files_url(self, result: JobResult) -> str:
        return f"{self.url_base}/data/reports/{self.report_type}/files/{result.job_id}"

    def _open_file(self, result: JobResult) -> requests.Response:
        """The file, from the files endpoint (or the Location a done job gave). The files endpoint
        may not have it yet right after done (404): wait and ask again, a few times. A short-lived
        download link that storage refuses (expired, not consistent yet: 400/403/404 from a host
        that gets no credentials) is asked for afresh at the files endpoint, a few times. A file
        that stays missing makes the result incomplete, and so the job is created again."""
        tries = self.settings.max_retries + 1
        url, not_found, refused = result.location, 0, 0
        while True:
            try:
                return self.open_download(url)
            except VendorRefused as exc:
                if not self.may_authenticate(exc.url):
                    if exc.status not in STORAGE_REFUSALS:
                        raise
                    refused += 1
                    if refused >= tries:
                        raise IncompleteResult(
                            f"storage refused its download link {refused} times "
                            f"({exc.status} from {urlsplit(exc.url).hostname})",
                            0,
                        ) from None
                    self.logger.warning(
                        "%s: storage refused the download link of job %s (%s); asking the files "
                        "endpoint for a fresh one (try %d of %d)",
                        self.name,
                        result.job_id,
                        exc.status,
                        refused + 1,
                        tries,
                    )
                    url = self._files_url(result)
                    continue
                if exc.status != HTTPStatus.NOT_FOUND:
                    raise
                not_found += 1
                if not_found >= tries:
                    raise IncompleteResult("its file is not found (404) at the files endpoint", 0) from None
                wait = self.retry_policy.wait_seconds(None, not_found)
                self.logger.warning(
                    "%s: the file of job %s is not there yet (404); asking again in %.1fs (try %d of %d)",
                    self.name,
                    result.job_id,
                    wait,
                    not_found + 1,
                    tries,
                )
                time.sleep(wait)

    def read_result(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        fmt = self.talkdesk.report_format
        response = self.open_report(result, fmt, lambda: self._open_file(result))
        result.details["delivery"] = "signed_url" if response.url != result.location else "direct"
        origin = {
            "report_job_id": result.job_id,
            "report_window_start": iso_z(result.window.start),
            "report_window_end": iso_z(result.window.end),
        }
        zone_name = result.details.get("timezone") or self.job_zone(result.window)
        zone = ZoneInfo(zone_name)
        local_zone = None if zone_name == self.talkdesk.report_timezone else self.report_zone
        shape = self.shaper.shape
        # `_row_key` counts identical rows from the result's first row: every row is read and keyed,
        # then the first `skip` are passed over here rather than by the reader.
        row_keys = RowKeys() if self.row_keys_needed else None
        read_skip, skip = (0, skip) if row_keys is not None else (skip, 0)
        try:
            counts: dict[str, t.Any] = {}
            if fmt == "csv":
                # Cells are text: the shaper's conformer types them per the target's schema.
                rows: t.Iterator[dict] = csv_rows(response.raw, read_skip)
            elif fmt == "json_bulk":
                rows = ndjson_rows(response.raw, read_skip)
            else:
                document = ReportDocument(response.raw, ["entries", ""])
                if document.array_key is None and not stated_empty(document.header, "entries", "total"):
                    raise missing_rows("'entries' list", vendor_words(document.header))
                rows = document.rows(read_skip)
            read = read_skip
            for row in rows:
                read += 1
                row = shape(row, zone, local_zone)
                if row_keys is not None:
                    row_keys.add(row)
                    if read <= skip:
                        continue
                row.update(origin)
                yield row
            if fmt == "json":
                read = document.rows_read
                counts["total"] = document.trailer.get("total", document.header.get("total"))
            result.details["verdict"] = verify_counts(read, counts)
        finally:
            response.close()

    # ---- the job record ------------------------------------------------------------------------

    def job_record(self, result: JobResult, rows: int, outcome: str) -> dict:
        status = "done" if outcome == "emitted" else outcome
        job = result.details.get("job") or {}
        return {
            "id": result.job_id,
            "report_type": self.report_type,
            "name": job.get("name"),
            "timezone": job.get("timezone", self.talkdesk.report_timezone),
            "status": status,
            "format": job.get("format", self.talkdesk.report_format),
            "timespan": job.get("timespan") or {"from": iso_z(result.window.start), "to": iso_z(result.window.end)},
            "links": result.details.get("links") or {},
            "rows_read": rows,
            "attempt": result.attempt,
            "window_start": iso_z(result.window.start),
            "window_end": iso_z(result.window.end),
            "file_delivery": result.details.get("delivery"),
            "finished_at": iso_z(utc_now()),
        }


def _status(job: dict) -> str:
    """A job status as compared here: lower case (the doc writes DONE and done)."""
    return str(job.get("status") or "").strip().lower()
