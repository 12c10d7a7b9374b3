"""The settings users fill in meltano.yml: each one's name, type, default, bounds and help text,
declared once. `settings.py` reads a config against these declarations (the readers take their
defaults and bounds from here); `scripts/generate.py` writes meltano.yml, the Hub file and
docs/settings.md from them.

Setting names are the tap's public interface: keep them exactly.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_callreports.report_types import REPORT_TYPES

TALKDESK_REGIONS: dict[str, tuple[str, str]] = {
    # region: (API base, token host suffix)
    "us": ("https://api.talkdeskapp.com", "talkdeskid.com"),
    "eu": ("https://api.talkdeskapp.eu", "talkdeskid.eu"),
    "ca": ("https://api.talkdeskappca.com", "talkdeskidca.com"),
}
#: talkdesk_report_types' values: the report types declared in report_types.py, in order.
TALKDESK_REPORT_TYPES = list(REPORT_TYPES)
TALKDESK_DEFAULT_REPORT_TYPES = [name for name, spec in REPORT_TYPES.items() if spec.read_by_default]
TALKDESK_REPORT_FORMATS = ["json", "csv", "json_bulk"]
TALKDESK_MAX_WINDOW_DAYS = 31  # "at most one month of data per job"
TALKDESK_MAX_CONCURRENT_JOBS = 15  # "at most 15 report jobs queued or running per account"
MYREPORTS_DEFAULT_API_URL = "https://api.na.myreports.cloud/api"
# Two hours: calls up to ~2 h long and late changes (wrap-up, dispositions) are read again next run.
DEFAULT_LOOKBACK_MINUTES = 120
MAX_LOOKBACK_MINUTES = 7 * 24 * 60
MAX_LAG_MINUTES = 24 * 60
ZENDESK_TALK_RATE_LIMIT = 10  # "10 requests per minute" per incremental export endpoint


# Numbers are read alike (settings.read_number): a JSON number, or the same number as text, as
# Meltano environment variables and `--config ENV` deliver them ("5", "0.25").


def _seconds(**bounds: t.Any) -> th.CustomType:
    """A duration in seconds, fractions allowed. Meltano kind `string`: its `kind: decimal` turns
    a value read from the environment into Decimal and then fails to write the config file."""
    return th.CustomType({"type": ["number", "string"], "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$", **bounds})


def _whole(minimum: int, maximum: int) -> th.CustomType:
    """A whole number from `minimum` to `maximum`."""
    return th.CustomType(
        {"type": ["integer", "string"], "pattern": r"^\s*[0-9]+\s*$", "minimum": minimum, "maximum": maximum}
    )


SETTINGS_SCHEMA = th.PropertiesList(
    th.Property(
        "start_date",
        th.DateTimeType,
        required=True,
        title="Start date",
        description="Earliest moment to extract (ISO 8601). Incremental runs start at their bookmark instead.",
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description="Latest moment to extract (ISO 8601, exclusive). Default: now.",
    ),
    # Talkdesk
    th.Property(
        "talkdesk_region",
        th.StringType,
        default="us",
        allowed_values=list(TALKDESK_REGIONS),
        title="Talkdesk region",
        description="us, eu or ca: picks the API host and the token host.",
    ),
    th.Property(
        "talkdesk_api_url",
        th.StringType,
        title="Talkdesk API URL",
        description="Override of the regional API base URL (https; http only for loopback).",
    ),
    th.Property(
        "talkdesk_token_url",
        th.StringType,
        title="Talkdesk token URL",
        description="Override of https://{account}.talkdeskid.{region}/oauth/token.",
    ),
    th.Property(
        "talkdesk_account_name",
        th.StringType,
        title="Talkdesk account name",
        description="Account subdomain used to build the token URL.",
    ),
    th.Property(
        "talkdesk_client_id",
        th.StringType,
        title="Talkdesk client ID",
        description="OAuth2 client-credentials client ID.",
    ),
    th.Property(
        "talkdesk_client_secret",
        th.StringType,
        secret=True,
        title="Talkdesk client secret",
        description="OAuth2 client-credentials client secret.",
    ),
    th.Property(
        "talkdesk_access_token",
        th.StringType,
        secret=True,
        title="Talkdesk access token",
        description="A static bearer token, instead of client credentials.",
    ),
    th.Property(
        "talkdesk_report_types",
        th.ArrayType(th.CustomType({"type": ["string"], "pattern": "^[a-z][a-z0-9_]{0,63}$"})),
        default=TALKDESK_DEFAULT_REPORT_TYPES,
        title="Talkdesk report types",
        description="Explore report types to extract, one stream talkdesk_<type> each. "
        f"With a declared layout: {', '.join(TALKDESK_REPORT_TYPES)}; any other Talkdesk report type name "
        "is read under the generic rules (columns from the rows, keyed by _row_key).",
    ),
    th.Property(
        "talkdesk_report_timezone",
        th.StringType,
        default="UTC",
        title="Talkdesk report timezone",
        description="IANA time zone the report timespan is applied in.",
    ),
    th.Property(
        "talkdesk_report_format",
        th.StringType,
        default="json",
        allowed_values=TALKDESK_REPORT_FORMATS,
        title="Talkdesk report format",
        description="File format of report jobs: json, csv or json_bulk.",
    ),
    th.Property(
        "talkdesk_window_days",
        _whole(1, TALKDESK_MAX_WINDOW_DAYS),
        default=7,
        title="Talkdesk window (days)",
        description="Days of data per report job (1 to 31).",
    ),
    th.Property(
        "talkdesk_data_lag_minutes",
        _whole(0, MAX_LAG_MINUTES),
        default=5,
        title="Talkdesk data lag (minutes)",
        description="Reports lag real time; windows never end later than now minus this, 0 to 1440 "
        "(audit_logs always waits at least 60).",
    ),
    th.Property(
        "talkdesk_lookback_minutes",
        _whole(0, MAX_LOOKBACK_MINUTES),
        default=DEFAULT_LOOKBACK_MINUTES,
        title="Talkdesk lookback (minutes)",
        description="Every incremental run re-reads this much before its bookmark (0 to 10080): rows "
        "that arrive or change late (long calls, wrap-up, dispositions) are read again and "
        "replace themselves by key.",
    ),
    th.Property(
        "talkdesk_page_size",
        _whole(1, 100),
        default=100,
        title="Talkdesk page size",
        description="per_page for the bulk-imports list (1 to 100).",
    ),
    # Zendesk
    th.Property(
        "zendesk_subdomain",
        th.StringType,
        title="Zendesk subdomain",
        description="Builds https://{subdomain}.zendesk.com.",
    ),
    th.Property(
        "zendesk_api_url",
        th.StringType,
        title="Zendesk API URL",
        description="Override of https://{subdomain}.zendesk.com.",
    ),
    th.Property(
        "zendesk_email",
        th.StringType,
        title="Zendesk email",
        description="Agent email for API-token auth ({email}/token:{api_token}).",
    ),
    th.Property(
        "zendesk_api_token",
        th.StringType,
        secret=True,
        title="Zendesk API token",
        description="API token, with zendesk_email.",
    ),
    th.Property(
        "zendesk_oauth_token",
        th.StringType,
        secret=True,
        title="Zendesk OAuth token",
        description="OAuth bearer token, instead of email + API token.",
    ),
    th.Property(
        "zendesk_job_status_ids",
        th.ArrayType(th.StringType),
        title="Zendesk job status IDs",
        description="When given, fetch these job statuses via show_many (batches of 100) instead of listing all.",
    ),
    th.Property(
        "zendesk_talk_rate_limit",
        _whole(1, 1000),
        default=ZENDESK_TALK_RATE_LIMIT,
        title="Zendesk Talk export rate limit",
        description="Requests per zendesk_talk_rate_window_seconds to the Talk incremental exports, both "
        "together (zendesk_talk_calls and zendesk_talk_legs share it), 1 to 1000: Zendesk allows 10 a minute; "
        "the tap keeps to it instead of being refused. Raise it only if Zendesk raised your account's limit.",
    ),
    th.Property(
        "zendesk_talk_rate_window_seconds",
        _seconds(exclusiveMinimum=0),
        default=60,
        title="Zendesk Talk export rate window (s)",
        description="Seconds (above 0) in which zendesk_talk_rate_limit requests may go to the Talk exports: "
        "Zendesk's is a minute (a shorter one serves tests against the sandbox).",
    ),
    th.Property(
        "zendesk_talk_data_lag_minutes",
        _whole(0, MAX_LAG_MINUTES),
        default=5,
        title="Zendesk Talk data lag (minutes)",
        description="Talk calls and legs updated in the last minutes (0 to 1440) are left to the next run: "
        "exports show some updates late, and the bookmark never passes one not yet visible.",
    ),
    th.Property(
        "zendesk_talk_lookback_minutes",
        _whole(0, MAX_LOOKBACK_MINUTES),
        default=0,
        title="Zendesk Talk lookback (minutes)",
        description="Every incremental run of the Talk streams re-reads this much before its bookmark (0 to "
        "10080). 0 re-reads only the bookmark's second: an updated call or leg is exported again with its new "
        "updated_at.",
    ),
    # MyReports
    th.Property(
        "myreports_api_url",
        th.StringType,
        default=MYREPORTS_DEFAULT_API_URL,
        title="MyReports API URL",
        description="Base URL: https://api.<region>.myreports.cloud/api, region na, eu, uk or au.",
    ),
    th.Property(
        "myreports_token",
        th.StringType,
        secret=True,
        title="MyReports token",
        description="A static JWT access token. Expires: for unattended runs use myreports_refresh_token.",
    ),
    th.Property(
        "myreports_refresh_token",
        th.StringType,
        secret=True,
        title="MyReports refresh token",
        description="OAuth2 refresh token: the tap gets (and renews) access tokens itself. "
        "Wins over myreports_token when both are set.",
    ),
    th.Property(
        "myreports_client_id",
        th.StringType,
        title="MyReports client ID",
        description="OAuth2 client ID, sent with the refresh token.",
    ),
    th.Property(
        "myreports_client_secret",
        th.StringType,
        secret=True,
        title="MyReports client secret",
        description="OAuth2 client secret, sent with the refresh token.",
    ),
    th.Property(
        "myreports_token_url",
        th.StringType,
        title="MyReports token URL",
        description="OAuth2 token endpoint for the refresh grant (required with myreports_refresh_token; "
        "https, http only for loopback).",
    ),
    th.Property(
        "myreports_workspace_id",
        th.StringType,
        title="MyReports workspace ID",
        description="The workspace holding myreports_report_ids.",
    ),
    th.Property(
        "myreports_report_ids",
        th.ArrayType(th.StringType),
        title="MyReports report IDs",
        description="Reports whose call rows to extract.",
    ),
    th.Property(
        "myreports_window_days",
        _whole(1, 366),
        default=7,
        title="MyReports window (days)",
        description="Days of data per report request (1 to 366); halved automatically when a result hits rowLimit.",
    ),
    th.Property(
        "myreports_data_lag_minutes",
        _whole(0, MAX_LAG_MINUTES),
        default=15,
        title="MyReports data lag (minutes)",
        description="A call row exists once the call ends: windows end this long before now (0 to 1440).",
    ),
    th.Property(
        "myreports_lookback_minutes",
        _whole(0, MAX_LOOKBACK_MINUTES),
        default=DEFAULT_LOOKBACK_MINUTES,
        title="MyReports lookback (minutes)",
        description="Every incremental run re-reads this much before its bookmark (0 to 10080): a call "
        "row exists once the call ends, so calls longer than the data lag arrive late.",
    ),
    th.Property(
        "min_window_minutes",
        _whole(0, MAX_LOOKBACK_MINUTES),
        default=15,
        title="Minimum window (minutes)",
        description="A report stream whose new data since its bookmark spans less than this (0 to 10080) "
        "creates no job this run: a run started right after another makes no tiny jobs.",
    ),
    # Report jobs, retries
    th.Property(
        "max_concurrent_jobs",
        _whole(1, 64),
        title="Concurrent report jobs",
        description="Upper bound on report jobs run at once per vendor, 1 to 64 (at most 15 with Talkdesk). "
        "Unset: the vendor's limit (Talkdesk 15 per account, MyReports 10), lowered for the run "
        "when the account is full (other tools' jobs count).",
    ),
    th.Property(
        "job_poll_interval_seconds",
        _seconds(exclusiveMinimum=0),
        default=5,
        title="Job poll interval (s)",
        description="Seconds (above 0) of the first wait between polls of a report job; later waits are "
        "a tenth of the job's age, up to job_poll_max_interval_seconds.",
    ),
    th.Property(
        "job_poll_max_interval_seconds",
        _seconds(exclusiveMinimum=0),
        default=60,
        title="Job poll interval cap (s)",
        description="Seconds (above 0): the longest wait between two polls of a report job.",
    ),
    th.Property(
        "job_timeout_seconds",
        _seconds(exclusiveMinimum=0),
        default=3600,
        title="Job timeout (s)",
        description="Seconds (above 0): a report job not done by then fails the stream.",
    ),
    th.Property(
        "job_max_attempts",
        _whole(1, 20),
        default=3,
        title="Job attempts",
        description="Times (1 to 20) a report job is created when it fails or is canceled, before the stream fails.",
    ),
    th.Property(
        "max_retries",
        _whole(0, 100),
        default=5,
        title="Max retries",
        description="Retries (0 to 100) of a request after 429, 5xx, resets and timeouts.",
    ),
    th.Property(
        "request_timeout_seconds",
        _seconds(exclusiveMinimum=0),
        default=300,
        title="Request timeout (s)",
        description="Seconds (above 0): connect and read timeout of every request; a timeout is retried.",
    ),
    th.Property(
        "retry_backoff_base_seconds",
        _seconds(exclusiveMinimum=0),
        default=1.0,
        title="Retry backoff base (s)",
        description="Seconds (above 0) of the first exponential backoff wait (with jitter) when no "
        "Retry-After is given.",
    ),
).to_dict()


def declared(setting: str) -> dict[str, t.Any]:
    """The schema of one setting (its default, bounds, allowed values)."""
    return SETTINGS_SCHEMA["properties"][setting]
