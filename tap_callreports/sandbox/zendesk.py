"""The sandbox's Zendesk: job statuses behind basic (email/token) or OAuth auth, cursor and offset
pages, and its rate limit headers; Talk's incremental exports of calls and legs (`TalkExports`)."""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import math
import random
import threading
import time
import typing as t
from collections import deque
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tap_callreports.sandbox.shapes import (
    EXPIRED_CURSOR,
    ZENDESK_EXPIRED_CURSORS,
    ZENDESK_NEXT_HOSTS,
    ZENDESK_TALK_FULL_SECOND,
    ZENDESK_TALK_REFUSED,
)
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
        ("/api/v2/channels/voice/stats/incremental/<resource>", "talk_export", ["GET"]),
    )

    def __init__(self, box: Sandbox) -> None:
        super().__init__(box)
        self._rate_window = (0, 0)  # (minute, count)
        self._statuses_cache: list[dict] | None = None
        self._talk: TalkExports | None = None
        self._talk_answered: dict[str, deque[float]] = {"calls": deque(), "legs": deque()}

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

    def _cursor_expired(self, cursor: str, start: int) -> bool:
        return any(
            start >= first and self.box.met(name, f"cursor:{cursor}") for name, first in ZENDESK_EXPIRED_CURSORS.items()
        )

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
            if after and self._cursor_expired(after, start):
                self.box.event("fault", fault="cursor-expired", start=start)
                return json_response(EXPIRED_CURSOR, 400, headers)
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

    # ---- Talk: incremental exports of calls and legs -------------------------------------------

    @property
    def talk(self) -> TalkExports:
        with self.lock:
            if self._talk is None:
                end = self.data.list_anchor
                full = self.box.first_on(ZENDESK_TALK_FULL_SECOND) or 0
                self._talk = TalkExports(
                    seed=self.config.seed,
                    start=end - dt.timedelta(days=self.config.zendesk_talk_days),
                    end=end,
                    calls_per_hour=self.config.zendesk_talk_calls_per_hour,
                    scale=self.config.scale,
                    full_second=full,
                )
            return self._talk

    def talk_now(self) -> int:
        """The Talk clock: `zendesk_talk_now` (tests move it between runs), else the real time."""
        fixed = self.config.zendesk_talk_now
        if fixed:
            return int(dt.datetime.fromisoformat(fixed.replace("Z", "+00:00")).timestamp())
        return int(time.time())

    def _talk_rate(self, resource: str) -> Response | None:
        """Talk's own limit, per endpoint: `zendesk_talk_rate_limit` answered requests in any
        `zendesk_talk_rate_window_seconds` (10 a minute), then 429 with Retry-After."""
        limit, window = self.config.zendesk_talk_rate_limit, self.config.zendesk_talk_rate_window_seconds
        now = time.time()
        with self.lock:
            answered = self._talk_answered[resource]
            while answered and answered[0] <= now - window:
                answered.popleft()
            if len(answered) >= limit:
                retry_after = max(1, math.ceil(answered[0] + window - now))
                self.box.event("rate_limited", vendor="zendesk_talk", resource=resource, retry_after=retry_after)
                return json_response(
                    {"error": "TooManyRequests", "description": "Rate limit for incremental exports exceeded"},
                    429,
                    {"Retry-After": str(retry_after)},
                )
            answered.append(now)
        return None

    def talk_export(self, request: Request, resource: str) -> Response:
        resource = resource.removesuffix(".json")
        if resource not in ("calls", "legs"):
            return json_response({"error": "InvalidEndpoint", "description": "Not found"}, 404)
        headers, refused = self._guard(request)
        if refused is not None:
            return refused
        if (answer := self.box.first_on(ZENDESK_TALK_REFUSED)) is not None:
            return json_response(answer[1], answer[0], headers)
        limited = self._talk_rate(resource)
        if limited is not None:
            limited.headers.update(headers)
            return limited
        try:
            start_time = int(request.args["start_time"])
        except (KeyError, ValueError):
            return json_response(
                {"error": "InvalidValue", "description": "start_time is required, in seconds since the epoch"},
                400,
                headers,
            )
        now = self.talk_now()
        items = self.talk.export(resource, start_time, now)
        end_time = int(_epoch(items[-1]["updated_at"])) if items else start_time
        # next_page is never null: caught up, it is the URL just asked (and repeats the last items)
        next_page = f"{self.box.host(request)}{request.path}?{urlencode({'start_time': end_time})}"
        self.box.event(
            "zendesk_talk_page",
            resource=resource,
            start_time=start_time,
            end_time=end_time,
            count=len(items),
            ids=[item["id"] for item in items],
            at_end_time=sum(1 for item in items if _epoch(item["updated_at"]) == end_time),
        )
        body = {resource: [self.box.as_sent(item) for item in items], "count": len(items)}
        body |= {"end_time": end_time, "next_page": next_page}
        return json_response(body, 200, headers)


