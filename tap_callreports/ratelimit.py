"""Rate limits, in one place: what an answer says about when to ask again (`Backoff`, `RateLimited`),
and request pacing: at most N requests in any W seconds to one endpoint, so its limit is never hit.

An answer's Retry-After (or a spent rate-limit window) is read once, here, into a `Backoff` value
that is handed on, never kept aside: a retriable answer raises `RateLimited` carrying it (the retry
policy waits it, the SDK's paging and the tap's own requests alike; a job creation refused by a
full account becomes AccountFull with it); a job poll returns it (the engine polls again then); a
download that is not ready yet waits it; a pacer `hold`s it for the next request.

A vendor that states a per-endpoint budget (Zendesk Talk's incremental exports: 10 requests a
minute) is asked at that pace instead of being asked until it answers 429. `Pacer.wait()` goes
before each try of a request (retries too), `Pacer.sent()` after its answer (whatever it was), and
`Pacer.hold()` takes a wait the vendor asks for (Retry-After, an exhausted rate-limit header). A
limit the vendor states nowhere but in its answers' headers (Zendesk's account-wide one) is a pacer
without a budget: only its holds make requests wait. Nothing here sleeps inside the handling of an
answer: the wait is paid before the next request.

Each request is counted from the moment its answer came back, not from when it was sent: the
vendor counted it somewhere in between, so N answers within any W seconds of the next send mean the
vendor may count N requests in one window; waiting for the oldest to leave the window keeps every
window of the vendor's (fixed or sliding) at N at most. Requests of one endpoint are sequential
(one stream at a time reads it), so no lock orders them beyond the bookkeeping's.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time
import typing as t
import weakref
from collections import deque
from dataclasses import dataclass, field

from singer_sdk.exceptions import RetriableAPIError

if t.TYPE_CHECKING:
    import requests

#: The longest a retry waits for a Retry-After: a vendor asking for more is asked again then.
RETRY_AFTER_CAP_SECONDS = 15 * 60


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
class Backoff:
    """An answer asked the tap to wait `seconds` before asking again (its Retry-After, or the reset
    of a spent rate-limit window)."""

    seconds: float

    @property
    def capped(self) -> float:
        """The wait a retry keeps to: never longer than RETRY_AFTER_CAP_SECONDS."""
        return min(self.seconds, RETRY_AFTER_CAP_SECONDS)

    @classmethod
    def asked_by(cls, response: requests.Response | None) -> Backoff | None:
        """The wait `response`'s Retry-After asks for; None when it asks none (or says no time)."""
        seconds = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        return None if seconds is None else cls(seconds)

    @classmethod
    def window_spent(cls, response: requests.Response, floor: int, window_seconds: float) -> Backoff | None:
        """A vendor that counts the account's requests in its answers (X-Rate-Limit-Remaining, as
        Zendesk does): with `floor` or fewer left, wait until the window resets (`ratelimit-reset`,
        else a whole `window_seconds`) instead of spending a 429; None while more are left."""
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        try:
            left = int(remaining) if remaining is not None else None
        except ValueError:
            left = None
        if left is None or left > floor:
            return None
        seconds = parse_retry_after(response.headers.get("ratelimit-reset"))
        return cls(window_seconds if seconds is None else seconds)


class RateLimited(RetriableAPIError):
    """A retriable answer (a 429, a 5xx): `backoff`, its Retry-After read once (None: it asked for
    no time, the retry policy's own backoff applies). `limited`: the answer was a 429."""

    def __init__(self, message: str, response: requests.Response) -> None:
        super().__init__(message, response)
        self.backoff = Backoff.asked_by(response)
        self.limited = response.status_code == 429  # noqa: PLR2004 - Too Many Requests


@dataclass(frozen=True)
class Budget:
    """`requests` per `window_seconds` (a vendor's stated limit). `even`: spread them evenly (one
    every window/requests seconds) rather than in bursts, so that no window of the vendor's, however
    it is placed, ever holds more, and a short run costs no more than a long one per request."""

    requests: int
    window_seconds: float = 60.0
    even: bool = True

    @property
    def seconds_per_request(self) -> float:
        """The pace a long read settles at (for the time-left estimates of progress lines)."""
        return self.window_seconds / self.requests

    @property
    def slots(self) -> tuple[int, float]:
        """(requests, seconds) the pacer keeps to: the budget, or one per share of it when even."""
        return (1, self.seconds_per_request) if self.even else (self.requests, self.window_seconds)

    def describe(self) -> str:
        if self.window_seconds == 60.0:  # noqa: PLR2004 - the common case reads as a rate per minute
            return f"{self.requests} requests/minute"
        return f"{self.requests} requests per {self.window_seconds:g}s"


@dataclass
class Pacer:
    """The requests to one endpoint within its budget (see the module's docstring)."""

    #: The endpoint's own budget; None when the vendor states none and only its answers say when
    #: to pause (`hold`): Zendesk's account-wide limit, told by its rate-limit headers.
    budget: Budget | None
    clock: t.Callable[[], float] = time.monotonic
    sleep: t.Callable[[float], None] = time.sleep
    _answered: deque[float] = field(default_factory=deque)
    _not_before: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Seconds waited so far, and how many requests had to wait (for logs and the bench).
    waited_seconds: float = 0.0
    waits: int = 0

    def delay(self) -> float:
        """Seconds to wait before the next request may go."""
        with self._lock:
            now = self.clock()
            free_at = now
            if self.budget is not None:
                requests, window = self.budget.slots
                while self._answered and self._answered[0] <= now - window:
                    self._answered.popleft()
                if len(self._answered) >= requests:
                    # the oldest answers must leave the window until one place is free
                    free_at = self._answered[len(self._answered) - requests] + window
            return max(0.0, free_at - now, self._not_before - now)

    def wait(self) -> float:
        """Sleep until the next request may go; the seconds slept."""
        wait = self.delay()
        if wait > 0:
            self.sleep(wait)
            with self._lock:
                self.waited_seconds += wait
                self.waits += 1
        return wait

    def sent(self) -> None:
        """A request was answered (any status: the vendor counted it)."""
        with self._lock:
            if self.budget is None:
                return
            self._answered.append(self.clock())
            while len(self._answered) > self.budget.slots[0]:
                self._answered.popleft()

    def hold(self, seconds: float) -> None:
        """The vendor asked for a pause (Retry-After, a spent rate-limit window): no request before."""
        with self._lock:
            self._not_before = max(self._not_before, self.clock() + seconds)


_PACERS: weakref.WeakKeyDictionary[object, dict[tuple[str, Budget | None], Pacer]] = weakref.WeakKeyDictionary()
_PACERS_LOCK = threading.Lock()


def pacer_for(run: object, endpoint: str, budget: Budget | None) -> Pacer:
    """The run's one pacer of `endpoint` (a URL without its query, the path the endpoints sharing one
    limit start with, or an API base for a limit of the whole account) at `budget` (`run`: the tap object): every stream or check of the run that asks
    it shares it, so a run never spends one budget twice."""
    with _PACERS_LOCK:
        pacers = _PACERS.setdefault(run, {})
        key = (endpoint, budget)
        if key not in pacers:
            pacers[key] = Pacer(budget)
        return pacers[key]
