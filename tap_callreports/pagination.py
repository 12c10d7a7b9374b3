"""Paginators, chosen per stream by name (as in a low-code manifest).

A listing either reads every page once or stops with one line saying what the vendor sent:
no page is followed twice, and no run ends early without saying so.
"""

from __future__ import annotations

import math
import typing as t
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urljoin, urlparse, urlsplit

from singer_sdk.pagination import BaseAPIPaginator, BaseHATEOASPaginator

from tap_callreports.completeness import row_digest, whole_number
from tap_callreports.errors import StreamError
from tap_callreports.responses import dig, json_body, request_label

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Iterator

    import requests

REPORT_IT = "run again later, and report it to the vendor if it persists"


class StableListing:
    """A list that may move while it is read, read until every entry went out once in its last form.

    Entries are added, expire, or move to the top when they are updated or complete (the vendors'
    sort orders allow it: Zendesk sorts job statuses by completion date), so a page read after
    such a move skips an entry or repeats one. Rows go out once per key and content: a row read
    again unchanged is not sent twice; one that changed meanwhile goes out again and replaces the
    old one by key.

    After a full pass over the pages, two kinds of movement are told apart:
    - entries left the list (a `total` that fell, or fewer distinct keys than a steady total, or a
      first page that lost rows from its top): later entries shifted to earlier pages, past the
      pages already read, so the whole list is read again, at most MAX_PASSES times, then the
      stream stops with one line;
    - entries arrived at or moved to the top (a growing total, a first page that changed): only
      the head is read again, page by page until a page holds nothing not already sent, which
      catches every entry that moved before that head read began. The list is settled when a
      head read finds nothing new; under a top that changes on every read, after MAX_HEAD_READS
      head reads that each caught up (changes after a read began are the next run's, as any
      change after the run is: they are newer than every row sent).
    A list that only grows at the top is never read again in full.

    A read that loses its place (a cursor that expired before it was used: a 400 naming the cursor)
    resumes from the last page it committed (`resume_at`: the last page whose rows were all taken,
    which the paginator asks again for a fresh cursor), or from the first page when that page's
    own cursor is refused too; rows already sent are not sent again, so nothing is lost or doubled.
    After MAX_RESUMES such resumes in one read the stream stops with one line.

    The stream feeds it every page it parses (`page`), any total it states (`note`) and the URL of
    every page whose rows were all taken (`committed`).
    """

    MAX_PASSES = 3
    MAX_HEAD_READS = 3
    MAX_RESUMES = 3

    def __init__(self, stream_name: str, key: str = "id") -> None:
        self.stream_name = stream_name
        self.key = key
        self.seen: set[t.Any] = set()
        self._sent: dict[t.Any, bytes] = {}
        self.stated_total: int | None = None
        self._totals: list[int] = []
        self._first_keys: tuple | None = None
        self._pages = 0
        self._head_of: tuple | None = None  # while a head is read: the first page's keys before it
        self._shifted = False
        self._page_left = 0
        self._page_fresh = False
        #: Where the next read of the pages starts (None: the first page); `_committed`: the URL of
        #: the last page whose rows were all taken.
        self.resume_at: str | None = None
        self._committed: str | None = None

    def committed(self, url: str) -> None:
        """Every row of the page `url` answered was taken."""
        self._committed = url

    def note(self, body: t.Any) -> None:
        total = whole_number(dig(body, "total"))
        if total is not None:
            self.stated_total = total
            if not self._totals or self._totals[-1] != total:
                self._totals.append(total)

    def page(self, rows: t.Sequence[t.Any]) -> None:
        """A page of the read in progress (before its rows are taken)."""
        self._pages += 1
        self._page_left = len(rows)
        self._page_fresh = not all(self._sent_as(row) for row in rows)
        if self._pages == 1:
            if self._head_of is not None and not self._grew_at_top(rows, self._head_of):
                self._shifted = True
            self._first_keys = self._keys(rows)

    logger: logging.Logger | None = None

    def read(self, read_pages: Callable[[], Iterable[dict]], logger: logging.Logger) -> Iterator[dict]:
        """The rows of `read_pages()` (one read over the pages from the first, or from `resume_at`
        when the stream's paginator starts there), complete or loud."""
        self.logger = logger
        for attempt in range(1, self.MAX_PASSES + 1):
            yield from self._read_from_top(read_pages, carried=self.stated_total)
            moved = self._entries_left()
            if moved is None and (self._pages > 1 or len(self._totals) > 1):
                moved = yield from self._read_heads(read_pages, logger)
            if moved is None:
                return
            if attempt < self.MAX_PASSES:
                logger.warning(
                    "%s: %s (it changed while it was paged); reading it again from the first page",
                    self.stream_name,
                    moved,
                )
        raise StreamError(
            self.stream_name,
            f"{moved}, {self.MAX_PASSES} times from the first page: the list kept changing while it was read; "
            f"the rows read were emitted but the bookmark was not advanced; run again later (the next run "
            f"reads what this one could not), and report it to the vendor if it persists",
        )

    def _read_heads(
        self, read_pages: Callable[[], Iterable[dict]], logger: logging.Logger
    ) -> t.Generator[dict, None, str | None]:
        """Read the head again until a head read finds nothing new; why the whole list must be read
        again, or None."""
        for head in range(1, self.MAX_HEAD_READS + 1):
            found = yield from self._read_from_top(read_pages, head_of=self._first_keys)
            if self._shifted:
                return "the list's first page lost entries while the later pages were read"
            moved = self._entries_left()
            if moved is not None or not found:
                return moved
            logger.warning(
                "%s: the top of the list changed while it was read; reading its head again "
                "(head read %d of at most %d)",
                self.stream_name,
                head,
                self.MAX_HEAD_READS,
            )
        return None

    def _read_from_top(
        self, read_pages: Callable[[], Iterable[dict]], *, carried: int | None = None, head_of: tuple | None = None
    ) -> t.Generator[dict, None, bool]:
        """One read from the first page: every page, or (`head_of` given) up to the first page that
        holds nothing new. Whether it sent anything."""
        self._totals = [] if carried is None else [carried]
        self._first_keys, self._pages, self._head_of, self._shifted = None, 0, head_of, False
        found = False
        self.resume_at = self._committed = None
        rows = iter(read_pages())
        resumes = 0
        try:
            while True:
                try:
                    for row in rows:
                        if self._shifted:
                            break
                        self._page_left -= 1
                        if not self._already_sent(row):
                            found = True
                            yield row
                        if head_of is not None and self._page_left <= 0 and not self._page_fresh:
                            break  # the pages below were read after every move this read can see
                    break
                except StreamError:
                    raise
                except Exception as exc:
                    if not lost_place(exc):
                        raise
                    resumes += 1
                    self._resume(exc, resumes)
                    rows = iter(read_pages())  # from `resume_at`
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
            self._head_of = None
            self.resume_at = None
        return found

    def _resume(self, exc: Exception, resumes: int) -> None:
        """Where a read that lost its place (`exc`) starts again: the last page it committed, or
        the first page when that page's own cursor was refused; a loud stop after MAX_RESUMES."""
        if resumes > self.MAX_RESUMES:
            raise StreamError(
                self.stream_name,
                f"the list lost its place {self.MAX_RESUMES + 1} times in one read ({exc}); the rows read "
                "were emitted once each and the bookmark was not advanced; run again later (the next run "
                "reads the list from its first page), and report it to the vendor if it persists",
            ) from None
        refused = getattr(exc, "url", None)
        start = None if refused is not None and refused == self._committed else self._committed
        self.resume_at = start
        self._page_left = 0
        if self.logger is not None:
            self.logger.warning(
                "%s: the list lost its place (%s); reading on from %s (resume %d of at most %d); rows "
                "already sent are not sent again",
                self.stream_name,
                exc,
                "the last page read" if start else "the first page",
                resumes,
                self.MAX_RESUMES,
            )

    def _entries_left(self) -> str | None:
        """Why the read just done may have skipped entries that shifted up the list, or None."""
        totals = self._totals
        if any(later < earlier for earlier, later in zip(totals, totals[1:])):
            return f"the list's total changed from {totals[0]} to {totals[-1]} while it was read"
        if totals and len(self.seen) < totals[0]:  # a growing list owes at least what it stated first
            return f"the list states {totals[0]} rows but only {len(self.seen)} distinct ones were read"
        return None

    def _grew_at_top(self, rows: t.Sequence[t.Any], before: tuple) -> bool:
        """Whether a first page is the one before with only new or moved entries on top (entries
        that arrived, or changed and moved up), rather than one that lost entries."""
        fresh = 0
        while fresh < len(rows) and not self._sent_as(rows[fresh]):
            fresh += 1
        keys = self._keys(rows)
        on_top = set(keys[:fresh])
        below = [key for key in before if key not in on_top]
        return list(keys[fresh:]) == below[: len(keys) - fresh]

    def _sent_as(self, row: t.Any) -> bool:
        key = row.get(self.key) if isinstance(row, dict) else None
        return key is not None and self._sent.get(key) == row_digest(row, ())

    def _already_sent(self, row: t.Any) -> bool:
        key = row.get(self.key) if isinstance(row, dict) else None
        if key is None:
            return False
        digest = row_digest(row, ())
        if self._sent.get(key) == digest:
            return True
        self.seen.add(key)
        self._sent[key] = digest
        return False

    def _keys(self, rows: t.Sequence[t.Any]) -> tuple:
        return tuple(row.get(self.key) if isinstance(row, dict) else None for row in rows)


