"""The report-job engine both vendors share: windows, polling with growing intervals, and a
bounded pool of jobs running at once while their results are consumed in window order.

Vendors supply `run_job(window) -> result` (create the job, poll it until its result is ready);
the engine runs up to `max_concurrent` of them on worker threads, so N jobs take about as long
as the slowest, and hands results back strictly in window order so bookmarks stay true.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import queue
import threading
import time
import typing as t
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass

from tap_callreports.timeutil import iso_z

T = t.TypeVar("T")


@dataclass(frozen=True, order=True)
class Window:
    """[start, end): start inclusive, end exclusive, both UTC."""

    start: dt.datetime
    end: dt.datetime

    def halves(self) -> tuple[Window, Window]:
        middle = self.start + (self.end - self.start) / 2
        middle = middle.replace(microsecond=0)
        if not self.start < middle < self.end:
            msg = f"window {self} cannot be split further"
            raise ValueError(msg)
        return Window(self.start, middle), Window(middle, self.end)

    def split_at(self, moment: dt.datetime) -> tuple[Window, Window]:
        return Window(self.start, moment), Window(moment, self.end)

    def __str__(self) -> str:
        return f"{iso_z(self.start)}..{iso_z(self.end)}"


def plan_windows(start: dt.datetime, end: dt.datetime, days: int) -> list[Window]:
    """Consecutive windows of `days` from start; the last one ends at `end`."""
    windows = []
    step = dt.timedelta(days=days)
    cursor = start
    while cursor < end:
        windows.append(Window(cursor, min(cursor + step, end)))
        cursor += step
    return windows


class JobAborted(Exception):
    """The sync stopped (an error elsewhere): pollers give up quietly."""


class JobTimedOut(Exception):
    pass


@dataclass(frozen=True)
class PollPolicy:
    interval_seconds: float
    max_interval_seconds: float
    timeout_seconds: float
    growth: float = 1.5

    def intervals(self) -> t.Iterator[float]:
        wait = self.interval_seconds
        while True:
            yield wait
            wait = min(self.max_interval_seconds, wait * self.growth)


class DaemonPool:
    """A fixed pool of daemon worker threads: a worker stuck in a long backoff sleep never keeps
    a failed run from exiting (ThreadPoolExecutor's threads are joined at exit)."""

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future, t.Callable[[], t.Any]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, call = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                future.set_exception(exc)

    def submit(self, fn: t.Callable[..., T], *args: t.Any) -> Future[T]:
        future: Future[T] = Future()
        self._tasks.put((future, lambda: fn(*args)))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)


class ReportJobEngine:
    """One per tap: the worker pool is shared by every report stream."""

    #: On shutdown, how long running jobs get to notice the stop before the run moves on.
    DRAIN_SECONDS = 5.0

    def __init__(self, max_concurrent: int, poll: PollPolicy, logger: logging.Logger) -> None:
        self.max_concurrent = max_concurrent
        self.poll = poll
        self.logger = logger
        self._pool: DaemonPool | None = None
        self._lock = threading.Lock()
        self._running: set[Future] = set()
        self._open: list[OrderedJobs] = []

    @property
    def pool(self) -> DaemonPool:
        with self._lock:
            if self._pool is None:
                self._pool = DaemonPool(self.max_concurrent, "report-job")
            return self._pool

    def submit(self, fn: t.Callable[..., T], *args: t.Any) -> Future[T]:
        future = self.pool.submit(fn, *args)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._running.discard(future)

    def wait_for(self, poll_once: t.Callable[[], T | None], what: str, stop: threading.Event) -> T:
        """Call `poll_once` with growing pauses until it returns a value; time out loudly."""
        deadline = time.monotonic() + self.poll.timeout_seconds
        polls = 0
        for pause in self.poll.intervals():
            if stop.wait(pause):
                raise JobAborted(what)
            polls += 1
            result = poll_once()
            if result is not None:
                return result
            if time.monotonic() > deadline:
                msg = (f"{what}: still not ready after {self.poll.timeout_seconds:g}s ({polls} polls); "
                       "raise job_timeout_seconds or run again later")
                raise JobTimedOut(msg)
        raise AssertionError("unreachable")  # pragma: no cover

    def ordered(self, windows: t.Iterable[Window], run_job: t.Callable[[Window, threading.Event], T], *,
                start_now: bool = False, while_waiting: t.Callable[[], None] | None = None) -> OrderedJobs[T]:
        """Jobs for `windows`, consumed in order; `start_now` submits the first ones at once
        (a stream that syncs later gets its jobs running while earlier streams are read);
        `while_waiting` is called on the consuming thread while it waits for a result."""
        jobs = OrderedJobs(self, list(windows), run_job, while_waiting)
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
    """Windows in order, their jobs started ahead (at most `max_concurrent` running or ready).

    Iterate to get `(window, result)` in window order; `push_front` inserts windows to run next
    (a split window's halves). Leaving the loop early (an error) stops the pollers.
    """

    #: How often the consumer wakes while it waits, to do `while_waiting` (e.g. record new jobs).
    WAKE_SECONDS = 0.2

    def __init__(self, engine: ReportJobEngine, windows: list[Window],
                 run_job: t.Callable[[Window, threading.Event], T],
                 while_waiting: t.Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.run_job = run_job
        self.while_waiting = while_waiting
        self.stop = threading.Event()
        self._pending: collections.deque[tuple[Window, Future[T] | None]] = collections.deque(
            (w, None) for w in windows)

    def _submit_ahead(self) -> None:
        submitted = 0
        for index, (window, future) in enumerate(self._pending):
            if submitted >= self.engine.max_concurrent:
                break
            if future is None:
                self._pending[index] = (window, self.engine.submit(self.run_job, window, self.stop))
            submitted += 1

    def start(self) -> None:
        self._submit_ahead()

    @property
    def windows(self) -> list[Window]:
        return [window for window, _future in self._pending]

    def push_front(self, windows: t.Sequence[Window]) -> None:
        for window in reversed(windows):
            self._pending.appendleft((window, None))

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
