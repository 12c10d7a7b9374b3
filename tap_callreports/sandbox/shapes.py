"""Named answer shapes: other ways the vendor docs allow an answer to look, which a client must
survive. Each is switched on by name (`SandboxConfig.shapes`, `callreports-sandbox --shape NAME`);
what each changes is an entry in one of the tables below (see "what each shape changes"), which
the vendor modules look up."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
import zlib

import orjson

SHAPES: dict[str, str] = {
    # Talkdesk Explore reports
    "talkdesk-bare-array": "a JSON report file is a bare top-level array of rows (no entries/total)",
    "talkdesk-total-first": 'a JSON report file starts with total: {"total", "type", "version", "entries"}',
    "talkdesk-total-short-once": "the first job for a (type, window) writes one entry fewer than its total",
    "talkdesk-location-other-host": "done jobs and the files endpoint redirect to a signed URL on another host",
    "talkdesk-files-404-once": "the first GET of each job's file answers 404 (store not consistent yet)",
    "talkdesk-file-not-ready-once": "the first GET of each job's file answers 202 with Retry-After: 1 and the job "
    "back at uploading",
    "talkdesk-file-html-once": "the first GET of each job's file answers 200 with an HTML error page",
    "talkdesk-file-json-error-once": "the first GET of each job's file answers 200 with a JSON error (for any format)",
    "talkdesk-file-text-once": "the first GET of each job's file answers 200 text/plain with one line of status text "
    "(for any format)",
    "talkdesk-file-empty-once": "the first GET of each job's file answers 200 text/plain with a 0-byte body "
    "(for any format)",
    "talkdesk-file-html-always": "every GET of a job's file answers 200 with an HTML error page",
    "talkdesk-file-text-always": "every GET of a job's file answers 200 text/plain with one line of status text",
    "talkdesk-signed-url-expired-once": "the first signed download link of each job answers 403 (XML: Request has "
    "expired)",
    "talkdesk-signed-url-expired-always": "every signed download link answers 403 (XML: Request has expired)",
    "talkdesk-create-location-only": "job creation answers 202 with an empty body and the job only in Location",
    "talkdesk-status-words": "job statuses in another vocabulary: Queued, Running, Finalizing (unknown), Completed, "
    "Error, Cancelled; done jobs answer 200 with _links.files",
    "talkdesk-status-unknown-done": "a done job's status is a word no doc uses (Available for download), answered 200 "
    "with _links.files",
    "talkdesk-empty-header-only": "a CSV report without rows is its header line alone",
    "talkdesk-empty-no-total": 'a JSON report without rows is {"entries": []}, with no total',
    "talkdesk-empty-no-entries": 'a JSON report without rows is {"total": 0, "type", "version"}, with no entries',
    "talkdesk-401-burst": "30% of requests with an issued Talkdesk token answer 401, and that token stays refused "
    "(revoked under load, although it had worked)",
    "talkdesk-status-upper": "job statuses in upper case (CREATED, PROCESSING, DONE, ...)",
    "talkdesk-timespan-wall": "timespan from/to offsets are ignored: wall-clock fields read in the job's timezone",
    "talkdesk-extra-field": "report rows of every type carry fields the tap's schemas do not list: sentiment_score "
    "(a float, null in some rows), queue_tags (a list of strings) and "
    "sentiment_scored_at (a time, written as the report writes its times)",
    "talkdesk-added-wall-time": "report rows of every type carry callback_at, a field the tap's schemas do not "
    'list: the row\'s event time as the report writes its times, or the text "None" '
    "(the row's own choice, about one row in three), so a window's first value may be "
    "either",
    "talkdesk-studio-without-interaction-id": "studio_flow_execution rows carry no interaction_id (the tap's key "
    "for a step): a layout that differs from the tap's expectation",
    "talkdesk-calls-second-leg": "the calls report repeats the call_id of the week's first call at Friday 12:00 UTC "
    "in a second row with other content (a second leg: another callsid, user and talk_time)",
    "talkdesk-calls-repeated-row": "the calls report sends the week's first call at Friday 12:00 UTC twice, identical",
    "talkdesk-job-vanished": "the first job of each (type, window) is deleted (retention, someone else) right after "
    "it reports done: its file answers 404 and the job 404 from then on",
    "talkdesk-job-vanished-mid-download": "the first download of the first job of each (type, window) breaks halfway "
    "(connection dropped), and that job is gone from then on: its file answers 404 and the job 404",
    "talkdesk-file-version-v2": 'JSON report files say "version": "v2" (a layout version the tap was not built for)',
    "talkdesk-flag-unknown-form": "the first explore_calls row of the hour at Friday 12:00 UTC (each week) carries "
    '"Maybe" in its transfer? flag (a value in none of a flag\'s forms)',
    # Talkdesk bulk imports
    "imports-empty-no-embedded": "a page without rows has no _embedded member",
    "imports-expire-while-read": "right after page 1 is first served, its first import expires (leaves the list): "
    "every later page shifts by one and the total drops",
    "imports-move-while-read": "right after page 2 is first served, the last import moves to the top (its "
    "created_at and updated_at now the anchor): the total stays",
    "imports-next-without-per-page": "HAL next/prev/first/last hrefs carry only ?page=N (no per_page)",
    "imports-next-missing": "page 2 has no next link although more pages follow",
    "imports-next-repeated": "page 2's next link points to page 2 again when more pages follow",
    # Zendesk job statuses
    "zendesk-complete-while-read": "right after the first page is first served, the list's last job completes and "
    "moves to the top (the doc's sort: completion date first)",
    "zendesk-complete-every-read": "every time the first page is served, the list's last job completes and moves "
    "to the top right after it (a busy account: the top changes during every read)",
    "zendesk-next-canonical-host": "links.next names the account's canonical https://sandbox.zendesk.com host "
    "(the API is host-mapped to the sandbox's address)",
    "zendesk-next-foreign-host": "links.next names another host (the sandbox under another name), not Zendesk's",
    "zendesk-cursor-expired-once": "the first time each page[after] cursor from the list's third page on is used, it "
    'has expired: 400 {"error": "InvalidPaginationParameter", "description": "page[after] cursor has expired"}',
    "zendesk-cursor-expired-always": "every page[after] cursor from the list's third page on has expired when used (400)",
    # Zendesk Talk incremental exports
    "zendesk-talk-second-full": "1001 Talk calls and 1001 legs are saved again in one second (12 hours into the "
    "data, a bulk correction): a whole export page shares one second, so start_time cannot move past it",
    "zendesk-talk-absent": "the Talk exports answer 404 (an account without Talk)",
    "zendesk-talk-forbidden": "the Talk exports answer 403 (a user who may not read them: not an admin, nor an "
    "agent who can manage channels)",
    # MyReports
    "myreports-request-after-data": "the /data body has request and every other member after the data array",
    "myreports-no-timezone": "the /data result's request has no timeZoneId",
    "myreports-error-envelope-once": "the first GET of each request's /data answers 200 with an error envelope",
    "myreports-error-envelope-always": "every GET of /data answers 200 with an error envelope",
    "myreports-count-short-once": "the first request for a (report, window) holds one row fewer than totalCount",
    "myreports-data-enveloped": "the /data result comes inside {data, error, message, status, timestamp}",
    "myreports-cut-unflagged": "results carry no rowLimitExceeded, and a result cut at rowLimit states the rows it "
    "returns as its totalCount",
    "myreports-create-location-only": "request creation answers 201 with an empty body and the request in Location",
    "myreports-status-words": "request statuses in another vocabulary: Queued, Running, Succeeded, Error, Canceled",
    "myreports-status-unknown-done": "a complete request's status is a word no doc uses (Generated); its "
    "statusMessage says complete",
    "myreports-empty-data-null": "a result without rows has data: null (and totalCount 0)",
    "myreports-filter-wall-time": "dateFilter start/end are read as wall times in the report's zone, their offsets "
    "ignored (filterConditions echo the instants so read)",
    "myreports-filter-start-and-end": "a request selects the calls with start >= dateFilter.start AND end < dateFilter.end "
    "(end = start + duration; filterConditions say so): a call that straddles a "
    "window's end is in neither window",
    "myreports-request-vanished": "the first request of each (report, window) is gone (expired) right after it "
    "reports Complete: its /data answers 404 at /requests/ and /results/, and the request 404 from then on",
    "myreports-no-sort-order": "the /data result's request names no sortFields: the order of its rows is not stated",
    "myreports-status-upper": "request statuses in upper case (COMPLETE, PROCESSING, ...)",
    "myreports-other-template": "results come from the CallSummaryByUser template: displayFields and rows add "
    "talkTime (number), holdCount (integer) and transferredTo (string, in some rows)",
    # Both token endpoints
    "token-fault-first": "the first request to each token endpoint answers 503",
    # Every vendor: values whose JSON type is not the documented one
    "wrong-json-types": "rows of every vendor (Talkdesk report files in any format, bulk imports, Zendesk job statuses, "
    "MyReports results) send values as another JSON type where nothing is lost, the form chosen "
    'per row and field: integers as "12", " 12 ", "12.0" or 12.0, floats as text, booleans as '
    '"true"/1/"Yes"/"T"/"1", digit-only text as a number, "" for a null number; and the counts and '
    "details beside the rows as text or floats (Talkdesk total, imports total/per_page, MyReports "
    "totalCount, effort, durations, rowLimit; rowLimitExceeded as 0/1)",
    "untypable-value": 'the first row of the hour at Friday 12:00 UTC (each week) carries "N/A" in an integer '
    "column: Talkdesk calls talk_time, MyReports callType",
    "untypable-added-column": "with talkdesk-extra-field: that same Talkdesk calls row carries sentiment_scored_at "
    '"x" (a column the tap adds, typed date-time from its first value)',
    "untypable-added-wall-time": "with talkdesk-added-wall-time: the week's first Talkdesk contacts row of the hour at "
    'Friday 12:00 UTC carries callback_at "after 6pm" (not a time)',
}


def check_shapes(names: t.Iterable[str]) -> tuple[str, ...]:
    """The names as a tuple, or ValueError naming the unknown ones and every valid one."""
    names = tuple(names)
    unknown = [name for name in names if name not in SHAPES]
    if unknown:
        msg = f"unknown sandbox shape {', '.join(map(repr, unknown))}; valid shapes: {', '.join(SHAPES)}"
        raise ValueError(msg)
    return names


# ---- what each shape changes ----------------------------------------------------------------------
# Tables keyed by shape name, one per kind of change; a handler looks its table up through
# `Sandbox.first_on` (the entry of the first switched-on shape, in table order), `Sandbox.rewrite`
# (every switched-on entry applied in table order) or `Sandbox.met` (a "-once" shape the first time
# per key, any other every time). Adding a shape of an existing kind: its SHAPES line and one entry.

#: The sandbox's data generation switched on by a shape: SandboxData's flag per shape.
DATA_SHAPES = {
    "talkdesk-extra-field": "talkdesk_extra_fields",
    "talkdesk-added-wall-time": "talkdesk_callback_at",
    "myreports-other-template": "myreports_summary_template",
}


def _words(words: dict[str, str]) -> t.Callable[[str], str]:
    """A status-word rewrite: the sandbox's own word -> the word answered (others unchanged)."""
    return lambda word: words.get(word, word)


