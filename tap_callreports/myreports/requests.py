"""MyReports report requests (`VendorJobs` for myreports_call_rows).

Flow per report and window: POST .../reports/{report}/requests {reportId, dateFilter{start,end}}
-> data.requestId; poll GET .../requests/{requestId} until data.status is Complete; GET
.../requests/{requestId}/data. A result with rowLimitExceeded was cut: the window is split in two
and both halves run instead (recursively), before any of its rows is emitted.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import typing as t
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from tap_callreports.completeness import (
    IncompleteResult,
    missing_rows,
    stated_count,
    stated_empty,
    verify_counts,
)
from tap_callreports.errors import ReportJobFailed, StreamError, VendorRefused
from tap_callreports.myreports.client import envelope_data
from tap_callreports.ratelimit import Backoff
from tap_callreports.reportjobs.job import (
    JobPhase,
    JobResult,
    JobStatus,
    SplitWindow,
    StatusWords,
    Window,
    status_table,
)
from tap_callreports.reportjobs.vendor import gone, unless_gone, vendor_details
from tap_callreports.responses import dig, id_from_location, vendor_words
from tap_callreports.streaming import ReportDocument
from tap_callreports.timeutil import UTC, LocalTimeConverter, fall_back_transitions, iso_z, parse_instant, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.ports import VendorPort

#: MyReports' request status words (the doc's: Pending, Processing, Complete, Failed, Cancelled;
#: any case) and those other job APIs use.
STATUS_WORDS = status_table(running=("pending", "processing"), done=("complete",), ended=("failed", "cancelled"))
ROW_ARRAYS = ("data", "data.data")  # the documented bare result, or the same inside the envelope
#: Where a partition's report time zone is kept in the STATE (known from its first result).
ZONE_STATE_KEY = "report_timezone"


def result_members(document: ReportDocument, members: dict) -> dict:
    """The result's own members from the header or trailer: as they are in the documented bare
    result, or under `data` when the result came inside the envelope."""
    found = members.get("data") if document.array_key == "data.data" else members
    return found if isinstance(found, dict) else {}


def offset_iso(moment: dt.datetime, zone: dt.tzinfo = dt.UTC) -> str:
    """ISO 8601 with an explicit offset, as MyReports' dateFilter wants, in `zone`'s wall time: read
    with its offset or as a wall time in the report's zone, it is the same instant."""
    return moment.astimezone(zone).isoformat()


@dataclass
class MyReportsRequest:
    """What the tap keeps of a MyReports request (`JobResult.vendor`)."""

    report_id: t.Any
    #: The result's own members before its rows (totalCount, rowLimitExceeded, request, ...).
    meta: dict = field(default_factory=dict)
    #: The result's members after its rows (summary, rowLimit, ...).
    trailer: dict = field(default_factory=dict)
    #: The instants the result says it selected (`request.filterConditions`) when they are not
    #: the ones asked (a filter read as wall time): its rows are placed by these.
    selected: tuple[dt.datetime, dt.datetime] | None = None


@dataclass
class Overlap:
    """MyReports' own state within a run, per report id. MyReports may select `start >= from AND
    end < to` (its filterConditions say so): a call that straddles a window's end would be in
    neither window. So every window after the run's first (which the lookback widens already) is
    asked from `lookback` before its start (`requested_window`), and rows already emitted are left
    out by key (`MyReportsRequests._converted`)."""

    #: Where this run's first window starts.
    run_starts: dict[t.Any, dt.datetime] = field(default_factory=dict)
    #: {key: start_utc} of the rows emitted this run near a committed window's end (within
    #: `lookback` of it): the next request reads them again.
    keys: dict[t.Any, dict[tuple, str]] = field(default_factory=dict)
    #: The same, of the window being read.
    window_keys: dict[t.Any, dict[tuple, str]] = field(default_factory=dict)
    #: Where the last committed window's request ended, by what its answer said it selected (a
    #: filter read as wall time may end elsewhere than asked).
    selected_ends: dict[t.Any, dt.datetime] = field(default_factory=dict)
    #: The same, of the window being read.
    window_selected_ends: dict[t.Any, dt.datetime] = field(default_factory=dict)

    def requested_window(self, report_id: t.Any, window: Window, lookback: dt.timedelta) -> Window:
        """The span a request for `window` asks for."""
        first = self.run_starts.get(report_id)
        if first is None or window.start <= first:
            return window
        return Window(max(first, window.start - lookback), window.end)

    def restart_window(self) -> None:
        """The window's rows are read again: their keys with them."""
        self.window_keys.clear()
        self.window_selected_ends.clear()

    def commit_window(self, report_id: t.Any, window: Window, lookback: dt.timedelta) -> None:
        near_end = iso_z(window.end - lookback)[:19]
        kept = {**self.keys.get(report_id, {}), **self.window_keys.pop(report_id, {})}
        self.keys[report_id] = {key: start for key, start in kept.items() if start[:19] >= near_end}
        ended = self.window_selected_ends.pop(report_id, None)  # None: no rows read, unknown
        if ended is None:
            self.selected_ends.pop(report_id, None)
        else:
            self.selected_ends[report_id] = ended


