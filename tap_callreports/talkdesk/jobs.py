"""Talkdesk Explore report jobs (`VendorJobs` for one report type).

Job flow (per type and window): POST /data/reports/{type}/jobs -> 202 with the job (under `job`,
or bare); poll GET /data/reports/{type}/jobs/{id} -> 200 while created/processing/uploading,
then 300 (or 303) with Location, or 200 with status done and `_links.files`; GET the file, which
answers 200 or 303 to a short-lived signed URL fetched without Authorization.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import requests

from tap_callreports.completeness import IncompleteResult, missing_rows, stated_empty, verify_counts
from tap_callreports.errors import ReportJobFailed, VendorRefused
from tap_callreports.ratelimit import Backoff
from tap_callreports.reportjobs.job import JobPhase, JobResult, JobStatus, StatusWords, Window, status_table
from tap_callreports.reportjobs.vendor import gone, unless_gone, vendor_details
from tap_callreports.responses import created_body, dig, id_from_location, json_body, vendor_words
from tap_callreports.retry import RetryPolicy
from tap_callreports.rowkeys import RowKeys
from tap_callreports.streaming import ReportDocument, csv_rows, ndjson_rows
from tap_callreports.timeutil import iso_z, offset_changes, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.ports import VendorPort

#: Talkdesk's job status words (the doc's: created, processing, uploading, done, failed, canceled,
#: deleted; any case) and those other job APIs use.
STATUS_WORDS = status_table(
    running=("created", "processing", "uploading"), done=("done",), ended=("failed", "canceled", "deleted")
)
REDIRECTS = (300, 301, 302, 303, 307, 308)
#: What storage answers for a short-lived link it no longer (or not yet) honours.
STORAGE_REFUSALS = (HTTPStatus.BAD_REQUEST, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND)
#: The `version` members of the report files the tap's layouts are built for (the pages: "v1").
KNOWN_FILE_VERSIONS = frozenset({"v1"})
# Row times just outside a window (a call's end) may fall in a nearby repeated hour too.
DST_MARGIN = dt.timedelta(days=1)


@dataclass
class TalkdeskJob:
    """What the tap keeps of a Talkdesk report job (`JobResult.vendor`), for its job record."""

    #: The job as Talkdesk last described it (its name, timezone, format, timespan).
    job: dict = field(default_factory=dict)
    #: The `_links` of the last answer that described the job.
    links: dict = field(default_factory=dict)
    #: How the file came: "direct", or "signed_url" (a redirect to storage).
    delivery: str | None = None


def jobs_path(report_type: str) -> str:
    """Where a report type's jobs are created, below the API base URL."""
    return f"/data/reports/{report_type}/jobs"