#: Talkdesk job status words as a shape writes them (the sandbox's own word -> the word answered).
TALKDESK_STATUS_WORDS: dict[str, t.Callable[[str], str]] = {
    "talkdesk-status-upper": str.upper,
    "talkdesk-status-words": _words(
        {
            "created": "Queued",
            "processing": "Running",
            "uploading": "Finalizing",
            "done": "Completed",
            "failed": "Error",
            "canceled": "Cancelled",
        }
    ),
    "talkdesk-status-unknown-done": _words({"done": "Available for download"}),
}
#: Shapes whose done Talkdesk jobs answer 200 with _links.files (the status word is what they test).
TALKDESK_DONE_WITH_200 = {"talkdesk-status-words": True, "talkdesk-status-unknown-done": True}
#: MyReports request status words as a shape writes them.
MYREPORTS_STATUS_WORDS: dict[str, t.Callable[[str], str]] = {
    "myreports-status-upper": str.upper,
    "myreports-status-words": _words(
        {
            "Pending": "Queued",
            "Processing": "Running",
            "Complete": "Succeeded",
            "Failed": "Error",
            "Cancelled": "Canceled",
        }
    ),
    "myreports-status-unknown-done": _words({"Complete": "Generated"}),
}

#: Job (request) creation answered with an empty body and the job only in Location: its HTTP status.
TALKDESK_LOCATION_ONLY = {"talkdesk-create-location-only": 202}
MYREPORTS_LOCATION_ONLY = {"myreports-create-location-only": 201}
#: A request's moments read as wall times in the job's (report's) zone, their offsets ignored.
TALKDESK_WALL_TIMES = {"talkdesk-timespan-wall": True}
MYREPORTS_WALL_TIMES = {"myreports-filter-wall-time": True}