class MyReportsRequests:
    """The report requests of myreports_call_rows (one per report id and window)."""

    def __init__(
        self, port: VendorPort, *, keys: t.Callable[[], t.Sequence[str]], columns: t.Callable[[], frozenset[str]]
    ) -> None:
        """`keys`: the stream's key (the catalog may set it); `columns`: the columns its schema has."""
        self.port = port
        myreports = port.settings.myreports
        assert myreports is not None  # a MyReports stream exists only when it is configured
        self.myreports = myreports
        self.lookback = dt.timedelta(minutes=myreports.lookback_minutes)
        self.keys = keys
        self.columns = columns
        self.overlap = Overlap()

    def report_url(self, report_id: str) -> str:
        return f"{self.myreports.api_url}/v1.0/workspaces/{self.myreports.workspace_id}/reports/{report_id}"

    # ---- the request (any thread) ----------------------------------------------------------------

    def create(self, context: Context | None, window: Window, attempt: int) -> JobResult:
        assert context is not None
        report_id = context["report_id"]
        zone_name = self.filter_zone(context)
        zone = ZoneInfo(zone_name)
        asked = self.overlap.requested_window(report_id, window, self.lookback)
        body = {
            "reportId": report_id,
            "dateFilter": {"start": offset_iso(asked.start, zone), "end": offset_iso(asked.end, zone)},
        }
        response = self.port.send("POST", f"{self.report_url(report_id)}/requests", json=body, creates_job=True)
        created = envelope_data(response, self.port.name) if response.content.strip() else {}
        request_id = str(dig(created, "requestId") or id_from_location(response) or "")
        if not request_id:
            raise ReportJobFailed(
                self.port.name,
                f"creating a request for report {report_id} answered without a "
                "requestId (in its data or a Location header); run again later, and report it to "
                "MyReports if it persists",
            )
        return JobResult(
            job_id=request_id,
            window=window,
            attempt=attempt,
            created_at=iso_z(utc_now()),
            timezone=zone_name,
            requested_start=iso_z(asked.start) if asked != window else None,
            vendor=MyReportsRequest(report_id),
        )

    def creation(self, context: Context | None, window: Window) -> str:
        return f"request for report {(context or {}).get('report_id')} {window}"

    def recorded_details(self, context: Context | None) -> MyReportsRequest:
        return MyReportsRequest((context or {}).get("report_id"))

    def describe(self, result: JobResult) -> str:
        message = result.status_message
        return (
            f"request {result.job_id} for report {vendor_details(result, MyReportsRequest).report_id} {result.window}"
            + (f" ({message})" if message and self._phase(result.status, None) is not JobPhase.DONE else "")
        )

    def delete(self, result: JobResult) -> None:
        """MyReports offers no way to delete a request: it expires there."""

    def poll(self, context: Context | None, result: JobResult) -> JobStatus | Backoff | None:
        report_id, request_id = vendor_details(result, MyReportsRequest).report_id, result.job_id
        url = f"{self.report_url(report_id)}/requests/{request_id}"
        answer = unless_gone(lambda: self.port.send("GET", url))
        if answer is None:
            return gone("MyReports", "request")
        data = envelope_data(answer, self.port.name)
        result.polls += 1
        raw_status, message = dig(data, "status"), dig(data, "statusMessage")
        if raw_status != result.status:
            self.port.logger.info("%s: %s is %s", self.port.name, self.describe(result), raw_status or "(no status)")
        result.status, result.status_message = raw_status, message
        phase = self._phase(raw_status, message, data)
        if phase is JobPhase.DONE:
            return JobStatus.done_at(f"{url}/data")
        if phase is JobPhase.ENDED:
            return JobStatus.ended_as(StatusWords.normal(raw_status) or str(message))
        return Backoff.asked_by(answer)  # still running: ask again when it asked, or per the poll policy

    @cached_property
    def status_words(self) -> StatusWords:
        return StatusWords("MyReports", STATUS_WORDS)

    def _phase(self, status: t.Any, message: t.Any, answer: t.Any = None) -> JobPhase | None:
        """A request's phase from its status word (`STATUS_WORDS`); a word the tap does not know, or
        a numeric status (the result's own `status: 1`), is judged by its statusMessage."""
        if isinstance(status, str) and status.strip():
            phase = (
                self.status_words.phase(status, answer, self.port.logger, self.port.name)
                if answer is not None
                else self.status_words.table.get(StatusWords.normal(status))
            )
            if phase is not None:
                return phase
        text = str(message or "").lower()
        if "complete" in text and "incomplete" not in text:
            return JobPhase.DONE
        if any(word in text for word in ("fail", "error", "cancel")):
            return JobPhase.ENDED
        return None

    # ---- the rows (main thread) ----------------------------------------------------------------

    def file_gone(self, context: Context | None, result: JobResult) -> str | None:
        """Not checked ahead: a request whose data is gone is found when it is read (`_open_result`)."""
        return None

    def _open_result(self, context: Context | None, result: JobResult) -> t.Any:
        """The result's data. The reference's headings say /results/{id}/data where its examples say
        /requests/: a 404 on one tries the other. Data that neither has makes the result incomplete
        (the request is created again), so a recorded request whose data expired never blocks a run."""
        try:
            return self.port.download(result.location)
        except VendorRefused as exc:
            if exc.status != HTTPStatus.NOT_FOUND:
                raise
        other = (
            result.location.replace("/requests/", "/results/")
            if "/requests/" in result.location
            else result.location.replace("/results/", "/requests/")
        )
        try:
            response = self.port.download(other)
        except VendorRefused as exc:
            if exc.status != HTTPStatus.NOT_FOUND:
                raise
            missing = "its data is not found (404 at /requests/ and /results/)"
            location = result.location
            self.port.ask_job(context, result, missing)  # a request that ended: created again at once
            result.location = location
            raise IncompleteResult(missing, 0) from None
        result.location = other
        return response

    def read(self, context: Context | None, result: JobResult, skip: int) -> t.Iterator[dict]:
        response = self.port.open_report(result, "json", lambda: self._open_result(context, result))
        try:
            document = ReportDocument(response.raw, ROW_ARRAYS)
            if document.array_key is None:
                envelope = document.header
                members = envelope.get("data") if "requestId" not in envelope else envelope
                if (
                    stated_empty(members, "data", "totalCount")
                    and isinstance(members, dict)
                    and not self._limit_exceeded(members)
                ):
                    if _has_time_zone(members):  # empty of the window asked for, not of a misread one
                        self._check_filter_reading(context, self._time_zone(members), members, result)
                    vendor_details(result, MyReportsRequest).meta = members
                    result.verdict = verify_counts(0, {"totalCount": 0})
                    return  # no rows, and it says so (`data: null`, totalCount 0)
                raise missing_rows(
                    "'data' row list",
                    vendor_words(
                        envelope.get("data")
                        if isinstance(envelope.get("data"), dict) and envelope.get("data")
                        else envelope
                    ),
                )
            meta = result_members(document, document.header)
            vendor_details(result, MyReportsRequest).meta = meta
            self._announce_display_fields(meta)
            tz = self._time_zone(meta) if _has_time_zone(meta) else None
            if tz is not None:
                self._check_filter_reading(context, tz, meta, result)
                self._split_at_fall_back(tz, result)
            if tz is None or self._limit_exceeded(meta) is None or "totalCount" not in meta:
                # What decides the window (time zone, rowLimitExceeded, counts) comes after the rows,
                # or is unclear until the rows are counted: park them on disk, decide, then replay
                # them -- memory stays flat.
                rows = self._spooled_rows(context, document, result, skip)
            else:
                self._check_limit(meta, result)
                rows = self._converted(document.rows(skip), tz, result, meta)
            yield from rows
            trailer = result_members(document, document.trailer)
            vendor_details(result, MyReportsRequest).trailer = trailer
            members = {**trailer, **meta}
            counts = {} if self._limit_exceeded(members) is True else {"totalCount": members.get("totalCount")}
            result.verdict = verify_counts(document.rows_read, counts)
        finally:
            response.close()

    def _announce_display_fields(self, meta: dict) -> None:
        """`request.displayFields` name the result's columns before its rows: say which are new to
        the schema (another report template); each becomes a column with its first non-null value."""
        fields = dig(meta, "request", "displayFields")
        if not isinstance(fields, list):
            return
        columns = {
            self.port.shaper().names.column(str(f.get("fieldName")))
            for f in fields
            if isinstance(f, dict) and f.get("fieldName")
        }
        new = sorted(columns - self.columns() - self._announced)
        if new:
            self._announced.update(new)
            self.port.logger.info(
                "%s: the report shows fields the schema does not list yet: %s; each becomes a "
                "column (a new SCHEMA) with its first value",
                self.port.name,
                ", ".join(new),
            )

    @cached_property
    def _announced(self) -> set[str]:
        return set()

    def _converted(self, rows: t.Iterable[dict], tz: ZoneInfo, result: JobResult, members: dict) -> t.Iterator[dict]:
        report_id, request_id = vendor_details(result, MyReportsRequest).report_id, result.job_id
        # A wall time that happened twice is placed in the window itself, not in the overlap before it,
        # unless the answer tells otherwise (`RepeatedWallTimes`, when the request spans both).
        to_utc = LocalTimeConverter(tz, result.window.start, result.window.end).to_utc_text
        shape = self.port.shaper().shape
        key_fields = tuple(self.keys() or ())
        emitted_before = self.overlap.keys.get(report_id, {})  # fixed while the window is read: re-reads agree
        near_end = iso_z(result.window.end - self.lookback)[:19]
        near_end_keys = self.overlap.window_keys.setdefault(report_id, {})
        selected = vendor_details(result, MyReportsRequest).selected
        asked = (
            Window(*selected)
            if selected is not None
            else Window(parse_instant(result.requested_start) or result.window.start, result.window.end)
        )
        # Where the window before's request ended, by what its answer said it selected (None: not
        # read this run); this window's, for the window after it (kept when the window commits).
        before_end = self.overlap.selected_ends.get(report_id)
        self.overlap.window_selected_ends[report_id] = asked.end
        twice = RepeatedWallTimes.of(tz, asked, result.window, members, before_end)

        def key_of(row: dict) -> tuple:
            return (row.get(key_fields[0]),) if len(key_fields) == 1 else tuple([row.get(k) for k in key_fields])

        def finish(row: dict, key: tuple | None = None) -> dict:
            """The row's origin fields; its key noted when it is near the window's end (made here
            when the caller has none)."""
            start = str(row.get("start_utc") or "")
            if start[:19] >= near_end:
                near_end_keys[key if key is not None else key_of(row)] = start
            row["report_id"] = report_id
            row["request_id"] = request_id
            return row

        if twice is None and not emitted_before:
            # No row of an earlier window to pass over and no repeated wall time (the first window of
            # each report in a run): each row goes out as it comes, its key made only near the end.
            for row in rows:
                row["start_utc"] = to_utc(row.get("start"))
                yield finish(shape(row, UTC))
            return
        for row in rows:
            local = row.get("start")
            row["start_utc"] = to_utc(local)
            row = shape(row, UTC)
            key = key_of(row)
            if key in emitted_before:  # an earlier window of this run emitted it (the request overlaps it)
                if twice is not None:  # a neighbour whose instant is known
                    for ready, ready_key in twice.known(emitted_before[key], local):
                        yield finish(ready, ready_key)
                continue
            if twice is None:
                yield finish(row, key)
            else:
                for ready, ready_key in twice.add(row, key, local):
                    yield finish(ready, ready_key)
        if twice is not None:
            for ready, ready_key in twice.flush():
                yield finish(ready, ready_key)
            if twice.unresolved:
                self.port.logger.warning(
                    "%s: %d row(s) of %s start at a wall time that happened twice (%s turns its clocks back "
                    "at %s) and nothing in the answer tells which: each was placed at the later one, in the "
                    "window (doc_id %s); check them in the warehouse",
                    self.port.name,
                    len(twice.unresolved),
                    self.describe(result),
                    tz.key,
                    iso_z(twice.transition),
                    ", ".join(map(str, twice.unresolved[:5])) + (", ..." if len(twice.unresolved) > 5 else ""),  # noqa: PLR2004
                )

    def filter_zone(self, context: Context | None) -> str:
        """The zone a request's dateFilter is written in: the report's own, once a result (or the
        STATE) named it; UTC before that."""
        report_id = (context or {}).get("report_id")
        known = self._zones.get(report_id)
        if known is None:
            known = self.port.state(context).get(ZONE_STATE_KEY)
        return str(known or "UTC")

    @cached_property
    def _zones(self) -> dict[t.Any, str]:  # report id -> its time zone
        return {}

    def _check_filter_reading(self, context: Context | None, tz: ZoneInfo, members: dict, result: JobResult) -> None:
        """MyReports may read the dateFilter with its offset or as wall time in the report's zone. A
        filter written in the report's zone means the same instants either way. A request written in
        another zone (before the report's zone was known) is asked again in the report's zone when
        the result's own filter says it selected other instants than the window's (or, without that
        echo, when the two zones differ at the window's bounds). The zone is kept for this run and in
        the STATE."""
        report_id = vendor_details(result, MyReportsRequest).report_id
        self._zones[report_id] = tz.key
        self.port.state(context)[ZONE_STATE_KEY] = tz.key
        sent = ZoneInfo(str(result.timezone or "UTC"))
        echoed = _filter_bounds(members)
        asked = (parse_instant(result.requested_start) or result.window.start, result.window.end)
        if echoed is not None:
            if echoed == asked:
                return
        elif all(sent.utcoffset(m) == tz.utcoffset(m) for m in asked):
            return
        if sent.key == tz.key:
            # Written in the report's zone already, yet the answer selected other instants (a bound
            # in the hour a fall-back repeats, read as wall time): asking again would select the
            # same; its rows are placed by what it says it selected. The requests around it were
            # read the same way, so together they still hold every instant.
            if echoed is not None:
                vendor_details(result, MyReportsRequest).selected = echoed
            return
        raise SplitWindow(
            [result.window],
            f"its dateFilter was written in {sent.key} and the result selected "
            f"{_shown_bounds(echoed)}: asked again in the report's zone {tz.key}",
        )

    def _split_at_fall_back(self, tz: ZoneInfo, result: JobResult) -> None:
        transitions = fall_back_transitions(tz, result.window.start, result.window.end)
        asked_start = parse_instant(result.requested_start) or result.window.start
        if transitions and _wall(asked_start, tz) < _wall(transitions[0], tz):
            # Local times in the hour before a fall-back happen twice: split there, and each
            # half's own bounds tell which occurrence a row is. Not when the request would start
            # within the repeated hour: read as wall time, the half before would span no time at
            # all (a request the vendor refuses); the whole window's rows are placed by what the
            # answer says (`RepeatedWallTimes`).
            raise SplitWindow(
                result.window.split_at(transitions[0]), f"{tz} turns its clocks back at {iso_z(transitions[0])}"
            )

    def _time_zone(self, meta: dict) -> ZoneInfo:
        name = dig(meta, "request", "timeZoneId")
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            raise StreamError(
                self.port.name,
                f"a result reports the unknown time zone '{name}'; start_utc cannot be "
                "computed; no bookmark moved; set the report's time zone at MyReports (or leave the report out of "
                "myreports_report_ids), then run again",
            ) from None

    def _limit_exceeded(self, members: t.Mapping[str, t.Any]) -> bool | None:
        """rowLimitExceeded as a boolean, also when written as text or 0/1; None when it is absent
        or says neither (then the row count decides, `_check_limit`)."""
        value = members.get("rowLimitExceeded")
        if value is False or value is True:
            return value
        text = str(value).strip().lower() if value is not None else ""
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        return None

    def _check_limit(self, meta: dict, result: JobResult, rows: int | None = None) -> None:
        """Split a window whose result was, or may have been, cut at rowLimit: rowLimitExceeded is
        true, or it is not a clear false and the result holds rowLimit rows (`rows`, once counted).
        A result that may have been cut is treated as cut: the halves cost a request, a cut taken
        for whole loses rows."""
        flag = self._limit_exceeded(meta)
        limit = stated_count(dig(meta, "request", "rowLimit"))
        if limit is None:
            limit = stated_count(meta.get("rowLimit"))
        if flag is None and rows is not None and limit is not None and rows >= limit:
            why = (
                f"{rows:,} rows, rowLimit {limit:,}, and rowLimitExceeded "
                f"{'absent' if meta.get('rowLimitExceeded') is None else repr(meta.get('rowLimitExceeded'))}: "
                "taken as cut"
            )
        elif flag:
            why = f"rowLimitExceeded: {meta.get('totalCount')} rows over rowLimit {limit}"
        else:
            return
        try:
            halves = result.window.halves()
        except ValueError:
            raise StreamError(
                self.port.name,
                f"request {result.job_id}: even one second ({result.window}) holds more "
                f"than rowLimit={limit} rows; cannot split further; raise the report's row limit "
                "at MyReports, then run again",
            ) from None
        raise SplitWindow(halves, why)

    def _spooled_rows(
        self, context: Context | None, document: ReportDocument, result: JobResult, skip: int
    ) -> t.Iterator[dict]:
        """Rows parked on disk until the members after them are read: the time zone (in `request`),
        rowLimitExceeded and totalCount may come after the rows."""
        with tempfile.TemporaryFile() as spool:
            for row in document.rows(skip):
                spool.write(orjson.dumps(row) + b"\n")
            members = {**result_members(document, document.trailer), **vendor_details(result, MyReportsRequest).meta}
            if not _has_time_zone(members):
                raise StreamError(
                    self.port.name,
                    f"the result of {self.describe(result)} names no time zone "
                    "(request.timeZoneId): its local `start` times cannot be turned into start_utc, "
                    "and the tap does not guess; no bookmark moved; set the report's time zone at MyReports (or "
                    "leave the report out of myreports_report_ids), then run again",
                ) from None
            tz = self._time_zone(members)
            self._check_filter_reading(context, tz, members, result)
            self._split_at_fall_back(tz, result)
            self._check_limit(members, result, document.rows_read)
            spool.seek(0)
            yield from self._converted((orjson.loads(line) for line in spool), tz, result, members)

    # ---- the request record ----------------------------------------------------------------------

    def record(self, result: JobResult, rows: int, outcome: str) -> dict:
        details = vendor_details(result, MyReportsRequest)
        meta, trailer = details.meta, details.trailer
        request: dict = meta["request"] if isinstance(meta.get("request"), dict) else {}
        return {
            "request_id": result.job_id,
            "report_id": details.report_id,
            "workspace_id": self.myreports.workspace_id,
            "report_template_name": request.get("reportTemplateName"),
            "time_zone_id": request.get("timeZoneId"),
            "window_start": iso_z(result.window.start),
            "window_end": iso_z(result.window.end),
            "total_count": meta.get("totalCount"),
            "row_limit": request.get("rowLimit", trailer.get("rowLimit")),
            "row_limit_exceeded": meta.get("rowLimitExceeded", trailer.get("rowLimitExceeded")),
            "rows_read": rows,
            "summary": trailer.get("summary", meta.get("summary")),
            "effort": meta.get("effort"),
            "query_duration": meta.get("queryDuration"),
            "total_duration": meta.get("totalDuration"),
            "query_count": meta.get("queryCount"),
            "status": result.status,
            "status_message": result.status_message,
            "outcome": outcome,
            "attempt": result.attempt,
            "finished_at": iso_z(utc_now()),
        }


