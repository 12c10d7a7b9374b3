"""The vendors the tap reads, each declared once: its name (the prefix of its settings, of its
`Settings` group and of its streams), how a user gives its credentials, its authenticator, its
streams, its job-record stream, the keys a catalog may override, and its `--test` check. The tap,
the catalog check and the connection test read this table instead of naming vendors."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_callreports import credentials
from tap_callreports.connection_test import ConnectionTest
from tap_callreports.myreports.streams import ROW_POLICY as MYREPORTS_ROW_POLICY
from tap_callreports.myreports.streams import MyReportsCallRowsStream
from tap_callreports.report_types import REPORT_TYPE_NAME, ROW_POLICIES, report_type
from tap_callreports.settings import TALKDESK_MAX_CONCURRENT_JOBS, TALKDESK_REPORT_TYPES
from tap_callreports.talkdesk.reports import TalkdeskReportStream
from tap_callreports.talkdesk.streams import TalkdeskImportsStream
from tap_callreports.zendesk.streams import ZendeskJobStatusesStream
from tap_callreports.zendesk.talk import ZendeskTalkCallsStream, ZendeskTalkLegsStream

if t.TYPE_CHECKING:
    from singer_sdk import Stream, Tap

    from tap_callreports.auth import CallReportsAuth
    from tap_callreports.settings import Settings


@dataclass(frozen=True)
class Vendor:
    """One vendor, as the tap sees it (`group`: its settings, `Settings.<name>`, when configured)."""

    #: The prefix of its settings (`<name>_*`), its `Settings` group and its streams' names.
    name: str
    label: str
    #: Which settings give it credentials, as a user reads them (the one-line errors).
    credentials: str
    #: Its authenticator from its settings group and the token-flow options (credentials.py).
    authenticator: t.Callable[[t.Any, dict[str, t.Any]], CallReportsAuth]
    #: Its streams for a config, in discovery order (its job-record stream comes after all vendors').
    streams: t.Callable[[Tap, t.Any], list[Stream]]
    #: Every stream it can produce for some config (the catalog check), in discovery order.
    stream_names: tuple[str, ...]
    #: The stream the connection test's failures name, and the check (`ConnectionTest` method).
    test_stream: str
    check: t.Callable[[ConnectionTest], str]
    #: Its job-record stream (name, key), if it runs report jobs.
    job_records: tuple[str, str] | None = None
    #: Its report jobs at once when max_concurrent_jobs is unset: the documented account limit, or,
    #: where the vendor states none, ours. A vendor that answers "too many" lowers it for the run
    #: (reportjobs.JobSlots).
    concurrent_jobs: int | None = None
    #: Per stream, the tap's own key, which a catalog may override (`honour_catalog_keys`).
    catalog_keys: t.Callable[[t.Any], dict[str, t.Sequence[str]]] = lambda group: {}
    #: A stream name it may produce though not in `stream_names` (Talkdesk: any report type).
    may_produce: t.Callable[[str], bool] = lambda name: False

    def group(self, settings: t.Any) -> t.Any:
        """Its settings group (`Settings.<name>`), None when the config has none of its credentials."""
        return getattr(settings, self.name)


TALKDESK = Vendor(
    name="talkdesk",
    label="Talkdesk",
    credentials="talkdesk_client_id + talkdesk_client_secret (+ talkdesk_account_name) or talkdesk_access_token",
    authenticator=credentials.talkdesk_authenticator,
    streams=lambda tap, group: [
        TalkdeskImportsStream(tap),
        *(TalkdeskReportStream(tap, report_type) for report_type in group.report_types),
    ],
    stream_names=(
        "talkdesk_imports",
        *(f"talkdesk_{report_type}" for report_type in TALKDESK_REPORT_TYPES),
        "talkdesk_report_jobs",
    ),
    test_stream="talkdesk_imports",
    check=ConnectionTest.check_talkdesk,
    job_records=("talkdesk_report_jobs", "id"),
    concurrent_jobs=TALKDESK_MAX_CONCURRENT_JOBS,
    catalog_keys=lambda group: {
        **{f"talkdesk_{kind}": policy.key for kind, policy in ROW_POLICIES.items()},
        **{f"talkdesk_{kind}": report_type(kind).key for kind in (group.report_types if group is not None else ())},
    },
    may_produce=lambda name: bool(REPORT_TYPE_NAME.fullmatch(name.removeprefix("talkdesk_"))),
)

ZENDESK = Vendor(
    name="zendesk",
    label="Zendesk",
    credentials="zendesk_email + zendesk_api_token or zendesk_oauth_token (+ zendesk_subdomain)",
    authenticator=credentials.zendesk_authenticator,
    streams=lambda tap, group: [ZendeskJobStatusesStream(tap), ZendeskTalkCallsStream(tap), ZendeskTalkLegsStream(tap)],
    stream_names=("zendesk_job_statuses", "zendesk_talk_calls", "zendesk_talk_legs"),
    test_stream="zendesk_job_statuses",
    check=ConnectionTest.check_zendesk,
)

MYREPORTS = Vendor(
    name="myreports",
    label="MyReports",
    credentials="myreports_token or myreports_refresh_token + myreports_token_url "
    "(+ myreports_workspace_id, myreports_report_ids)",
    authenticator=credentials.myreports_authenticator,
    streams=lambda tap, group: [MyReportsCallRowsStream(tap)],
    stream_names=("myreports_call_rows", "myreports_requests"),
    test_stream="myreports_call_rows",
    check=ConnectionTest.check_myreports,
    job_records=("myreports_requests", "request_id"),
    concurrent_jobs=10,
    catalog_keys=lambda group: {MyReportsCallRowsStream.name: MYREPORTS_ROW_POLICY.key},
)

#: Every vendor, in the order their streams are discovered and their checks run.
VENDORS: dict[str, Vendor] = {vendor.name: vendor for vendor in (TALKDESK, ZENDESK, MYREPORTS)}

#: Every stream the tap can produce, for some config.
ALL_STREAM_NAMES = [name for vendor in VENDORS.values() for name in vendor.stream_names]


def job_ceilings(settings: Settings) -> dict[str, int]:
    """Per vendor that runs report jobs, how many may run at once at the start of a run:
    max_concurrent_jobs, else the vendor's `concurrent_jobs`. Talkdesk's account limit is checked
    once, by `load_settings` (a larger max_concurrent_jobs is refused when Talkdesk is configured)."""
    chosen = settings.jobs.max_concurrent_jobs
    return {vendor.name: chosen or vendor.concurrent_jobs for vendor in VENDORS.values() if vendor.concurrent_jobs}


NO_CREDENTIALS = (
    "config: no vendor credentials are set; give at least one of: "
    f"{'; '.join(vendor.credentials for vendor in VENDORS.values())}"
)