def _without_interaction_id(rows: t.Iterable[dict]) -> t.Iterator[dict]:
    return ({k: v for k, v in row.items() if k != "interaction_id"} for row in rows)


def _with_second_leg(rows: t.Iterable[dict], *, leg: bool = True) -> t.Iterator[dict]:
    """After the first call of each week's Friday 12:00 UTC hour, its second leg: same call id
    (or, not `leg`, the same row again)."""
    legged: set[int] = set()
    for row in rows:
        yield row
        start = str(row.get("start_at") or row.get("start_time") or "")
        try:
            hour = int(dt.datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()) // 3600
        except ValueError:
            continue
        if hour % (7 * 24) == UNTYPABLE_HOUR_OF_WEEK and hour not in legged:
            legged.add(hour)
            yield (
                row
                if not leg
                else row
                | {
                    "callsid": "CA" + "f" * 32,
                    "user_name": "Second Leg",
                    "talk_time": int(row.get("talk_time") or 0) + 30,
                }
            )


#: Talkdesk report rows rewritten by a shape: (report type, rewrite of its rows).
TALKDESK_ROWS: dict[str, tuple[str, t.Callable[[t.Iterable[dict]], t.Iterable[dict]]]] = {
    "talkdesk-studio-without-interaction-id": ("studio_flow_execution", _without_interaction_id),
    "talkdesk-calls-second-leg": ("calls", _with_second_leg),
    "talkdesk-calls-repeated-row": ("calls", lambda rows: _with_second_leg(rows, leg=False)),
}

