"""Talkdesk Explore reports: one row stream per report type, and `talkdesk_report_jobs`.

Job flow (per type and window): POST /data/reports/{type}/jobs -> 202 with the job (under `job`,
or bare); poll GET /data/reports/{type}/jobs/{id} -> 200 while created/processing/uploading,
then 300 (or 303) with Location, or 200 with status done and `_links.files`; GET the file, which
answers 200 or 303 to a short-lived signed URL fetched without Authorization.
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urljoin

from singer_sdk.exceptions import RetriableAPIError

from tap_callreports.conform import convert_text_row, text_converters
from tap_callreports.errors import ReportJobFailed
from tap_callreports.reportjobs import Window
from tap_callreports.reportstream import JobResult, ReportJobStream
from tap_callreports.responses import dig, json_body
from tap_callreports.schemas import load_schema
from tap_callreports.streaming import ReportDocument, csv_rows, ndjson_rows
from tap_callreports.talkdesk.client import TalkdeskStream
from tap_callreports.timeutil import iso_z, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.tap import TapCallReports

ENDED = ("failed", "canceled", "cancelled", "deleted")
REDIRECTS = (300, 301, 302, 303, 307, 308)
ORIGIN_FIELDS = {
    "report_job_id": {"type": ["string"], "description": "The Talkdesk report job this row came from."},
    "report_window_start": {"type": ["string"], "format": "date-time",
                            "description": "Start (inclusive) of the job's timespan."},
    "report_window_end": {"type": ["string"], "format": "date-time",
                          "description": "End (exclusive) of the job's timespan; the replication key."},
}
AUDIT_LOG_LAG = dt.timedelta(hours=1)


class TalkdeskReportStream(TalkdeskStream, ReportJobStream):
    """Rows of one Explore report type. No primary key: no documented field is unique per row
    (a call can have several rows), so rows are appended; the bookmark is the end of the last
    window whose rows were all emitted."""

    replication_key = "report_window_end"
    primary_keys: t.ClassVar[list[str]] = []
    job_stream_name = "talkdesk_report_jobs"

    def __init__(self, tap: TapCallReports, report_type: str) -> None:
        self.report_type = report_type
        schema = load_schema(f"talkdesk_{report_type}")
        schema["properties"].update(ORIGIN_FIELDS)
        super().__init__(tap, name=f"talkdesk_{report_type}", schema=schema,
                         path=f"/data/reports/{report_type}/jobs")

    @cached_property
    def text_plan(self) -> dict:
        """CSV cells are text: typed columns are converted per the schema, planned once."""
        return text_converters(self.schema)

    @property
    def window_days(self) -> int:
        return self.talkdesk.window_days

    @property
    def data_lag(self) -> dt.timedelta:
        lag = dt.timedelta(minutes=self.talkdesk.data_lag_minutes)
        return max(lag, AUDIT_LOG_LAG) if self.report_type == "audit_logs" else lag

    def get_new_paginator(self) -> None:
        return None

    # ---- the job (worker thread) -------------------------------------------------------------

    def start_and_wait(self, context: Context | None, window: Window, attempt: int,
                       stop: threading.Event) -> tuple[JobResult, str | None]:
        job = self._create_when_a_slot_is_free(window, stop)
        job_id = str(job.get("id"))
        result = JobResult(job_id=job_id, window=window, attempt=attempt, location="",
                           details={"job": job, "links": {}, "created_at": iso_z(utc_now())})
        self.logger.info("%s: created job %s for %s (attempt %d)", self.name, job_id, window, attempt)
        what = f"{self.name}: {self.describe_job(result)}"
        seen: dict[str, t.Any] = {"status": job.get("status", "created"), "job": job, "links": {}}
        outcome = self.tap.engine.wait_for(lambda: self._poll(job_id, seen, what), what, stop)
        result.details.update(job=seen["job"], links=seen["links"])
        if outcome == "ended":
            return result, seen["status"]
        self.logger.info("%s: job %s done after %d polls", self.name, job_id, seen.get("polls", 0))
        result.location = outcome
        return result, None

    def describe_job(self, result: JobResult) -> str:
        return f"report job {result.job_id} for {self.report_type} {result.window}"

    def _create_when_a_slot_is_free(self, window: Window, stop: threading.Event) -> dict:
        """Talkdesk allows 15 report jobs queued or running per account (other tools' jobs count
        too) and answers 429 past that: wait for a slot, pausing like a poll, up to job_timeout."""

        def attempt() -> dict | None:
            try:
                return self._create(window)
            except RetriableAPIError as exc:
                if exc.response is None or exc.response.status_code != HTTPStatus.TOO_MANY_REQUESTS:
                    raise
                return None

        job = attempt()
        if job is not None:
            return job
        self.logger.warning("%s: the account is at its report-job limit; waiting for a free slot for %s",
                            self.name, window)
        return self.tap.engine.wait_for(attempt, f"{self.name}: a free report-job slot for {self.report_type} {window} "
                                        "(Talkdesk allows 15 queued or running per account)", stop)

    def _create(self, window: Window) -> dict:
        body = {
            "name": f"tap-callreports {self.report_type} {window}",
            "timezone": self.talkdesk.report_timezone,
            "format": self.talkdesk.report_format,
            "timespan": {"from": iso_z(window.start), "to": iso_z(window.end)},
        }
        response = self.send("POST", f"{self.url_base}{self.path}", json=body)
        answer = json_body(response, self.name)
        job = answer.get("job", answer) if isinstance(answer, dict) else None
        if not isinstance(job, dict) or not job.get("id"):
            raise ReportJobFailed(self.name, f"creating a {self.report_type} report job answered "
                                  f"{response.status_code} without a job id; the vendor changed its format, report it")
        return job

    def _poll(self, job_id: str, seen: dict, what: str) -> str | None:
        """One poll: the file URL when done, 'ended' when failed/canceled/deleted, None to wait."""
        url = f"{self.url_base}{self.path}/{job_id}"
        response = self.send("GET", url, allow_redirects=False)
        seen["polls"] = seen.get("polls", 0) + 1
        body = json_body(response, self.name) if response.content else {}
        job = body.get("job", body) if isinstance(body, dict) else {}
        if isinstance(job, dict) and job:
            seen["job"] = job
            seen["links"] = body.get("_links") or {}
        if response.status_code in REDIRECTS and response.headers.get("Location"):
            seen["status"] = "done"
            return urljoin(url, response.headers["Location"])
        status = str(job.get("status", "")).lower() if isinstance(job, dict) else ""
        if status != seen.get("status"):
            self.logger.info("%s is %s", what, status or "(no status)")
            seen["status"] = status
        if status == "done":
            href = dig(body, "_links", "files", "href") or f"/data/reports/{self.report_type}/files/{job_id}"
            return urljoin(url, href)
        if status in ENDED:
            return "ended"
        return None

    # ---- the rows (main thread) ----------------------------------------------------------------

    def read_result(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        response = self.open_download(result.location)
        result.details["delivery"] = "signed_url" if response.url != result.location else "direct"
        origin = {"report_job_id": result.job_id, "report_window_start": iso_z(result.window.start),
                  "report_window_end": iso_z(result.window.end)}
        try:
            fmt = self.talkdesk.report_format
            if fmt == "csv":
                plan = self.text_plan
                rows: t.Iterator[dict] = (convert_text_row(row, plan) for row in csv_rows(response.raw, skip))
            elif fmt == "json_bulk":
                rows = ndjson_rows(response.raw, skip)
            else:
                document = ReportDocument(response.raw, ["entries"])
                rows = document.rows(skip)
            for row in rows:
                row.update(origin)
                yield row
            if fmt == "json":
                self._check_total(document, result)
        finally:
            response.close()

    def _check_total(self, document: ReportDocument, result: JobResult) -> None:
        total = document.trailer.get("total", document.header.get("total"))
        if isinstance(total, int) and total != document.rows_read:
            raise ReportJobFailed(self.name, f"the file of job {result.job_id} ({result.window}) says total={total} "
                                  f"but holds {document.rows_read} entries; nothing past {iso_z(result.window.start)} "
                                  "was bookmarked; run again, and report it to Talkdesk if it persists")

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
