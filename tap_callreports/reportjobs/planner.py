"""Which windows a run reads: a pure function of the bookmark, the jobs an earlier run recorded,
the dates and the stream's lookback, lag and window length (the stream logs what it decided)."""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from tap_callreports.reportjobs.job import Window, plan_windows
from tap_callreports.reportjobs.state import record_window


@dataclass(frozen=True)
class WindowPlan:
    """The windows of a run, and what led to them (for the stream's log lines)."""

    windows: list[Window]
    #: Recorded jobs whose windows are in the plan, by window: polled, not created again.
    reused: dict[Window, dict]
    #: Recorded jobs the plan no longer uses (to drop from the STATE and delete at the vendor).
    stale: list[dict]
    #: The bookmark the plan started from (None: start_date).
    bookmark: dt.datetime | None
    #: Where the run starts reading: the bookmark minus the lookback (never before start_date).
    looked_back: dt.datetime
    #: Where new windows would start (after the recorded ones), and where data ends (lag, end_date).
    new_from: dt.datetime
    end: dt.datetime
    #: The span after `new_from` was under min_window_minutes: no new window this run.
    too_short: bool


def data_end(now: dt.datetime, lag: dt.timedelta, end_date: dt.datetime | None) -> dt.datetime:
    """No window ends after now minus the vendor's lag, nor after end_date."""
    end = now - lag
    if end_date is not None:
        end = min(end, end_date)
    return end.replace(microsecond=0)


def plan_run(
    *,
    bookmark: dt.datetime | None,
    recorded: t.Sequence[dict],
    start_date: dt.datetime,
    end_date: dt.datetime | None,
    now: dt.datetime,
    lag: dt.timedelta,
    lookback: dt.timedelta,
    window_days: int,
    min_window: dt.timedelta,
    max_window: dt.timedelta,
) -> WindowPlan:
    """The windows of this run, from the bookmark (or start_date) to `data_end`:

    - an incremental run re-reads `lookback` before its bookmark (late or changed rows);
    - windows whose jobs an earlier run recorded are kept as they were (their jobs are polled,
      not created again), wherever they fall in that span: jobs are recorded in the order they
      were created, so a killed run may have recorded a later window and not an earlier one;
    - the gaps between them, and the span after them, get new windows, except a new span shorter
      than `min_window` after a bookmark (a run right after another makes no tiny jobs);
    - with no recorded window, the lookback rides on the first new window while that stays within
      `max_window` (else it is a window of its own).
    """
    start_date = start_date.replace(microsecond=0)
    if bookmark is not None and bookmark < start_date:
        bookmark = None
    base = bookmark or start_date
    looked_back = max(start_date, bookmark - lookback) if bookmark is not None else base
    end = data_end(now, lag, end_date)
    records = sorted(recorded, key=lambda r: str(r.get("window_start")))
    kept: list[Window] = []
    reused: dict[Window, dict] = {}
    for record in records:
        window = record_window(record)
        if window is None or window.start < looked_back or window.end > end or (kept and window.start < kept[-1].end):
            continue
        kept.append(window)
        reused[window] = record
    stale = [r for r in records if record_window(r) not in reused]
    windows: list[Window] = []
    cursor = looked_back if kept else base
    for window in kept:  # new windows in the gaps before each recorded one
        if cursor < window.start:
            windows += plan_windows(cursor, window.start, window_days)
        windows.append(window)
        cursor = window.end
    if bookmark is not None and end - max(cursor, bookmark) < min_window:
        return WindowPlan(windows, reused, stale, bookmark, looked_back, cursor, end, too_short=True)
    fresh = plan_windows(cursor, end, window_days)
    if not kept and looked_back < cursor:
        if fresh and fresh[0].end - looked_back <= max_window:
            fresh[0] = Window(looked_back, fresh[0].end)  # the lookback rides on the first new window
        else:
            windows.append(Window(looked_back, cursor))
    windows += fresh
    return WindowPlan(windows, reused, stale, bookmark, looked_back, cursor, end, too_short=False)