#: How a JSON report file frames its entries, per shape (else "entries-first").
TALKDESK_JSON_LAYOUTS = {"talkdesk-bare-array": "bare-array", "talkdesk-total-first": "total-first"}


#: The `version` a JSON report file states, per shape (else "v1", as the pages show).
TALKDESK_FILE_VERSIONS = {"talkdesk-file-version-v2": "v2"}


def talkdesk_json_frame(layout: str, total: int | str, report_type: str, version: str = "v1") -> tuple[bytes, bytes]:
    """What a JSON report file holds before and after its comma-separated entries."""
    if layout == "bare-array":
        return b"[", b"]"
    meta = b'"total":%s,"type":"%s","version":"%s"' % (orjson.dumps(total), report_type.encode(), version.encode())
    if layout == "total-first":
        return b"{" + meta + b',"entries":[', b"]}"
    return b'{"entries":[', b"]," + meta + b"}"


#: Share of Talkdesk requests whose (issued) token is revoked under the shape talkdesk-401-burst.
TOKEN_BURST_RATE = 0.3


#: A Talkdesk report file without rows, per shape: (format, the whole file).
EMPTY_FILES: dict[str, tuple[str, bytes]] = {
    "talkdesk-empty-header-only": ("csv", b"call_id,type,start_at,end_at,agent_name,talk_time\r\n"),
    "talkdesk-empty-no-total": ("json", b'{"entries":[]}'),
    "talkdesk-empty-no-entries": ("json", b'{"total":0,"type":"calls","version":"v1"}'),
}


def empty_file(shapes: t.Iterable[str], fmt: str) -> bytes | None:
    """The file a switched-on EMPTY_FILES shape writes for a report of `fmt` without rows."""
    for name in shapes:
        if name in EMPTY_FILES and EMPTY_FILES[name][0] == fmt:
            return EMPTY_FILES[name][1]
    return None


