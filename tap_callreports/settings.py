"""Settings: every check made on a config before a request, and the validated `Settings` the tap
runs with. What each setting is (type, default, bounds, help) is declared once, in
`settings_schema.py`: the readers here take defaults and bounds from those declarations.

Setting names are the tap's public interface: keep them exactly.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import math
import re
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tap_callreports.errors import ConfigError
from tap_callreports.report_types import REPORT_TYPE_NAME
from tap_callreports.settings_schema import (
    DEFAULT_LOOKBACK_MINUTES,
    MAX_LAG_MINUTES,
    MAX_LOOKBACK_MINUTES,
    MYREPORTS_DEFAULT_API_URL,
    SETTINGS_SCHEMA,
    TALKDESK_DEFAULT_REPORT_TYPES,
    TALKDESK_MAX_CONCURRENT_JOBS,
    TALKDESK_MAX_WINDOW_DAYS,
    TALKDESK_REGIONS,
    TALKDESK_REPORT_FORMATS,
    TALKDESK_REPORT_TYPES,
    declared,
)

__all__ = [  # the schema's names are imported from here too (tests, bench, scripts, the tap)
    "DEFAULT_LOOKBACK_MINUTES",
    "MAX_LAG_MINUTES",
    "MAX_LOOKBACK_MINUTES",
    "MYREPORTS_DEFAULT_API_URL",
    "SETTINGS_SCHEMA",
    "TALKDESK_DEFAULT_REPORT_TYPES",
    "TALKDESK_MAX_CONCURRENT_JOBS",
    "TALKDESK_MAX_WINDOW_DAYS",
    "TALKDESK_REGIONS",
    "TALKDESK_REPORT_FORMATS",
    "TALKDESK_REPORT_TYPES",
    "JobSettings",
    "MyReportsSettings",
    "Settings",
    "TalkdeskSettings",
    "ZendeskSettings",
    "check_base_url",
    "load_settings",
    "parse_datetime",
    "read_number",
    "secret_values",
]


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


#: Where a user finds each vendor's credentials.
CREDENTIALS_DOC = "docs/settings.md#getting-credentials says where to find it"


def _pair(config: t.Mapping[str, t.Any], first: str, second: str) -> bool:
    """True when both of a credential pair are set; a ConfigError when only one is."""
    has_first, has_second = bool(config.get(first)), bool(config.get(second))
    if has_first != has_second:
        missing, given = (second, first) if has_first else (first, second)
        raise ConfigError(
            missing,
            f"is missing: it is needed together with '{given}'",
            f"set it ({CREDENTIALS_DOC}), or remove '{given}'",
        )
    return has_first


def read_number(config: t.Mapping[str, t.Any], setting: str) -> float:
    """Every numeric setting, read one way: its declared default when unset; a JSON number (the SDK
    reads JSON numbers as Decimal) or the same number as text (Meltano environment variables and
    `--config ENV` deliver text, "5"); within its declared bounds, whole when declared integer."""
    spec = declared(setting)
    whole = "integer" in spec["type"]
    value = config.get(setting, spec.get("default"))
    number: float | None = None
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(spec["pattern"], value):
        number = float(value)
    low, high, above = spec.get("minimum"), spec.get("maximum"), spec.get("exclusiveMinimum")
    if (
        number is None
        or not math.isfinite(number)
        or (whole and not number.is_integer())
        or (low is not None and number < low)
        or (high is not None and number > high)
        or (above is not None and number <= above)
    ):
        bounds = _bounds_text(low, high, above)
        kind = "a whole number" if whole else "a number of seconds"
        raise ConfigError(
            setting,
            f"must be {kind} {bounds} (got {value!r})",
            'change it in the config (a number, or the number as text: 5 and "5" both work)',
        )
    return number


def _bounds_text(low: float | None, high: float | None, above: float | None) -> str:
    """The declared bounds in words ("from 0 to 100", "of at least 1", "above 0 and at most 60")."""
    parts = []
    if above is not None:
        parts.append(f"above {above}")
    elif low is not None:
        parts.append(f"from {low}" if high is not None else f"of at least {low}")
    if high is not None:
        parts.append(f"to {high}" if low is not None and above is None else f"at most {high}")
    return " and ".join(parts) if above is not None else " ".join(parts)


def _whole_number(config: t.Mapping[str, t.Any], setting: str) -> int:
    return int(read_number(config, setting))


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
    lookback_minutes: int


@dataclass(frozen=True)
class ZendeskSettings:
    api_url: str
    email: str | None
    api_token: str | None
    oauth_token: str | None
    job_status_ids: tuple[str, ...]
    # Talk incremental exports (zendesk/talk.py)
    talk_rate_limit: int = 10
    talk_rate_window_seconds: float = 60.0
    talk_data_lag_minutes: int = 5
    talk_lookback_minutes: int = 0


@dataclass(frozen=True)
class MyReportsSettings:
    api_url: str
    token: str | None
    workspace_id: str | None
    report_ids: tuple[str, ...]
    window_days: int
    data_lag_minutes: int
    lookback_minutes: int
    # The refresh-token flow (wins over `token` when set).
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_url: str | None = None


@dataclass(frozen=True)
class JobSettings:
    max_concurrent_jobs: int | None  # None: each vendor's default (`Vendor.concurrent_jobs`, vendors.py)
    poll_interval_seconds: float
    poll_max_interval_seconds: float
    timeout_seconds: float
    max_attempts: int
    min_window_minutes: int


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

    def naming_host(self, url: str) -> str:
        """The settings that decide the host a request to `url` goes to, as a user reads them."""
        bases: list[tuple[str | None, str]] = []
        if self.talkdesk:
            bases += [
                (self.talkdesk.token_url, "talkdesk_token_url (or talkdesk_account_name and talkdesk_region)"),
                (self.talkdesk.api_url, "talkdesk_api_url (or talkdesk_region)"),
            ]
        if self.zendesk:
            bases.append((self.zendesk.api_url, "zendesk_api_url (or zendesk_subdomain)"))
        if self.myreports:
            bases += [(self.myreports.token_url, "myreports_token_url"), (self.myreports.api_url, "myreports_api_url")]
        for base, names in bases:  # token URLs first: they may lie under an API URL
            if base and url.startswith(base):
                return names
        return "the vendor's URL settings"


def _talkdesk(config: t.Mapping[str, t.Any]) -> TalkdeskSettings | None:
    has_client = _pair(config, "talkdesk_client_id", "talkdesk_client_secret")
    access_token = config.get("talkdesk_access_token") or None
    if not has_client and not access_token:
        return None
    region = config.get("talkdesk_region") or declared("talkdesk_region")["default"]
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
                "set talkdesk_account_name (acme for acme.talkdeskid.com) or talkdesk_token_url",
            )
    types = config.get("talkdesk_report_types", declared("talkdesk_report_types")["default"])
    if not isinstance(types, (list, tuple)) or not all(isinstance(x, str) for x in types):
        raise ConfigError("talkdesk_report_types", "must be a list of report type names")
    invalid = [x for x in types if not REPORT_TYPE_NAME.fullmatch(x)]
    if invalid:
        raise ConfigError(
            "talkdesk_report_types",
            f"has {', '.join(map(repr, invalid))}, not a report type name (Talkdesk's path names: lower case "
            f"letters, digits and _, e.g. {', '.join(TALKDESK_REPORT_TYPES[:3])}); correct it in the config",
        )
    tz_name = config.get("talkdesk_report_timezone") or declared("talkdesk_report_timezone")["default"]
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "talkdesk_report_timezone", f"must be an IANA time zone such as Europe/Lisbon (got '{tz_name}')"
        ) from None
    report_format = config.get("talkdesk_report_format") or declared("talkdesk_report_format")["default"]
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
        window_days=_whole_number(config, "talkdesk_window_days"),
        data_lag_minutes=_whole_number(config, "talkdesk_data_lag_minutes"),
        page_size=_whole_number(config, "talkdesk_page_size"),
        lookback_minutes=_whole_number(config, "talkdesk_lookback_minutes"),
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
        raise ConfigError(
            "zendesk_subdomain",
            "is missing: Zendesk credentials need it (or zendesk_api_url)",
            "set zendesk_subdomain (acme for acme.zendesk.com) or zendesk_api_url",
        )
    ids = config.get("zendesk_job_status_ids") or []
    if not isinstance(ids, (list, tuple)) or not all(isinstance(x, str) and x for x in ids):
        raise ConfigError("zendesk_job_status_ids", "must be a list of job status id strings")
    return ZendeskSettings(
        api_url=api_url,
        email=config.get("zendesk_email") if has_token else None,
        api_token=config.get("zendesk_api_token") if has_token else None,
        oauth_token=oauth if not has_token else None,
        job_status_ids=tuple(dict.fromkeys(ids)),
        talk_rate_limit=_whole_number(config, "zendesk_talk_rate_limit"),
        talk_rate_window_seconds=read_number(config, "zendesk_talk_rate_window_seconds"),
        talk_data_lag_minutes=_whole_number(config, "zendesk_talk_data_lag_minutes"),
        talk_lookback_minutes=_whole_number(config, "zendesk_talk_lookback_minutes"),
    )


def _myreports(config: t.Mapping[str, t.Any]) -> MyReportsSettings | None:
    token = config.get("myreports_token") or None
    refresh_token = config.get("myreports_refresh_token") or None
    if not token and not refresh_token:
        for orphan in ("myreports_client_id", "myreports_client_secret", "myreports_token_url"):
            if config.get(orphan):
                raise ConfigError(
                    "myreports_refresh_token",
                    f"is missing: '{orphan}' is only used with it",
                    f"set it ({CREDENTIALS_DOC}), or remove '{orphan}'",
                )
        return None
    token_url = None
    if refresh_token:
        if not config.get("myreports_token_url"):
            raise ConfigError(
                "myreports_token_url",
                "is missing: myreports_refresh_token needs the token endpoint",
                f"set it ({CREDENTIALS_DOC})",
            )
        token_url = check_base_url("myreports_token_url", config["myreports_token_url"])
    api_url = check_base_url(
        "myreports_api_url", config.get("myreports_api_url") or declared("myreports_api_url")["default"]
    )
    report_ids = config.get("myreports_report_ids") or []
    if not isinstance(report_ids, (list, tuple)) or not all(isinstance(x, str) and x for x in report_ids):
        raise ConfigError("myreports_report_ids", "must be a list of report id strings")
    if report_ids and not config.get("myreports_workspace_id"):
        raise ConfigError(
            "myreports_workspace_id",
            "is missing: myreports_report_ids need their workspace",
            f"set it ({CREDENTIALS_DOC})",
        )
    return MyReportsSettings(
        api_url=api_url,
        token=token,
        workspace_id=config.get("myreports_workspace_id") or None,
        report_ids=tuple(dict.fromkeys(report_ids)),
        window_days=_whole_number(config, "myreports_window_days"),
        data_lag_minutes=_whole_number(config, "myreports_data_lag_minutes"),
        lookback_minutes=_whole_number(config, "myreports_lookback_minutes"),
        refresh_token=refresh_token,
        client_id=config.get("myreports_client_id") or None if refresh_token else None,
        client_secret=config.get("myreports_client_secret") or None if refresh_token else None,
        token_url=token_url,
    )


def load_settings(config: t.Mapping[str, t.Any]) -> Settings:
    """Validate every setting and derive URLs, raising ConfigError (one line) on the first problem."""
    if not config.get("start_date"):
        raise ConfigError(
            "start_date",
            "is required",
            "set it to the earliest moment to extract (ISO 8601, e.g. 2026-01-01T00:00:00Z)",
        )
    start = parse_datetime("start_date", config["start_date"])
    end = parse_datetime("end_date", config["end_date"]) if config.get("end_date") else None
    if end is not None and end <= start:
        raise ConfigError(
            "end_date",
            f"must be after start_date ({end.isoformat()} <= {start.isoformat()})",
            "set end_date later than start_date, or leave it unset (now)",
        )
    talkdesk = _talkdesk(config)
    max_jobs = None if config.get("max_concurrent_jobs") is None else _whole_number(config, "max_concurrent_jobs")
    if talkdesk and max_jobs is not None and max_jobs > TALKDESK_MAX_CONCURRENT_JOBS:
        raise ConfigError(
            "max_concurrent_jobs",
            f"must be at most {TALKDESK_MAX_CONCURRENT_JOBS} with Talkdesk (its per-account job limit); got {max_jobs}",
            f"set it to {TALKDESK_MAX_CONCURRENT_JOBS} or less, or leave it unset",
        )
    poll = read_number(config, "job_poll_interval_seconds")
    return Settings(
        start_date=start,
        end_date=end,
        max_retries=_whole_number(config, "max_retries"),
        request_timeout_seconds=read_number(config, "request_timeout_seconds"),
        retry_backoff_base_seconds=read_number(config, "retry_backoff_base_seconds"),
        jobs=JobSettings(
            max_concurrent_jobs=max_jobs,
            poll_interval_seconds=poll,
            poll_max_interval_seconds=max(poll, read_number(config, "job_poll_max_interval_seconds")),
            timeout_seconds=read_number(config, "job_timeout_seconds"),
            max_attempts=_whole_number(config, "job_max_attempts"),
            min_window_minutes=_whole_number(config, "min_window_minutes"),
        ),
        talkdesk=talkdesk,
        zendesk=_zendesk(config),
        myreports=_myreports(config),
    )


def secret_values(config: t.Mapping[str, t.Any]) -> list[str]:
    """Every configured secret, for log redaction."""
    names = [name for name, spec in SETTINGS_SCHEMA["properties"].items() if spec.get("secret")]
    return [str(config[name]) for name in names if config.get(name)]
