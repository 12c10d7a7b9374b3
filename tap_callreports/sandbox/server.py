"""The sandbox: one local HTTP server (werkzeug) implementing the three vendors' documented
contracts — auth, pagination links, report-job life cycles, redirects, rate limits, errors —
over deterministic data. Faithful to ../shared/api-docs, not to the tap.

This module is its routing and HTTP: the config, the WSGI app that hands each route to its
vendor (talkdesk.py, zendesk.py, myreports.py), what the vendors share (events, shapes, faults,
file bodies, hosts) and the server thread."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass, field

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tap_callreports.sandbox.data import SandboxData
from tap_callreports.sandbox.faults import FaultInjector
from tap_callreports.sandbox.myreports import MyReportsApi
from tap_callreports.sandbox.shapes import (
    DATA_SHAPES,
    LIST_MOVES,
    SHAPES,
    UNTYPABLE_VALUES,
    check_shapes,
    sent_as_other_types,
)
from tap_callreports.sandbox.talkdesk import TalkdeskApi, talkdesk_error
from tap_callreports.sandbox.vendor import CHUNK, UTC, VendorApi, envelope, json_response, parse_moment
from tap_callreports.sandbox.zendesk import ZendeskApi

#: The vendors the sandbox serves (sandbox/<vendor>.py each).
VENDORS: tuple[type[VendorApi], ...] = (TalkdeskApi, ZendeskApi, MyReportsApi)
V = t.TypeVar("V")


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
    # ... or this long after creation, polled or not (the vendor's own clock), whichever is first
    job_wall_seconds: float = 10.0
    # build a job's file while it runs (from its creation, on a thread), as a vendor does, instead of
    # at the poll that finds it done (the latency bench: the sandbox's CPU then never delays answers)
    build_files_early: bool = False
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
    # Zendesk Talk incremental exports: per endpoint, answered requests allowed in a window (the
    # documented 10 a minute; tests shorten the window), the days of calls before list_anchor, and
    # the Talk clock (ISO; None: the real time), which decides the version of each call answered
    zendesk_talk_rate_limit: int = 10
    zendesk_talk_rate_window_seconds: float = 60.0
    zendesk_talk_days: float = 14.0
    zendesk_talk_calls_per_hour: int | None = None
    zendesk_talk_now: str | None = None
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


class Sandbox:
    """The WSGI application: routes each request to its vendor's object; holds what they share."""

    #: (path, method, HTTP methods) of the sandbox's own controls (not a vendor's), under /_sandbox/.
    ROUTES = (
        ("/_sandbox/health", "sb_health", ["GET"]),
        ("/_sandbox/events", "sb_events", ["GET"]),
        ("/_sandbox/forget", "sb_forget", ["POST"]),
    )

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        data_flags: dict[str, t.Any] = {flag: True for shape, flag in DATA_SHAPES.items() if shape in config.shapes}
        self.data = SandboxData(
            seed=config.seed,
            scale=config.scale,
            rows_per_hour=config.rows_per_hour,
            myreports_rows_per_hour=config.myreports_rows_per_hour,
            imports_count=config.imports_count,
            job_statuses_count=config.job_statuses_count,
            calls_rename_cutover=dt.datetime.fromisoformat(config.calls_rename_cutover),
            untypable=tuple(s for s in config.shapes if any(s == shape for shape, _kind in UNTYPABLE_VALUES)),
            **data_flags,
        )
        if config.list_anchor:
            self.data.list_anchor = dt.datetime.fromisoformat(config.list_anchor.replace("Z", "+00:00"))
        self.faults = FaultInjector(config.faults, config.seed)
        self.lock = threading.RLock()
        self._once_seen: set[tuple[str, str]] = set()  # (shape, key) pairs already answered oddly
        self._early: dict[str, threading.Thread] = {}  # job id -> its file being built (build_files_early)
        self._events: list[dict] = []
        self.workdir = tempfile.mkdtemp(prefix="callreports-sandbox-")
        self.vendors = [vendor(self) for vendor in VENDORS]
        # Each route's endpoint is "<owner>.<method>": a vendor's, or the sandbox's own controls.
        self._owners: dict[str, t.Any] = {"sandbox": self} | {vendor.NAME: vendor for vendor in self.vendors}
        routes = [
            (f"{owner}.{method}", path, methods)
            for owner, handler in self._owners.items()
            for path, method, methods in handler.ROUTES
        ]
        self.url_map = Map([Rule(path, endpoint=endpoint, methods=methods) for endpoint, path, methods in routes])

    # ---- plumbing ----------------------------------------------------------------------------

    def event(self, kind: str, **details: t.Any) -> None:
        with self.lock:
            self._events.append({"t": time.monotonic(), "wall": time.time(), "kind": kind, **details})

    def events(self, kind: str | None = None) -> list[dict]:
        with self.lock:
            return [dict(e) for e in self._events if kind is None or e["kind"] == kind]

    def shape(self, name: str) -> bool:
        """Whether the named answer shape (sandbox/shapes.py) is switched on."""
        assert name in SHAPES, name
        return name in self.config.shapes

    def shape_once(self, name: str, key: str) -> bool:
        """True the first time the shape is met for `key` (a job, an endpoint), when it is on."""
        if not self.shape(name):
            return False
        with self.lock:
            if (name, key) in self._once_seen:
                return False
            self._once_seen.add((name, key))
        return True

    def seen_once(self, name: str, key: str) -> bool:
        """Whether `shape_once(name, key)` has already said True (asks without using it up)."""
        with self.lock:
            return (name, key) in self._once_seen

    def met(self, name: str, key: str) -> bool:
        """Whether a switched-on shape shows now: a "-once" shape the first time for `key`, any
        other every time."""
        return self.shape_once(name, key) if name.endswith("-once") else self.shape(name)

    def switched_on(self, table: t.Mapping[str, V]) -> list[tuple[str, V]]:
        """The (shape, entry) pairs of a shapes.py table whose shape is on, in the table's order."""
        return [(name, entry) for name, entry in table.items() if name in self.config.shapes]

    def first_on(self, table: t.Mapping[str, V]) -> V | None:
        """The entry of the first switched-on shape of a shapes.py table, in the table's order."""
        return next((entry for _name, entry in self.switched_on(table)), None)

    def rewrite(self, table: t.Mapping[str, t.Callable[[V], V]], value: V) -> V:
        """`value` through the rewrite of every switched-on shape of a shapes.py table, in its order."""
        for _name, rewrite in self.switched_on(table):
            value = rewrite(value)
        return value

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
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __call__(self, environ: dict, start_response: t.Callable) -> t.Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = json_response({"code": str(exc.code), "message": exc.name}, exc.code or 500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        control = request.path.startswith("/_sandbox/")  # the sandbox's own routes: not logged, never faulted
        if not control:
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
        if not control:
            fault = self.faults.request_fault(f"{request.method} {request.full_path}")
            if fault:
                self.event("fault", fault=fault, path=request.path)
                answered = self._answer_fault(fault, request)
                if answered is not None:
                    return answered
        owner, name = endpoint.split(".")
        return getattr(self._owners[owner], name)(request, **args)

    def _not_found(self, request: Request) -> Response:
        if request.path.startswith("/api/v2/"):
            return json_response({"error": "InvalidEndpoint", "description": "Not found"}, 404)
        if request.path.startswith("/api/v1.0/"):
            return envelope(None, "error", "NotFound", "Resource not found", 404)
        return talkdesk_error(404, "0000404", "Resource not found")

    def _answer_fault(self, fault: str, request: Request) -> Response | None:
        if fault == "429-retry-after":
            return json_response({"code": "0000429", "message": "Too many requests"}, 429, {"Retry-After": "1"})
        if fault == "429":
            return json_response({"code": "0000429", "message": "Too many requests"}, 429)
        if fault in ("500", "502", "503"):
            return json_response({"code": f"0000{fault}", "message": "Upstream trouble"}, int(fault))
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

    def file_response(
        self, request: Request, path: str, size: int, content_type: str, key: str, cut: bool | None = None
    ) -> Response:
        """The file, cut halfway (the connection dropped) when `cut`, or by the fault profile."""
        cut = self.faults.cut_body(key) if cut is None else cut
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

    def host(self, request: Request) -> str:
        return request.host_url.rstrip("/")

    @staticmethod
    def other_host(request: Request) -> str:
        """The same server under another name (127.0.0.1 <-> localhost): a storage host that is
        not the API host, so a client must not carry the API's credentials there."""
        name, _, port = request.host.rpartition(":")
        other = "localhost" if name == "127.0.0.1" else "127.0.0.1"
        return f"{request.scheme}://{other}:{port}"

    def token_unavailable(self, request: Request) -> Response | None:
        """The token endpoint's one 503 under the shape token-fault-first."""
        if not self.shape_once("token-fault-first", request.path):
            return None
        self.event("fault", fault="503", path=request.path)
        return json_response(
            {"error": "temporarily_unavailable", "error_description": "Service unavailable, try again"}, 503
        )

    def move_while_read(self, served: str, page: int | None, rows: list[dict]) -> None:
        """Right after `page` (1: the first; None: a page without a number) of the list `served`
        was answered, change `rows` in place as a switched-on LIST_MOVES shape says."""
        for shape, (moved_list, after_page, every, move) in LIST_MOVES.items():
            if moved_list != served or page != after_page:
                continue
            if self.shape(shape) if every else self.shape_once(shape, "list"):
                with self.lock:
                    anchor = self.data.list_anchor.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                    self.event("fault", fault=shape, id=move(rows, anchor) if rows else None)

    def build_early(self, job_id: str, build: t.Callable[[], None]) -> None:
        """A job was created: with `build_files_early`, start building its file now (`file_built`)."""
        if self.config.build_files_early:
            thread = threading.Thread(target=build, name=f"sandbox-build-{job_id}", daemon=True)
            self._early[job_id] = thread
            thread.start()

    def file_built(self, job_id: str, build: t.Callable[[], None]) -> None:
        """A job is done: its file, built early (waiting for the end of it), or now."""
        thread = self._early.pop(job_id, None)
        if thread is None:
            build()
        else:
            thread.join()

    def job_outcome(self, key: str, attempt: int, start: dt.datetime) -> str:
        if any(parse_moment(w, UTC) == start for w in self.config.fail_windows):
            return "failed"
        if any(parse_moment(w, UTC) == start for w in self.config.cancel_windows):
            return "canceled"
        return self.faults.job_outcome(key, attempt)

    # ---- sandbox control -------------------------------------------------------------------------

    def sb_health(self, request: Request) -> Response:
        return json_response({"ok": True})

    def sb_events(self, request: Request) -> Response:
        return json_response(self.events(request.args.get("kind")))

    def sb_forget(self, request: Request) -> Response:
        """Forget one Talkdesk job or MyReports request (`?job_id=`), or all: the vendor lost it,
        so its polls, files and data answer 404 as for an id never seen."""
        job_id = request.args.get("job_id")
        held = [vendor.jobs_held() for vendor in self.vendors]
        with self.lock:
            ids = [job_id] if job_id else [one for jobs in held for one in jobs]
            forgotten = []
            for one in ids:
                if any(jobs.pop(one, None) is not None for jobs in held):
                    forgotten.append(one)
        if job_id and not forgotten:
            return json_response({"error": f"no job or request {job_id}"}, 404)
        self.event("job_forgotten", job_ids=forgotten)
        return json_response({"forgotten": forgotten})


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