class TalkdeskReportJobs:
    """The report jobs of one Talkdesk report stream (one report type)."""

    def __init__(
        self,
        port: VendorPort,
        report_type: str,
        *,
        row_keys: t.Callable[[], bool],
        may_authenticate: t.Callable[[str], bool],
    ) -> None:
        """`row_keys`: whether the stream's key is `_row_key` (the catalog may set it);
        `may_authenticate`: whether a URL is one the stream sends credentials to (else storage)."""
        self.port = port
        self.report_type = report_type
        talkdesk = port.settings.talkdesk
        assert talkdesk is not None  # a Talkdesk stream exists only when it is configured
        self.talkdesk = talkdesk
        self.jobs_url = f"{talkdesk.api_url}{jobs_path(report_type)}"
        self.row_keys = row_keys
        self.may_authenticate = may_authenticate
        self.status_words = StatusWords("Talkdesk", STATUS_WORDS)
        self._versions_said: set[tuple[t.Any, t.Any]] = set()

    # ---- windows: boundaries every reading of the timespan agrees on ------------------------------

    @cached_property
    def report_zone(self) -> ZoneInfo:
        return ZoneInfo(self.talkdesk.report_timezone)

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

    def timespan_text(self, moment: dt.datetime, zone: str) -> str:
        """The doc says the job's timezone "will be applied" to from/to. Sent as wall-clock times in
        that zone without an offset, they mean the same instant whether Talkdesk honours an offset
        or reads the wall clock in the timezone (`job_zone` keeps boundaries off ambiguous times)."""
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")

    # ---- the job (any thread) ------------------------------------------------------------------

    def create(self, context: Context | None, window: Window, attempt: int) -> JobResult:
        """Talkdesk allows 15 report jobs queued or running per account (other tools' jobs count
        too) and answers 429 past that: AccountFull, and the runner waits for a slot."""
        zone = self.job_zone(window)
        job = self._create(window, zone)
        return JobResult(
            job_id=str(job.get("id")),
            window=window,
            attempt=attempt,
            created_at=iso_z(utc_now()),
            timezone=zone,
            status=_status(job) or "created",
            vendor=TalkdeskJob(job=job),
        )

    def creation(self, context: Context | None, window: Window) -> str:
        return f"a free report-job slot for {self.report_type} {window}"

    def recorded_details(self, context: Context | None) -> TalkdeskJob:
        return TalkdeskJob()

    def describe(self, result: JobResult) -> str:
        return f"report job {result.job_id} for {self.report_type} {result.window}"

    def delete(self, result: JobResult) -> None:
        """A job the tap will not read (its file proved incomplete): free it at Talkdesk."""
        port = self.port
        try:
            port.send("DELETE", f"{self.jobs_url}/{result.job_id}").close()
        except Exception as exc:  # noqa: BLE001 - best effort: the job expires at Talkdesk anyway
            port.logger.info("%s: could not delete job %s (%s)", port.name, result.job_id, type(exc).__name__)

    def _create(self, window: Window, zone: str) -> dict:
        port = self.port
        body = {
            "name": f"tap-callreports {self.report_type} {window}",
            "timezone": zone,
            "format": self.talkdesk.report_format,
            "timespan": {"from": self.timespan_text(window.start, zone), "to": self.timespan_text(window.end, zone)},
        }
        response = port.send("POST", self.jobs_url, json=body, creates_job=True)
        answer = created_body(response, port.name)
        job = answer.get("job", answer) if isinstance(answer, dict) else None
        if (not isinstance(job, dict) or not job.get("id")) and id_from_location(response):
            # Created, its id only in the Location header (an empty 201/202 body).
            job = {**(job or {}), "id": id_from_location(response), "status": "created"}
        if not isinstance(job, dict) or not job.get("id"):
            raise ReportJobFailed(
                port.name,
                f"creating a {self.report_type} report job answered "
                f"{response.status_code} without a job id (in its body or a Location header): "
                f"{vendor_words(answer)}; run again later, and report it to Talkdesk if it persists",
            )
        return job

    def poll(self, context: Context | None, result: JobResult) -> JobStatus | Backoff | None:
        """One poll: 300/303 with Location, or 200 with a status meaning done (`STATUS_WORDS`) -> the
        file URL; a status meaning ended, or a job Talkdesk no longer has (404) -> ended; a status
        the tap does not know -> done when the answer links the file, else polled again."""
        port = self.port
        url = f"{self.jobs_url}/{result.job_id}"
        details = vendor_details(result, TalkdeskJob)
        response = unless_gone(lambda: port.send("GET", url, allow_redirects=False))
        if response is None:
            return gone("Talkdesk", "job")
        result.polls += 1
        body = json_body(response, port.name) if response.content else {}
        job = body.get("job", body) if isinstance(body, dict) else {}
        if isinstance(job, dict) and job:
            details.job = job
            details.links = body.get("_links") or {}
        if response.status_code in REDIRECTS and response.headers.get("Location"):
            result.status = "done"
            return JobStatus.done_at(urljoin(url, response.headers["Location"]))
        word = job.get("status") if isinstance(job, dict) else None
        status = _status(job) if isinstance(job, dict) else ""
        if status != result.status:
            port.logger.info("%s: %s is %s", port.name, self.describe(result), status or "(no status)")
            result.status = status
        files = dig(body, "_links", "files", "href")
        phase = self.status_words.phase(word, body, port.logger, port.name)
        if phase is None and files:
            phase = JobPhase.DONE  # a word the tap does not know, but a files link: the file is there
        if phase is JobPhase.DONE:
            return JobStatus.done_at(urljoin(url, files or f"/data/reports/{self.report_type}/files/{result.job_id}"))
        if phase is JobPhase.ENDED:
            return JobStatus.ended_as(status)
        return Backoff.asked_by(response)  # still running: ask again when it asked, or per the poll policy

    # ---- the rows (main thread) ----------------------------------------------------------------

    def _files_url(self, result: JobResult) -> str:
        return f"{self.talkdesk.api_url}/data/reports/{self.report_type}/files/{result.job_id}"

    def file_gone(self, context: Context | None, result: JobResult) -> str | None:
        """A GET of the files endpoint, body left unread: a 404 asks the job once."""
        try:
            self.port.download(self._files_url(result)).close()
        except VendorRefused as exc:
            if exc.status != HTTPStatus.NOT_FOUND:
                return None
            status = self.poll(context, result)
            return status.word if isinstance(status, JobStatus) and status.ended else None
        return None

    def _open_file(self, context: Context | None, result: JobResult) -> requests.Response:
        """The file, from the files endpoint (or the Location a done job gave). The files endpoint
        may not have it yet right after done (404): wait and ask again, a few times. A short-lived
        download link that storage refuses (expired, not consistent yet: 400/403/404 from a host
        that gets no credentials) is asked for afresh at the files endpoint, a few times. A file
        that stays missing makes the result incomplete, and so the job is created again. A missing
        file (or a link refused again) is a question for the job, asked once: a job that ended
        or is gone is created again at once (`JobVanished`)."""
        port = self.port
        ask_job = port.ask_job
        tries = port.settings.max_retries + 1
        url, not_found, refused = result.location, 0, 0
        while True:
            try:
                return port.download(url)
            except VendorRefused as exc:
                if not self.may_authenticate(exc.url):
                    if exc.status not in STORAGE_REFUSALS:
                        raise
                    refused += 1
                    if refused == 2:  # noqa: PLR2004 - a fresh link did not cure it
                        ask_job(context, result, f"storage refused its download link twice ({exc.status})")
                    if refused >= tries:
                        raise IncompleteResult(
                            f"storage refused its download link {refused} times "
                            f"({exc.status} from {urlsplit(exc.url).hostname})",
                            0,
                        ) from None
                    port.logger.warning(
                        "%s: storage refused the download link of job %s (%s); asking the files "
                        "endpoint for a fresh one (try %d of %d)",
                        port.name,
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
                if not_found == 1:
                    ask_job(context, result, "its file is not found (404) at the files endpoint")
                if not_found >= tries:
                    raise IncompleteResult("its file is not found (404) at the files endpoint", 0) from None
                wait = RetryPolicy.of(port.settings).wait_seconds(None, not_found)
                port.logger.warning(
                    "%s: the file of job %s is not there yet (404); asking again in %.1fs (try %d of %d)",
                    port.name,
                    result.job_id,
                    wait,
                    not_found + 1,
                    tries,
                )
                time.sleep(wait)

    def read(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        fmt = self.talkdesk.report_format
        response = self.port.open_report(result, fmt, lambda: self._open_file(context, result))
        vendor_details(result, TalkdeskJob).delivery = "signed_url" if response.url != result.location else "direct"
        origin = {
            "report_job_id": result.job_id,
            "report_window_start": iso_z(result.window.start),
            "report_window_end": iso_z(result.window.end),
        }
        zone_name = result.timezone or self.job_zone(result.window)
        zone = ZoneInfo(zone_name)
        local_zone = None if zone_name == self.talkdesk.report_timezone else self.report_zone
        shape = self.port.shaper().shape
        # `_row_key` counts identical rows from the result's first row: every row is read and keyed,
        # then the first `skip` are passed over here rather than by the reader.
        row_keys = RowKeys() if self.row_keys() else None
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
                self._check_file_version({**document.header, **document.trailer})
            result.verdict = verify_counts(read, counts)
        finally:
            response.close()

    def _check_file_version(self, members: t.Mapping[str, t.Any]) -> None:
        """A file's `type`/`version` members the tap was not built for: said once per run in a
        WARNING naming the stream; the rows land all the same (new fields through schema growth)."""
        version, kind = members.get("version"), members.get("type")
        unknown = []
        if version is not None and str(version) not in KNOWN_FILE_VERSIONS:
            unknown.append(f"version {version!r} (the tap reads {', '.join(sorted(KNOWN_FILE_VERSIONS))})")
        if kind is not None and str(kind) != self.report_type:
            unknown.append(f"type {kind!r}")
        said = (kind, version)
        if unknown and said not in self._versions_said:
            self._versions_said.add(said)
            self.port.logger.warning(
                "%s: the %s report file says %s, which this tap was not built for; its rows still land "
                "(fields the layout does not list become new columns): check docs/talkdesk-report-rows.md "
                "and the tap's releases for this layout",
                self.port.name,
                self.report_type,
                " and ".join(unknown),
            )

    # ---- the job record ------------------------------------------------------------------------

    def record(self, result: JobResult, rows: int, outcome: str) -> dict:
        status = "done" if outcome == "emitted" else outcome
        details = vendor_details(result, TalkdeskJob)
        job = details.job
        return {
            "id": result.job_id,
            "report_type": self.report_type,
            "name": job.get("name"),
            "timezone": job.get("timezone", self.talkdesk.report_timezone),
            "status": status,
            "format": job.get("format", self.talkdesk.report_format),
            "timespan": job.get("timespan") or {"from": iso_z(result.window.start), "to": iso_z(result.window.end)},
            "links": details.links or {},
            "rows_read": rows,
            "attempt": result.attempt,
            "window_start": iso_z(result.window.start),
            "window_end": iso_z(result.window.end),
            "file_delivery": details.delivery,
            "finished_at": iso_z(utc_now()),
        }


def _status(job: dict) -> str:
    """A job status as compared here: lower case (the doc writes DONE and done)."""
    return str(job.get("status") or "").strip().lower()
