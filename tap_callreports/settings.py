"""Settings: the JSON schema users fill in meltano.yml, and every check made before a request.

Setting names are the tap's public interface: keep them exactly.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import math
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import typing as th

from tap_callreports.errors import ConfigError

TALKDESK_REGIONS: dict[str, tuple[str, str]] = {
    # region: (API base, token host suffix)
    "us": ("https://api.talkdeskapp.com", "talkdeskid.com"),
    "eu": ("https://api.talkdeskapp.eu", "talkdeskid.eu"),
    "ca": ("https://api.talkdeskappca.com", "talkdeskidca.com"),
}
TALKDESK_DEFAULT_REPORT_TYPES = ["calls", "contacts", "user_status", "ring_attempts", "studio_flow_execution"]
TALKDESK_REPORT_TYPES = [*TALKDESK_DEFAULT_REPORT_TYPES, "explore_calls", "audit_logs", "messaging_contacts"]
TALKDESK_REPORT_FORMATS = ["json", "csv", "json_bulk"]
TALKDESK_MAX_WINDOW_DAYS = 31  # "at most one month of data per job"
TALKDESK_MAX_CONCURRENT_JOBS = 15  # "at most 15 report jobs queued or running per account"
#: Jobs at once per vendor when max_concurrent_jobs is unset: the documented account limit, or,
#: where the vendor states none (MyReports), ours. A vendor that answers "too many" lowers it for
#: the run (reportjobs.JobSlots).
DEFAULT_CONCURRENT_JOBS = {"talkdesk": TALKDESK_MAX_CONCURRENT_JOBS, "myreports": 10}
MYREPORTS_DEFAULT_API_URL = "https://api.na.myreports.cloud/api"
# Two hours: calls up to ~2 h long and late changes (wrap-up, dispositions) are read again next run.
DEFAULT_LOOKBACK_MINUTES = 120
MAX_LOOKBACK_MINUTES = 7 * 24 * 60
MAX_LAG_MINUTES = 24 * 60


def _seconds(**bounds: t.Any) -> th.CustomType:
    """A duration in seconds, fractions allowed: a JSON number, or the same number as a string
    (Meltano passes `kind: string` settings read from the environment as strings; its `kind:
    decimal` turns them into Decimal and then fails to write the config file)."""
    return th.CustomType({"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$", **bounds})


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
        th.ArrayType(th.CustomType({"type": ["string"], "enum": TALKDESK_REPORT_TYPES})),
        default=TALKDESK_DEFAULT_REPORT_TYPES,
        title="Talkdesk report types",
        description="Explore report types to extract, one stream talkdesk_<type> each. "
        f"Valid: {', '.join(TALKDESK_REPORT_TYPES)}.",
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
        th.IntegerType(minimum=1, maximum=TALKDESK_MAX_WINDOW_DAYS),
        default=7,
        title="Talkdesk window (days)",
        description="Days of data per report job (1 to 31).",
    ),
    th.Property(
        "talkdesk_data_lag_minutes",
        th.IntegerType(minimum=0, maximum=MAX_LAG_MINUTES),
        default=5,
        title="Talkdesk data lag (minutes)",
        description="Reports lag real time; windows never end later than now minus this, 0 to 1440 "
        "(audit_logs always waits at least 60).",
    ),
    th.Property(
        "talkdesk_lookback_minutes",
        th.IntegerType(minimum=0, maximum=MAX_LOOKBACK_MINUTES),
        default=DEFAULT_LOOKBACK_MINUTES,
        title="Talkdesk lookback (minutes)",
        description="Every incremental run re-reads this much before its bookmark (0 to 10080): rows "
        "that arrive or change late (long calls, wrap-up, dispositions) are read again and "
        "replace themselves by key.",
    ),
    th.Property(
        "talkdesk_page_size",
        th.IntegerType(minimum=1, maximum=100),
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
        th.IntegerType(minimum=1, maximum=366),
        default=7,
        title="MyReports window (days)",
        description="Days of data per report request (1 to 366); halved automatically when a result hits rowLimit.",
    ),
    th.Property(
        "myreports_data_lag_minutes",
        th.IntegerType(minimum=0, maximum=MAX_LAG_MINUTES),
        default=15,
        title="MyReports data lag (minutes)",
        description="A call row exists once the call ends: windows end this long before now (0 to 1440).",
    ),
    th.Property(
        "myreports_lookback_minutes",
        th.IntegerType(minimum=0, maximum=MAX_LOOKBACK_MINUTES),
        default=DEFAULT_LOOKBACK_MINUTES,
        title="MyReports lookback (minutes)",
        description="Every incremental run re-reads this much before its bookmark (0 to 10080): a call "
        "row exists once the call ends, so calls longer than the data lag arrive late.",
    ),
    th.Property(
        "min_window_minutes",
        th.IntegerType(minimum=0, maximum=MAX_LOOKBACK_MINUTES),
        default=15,
        title="Minimum window (minutes)",
        description="A report stream whose new data since its bookmark spans less than this (0 to 10080) "
        "creates no job this run: a run started right after another makes no tiny jobs.",
    ),
    # Report jobs, retries
    th.Property(
        "max_concurrent_jobs",
        th.IntegerType(minimum=1, maximum=64),
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
        th.IntegerType(minimum=1, maximum=20),
        default=3,
        title="Job attempts",
        description="Times (1 to 20) a report job is created when it fails or is canceled, before the stream fails.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=100),
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(setting: str, url: str) -> str:
    """Return the URL without a trailing slash; https only, http only for loopback (the sandbox)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(setting, f"must be an absolute https URL (got '{url}')")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(setting, f"must use https (plain http is allowed only for loopback addresses), got '{url}'")
    return url.rstrip("/")


