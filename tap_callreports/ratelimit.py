"""Request pacing: at most N requests in any W seconds to one endpoint, so its limit is never hit.

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

import threading
import time
import typing as t
import weakref
from collections import deque
from dataclasses import dataclass, field


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
