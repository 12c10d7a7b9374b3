"""The report-job engine both vendors share: polling that sees a finished job soon
after it is done, and per vendor as many jobs at once as its account allows, while results are
consumed in window order.

Vendors supply `run_job(window) -> result` (create the job, poll it until its result is ready);
the engine runs as many of them on worker threads as the vendor's ceiling allows (`JobSlots`:
the vendor's limit, lowered for the run when the account turns out to be shared), so N jobs take
about as long as the slowest, and hands results back strictly in window order so bookmarks stay
true. docs/job-concurrency.md describes the schedule and the request budget.
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
import time
import typing as t
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass

from tap_callreports.errors import CallReportsError
from tap_callreports.reportjobs.job import AccountFull, JobAborted, JobTimedOut, Window

T = t.TypeVar("T")


#: Never more than two polls a second, whatever a Retry-After says.
MIN_PAUSE_SECONDS = 0.5
_hints = threading.local()


def note_retry_after(seconds: float | None) -> None:
    """A vendor answer on this thread asked to be asked again after `seconds` (its Retry-After):
    the next pause of `ReportJobEngine.wait_for` on this thread is that long."""
    if seconds is not None:
        _hints.retry_after = seconds


def _take_retry_after() -> float | None:
    seconds = getattr(_hints, "retry_after", None)
    _hints.retry_after = None
    return seconds


@dataclass(frozen=True)
class PollPolicy:
    """The pause before each poll: `interval_seconds` at first, then a share (`overshoot`) of how
    long the job has run, so a finished job is seen at most ~10 % (or one first interval) after it
    is done; never more than `max_interval_seconds`."""

    interval_seconds: float
    max_interval_seconds: float
    timeout_seconds: float
    overshoot: float = 0.1

    def pause(self, age_seconds: float) -> float:
        return min(self.max_interval_seconds, max(self.interval_seconds, self.overshoot * age_seconds))

    def polls_within(self, seconds: float) -> int:
        """How many polls a job that takes `seconds` gets (its request budget, for the docs)."""
        age, polls = 0.0, 0
        while age < seconds:
            age += self.pause(age)
            polls += 1
        return polls


class DaemonPool:
    """A fixed pool of daemon worker threads: a worker stuck in a long backoff sleep never keeps
    a failed run from exiting (ThreadPoolExecutor's threads are joined at exit)."""

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[t.Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            task()

    def run(self, task: t.Callable[[], None]) -> None:
        """Run `task` on a worker (it must not raise: it reports through its own future)."""
        self._tasks.put(task)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)


class JobSlots:
    """One vendor's jobs at once. At most `ceiling` jobs of this run are started (created, then
    polled until done); the others wait in line, in the order they were submitted. When the
    vendor refuses a creation because the account is full (other extractors, a person or a
    scheduled export hold slots), the ceiling drops to the jobs of this run the vendor still
    holds, for the rest of the run, and the refused job waits for one of them to finish (or a
    backoff) before it asks again."""

    def __init__(
        self, vendor: str, ceiling: int, logger: logging.Logger, run: t.Callable[[t.Callable[[], None]], None]
    ) -> None:
        self.vendor = vendor
        self.ceiling = ceiling
        self.logger = logger
        self._run_on_worker = run
        self.refusals = 0  # creations the vendor refused this run (each one logged once, as a wait)
        self._cond = threading.Condition()
        self._line: collections.deque[tuple[Future, t.Callable[[], t.Any]]] = collections.deque()
        self._started = 0  # jobs of this run between start and done (a refused one included)
        self._refused = 0  # of those, the ones waiting after a refusal: the vendor holds no job for them
        self._retries = 0  # jobs of this run that finished while some waited: each lets one waiter ask again
        self._probing = False  # one waiting job asks again after a pause; the others wait for a slot

    def submit(self, fn: t.Callable[[], T]) -> Future[T]:
        """Run `fn` (create a job, poll it until done) on a worker once a slot is free."""
        future: Future[T] = Future()
        with self._cond:
            self._line.append((future, fn))
            self._start_ready()
        return future

    def _start_ready(self) -> None:
        """(Holding the lock.) Start jobs from the line while the ceiling allows."""
        while self._started < self.ceiling and self._line:
            future, fn = self._line.popleft()
            if not future.set_running_or_notify_cancel():
                continue  # canceled while it waited in line
            self._started += 1
            self._run_on_worker(functools.partial(self._run, future, fn))

    def _run(self, future: Future, fn: t.Callable[[], t.Any]) -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            future.set_exception(exc)
        finally:
            with self._cond:
                self._started -= 1
                self._grant_retry()  # a slot at the vendor is free: one refused job asks again
                self._cond.notify_all()
                self._start_ready()

    def create(self, attempt: t.Callable[[], T], what: str, stop: threading.Event, poll: PollPolicy) -> T:
        """`attempt()` creates a job, or raises AccountFull: then wait and ask again, until
        `poll.timeout_seconds` after the first refusal (then one error line naming `what`)."""
        first_refusal: float | None = None
        while True:
            try:
                job = attempt()
            except AccountFull as full:
                now = time.monotonic()
                first_refusal = now if first_refusal is None else first_refusal
                waited = now - first_refusal
                if waited >= poll.timeout_seconds:
                    # Not JobTimedOut: no job was created, so none is recorded for the next run.
                    raise CallReportsError(
                        f"{what}: the {self.vendor} account stayed at its job limit for {waited:.1f}s "
                        f"({self.refusals} refusals this run, last: {full.answer}); raise job_timeout_seconds, "
                        "or run again when fewer jobs run on the account"
                    ) from None
                pause = poll.pause(waited) if full.retry_after is None else max(full.retry_after, MIN_PAUSE_SECONDS)
                pause = min(pause, poll.timeout_seconds - waited)
                with self._cond:
                    self.refusals += 1
                    self._refused += 1
                    holding = max(1, self._started - self._refused)
                    lowered = holding < self.ceiling
                    self.ceiling = min(self.ceiling, holding)
                    ceiling = self.ceiling
                self.logger.info(
                    "%s: the %s account is at its job limit (%s); waiting for a job of this run to finish, or "
                    "%.3gs, before asking again%s",
                    what,
                    self.vendor,
                    full.answer,
                    pause,
                    f"; at most {ceiling} {self.vendor} job(s) at once for the rest of the run" if lowered else "",
                )
                self._wait_for_a_slot(pause, first_refusal + poll.timeout_seconds, stop)
                if stop.is_set():
                    raise JobAborted(what) from None
                continue
            if first_refusal is not None:
                with self._cond:  # the account took one again: maybe it has room for the next waiter
                    self._grant_retry()
            return job

    def _grant_retry(self) -> None:
        """(Holding the lock.) Let one job waiting after a refusal ask again now."""
        if self._retries < self._refused:
            self._retries += 1
            self._cond.notify_all()

    #: How often a waiting job checks whether the sync stopped.
    STOP_CHECK_SECONDS = 0.5

    def _wait_for_a_slot(self, pause: float, give_up_at: float, stop: threading.Event) -> None:
        """(After a refusal.) Until a job of this run finishes (or one waiting got through), or
        `pause` passes. Only one waiting job (the prober) asks again after its pause; the others
        wait for a slot to free, so a full account gets one request per pause, not one per job."""
        with self._cond:
            prober = not self._probing
            self._probing = self._probing or prober
            deadline = time.monotonic() + pause
            try:
                while not stop.is_set():
                    if self._retries > 0:
                        self._retries -= 1
                        return
                    now = time.monotonic()
                    if now >= (deadline if prober else give_up_at):
                        return
                    if not prober and not self._probing:  # the prober got through or gave up: take over
                        prober = self._probing = True
                        deadline = now + pause
                    self._cond.wait(min((deadline if prober else give_up_at) - now, self.STOP_CHECK_SECONDS))
            finally:
                if prober:
                    self._probing = False
                    self._cond.notify_all()
                self._refused -= 1
                self._retries = min(self._retries, self._refused)


class ReportJobEngine:
    """One per tap, shared by every report stream: per vendor, a `JobSlots` ceiling on jobs at
    once (the vendor's limit, or `max_concurrent_jobs` when lower), on one pool of workers."""

    #: On shutdown, how long running jobs get to notice the stop before the run moves on.
    DRAIN_SECONDS = 5.0

    def __init__(self, ceilings: t.Mapping[str, int], poll: PollPolicy, logger: logging.Logger) -> None:
        self.poll = poll
        self.logger = logger
        self.slots = {vendor: JobSlots(vendor, ceiling, logger, self._run) for vendor, ceiling in ceilings.items()}
        self._workers = sum(ceilings.values())
        self._pool: DaemonPool | None = None
        self._lock = threading.Lock()
        self._running: set[Future] = set()
        self._open: list[OrderedJobs] = []

    def ceiling(self, vendor: str) -> int:
        """How many of `vendor`'s jobs run at once now."""
        return self.slots[vendor].ceiling

    def _run(self, task: t.Callable[[], None]) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = DaemonPool(self._workers, "report-job")
            pool = self._pool
        pool.run(task)

    def submit(self, vendor: str, fn: t.Callable[..., T], *args: t.Any) -> Future[T]:
        """Run `fn(*args)` (create a job and poll it until done) when a `vendor` slot is free."""
        future = self.slots[vendor].submit(lambda: fn(*args))
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._running.discard(future)

    def create(self, vendor: str, attempt: t.Callable[[], T], what: str, stop: threading.Event) -> T:
        """Create a job with `attempt()`; while the vendor answers that the account is full
        (AccountFull), wait for a slot and ask again (`JobSlots.create`)."""
        return self.slots[vendor].create(attempt, what, stop, self.poll)

    def wait_for(self, poll_once: t.Callable[[], T | None], what: str, stop: threading.Event) -> T:
        """Call `poll_once` until it returns a value, pausing per the poll policy (or as long as a
        Retry-After on the last answer asked: `note_retry_after`); time out loudly."""
        started = time.monotonic()
        deadline = started + self.poll.timeout_seconds
        polls = 0
        pause = self.poll.pause(0.0)
        while True:
            if stop.wait(pause):
                raise JobAborted(what)
            polls += 1
            _take_retry_after()
            result = poll_once()
            if result is not None:
                return result
            now = time.monotonic()
            if now > deadline:
                msg = (
                    f"{what}: still not ready after {self.poll.timeout_seconds:g}s ({polls} polls); "
                    "raise job_timeout_seconds or run again later"
                )
                raise JobTimedOut(msg)
            asked = _take_retry_after()
            pause = self.poll.pause(now - started) if asked is None else max(asked, MIN_PAUSE_SECONDS)
            # A Retry-After is honoured, but never past the deadline: a vendor asking for a day
            # (or a date far ahead) makes the job time out loudly, not the run hang.
            pause = min(pause, max(deadline - now, MIN_PAUSE_SECONDS))

    def ordered(
        self,
        vendor: str,
        windows: t.Iterable[Window],
        run_job: t.Callable[[Window, threading.Event], T],
        *,
        start_now: bool = False,
        while_waiting: t.Callable[[], None] | None = None,
    ) -> OrderedJobs[T]:
        """`vendor`'s jobs for `windows`, consumed in order; `start_now` submits the first ones at
        once (a stream that syncs later gets its jobs running while earlier streams are read);
        `while_waiting` is called on the consuming thread while it waits for a result."""
        jobs = OrderedJobs(self, vendor, list(windows), run_job, while_waiting)
        with self._lock:
            self._open.append(jobs)
        if start_now:
            jobs.start()
        return jobs

    def shutdown(self) -> None:
        """Stop every job still open (prefetched ones of streams that never ran included) and let
        running jobs see it (they exit at their next poll), briefly."""
        with self._lock:
            still_open, self._open = self._open, []
        for jobs in still_open:
            jobs.close()
        with self._lock:
            running = list(self._running)
            pool, self._pool = self._pool, None
        if running:
            wait_futures(running, timeout=self.DRAIN_SECONDS)
        if pool is not None:
            pool.shutdown()


class OrderedJobs(t.Generic[T]):
    """Windows in order, their jobs submitted ahead (as many as the vendor's ceiling: running,
    waiting for a slot, or ready).

    Iterate to get `(window, result)` in window order; `push_front` inserts windows to run next
    (a split window's halves). Leaving the loop early (an error) stops the pollers.
    """

    #: How often the consumer wakes while it waits, to do `while_waiting` (e.g. record new jobs).
    WAKE_SECONDS = 0.2

    def __init__(
        self,
        engine: ReportJobEngine,
        vendor: str,
        windows: list[Window],
        run_job: t.Callable[[Window, threading.Event], T],
        while_waiting: t.Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.vendor = vendor
        self.run_job = run_job
        self.while_waiting = while_waiting
        self.stop = threading.Event()
        self._pending: collections.deque[tuple[Window, Future[T] | None]] = collections.deque(
            (w, None) for w in windows
        )

    def _submit_ahead(self) -> None:
        submitted, ahead = 0, self.engine.ceiling(self.vendor)
        for index, (window, future) in enumerate(self._pending):
            if submitted >= ahead:
                break
            if future is None:
                self._pending[index] = (window, self.engine.submit(self.vendor, self.run_job, window, self.stop))
            submitted += 1

    def start(self) -> None:
        self._submit_ahead()

    @property
    def windows(self) -> list[Window]:
        return [window for window, _future in self._pending]

    def push_front(self, windows: t.Sequence[Window]) -> None:
        for window in reversed(windows):
            self._pending.appendleft((window, None))

    def recheck(self, check: t.Callable[[T, threading.Event], T]) -> None:
        """Results in hand but not read yet go through `check` on worker threads (a done job whose
        file is gone is created again there, all at once, not one by one as they are read)."""
        for index, (window, future) in enumerate(self._pending):
            if future is not None and future.done() and not future.cancelled() and future.exception() is None:
                held = future.result()
                self._pending[index] = (
                    window,
                    self.engine.submit(self.vendor, lambda stop, held=held: check(held, stop), self.stop),
                )

    def __iter__(self) -> t.Iterator[tuple[Window, T]]:
        try:
            while self._pending:
                self._submit_ahead()
                window, future = self._pending.popleft()
                assert future is not None
                result = self._result_of(future)
                self._submit_ahead()  # keep the pool busy while the caller reads this result
                yield window, result
        finally:
            self.close()

    def _result_of(self, future: Future[T]) -> T:
        if self.while_waiting is None:
            return future.result()
        while True:
            self.while_waiting()
            done, _ = wait_futures([future], timeout=self.WAKE_SECONDS)
            if done:
                self.while_waiting()
                return future.result()

    def close(self) -> None:
        self.stop.set()
        for _window, future in self._pending:
            if future is not None:
                future.cancel()
        self._pending.clear()
