"""MyReports: `myreports_call_rows` (rows of report results) and the requests behind them.

Flow per report and window: POST .../reports/{report}/requests {reportId, dateFilter{start,end}}
-> data.requestId; poll GET .../requests/{requestId} until data.status is Complete; GET
.../requests/{requestId}/data. A result with rowLimitExceeded was cut: the window is split in two
and both halves run instead (recursively), before any of its rows is emitted.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import typing as t
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from singer_sdk import StreamSchema
from singer_sdk.exceptions import FatalAPIError

from tap_callreports.errors import ReportJobFailed, StreamError
from tap_callreports.myreports.client import MyReportsStream
from tap_callreports.reportjobs import Window
from tap_callreports.reportstream import JobResult, ReportJobStream, SplitWindow
from tap_callreports.responses import dig
from tap_callreports.schemas import SCHEMAS
from tap_callreports.streaming import ReportDocument
from tap_callreports.timeutil import LocalTimeConverter, fall_back_transitions, iso_z, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

COMPLETE = "complete"
ENDED = ("failed", "error", "cancelled", "canceled")
ROW_ARRAYS = ("data", "data.data")  # the documented bare result, or the same inside the envelope


def result_members(document: ReportDocument, members: dict) -> dict:
    """The result's own members from the header or trailer: as they are in the documented bare
    result, or under `data` when the result came inside the envelope."""
    found = members.get("data") if document.array_key == "data.data" else members
    return found if isinstance(found, dict) else {}


def offset_iso(moment: dt.datetime) -> str:
    """ISO 8601 with an explicit offset, as MyReports' dateFilter wants."""
    return moment.astimezone(dt.timezone.utc).isoformat()


