"""The tap's own errors: each one is a single line that names the stream and what to do."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError

if t.TYPE_CHECKING:
    import requests


class CallReportsError(Exception):
    """An error the user can act on; printed as one line, exit code 1."""


#: What to do about a bad setting when nothing more precise can be said.
FIX_THE_SETTING = "correct it in the config (docs/settings.md describes every setting)"


class ConfigError(CallReportsError):
    """A bad setting, caught before any request is sent: what is wrong with it, then what to do."""

    def __init__(self, setting: str, problem: str, fix: str = FIX_THE_SETTING) -> None:
        self.setting = setting
        super().__init__(f"config: setting '{setting}' {problem}; {fix}")


class StreamError(CallReportsError):
    """A fatal problem while syncing one stream."""

    def __init__(self, stream: str, message: str) -> None:
        self.stream = stream
        super().__init__(f"{stream}: {message}")


class ReportJobFailed(StreamError):
    """A vendor report job ended failed, canceled or deleted (after the allowed attempts)."""


class MalformedBodyError(StreamError):
    """A response body that is not the JSON (or CSV) the vendor documents."""


def unreachable_line(host: str, reason: str, attempts: int, settings: str) -> str:
    """A host that could not be reached, said the same way for every vendor and every request
    (token, list, report job, download): what failed, then what to check."""
    return (
        f"cannot reach {host} ({reason}; {attempts} attempt(s)); check {settings} and that this "
        f"machine can reach {host} (network, proxy, firewall), then run again"
    )


class VendorRefused(FatalAPIError):
    """A 4xx other than 429: fatal, with its status for callers that treat one specially (404)."""

    def __init__(self, message: str, response: requests.Response) -> None:
        super().__init__(message)
        self.status = response.status_code
        self.url = response.url


class AccountFull(Exception):
    """The vendor refused to create a job because the account holds as many as it allows (a 429,
    or the vendor's documented too-many-jobs answer): wait for a slot, do not fail."""

    def __init__(self, answer: str, retry_after: float | None = None) -> None:
        super().__init__(answer)
        self.answer = answer
        self.retry_after = retry_after


class TerminatedBySignal(BaseException):
    """SIGTERM/SIGINT: the run stops; the last STATE written is where the next run resumes.

    A BaseException, as KeyboardInterrupt is: raised from the signal handler wherever the main
    thread happens to be, it must not be swallowed by an `except Exception` on the way out
    (logging's Handler.emit has one, and the main thread logs a lot).
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by signal {signum}; run again: it resumes from the last STATE written")
