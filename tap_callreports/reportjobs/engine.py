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
import heapq
import logging
import queue
import threading
import time
import typing as t
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass

from tap_callreports.errors import AccountFull, CallReportsError
from tap_callreports.ratelimit import Backoff
from tap_callreports.reportjobs.job import JobAborted, JobTimedOut, Window
from tap_callreports.timeutil import duration_text

T = t.TypeVar("T")


#: Never more than two polls a second, whatever a Retry-After says.
MIN_PAUSE_SECONDS = 0.5


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


#: Done jobs whose results are not read yet, per slot, before the next job waits for the reader:
#: the slots stay full while the reader is on other streams (another vendor's, read first), and a
#: reader far behind the vendor (a backfill of thousands of windows) does not pile up results and
#: STATE records without end.
UNREAD_PER_SLOT = 8


class JobSlots:
    """One vendor's jobs at once. At most `ceiling` jobs of this run are started (created, then
    polled until done), and while `UNREAD_PER_SLOT` x `ceiling` done jobs wait to be read, no more
    start; the others wait in line, the first-ranked first. When the
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
        #: Jobs waiting for a slot, each with its priority (`submit`'s `rank`): the lowest starts next.
        self._line: list[tuple[t.Callable[[], tuple], int, Future, t.Callable[[], t.Any]]] = []
        self._submitted = 0
        #: For the outlook: when each running job started, and how long finished ones took.
        self._running_since: dict[Future, float] = {}
        self.finished = 0
        self._took: collections.deque[float] = collections.deque(maxlen=50)
        self._unread: set[Future] = set()  # done, their results not taken by the reader yet
        self._started = 0  # jobs of this run between start and done (a refused one included)
        self._refused = 0  # of those, the ones waiting after a refusal: the vendor holds no job for them
        self._retries = 0  # jobs of this run that finished while some waited: each lets one waiter ask again
        self._probing = False  # one waiting job asks again after a pause; the others wait for a slot

    def submit(self, fn: t.Callable[[], T], rank: t.Callable[[], tuple] = tuple) -> Future[T]:
        """Run `fn` (create a job, poll it until done) on a worker once a slot is free. When a slot
        frees, the waiting job whose `rank()` is lowest starts (then the one submitted first); a
        rank that starts with False (a job of the stream being read) starts even while enough
        results wait unread."""
        future: Future[T] = Future()
        with self._cond:
            self._submitted += 1
            self._line.append((rank, self._submitted, future, fn))
            self._start_ready()
        return future

    def _start_ready(self) -> None:
        """(Holding the lock.) Start jobs from the line while the ceiling allows, the first-ranked
        first (ranks change as streams start reading: a short line, ranked when a slot frees)."""
        if any(entry[2].cancelled() for entry in self._line):  # a stream that stopped: its jobs leave the line
            self._line = [entry for entry in self._line if not entry[2].cancelled()]
        while self._started < self.ceiling and self._line:
            ranks = [(entry[0](), entry[1]) for entry in self._line]
            first = min(range(len(ranks)), key=ranks.__getitem__)
            if ranks[first][0][:1] != (False,) and len(self._unread) >= UNREAD_PER_SLOT * self.ceiling:
                break  # enough results wait for the reader; a job it waits for (rank (False, ...)) still starts
            _rank, _seq, future, fn = self._line.pop(first)
            if not future.set_running_or_notify_cancel():
                continue  # canceled while it waited in line
            self._started += 1
            self._running_since[future] = time.monotonic()
            self._run_on_worker(functools.partial(self._run, future, fn))

    def _run(self, future: Future, fn: t.Callable[[], t.Any]) -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            future.set_exception(exc)
        finally:
            with self._cond:
                since = self._running_since.pop(future, None)
                if since is not None and not future.exception():
                    self.finished += 1
                    self._took.append(time.monotonic() - since)
                self._unread.add(future)
                self._started -= 1
                self._grant_retry()  # a slot at the vendor is free: one refused job asks again
                self._cond.notify_all()
                self._start_ready()

    def taken(self, future: Future) -> None:
        """The reader took `future`'s result (or will never): it no longer counts as unread."""
        with self._cond:
            if future in self._unread:
                self._unread.discard(future)
                self._start_ready()

    def time_left(self) -> float | None:
        """Seconds until every job of this vendor submitted so far is done, if jobs keep taking
        what the recent ones took and the ceiling stays: running jobs finish at that age, waiting
        ones start as slots free. None before a job finished (nothing to go by); 0 with none left."""
        with self._cond:
            waiting = sum(1 for entry in self._line if not entry[2].done())
            now = time.monotonic()
            ages = [now - since for since in self._running_since.values()]
            if not self._took:
                return None if waiting or ages else 0.0
            took = sorted(self._took)[len(self._took) // 2]
            ceiling = max(1, self.ceiling)
        slots = sorted(max(0.0, took - age) for age in ages)[:ceiling]
        slots += [0.0] * (ceiling - len(slots))
        heapq.heapify(slots)
        for _ in range(waiting):
            heapq.heapreplace(slots, slots[0] + took)
        return max(slots) if waiting or ages else 0.0

    def rounds(self) -> float:
        """How many rounds of jobs this vendor has before its last is done (jobs not finished per
        slot): the vendor whose jobs end first has its streams read first (`TapCallReports`)."""
        finished, running, waiting = self.counts()
        return (running + waiting) / max(1, self.ceiling)

    def counts(self) -> tuple[int, int, int]:
        """(finished, running, waiting) jobs of this vendor so far."""
        with self._cond:
            waiting = sum(1 for entry in self._line if not entry[2].done())
            return self.finished, len(self._running_since), waiting

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
        self._open_ever: list[None] = []  # one per OrderedJobs made: their order, for the job line

    def ceiling(self, vendor: str) -> int:
        """How many of `vendor`'s jobs run at once now."""
        return self.slots[vendor].ceiling

    def _run(self, task: t.Callable[[], None]) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = DaemonPool(self._workers, "report-job")
            pool = self._pool
        pool.run(task)

    def submit(
        self, vendor: str, fn: t.Callable[..., T], *args: t.Any, rank: t.Callable[[], tuple] = tuple
    ) -> Future[T]:
        """Run `fn(*args)` (create a job and poll it until done) when a `vendor` slot is free
        (the lowest `rank()` first)."""
        future = self.slots[vendor].submit(lambda: fn(*args), rank)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._running.discard(future)

    def outlook(self) -> str:
        """The report jobs of the whole run (every stream), for the progress lines: per vendor the
        jobs done of those submitted and the ones running, and about how long until the last is
        done (`JobSlots.time_left`), e.g. `report jobs of the run: talkdesk 45/104 done, 15
        running; myreports 26/26 done; the last about 1m20s from now`."""
        parts, longest = [], 0.0
        for vendor, slots in self.slots.items():
            finished, running, waiting = slots.counts()
            if not (finished or running or waiting):
                continue
            left = slots.time_left()
            parts.append(
                f"{vendor} {finished}/{finished + running + waiting} done" + (f", {running} running" if running else "")
            )
            longest = max(longest, left if left is not None else float("inf"))
        if not parts:
            return ""
        if longest == float("inf"):
            when = "time left not known until a job is done"
        elif longest > 0:
            when = f"the last about {duration_text(longest)} from now"
        else:
            when = "none left"
        return f"report jobs of the run: {'; '.join(parts)}; {when}"

    def create(self, vendor: str, attempt: t.Callable[[], T], what: str, stop: threading.Event) -> T:
        """Create a job with `attempt()`; while the vendor answers that the account is full
        (AccountFull), wait for a slot and ask again (`JobSlots.create`)."""
        return self.slots[vendor].create(attempt, what, stop, self.poll)

    def wait_for(
        self,
        poll_once: t.Callable[[], T | Backoff | None],
        what: str,
        stop: threading.Event,
        since: float | None = None,
    ) -> T:
        """Call `poll_once` until it returns a value, pausing per the poll policy, or as long as the
        answer asked when it returns a Backoff instead (its Retry-After: the job is not done yet);
        time out loudly.

        The polls keep to the policy's schedule counted from `since` (when the vendor answered the
        job's creation; default now), not from the end of each poll: a slow answer does not push
        every later poll back, so a job that takes 20 s is seen at 20 s, not 20 s plus the polls'
        own time. Never two polls closer than MIN_PAUSE_SECONDS."""
        started = time.monotonic() if since is None else since
        deadline = started + self.poll.timeout_seconds
        polls = 0
        poll_at = started + self.poll.pause(0.0)
        while True:
            if stop.wait(max(0.0, poll_at - time.monotonic())):
                raise JobAborted(what)
            polls += 1
            result = poll_once()
            if result is not None and not isinstance(result, Backoff):
                return result
            now = time.monotonic()
            if now > deadline:
                msg = (
                    f"{what}: still not ready after {self.poll.timeout_seconds:g}s ({polls} polls); "
                    "raise job_timeout_seconds or run again later"
                )
                raise JobTimedOut(msg)
            if result is None:
                poll_at = max(poll_at + self.poll.pause(poll_at - started), now + MIN_PAUSE_SECONDS)
            else:
                poll_at = now + max(result.seconds, MIN_PAUSE_SECONDS)
            # A Retry-After is honoured, but never past the deadline: a vendor asking for a day
            # (or a date far ahead) makes the job time out loudly, not the run hang.
            poll_at = min(poll_at, max(deadline, now + MIN_PAUSE_SECONDS))

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
        with self._lock:
            jobs = OrderedJobs(self, vendor, list(windows), run_job, while_waiting, order=len(self._open_ever))
            self._open_ever.append(None)
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
    """Windows in order, every one's job submitted at once: they start as the vendor's slots free,
    so the account stays full from the first minute to the last, whatever stream is being read.

    A freed slot goes to the waiting job ranked first: jobs of a stream being read before those of
    streams not read yet, then streams in the order they were planned (the order they are read),
    then windows in order. Iterate to get `(window, result)` in window order; `push_front` inserts
    windows to run next (a split window's halves). Leaving the loop early (an error) stops the
    pollers and takes this stream's waiting jobs out of the line.
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
        order: int = 0,
    ) -> None:
        self.engine = engine
        self.vendor = vendor
        self.run_job = run_job
        self.while_waiting = while_waiting
        self.stop = threading.Event()
        self.order = order
        self.reading = False
        self._pending: collections.deque[tuple[Window, Future[T] | None]] = collections.deque(
            (w, None) for w in windows
        )
        self._ranks = 0  # window positions handed out in order
        self._front = 0  # `push_front` hands out positions below every earlier one

    def _rank(self, position: int) -> t.Callable[[], tuple]:
        return lambda: (not self.reading, self.order, position)

    def _submit_all(self) -> None:
        for index, (window, future) in enumerate(self._pending):
            if future is None:
                position = self._ranks
                self._ranks += 1
                rank = self._rank(position)
                self._pending[index] = (
                    window,
                    self.engine.submit(self.vendor, self.run_job, window, self.stop, rank=rank),
                )

    def start(self) -> None:
        self._submit_all()

    @property
    def windows(self) -> list[Window]:
        return [window for window, _future in self._pending]

    def push_front(self, windows: t.Sequence[Window]) -> None:
        """Windows to read next (a split window's halves): their jobs go before this stream's others."""
        self._front -= len(windows)
        front = self._front
        for offset, window in enumerate(windows):
            future = self.engine.submit(self.vendor, self.run_job, window, self.stop, rank=self._rank(front + offset))
            self._pending.insert(offset, (window, future))

    def recheck(self, check: t.Callable[[T, threading.Event], T]) -> None:
        """Results in hand but not read yet go through `check` on worker threads (a done job whose
        file is gone is created again there, all at once, not one by one as they are read)."""
        base = self._front = self._front - len(self._pending)  # ranked as this stream's own (never held back)
        slots = self.engine.slots[self.vendor]
        for index, (window, future) in enumerate(self._pending):
            if future is not None and future.done() and not future.cancelled() and future.exception() is None:
                held = future.result()
                slots.taken(future)  # replaced by the check's
                self._pending[index] = (
                    window,
                    self.engine.submit(
                        self.vendor,
                        lambda stop, held=held: check(held, stop),
                        self.stop,
                        rank=self._rank(base + index),
                    ),
                )

    def run_now(self, fn: t.Callable[[threading.Event], T]) -> T:
        """Run `fn(stop)` on a worker before every waiting job (the job of the window being read,
        created again) and wait for its result: within the vendor's slots, as every job is."""
        self._front -= 1
        future = self.engine.submit(self.vendor, fn, self.stop, rank=self._rank(self._front))
        try:
            return self._result_of(future)
        finally:
            self.engine.slots[self.vendor].taken(future)

    def __iter__(self) -> t.Iterator[tuple[Window, T]]:
        self.reading = True  # its waiting jobs go first from now on
        try:
            self._submit_all()
            while self._pending:
                window, future = self._pending.popleft()
                assert future is not None
                try:
                    result = self._result_of(future)
                finally:
                    self.engine.slots[self.vendor].taken(future)
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
        slots = self.engine.slots[self.vendor]
        for _window, future in self._pending:
            if future is not None:
                future.cancel()
                slots.taken(future)  # never read
        self._pending.clear()
