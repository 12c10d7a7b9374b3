"""Paged lists read every row once, at the tap's page size, or stop with one line: the sandbox's
odd HAL link shapes, lists that shift while paged, and cursor answers that cannot be followed."""

from __future__ import annotations

import json
import logging
import typing as t

import pytest
import requests

from helpers import run_cli, sandbox_config, sync
from tap_callreports.errors import StreamError
from tap_callreports.pagination import CursorLinksPaginator, HALPageNumberPaginator, PageNumberListing, StableListing

if t.TYPE_CHECKING:
    from tap_callreports.sandbox import RunningSandbox

IMPORTS = 23
PAGE_SIZE = 5  # 23 rows: pages of 5, 5, 5, 5, 3


def imports_config(sandbox: RunningSandbox, **overrides: t.Any) -> dict:
    return sandbox_config(
        sandbox,
        vendors=("talkdesk",),
        talkdesk_page_size=PAGE_SIZE,
        start_date="2025-01-01T00:00:00Z",
        end_date=None,
        **overrides,
    )


def imports_ids(make_sandbox: t.Callable[..., RunningSandbox], shapes: tuple[str, ...]) -> tuple[list, list[dict]]:
    sandbox = make_sandbox(imports_count=IMPORTS, list_anchor="2026-10-02T00:00:00Z", shapes=shapes)
    run = sync(imports_config(sandbox), streams=["talkdesk_imports"])
    assert run.error is None, run.error
    return [r["id"] for r in run.records("talkdesk_imports")], sandbox.app.events("imports_page")


@pytest.mark.parametrize("shape", ["imports-next-without-per-page", "imports-next-missing", "imports-next-repeated"])
def test_odd_next_links_give_the_plain_lists_rows_at_our_page_size(make_sandbox, shape):
    plain, _ = imports_ids(make_sandbox, ())
    ids, pages = imports_ids(make_sandbox, (shape,))
    assert len(plain) == IMPORTS
    assert len(ids) == len(set(ids))  # nothing twice
    assert sorted(ids) == sorted(plain)  # nothing skipped
    # Every page asked once, in order, at our page size, never past the last; then page 1 once more
    # (had it changed, the list moved while it was read).
    assert [(p["page"], p["per_page"]) for p in pages] == [(n, PAGE_SIZE) for n in [1, 2, 3, 4, 5, 1]]


def test_the_plain_list_is_read_in_pages_of_our_size(make_sandbox):
    ids, pages = imports_ids(make_sandbox, ())
    assert [p["count"] for p in pages] == [5, 5, 5, 5, 3, 5]  # and page 1 again: the list did not move
    assert {p["per_page"] for p in pages} == {PAGE_SIZE}


# ---- decisions on answers the sandbox does not make: one page body at a time ------------------------


def page(number: int, rows: list[str], *, links: dict | None = None, **stated: t.Any) -> requests.Response:
    """A bulk-imports page as the vendor might answer it (stated fields only when given)."""
    response = requests.Response()
    response.status_code = 200
    response.url = f"https://api.example.com/bulk-imports/users?page={number}&per_page={PAGE_SIZE}"
    response.request = requests.Request("GET", response.url).prepare()
    body = {"_embedded": {"imports": [{"id": i} for i in rows]}, "_links": links or {}, **stated}
    response._content = json.dumps(body).encode()
    return response


def walk(pages: list[requests.Response], listing: PageNumberListing | None = None) -> list[int]:
    """Feed the pages to a paginator the way the SDK does; the page numbers it asked for."""
    listing = listing or PageNumberListing("talkdesk_imports", PAGE_SIZE, ("_embedded", "imports"))
    paginator = HALPageNumberPaginator(listing)
    asked = []
    for response in pages:
        asked.append(paginator.current_value)
        paginator.advance(response)
        if paginator.finished:
            break
    return asked


def full(n: int) -> list[str]:
    return [f"{n}-{i}" for i in range(PAGE_SIZE)]


NEXT = {"next": {"href": "/bulk-imports/users?page=99"}}  # its page number is not followed


def test_next_link_means_one_more_page_by_number():
    assert walk([page(1, full(1), links=NEXT), page(2, full(2), links=NEXT), page(3, ["3-0"])]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("stated", "pages_read"),
    [
        ({"total": 12, "per_page": PAGE_SIZE}, 3),  # 5 + 5 + 2
        ({"total": 10}, 2),  # per_page not stated: ours
        ({"_links": {"last": {"href": "/bulk-imports/users?page=2"}}}, 2),
        ({}, 3),  # nothing stated: full pages go on, the short one ends it
    ],
)
def test_without_next_links_the_stated_numbers_decide(stated, pages_read):
    links = stated.pop("_links", None)
    bodies = [page(n, full(n) if n < 3 else ["3-0", "3-1"], links=links, **stated) for n in (1, 2, 3, 4)]
    asked = walk(bodies)
    assert asked == list(range(1, pages_read + 1))


def loud(pages: list[requests.Response]) -> str:
    with pytest.raises(StreamError) as caught:
        walk(pages)
    return str(caught.value)