class PageNumberListing(StableListing):
    """A HAL list read by page number (Talkdesk bulk imports) at the tap's page size."""

    def __init__(self, stream_name: str, page_size: int, records_path: tuple[str, ...], key: str = "id") -> None:
        super().__init__(stream_name, key)
        self.page_size = page_size
        self.records_path = records_path

    def paginator(self) -> HALPageNumberPaginator:
        return HALPageNumberPaginator(self)


class HALPageNumberPaginator(BaseAPIPaginator[int]):
    """HAL pages asked by number at the tap's page size (the stream sends page + per_page).

    Links are not followed verbatim: the doc's own examples (`?page=2`) drop per_page, and a
    page size changing mid-list skips or repeats rows. A `next` link says another page exists
    (the next number is always this one + 1, also when the link repeats this page); without it,
    the stated `total` / `per_page`, `_links.last`, or a short page decide.
    """

    def __init__(self, listing: PageNumberListing) -> None:
        super().__init__(1)
        self.listing = listing
        self._previous_keys: tuple | None = None
        self._more = False

    def continue_if_empty(self, response: requests.Response) -> bool:
        self.listing.note(json_body(response, self.listing.stream_name))
        return False  # an empty page ends the list; a shortfall against `total` is caught after

    def has_more(self, response: requests.Response) -> bool:
        self._more = self._decide(response)
        return self._more

    def get_next(self, response: requests.Response) -> int | None:
        return self.current_value + 1 if self._more else None

    def _decide(self, response: requests.Response) -> bool:
        listing = self.listing
        body = json_body(response, listing.stream_name)
        listing.note(body)
        asked = self.current_value
        where = f"{request_label(response)} page {asked} (per_page={listing.page_size})"
        stated_page = whole_number(dig(body, "page"))
        if stated_page is not None and stated_page != asked:
            self._stop(f"{where} was answered with page {stated_page}")
        rows = dig(body, *listing.records_path) or []
        keys = tuple(row.get(listing.key) for row in rows if isinstance(row, dict))
        if keys and keys == self._previous_keys:
            self._stop(
                f"{where} holds the same {len(keys)} rows as page {asked - 1}: the vendor ignores the page number"
            )
        self._previous_keys = keys

        if dig(body, "_links", "next", "href"):
            return True
        per_page = whole_number(dig(body, "per_page")) or listing.page_size
        total = whole_number(dig(body, "total"))
        last = _page_of(dig(body, "_links", "last", "href"))
        by_total = asked < math.ceil(total / per_page) if total is not None else None
        by_last = asked < last if last is not None else None
        if by_total is not None and by_last is not None and by_total != by_last:
            self._stop(
                f"{where} has no next link, and total={total} at per_page={per_page} and the last link "
                f"(page {last}) disagree on whether more pages exist"
            )
        if by_total is not None:
            return by_total
        if by_last is not None:
            return by_last
        # Nothing stated: a short page is the last; after a full one the next number is asked,
        # and an empty answer ends the list.
        return len(rows) >= per_page

    def _stop(self, what: str) -> t.NoReturn:
        raise StreamError(
            self.listing.stream_name,
            f"cannot tell how to read the rest of the list: {what}; nothing after it was read and the "
            f"bookmark was not advanced, {REPORT_IT}",
        )


