"""The sandbox: one local HTTP server (werkzeug) implementing the three vendors' documented
contracts — auth, pagination links, report-job life cycles, redirects, rate limits, errors —
over deterministic data. Faithful to ../shared/api-docs, not to the tap."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import random
import shutil
import socket
import tempfile
import threading
import time
import typing as t
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tap_callreports.sandbox.data import MYREPORTS_REPORTS, MYREPORTS_WORKSPACE, SandboxData
from tap_callreports.sandbox.faults import FaultInjector
from tap_callreports.sandbox.shapes import (
    EXPIRED_LINK,
    MYREPORTS_TEMPLATES,
    NOT_THE_FILE,
    SHAPES,
    TOKEN_BURST_RATE,
    UNTYPABLE_VALUES,
    all_but_last,
    check_shapes,
    empty_file,
    imports_link_query,
    imports_next_page,
    moved_while_read,
    myreports_members_as_other_types,
    myreports_split,
    myreports_unflag_cut,
    sent_as_other_types,
    status_word,
    talkdesk_json_frame,
    zendesk_next_host,
)

UTC = dt.UTC
TALKDESK_REPORT_TYPES = {
    "calls",
    "explore_calls",
    "user_status",
    "contacts",
    "ring_attempts",
    "studio_flow_execution",
    "audit_logs",
    "messaging_contacts",
}
TALKDESK_ACTIVE = ("created", "processing", "uploading")
CHUNK = 1 << 20


@dataclass
class SandboxConfig:
    seed: int = 1
    scale: int = 1
    faults: str = "none"
    host: str = "127.0.0.1"
    port: int = 0
    # credentials the sandbox accepts
    talkdesk_client_id: str = "sandbox-client-id"
    talkdesk_client_secret: str = "sandbox-client-secret"  # noqa: S105 - sandbox demo credential
    talkdesk_access_token: str = "sandbox-talkdesk-token"  # noqa: S105
    zendesk_email: str = "agent@example.com"
    zendesk_api_token: str = "sandbox-zendesk-token"  # noqa: S105
    zendesk_oauth_token: str = "sandbox-zendesk-oauth"  # noqa: S105
    myreports_token: str = "sandbox-myreports-token"  # noqa: S105
    token_ttl: int = 3600
    # MyReports OAuth2 refresh grant (POST /myreports/oauth/token)
    myreports_client_id: str = "sandbox-myreports-client"
    myreports_client_secret: str = "sandbox-myreports-secret"  # noqa: S105
    myreports_refresh_token: str = "sandbox-myreports-refresh"  # noqa: S105
    myreports_access_ttl: int = 3600  # seconds an issued access token lives
    myreports_rotate_refresh: bool = False  # every grant returns a new refresh token; the used one dies
    myreports_token_expires_in: bool = True  # False: no expires_in, the client must read the JWT's exp
    # named answer shapes the vendor docs allow (sandbox/shapes.py)
    shapes: tuple[str, ...] = ()
    # report jobs
    job_polls: int = 3  # polls until a job is done (created -> processing -> uploading -> done)
    job_seconds: float = 0.0  # and at least this long after creation
    talkdesk_done_status: int = 300  # 300 (current docs), 303 (older docs) or 200 (status done + _links.files)
    talkdesk_file_redirect: str = "alternate"  # always | never | alternate (303 to a signed URL)
    talkdesk_bare_job: bool = False  # answer job creation with a bare job instead of {"job": ...}
    talkdesk_max_active_jobs: int = 15
    myreports_max_active_requests: int | None = None  # undocumented at MyReports: none by default, then 429
    # another client holds this many Talkdesk slots, from the first job request on, for this long
    talkdesk_held_jobs: int = 0
    talkdesk_held_seconds: float = 0.0
    signed_url_ttl: int = 60
    myreports_row_limit: int = 1_000_000
    # jobs whose window starts at one of these instants (ISO, UTC) always end failed / canceled
    fail_windows: tuple[str, ...] = ()
    cancel_windows: tuple[str, ...] = ()
    zendesk_rate_limit: int = 700  # requests per window
    zendesk_rate_window_seconds: int = 60
    slow_seconds: float = 2.5
    # data volumes
    rows_per_hour: int | None = None
    myreports_rows_per_hour: int | None = None
    imports_count: int | None = None
    job_statuses_count: int | None = None
    calls_rename_cutover: str = "2026-05-11T00:00:00+00:00"
    list_anchor: str | None = None  # where imports/job statuses end (ISO); default: the last midnight

    def __post_init__(self) -> None:
        self.shapes = check_shapes(self.shapes)


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


def _json(body: t.Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def _td_error(
    status: int, code: str, message: str, fields: list[dict] | None = None, description: str | None = None
) -> Response:
    body: dict = {"code": code, "message": message, "fields": fields or []}
    if description:
        body["description"] = description
    return _json(body, status)


def _envelope(
    data: t.Any, status: str = "success", error: str | None = None, message: str | None = None, http_status: int = 200
) -> Response:
    return _json(
        {
            "data": data,
            "error": error,
            "message": message,
            "status": status,
            "timestamp": dt.datetime.now(UTC).isoformat(),
        },
        http_status,
    )


def _parse_moment(value: t.Any, tz: dt.tzinfo, wall: bool = False) -> dt.datetime | None:
    """An ISO moment as UTC; without an offset (or, when `wall`, whatever its offset) it is a wall
    time in `tz`."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo and not wall else parsed.replace(tzinfo=tz)).astimezone(UTC)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _members(obj: dict) -> bytes:
    """A JSON object's members without its braces (to splice a streamed array between them)."""
    return orjson.dumps(obj)[1:-1]