#: What the files endpoint answers instead of the file, per shape: (status, content type, body, headers).
NOT_THE_FILE: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "talkdesk-file-not-ready-once": (
        202,
        "application/json",
        b'{"job":{"status":"uploading"},"message":"The report file is not ready yet"}',
        {"Retry-After": "1"},
    ),
    "talkdesk-file-html-once": (
        200,
        "text/html; charset=utf-8",
        b"<!DOCTYPE html>\n<html><head><title>503 Service "
        b"Temporarily Unavailable</title></head><body><h1>503</h1></body></html>\n",
        {},
    ),
    "talkdesk-file-json-error-once": (
        200,
        "application/json",
        b'{"code":"0000409","message":"The report file is being generated"}',
        {},
    ),
    # Status text and nothing at all: any line is a CSV header, and an empty body an empty ndjson.
    "talkdesk-file-text-once": (200, "text/plain; charset=utf-8", b"The report file is being generated\n", {}),
    "talkdesk-file-empty-once": (200, "text/plain; charset=utf-8", b"", {}),
}
NOT_THE_FILE["talkdesk-file-html-always"] = NOT_THE_FILE["talkdesk-file-html-once"]
NOT_THE_FILE["talkdesk-file-text-always"] = NOT_THE_FILE["talkdesk-file-text-once"]
EXPIRED_LINK = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"

#: Done jobs deleted at the first GET of their file (only a window's first job: a job created again stays).
TALKDESK_VANISHED_JOBS = {"talkdesk-job-vanished": True}
TALKDESK_VANISHED_MID_DOWNLOAD = "talkdesk-job-vanished-mid-download"

#: Signed download links answered 403 "Request has expired" (after the link's own expiry).
TALKDESK_EXPIRED_LINKS = {"talkdesk-signed-url-expired-always": True, "talkdesk-signed-url-expired-once": True}


def imports_link_query(shapes: t.Iterable[str], page: int, per_page: int, full: bool) -> dict[str, int]:
    """Query of a bulk-imports HAL link: under imports-next-without-per-page, as the doc's own
    examples, only the page (but the self link, which is `full`)."""
    if "imports-next-without-per-page" in shapes and not full:
        return {"page": page}
    return {"page": page, "per_page": per_page}


#: Page 2's next link when more pages follow, per shape: the page it names (None: no next link).
IMPORTS_PAGE_2_NEXT: dict[str, t.Callable[[int], int | None]] = {
    "imports-next-missing": lambda page: None,
    "imports-next-repeated": lambda page: page,
}


def _without_empty_embedded(answer: dict) -> dict:
    if not answer["_embedded"]["imports"]:
        del answer["_embedded"]
    return answer


#: A bulk-imports page rewritten by a shape.
IMPORTS_PAGES: dict[str, t.Callable[[dict], dict]] = {"imports-empty-no-embedded": _without_empty_embedded}


def _expire_first(rows: list[dict], anchor: str) -> str:
    return rows.pop(0)["id"]


def _move_last_to_top(rows: list[dict], anchor: str) -> str:
    moved = rows.pop()
    moved.update(created_at=anchor, updated_at=anchor)
    rows.insert(0, moved)
    return moved["id"]


def _complete_last(rows: list[dict], anchor: str) -> str:
    moved = rows.pop()
    moved.update(status="completed", message=f"Completed at {anchor}")
    rows.insert(0, moved)
    return moved["id"]


#: A served list changed while a client reads it, per shape: (the list, the page after which it
#: changes, every time or once, the change in place returning the id moved or dropped).
LIST_MOVES: dict[str, tuple[str, int, bool, t.Callable[[list[dict], str], str]]] = {
    "imports-expire-while-read": ("imports", 1, False, _expire_first),
    "imports-move-while-read": ("imports", 2, False, _move_last_to_top),
    "zendesk-complete-while-read": ("zendesk", 1, False, _complete_last),
    "zendesk-complete-every-read": ("zendesk", 1, True, _complete_last),
}

#: Scheme and host the Zendesk list's next links name, per shape (else the sandbox's own).
ZENDESK_NEXT_HOSTS: dict[str, t.Callable[[str, str], str]] = {
    "zendesk-next-canonical-host": lambda own, other: "https://sandbox.zendesk.com",
    "zendesk-next-foreign-host": lambda own, other: other,
}

