"""The sandbox's MyReports: the OAuth2 refresh grant (JWT access tokens), workspaces and reports,
report requests and their /data results (cut at rowLimit), in MyReports' envelope."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import time
import typing as t
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import orjson
from werkzeug.wrappers import Request, Response

from tap_callreports.sandbox.data import MYREPORTS_REPORTS, MYREPORTS_WORKSPACE
from tap_callreports.sandbox.shapes import (
    MYREPORTS_CALL_LIST,
    MYREPORTS_ERROR_ENVELOPES,
    MYREPORTS_LOCATION_ONLY,
    MYREPORTS_RESULT_MEMBERS,
    MYREPORTS_RESULT_ORDER,
    MYREPORTS_STATUS_WORDS,
    MYREPORTS_TEMPLATES,
    MYREPORTS_VANISHED_REQUESTS,
    MYREPORTS_WALL_TIMES,
)
from tap_callreports.sandbox.vendor import UTC, VendorApi, envelope, job_finished_by_clock, json_response, parse_moment

if t.TYPE_CHECKING:
    from tap_callreports.sandbox.server import Sandbox


MYREPORTS_ACTIVE = ("Pending", "Processing")


@dataclass
class MyReportsRequest:
    id: str
    report_id: str
    start: dt.datetime
    end: dt.datetime
    date_filter: dict
    created: float
    created_at: dt.datetime
    outcome: str
    attempt: int = 1
    status: str = "Pending"
    polls: int = 0
    file_path: str | None = None
    file_size: int = 0


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _members(obj: dict) -> bytes:
    """A JSON object's members without its braces (to splice a streamed array between them)."""
    return orjson.dumps(obj)[1:-1]


