"""Zendesk Talk: calls and legs from the incremental exports (start_time pages, the count rule,
each item once per version, 10 requests a minute).

The exports answer every item updated at or after `start_time` (epoch seconds, inclusive), oldest
first, up to PAGE_SIZE a page, with `count` (items in this page), `end_time` (the last item's
second) and a `next_page` that is never null: caught up, it is the URL just asked and repeats the
last items. So a read stops on `count` < PAGE_SIZE (the documented "more now?"), never on
`next_page`; the next page asks from `end_time` again, and the items of that boundary second that
went out already are left out (by id and content). A full page whose items all share the second it
asked from cannot be moved past (no other parameter exists): the stream stops with one line.

Items come back whenever they are updated: a warehouse upserting by `id` keeps the latest.
The bookmark is the last emitted item's `updated_at`; the next run asks from that second
(minus `zendesk_talk_lookback_minutes`), so it re-reads only the boundary second. The items a
lookback reads again (before the bookmark) go out again, in order, and leave the bookmark where it
is (sdk_hooks.LookbackSDKHooks): it only rises, to the newest item emitted.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from urllib.parse import ParseResult, parse_qs, urlencode, urljoin, urlparse, urlsplit, urlunsplit

from singer_sdk import StreamSchema
from singer_sdk.pagination import BaseAPIPaginator

from tap_callreports.completeness import row_digest, whole_number
from tap_callreports.errors import StreamError, VendorRefused
from tap_callreports.ratelimit import Budget, Pacer, RateLimited, pacer_for
from tap_callreports.responses import dig, json_body, request_label
from tap_callreports.schemas import SCHEMAS
from tap_callreports.sdk_hooks import LookbackSDKHooks
from tap_callreports.timeutil import iso_z, parse_instant, utc_now
from tap_callreports.zendesk.client import ZendeskStream

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

EXPORT_PATH = "/api/v2/channels/voice/stats/incremental/"
#: Items per export page: the `count` rule's threshold (Airbyte's "export page size"; Zendesk's
#: Talk page does not state it). A page with fewer is the last one for now.
PAGE_SIZE = 1000
#: Seconds between two progress lines of a long read (the first page always has one).
PROGRESS_EVERY_SECONDS = 30.0
TALK_ABSENT = (
    "Zendesk Talk is not on this account; deselect zendesk_talk_calls and zendesk_talk_legs in the catalog to "
    "leave them out"
)
TALK_HELP = (
    "Zendesk Talk is not on this account, or this user may not read its exports (admins, or agents who "
    "can manage channels); deselect zendesk_talk_calls and zendesk_talk_legs in the catalog, or use "
    "such a user"
)


def start_time_of(url: str) -> int | None:
    """The `start_time` a URL asks for."""
    values = parse_qs(urlsplit(url).query).get("start_time")
    return whole_number(values[0]) if values else None


def _with_start_time(url: str, start_time: int) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qs(parts.query).items() if k != "start_time"}
    return urlunsplit(parts._replace(query=urlencode({**query, "start_time": start_time}, doseq=True)))


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


@dataclass
class ExportRead:
    """One run's read of one export: what it asks, what it emitted, what it skipped."""

    since: int  # epoch second asked first (inclusive)
    until: int  # items updated at or after it are the next run's (end_date, or now minus the lag)
    pages: int = 0
    emitted: int = 0
    repeats: int = 0  # items of a boundary second read again and left out
    later: int = 0  # items at or after `until`
    rate_limited: int = 0  # 429 answers (each waited out)
    started: float = field(default_factory=time.monotonic)
    last_progress: float | None = None
    reached: int | None = None  # the last page's end_time
    #: The newest second emitted, and the content digest of each item emitted at it, by id.
    boundary: int = -1
    boundary_sent: dict[t.Any, bytes] = field(default_factory=dict)

    def fresh(self, row: dict, at: int) -> bool:
        """Whether the row goes out: not the same version of an item already sent at `at`, nor one
        older than the newest second sent (a next_page asking from before its end_time answers
        again what the page before covered; sending it would break the stream's order)."""
        if at < self.boundary:
            self.repeats += 1
            return False
        if at > self.boundary:
            self.boundary, self.boundary_sent = at, {}
        digest = row_digest(row, ())
        if self.boundary_sent.get(row.get("id")) == digest:
            self.repeats += 1
            return False
        self.boundary_sent[row.get("id")] = digest
        return True