def parse_datetime(setting: str, value: t.Any) -> dt.datetime:
    """Parse an ISO 8601 setting; a naive value is taken as UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(setting, f"must be an ISO 8601 date or date-time (got '{value}')") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _pair(config: t.Mapping[str, t.Any], first: str, second: str) -> bool:
    """True when both of a credential pair are set; a ConfigError when only one is."""
    has_first, has_second = bool(config.get(first)), bool(config.get(second))
    if has_first != has_second:
        missing, given = (second, first) if has_first else (first, second)
        raise ConfigError(missing, f"is missing: it is needed together with '{given}'")
    return has_first


def _int_between(config: t.Mapping[str, t.Any], setting: str, low: int, high: int, default: int) -> int:
    value = config.get(setting, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(setting, f"must be a whole number from {low} to {high} (got {value!r})")
    return value


def _positive_number(config: t.Mapping[str, t.Any], setting: str, default: float) -> float:
    value = config.get(setting, default)
    # The SDK reads JSON config numbers as Decimal; Meltano passes `kind: string` values from the
    # environment as strings ("120").
    number: float | None = None
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(setting, f"must be a number of seconds above 0 (got {value!r})")
    return number


@dataclass(frozen=True)
class TalkdeskSettings:
    api_url: str
    token_url: str | None
    client_id: str | None
    client_secret: str | None
    access_token: str | None
    report_types: tuple[str, ...]
    report_timezone: str
    report_format: str
    window_days: int
    data_lag_minutes: int
    page_size: int
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES


@dataclass(frozen=True)
class ZendeskSettings:
    api_url: str
    email: str | None
    api_token: str | None
    oauth_token: str | None
    job_status_ids: tuple[str, ...]


@dataclass(frozen=True)
class MyReportsSettings:
    api_url: str
    token: str | None
    workspace_id: str | None
    report_ids: tuple[str, ...]
    window_days: int
    data_lag_minutes: int
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES
    # The refresh-token flow (wins over `token` when set).
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_url: str | None = None


@dataclass(frozen=True)
class JobSettings:
    max_concurrent_jobs: int | None  # None: each vendor's DEFAULT_CONCURRENT_JOBS
    poll_interval_seconds: float
    poll_max_interval_seconds: float
    timeout_seconds: float
    max_attempts: int
    min_window_minutes: int = 15

    def ceilings(self) -> dict[str, int]:
        """Per vendor, how many jobs may run at once at the start of a run."""
        chosen = self.max_concurrent_jobs
        return {
            "talkdesk": min(chosen or TALKDESK_MAX_CONCURRENT_JOBS, TALKDESK_MAX_CONCURRENT_JOBS),
            "myreports": chosen or DEFAULT_CONCURRENT_JOBS["myreports"],
        }


@dataclass(frozen=True)
class Settings:
    """The validated configuration, with derived URLs; built once per tap."""

    start_date: dt.datetime
    end_date: dt.datetime | None
    max_retries: int
    request_timeout_seconds: float
    retry_backoff_base_seconds: float
    jobs: JobSettings
    talkdesk: TalkdeskSettings | None
    zendesk: ZendeskSettings | None
    myreports: MyReportsSettings | None

    def end_or_now(self, now: dt.datetime) -> dt.datetime:
        return min(self.end_date, now) if self.end_date else now


def _talkdesk(config: t.Mapping[str, t.Any]) -> TalkdeskSettings | None:
    has_client = _pair(config, "talkdesk_client_id", "talkdesk_client_secret")
    access_token = config.get("talkdesk_access_token") or None
    if not has_client and not access_token:
        return None
    region = config.get("talkdesk_region") or "us"
    if region not in TALKDESK_REGIONS:
        raise ConfigError("talkdesk_region", f"must be one of {', '.join(TALKDESK_REGIONS)} (got '{region}')")
    api_base, token_suffix = TALKDESK_REGIONS[region]
    api_url = check_base_url("talkdesk_api_url", config.get("talkdesk_api_url") or api_base)
    token_url = None
    if has_client:
        if config.get("talkdesk_token_url"):
            token_url = check_base_url("talkdesk_token_url", config["talkdesk_token_url"])
        elif config.get("talkdesk_account_name"):
            token_url = f"https://{config['talkdesk_account_name']}.{token_suffix}/oauth/token"
        else:
            raise ConfigError(
                "talkdesk_account_name",
                "is missing: client credentials need it (or talkdesk_token_url) to reach the token URL",
            )
    types = config.get("talkdesk_report_types", TALKDESK_DEFAULT_REPORT_TYPES)
    if not isinstance(types, (list, tuple)) or not all(isinstance(x, str) for x in types):
        raise ConfigError("talkdesk_report_types", "must be a list of report type names")
    unknown = [x for x in types if x not in TALKDESK_REPORT_TYPES]
    if unknown:
        raise ConfigError(
            "talkdesk_report_types",
            f"has unknown report type(s) {', '.join(unknown)}; valid: {', '.join(TALKDESK_REPORT_TYPES)}",
        )
    tz_name = config.get("talkdesk_report_timezone") or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "talkdesk_report_timezone", f"must be an IANA time zone such as Europe/Lisbon (got '{tz_name}')"
        ) from None
    report_format = config.get("talkdesk_report_format") or "json"
    if report_format not in TALKDESK_REPORT_FORMATS:
        raise ConfigError(
            "talkdesk_report_format", f"must be one of {', '.join(TALKDESK_REPORT_FORMATS)} (got '{report_format}')"
        )
    return TalkdeskSettings(
        api_url=api_url,
        token_url=token_url,
        client_id=config.get("talkdesk_client_id") or None,
        client_secret=config.get("talkdesk_client_secret") or None,
        access_token=access_token if not has_client else None,
        report_types=tuple(dict.fromkeys(types)),
        report_timezone=tz_name,
        report_format=report_format,
        window_days=_int_between(config, "talkdesk_window_days", 1, TALKDESK_MAX_WINDOW_DAYS, 7),
        data_lag_minutes=_int_between(config, "talkdesk_data_lag_minutes", 0, 24 * 60, 5),
        page_size=_int_between(config, "talkdesk_page_size", 1, 100, 100),
        lookback_minutes=_int_between(
            config, "talkdesk_lookback_minutes", 0, MAX_LOOKBACK_MINUTES, DEFAULT_LOOKBACK_MINUTES
        ),
    )


def _zendesk(config: t.Mapping[str, t.Any]) -> ZendeskSettings | None:
    has_token = _pair(config, "zendesk_email", "zendesk_api_token")
    oauth = config.get("zendesk_oauth_token") or None
    if not has_token and not oauth:
        return None
    if config.get("zendesk_api_url"):
        api_url = check_base_url("zendesk_api_url", config["zendesk_api_url"])
    elif config.get("zendesk_subdomain"):
        api_url = f"https://{config['zendesk_subdomain']}.zendesk.com"
    else:
        raise ConfigError("zendesk_subdomain", "is missing: Zendesk credentials need it (or zendesk_api_url)")
    ids = config.get("zendesk_job_status_ids") or []
    if not isinstance(ids, (list, tuple)) or not all(isinstance(x, str) and x for x in ids):
        raise ConfigError("zendesk_job_status_ids", "must be a list of job status id strings")
    return ZendeskSettings(
        api_url=api_url,
        email=config.get("zendesk_email") if has_token else None,
        api_token=config.get("zendesk_api_token") if has_token else None,
        oauth_token=oauth if not has_token else None,
        job_status_ids=tuple(dict.fromkeys(ids)),
    )


def _myreports(config: t.Mapping[str, t.Any]) -> MyReportsSettings | None:
    token = config.get("myreports_token") or None
    refresh_token = config.get("myreports_refresh_token") or None
    if not token and not refresh_token:
        for orphan in ("myreports_client_id", "myreports_client_secret", "myreports_token_url"):
            if config.get(orphan):
                raise ConfigError("myreports_refresh_token", f"is missing: '{orphan}' is only used with it")
        return None
    token_url = None
    if refresh_token:
        if not config.get("myreports_token_url"):
            raise ConfigError("myreports_token_url", "is missing: myreports_refresh_token needs the token endpoint")
        token_url = check_base_url("myreports_token_url", config["myreports_token_url"])
    api_url = check_base_url("myreports_api_url", config.get("myreports_api_url") or MYREPORTS_DEFAULT_API_URL)
    report_ids = config.get("myreports_report_ids") or []
    if not isinstance(report_ids, (list, tuple)) or not all(isinstance(x, str) and x for x in report_ids):
        raise ConfigError("myreports_report_ids", "must be a list of report id strings")
    if report_ids and not config.get("myreports_workspace_id"):
        raise ConfigError("myreports_workspace_id", "is missing: myreports_report_ids need their workspace")
    return MyReportsSettings(
        api_url=api_url,
        token=token,
        workspace_id=config.get("myreports_workspace_id") or None,
        report_ids=tuple(dict.fromkeys(report_ids)),
        window_days=_int_between(config, "myreports_window_days", 1, 366, 7),
        data_lag_minutes=_int_between(config, "myreports_data_lag_minutes", 0, 24 * 60, 15),
        lookback_minutes=_int_between(
            config, "myreports_lookback_minutes", 0, MAX_LOOKBACK_MINUTES, DEFAULT_LOOKBACK_MINUTES
        ),
        refresh_token=refresh_token,
        client_id=config.get("myreports_client_id") or None if refresh_token else None,
        client_secret=config.get("myreports_client_secret") or None if refresh_token else None,
        token_url=token_url,
    )


VENDOR_LABELS = {"talkdesk": "Talkdesk", "zendesk": "Zendesk", "myreports": "MyReports"}
#: What each vendor's streams need, as a user reads it.
VENDOR_CREDENTIALS = {
    "talkdesk": "talkdesk_client_id + talkdesk_client_secret (+ talkdesk_account_name) or talkdesk_access_token",
    "zendesk": "zendesk_email + zendesk_api_token or zendesk_oauth_token (+ zendesk_subdomain)",
    "myreports": "myreports_token or myreports_refresh_token + myreports_token_url "
    "(+ myreports_workspace_id, myreports_report_ids)",
}
NO_CREDENTIALS = (
    f"config: no vendor credentials are set; give at least one of: {'; '.join(VENDOR_CREDENTIALS.values())}"
)


def load_settings(config: t.Mapping[str, t.Any]) -> Settings:
    """Validate every setting and derive URLs, raising ConfigError (one line) on the first problem."""
    if not config.get("start_date"):
        raise ConfigError("start_date", "is required (ISO 8601, e.g. 2026-01-01T00:00:00Z)")
    start = parse_datetime("start_date", config["start_date"])
    end = parse_datetime("end_date", config["end_date"]) if config.get("end_date") else None
    if end is not None and end <= start:
        raise ConfigError("end_date", f"must be after start_date ({end.isoformat()} <= {start.isoformat()})")
    talkdesk = _talkdesk(config)
    max_jobs = (
        None if config.get("max_concurrent_jobs") is None else _int_between(config, "max_concurrent_jobs", 1, 64, 1)
    )
    if talkdesk and max_jobs is not None and max_jobs > TALKDESK_MAX_CONCURRENT_JOBS:
        raise ConfigError(
            "max_concurrent_jobs",
            f"must be at most {TALKDESK_MAX_CONCURRENT_JOBS} with Talkdesk (its per-account job limit); got {max_jobs}",
        )
    poll = _positive_number(config, "job_poll_interval_seconds", 5)
    return Settings(
        start_date=start,
        end_date=end,
        max_retries=_int_between(config, "max_retries", 0, 100, 5),
        request_timeout_seconds=_positive_number(config, "request_timeout_seconds", 300),
        retry_backoff_base_seconds=_positive_number(config, "retry_backoff_base_seconds", 1.0),
        jobs=JobSettings(
            max_concurrent_jobs=max_jobs,
            poll_interval_seconds=poll,
            poll_max_interval_seconds=max(poll, _positive_number(config, "job_poll_max_interval_seconds", 60)),
            timeout_seconds=_positive_number(config, "job_timeout_seconds", 3600),
            max_attempts=_int_between(config, "job_max_attempts", 1, 20, 3),
            min_window_minutes=_int_between(config, "min_window_minutes", 0, MAX_LOOKBACK_MINUTES, 15),
        ),
        talkdesk=talkdesk,
        zendesk=_zendesk(config),
        myreports=_myreports(config),
    )


def secret_values(config: t.Mapping[str, t.Any]) -> list[str]:
    """Every configured secret, for log redaction."""
    names = [name for name, spec in SETTINGS_SCHEMA["properties"].items() if spec.get("secret")]
    return [str(config[name]) for name in names if config.get(name)]
