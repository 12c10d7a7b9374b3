"""`tap-callreports --test`: a cheap check of every configured vendor that creates no report job.

Per vendor: its token, one page of each of its lists, and access to each configured report —
Talkdesk report types by asking for a job id that cannot exist (404 = type and credentials fine,
400 = type refused, 401/403 = credentials refused), MyReports reports by listing the workspace's
reports. Requests go through the streams' own `send()`, so auth, retries and error sorting are
the ones a sync uses.
"""

from __future__ import annotations

import time
import typing as t
import uuid
from dataclasses import dataclass

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_callreports.errors import CallReportsError, VendorRefused
from tap_callreports.redact import REGISTRY
from tap_callreports.retry import HostUnreachable
from tap_callreports.zendesk.talk import TALK_ABSENT, TALK_HELP

if t.TYPE_CHECKING:
    import logging

    from singer_sdk import Stream

    from tap_callreports.client import CallReportsStream
    from tap_callreports.settings import Settings
    from tap_callreports.zendesk.talk import ZendeskTalkStream


class TestedTap(t.Protocol):
    """What the connection test takes from the tap (`TapCallReports` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def streams(self) -> t.Mapping[str, Stream]: ...

    @property
    def logger(self) -> logging.Logger: ...


class Checked(t.Protocol):
    """A vendor as the connection test sees it (vendors.py declares each)."""

    @property
    def name(self) -> str: ...

    @property
    def test_stream(self) -> str:
        """The stream whose requests check the vendor first (its token, its list)."""
        ...

    @property
    def check(self) -> t.Callable[[ConnectionTest], str]: ...


class CheckRefused(Exception):
    """One vendor's check failed: the reason, in one line."""


class ConnectionTestFailed(CallReportsError):
    """One or more vendors refused; `lines` holds one line per refusing vendor."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


@dataclass(frozen=True)
class VendorResult:
    vendor: str
    ok: bool
    detail: str

    @property
    def line(self) -> str:
        return f"{self.vendor}: {'ok' if self.ok else 'refused'}: {self.detail}"


def _reason(exc: BaseException, stream: CallReportsStream | None = None) -> str:
    if stream is not None and isinstance(exc, (HostUnreachable, requests.RequestException)):
        text = stream.explain_failure(exc)  # the line a sync gives (an unreachable host: what to check)
    elif isinstance(exc, (FatalAPIError, RetriableAPIError, CallReportsError, CheckRefused)):
        text = str(exc.args[0]) if exc.args else type(exc).__name__
    else:  # requests' connection errors carry the whole URL: the type says enough
        text = f"network error ({type(exc).__name__}); check the vendor's URL settings and the network"
    return REGISTRY.redact(text).replace("\n", " ")


def _get(
    stream: CallReportsStream, path: str, params: dict | None = None, expected_status: int | None = None
) -> requests.Response:
    response = stream.send("GET", f"{stream.url_base}{path}", params=params, expected_status=expected_status)
    response.close()
    return response


class ConnectionTest:
    """Checks each configured vendor in turn; `run()` returns one result per vendor."""

    def __init__(self, tap: TestedTap, vendors: t.Iterable[Checked]) -> None:
        self.tap = tap
        self.settings = tap.settings
        self.vendors = vendors

    def run(self) -> list[VendorResult]:
        results = []
        for vendor in self.vendors:
            if getattr(self.settings, vendor.name) is None:
                continue
            try:
                detail = vendor.check(self)
            except (FatalAPIError, RetriableAPIError, CallReportsError, CheckRefused, requests.RequestException) as exc:
                results.append(VendorResult(vendor.name, False, _reason(exc, self.stream(vendor.test_stream))))
            else:
                results.append(VendorResult(vendor.name, True, detail))
        return results

    def stream(self, name: str) -> CallReportsStream:
        return t.cast("CallReportsStream", self.tap.streams[name])

    def check_talkdesk(self) -> str:
        imports = self.stream("talkdesk_imports")
        _get(imports, imports.path, t.cast("dict", imports.get_url_params(None, None)))  # fetches the token first
        types = self.settings.talkdesk.report_types  # type: ignore[union-attr]
        for report_type in types:
            stream = self.stream(f"talkdesk_{report_type}")
            try:
                _get(stream, f"/data/reports/{report_type}/jobs/{uuid.uuid4().hex}", expected_status=404)
            except VendorRefused as exc:
                if exc.status == 404:  # no such job: the type exists and the credentials may read it
                    continue
                if exc.status == 400:
                    raise CheckRefused(
                        f"report type '{report_type}' is refused ({_reason(exc)}); remove it from talkdesk_report_types"
                    ) from None
                raise
            # A job with a random id exists only if the API ignores the id: the check proved nothing.
            raise CheckRefused(
                f"GET /data/reports/{report_type}/jobs/<random id> did not answer 404; "
                "the report API is not the one the tap expects"
            )
        return f"token, imports page, report types {', '.join(types)}"

    def check_zendesk(self) -> str:
        statuses = self.stream("zendesk_job_statuses")
        _get(statuses, statuses.path, t.cast("dict", statuses.get_url_params(None, None)))
        calls = t.cast("ZendeskTalkStream", self.stream("zendesk_talk_calls"))
        if not (calls.selected or self.stream("zendesk_talk_legs").selected):
            return "credentials, job statuses page"
        # one request of the Talk export (the exports' shared budget: 10 a minute), from a day ago
        calls.pacer.wait()
        try:
            _get(calls, calls.path, {"start_time": int(time.time()) - 86400})
        except VendorRefused as exc:
            if exc.status == 404:  # a sync skips the Talk streams with a warning
                return f"credentials, job statuses page; talk calls export: 404, {TALK_ABSENT}"
            if exc.status == 403:
                raise CheckRefused(f"Talk export: {_reason(exc)}; {TALK_HELP}") from None
            raise
        finally:
            calls.pacer.sent()
        return "credentials, job statuses page, talk calls export"

    def check_myreports(self) -> str:
        rows = self.stream("myreports_call_rows")
        myreports = self.settings.myreports
        assert myreports is not None
        if not myreports.workspace_id:
            _get(rows, "/v1.0/workspaces")
            return "token (no workspace configured)"
        response = _get(rows, f"/v1.0/workspaces/{myreports.workspace_id}/reports")
        listed = response.json()
        if isinstance(listed, dict):  # enveloped answer
            listed = rows.envelope_data(response)  # type: ignore[attr-defined]
        ids = {str(item.get("id")) for item in listed or [] if isinstance(item, dict)}
        missing = [report_id for report_id in myreports.report_ids if report_id not in ids]
        if missing:
            raise CheckRefused(
                f"report(s) {', '.join(missing)} are not in workspace {myreports.workspace_id} "
                "(or this token may not see them); check myreports_report_ids and "
                "myreports_workspace_id"
            )
        return f"token, workspace {myreports.workspace_id}, reports {', '.join(myreports.report_ids) or '(none)'}"


def run_connection_test(tap: TestedTap, vendors: t.Iterable[Checked]) -> bool:
    """Log one line per configured vendor; raise ConnectionTestFailed naming each that refused."""
    results = ConnectionTest(tap, vendors).run()
    for result in results:
        if result.ok:
            tap.logger.info("connection test: %s", result.line)
    refused = [result.line for result in results if not result.ok]
    if refused:
        raise ConnectionTestFailed(refused)
    return True