TALK_PAGE_SIZE = 1000  # items per export page (what Airbyte calls the export page size)
BATCH_SECONDS = 900  # recordings and quality checks are processed in 15-minute batches


def _epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TalkExports:
    """Talk calls and legs, each saved several times (updates re-appear in the exports), from the seed.

    A call created at c is saved when it ends (c + duration + wrap-up), again at the next 15-minute
    batch mark (recording and quality processed: every call that ended in those 15 minutes, with
    all its legs, shares that second) and, for about a third, once more when a ticket is linked
    (minutes to two days later). An export at time `now` answers each item once, in the version
    current at `now`, ordered by (updated_at, id), from `start_time` inclusive, 1000 at most: a page
    boundary often falls inside a shared second.
    """

    def __init__(
        self,
        seed: int,
        start: dt.datetime,
        end: dt.datetime,
        calls_per_hour: int | None,
        scale: int = 1,
        full_second: int = 0,
    ) -> None:
        self.seed = seed
        self.start, self.end = int(start.timestamp()), int(end.timestamp())
        self.calls_per_hour = calls_per_hour
        self.scale = scale
        self.full_second = full_second
        self._lock = threading.Lock()
        self._built = False
        #: per resource: id -> list of (updated_at, fields set at that save)
        self.versions: dict[str, dict[int, list[tuple[int, dict]]]] = {"calls": {}, "legs": {}}
        #: per resource: every save as (updated_at, id, version index), sorted
        self.saves: dict[str, list[tuple[int, int, int]]] = {"calls": [], "legs": []}

    def build(self) -> None:
        with self._lock:
            if self._built:
                return
            for hour in range(self.start // 3600, (self.end - 1) // 3600 + 1):
                self._hour(hour)
            if self.full_second:
                self._bulk_correction(self.start + 12 * 3600)
            for resource, by_id in self.versions.items():
                saves = [(at, item, n) for item, versions in by_id.items() for n, (at, _) in enumerate(versions)]
                saves.sort()
                self.saves[resource] = saves
            self._built = True

    def _hour(self, hour: int) -> None:
        rng = random.Random(f"{self.seed}:talk:{hour}")
        count = self.calls_per_hour if self.calls_per_hour is not None else rng.randint(2, 8) * self.scale
        for n in range(count):
            created = hour * 3600 + rng.randint(0, 3599)
            if not self.start <= created < self.end:
                continue
            call_id = hour * 1000 + n
            self._call(rng, call_id, created)

    def _call(self, rng: random.Random, call_id: int, created: int) -> None:
        answered = rng.random() < 0.85
        wait = rng.randint(3, 240)
        talk = rng.randint(20, 1500) if answered else 0
        hold = rng.choice([0, 0, rng.randint(5, 120)]) if answered else 0
        wrap = rng.randint(0, 180) if answered else 0
        duration = wait + talk + hold
        ended = created + duration + wrap
        batch = (ended // BATCH_SECONDS + 1) * BATCH_SECONDS
        agent = rng.randint(360_000_001, 360_000_040) if answered else None
        first: dict[str, t.Any] = {
            "id": call_id,
            "agent_id": agent,
            "call_channel": "phone",
            "call_charge": f"{duration * 0.0125:.6f}",
            "call_group_id": rng.choice([6789, 6790, 6791]),
            "call_recording_consent": rng.choice(["always", "opt_in", "opt_out", "never"]),
            "call_recording_consent_action": rng.choice([None, "caller_opted_in", "caller_opted_out"]),
            "call_recording_consent_keypress": rng.choice([None, "3"]),
            "callback": rng.random() < 0.05,
            "callback_source": None,
            "completion_status": "completed" if answered else rng.choice(["abandoned_in_queue", "abandoned_in_ivr"]),
            "consultation_time": rng.choice([0, 0, 0, rng.randint(5, 90)]),
            "created_at": _iso(created),
            "customer_id": rng.randint(24_000_000, 24_999_999),
            "customer_requested_voicemail": False,
            "default_group": rng.random() < 0.7,
            "direction": rng.choice(["inbound", "inbound", "inbound", "outbound"]),
            "duration": duration,
            "exceeded_queue_wait_time": wait > 180,
            "hold_time": hold,
            "ivr_action": rng.choice([None, "menu", "group"]),
            "ivr_destination_group_name": rng.choice([None, "Support", "Sales"]),
            "ivr_hops": rng.randint(0, 3),
            "ivr_routed_to": None,
            "ivr_time_spent": rng.randint(0, 40),
            "line": "+13115550100",
            "line_id": 9988,
            "line_type": "phone",
            "minutes_billed": math.ceil(duration / 60),
            "not_recording_time": 0,
            "outside_business_hours": rng.random() < 0.1,
            "overflowed": False,
            "overflowed_to": None,
            "phone_number": "+13115550100",
            "phone_number_id": 9988,
            "post_call_summary_created": False,
            "post_call_transcription_created": False,
            "quality_issues": [],
            "recording_control_interactions": 0,
            "recording_time": 0,
            "talk_time": talk,
            "ticket_id": None,
            "time_to_answer": wait if answered else None,
            "voicemail": False,
            "wait_time": wait,
            "wrap_up_time": wrap,
        }
        processed = {
            "recording_time": talk,
            "quality_issues": rng.choice([[], [], ["none"], ["one_way_audio"], ["dropped_call", "high_latency"]]),
            "post_call_summary_created": answered and rng.random() < 0.5,
        }
        versions: list[tuple[int, dict]] = [(ended, first), (batch, processed)]
        if rng.random() < 0.35:
            versions.append((batch + rng.randint(600, 2 * 86400), {"ticket_id": rng.randint(100_000, 999_999)}))
        self.versions["calls"][call_id] = versions
        legs = 1 + (rng.randint(0, 3) if answered else 0)
        for n in range(legs):
            leg_id = call_id * 10 + n
            customer = n == 0
            leg_talk = talk if customer or n == 1 else rng.randint(0, talk)
            first_leg: dict[str, t.Any] = {
                "id": leg_id,
                "call_id": call_id,
                "type": "customer" if customer else rng.choice(["agent", "agent", "supervisor", "external"]),
                "agent_id": None if customer else agent,
                "user_id": first["customer_id"] if customer else agent,
                "available_via": None if customer else rng.choice(["browser", "phone"]),
                "call_charge": f"{(wait + leg_talk) * 0.0125:.6f}",
                "completion_status": "completed" if answered else "customer_hang_up",
                "conference_from": None,
                "conference_to": None,
                "conference_time": 0,
                "consultation_from": None,
                "consultation_to": None,
                "consultation_time": None,
                "created_at": _iso(created + (0 if customer else wait)),
                "duration": (wait + leg_talk + hold) if customer else leg_talk + hold,
                "forwarded_to": None,
                "hold_time": hold,
                "minutes_billed": math.ceil((wait + leg_talk) / 60),
                "quality_issues": [],
                "talk_time": leg_talk,
                "transferred_from": None,
                "transferred_to": None,
                "wrap_up_time": 0 if customer else wrap,
            }
            self.versions["legs"][leg_id] = [
                (ended, first_leg),
                (batch, {"quality_issues": processed["quality_issues"]}),
            ]

    def _bulk_correction(self, second: int) -> None:
        """Shape zendesk-talk-second-full: the first `full_second` items of each export created
        before `second` (made up when too few) are saved again at that one second."""
        for by_id in self.versions.values():
            before = sorted(item for item, versions in by_id.items() if versions[0][0] < second)
            for n in range(self.full_second):
                if n < len(before):
                    versions = by_id[before[n]]
                    versions.append((second, {"call_charge": "0.000000"}))
                    versions.sort(key=lambda version: version[0])
                else:  # a made-up item, all of it saved then
                    item = 9_000_000_000 + n
                    template = next(iter(by_id.values()))[0][1] if by_id else {}
                    by_id[item] = [(second, dict(template, id=item, created_at=_iso(second)))]

    def item(self, resource: str, item_id: int, upto: int) -> dict:
        """The item as saved at its `upto`-th save (every earlier save applied)."""
        row: dict = {}
        versions = self.versions[resource][item_id]
        for _, fields in versions[: upto + 1]:
            row |= fields
        row["updated_at"] = _iso(versions[upto][0])
        return row

    def current(self, resource: str, item_id: int, now: int) -> int | None:
        """Which save of the item is current at `now` (None: not saved yet)."""
        versions = self.versions[resource][item_id]
        current = None
        for n, (at, _) in enumerate(versions):
            if at <= now:
                current = n
        return current

    def export(self, resource: str, start_time: int, now: int, page_size: int = TALK_PAGE_SIZE) -> list[dict]:
        """Items whose current save (at `now`) is at or after `start_time`, oldest first, at most a page."""
        self.build()
        saves = self.saves[resource]
        found: list[dict] = []
        for at, item_id, n in saves[bisect.bisect_left(saves, (start_time,)) :]:
            if at > now or len(found) >= page_size:
                break
            if self.current(resource, item_id, now) == n:
                found.append(self.item(resource, item_id, n))
        return found

    def latest(self, resource: str, now: int) -> dict[int, dict]:
        """Every item in its version current at `now`, by id (what a complete export gives)."""
        self.build()
        rows = {}
        for item_id in self.versions[resource]:
            n = self.current(resource, item_id, now)
            if n is not None:
                rows[item_id] = self.item(resource, item_id, n)
        return rows