@dataclass
class _Twice:
    """A row of the repeated hour, in result order: its wall time, both instants it may name, and
    the one it was placed at (known: a row left out by key, or placed by the answer)."""

    row: dict | None  # None: a row an earlier window emitted (left out by key)
    key: tuple
    wall: dt.datetime
    earlier: dt.datetime
    later: dt.datetime
    placed: dt.datetime | None


class RepeatedWallTimes:
    """Rows of one result whose local `start` names two instants that both lie in what the request
    asked (the hour a fall-back repeats, when the request reaches back over it: the lookback), each
    placed by what else the answer says, else placed in the window and named (`unresolved`):

    - a filter on `start` only: the earlier instant was the window before's, which this run read
      and emitted (a row it emitted is left out by key): the later one;
    - the call's `duration`: an earlier instant whose call ended before the window's start was the
      window before's (the later one); a later instant whose call would end after the request's
      `end` filter was not selected (the earlier one);
    - the neighbours, in a result stated sorted by `start` (`sortFields`) whose rows keep to the
      order of their instants: the rows of the repeated hour wait until it has passed; their wall
      times drop back once, where the earlier hour ends, and every row whose instant is known (left
      out by key, placed by the answer) agrees: the rows before the drop are the earlier hour's,
      those after it the later one's. A result sorted by wall time has no drop and tells nothing."""

    def __init__(
        self,
        tz: ZoneInfo,
        transition: dt.datetime,
        asked: Window,
        window: Window,
        members: dict,
        before_end: dt.datetime | None = None,
    ) -> None:
        self.transition = transition
        self.before_end = before_end
        before = (transition - dt.timedelta(seconds=1)).astimezone(tz).utcoffset()
        after = transition.astimezone(tz).utcoffset()
        assert before is not None and after is not None
        self.before, self.after = before, after
        wall = (transition + after).replace(tzinfo=None)  # the repeated hour: [wall, wall + before - after)
        self.first_wall, self.last_wall = wall, wall + (before - after)
        self.asked, self.window = asked, window
        conditions = dig(members, "request", "filterConditions")
        self.end_filter = isinstance(conditions, list) and any(
            isinstance(c, dict) and c.get("fieldName") == "end" and c.get("operator") == "<" for c in conditions
        )
        fields = dig(members, "request", "sortFields")
        self.in_order = isinstance(fields, list) and any(
            isinstance(f, dict) and f.get("fieldName") == "start" and f.get("direction") in (1, "1", "asc", "ASC")
            for f in fields
        )
        self.last_known: dt.datetime | None = None  # the instant of the last row outside the hour
        self.hour: list[_Twice] = []  # the rows of the repeated hour, waiting until it has passed
        self.unresolved: list[t.Any] = []

    @classmethod
    def of(
        cls, tz: ZoneInfo, asked: Window, window: Window, members: dict, before_end: dt.datetime | None = None
    ) -> RepeatedWallTimes | None:
        """None when no fall-back lies within the request (no wall time of it names two instants).
        `before_end`: where the window before's request ended by its answer (None: unknown)."""
        transitions = fall_back_transitions(tz, asked.start, asked.end)
        return cls(tz, transitions[0], asked, window, members, before_end) if transitions else None

    def known(self, instant: t.Any, local: t.Any) -> list[tuple[dict, tuple]]:
        """A row an earlier window emitted (left out by key): its instant is known."""
        return self._take(None, (), local, parse_instant(instant))

    def add(self, row: dict, key: tuple, local: t.Any) -> list[tuple[dict, tuple]]:
        """A row to emit: the rows ready to go out (the hour's wait until it has passed)."""
        return self._take(row, key, local, None)

    def flush(self) -> list[tuple[dict, tuple]]:
        return self._release()

    def _take(
        self, row: dict | None, key: tuple, local: t.Any, instant: dt.datetime | None
    ) -> list[tuple[dict, tuple]]:
        try:
            wall = dt.datetime.fromisoformat(str(local))
        except ValueError:
            wall = None
        if wall is not None and wall.tzinfo is None and self.first_wall <= wall < self.last_wall:
            earlier, later = (wall - self.before).replace(tzinfo=UTC), (wall - self.after).replace(tzinfo=UTC)
            if self.asked.start <= earlier and later < self.asked.end:  # the request holds both
                placed = instant if row is None else self._by_answer(row, earlier, later)
                self.hour.append(_Twice(row, key, wall, earlier, later, placed))
                return []
        ready = self._release()
        if row is not None:
            ready.append((row, key))
            instant = parse_instant(row.get("start_utc"))
        if instant is not None:
            if self.last_known is not None and instant < self.last_known:
                self.in_order = False  # not in the order of instants: neighbours tell nothing
            self.last_known = instant
        return ready

    def _by_answer(self, row: dict, earlier: dt.datetime, later: dt.datetime) -> dt.datetime | None:
        window, before_end = self.window, self.before_end
        if not earlier < window.start <= later:
            return None
        if not self.end_filter:
            # The window before selected the earlier instant (its answer says so), and it was emitted.
            return later if before_end is not None and earlier < before_end else None
        duration = row.get("duration")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool):
            if before_end is not None and earlier + dt.timedelta(seconds=duration) < before_end:
                return later
            if later + dt.timedelta(seconds=duration) >= self.asked.end:
                return earlier
        return None

    def _split(self) -> int | None:
        """Where the earlier hour's rows end in the result (the one drop of its wall times), when
        the result keeps to the order of instants and every row of known instant agrees."""
        hour = self.hour
        drops = [i for i in range(1, len(hour)) if hour[i].wall < hour[i - 1].wall]
        if not self.in_order or len(drops) != 1:
            return None
        split = drops[0]
        for i, twice in enumerate(hour):
            if twice.placed is not None and (twice.placed < self.transition) != (i < split):
                return None
        return split

    def _release(self) -> list[tuple[dict, tuple]]:
        if not self.hour:
            return []
        split = self._split()
        ready: list[tuple[dict, tuple]] = []
        for i, twice in enumerate(self.hour):
            if twice.row is None:
                continue
            placed = twice.placed
            if placed is None and split is not None:
                placed = twice.earlier if i < split else twice.later
            if placed is None:
                placed = twice.later if self.window.start <= twice.later < self.window.end else twice.earlier
                self.unresolved.append(twice.key[0] if len(twice.key) == 1 else twice.key)
            twice.row["start_utc"] = iso_z(placed)
            ready.append((twice.row, twice.key))
        self.hour = []
        return ready