def test_total_and_last_link_disagreeing_stops_loudly():
    message = loud([page(1, full(1), total=20, links={"last": {"href": "/bulk-imports/users?page=1"}})])
    assert message.startswith("talkdesk_imports: ")
    assert "total=20" in message and "page 1" in message and "report it" in message


def test_a_page_answered_with_another_number_stops_loudly():
    message = loud([page(1, full(1), page=1, links=NEXT), page(2, full(1), page=1, links=NEXT)])
    assert "page 2 (per_page=5) was answered with page 1" in message


def test_a_vendor_ignoring_the_page_number_stops_instead_of_looping():
    message = loud([page(n, full(1), links=NEXT) for n in (1, 2, 3)])
    assert "same 5 rows as page 1" in message


def test_rows_that_shift_while_paging_are_read_once_and_a_shortfall_rereads_once():
    """The list is newest first: a row deleted between two pages pulls a row back past the boundary."""
    passes = [
        [{"id": "a"}, {"id": "b"}, {"id": "b"}, {"id": "c"}],  # b seen twice, d missed (total 4)
        [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}],  # read again: d found
    ]
    listing = PageNumberListing("talkdesk_imports", PAGE_SIZE, ("_embedded", "imports"))
    listing.stated_total = 4
    read = iter(passes)
    rows = list(listing.read(lambda: iter(next(read)), logger=logging.getLogger("test")))
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]


def test_a_list_still_short_after_the_last_read_stops_with_both_counts():
    listing = PageNumberListing("talkdesk_imports", PAGE_SIZE, ("_embedded", "imports"))
    listing.stated_total = 4
    with pytest.raises(StreamError) as caught:
        list(listing.read(lambda: iter([{"id": "a"}, {"id": "b"}]), logger=logging.getLogger("test")))
    assert "states 4 rows but only 2 distinct" in str(caught.value)


def test_a_list_shorter_than_its_total_over_http_reads_three_times_then_stops_in_one_line(
    tmp_path, make_sandbox, monkeypatch
):
    """The sandbox states the real total; we make the tap see one row fewer on every read."""
    sandbox = make_sandbox(imports_count=IMPORTS, list_anchor="2026-10-02T00:00:00Z")
    from tap_callreports.talkdesk.streams import TalkdeskImportsStream

    original = TalkdeskImportsStream.parse_response

    def drop_first_row(self, response):
        rows = list(original(self, response))
        return rows[1:] if "page=1&" in response.url else rows

    monkeypatch.setattr(TalkdeskImportsStream, "parse_response", drop_first_row)
    run = sync(imports_config(sandbox), streams=["talkdesk_imports"])
    assert run.error is not None
    assert str(run.error).startswith("talkdesk_imports: the list states 23 rows but only 22 distinct")
    assert [p["page"] for p in sandbox.app.events("imports_page")] == [1, 2, 3, 4, 5] * 3
    assert "replication_key_value" not in json.dumps(run.final_state)


# ---- Zendesk cursors --------------------------------------------------------------------------------


def cursor_page(
    has_more: t.Any, next_link: t.Any, url: str = "https://x.zendesk.com/api/v2/job_statuses?page%5Bsize%5D=100"
) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    response._content = json.dumps(
        {"job_statuses": [{"id": "1"}], "meta": {"has_more": has_more}, "links": {"next": next_link}}
    ).encode()
    return response


@pytest.mark.parametrize("next_link", [None, "", 42, "mailto:someone"])
def test_cursor_has_more_without_a_usable_next_link_stops_loudly(next_link):
    paginator = CursorLinksPaginator("zendesk_job_statuses")
    with pytest.raises(StreamError) as caught:
        paginator.advance(cursor_page(True, next_link))
    message = str(caught.value)
    assert message.startswith("zendesk_job_statuses: cannot read the rest of the list")
    assert "meta.has_more=true but gives no usable links.next" in message


def test_cursor_next_link_repeated_stops_loudly():
    first = "https://x.zendesk.com/api/v2/job_statuses?page[size]=100&page[after]=abc"
    paginator = CursorLinksPaginator("zendesk_job_statuses")
    paginator.advance(cursor_page(True, first))
    with pytest.raises(StreamError) as caught:
        paginator.advance(cursor_page(True, first, url=first))
    assert "already read" in str(caught.value)


def test_cursor_next_link_back_to_the_first_page_stops_loudly():
    """The first page was asked with requests' encoding (%5B); the vendor's link spells it [ ]."""
    paginator = CursorLinksPaginator("zendesk_job_statuses")
    with pytest.raises(StreamError):
        paginator.advance(cursor_page(True, "https://x.zendesk.com/api/v2/job_statuses?page[size]=100"))


def test_cursor_stops_at_has_more_false_even_with_a_next_link():
    paginator = CursorLinksPaginator("zendesk_job_statuses")
    paginator.advance(cursor_page(False, "https://x.zendesk.com/api/v2/job_statuses?page[after]=abc"))
    assert paginator.finished


