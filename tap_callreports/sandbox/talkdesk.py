"""The sandbox's Talkdesk: OAuth client credentials, bulk imports (HAL pages) and Explore report
jobs (created, polled, their files behind a 300/303 or a signed storage URL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import shutil
import time
import typing as t
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from werkzeug.wrappers import Request, Response

from tap_callreports.sandbox.shapes import (
    EXPIRED_LINK,
    IMPORTS_PAGE_2_NEXT,
    IMPORTS_PAGES,
    NOT_THE_FILE,
    TALKDESK_DONE_WITH_200,
    TALKDESK_EXPIRED_LINKS,
    TALKDESK_FILE_VERSIONS,
    TALKDESK_JSON_LAYOUTS,
    TALKDESK_LOCATION_ONLY,
    TALKDESK_ROWS,
    TALKDESK_STATUS_WORDS,
    TALKDESK_VANISHED_JOBS,
    TALKDESK_VANISHED_MID_DOWNLOAD,
    TALKDESK_WALL_TIMES,
    TOKEN_BURST_RATE,
    all_but_last,
    empty_file,
    imports_link_query,
    talkdesk_json_frame,
)
from tap_callreports.sandbox.vendor import CHUNK, UTC, VendorApi, job_finished_by_clock, json_response, parse_moment

if t.TYPE_CHECKING:
    from tap_callreports.sandbox.server import Sandbox

#: Every Explore report type the sandbox serves (the vendor's, not the tap's choice); the tests read it.
TALKDESK_REPORT_TYPES = [
    "calls",
    "explore_calls",
    "user_status",
    "contacts",
    "ring_attempts",
    "studio_flow_execution",
    "audit_logs",
    "messaging_contacts",
    "messaging_traffic",
    # No published API layout: the sandbox writes the data dictionary's labels as its column names
    # (a guess), which the tap reads under its generic rules.
    "feedback_flow",
]
TALKDESK_ACTIVE = ("created", "processing", "uploading")


@dataclass
class TalkdeskJob:
    id: str
    report_type: str
    name: str
    timezone: str
    format: str
    timespan: dict
    window: tuple[dt.datetime, dt.datetime]
    created: float
    outcome: str
    attempt: int = 1  # how many jobs were created for this (type, window) so far
    status: str = "created"
    polls: int = 0
    file_path: str | None = None
    file_size: int = 0
    redirect: bool = False


def talkdesk_error(
    status: int, code: str, message: str, fields: list[dict] | None = None, description: str | None = None
) -> Response:
    body: dict = {"code": code, "message": message, "fields": fields or []}
    if description:
        body["description"] = description
    return json_response(body, status)


def _csv_cell(value: t.Any) -> t.Any:
    """A CSV cell: null is empty, a list, object or boolean is its JSON text (true, not True)."""
    if value is None:
        return ""
    return orjson.dumps(value).decode() if isinstance(value, (list, dict, bool)) else value


def _content_type(fmt: str) -> str:
    return {"json": "application/json", "csv": "text/csv", "json_bulk": "application/x-ndjson"}[fmt]


class TalkdeskApi(VendorApi):
    """Talkdesk's routes and its state: issued tokens, report jobs, signed links, the imports list."""

    NAME = "talkdesk"
    ROUTES = (
        ("/oauth/token", "token", ["POST"]),
        ("/bulk-imports/users", "imports", ["GET"]),
        ("/bulk-imports/users/<import_id>", "import_one", ["GET"]),
        ("/data/reports/<report_type>/jobs", "create_job", ["POST"]),
        ("/data/reports/<report_type>/jobs/<job_id>", "job", ["GET", "DELETE"]),
        ("/data/reports/<report_type>/files/<job_id>", "file", ["GET"]),
        ("/_storage/talkdesk/<path:object_name>", "signed_file", ["GET"]),
        ("/_sandbox/talkdesk/imports", "add_imports", ["POST"]),
    )

    def __init__(self, box: Sandbox) -> None:
        super().__init__(box)
        self._tokens: dict[str, float] = {}  # issued OAuth token -> expiry (monotonic)
        self._burst_count = 0  # authenticated Talkdesk requests seen under talkdesk-401-burst
        self.jobs: dict[str, TalkdeskJob] = {}
        self._job_attempts: dict[str, int] = {}
        self._first_job_request: float | None = None  # when talkdesk_held_jobs starts counting
        self._signed: dict[str, tuple[str, float]] = {}  # signature -> (job id, expiry)
        self._imports_cache: list[dict] | None = None

    def jobs_held(self) -> dict[str, TalkdeskJob]:
        return self.jobs

    @property
    def answers_done_with_200(self) -> bool:
        """Shapes whose done jobs answer 200 with _links.files (the status word is what they test)."""
        return bool(self.box.first_on(TALKDESK_DONE_WITH_200))

    # ---- Talkdesk: auth ----------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        if unavailable := self.box.token_unavailable(request):
            return unavailable
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or auth.username != self.config.talkdesk_client_id
            or auth.password != self.config.talkdesk_client_secret
        ):
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if request.form.get("grant_type") != "client_credentials":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}, 400
            )
        token = uuid.uuid4().hex + uuid.uuid4().hex
        with self.lock:
            self._tokens[token] = time.monotonic() + self.config.token_ttl
        self.box.event("token_issued", token=token)
        scope = request.form.get("scope") or "bulk-imports:read data-reports:read data-reports:write"
        return json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.config.token_ttl, "scope": scope}
        )

    def _auth(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return talkdesk_error(401, "0000401", "Missing authorization header")
        if not header.startswith("Bearer "):
            return talkdesk_error(401, "0000401", "Unauthorized access", description="Bearer token expected")
        token = header[7:]
        if token == self.config.talkdesk_access_token:
            return None
        with self.lock:
            expires = self._tokens.get(token)
            if expires is not None and (self.box.faults.revoke_token_now() or self._burst_revokes()):
                self._tokens.pop(token, None)
                expires = None
        if expires is None or expires < time.monotonic():
            return talkdesk_error(
                401, "0000401", "Unauthorized access", description="The access token is invalid or expired"
            )
        return None

    def _burst_revokes(self) -> bool:
        """Under talkdesk-401-burst: whether this request's token is revoked now (seeded, in request order)."""
        if not self.box.shape("talkdesk-401-burst"):
            return False
        self._burst_count += 1
        if random.Random(f"{self.config.seed}:401-burst:{self._burst_count}").random() >= TOKEN_BURST_RATE:  # noqa: S311
            return False
        self.box.event("fault", fault="401-burst")
        return True

    # ---- Talkdesk: bulk imports ----------------------------------------------------------------

    def _imports(self) -> list[dict]:
        with self.lock:
            if self._imports_cache is None:
                self._imports_cache = self.data.imports()
            return self._imports_cache

    def imports(self, request: Request) -> Response:
        if denied := self._auth(request):
            return denied
        try:
            page = int(request.args.get("page", 1))
            per_page = int(request.args.get("per_page", 20))
        except ValueError:
            return talkdesk_error(
                400,
                "0000400",
                "Invalid query parameters",
                [{"name": "page", "description": "page and per_page must be integers"}],
            )
        if page < 1 or not 1 <= per_page <= 100:
            return talkdesk_error(
                400,
                "0000400",
                "Invalid query parameters",
                [{"name": "per_page", "description": "page >= 1 and 1 <= per_page <= 100"}],
            )
        rows = self._imports()
        total = len(rows)
        last = max(1, -(-total // per_page))
        items = rows[(page - 1) * per_page : page * per_page]
        base = f"{self.box.host(request)}/bulk-imports/users"

        def href(n: int, full: bool = False) -> dict:
            return {"href": f"{base}?{urlencode(imports_link_query(self.config.shapes, n, per_page, full))}"}

        links = {"self": href(page, full=True), "first": href(1), "last": href(last)}
        next_page = page + 1 if page < last else None
        if page == 2 and next_page is not None and (odd_next := self.box.first_on(IMPORTS_PAGE_2_NEXT)):  # noqa: PLR2004
            next_page = odd_next(page)
        if next_page is not None:
            links["next"] = href(next_page)
        if page > 1:
            links["prev"] = href(page - 1)
        host = self.box.host(request)
        embedded = [
            self.box.as_sent({**row, "_links": {k: {"href": host + v["href"]} for k, v in row["_links"].items()}})
            for row in items
        ]
        self.box.event("imports_page", page=page, per_page=per_page, count=len(items))
        self.box.move_while_read("imports", page, self._imports())
        answer = {
            "count": len(items),
            "total": self.box.count_as_sent(total),
            "page": page,
            "per_page": self.box.count_as_sent(per_page),
            "_embedded": {"imports": embedded},
            "_links": links,
        }
        return json_response(self.box.rewrite(IMPORTS_PAGES, answer))

    def import_one(self, request: Request, import_id: str) -> Response:
        if denied := self._auth(request):
            return denied
        for row in self._imports():
            if row["id"] == import_id:
                return json_response(self.box.as_sent(row))
        return talkdesk_error(404, "0000404", "Import not found")

    def add_imports(self, request: Request) -> Response:
        count = int(request.args.get("count", 1))
        at = parse_moment(request.args.get("at"), UTC) or dt.datetime.now(UTC)
        with self.lock:
            added = self.data.add_imports(count, at)
            self._imports_cache = None
        return json_response({"added": [row["id"] for row in added]})

    # ---- Talkdesk: report jobs ----------------------------------------------------------------

    def _job_body(self, request: Request, job: TalkdeskJob) -> dict:
        base = f"{self.box.host(request)}/data/reports/{job.report_type}"
        links = {"self": {"href": f"{base}/jobs/{job.id}"}}
        if job.status == "done":
            links["files"] = {"href": f"{base}/files/{job.id}"}
        status = self.box.rewrite(TALKDESK_STATUS_WORDS, job.status)
        return {
            "job": {
                "id": job.id,
                "name": job.name,
                "timezone": job.timezone,
                "status": status,
                "format": job.format,
                "timespan": job.timespan,
            },
            "_links": links,
        }

    def create_job(self, request: Request, report_type: str) -> Response:
        if denied := self._auth(request):
            return denied
        if invalid := self._type_invalid(report_type):
            return invalid
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return talkdesk_error(
                400, "0000400", "Invalid request body", [{"name": "body", "description": "malformed JSON"}]
            )
        fields = []
        timespan = body.get("timespan") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not body.get("name"):
            fields.append({"name": "name", "description": "is required"})
        body = body if isinstance(body, dict) else {}
        fmt = str(body.get("format"))
        if fmt not in ("csv", "json", "json_bulk"):
            fields.append({"name": "format", "description": "must be csv, json or json_bulk"})
        tz_name = body.get("timezone") or "UTC"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            fields.append({"name": "timezone", "description": "must be an IANA time zone"})
            tz = ZoneInfo("UTC")
        wall = bool(self.box.first_on(TALKDESK_WALL_TIMES))
        start = parse_moment((timespan or {}).get("from"), tz, wall)
        end = parse_moment((timespan or {}).get("to"), tz, wall)
        if start is None or end is None:
            fields.append({"name": "timespan", "description": "from and to are required ISO 8601 datetimes"})
        elif end <= start:
            fields.append({"name": "timespan.to", "description": "must be after timespan.from"})
        elif end - start > dt.timedelta(days=31):
            fields.append({"name": "timespan", "description": "at most one month of data per report"})
        if fields:
            return talkdesk_error(400, "0000400", "Invalid request body", fields)
        assert start is not None and end is not None
        with self.lock:
            active = sum(1 for job in self.jobs.values() if self._settle(job) in TALKDESK_ACTIVE)
            active += self._held_by_others()
            if active >= self.config.talkdesk_max_active_jobs:
                self.box.event("job_rejected", report_type=report_type, active=active)
                return talkdesk_error(
                    429,
                    "0000429",
                    "Too many report jobs queued or running",
                    description=f"At most {self.config.talkdesk_max_active_jobs} report jobs per account",
                )
            key = f"{report_type}:{start.isoformat()}:{end.isoformat()}"
            attempt = self._job_attempts[key] = self._job_attempts.get(key, 0) + 1
            job = TalkdeskJob(
                id=uuid.uuid4().hex,
                report_type=report_type,
                name=str(body["name"]),
                timezone=tz_name,
                format=fmt,
                timespan={"from": (timespan or {})["from"], "to": (timespan or {})["to"]},
                window=(start, end),
                created=time.monotonic(),
                outcome=self.box.job_outcome(key, attempt, start),
                attempt=attempt,
            )
            cfg = self.config.talkdesk_file_redirect
            job.redirect = cfg == "always" or (cfg == "alternate" and int(job.id, 16) % 2 == 0)
            self.jobs[job.id] = job
            if job.outcome == "done":
                self.box.build_early(job.id, lambda: self._write_file(job))
        self.box.event(
            "job_created",
            vendor="talkdesk",
            job_id=job.id,
            report_type=report_type,
            start=start.isoformat(),
            end=end.isoformat(),
            attempt=attempt,
            timezone=job.timezone,
        )
        answer = self._job_body(request, job)
        if location_only := self.box.first_on(TALKDESK_LOCATION_ONLY):
            return Response(b"", status=location_only, headers={"Location": answer["_links"]["self"]["href"]})
        return json_response(answer["job"] if self.config.talkdesk_bare_job else answer, 202)

    def _held_by_others(self) -> int:
        """(Holding the lock.) Report-job slots another client holds now (`talkdesk_held_jobs`)."""
        if self._first_job_request is None:
            self._first_job_request = time.monotonic()
        held = time.monotonic() - self._first_job_request < self.config.talkdesk_held_seconds
        return self.config.talkdesk_held_jobs if held else 0

    def _advance_job(self, job: TalkdeskJob) -> None:
        """(Holding the lock.) A poll: one more poll counts, then the job clock says where it is."""
        job.polls += 1
        self._settle(job, polled=True)
        if job.status == "done" and job.file_path is None:
            self.box.file_built(job.id, lambda: self._write_file(job))  # built early, or now

    def _settle(self, job: TalkdeskJob, polled: bool = False) -> str:
        """(Holding the lock.) The job's status now, by the job clock (vendor.job_finished_by_clock):
        it moves on whether polled or not, so jobs nobody polls free their slots. A poll reports
        its own change (`job`); a change nobody polled is an event here."""
        if job.status not in TALKDESK_ACTIVE:
            return job.status
        finished = job_finished_by_clock(job.polls, time.monotonic() - job.created, self.config)
        if finished:
            status = "done"
        elif job.polls == 0:
            status = "created"
        else:
            status = "processing" if job.polls == 1 and job.polls < self.config.job_polls else "uploading"
        if job.outcome == "canceled" and (job.polls >= 2 or finished):
            status = "canceled"
        if job.outcome == "failed" and status == "done":
            status = "failed"
        if not polled and status not in TALKDESK_ACTIVE:  # finished with nobody polling
            self.box.event("job_finished", vendor="talkdesk", job_id=job.id, status=status, by="clock")
        job.status = status
        return status

    @staticmethod
    def _type_invalid(report_type: str) -> Response | None:
        if report_type in TALKDESK_REPORT_TYPES:
            return None
        return talkdesk_error(
            400,
            "0000400",
            "Report type is invalid",
            [{"name": "type", "description": f"'{report_type}' is not a report type"}],
        )

    def job(self, request: Request, report_type: str, job_id: str) -> Response:
        if denied := self._auth(request):
            return denied
        if invalid := self._type_invalid(report_type):
            return invalid
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job.report_type != report_type:
                return talkdesk_error(404, "0000404", "Report job not found")
            if request.method == "DELETE":
                job.status = "deleted"
                self.box.event("job_deleted", job_id=job.id)
                return Response(status=204)
            was = job.status
            self._advance_job(job)
        self.box.event("job_polled", vendor="talkdesk", job_id=job.id, status=job.status)
        if job.status != was and job.status not in TALKDESK_ACTIVE:
            self.box.event("job_finished", vendor="talkdesk", job_id=job.id, status=job.status)
        body = self._job_body(request, job)
        if job.status == "done" and self.config.talkdesk_done_status in (300, 303) and not self.answers_done_with_200:
            location = f"/data/reports/{job.report_type}/files/{job.id}"
            if self.box.shape("talkdesk-location-other-host"):
                location = self._signed_url(request, job)
            return json_response(body, self.config.talkdesk_done_status, {"Location": location})
        return json_response(body)

    def _write_file(self, job: TalkdeskJob) -> None:
        start, end = job.window
        rows = self.box.all_as_sent(
            self.data.talkdesk_rows(job.report_type, start, end, ZoneInfo(job.timezone), dt.datetime.now(UTC))
        )
        for _name, (report_type, rewrite_rows) in self.box.switched_on(TALKDESK_ROWS):
            if report_type == job.report_type:
                rows = rewrite_rows(rows)
        path = os.path.join(self.box.workdir, f"td-{job.id}.{job.format}")
        count = 0
        with open(path, "wb") as out:
            if job.format == "json":
                count = self._write_json(out, rows, job, path)
            elif job.format == "json_bulk":
                for row in rows:
                    out.write(orjson.dumps(row) + b"\n")
                    count += 1
            else:
                import csv
                import io

                buffer = io.StringIO()
                writer: csv.DictWriter | None = None
                for row in rows:
                    if writer is None:
                        writer = csv.DictWriter(
                            buffer, fieldnames=list(row), extrasaction="ignore", lineterminator="\r\n"
                        )
                        writer.writeheader()
                    writer.writerow({k: _csv_cell(v) for k, v in row.items()})
                    count += 1
                    if buffer.tell() > CHUNK:
                        out.write(buffer.getvalue().encode())
                        buffer.seek(0)
                        buffer.truncate()
                if writer is None:  # as Talkdesk's: a CSV always has its header line
                    columns = self.data.talkdesk_columns(job.report_type, ZoneInfo(job.timezone), dt.datetime.now(UTC))
                    csv.writer(buffer, lineterminator="\r\n").writerow(columns)
                out.write(buffer.getvalue().encode())
        if count == 0 and (empty := empty_file(self.config.shapes, job.format)) is not None:
            with open(path, "wb") as out:
                out.write(empty)
        if self.box.faults.profile.malformed and job.format == "json":
            with open(path, "r+b") as out:
                out.truncate(max(1, os.path.getsize(path) - 25))
        job.file_path, job.file_size = path, os.path.getsize(path)
        self.box.event("file_ready", job_id=job.id, rows=count, bytes=job.file_size)

    def _write_json(self, out: t.BinaryIO, rows: t.Iterable[dict], job: TalkdeskJob, path: str) -> int:
        """Entries framed as the shapes say; returns how many entries the file holds."""
        layout = self.box.first_on(TALKDESK_JSON_LAYOUTS) or "entries-first"
        version = self.box.first_on(TALKDESK_FILE_VERSIONS) or "v1"
        dropped: list[dict] = []
        if layout != "bare-array" and job.attempt == 1 and self.box.shape("talkdesk-total-short-once"):
            rows = all_but_last(rows, dropped)  # total still counts the row left out

        def write_entries(target: t.BinaryIO) -> int:
            count = 0
            for row in rows:
                target.write((b"," if count else b"") + orjson.dumps(row))
                count += 1
            return count

        if layout != "total-first":
            head, _ = talkdesk_json_frame(layout, 0, job.report_type, version)
            out.write(head)
            count = write_entries(out)
            total = self.box.count_as_sent(count + len(dropped))
            out.write(talkdesk_json_frame(layout, total, job.report_type, version)[1])
            return count
        # total comes first: stream the entries aside, then write the file in order
        with open(path + ".entries", "w+b") as entries:
            count = write_entries(entries)
            total = self.box.count_as_sent(count + len(dropped))
            head, tail = talkdesk_json_frame(layout, total, job.report_type, version)
            out.write(head)
            entries.seek(0)
            shutil.copyfileobj(entries, out, CHUNK)
            out.write(tail)
        os.remove(path + ".entries")
        return count

    def _signed_url(self, request: Request, job: TalkdeskJob) -> str:
        """A short-lived presigned storage URL for the job's file (on another host under the
        shape talkdesk-location-other-host)."""
        signature = hashlib.sha256(f"{job.id}:{time.monotonic()}:{uuid.uuid4()}".encode()).hexdigest()
        with self.lock:
            self._signed[signature] = (job.id, time.monotonic() + self.config.signed_url_ttl)
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Expires": self.config.signed_url_ttl,
                "X-Amz-Signature": signature,
            }
        )
        host = (
            self.box.other_host(request) if self.box.shape("talkdesk-location-other-host") else self.box.host(request)
        )
        self.box.event("file_redirect", job_id=job.id, signature=signature)
        return f"{host}/_storage/talkdesk/{job.id}.{job.format}?{query}"

    def file(self, request: Request, report_type: str, job_id: str) -> Response:
        if denied := self._auth(request):
            return denied
        if invalid := self._type_invalid(report_type):
            return invalid
        with self.lock:
            job = self.jobs.get(job_id)
        if job is not None and job.attempt == 1 and any(self.box.met(name, job_id) for name in TALKDESK_VANISHED_JOBS):
            with self.lock:
                self.jobs.pop(job_id, None)  # gone with its file, as retention does
            self.box.event("fault", fault="job-vanished", job_id=job_id)
            job = None
        # A redirected job's file is served (and cut) by the signed URL, not here.
        mid_download = self._mid_download(job, serving=job is not None and not job.redirect)
        if mid_download == "gone":
            job = None
        cut_first = mid_download == "cut"
        if job is None or job.report_type != report_type or job.status != "done" or job.file_path is None:
            return talkdesk_error(404, "0000404", "Report file not found")
        if self.box.shape_once("talkdesk-files-404-once", job.id):
            self.box.event("fault", fault="file-404", path=request.path)
            return talkdesk_error(404, "0000404", "Report file not found")
        if answer := self._not_the_file(job.id):
            status, content_type, body, headers = answer
            return Response(body, status=status, content_type=content_type, headers=headers)
        if job.redirect:
            return Response(status=303, headers={"Location": self._signed_url(request, job)})
        self.box.event("file_download", job_id=job.id, via="api")
        return self.box.file_response(
            request, job.file_path, job.file_size, _content_type(job.format), f"file:{job.id}", cut=cut_first or None
        )

    def _mid_download(self, job: TalkdeskJob | None, *, serving: bool) -> str | None:
        """Under talkdesk-job-vanished-mid-download: "cut" for the first download of a first job
        (when this request serves the file), "gone" for any request after it (the job is deleted)."""
        if (
            job is None
            or job.attempt != 1
            or not self.box.shape(TALKDESK_VANISHED_MID_DOWNLOAD)
            or job.status != "done"
            or job.file_path is None
        ):
            return None
        if self.box.seen_once(TALKDESK_VANISHED_MID_DOWNLOAD, job.id):
            with self.lock:
                self.jobs.pop(job.id, None)  # gone after its first download broke
            self.box.event("fault", fault="job-vanished-mid-download", job_id=job.id)
            return "gone"
        if serving and self.box.shape_once(TALKDESK_VANISHED_MID_DOWNLOAD, job.id):
            return "cut"
        return None

    def _not_the_file(self, job_id: str) -> tuple[int, str, bytes, dict[str, str]] | None:
        """What the files endpoint answers instead of the file under a NOT_THE_FILE shape."""
        for name, answer in NOT_THE_FILE.items():
            if self.box.met(name, job_id):
                self.box.event("fault", fault=name, job_id=job_id)
                return answer
        return None

    def signed_file(self, request: Request, object_name: str) -> Response:
        if request.headers.get("Authorization"):
            # As S3 does: a presigned URL plus an Authorization header is two auth mechanisms.
            return Response(
                b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>",
                status=400,
                content_type="application/xml",
            )
        signature = request.args.get("X-Amz-Signature", "")
        with self.lock:
            entry = self._signed.get(signature)
        if entry is None or not object_name.startswith(entry[0]):
            return Response(
                b"<Error><Code>SignatureDoesNotMatch</Code></Error>", status=403, content_type="application/xml"
            )
        if entry[1] < time.monotonic() or any(self.box.met(name, entry[0]) for name in TALKDESK_EXPIRED_LINKS):
            self.box.event("fault", fault="link-expired", job_id=entry[0])
            return Response(EXPIRED_LINK, status=403, content_type="application/xml")
        with self.lock:
            job = self.jobs.get(entry[0])
        mid_download = self._mid_download(job, serving=True)
        if mid_download == "gone":
            job = None
        if job is None or job.file_path is None or self.box.shape_once("talkdesk-files-404-once", entry[0]):
            if job is not None:
                self.box.event("fault", fault="file-404", path=request.path)
            return Response(
                b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                status=404,
                content_type="application/xml",
            )
        self.box.event("file_download", job_id=job.id, via="signed-url")
        return self.box.file_response(
            request,
            job.file_path,
            job.file_size,
            _content_type(job.format),
            f"file:{job.id}",
            cut=mid_download == "cut" or None,
        )