def _wall(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """`moment`'s wall time in `tz` (what a vendor reading the filter as wall time sees)."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _has_time_zone(members: dict) -> bool:
    return bool(dig(members, "request", "timeZoneId"))


def _filter_bounds(members: dict) -> tuple[dt.datetime, dt.datetime] | None:
    """The bounds the result says it selected (`request.filterConditions`: >= and <), or None when
    it does not say."""
    conditions = dig(members, "request", "filterConditions")
    if not isinstance(conditions, list):
        return None
    found: dict[str, dt.datetime] = {}
    for condition in conditions:
        if not isinstance(condition, dict) or condition.get("fieldName") not in ("start", "end"):
            continue  # the doc's example bounds `start` from below and `end` from above
        values = condition.get("values")
        moment = (
            parse_instant(values[0]) if isinstance(values, list) and values and isinstance(values[0], str) else None
        )
        if moment is not None and condition.get("operator") in (">=", "<"):
            found[condition["operator"]] = moment
    return (found[">="], found["<"]) if len(found) == 2 else None  # noqa: PLR2004


def _shown_bounds(bounds: tuple[dt.datetime, dt.datetime] | None) -> str:
    return f"{iso_z(bounds[0])}..{iso_z(bounds[1])}" if bounds else "(it does not say which)"
