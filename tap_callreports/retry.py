"""One retry policy for every vendor: how long to wait before trying a request again.

429 waits exactly its Retry-After (seconds or HTTP date; read once, in ratelimit.py) when given; everything else
retriable backs off exponentially with jitter. A token refresh after a 401 retries at once.
The SDK's backoff decorator applies it to API requests; `RetryPolicy.call` applies the same
policy to requests sent outside that decorator (token fetches).
"""

from __future__ import annotations

import logging
import random
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_callreports.ratelimit import Backoff, RateLimited

if t.TYPE_CHECKING:
    from tap_callreports.settings import Settings

T = t.TypeVar("T")

# What a retry can help with, as the SDK's decorator sees it (plus our RetriableAPIError).
RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class TokenRefreshed(RetriableAPIError):
    """A 401 made the authenticator drop its token: retry at once with a new one."""


class RetriesExhausted(FatalAPIError):
    """Every try of a request outside the SDK's loop failed. Fatal, so an outer retry loop
    (the SDK's decorator around a request whose token fetch this was) does not start over."""


class HostUnreachable(RetriesExhausted):
    """Every try failed to connect (refused, name not resolved, TLS, connect timeout): the host,
    the reason in words and the number of attempts, for the one line that says what to check."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        super().__init__(f"cannot reach {host_of(url)} ({reason}; {attempts} attempt(s))")
        self.url, self.reason, self.attempts = url, reason, attempts


def host_of(url: str) -> str:
    """host[:port] of a URL, without any user info."""
    return urlsplit(url).netloc.rpartition("@")[2]


def connection_failure(exc: BaseException) -> str | None:
    """Why a connection could not be made, in words (no URL: requests' messages carry query
    strings); None when `exc` is not a failure to connect."""
    if not isinstance(exc, requests.exceptions.ConnectionError) or isinstance(
        exc, requests.exceptions.ChunkedEncodingError
    ):
        return None
    text = str(exc)
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not resolved"),
        ("nodename nor servname", "host name not resolved"),
        ("Temporary failure in name resolution", "host name not resolved"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
    ):
        if needle in text:
            return words
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy refused"
    return type(exc).__name__


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 60.0

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        """The policy a config sets (max_retries, retry_backoff_base_seconds)."""
        return cls(max_retries=settings.max_retries, base_seconds=settings.retry_backoff_base_seconds)

    @property
    def max_tries(self) -> int:
        return self.max_retries + 1

    def wait_seconds(self, exc: BaseException | None, attempt: int) -> float:
        """Wait before retry number `attempt` (1-based) after `exc`."""
        if isinstance(exc, TokenRefreshed):
            return 0.0
        asked = exc.backoff if isinstance(exc, RateLimited) else Backoff.asked_by(getattr(exc, "response", None))
        if asked is not None:
            return asked.capped
        expo = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return expo * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    def call(self, attempt: t.Callable[[], T], *, what: str, logger: logging.Logger, url: str | None = None) -> T:
        """`attempt()` under this policy: retriable failures are tried again (one log line each,
        naming `what`, which must hold no secret), at most `max_retries` times, then RetriesExhausted
        (HostUnreachable when `url`'s host could not be reached)."""
        for number in range(1, self.max_tries + 1):
            try:
                return attempt()
            except RETRIABLE_ERRORS as exc:
                reason = _describe(exc)
                if number == self.max_tries:
                    cause = exc.__cause__ if isinstance(exc, RetriableAPIError) else exc
                    unreachable = connection_failure(cause) if cause is not None else None
                    if unreachable and url:
                        raise HostUnreachable(url, unreachable, self.max_tries) from None
                    raise RetriesExhausted(
                        f"gave up after {self.max_tries} attempts: {what} failed: {reason}; "
                        "run again later or raise max_retries"
                    ) from None
                wait = self.wait_seconds(exc, number)
                logger.warning(
                    "%s: retrying in %.1fs (attempt %d of %d) after %s", what, wait, number + 1, self.max_tries, reason
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def wait_generator(self) -> t.Generator[float, BaseException | None, None]:
        """A backoff wait generator: backoff sends each exception in, we yield the wait."""
        attempt = 0
        exc = yield 0.0  # priming send(None)
        while True:
            attempt += 1
            exc = yield self.wait_seconds(exc, attempt)


def _describe(exc: BaseException) -> str:
    """A retriable failure in words: our RetriableAPIError messages, else the exception's type
    (requests' messages carry full URLs, query strings included)."""
    if isinstance(exc, RetriableAPIError) and exc.args:
        return str(exc.args[0])
    return type(exc).__name__