class TalkExportPaginator(BaseAPIPaginator[ParseResult | None]):
    """Follows `next_page` while `count` says a full page came, and only while it moves forward."""

    def __init__(self, stream: ZendeskTalkStream, read: ExportRead) -> None:
        super().__init__(None)
        self.stream = stream
        self.read = read
        self._next: str | None = None

    def continue_if_empty(self, response: requests.Response) -> bool:
        return True  # a page whose items all went out already still says, by its count, what follows

    def has_more(self, response: requests.Response) -> bool:
        read, name = self.read, self.stream.name
        body = json_body(response, name)
        asked = start_time_of(response.url)
        items = dig(body, self.stream.resource)
        count = whole_number(dig(body, "count"))
        if count is None:
            count = len(items) if isinstance(items, list) else 0
        end_time = whole_number(dig(body, "end_time"))
        read.pages += 1
        if end_time is not None:
            read.reached = end_time
        self.stream.log_progress(read, count)
        if count < PAGE_SIZE:
            return False  # the documented rule: fewer than a page means nothing more for now
        if end_time is None or asked is None:
            self._stop(f"{request_label(response)} answered a full page ({count} items) without end_time")
        if end_time <= asked:
            self._stop(
                f"all {count} items of {request_label(response)} share the second {iso_z(_utc(asked))} it asked "
                f"from: the export cannot be paged past that second (start_time is its only parameter)"
            )
        if end_time >= read.until:
            return False  # what follows is the next run's
        next_page = dig(body, "next_page")
        url = urljoin(response.url, next_page.strip()) if isinstance(next_page, str) and next_page.strip() else ""
        if urlsplit(url).scheme not in ("http", "https"):
            url = _with_start_time(response.url, end_time)  # never null by the docs; its start_time is end_time
        following = start_time_of(url)
        if following is None or not asked < following <= end_time:
            self._stop(
                f"{request_label(response)} gives a next_page asking from "
                f"{'no start_time' if following is None else iso_z(_utc(following))} after a page that ends at "
                f"{iso_z(_utc(end_time))}: following it would repeat or skip items"
            )
        self._next = url
        return True

    def get_next(self, response: requests.Response) -> ParseResult | None:
        return urlparse(self._next) if self._next else None

    def _stop(self, what: str) -> t.NoReturn:
        raise StreamError(
            self.stream.name,
            f"cannot read the rest of the export: {what}; the items read so far were emitted and the bookmark "
            "is their last second (the next run asks from it again); report it to Zendesk if it persists",
        )


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class ZendeskTalkStream(LookbackSDKHooks, ZendeskStream):
    """One Talk incremental export (`resource`: calls or legs), paced to the exports' rate limit."""

    resource: t.ClassVar[str]
    primary_keys = ("id",)
    replication_key = "updated_at"
    # Pages ascend by updated_at and each page is sorted before it goes out; the lookback's items,
    # before the bookmark, go out again first and leave it where it is (LookbackSDKHooks).
    is_sorted = True
    schema = StreamSchema(SCHEMAS)

    _read: ExportRead | None = None

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"{EXPORT_PATH}{self.resource}"

    # ---- pacing: the exports' budget, before every try (retries too) --------------------------

    @cached_property
    def budget(self) -> Budget:
        """The exports' limit (10 requests a minute by default)."""
        zendesk = self.zendesk
        return Budget(zendesk.talk_rate_limit, zendesk.talk_rate_window_seconds, even=False)

    @property
    def pacer_endpoint(self) -> str:
        """What the budget is kept for: both exports, not each. Zendesk's page states 10 requests a
        minute for "the incremental exports" and not whether per export; Airbyte and Estuary count
        calls and legs against one budget (../shared/api-docs/zendesk-talk.md section 3). Shared, a
        run never sends more than 10 in a minute to the two, also where calls end and legs begin."""
        return f"{self.url_base}{EXPORT_PATH}"

    @cached_property
    def pacer(self) -> Pacer:
        return pacer_for(self.tap, self.pacer_endpoint, self.budget)

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        self.pacer.wait()
        try:
            return super()._request(prepared_request, context)
        except RateLimited as refused:
            if refused.limited:
                # the retry policy waits its Retry-After; the pacer holds the next request until then too
                self.pacer.hold(refused.backoff.seconds if refused.backoff else self.budget.window_seconds)
                if self._read is not None:
                    self._read.rate_limited += 1
            raise
        finally:
            self.pacer.sent()

    # ---- what a run reads ---------------------------------------------------------------------

    def export_read(self, context: Context | None) -> ExportRead:
        settings, zendesk = self.settings, self.zendesk
        has_bookmark = self.get_context_state(context).get("replication_key_value") is not None
        since = settings.start_date
        if has_bookmark:
            bookmark = self.get_starting_timestamp(context) or since
            since = max(since, bookmark - dt.timedelta(minutes=zendesk.talk_lookback_minutes))
        until = utc_now() - dt.timedelta(minutes=zendesk.talk_data_lag_minutes)
        if settings.end_date is not None:
            until = min(until, settings.end_date)
        return ExportRead(since=math.floor(since.timestamp()), until=math.floor(until.timestamp()))

    def get_new_paginator(self) -> TalkExportPaginator:
        assert self._read is not None
        return TalkExportPaginator(self, self._read)

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        assert self._read is not None
        return {} if next_page_token else {"start_time": self._read.since}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        read = self._read
        assert read is not None
        rows: list[tuple[int, dict]] = []
        for row in super().parse_response(response):
            instant = parse_instant(row.get("updated_at")) if isinstance(row, dict) else None
            if instant is None:
                raise StreamError(
                    self.name,
                    f"{request_label(response)} holds an item without a readable updated_at "
                    f"(id {row.get('id') if isinstance(row, dict) else '?'}): the export's order is unknown; "
                    "nothing after the last STATE was committed; report it to Zendesk",
                )
            rows.append((math.floor(instant.timestamp()), row))
        rows.sort(key=lambda entry: entry[0])  # the SDK checks the order; a page may not be sorted
        for at, row in rows:
            if at >= read.until:
                read.later += 1
            elif at >= read.since and read.fresh(row, at):
                read.emitted += 1
                yield row

    def extract_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        read = self._read = self.export_read(context)
        if read.since >= read.until:
            self.logger.info(
                "%s: nothing to read: it would start at %s (its bookmark, or start_date), not before %s (now minus "
                "zendesk_talk_data_lag_minutes, or end_date)",
                self.name,
                iso_z(_utc(read.since)),
                iso_z(_utc(read.until)),
            )
            return
        self.logger.info(
            "%s: reading items updated from %s to %s at %s",
            self.name,
            iso_z(_utc(read.since)),
            iso_z(_utc(read.until)),
            self.budget.describe(),
        )
        try:
            yield from super().extract_records(context)
        except VendorRefused as exc:
            said = exc.args[0] if exc.args else str(exc.status)
            if exc.status == HTTPStatus.NOT_FOUND and read.pages == 0:
                # as tap-zendesk does for Talk: an account without Talk is not an error of the run
                self.logger.warning(
                    "%s: %s: %s; the stream was skipped: nothing emitted, no bookmark moved",
                    self.name,
                    said,
                    TALK_ABSENT,
                )
                return
            if exc.status in (HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND):
                raise StreamError(self.name, f"{said}: {TALK_HELP}") from None
            raise
        self.logger.info(
            "%s: read %d page(s) up to %s: %d item(s) emitted, %d repeat(s) of a boundary second left out, "
            "%d updated after %s left to the next run; waited %.0fs for the rate limit, %d 429 answer(s)",
            self.name,
            read.pages,
            iso_z(_utc(read.reached if read.reached is not None else read.since)),
            read.emitted,
            read.repeats,
            read.later,
            iso_z(_utc(read.until)),
            self.pacer.waited_seconds,
            read.rate_limited,
        )

    def log_progress(self, read: ExportRead, count: int) -> None:
        """A line on the first page and then every PROGRESS_EVERY_SECONDS: how far, how long left."""
        now = time.monotonic()
        if read.last_progress is not None and now - read.last_progress < PROGRESS_EVERY_SECONDS:
            return
        read.last_progress = now
        reached = read.reached if read.reached is not None else read.since
        span = max(1, read.until - read.since)
        done = min(span, max(0, reached - read.since))
        per_page = done / read.pages  # seconds of history a page has covered so far
        if per_page > 0:
            pages_left = math.ceil(max(0, read.until - reached) / per_page)
        else:
            pages_left = 0 if count < PAGE_SIZE else 1
        pace = max(self.budget.seconds_per_request, (now - read.started) / read.pages)
        self.logger.info(
            "%s: page %d (%d items) reaches %s, %.0f%% of %s to %s; about %d page(s) and %s left at %s",
            self.name,
            read.pages,
            count,
            iso_z(_utc(reached)),
            100 * done / span,
            iso_z(_utc(read.since)),
            iso_z(_utc(read.until)),
            pages_left if count >= PAGE_SIZE else 0,
            _duration(pages_left * pace if count >= PAGE_SIZE else 0),
            self.budget.describe(),
        )


class ZendeskTalkCallsStream(ZendeskTalkStream):
    """Talk calls, each in its latest version (a call is exported again whenever it changes)."""

    name = "zendesk_talk_calls"
    resource = "calls"
    records_path = ("calls",)


class ZendeskTalkLegsStream(ZendeskTalkStream):
    """Talk call legs (one participant's part of a call; `call_id` names the call)."""

    name = "zendesk_talk_legs"
    resource = "legs"
    records_path = ("legs",)
