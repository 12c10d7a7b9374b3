"""What a report job is: its window, what a poll found, what a finished job hands to the reader,
the phases a vendor's status words map to, and the errors of a job's life."""

from __future__ import annotations

import datetime as dt
import enum
import threading
import typing as t
from dataclasses import dataclass

from tap_callreports.redact import REGISTRY
from tap_callreports.timeutil import iso_z


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


class SplitWindow(Exception):
    """Run these windows instead of the one being read (nothing of it was emitted)."""

    def __init__(self, windows: t.Sequence[Window], reason: str) -> None:
        super().__init__(reason)
        self.windows = list(windows)
        self.reason = reason


@dataclass
class JobResult:
    """One job of a window, from its creation (or its record in the STATE) to its rows: the vendor's
    id, where the rows are once it is done, what the polls and the reader learnt, and the vendor's
    own details (`vendor`: talkdesk/jobs.py `TalkdeskJob`, myreports/requests.py `MyReportsRequest`).
    `created_at`, `timezone` and `requested_start` are kept in the STATE with the job (`state.py`)."""

    job_id: str
    window: Window
    attempt: int
    location: str = ""
    #: When the tap created the job (UTC text); None for a record that did not say.
    created_at: str | None = None
    #: The zone the job was requested in: how its rows' wall times are read.
    timezone: str | None = None
    #: The start the request asked from, when before the window's (MyReports' overlap).
    requested_start: str | None = None
    #: The vendor's last status word for the job (None until a poll or the creation said one).
    status: t.Any = None
    #: The vendor's words beside the status (MyReports' statusMessage).
    status_message: t.Any = None
    polls: int = 0
    #: What the reader found the result's counts say (`completeness.verify_counts`).
    verdict: str | None = None
    vendor: t.Any = None


class JobPhase(enum.Enum):
    """What a vendor's job status word means to the engine; a poll's answer in one of the terminal
    phases (`terminal`: DONE, ENDED) ends the polling."""

    RUNNING = "running"
    DONE = "done"
    ENDED = "ended"  # failed, canceled, deleted: the job is created again

    @property
    def terminal(self) -> bool:
        return self is not JobPhase.RUNNING


@dataclass(frozen=True)
class JobStatus:
    """What one poll found, once the job is over (`phase`, terminal): DONE with the `location` its
    rows are downloaded from, or ENDED with the vendor's `word` for it (failed, canceled, deleted;
    or "gone (...)" when the vendor no longer has the job). A poll that finds the job still running
    returns no JobStatus (`VendorJobs.poll`: the wait its answer asked for, or None)."""

    phase: JobPhase
    location: str = ""
    word: str = ""

    def __post_init__(self) -> None:
        if not self.phase.terminal:
            msg = "a JobStatus is a terminal phase: DONE or ENDED"
            raise ValueError(msg)

    @classmethod
    def done_at(cls, location: str) -> JobStatus:
        return cls(JobPhase.DONE, location=location)

    @classmethod
    def ended_as(cls, word: str) -> JobStatus:
        return cls(JobPhase.ENDED, word=word)

    @property
    def done(self) -> bool:
        """The job is over and its rows can be read; otherwise it ended without them (and is
        created again)."""
        return self.phase is JobPhase.DONE

    @property
    def ended(self) -> bool:
        return self.phase is JobPhase.ENDED


def status_table(
    running: t.Iterable[str] = (), done: t.Iterable[str] = (), ended: t.Iterable[str] = ()
) -> dict[str, JobPhase]:
    """A vendor's own job status table: the words most job APIs use (`COMMON_STATUS_WORDS`), then
    the vendor's documented ones (lower case, `_` for spaces and dashes)."""
    return {
        **COMMON_STATUS_WORDS,
        **dict.fromkeys(running, JobPhase.RUNNING),
        **dict.fromkeys(done, JobPhase.DONE),
        **dict.fromkeys(ended, JobPhase.ENDED),
    }


#: Words most job APIs use, beyond the documented ones; a vendor's table adds its own.
COMMON_STATUS_WORDS: dict[str, JobPhase] = {
    **dict.fromkeys(
        (
            "created",
            "new",
            "queued",
            "pending",
            "scheduled",
            "waiting",
            "accepted",
            "submitted",
            "processing",
            "running",
            "in_progress",
            "started",
            "generating",
            "uploading",
        ),
        JobPhase.RUNNING,
    ),
    **dict.fromkeys(
        ("done", "complete", "completed", "succeeded", "success", "successful", "finished", "ready", "available"),
        JobPhase.DONE,
    ),
    **dict.fromkeys(
        (
            "failed",
            "failure",
            "error",
            "errored",
            "canceled",
            "cancelled",
            "aborted",
            "deleted",
            "expired",
            "rejected",
            "timeout",
            "timed_out",
        ),
        JobPhase.ENDED,
    ),
}


class StatusWords:
    """One vendor's job status vocabulary: words (any case; spaces and dashes read as `_`) mapped
    to phases in one table. Vocabularies are open: a word not in the table is logged once per
    run with the raw answer, and the caller judges that answer by the rest of it (a files link,
    a status message) -- or keeps polling until the job times out."""

    def __init__(self, vendor: str, table: t.Mapping[str, JobPhase]) -> None:
        self.vendor = vendor
        self.table = dict(table)
        self._unknown_said: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def normal(word: t.Any) -> str:
        return str(word or "").strip().lower().replace(" ", "_").replace("-", "_")

    def phase(self, word: t.Any, answer: t.Any, logger: t.Any, stream: str) -> JobPhase | None:
        """The phase `word` names, or None (unknown: logged once with `answer`)."""
        normal = self.normal(word)
        phase = self.table.get(normal)
        if phase is None:
            with self._lock:
                first = normal not in self._unknown_said
                self._unknown_said.add(normal)
            if first:
                logger.warning(
                    "%s: %s answered the job status %r, which the tap does not know; it judges the "
                    "job by the rest of the answer (%s) and keeps polling until job_timeout_seconds "
                    "otherwise",
                    stream,
                    self.vendor,
                    word,
                    REGISTRY.redact(str(answer))[:400],
                )
        return phase
