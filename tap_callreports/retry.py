"""One retry policy for every vendor: how long to wait before trying a request again.

429 waits exactly its Retry-After (seconds or HTTP date) when given; everything else
retriable backs off exponentially with jitter. A token refresh after a 401 retries at once.
The SDK's backoff decorator applies it to API requests; `RetryPolicy.call` applies the same
policy to requests sent outside that decorator (token fetches).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
import typing as t
from dataclasses import dataclass

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

RETRY_AFTER_CAP_SECONDS = 15 * 60


T = t.TypeVar("T")

# What a retry can help with, as the SDK's decorator sees it (plus our RetriableAPIError).
RETRIABLE_ERRORS: tuple[type[BaseException], ...] = (
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


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 60.0

    @property
    def max_tries(self) -> int:
        return self.max_retries + 1

    def wait_seconds(self, exc: BaseException | None, attempt: int) -> float:
        """Wait before retry number `attempt` (1-based) after `exc`."""
        if isinstance(exc, TokenRefreshed):
            return 0.0
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, RETRY_AFTER_CAP_SECONDS)
        expo = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return expo * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    def call(self, attempt: t.Callable[[], T], *, what: str, logger: logging.Logger) -> T:
        """`attempt()` under this policy: retriable failures are tried again (one log line each,
        naming `what`, which must hold no secret), at most `max_retries` times, then RetriesExhausted."""
        for number in range(1, self.max_tries + 1):
            try:
                return attempt()
            except RETRIABLE_ERRORS as exc:
                reason = _describe(exc)
                if number == self.max_tries:
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