class CursorLinksPaginator(BaseHATEOASPaginator):
    """Zendesk cursor pagination: follow `links.next` while `meta.has_more` is true.

    `has_more` without a usable next link, or a next link already followed, stops the stream
    with one line instead of ending early or looping. A read may start at a page's URL
    (`start_url`: a listing resuming where it lost its place); `committed` hears the URL of every
    page whose rows were all taken.
    """

    def __init__(
        self, stream_name: str, start_url: str | None = None, committed: Callable[[str], None] | None = None
    ) -> None:
        super().__init__()
        self.stream_name = stream_name
        self._followed: set[str] = set()
        self._committed = committed
        if start_url:
            self._value = urlparse(start_url)

    def has_more(self, response: requests.Response) -> bool:
        body = json_body(response, self.stream_name)
        has_more = dig(body, "meta", "has_more")
        if isinstance(has_more, bool):
            return has_more
        return bool(dig(body, "links", "next"))  # no meta.has_more: the next link alone says

    def get_next_url(self, response: requests.Response) -> str | None:
        href = dig(json_body(response, self.stream_name), "links", "next")
        self._followed.add(unquote(response.url))
        if self._committed is not None:
            self._committed(response.url)  # its rows were all taken before the paginator moves on
        url = urljoin(response.url, href.strip()) if isinstance(href, str) else ""
        if not href or urlsplit(url).scheme not in ("http", "https"):
            self._stop(
                f"{request_label(response)} says meta.has_more=true but gives no usable links.next (got {_shown(href)})"
            )
        if unquote(url) in self._followed:
            self._stop(f"{request_label(response)} gives a links.next that was already read: following it would loop")
        self._followed.add(unquote(url))
        return url

    def _stop(self, what: str) -> t.NoReturn:
        raise StreamError(
            self.stream_name,
            f"cannot read the rest of the list: {what}; the rows read so far were emitted, {REPORT_IT}",
        )


def lost_place(exc: Exception) -> bool:
    """Whether a refused page request says the list lost its place: a 400 naming the cursor (an
    expired or unknown `page[after]`)."""
    return getattr(exc, "status", None) == HTTPStatus.BAD_REQUEST and "cursor" in str(exc).lower()


def _page_of(href: t.Any) -> int | None:
    """The `page` query parameter of a link."""
    if not isinstance(href, str):
        return None
    values = parse_qs(urlsplit(href).query).get("page")
    return whole_number(values[0]) if values else None


def _shown(value: t.Any) -> str:
    """A vendor value for an error line: its JSON type, or a short repr (no query strings)."""
    if isinstance(value, str):
        return repr(urlsplit(value).path or value[:40])
    return "null" if value is None else type(value).__name__
