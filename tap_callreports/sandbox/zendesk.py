"""The sandbox's Zendesk: job statuses behind basic (email/token) or OAuth auth, cursor and offset
pages, and its rate limit headers."""

from __future__ import annotations

import base64
import time
import typing as t
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tap_callreports.sandbox.shapes import ZENDESK_NEXT_HOSTS
from tap_callreports.sandbox.vendor import VendorApi, json_response

if t.TYPE_CHECKING:
    from tap_callreports.sandbox.server import Sandbox


class ZendeskApi(VendorApi):
    """Zendesk's routes and its state: the job statuses list, the rate limit window."""

    NAME = "zendesk"
    ROUTES = (
        ("/api/v2/job_statuses", "job_statuses", ["GET"]),
        ("/api/v2/job_statuses.json", "job_statuses", ["GET"]),
        ("/api/v2/job_statuses/show_many", "show_many", ["GET"]),
        ("/api/v2/job_statuses/show_many.json", "show_many", ["GET"]),
        ("/api/v2/job_statuses/<status_id>", "show", ["GET"]),
    )

    def __init__(self, box: Sandbox) -> None:
        super().__init__(box)
        self._rate_window = (0, 0)  # (minute, count)
        self._statuses_cache: list[dict] | None = None

    def _auth(self, request: Request) -> Response | None:
        auth = request.authorization
        ok = False
        if auth is not None and auth.type == "basic":
            ok = (
                auth.username == f"{self.config.zendesk_email}/token" and auth.password == self.config.zendesk_api_token
            )
        elif auth is not None and auth.type == "bearer":
            ok = auth.token == self.config.zendesk_oauth_token
        if not ok:
            return json_response({"error": "Couldn't authenticate you"}, 401)
        return None

    def _rate(self) -> tuple[dict, Response | None]:
        span = self.config.zendesk_rate_window_seconds
        now = time.time()
        window_no = int(now // span)
        with self.lock:
            window, count = self._rate_window
            count = count + 1 if window == window_no else 1
            self._rate_window = (window_no, count)
        limit = self.config.zendesk_rate_limit
        reset = max(1, int((window_no + 1) * span - now + 0.999))
        headers = {
            "X-Rate-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(max(0, limit - count)),
            "ratelimit-reset": str(reset),
        }
        if count > limit:
            headers["Retry-After"] = str(reset)
            self.box.event("rate_limited", vendor="zendesk")
            return headers, json_response(
                {"error": "APIRateLimitExceeded", "description": "Rate limit exceeded"}, 429, headers
            )
        return headers, None

    def _statuses(self, request: Request) -> list[dict]:
        with self.lock:
            if self._statuses_cache is None:
                self._statuses_cache = self.data.job_statuses()
            rows = self._statuses_cache
        host = self.box.host(request)
        return [
            self.box.as_sent(
                {k: v for k, v in row.items() if not k.startswith("_")}
                | {"url": f"{host}/api/v2/job_statuses/{row['id']}.json"}
            )
            for row in rows
        ]

    def _guard(self, request: Request) -> tuple[dict, Response | None]:
        headers, limited = self._rate()
        if limited is not None:
            return headers, limited
        denied = self._auth(request)
        if denied is not None:
            denied.headers.update(headers)
        return headers, denied

    def job_statuses(self, request: Request) -> Response:
        headers, refused = self._guard(request)
        if refused is not None:
            return refused
        rows = self._statuses(request)
        base = f"{self.box.host(request)}/api/v2/job_statuses.json"
        if "page[size]" in request.args or "page[after]" in request.args or "page[before]" in request.args:
            try:
                size = int(request.args.get("page[size]", 100))
            except ValueError:
                size = -1
            if not 1 <= size <= 100:
                return json_response(
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
                    return json_response(
                        {"error": "InvalidPaginationParameter", "description": "invalid cursor"}, 400, headers
                    )
            page = rows[start : start + size]
            has_more = start + size < len(rows)

            def cursor(index: int) -> str:
                return base64.urlsafe_b64encode(str(index).encode()).decode()

            after_cursor = cursor(start + len(page) - 1) if page else None
            before_cursor = cursor(start) if page else None
            next_host = self.box.first_on(ZENDESK_NEXT_HOSTS)
            own = self.box.host(request)
            next_base = next_host(own, self.box.other_host(request)) if next_host else own
            links = {
                "next": f"{next_base}/api/v2/job_statuses.json?{urlencode({'page[size]': size, 'page[after]': after_cursor})}"
                if has_more
                else None,
                "prev": f"{base}?{urlencode({'page[size]': size, 'page[before]': before_cursor})}" if start else None,
            }
            self.box.event("zendesk_page", start=start, size=size, count=len(page))
            with self.lock:  # a cursor page has no number: only the first (start 0) is page 1
                self.box.move_while_read("zendesk", 1 if start == 0 else None, self._statuses_cache or [])
            return json_response(
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
            return json_response(
                {"error": "InvalidPaginationParameter", "description": "page must be an integer"}, 400, headers
            )
        if page_no * per_page > 10_000:
            return json_response(
                {
                    "error": "InvalidPaginationParameter",
                    "description": "Offset pagination is limited to the first 10000 records; use cursor pagination",
                },
                400,
                headers,
            )
        page = rows[(page_no - 1) * per_page : page_no * per_page]
        more = page_no * per_page < len(rows)
        return json_response(
            {
                "job_statuses": page,
                "count": len(rows),
                "next_page": f"{base}?page={page_no + 1}&per_page={per_page}" if more else None,
                "previous_page": f"{base}?page={page_no - 1}&per_page={per_page}" if page_no > 1 else None,
            },
            200,
            headers,
        )

    def show_many(self, request: Request) -> Response:
        headers, refused = self._guard(request)
        if refused is not None:
            return refused
        ids = [x for x in request.args.get("ids", "").split(",") if x]
        if not ids:
            return json_response({"error": "InvalidValue", "description": "ids is required"}, 400, headers)
        if len(ids) > 100:
            return json_response({"error": "InvalidValue", "description": "At most 100 ids per request"}, 400, headers)
        by_id = {row["id"]: row for row in self._statuses(request)}
        found = [by_id[x] for x in dict.fromkeys(ids) if x in by_id]
        self.box.event("zendesk_show_many", ids=len(ids), found=len(found))
        return json_response({"job_statuses": found}, 200, headers)

    def show(self, request: Request, status_id: str) -> Response:
        headers, refused = self._guard(request)
        if refused is not None:
            return refused
        status_id = status_id.removesuffix(".json")
        for row in self._statuses(request):
            if row["id"] == status_id:
                return json_response({"job_status": row}, 200, headers)
        return json_response({"error": "RecordNotFound", "description": "Not found"}, 404, headers)