#: Items of each Talk export saved again in one second (12 hours into the data), per shape.
ZENDESK_TALK_FULL_SECOND = {"zendesk-talk-second-full": 1001}
#: The Talk exports refused, per shape: (status, Zendesk's error body).
ZENDESK_TALK_REFUSED: dict[str, tuple[int, dict[str, str]]] = {
    "zendesk-talk-absent": (404, {"error": "InvalidEndpoint", "description": "Not found"}),
    "zendesk-talk-forbidden": (403, {"error": "Forbidden", "description": "You do not have access to this page"}),
}

#: page[after] cursors that have expired when used, per shape: from which row of the list on (the
#: third page of 100); "-once": the first use of each cursor.
ZENDESK_EXPIRED_CURSORS = {"zendesk-cursor-expired-once": 200, "zendesk-cursor-expired-always": 200}
EXPIRED_CURSOR = {"error": "InvalidPaginationParameter", "description": "page[after] cursor has expired"}

#: MyReports result templates: (template, display fields added to the call list's) per shape.
MYREPORTS_CALL_LIST: tuple[str, tuple[str, ...]] = ("CallListByUserSegmented", ())
MYREPORTS_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "myreports-other-template": ("CallSummaryByUser", ("talkTime", "holdCount", "transferredTo")),
}


def _without_time_zone(head: dict, returned: int) -> None:
    del head["request"]["timeZoneId"]


def _unflag_cut(head: dict, returned: int) -> None:
    """The vendor leaves the cut unsaid: no rowLimitExceeded, and the rows returned as totalCount."""
    head.pop("rowLimitExceeded", None)
    head["totalCount"] = returned


def _members_as_other_types(head: dict[str, t.Any], returned: int) -> None:
    """A /data result's own members as another JSON type. The counts take only the forms a count
    is documented in (digits, or a whole float); rowLimitExceeded stays falsy when false (0/1), as
    the flag decides whether a window is split."""
    head["effort"] = repr(head["effort"])
    head["queryDuration"] = float(head["queryDuration"])
    head["totalDuration"] = str(head["totalDuration"])
    head["queryCount"] = f" {head['queryCount']} "
    head["totalCount"] = str(head["totalCount"])
    head["rowLimitExceeded"] = int(head["rowLimitExceeded"])
    head["request"]["rowLimit"] = float(head["request"]["rowLimit"])


def _without_sort_fields(head: dict, returned: int) -> None:
    head["request"].pop("sortFields", None)


#: A MyReports /data result's members (all but data) changed in place by a shape, in this order;
#: `returned` is how many rows it holds.
MYREPORTS_RESULT_MEMBERS: dict[str, t.Callable[[dict, int], None]] = {
    "myreports-no-timezone": _without_time_zone,
    "wrong-json-types": _members_as_other_types,
    "myreports-cut-unflagged": _unflag_cut,
    "myreports-no-sort-order": _without_sort_fields,
}


def _request_after_data(head: dict, tail: dict) -> tuple[dict, dict]:
    lead = {"requestId": head["requestId"]}
    return lead, {"request": head["request"]} | {k: v for k, v in head.items() if k not in lead} | tail


#: Members of a /data result before and after its data array, per shape (else head, tail).
MYREPORTS_RESULT_ORDER: dict[str, t.Callable[[dict, dict], tuple[dict, dict]]] = {
    "myreports-request-after-data": _request_after_data,
}
#: Complete requests gone at the first GET of their /data (only a window's first request).
MYREPORTS_VANISHED_REQUESTS = {"myreports-request-vanished": True}
#: GETs of /data answered 200 with an error envelope (after "-once": the first per request).
MYREPORTS_ERROR_ENVELOPES = {"myreports-error-envelope-always": True, "myreports-error-envelope-once": True}


def all_but_last(items: t.Iterable[t.Any], dropped: list) -> t.Iterator[t.Any]:
    """Yield every item but the last, which is appended to `dropped` (a count one short)."""
    it = iter(items)
    previous = next(it, dropped)  # `dropped` doubles as the "nothing yet" marker
    if previous is dropped:
        return
    for item in it:
        yield previous
        previous = item
    dropped.append(previous)


QUEUE_TAGS = ("priority", "callback", "vip", "spanish", "overflow", "escalated")