class MyReportsApi(VendorApi):
    """MyReports' routes and its state: refresh and access tokens, report requests."""

    NAME = "myreports"
    ROUTES = (
        ("/myreports/oauth/token", "token", ["POST"]),
        ("/api/v1.0/workspaces", "workspaces", ["GET"]),
        ("/api/v1.0/workspaces/<ws>/reports", "reports", ["GET"]),
        ("/api/v1.0/workspaces/<ws>/reports/<rep>/requests", "create", ["POST"]),
        ("/api/v1.0/workspaces/<ws>/reports/<rep>/requests/<rid>", "poll", ["GET"]),
        ("/api/v1.0/workspaces/<ws>/reports/<rep>/requests/<rid>/data", "result", ["GET"]),
        ("/api/v1.0/workspaces/<ws>/reports/<rep>/results/<rid>/data", "result", ["GET"]),
    )

    def __init__(self, box: Sandbox) -> None:
        super().__init__(box)
        self._tokens: dict[str, int] = {}  # issued MyReports access token -> its JWT exp (unix time)
        self._refresh_tokens = {box.config.myreports_refresh_token}  # refresh tokens that still work
        self._jwt_key = uuid.uuid4().bytes
        self.requests: dict[str, MyReportsRequest] = {}
        self._request_attempts: dict[str, int] = {}

    def jobs_held(self) -> dict[str, MyReportsRequest]:
        return self.requests

    def token(self, request: Request) -> Response:
        """OAuth2 refresh grant: a refresh token (and the client) for a JWT access token."""
        if unavailable := self.box.token_unavailable(request):
            return unavailable
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client, secret, how = auth.username, auth.password, "basic"
        else:
            client, secret, how = request.form.get("client_id"), request.form.get("client_secret"), "form"
        cfg = self.config
        if client != cfg.myreports_client_id or secret != cfg.myreports_client_secret:
            return json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                401,
                {"WWW-Authenticate": 'Basic realm="myreports"'},
            )
        if request.form.get("grant_type") != "refresh_token":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be refresh_token"}, 400
            )
        used = request.form.get("refresh_token", "")
        new_refresh = uuid.uuid4().hex if cfg.myreports_rotate_refresh else None
        with self.lock:
            if used not in self._refresh_tokens:
                return json_response(
                    {
                        "error": "invalid_grant",
                        "error_description": "The refresh token is invalid, expired or was already used",
                    },
                    400,
                )
            if new_refresh is not None:  # rotation: the used refresh token stops working
                self._refresh_tokens.discard(used)
                self._refresh_tokens.add(new_refresh)
            exp = int(time.time()) + cfg.myreports_access_ttl
            token = self._jwt({"sub": "sandbox", "exp": exp, "jti": uuid.uuid4().hex})
            self._tokens[token] = exp
        self.box.event("myreports_refresh_used", refresh_token=used, client_auth=how, rotated=new_refresh is not None)
        self.box.event("myreports_token_issued", token=token, exp=exp)
        answer: dict = {"access_token": token, "token_type": "Bearer"}
        if cfg.myreports_token_expires_in:
            answer["expires_in"] = cfg.myreports_access_ttl
        if new_refresh is not None:
            answer["refresh_token"] = new_refresh
        return json_response(answer, headers={"Cache-Control": "no-store"})

    def _jwt(self, payload: dict) -> str:
        signing_input = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"})) + "." + _b64url(orjson.dumps(payload))
        signature = hmac.new(self._jwt_key, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64url(signature)

    def _token_valid(self, token: str | None) -> bool:
        """The static token, or an access token this sandbox issued whose exp has not passed."""
        if token is not None and token == self.config.myreports_token:
            return True
        with self.lock:
            exp = self._tokens.get(token or "")
        return exp is not None and time.time() < exp

    def _auth(self, request: Request) -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "bearer" or not self._token_valid(auth.token):
            return envelope(None, "error", "Unauthorised", "The token is missing, invalid or expired", 401)
        return None

    def workspaces(self, request: Request) -> Response:
        if denied := self._auth(request):
            return denied
        return json_response(
            {"page_size": 1, "data": [{"id": MYREPORTS_WORKSPACE, "name": "Sandbox", "default": True}]}
        )

    def reports(self, request: Request, ws: str) -> Response:
        if denied := self._auth(request):
            return denied
        if ws != MYREPORTS_WORKSPACE:
            return envelope(None, "error", "NotFound", "Workspace not found", 404)
        return json_response([{"id": rid, "name": name} for rid, (name, _tz) in MYREPORTS_REPORTS.items()])

    def create(self, request: Request, ws: str, rep: str) -> Response:
        if denied := self._auth(request):
            return denied
        if ws != MYREPORTS_WORKSPACE or rep not in MYREPORTS_REPORTS:
            return envelope(None, "error", "NotFound", "Workspace or report not found", 404)
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return envelope(None, "error", "BadRequest", "Malformed JSON body", 400)
        if not isinstance(body, dict) or body.get("reportId") != rep:
            return envelope(None, "error", "BadRequest", "reportId must match the report in the path", 400)
        date_filter = body.get("dateFilter") or {}
        # The doc leaves open how an offset is read; under the shape, as a wall time in the report's zone.
        wall = bool(self.box.first_on(MYREPORTS_WALL_TIMES))
        zone = ZoneInfo(MYREPORTS_REPORTS[rep][1]) if wall else UTC
        start, end = (
            parse_moment(date_filter.get("start"), zone, wall),
            parse_moment(date_filter.get("end"), zone, wall),
        )
        if start is None or end is None or end <= start:
            return envelope(
                None,
                "error",
                "BadRequest",
                "dateFilter needs start < end, ISO 8601 with offset (presets are not served here)",
                400,
            )
        now = dt.datetime.now(UTC)
        with self.lock:
            limit = self.config.myreports_max_active_requests
            active = sum(1 for req in self.requests.values() if self._settle(req) in MYREPORTS_ACTIVE)
            if limit is not None and active >= limit:
                self.box.event("job_rejected", vendor="myreports", report_id=rep, active=active)
                return envelope(None, "error", "TooManyRequests", "Too many report requests running", 429)
            key = f"{rep}:{start.isoformat()}:{end.isoformat()}"
            attempt = self._request_attempts[key] = self._request_attempts.get(key, 0) + 1
            req = MyReportsRequest(
                id=str(uuid.uuid4()),
                report_id=rep,
                start=start,
                end=end,
                date_filter=date_filter,
                created=time.monotonic(),
                created_at=now,
                outcome=self.box.job_outcome(key, attempt, start),
                attempt=attempt,
            )
            self.requests[req.id] = req
            if req.outcome == "done":
                self.box.build_early(req.id, lambda: self._write_result(req))
        self.box.event(
            "job_created",
            vendor="myreports",
            job_id=req.id,
            report_id=rep,
            start=start.isoformat(),
            end=end.isoformat(),
            attempt=attempt,
        )
        if location_only := self.box.first_on(MYREPORTS_LOCATION_ONLY):
            return Response(
                b"", status=location_only, headers={"Location": f"{self.box.host(request)}{request.path}/{req.id}"}
            )
        return envelope(
            {
                "requestId": req.id,
                "locale": "en-GB",
                "referenceDate": now.isoformat(),
                "dateFilter": date_filter,
                "startTime": start.isoformat(),
                "endTime": end.isoformat(),
            }
        )

    def _lookup(self, ws: str, rep: str, rid: str) -> MyReportsRequest | None:
        req = self.requests.get(rid)
        if ws != MYREPORTS_WORKSPACE or req is None or req.report_id != rep:
            return None
        return req

    def poll(self, request: Request, ws: str, rep: str, rid: str) -> Response:
        if denied := self._auth(request):
            return denied
        with self.lock:
            req = self._lookup(ws, rep, rid)
            if req is None:
                return envelope(None, "error", "NotFound", "Request not found", 404)
            was = req.status
            req.polls += 1
            self._settle(req, polled=True)
            if req.status == "Complete" and req.file_path is None:
                self.box.file_built(req.id, lambda: self._write_result(req))  # built early, or now
        self.box.event("job_polled", vendor="myreports", job_id=req.id, status=req.status)
        if req.status != was and req.status not in MYREPORTS_ACTIVE:
            self.box.event("job_finished", vendor="myreports", job_id=req.id, status=req.status)
        message = {
            "Pending": "Report queued",
            "Processing": "Report processing",
            "Complete": "Report processing complete",
            "Failed": "Report processing failed: query timeout",
            "Cancelled": "Report request was cancelled",
        }[req.status]
        status = self.box.rewrite(MYREPORTS_STATUS_WORDS, req.status)
        return envelope(
            {
                "requestId": req.id,
                "reportId": req.report_id,
                "status": status,
                "statusMessage": message,
                "dateCreated": req.created_at.isoformat(),
            }
        )

    def _settle(self, req: MyReportsRequest, polled: bool = False) -> str:
        """(Holding the lock.) The request's status now, by the job clock
        (vendor.job_finished_by_clock): it finishes whether polled or not. A poll reports its own
        change (`poll`); a change nobody polled is an event here."""
        if req.status not in MYREPORTS_ACTIVE:
            return req.status
        if not job_finished_by_clock(req.polls, time.monotonic() - req.created, self.config):
            req.status = "Processing" if req.polls else "Pending"
            return req.status
        req.status = {"done": "Complete", "failed": "Failed"}.get(req.outcome, "Cancelled")
        if not polled:
            self.box.event("job_finished", vendor="myreports", job_id=req.id, status=req.status, by="clock")
        return req.status

    def _write_result(self, req: MyReportsRequest) -> None:
        name, tz_name = MYREPORTS_REPORTS[req.report_id]
        tz = ZoneInfo(tz_name)
        rows = self.data.myreports_rows(req.report_id, req.start, req.end)
        start_and_end = self.box.shape("myreports-filter-start-and-end")
        if start_and_end:  # the call must also have ended before the filter's end
            rows = [(ts, row) for ts, row in rows if ts + float(row.get("duration") or 0) < req.end.timestamp()]
        total = len(rows)
        limit = self.config.myreports_row_limit
        exceeded = total > limit
        kept = rows[:limit]
        if kept and not exceeded and req.attempt == 1 and self.box.shape("myreports-count-short-once"):
            kept = kept[:-1]  # totalCount still counts it
        summary = {"ans": 0, "ref": 0, "lost": 0, "ring": 0.0, "duration": 0.0}
        template, template_fields = self.box.first_on(MYREPORTS_TEMPLATES) or MYREPORTS_CALL_LIST
        for _ts, row in rows:
            for key in summary:
                summary[key] += row.get(key, 0)
        request_doc = {
            "requestId": req.id,
            "dateCreated": req.created_at.isoformat(),
            "tenantId": "00000000-0000-0000-0000-000000000000",
            "reportId": req.report_id,
            "reportTemplateName": template,
            "filterConditions": [
                {"fieldName": "start", "operator": ">=", "values": [req.start.isoformat()]},
                {"fieldName": "end" if start_and_end else "start", "operator": "<", "values": [req.end.isoformat()]},
            ],
            "sortFields": [{"fieldName": "start", "direction": 1}],
            "displayFields": [
                {"fieldName": f, "mandatory": False}
                for f in (
                    "connId",
                    "start",
                    "userName",
                    "userNum",
                    "cli",
                    "cliName",
                    "hgNum",
                    "callType",
                    "callDir",
                    "ans",
                    "ref",
                    "lost",
                    "ring",
                    "duration",
                    "calledUserNum",
                    "calledUserName",
                    "callUserName",
                    "callUserNum",
                    "hgName",
                    *template_fields,
                )
            ],
            "childDisplayFields": [],
            "ignoreDisplayFields": False,
            "metadata": {
                "reportName": name,
                "dateFilter": req.date_filter,
                "timezoneDateFrom": req.start.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S"),
                "timezoneDateTo": req.end.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S"),
            },
            "source": "api",
            "pageSize": -1,
            "batchSize": -1,
            "rowLimit": limit,
            "timeZoneId": tz_name,
            "countryCode": "GB",
            "locale": "en-GB",
            "maxRows": 0,
        }
        head = {
            "requestId": req.id,
            "tenantId": "00000000-0000-0000-0000-000000000000",
            "request": request_doc,
            "effort": round(total * 0.23, 2),
            "queryDuration": 20 + total // 100,
            "totalDuration": 25 + total // 90,
            "queryCount": total,
            "rowLimitExceeded": exceeded,
            "totalCount": total,
        }
        for _name, change in self.box.switched_on(MYREPORTS_RESULT_MEMBERS):
            change(head, len(kept))
        tail = {
            "summary": [summary],
            "status": 1,
            "statusMessage": "Report processing complete",
            "rowLimit": self.box.count_as_sent(limit),
        }
        order = self.box.first_on(MYREPORTS_RESULT_ORDER)
        before, after = order(head, tail) if order else (head, tail)
        enveloped = self.box.shape("myreports-data-enveloped")
        path = os.path.join(self.box.workdir, f"mr-{req.id}.json")
        with open(path, "wb") as out:
            if enveloped:
                out.write(b'{"data":')
            empty_as_null = not kept and self.box.shape("myreports-empty-data-null")
            out.write(b"{" + _members(before) + (b',"data":null' if empty_as_null else b',"data":['))
            for index, row in enumerate(self.box.all_as_sent(row for _ts, row in kept)):
                encoded = orjson.dumps(row)
                if self.box.faults.profile.malformed and index == 1 and b'"userName":"' in encoded:
                    # The vendor's own documented example has a row like this.
                    encoded = encoded.replace(b'"userName":"', b'"userName":', 1)
                out.write((b"," if index else b"") + encoded)
            out.write((b"," if empty_as_null else b"],") + _members(after) + b"}")
            if enveloped:
                out.write(
                    b","
                    + _members(
                        {
                            "error": None,
                            "message": None,
                            "status": "success",
                            "timestamp": dt.datetime.now(UTC).isoformat(),
                        }
                    )
                    + b"}"
                )
        req.file_path, req.file_size = path, os.path.getsize(path)
        self.box.event("file_ready", job_id=req.id, rows=len(kept), total=total, exceeded=exceeded, bytes=req.file_size)

    def result(self, request: Request, ws: str, rep: str, rid: str) -> Response:
        if denied := self._auth(request):
            return denied
        with self.lock:
            req = self._lookup(ws, rep, rid)
        if req is not None and req.attempt == 1 and any(self.box.met(n, req.id) for n in MYREPORTS_VANISHED_REQUESTS):
            with self.lock:
                self.requests.pop(req.id, None)  # expired with its data
            self.box.event("fault", fault="request-vanished", job_id=req.id)
            req = None
        if req is None:
            return envelope(None, "error", "NotFound", "Request not found", 404)
        if req.status != "Complete" or req.file_path is None:
            return envelope(None, "error", "BadRequest", f"Report request is not complete (status {req.status})", 400)
        if any(self.box.met(name, req.id) for name in MYREPORTS_ERROR_ENVELOPES):
            self.box.event("fault", fault="error-envelope", path=request.path)
            return envelope(None, "error", "InternalError", "Result not available")
        self.box.event("file_download", job_id=req.id, via="api")
        return self.box.file_response(
            request, req.file_path, req.file_size, "application/json; charset=utf-8", f"data:{req.id}"
        )