class MyReportsCallRowsStream(MyReportsStream, ReportJobStream):
    """Call rows, one partition (and bookmark) per report id."""

    name = "myreports_call_rows"
    path = "/v1.0/workspaces/{workspace_id}/reports/{report_id}/requests"  # a label for request metrics
    primary_keys = ("docId",)
    replication_key = "start_utc"
    schema = StreamSchema(SCHEMAS)
    job_stream_name = "myreports_requests"

    @property
    def partitions(self) -> list[dict] | None:
        return [{"report_id": report_id} for report_id in self.myreports.report_ids] or None

    @property
    def window_days(self) -> int:
        return self.myreports.window_days

    @property
    def data_lag(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.myreports.data_lag_minutes)

    def get_new_paginator(self) -> None:
        return None

    def describe_context(self, context: Context | None) -> str:
        return f" [report {context['report_id']}]" if context else ""

    def report_url(self, report_id: str) -> str:
        return f"{self.url_base}/v1.0/workspaces/{self.myreports.workspace_id}/reports/{report_id}"

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        if not context:
            return  # no report ids configured
        yield from super().extract_records(context)

    # ---- the request (worker thread) -----------------------------------------------------------

    def start_and_wait(self, context: Context | None, window: Window, attempt: int,
                       stop: threading.Event) -> tuple[JobResult, str | None]:
        assert context is not None
        report_id = context["report_id"]
        body = {"reportId": report_id, "dateFilter": {"start": offset_iso(window.start), "end": offset_iso(window.end)}}
        created = self.envelope_data(self.send("POST", f"{self.report_url(report_id)}/requests", json=body))
        request_id = str(dig(created, "requestId") or "")
        if not request_id:
            raise ReportJobFailed(self.name, f"creating a request for report {report_id} answered without a "
                                  "requestId; the vendor changed its format, report it")
        result = JobResult(job_id=request_id, window=window, attempt=attempt,
                           location=f"{self.report_url(report_id)}/requests/{request_id}/data",
                           details={"report_id": report_id, "created_at": iso_z(utc_now())})
        self.logger.info("%s: created request %s for report %s %s (attempt %d)", self.name, request_id,
                         report_id, window, attempt)
        what = f"{self.name}: {self.describe_job(result)}"
        seen: dict[str, t.Any] = {}
        outcome = self.tap.engine.wait_for(lambda: self._poll(report_id, request_id, seen, what), what, stop)
        result.details.update(status=seen.get("status"), status_message=seen.get("message"))
        return result, (None if outcome == COMPLETE else str(seen.get("status")).lower())

    def describe_job(self, result: JobResult) -> str:
        message = result.details.get("status_message")
        return (f"request {result.job_id} for report {result.details.get('report_id')} {result.window}"
                + (f" ({message})" if message and result.details.get("status") != "Complete" else ""))

    def _poll(self, report_id: str, request_id: str, seen: dict, what: str) -> str | None:
        data = self.envelope_data(self.send("GET", f"{self.report_url(report_id)}/requests/{request_id}"))
        status = str(dig(data, "status") or "")
        if status != seen.get("status"):
            self.logger.info("%s is %s", what, status or "(no status)")
        seen["status"], seen["message"] = status, dig(data, "statusMessage")
        if status.lower() == COMPLETE:
            return COMPLETE
        if status.lower() in ENDED:
            return "ended"
        return None

    # ---- the rows (main thread) ----------------------------------------------------------------

    def _open_result(self, result: JobResult) -> t.Any:
        try:
            return self.open_download(result.location)
        except FatalAPIError as exc:
            if " 404 " not in f" {exc} ":
                raise
            # The reference's headings say /results/{id}/data where its examples say /requests/.
            result.location = result.location.replace("/requests/", "/results/")
            return self.open_download(result.location)

    def read_result(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        response = self._open_result(result)
        try:
            document = ReportDocument(response.raw, ROW_ARRAYS)
            meta = result_members(document, document.header)
            result.details["meta"] = meta
            tz = self._time_zone(meta, result)
            transitions = fall_back_transitions(tz, result.window.start, result.window.end)
            if transitions:
                # Local times in the hour before a fall-back happen twice: split there, and each
                # half's own bounds tell which occurrence a row is.
                raise SplitWindow(result.window.split_at(transitions[0]),
                                  f"{tz} turns its clocks back at {iso_z(transitions[0])}")
            if "rowLimitExceeded" in meta:
                self._check_limit(meta, result)
                rows: t.Iterable[dict] = document.rows(skip)
            else:
                rows = self._spooled_rows(document, result, skip)
            report_id, request_id = result.details["report_id"], result.job_id
            to_utc = LocalTimeConverter(tz, result.window.start, result.window.end).to_utc_text
            for row in rows:
                row["start_utc"] = to_utc(row.get("start"))
                row["report_id"] = report_id
                row["request_id"] = request_id
                yield row
            result.details["trailer"] = result_members(document, document.trailer)
            self._warn_on_count(meta, document.rows_read, result)
        finally:
            response.close()

    def _time_zone(self, meta: dict, result: JobResult) -> ZoneInfo:
        name = dig(meta, "request", "timeZoneId") or "UTC"
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise StreamError(self.name, f"request {result.job_id} reports the unknown time zone '{name}'; "
                              "start_utc cannot be computed; report it") from None

    def _check_limit(self, meta: dict, result: JobResult) -> None:
        if meta.get("rowLimitExceeded"):
            try:
                halves = result.window.halves()
            except ValueError:
                raise StreamError(self.name, f"request {result.job_id}: even one second ({result.window}) holds more "
                                  f"than rowLimit={dig(meta, 'request', 'rowLimit')} rows; cannot split further") from None
            raise SplitWindow(halves, f"rowLimitExceeded: {meta.get('totalCount')} rows over rowLimit "
                              f"{dig(meta, 'request', 'rowLimit') or meta.get('rowLimit')}")

    def _spooled_rows(self, document: ReportDocument, result: JobResult, skip: int) -> t.Iterator[dict]:
        """rowLimitExceeded after the rows (not the documented order): park the rows on disk,
        decide, then replay them — memory stays flat."""
        with tempfile.TemporaryFile() as spool:
            for row in document.rows(skip):
                spool.write(orjson.dumps(row) + b"\n")
            self._check_limit(result_members(document, document.trailer), result)
            spool.seek(0)
            for line in spool:
                yield orjson.loads(line)

    def _warn_on_count(self, meta: dict, rows: int, result: JobResult) -> None:
        total = meta.get("totalCount")
        if isinstance(total, int) and total != rows:
            self.logger.warning("%s: request %s holds %d rows but says totalCount=%d", self.name, result.job_id,
                                rows, total)

    # ---- the request record ----------------------------------------------------------------------

    def job_record(self, result: JobResult, rows: int, outcome: str) -> dict:
        meta = result.details.get("meta") or {}
        trailer = result.details.get("trailer") or {}
        request = meta.get("request") if isinstance(meta.get("request"), dict) else {}
        return {
            "request_id": result.job_id,
            "report_id": result.details.get("report_id"),
            "workspace_id": self.myreports.workspace_id,
            "report_template_name": request.get("reportTemplateName"),
            "time_zone_id": request.get("timeZoneId"),
            "window_start": iso_z(result.window.start),
            "window_end": iso_z(result.window.end),
            "total_count": meta.get("totalCount"),
            "row_limit": request.get("rowLimit", trailer.get("rowLimit")),
            "row_limit_exceeded": meta.get("rowLimitExceeded", trailer.get("rowLimitExceeded")),
            "rows_read": rows,
            "summary": trailer.get("summary", meta.get("summary")),
            "effort": meta.get("effort"),
            "query_duration": meta.get("queryDuration"),
            "total_duration": meta.get("totalDuration"),
            "query_count": meta.get("queryCount"),
            "status": result.details.get("status"),
            "status_message": result.details.get("status_message"),
            "outcome": outcome,
            "attempt": result.attempt,
            "finished_at": iso_z(utc_now()),
        }