def test_cursor_loud_stop_is_one_line_from_the_cli(tmp_path, make_sandbox, monkeypatch):
    """Over real HTTP: page 2 says has_more without a next link; the run ends in one line, no traceback."""
    from tap_callreports.sandbox.zendesk import ZendeskApi

    original = ZendeskApi.job_statuses

    def no_next_link_on_page_2(self, request):
        response = original(self, request)
        if "page[after]" in request.args and response.status_code == 200:
            body = json.loads(response.get_data())
            body["links"]["next"] = None
            response.set_data(json.dumps(body))
        return response

    monkeypatch.setattr(ZendeskApi, "job_statuses", no_next_link_on_page_2)  # the sandbox runs in this process
    sandbox = make_sandbox(job_statuses_count=250)
    run = run_cli(tmp_path, sandbox_config(sandbox, vendors=("zendesk",)))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-callreports: error: zendesk_job_statuses: cannot read the rest of the list: GET ")
    assert "says meta.has_more=true but gives no usable links.next (got null)" in last
    assert len(run.records("zendesk_job_statuses")) == 200  # the two pages read were emitted


# ---- lists that move at the top while read: only the head is read again -------------------------------


class MovingList:
    """A newest-first list served in pages of PAGE_SIZE to a listing, with its total; `after_first_page`
    changes it right after every serve of the first page. Which pages were served, in order."""

    def __init__(
        self,
        listing: StableListing,
        rows: list[str],
        after_first_page: t.Callable[[list[dict]], None],
        *,
        states_total: bool = True,
    ) -> None:
        self.listing, self.rows = listing, [{"id": key, "v": 0} for key in rows]
        self.after_first_page = after_first_page
        self.states_total = states_total
        self.served: list[int] = []

    def read_pages(self) -> t.Iterator[dict]:
        number = 1
        while True:
            page_rows = [dict(row) for row in self.rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]]
            self.served.append(number)
            self.listing.note({"total": len(self.rows)} if self.states_total else {})
            self.listing.page(page_rows)
            if number == 1:
                self.after_first_page(self.rows)
            yield from page_rows
            if len(page_rows) < PAGE_SIZE:
                return
            number += 1


def read_moving(
    rows: list[str], change: t.Callable[[list[dict]], None], states_total: bool = True
) -> tuple[list[dict], MovingList]:
    listing = PageNumberListing("talkdesk_imports", PAGE_SIZE, ("_embedded", "imports"))
    moving = MovingList(listing, rows, change, states_total=states_total)
    return list(listing.read(moving.read_pages, logger=logging.getLogger("test"))), moving


def test_a_list_growing_at_the_top_on_every_read_is_never_read_again_in_full():
    arrived = iter(range(1000))

    def arrive(rows: list[dict]) -> None:
        rows.insert(0, {"id": f"new-{next(arrived)}", "v": 0})

    read, moving = read_moving([f"r{i}" for i in range(23)], arrive)
    keys = [r["id"] for r in read]
    assert len(keys) == len(set(keys))  # none twice
    assert set(keys) >= {f"r{i}" for i in range(23)}  # none of the old ones skipped
    assert set(keys) >= {row["id"] for row in moving.rows[1:]}  # every arrival before the last read of page 1
    assert moving.served.count(5) == 1  # the last page once: the whole list was not read again


def test_rows_updated_and_moved_to_the_top_on_every_read_go_out_in_their_new_form():
    """Zendesk's job statuses: no total, a job moves to the top when it completes."""

    def complete_the_last(rows: list[dict]) -> None:
        moved = rows.pop()
        rows.insert(0, {**moved, "v": moved["v"] + 1})

    read, moving = read_moving([f"r{i}" for i in range(23)], complete_the_last, states_total=False)
    sent = [(r["id"], r["v"]) for r in read]
    assert len(sent) == len(set(sent))  # none twice with the same content
    assert {key for key, _ in sent} == {f"r{i}" for i in range(23)}  # every key
    latest = {key: v for key, v in sent}
    assert all(latest[row["id"]] == row["v"] for row in moving.rows[1:])  # all but the last move: new form
    assert moving.served.count(5) == 1


def test_an_entry_leaving_the_first_page_without_a_total_reads_the_whole_list_again():
    """Without a stated total, an entry that expired from page 1 shifted every later page up by one:
    a row was skipped at each page boundary, so the whole list is read again."""
    expired: list[str] = []

    def expire_once(rows: list[dict]) -> None:
        if not expired:
            expired.append(rows.pop(0)["id"])

    listing = StableListing("zendesk_job_statuses")
    moving = MovingList(listing, [f"r{i}" for i in range(23)], expire_once, states_total=False)
    read = list(listing.read(moving.read_pages, logger=logging.getLogger("test")))
    assert {r["id"] for r in read} == {f"r{i}" for i in range(23)}
    assert moving.served[:6] == [1, 2, 3, 4, 5, 1]  # the head read saw page 1 lose an entry...
    assert moving.served[6:] == [1, 2, 3, 4, 5, 1]  # ...so the list was read again in full, then stable