class Sandbox:
    """The WSGI application and its state."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.data = SandboxData(
            seed=config.seed,
            scale=config.scale,
            rows_per_hour=config.rows_per_hour,
            myreports_rows_per_hour=config.myreports_rows_per_hour,
            imports_count=config.imports_count,
            job_statuses_count=config.job_statuses_count,
            calls_rename_cutover=dt.datetime.fromisoformat(config.calls_rename_cutover),
            talkdesk_extra_fields="talkdesk-extra-field" in config.shapes,
            talkdesk_callback_at="talkdesk-added-wall-time" in config.shapes,
            myreports_summary_template="myreports-other-template" in config.shapes,
            untypable=tuple(s for s in config.shapes if any(s == shape for shape, _kind in UNTYPABLE_VALUES)),
        )
        if config.list_anchor:
            self.data.list_anchor = dt.datetime.fromisoformat(config.list_anchor.replace("Z", "+00:00"))
        self.faults = FaultInjector(config.faults, config.seed)
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}  # issued OAuth token -> expiry (monotonic)
        self._mr_tokens: dict[str, int] = {}  # issued MyReports access token -> its JWT exp (unix time)
        self._mr_refresh_tokens = {config.myreports_refresh_token}  # refresh tokens that still work
        self._jwt_key = uuid.uuid4().bytes
        self._burst_count = 0  # authenticated Talkdesk requests seen under talkdesk-401-burst
        self._once_seen: set[tuple[str, str]] = set()  # (shape, key) pairs already answered oddly
        self._jobs: dict[str, TalkdeskJob] = {}
        self._job_attempts: dict[str, int] = {}
        self._first_job_request: float | None = None  # when talkdesk_held_jobs starts counting
        self._signed: dict[str, tuple[str, float]] = {}  # signature -> (job id, expiry)
        self._requests: dict[str, MyReportsRequest] = {}
        self._request_attempts: dict[str, int] = {}
        self._zendesk_window = (0, 0)  # (minute, count)
        self._events: list[dict] = []
        self._workdir = tempfile.mkdtemp(prefix="callreports-sandbox-")
        self._imports_cache: list[dict] | None = None
        self._statuses_cache: list[dict] | None = None
        self.url_map = Map(
            [
                Rule("/oauth/token", endpoint="td_token", methods=["POST"]),
                Rule("/myreports/oauth/token", endpoint="mr_token", methods=["POST"]),
                Rule("/bulk-imports/users", endpoint="td_imports", methods=["GET"]),
                Rule("/bulk-imports/users/<import_id>", endpoint="td_import", methods=["GET"]),
                Rule("/data/reports/<report_type>/jobs", endpoint="td_create_job", methods=["POST"]),
                Rule("/data/reports/<report_type>/jobs/<job_id>", endpoint="td_job", methods=["GET", "DELETE"]),
                Rule("/data/reports/<report_type>/files/<job_id>", endpoint="td_file", methods=["GET"]),
                Rule("/_storage/talkdesk/<path:object_name>", endpoint="td_signed_file", methods=["GET"]),
                Rule("/api/v2/job_statuses", endpoint="zd_list", methods=["GET"]),
                Rule("/api/v2/job_statuses.json", endpoint="zd_list", methods=["GET"]),
                Rule("/api/v2/job_statuses/show_many", endpoint="zd_show_many", methods=["GET"]),
                Rule("/api/v2/job_statuses/show_many.json", endpoint="zd_show_many", methods=["GET"]),
                Rule("/api/v2/job_statuses/<status_id>", endpoint="zd_show", methods=["GET"]),
                Rule("/api/v1.0/workspaces", endpoint="mr_workspaces", methods=["GET"]),
                Rule("/api/v1.0/workspaces/<ws>/reports", endpoint="mr_reports", methods=["GET"]),
                Rule("/api/v1.0/workspaces/<ws>/reports/<rep>/requests", endpoint="mr_create", methods=["POST"]),
                Rule("/api/v1.0/workspaces/<ws>/reports/<rep>/requests/<rid>", endpoint="mr_request", methods=["GET"]),
                Rule(
                    "/api/v1.0/workspaces/<ws>/reports/<rep>/requests/<rid>/data", endpoint="mr_data", methods=["GET"]
                ),
                Rule("/api/v1.0/workspaces/<ws>/reports/<rep>/results/<rid>/data", endpoint="mr_data", methods=["GET"]),
                Rule("/_sandbox/health", endpoint="sb_health", methods=["GET"]),
                Rule("/_sandbox/events", endpoint="sb_events", methods=["GET"]),
                Rule("/_sandbox/talkdesk/imports", endpoint="sb_add_imports", methods=["POST"]),
                Rule("/_sandbox/forget", endpoint="sb_forget", methods=["POST"]),
            ]
        )

    # ---- plumbing ----------------------------------------------------------------------------

    def event(self, kind: str, **details: t.Any) -> None:
        with self._lock:
            self._events.append({"t": time.monotonic(), "wall": time.time(), "kind": kind, **details})

    def events(self, kind: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(e) for e in self._events if kind is None or e["kind"] == kind]

    def shape(self, name: str) -> bool:
        """Whether the named answer shape (sandbox/shapes.py) is switched on."""
        assert name in SHAPES, name
        return name in self.config.shapes

    def shape_once(self, name: str, key: str) -> bool:
        """True the first time the shape is met for `key` (a job, an endpoint), when it is on."""
        if not self.shape(name):
            return False
        with self._lock:
            if (name, key) in self._once_seen:
                return False
            self._once_seen.add((name, key))
        return True

    @property
    def answers_done_with_200(self) -> bool:
        """Shapes whose done jobs answer 200 with _links.files (the status word is what they test)."""
        return self.shape("talkdesk-status-words") or self.shape("talkdesk-status-unknown-done")

    def as_sent(self, row: dict) -> dict:
        """A row as the vendor writes it: under wrong-json-types, some values in another JSON type."""
        return sent_as_other_types(row) if self.shape("wrong-json-types") else row

    def all_as_sent(self, rows: t.Iterable[dict]) -> t.Iterable[dict]:
        """`as_sent` for a stream of rows, decided once (report files can hold millions)."""
        return map(sent_as_other_types, rows) if self.shape("wrong-json-types") else rows

    def count_as_sent(self, count: int) -> int | str:
        """A count beside the rows: as text under wrong-json-types (documented counts may be strings)."""
        return str(count) if self.shape("wrong-json-types") else count

    def close(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __call__(self, environ: dict, start_response: t.Callable) -> t.Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = _json({"code": str(exc.code), "message": exc.name}, exc.code or 500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if not request.path.startswith("/_sandbox/"):
            self.event("request", method=request.method, path=request.path)
            # Which host saw a credential: a token must never reach a host it does not belong to.
            self.event(
                "auth_seen",
                host=request.host,
                path=request.path,
                authorization=bool(request.headers.get("Authorization")),
            )
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return self._not_found(request)
        if not endpoint.startswith("sb_"):
            fault = self.faults.request_fault(f"{request.method} {request.full_path}")
            if fault:
                self.event("fault", fault=fault, path=request.path)
                answered = self._answer_fault(fault, request)
                if answered is not None:
                    return answered
        return getattr(self, endpoint)(request, **args)

    def _not_found(self, request: Request) -> Response:
        if request.path.startswith("/api/v2/"):
            return _json({"error": "InvalidEndpoint", "description": "Not found"}, 404)
        if request.path.startswith("/api/v1.0/"):
            return _envelope(None, "error", "NotFound", "Resource not found", 404)
        return _td_error(404, "0000404", "Resource not found")

    def _answer_fault(self, fault: str, request: Request) -> Response | None:
        if fault == "429-retry-after":
            return _json({"code": "0000429", "message": "Too many requests"}, 429, {"Retry-After": "1"})
        if fault == "429":
            return _json({"code": "0000429", "message": "Too many requests"}, 429)
        if fault in ("500", "502", "503"):
            return _json({"code": f"0000{fault}", "message": "Upstream trouble"}, int(fault))
        if fault == "drop":
            self._drop(request.environ)
            return Response(b"", status=500)
        if fault == "slow":
            time.sleep(self.config.slow_seconds)
            return None  # then answer normally, too late for a client with a short timeout
        return None

    @staticmethod
    def _drop(environ: dict) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _file_response(self, request: Request, path: str, size: int, content_type: str, key: str) -> Response:
        cut = self.faults.cut_body(key)
        environ = request.environ

        def body() -> t.Iterator[bytes]:
            sent = 0
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    if cut and sent + len(chunk) >= size // 2:
                        yield chunk[: max(1, size // 2 - sent)]
                        self.event("fault", fault="cut", path=request.path)
                        self._drop(environ)
                        return
                    sent += len(chunk)
                    yield chunk

        response = Response(body(), status=200, content_type=content_type, direct_passthrough=True)
        response.headers["Content-Length"] = str(size)
        return response

    def _host(self, request: Request) -> str:
        return request.host_url.rstrip("/")

    @staticmethod
    def _other_host(request: Request) -> str:
        """The same server under another name (127.0.0.1 <-> localhost): a storage host that is
        not the API host, so a client must not carry the API's credentials there."""
        name, _, port = request.host.rpartition(":")
        other = "localhost" if name == "127.0.0.1" else "127.0.0.1"
        return f"{request.scheme}://{other}:{port}"

    def _token_unavailable(self, request: Request) -> Response | None:
        """The token endpoint's one 503 under the shape token-fault-first."""
        if not self.shape_once("token-fault-first", request.path):
            return None
        self.event("fault", fault="503", path=request.path)
        return _json({"error": "temporarily_unavailable", "error_description": "Service unavailable, try again"}, 503)

    # ---- Talkdesk: auth ----------------------------------------------------------------------

    def td_token(self, request: Request) -> Response:
        if unavailable := self._token_unavailable(request):
            return unavailable
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or auth.username != self.config.talkdesk_client_id
            or auth.password != self.config.talkdesk_client_secret
        ):
            return _json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if request.form.get("grant_type") != "client_credentials":
            return _json(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}, 400
            )
        token = uuid.uuid4().hex + uuid.uuid4().hex
        with self._lock:
            self._tokens[token] = time.monotonic() + self.config.token_ttl
        self.event("token_issued", token=token)
        scope = request.form.get("scope") or "bulk-imports:read data-reports:read data-reports:write"
        return _json(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.config.token_ttl, "scope": scope}
        )

    def _td_auth(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return _td_error(401, "0000401", "Missing authorization header")
        if not header.startswith("Bearer "):
            return _td_error(401, "0000401", "Unauthorized access", description="Bearer token expected")
        token = header[7:]
        if token == self.config.talkdesk_access_token:
            return None
        with self._lock:
            expires = self._tokens.get(token)
            if expires is not None and (self.faults.revoke_token_now() or self._burst_revokes()):
                self._tokens.pop(token, None)
                expires = None
        if expires is None or expires < time.monotonic():
            return _td_error(
                401, "0000401", "Unauthorized access", description="The access token is invalid or expired"
            )
        return None

    def _burst_revokes(self) -> bool:
        """Under talkdesk-401-burst: whether this request's token is revoked now (seeded, in request order)."""
        if not self.shape("talkdesk-401-burst"):
            return False
        self._burst_count += 1
        if random.Random(f"{self.config.seed}:401-burst:{self._burst_count}").random() >= TOKEN_BURST_RATE:  # noqa: S311
            return False
        self.event("fault", fault="401-burst")
        return True

    # ---- Talkdesk: bulk imports ----------------------------------------------------------------

    def _imports(self) -> list[dict]:
        with self._lock:
            if self._imports_cache is None:
                self._imports_cache = self.data.imports()
            return self._imports_cache

    def td_imports(self, request: Request) -> Response:
        if denied := self._td_auth(request):
            return denied
        try:
            page = int(request.args.get("page", 1))
            per_page = int(request.args.get("per_page", 20))
        except ValueError:
            return _td_error(
                400,
                "0000400",
                "Invalid query parameters",
                [{"name": "page", "description": "page and per_page must be integers"}],
            )
        if page < 1 or not 1 <= per_page <= 100:
            return _td_error(
                400,
                "0000400",
                "Invalid query parameters",
                [{"name": "per_page", "description": "page >= 1 and 1 <= per_page <= 100"}],
            )
        rows = self._imports()
        total = len(rows)
        last = max(1, -(-total // per_page))
        items = rows[(page - 1) * per_page : page * per_page]
        base = f"{self._host(request)}/bulk-imports/users"

        bare = self.shape("imports-next-without-per-page")

        def href(n: int, full: bool = False) -> dict:
            return {"href": f"{base}?{urlencode(imports_link_query(n, per_page, bare and not full))}"}

        links = {"self": href(page, full=True), "first": href(1), "last": href(last)}
        next_page = imports_next_page(
            page, last, missing=self.shape("imports-next-missing"), repeated=self.shape("imports-next-repeated")
        )
        if next_page is not None:
            links["next"] = href(next_page)
        if page > 1:
            links["prev"] = href(page - 1)
        host = self._host(request)
        embedded = [
            self.as_sent({**row, "_links": {k: {"href": host + v["href"]} for k, v in row["_links"].items()}})
            for row in items
        ]
        self.event("imports_page", page=page, per_page=per_page, count=len(items))
        self._move_while_read("imports-expire-while-read", page == 1, self._imports())
        self._move_while_read("imports-move-while-read", page == 2, self._imports())  # noqa: PLR2004
        answer = {
            "count": len(items),
            "total": self.count_as_sent(total),
            "page": page,
            "per_page": self.count_as_sent(per_page),
            "_embedded": {"imports": embedded},
            "_links": links,
        }
        if not items and self.shape("imports-empty-no-embedded"):
            del answer["_embedded"]
        return _json(answer)

    def _move_while_read(self, shape: str, now: bool, rows: list[dict], every: bool = False) -> None:
        """Under a list-moving shape, change the served list once (or `every` time), right after the
        page `now` names."""
        if now and (self.shape(shape) if every else self.shape_once(shape, "list")):
            with self._lock:
                anchor = self.data.list_anchor.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                self.event("fault", fault=shape, id=moved_while_read(rows, shape, anchor))

    def td_import(self, request: Request, import_id: str) -> Response:
        if denied := self._td_auth(request):
            return denied
        for row in self._imports():
            if row["id"] == import_id:
                return _json(self.as_sent(row))
        return _td_error(404, "0000404", "Import not found")

    def sb_add_imports(self, request: Request) -> Response:
        count = int(request.args.get("count", 1))
        at = _parse_moment(request.args.get("at"), UTC) or dt.datetime.now(UTC)
        with self._lock:
            added = self.data.add_imports(count, at)
            self._imports_cache = None
        return _json({"added": [row["id"] for row in added]})

    # ---- Talkdesk: report jobs ----------------------------------------------------------------

    def _job_body(self, request: Request, job: TalkdeskJob) -> dict:
        base = f"{self._host(request)}/data/reports/{job.report_type}"
        links = {"self": {"href": f"{base}/jobs/{job.id}"}}
        if job.status == "done":
            links["files"] = {"href": f"{base}/files/{job.id}"}
        status = job.status.upper() if self.shape("talkdesk-status-upper") else job.status
        status = status_word(self.config.shapes, status)
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

    def td_create_job(self, request: Request, report_type: str) -> Response:
        if denied := self._td_auth(request):
            return denied
        if invalid := self._td_type_invalid(report_type):
            return invalid
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return _td_error(
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
        wall = self.shape("talkdesk-timespan-wall")
        start = _parse_moment((timespan or {}).get("from"), tz, wall)
        end = _parse_moment((timespan or {}).get("to"), tz, wall)
        if start is None or end is None:
            fields.append({"name": "timespan", "description": "from and to are required ISO 8601 datetimes"})
        elif end <= start:
            fields.append({"name": "timespan.to", "description": "must be after timespan.from"})
        elif end - start > dt.timedelta(days=31):
            fields.append({"name": "timespan", "description": "at most one month of data per report"})
        if fields:
            return _td_error(400, "0000400", "Invalid request body", fields)
        assert start is not None and end is not None
        with self._lock:
            active = sum(1 for job in self._jobs.values() if job.status in TALKDESK_ACTIVE) + self._held_by_others()
            if active >= self.config.talkdesk_max_active_jobs:
                self.event("job_rejected", report_type=report_type, active=active)
                return _td_error(
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
                outcome=self._job_outcome(key, attempt, start),
                attempt=attempt,
            )
            cfg = self.config.talkdesk_file_redirect
            job.redirect = cfg == "always" or (cfg == "alternate" and int(job.id, 16) % 2 == 0)
            self._jobs[job.id] = job
        self.event(
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
        if self.shape("talkdesk-create-location-only"):
            return Response(b"", status=202, headers={"Location": answer["_links"]["self"]["href"]})
        return _json(answer["job"] if self.config.talkdesk_bare_job else answer, 202)

    def _held_by_others(self) -> int:
        """(Holding the lock.) Report-job slots another client holds now (`talkdesk_held_jobs`)."""
        if self._first_job_request is None:
            self._first_job_request = time.monotonic()
        held = time.monotonic() - self._first_job_request < self.config.talkdesk_held_seconds
        return self.config.talkdesk_held_jobs if held else 0

    def _job_outcome(self, key: str, attempt: int, start: dt.datetime) -> str:
        if any(_parse_moment(w, UTC) == start for w in self.config.fail_windows):
            return "failed"
        if any(_parse_moment(w, UTC) == start for w in self.config.cancel_windows):
            return "canceled"
        return self.faults.job_outcome(key, attempt)

    def _advance_job(self, job: TalkdeskJob) -> None:
        job.polls += 1
        if job.status not in TALKDESK_ACTIVE:
            return
        if job.polls >= self.config.job_polls:
            status = "done"
        else:
            status = "processing" if job.polls == 1 else "uploading"
        if status == "done" and time.monotonic() - job.created < self.config.job_seconds:
            status = "uploading"
        if job.outcome == "canceled" and job.polls >= 2:
            status = "canceled"
        if job.outcome == "failed" and status == "done":
            status = "failed"
        if status == "done":
            self._write_talkdesk_file(job)
        job.status = status

    @staticmethod
    def _td_type_invalid(report_type: str) -> Response | None:
        if report_type in TALKDESK_REPORT_TYPES:
            return None
        return _td_error(
            400,
            "0000400",
            "Report type is invalid",
            [{"name": "type", "description": f"'{report_type}' is not a report type"}],
        )

    def td_job(self, request: Request, report_type: str, job_id: str) -> Response:
        if denied := self._td_auth(request):
            return denied
        if invalid := self._td_type_invalid(report_type):
            return invalid
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.report_type != report_type:
                return _td_error(404, "0000404", "Report job not found")
            if request.method == "DELETE":
                job.status = "deleted"
                self.event("job_deleted", job_id=job.id)
                return Response(status=204)
            was = job.status
            self._advance_job(job)
        self.event("job_polled", vendor="talkdesk", job_id=job.id, status=job.status)
        if job.status != was and job.status not in TALKDESK_ACTIVE:
            self.event("job_finished", vendor="talkdesk", job_id=job.id, status=job.status)
        body = self._job_body(request, job)
        if job.status == "done" and self.config.talkdesk_done_status in (300, 303) and not self.answers_done_with_200:
            location = f"/data/reports/{job.report_type}/files/{job.id}"
            if self.shape("talkdesk-location-other-host"):
                location = self._signed_url(request, job)
            return _json(body, self.config.talkdesk_done_status, {"Location": location})
        return _json(body)

    def _write_talkdesk_file(self, job: TalkdeskJob) -> None:
        start, end = job.window
        rows = self.all_as_sent(
            self.data.talkdesk_rows(job.report_type, start, end, ZoneInfo(job.timezone), dt.datetime.now(UTC))
        )
        if job.report_type == "studio_flow_execution" and self.shape("talkdesk-studio-without-interaction-id"):
            rows = ({k: v for k, v in row.items() if k != "interaction_id"} for row in rows)
        path = os.path.join(self._workdir, f"td-{job.id}.{job.format}")
        count = 0
        with open(path, "wb") as out:
            if job.format == "json":
                count = self._write_talkdesk_json(out, rows, job, path)
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
        if self.faults.profile.malformed and job.format == "json":
            with open(path, "r+b") as out:
                out.truncate(max(1, os.path.getsize(path) - 25))
        job.file_path, job.file_size = path, os.path.getsize(path)
        self.event("file_ready", job_id=job.id, rows=count, bytes=job.file_size)

    def _write_talkdesk_json(self, out: t.BinaryIO, rows: t.Iterable[dict], job: TalkdeskJob, path: str) -> int:
        """Entries framed as the shapes say; returns how many entries the file holds."""
        layout = (
            "bare-array"
            if self.shape("talkdesk-bare-array")
            else "total-first"
            if self.shape("talkdesk-total-first")
            else "entries-first"
        )
        dropped: list[dict] = []
        if layout != "bare-array" and job.attempt == 1 and self.shape("talkdesk-total-short-once"):
            rows = all_but_last(rows, dropped)  # total still counts the row left out

        def write_entries(target: t.BinaryIO) -> int:
            count = 0
            for row in rows:
                target.write((b"," if count else b"") + orjson.dumps(row))
                count += 1
            return count

        as_text = self.shape("wrong-json-types")
        if layout != "total-first":
            head, _ = talkdesk_json_frame(layout, 0, job.report_type)
            out.write(head)
            count = write_entries(out)
            out.write(talkdesk_json_frame(layout, count + len(dropped), job.report_type, as_text)[1])
            return count
        # total comes first: stream the entries aside, then write the file in order
        with open(path + ".entries", "w+b") as entries:
            count = write_entries(entries)
            head, tail = talkdesk_json_frame(layout, count + len(dropped), job.report_type, as_text)
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
        with self._lock:
            self._signed[signature] = (job.id, time.monotonic() + self.config.signed_url_ttl)
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Expires": self.config.signed_url_ttl,
                "X-Amz-Signature": signature,
            }
        )
        host = self._other_host(request) if self.shape("talkdesk-location-other-host") else self._host(request)
        self.event("file_redirect", job_id=job.id, signature=signature)
        return f"{host}/_storage/talkdesk/{job.id}.{job.format}?{query}"

    def td_file(self, request: Request, report_type: str, job_id: str) -> Response:
        if denied := self._td_auth(request):
            return denied
        if invalid := self._td_type_invalid(report_type):
            return invalid
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.report_type != report_type or job.status != "done" or job.file_path is None:
            return _td_error(404, "0000404", "Report file not found")
        if self.shape_once("talkdesk-files-404-once", job.id):
            self.event("fault", fault="file-404", path=request.path)
            return _td_error(404, "0000404", "Report file not found")
        if answer := self._not_the_file(job.id):
            status, content_type, body, headers = answer
            return Response(body, status=status, content_type=content_type, headers=headers)
        if job.redirect:
            return Response(status=303, headers={"Location": self._signed_url(request, job)})
        self.event("file_download", job_id=job.id, via="api")
        return self._file_response(request, job.file_path, job.file_size, _content_type(job.format), f"file:{job.id}")

    def _not_the_file(self, job_id: str) -> tuple[int, str, bytes, dict[str, str]] | None:
        """What the files endpoint answers instead of the file under a NOT_THE_FILE shape."""
        for name, answer in NOT_THE_FILE.items():
            if self.shape(name) and (name.endswith("-always") or self.shape_once(name, job_id)):
                self.event("fault", fault=name, job_id=job_id)
                return answer
        return None

    def td_signed_file(self, request: Request, object_name: str) -> Response:
        if request.headers.get("Authorization"):
            # As S3 does: a presigned URL plus an Authorization header is two auth mechanisms.
            return Response(
                b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>",
                status=400,
                content_type="application/xml",
            )
        signature = request.args.get("X-Amz-Signature", "")
        with self._lock:
            entry = self._signed.get(signature)
        if entry is None or not object_name.startswith(entry[0]):
            return Response(
                b"<Error><Code>SignatureDoesNotMatch</Code></Error>", status=403, content_type="application/xml"
            )
        if (
            entry[1] < time.monotonic()
            or self.shape("talkdesk-signed-url-expired-always")
            or self.shape_once("talkdesk-signed-url-expired-once", entry[0])
        ):
            self.event("fault", fault="link-expired", job_id=entry[0])
            return Response(EXPIRED_LINK, status=403, content_type="application/xml")
        with self._lock:
            job = self._jobs.get(entry[0])
        if job is None or job.file_path is None or self.shape_once("talkdesk-files-404-once", entry[0]):
            if job is not None:
                self.event("fault", fault="file-404", path=request.path)
            return Response(
                b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                status=404,
                content_type="application/xml",
            )
        self.event("file_download", job_id=job.id, via="signed-url")
        return self._file_response(request, job.file_path, job.file_size, _content_type(job.format), f"file:{job.id}")

    # ---- Zendesk -------------------------------------------------------------------------------

    def _zd_auth(self, request: Request) -> Response | None:
        auth = request.authorization
        ok = False
        if auth is not None and auth.type == "basic":
            ok = (
                auth.username == f"{self.config.zendesk_email}/token" and auth.password == self.config.zendesk_api_token
            )
        elif auth is not None and auth.type == "bearer":
            ok = auth.token == self.config.zendesk_oauth_token
        if not ok:
            return _json({"error": "Couldn't authenticate you"}, 401)
        return None

    def _zd_rate(self) -> tuple[dict, Response | None]:
        span = self.config.zendesk_rate_window_seconds
        now = time.time()
        window_no = int(now // span)
        with self._lock:
            window, count = self._zendesk_window
            count = count + 1 if window == window_no else 1
            self._zendesk_window = (window_no, count)
        limit = self.config.zendesk_rate_limit
        reset = max(1, int((window_no + 1) * span - now + 0.999))
        headers = {
            "X-Rate-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(max(0, limit - count)),
            "ratelimit-reset": str(reset),
        }
        if count > limit:
            headers["Retry-After"] = str(reset)
            self.event("rate_limited", vendor="zendesk")
            return headers, _json({"error": "APIRateLimitExceeded", "description": "Rate limit exceeded"}, 429, headers)
        return headers, None

    def _statuses(self, request: Request) -> list[dict]:
        with self._lock:
            if self._statuses_cache is None:
                self._statuses_cache = self.data.job_statuses()
            rows = self._statuses_cache
        host = self._host(request)
        return [
            self.as_sent(
                {k: v for k, v in row.items() if not k.startswith("_")}
                | {"url": f"{host}/api/v2/job_statuses/{row['id']}.json"}
            )
            for row in rows
        ]

    def _zd_guard(self, request: Request) -> tuple[dict, Response | None]:
        headers, limited = self._zd_rate()
        if limited is not None:
            return headers, limited
        denied = self._zd_auth(request)
        if denied is not None:
            denied.headers.update(headers)
        return headers, denied

    def zd_list(self, request: Request) -> Response:
        headers, refused = self._zd_guard(request)
        if refused is not None:
            return refused
        rows = self._statuses(request)
        base = f"{self._host(request)}/api/v2/job_statuses.json"
        if "page[size]" in request.args or "page[after]" in request.args or "page[before]" in request.args:
            try:
                size = int(request.args.get("page[size]", 100))
            except ValueError:
                size = -1
            if not 1 <= size <= 100:
                return _json(
                    {
                        "error": "InvalidPaginationParameter",
                        "description": "page[size] must be an integer from 1 to 100",
                    },
                    400,
                    headers,
                )
            start = 0
            if after := request.args.get("page[after]"):
                try:
                    start = int(base64.urlsafe_b64decode(after.encode()).decode()) + 1
                except (ValueError, UnicodeDecodeError):
                    return _json({"error": "InvalidPaginationParameter", "description": "invalid cursor"}, 400, headers)
            page = rows[start : start + size]
            has_more = start + size < len(rows)

            def cursor(index: int) -> str:
                return base64.urlsafe_b64encode(str(index).encode()).decode()

            after_cursor = cursor(start + len(page) - 1) if page else None
            before_cursor = cursor(start) if page else None
            next_base = zendesk_next_host(self.config.shapes, self._host(request), self._other_host(request))
            links = {
                "next": f"{next_base}/api/v2/job_statuses.json?{urlencode({'page[size]': size, 'page[after]': after_cursor})}"
                if has_more
                else None,
                "prev": f"{base}?{urlencode({'page[size]': size, 'page[before]': before_cursor})}" if start else None,
            }
            self.event("zendesk_page", start=start, size=size, count=len(page))
            with self._lock:
                self._move_while_read("zendesk-complete-while-read", start == 0, self._statuses_cache or [])
                self._move_while_read("zendesk-complete-every-read", start == 0, self._statuses_cache or [], every=True)
            return _json(
                {
                    "job_statuses": page,
                    "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor},
                    "links": links,
                },
                200,
                headers,
            )
        # Offset pagination, as Zendesk answers without page[size]; refused past 10,000 records.
        try:
            page_no = int(request.args.get("page", 1))
            per_page = min(100, int(request.args.get("per_page", 100)))
        except ValueError:
            return _json(
                {"error": "InvalidPaginationParameter", "description": "page must be an integer"}, 400, headers
            )
        if page_no * per_page > 10_000:
            return _json(
                {
                    "error": "InvalidPaginationParameter",
                    "description": "Offset pagination is limited to the first 10000 records; use cursor pagination",
                },
                400,
                headers,
            )
        page = rows[(page_no - 1) * per_page : page_no * per_page]
        more = page_no * per_page < len(rows)
        return _json(
            {
                "job_statuses": page,
                "count": len(rows),
                "next_page": f"{base}?page={page_no + 1}&per_page={per_page}" if more else None,
                "previous_page": f"{base}?page={page_no - 1}&per_page={per_page}" if page_no > 1 else None,
            },
            200,
            headers,
        )

    def zd_show_many(self, request: Request) -> Response:
        headers, refused = self._zd_guard(request)
        if refused is not None:
            return refused
        ids = [x for x in request.args.get("ids", "").split(",") if x]
        if not ids:
            return _json({"error": "InvalidValue", "description": "ids is required"}, 400, headers)
        if len(ids) > 100:
            return _json({"error": "InvalidValue", "description": "At most 100 ids per request"}, 400, headers)
        by_id = {row["id"]: row for row in self._statuses(request)}
        found = [by_id[x] for x in dict.fromkeys(ids) if x in by_id]
        self.event("zendesk_show_many", ids=len(ids), found=len(found))
        return _json({"job_statuses": found}, 200, headers)

    def zd_show(self, request: Request, status_id: str) -> Response:
        headers, refused = self._zd_guard(request)
        if refused is not None:
            return refused
        status_id = status_id.removesuffix(".json")
        for row in self._statuses(request):
            if row["id"] == status_id:
                return _json({"job_status": row}, 200, headers)
        return _json({"error": "RecordNotFound", "description": "Not found"}, 404, headers)

    # ---- MyReports -----------------------------------------------------------------------------

    def mr_token(self, request: Request) -> Response:
        """OAuth2 refresh grant: a refresh token (and the client) for a JWT access token."""
        if unavailable := self._token_unavailable(request):
            return unavailable
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client, secret, how = auth.username, auth.password, "basic"
        else:
            client, secret, how = request.form.get("client_id"), request.form.get("client_secret"), "form"
        cfg = self.config
        if client != cfg.myreports_client_id or secret != cfg.myreports_client_secret:
            return _json(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                401,
                {"WWW-Authenticate": 'Basic realm="myreports"'},
            )
        if request.form.get("grant_type") != "refresh_token":
            return _json(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be refresh_token"}, 400
            )
        used = request.form.get("refresh_token", "")
        new_refresh = uuid.uuid4().hex if cfg.myreports_rotate_refresh else None
        with self._lock:
            if used not in self._mr_refresh_tokens:
                return _json(
                    {
                        "error": "invalid_grant",
                        "error_description": "The refresh token is invalid, expired or was already used",
                    },
                    400,
                )
            if new_refresh is not None:  # rotation: the used refresh token stops working
                self._mr_refresh_tokens.discard(used)
                self._mr_refresh_tokens.add(new_refresh)
            exp = int(time.time()) + cfg.myreports_access_ttl
            token = self._jwt({"sub": "sandbox", "exp": exp, "jti": uuid.uuid4().hex})
            self._mr_tokens[token] = exp
        self.event("myreports_refresh_used", refresh_token=used, client_auth=how, rotated=new_refresh is not None)
        self.event("myreports_token_issued", token=token, exp=exp)
        answer: dict = {"access_token": token, "token_type": "Bearer"}
        if cfg.myreports_token_expires_in:
            answer["expires_in"] = cfg.myreports_access_ttl
        if new_refresh is not None:
            answer["refresh_token"] = new_refresh
        return _json(answer, headers={"Cache-Control": "no-store"})

    def _jwt(self, payload: dict) -> str:
        signing_input = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"})) + "." + _b64url(orjson.dumps(payload))
        signature = hmac.new(self._jwt_key, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64url(signature)

    def _mr_token_valid(self, token: str | None) -> bool:
        """The static token, or an access token this sandbox issued whose exp has not passed."""
        if token is not None and token == self.config.myreports_token:
            return True
        with self._lock:
            exp = self._mr_tokens.get(token or "")
        return exp is not None and time.time() < exp

    def _mr_auth(self, request: Request) -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "bearer" or not self._mr_token_valid(auth.token):
            return _envelope(None, "error", "Unauthorised", "The token is missing, invalid or expired", 401)
        return None

    def mr_workspaces(self, request: Request) -> Response:
        if denied := self._mr_auth(request):
            return denied
        return _json({"page_size": 1, "data": [{"id": MYREPORTS_WORKSPACE, "name": "Sandbox", "default": True}]})

    def mr_reports(self, request: Request, ws: str) -> Response:
        if denied := self._mr_auth(request):
            return denied
        if ws != MYREPORTS_WORKSPACE:
            return _envelope(None, "error", "NotFound", "Workspace not found", 404)
        return _json([{"id": rid, "name": name} for rid, (name, _tz) in MYREPORTS_REPORTS.items()])

    def mr_create(self, request: Request, ws: str, rep: str) -> Response:
        if denied := self._mr_auth(request):
            return denied
        if ws != MYREPORTS_WORKSPACE or rep not in MYREPORTS_REPORTS:
            return _envelope(None, "error", "NotFound", "Workspace or report not found", 404)
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return _envelope(None, "error", "BadRequest", "Malformed JSON body", 400)
        if not isinstance(body, dict) or body.get("reportId") != rep:
            return _envelope(None, "error", "BadRequest", "reportId must match the report in the path", 400)
        date_filter = body.get("dateFilter") or {}
        # The doc leaves open how an offset is read; under the shape, as a wall time in the report's zone.
        wall = self.shape("myreports-filter-wall-time")
        zone = ZoneInfo(MYREPORTS_REPORTS[rep][1]) if wall else UTC
        start, end = (
            _parse_moment(date_filter.get("start"), zone, wall),
            _parse_moment(date_filter.get("end"), zone, wall),
        )
        if start is None or end is None or end <= start:
            return _envelope(
                None,
                "error",
                "BadRequest",
                "dateFilter needs start < end, ISO 8601 with offset (presets are not served here)",
                400,
            )
        now = dt.datetime.now(UTC)
        with self._lock:
            limit = self.config.myreports_max_active_requests
            active = sum(1 for req in self._requests.values() if req.status in ("Pending", "Processing"))
            if limit is not None and active >= limit:
                self.event("job_rejected", vendor="myreports", report_id=rep, active=active)
                return _envelope(None, "error", "TooManyRequests", "Too many report requests running", 429)
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
                outcome=self._job_outcome(key, attempt, start),
                attempt=attempt,
            )
            self._requests[req.id] = req
        self.event(
            "job_created",
            vendor="myreports",
            job_id=req.id,
            report_id=rep,
            start=start.isoformat(),
            end=end.isoformat(),
            attempt=attempt,
        )
        if self.shape("myreports-create-location-only"):
            return Response(b"", status=201, headers={"Location": f"{self._host(request)}{request.path}/{req.id}"})
        return _envelope(
            {
                "requestId": req.id,
                "locale": "en-GB",
                "referenceDate": now.isoformat(),
                "dateFilter": date_filter,
                "startTime": start.isoformat(),
                "endTime": end.isoformat(),
            }
        )

    def _mr_lookup(self, ws: str, rep: str, rid: str) -> MyReportsRequest | None:
        req = self._requests.get(rid)
        if ws != MYREPORTS_WORKSPACE or req is None or req.report_id != rep:
            return None
        return req

    def mr_request(self, request: Request, ws: str, rep: str, rid: str) -> Response:
        if denied := self._mr_auth(request):
            return denied
        with self._lock:
            req = self._mr_lookup(ws, rep, rid)
            if req is None:
                return _envelope(None, "error", "NotFound", "Request not found", 404)
            was = req.status
            req.polls += 1
            if req.status in ("Pending", "Processing"):
                status = "Complete" if req.polls >= self.config.job_polls else "Processing"
                if status == "Complete" and time.monotonic() - req.created < self.config.job_seconds:
                    status = "Processing"
                if status == "Complete" and req.outcome != "done":
                    status = "Failed" if req.outcome == "failed" else "Cancelled"
                if status == "Complete":
                    self._write_myreports_result(req)
                req.status = status
        self.event("job_polled", vendor="myreports", job_id=req.id, status=req.status)
        if req.status != was and req.status not in ("Pending", "Processing"):
            self.event("job_finished", vendor="myreports", job_id=req.id, status=req.status)
        message = {
            "Pending": "Report queued",
            "Processing": "Report processing",
            "Complete": "Report processing complete",
            "Failed": "Report processing failed: query timeout",
            "Cancelled": "Report request was cancelled",
        }[req.status]
        status = req.status.upper() if self.shape("myreports-status-upper") else req.status
        status = status_word(self.config.shapes, status)
        return _envelope(
            {
                "requestId": req.id,
                "reportId": req.report_id,
                "status": status,
                "statusMessage": message,
                "dateCreated": req.created_at.isoformat(),
            }
        )

    def _write_myreports_result(self, req: MyReportsRequest) -> None:
        name, tz_name = MYREPORTS_REPORTS[req.report_id]
        tz = ZoneInfo(tz_name)
        rows = self.data.myreports_rows(req.report_id, req.start, req.end)
        start_and_end = self.shape("myreports-filter-start-and-end")
        if start_and_end:  # the call must also have ended before the filter's end
            rows = [(ts, row) for ts, row in rows if ts + float(row.get("duration") or 0) < req.end.timestamp()]
        total = len(rows)
        limit = self.config.myreports_row_limit
        exceeded = total > limit
        kept = rows[:limit]
        if kept and not exceeded and req.attempt == 1 and self.shape("myreports-count-short-once"):
            kept = kept[:-1]  # totalCount still counts it
        summary = {"ans": 0, "ref": 0, "lost": 0, "ring": 0.0, "duration": 0.0}
        template, template_fields = MYREPORTS_TEMPLATES[self.shape("myreports-other-template")]
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
        if self.shape("myreports-no-timezone"):
            del request_doc["timeZoneId"]
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
        if self.shape("wrong-json-types"):
            myreports_members_as_other_types(head, request_doc)
        if self.shape("myreports-cut-unflagged"):
            myreports_unflag_cut(head, len(kept))
        tail = {
            "summary": [summary],
            "status": 1,
            "statusMessage": "Report processing complete",
            "rowLimit": self.count_as_sent(limit),
        }
        before, after = myreports_split(head, tail, self.shape("myreports-request-after-data"))
        enveloped = self.shape("myreports-data-enveloped")
        path = os.path.join(self._workdir, f"mr-{req.id}.json")
        with open(path, "wb") as out:
            if enveloped:
                out.write(b'{"data":')
            empty_as_null = not kept and self.shape("myreports-empty-data-null")
            out.write(b"{" + _members(before) + (b',"data":null' if empty_as_null else b',"data":['))
            for index, row in enumerate(self.all_as_sent(row for _ts, row in kept)):
                encoded = orjson.dumps(row)
                if self.faults.profile.malformed and index == 1 and b'"userName":"' in encoded:
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
        self.event("file_ready", job_id=req.id, rows=len(kept), total=total, exceeded=exceeded, bytes=req.file_size)

    def mr_data(self, request: Request, ws: str, rep: str, rid: str) -> Response:
        if denied := self._mr_auth(request):
            return denied
        with self._lock:
            req = self._mr_lookup(ws, rep, rid)
        if req is None:
            return _envelope(None, "error", "NotFound", "Request not found", 404)
        if req.status != "Complete" or req.file_path is None:
            return _envelope(None, "error", "BadRequest", f"Report request is not complete (status {req.status})", 400)
        if self.shape("myreports-error-envelope-always") or self.shape_once("myreports-error-envelope-once", req.id):
            self.event("fault", fault="error-envelope", path=request.path)
            return _envelope(None, "error", "InternalError", "Result not available")
        self.event("file_download", job_id=req.id, via="api")
        return self._file_response(
            request, req.file_path, req.file_size, "application/json; charset=utf-8", f"data:{req.id}"
        )

    # ---- sandbox control -------------------------------------------------------------------------

    def sb_health(self, request: Request) -> Response:
        return _json({"ok": True})

    def sb_events(self, request: Request) -> Response:
        return _json(self.events(request.args.get("kind")))

    def sb_forget(self, request: Request) -> Response:
        """Forget one Talkdesk job or MyReports request (`?job_id=`), or all: the vendor lost it,
        so its polls, files and data answer 404 as for an id never seen."""
        job_id = request.args.get("job_id")
        with self._lock:
            ids = [job_id] if job_id else [*self._jobs, *self._requests]
            forgotten = []
            for one in ids:
                gone = self._jobs.pop(one, None) or self._requests.pop(one, None)
                if gone is not None:
                    forgotten.append(one)
        if job_id and not forgotten:
            return _json({"error": f"no job or request {job_id}"}, 404)
        self.event("job_forgotten", job_ids=forgotten)
        return _json({"forgotten": forgotten})


def _csv_cell(value: t.Any) -> t.Any:
    """A CSV cell: null is empty, a list, object or boolean is its JSON text (true, not True)."""
    if value is None:
        return ""
    return orjson.dumps(value).decode() if isinstance(value, (list, dict, bool)) else value


def _content_type(fmt: str) -> str:
    return {"json": "application/json", "csv": "text/csv", "json_bulk": "application/x-ndjson"}[fmt]


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do

    def log_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        pass  # quiet: the event log tells tests what happened


@dataclass
class RunningSandbox:
    app: Sandbox
    url: str
    _server: t.Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.app.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(config: SandboxConfig | None = None) -> RunningSandbox:
    """Start the sandbox on a background thread; `.url` is its base URL."""
    config = config or SandboxConfig()
    app = Sandbox(config)
    server = make_server(config.host, config.port, app, threaded=True, request_handler=_Handler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # werkzeug's ThreadedWSGIServer has it
    # A short poll interval: stop() returns within 0.1 s instead of 0.5 s (tests start many sandboxes).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="callreports-sandbox", daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    return RunningSandbox(app=app, url=f"http://{host!s}:{port}", _server=server, _thread=thread)