def talkdesk_extra_fields(bits: int, scored_at: str) -> dict[str, t.Any]:
    """Fields a newer Talkdesk payload adds to a report row (shape talkdesk-extra-field), from the
    row's bits past those the row itself uses: same row, same values. `scored_at`: the row's event
    time as the report writes its times (an instant the tap's schemas do not list)."""
    extra = bits >> 128
    score = None if extra % 5 == 0 else round((extra >> 3) % 2001 / 1000 - 1, 3)  # -1.0 .. 1.0
    tags = [tag for n, tag in enumerate(QUEUE_TAGS) if (extra >> (16 + n)) & 1]
    return {
        "sentiment_score": score,
        "queue_tags": tags,
        "sentiment_scored_at": scored_at if score is not None else None,
    }


def talkdesk_callback_at(bits: int, at: str) -> dict[str, str]:
    """callback_at (shape talkdesk-added-wall-time): the row's event time `at` as the report writes
    its times, or "None" (Talkdesk's text for a missing value), chosen by the row's own bits."""
    return {"callback_at": "None" if (bits >> 140) % 3 == 0 else at}


def myreports_summary_fields(bits: int) -> dict[str, t.Any]:
    """The CallSummaryByUser template's own fields of a call row (shape myreports-other-template);
    transferredTo only on calls that were transferred."""
    extra = bits >> 200
    fields: dict[str, t.Any] = {"talkTime": (extra % 9000) / 10, "holdCount": (extra >> 14) % 4}
    if (extra >> 18) % 3 == 0:
        fields["transferredTo"] = f"Queue {200 + (extra >> 20) % 5}"
    return fields


# ---- wrong-json-types and untypable-value ----------------------------------------------------------

#: Columns where the vendors send null for a number: under wrong-json-types that null may come as "".
NULLABLE_NUMBERS = frozenset({"user_voice_rating", "csat_score", "talk_time", "progress", "total"})
#: Text a vendor may send as a JSON number without loss: no sign, no leading zero, within 64 bits.
_WHOLE_TEXT = re.compile(r"0|[1-9][0-9]{0,14}")


def _other_form(name: str, value: t.Any, pick: int) -> t.Any:
    """`value` as another JSON type that reads back to it, or itself (`pick` chooses which)."""
    if isinstance(value, bool):
        forms: tuple = (value, str(value).lower(), int(value), "Yes" if value else "No", str(value)[0], str(int(value)))
    elif isinstance(value, int):
        forms = (value, str(value), f" {value} ", float(value), f"{value}.0")
    elif isinstance(value, float):
        forms = (value, repr(value), *((str(int(value)),) if value.is_integer() else ()))
    elif isinstance(value, str) and _WHOLE_TEXT.fullmatch(value):
        forms = (value, int(value))
    elif value is None and name in NULLABLE_NUMBERS:
        forms = (None, "")
    else:
        return value
    return forms[pick % len(forms)]


def sent_as_other_types(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """A row as a vendor may write it (shape wrong-json-types): its top-level values in another JSON
    type where nothing is lost. The form comes from the row's own content: same row, same forms."""
    row_hash = zlib.crc32(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
    return {
        name: value if name.startswith("_") else _other_form(name, value, zlib.crc32(name.encode(), row_hash))
        for name, value in row.items()
    }


#: The epoch's hour 0 was a Thursday 00:00 UTC; hour 36 of each week is Friday 12:00 UTC.
UNTYPABLE_HOUR_OF_WEEK = 36


def carries_untypable_value(bucket: int, index: int) -> bool:
    """Whether a row (the `index`th generated in the hour `bucket`) is the week's row with an
    untypable value (shapes untypable-value, untypable-added-column)."""
    return index == 0 and bucket % (7 * 24) == UNTYPABLE_HOUR_OF_WEEK


#: The untypable value each shape puts in the marked row, per vendor row kind: {column: value}.
UNTYPABLE_VALUES = {
    ("untypable-value", "talkdesk-calls"): {"talk_time": "N/A"},
    ("untypable-value", "myreports"): {"callType": "N/A"},
    ("untypable-added-column", "talkdesk-calls"): {"sentiment_scored_at": "x"},
    ("untypable-added-wall-time", "talkdesk-contacts"): {"callback_at": "after 6pm"},
    ("talkdesk-flag-unknown-form", "talkdesk-explore_calls"): {"transfer?": "Maybe"},
}
