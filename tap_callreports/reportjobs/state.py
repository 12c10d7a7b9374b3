"""Jobs in the STATE: each job is recorded (per stream and partition, under `report_jobs`) as soon
as it is created, so a later run polls it instead of creating it again; a record leaves the STATE
when its window is committed. Jobs created on worker threads wait in `UnsavedJobs` until the main
thread records them."""

from __future__ import annotations

import queue
import threading
import typing as t

from tap_callreports.reportjobs.job import JobResult, Window
from tap_callreports.timeutil import iso_z, parse_instant

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_callreports.reportjobs.ports import ContextState

#: Where a partition's in-flight report jobs are kept in the STATE.
JOBS_STATE_KEY = "report_jobs"


def context_key(context: Context | None) -> str:
    return repr(sorted((context or {}).items()))


def record_window(record: dict) -> Window | None:
    start, end = parse_instant(record.get("window_start")), parse_instant(record.get("window_end"))
    return Window(start, end) if start is not None and end is not None and start < end else None


def remember_job(state: dict, result: JobResult) -> None:
    """Record a created job in its partition's `state` (replacing its window's old one)."""
    records = [r for r in state.get(JOBS_STATE_KEY) or [] if record_window(r) != result.window]
    record = {
        "window_start": iso_z(result.window.start),
        "window_end": iso_z(result.window.end),
        "job_id": result.job_id,
        "created_at": result.created_at,
        "attempt": result.attempt,
    }
    if result.timezone:
        record["timezone"] = result.timezone  # how its rows' wall times must be read
    if result.requested_start:
        record["requested_start"] = result.requested_start  # asked from before the window (overlap)
    records.append(record)
    state[JOBS_STATE_KEY] = records


def forget_records(state: dict, records: t.Sequence[dict]) -> None:
    gone = {(r.get("job_id"), r.get("window_start")) for r in records}
    keep_records(state, lambda r: (r.get("job_id"), r.get("window_start")) not in gone)


def forget_window(state: dict, window: Window, *, through_end: bool) -> None:
    """Drop the records of `window` (and, once it is committed, of everything before its end)."""

    def keep(record: dict) -> bool:
        recorded = record_window(record)
        return recorded is not None and recorded != window and not (through_end and recorded.end <= window.end)

    keep_records(state, keep)


def keep_records(state: dict, keep: t.Callable[[dict], bool]) -> None:
    """Keep the partition's job records that `keep` accepts; no empty list is left in the STATE."""
    kept = [r for r in state.get(JOBS_STATE_KEY) or [] if keep(r)]
    if kept:
        state[JOBS_STATE_KEY] = kept
    else:
        state.pop(JOBS_STATE_KEY, None)


class UnsavedJobs:
    """Jobs created on worker threads wait here until the main thread records them in the STATE
    (only the main thread writes messages or touches the state)."""

    def __init__(self, write_state: t.Callable[[], None]) -> None:
        """`write_state` writes the tap's whole STATE in a message."""
        self.write_state = write_state
        self._queue: queue.SimpleQueue[tuple[ContextState, Context | None, JobResult]] = queue.SimpleQueue()
        self.pending = False  # a plain flag: checked once per row on the hot path

    def created(self, stream: ContextState, context: Context | None, result: JobResult) -> None:
        self._queue.put((stream, context, result))
        self.pending = True
        if threading.current_thread() is threading.main_thread():
            self.record()

    def record(self) -> None:
        """Main thread: write every new job into its partition's state and emit one STATE."""
        self.pending = False
        changed = False
        while True:
            try:
                stream, context, result = self._queue.get_nowait()
            except queue.Empty:
                break
            remember_job(stream.get_context_state(context), result)
            changed = True
        if changed:
            self.write_state()
