"""One retry policy for every vendor: how long to wait before trying a request again.

429 waits exactly its Retry-After (seconds or HTTP date) when given; everything else
retriable backs off exponentially with jitter. A token refresh after a 401 retries at once.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import typing as t
from dataclasses import dataclass

from singer_sdk.exceptions import RetriableAPIError

RETRY_AFTER_CAP_SECONDS = 15 * 60


class TokenRefreshed(RetriableAPIError):
    """A 401 made the authenticator drop its token: retry at once with a new one."""


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
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
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

    def wait_generator(self) -> t.Generator[float, BaseException | None, None]:
        """A backoff wait generator: backoff sends each exception in, we yield the wait."""
        attempt = 0
        exc = yield 0.0  # priming send(None)
        while True:
            attempt += 1
            exc = yield self.wait_seconds(exc, attempt)
