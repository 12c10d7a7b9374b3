"""Which windows a run reads (reportjobs.planner.plan_run): a pure function, tested without a server."""

from __future__ import annotations

import datetime as dt

from tap_callreports.reportjobs.job import Window
from tap_callreports.reportjobs.planner import data_end, plan_run

UTC = dt.UTC
DAY = dt.timedelta(days=1)
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
NOW = dt.datetime(2024, 1, 10, 12, 0, 0, 500000, tzinfo=UTC)


def at(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, tzinfo=UTC)


def record(start: dt.datetime, end: dt.datetime, job_id: str = "job-1") -> dict:
    return {"window_start": start.isoformat(), "window_end": end.isoformat(), "job_id": job_id, "attempt": 1}


def plan(**given):
    how = {
        "bookmark": None,
        "recorded": [],
        "start_date": START,
        "end_date": None,
        "now": NOW,
        "lag": dt.timedelta(hours=2),
        "lookback": dt.timedelta(0),
        "window_days": 3,
        "min_window": dt.timedelta(minutes=15),
        "max_window": dt.timedelta(days=31),
    }
    return plan_run(**(how | given))


def test_a_first_run_reads_from_start_date_to_now_minus_the_lag_in_windows_of_window_days():
    result = plan()
    assert result.windows == [
        Window(at(1), at(4)),
        Window(at(4), at(7)),
        Window(at(7), at(10)),
        Window(at(10), at(10, 10)),  # now (12:00:00.5) minus 2 h lag, whole seconds
    ]
    assert result.bookmark is None and not result.too_short


def test_data_ends_at_end_date_when_it_comes_first():
    assert data_end(NOW, dt.timedelta(0), at(5)) == at(5)
    assert plan(end_date=at(5)).windows[-1] == Window(at(4), at(5))


def test_the_lookback_rides_on_the_first_new_window_but_never_before_start_date():
    assert plan(bookmark=at(8), lookback=dt.timedelta(days=2)).windows == [Window(at(6), at(10, 10))]
    assert plan(bookmark=at(2), lookback=dt.timedelta(days=5), end_date=at(4)).windows == [Window(at(1), at(4))]


def test_a_lookback_that_would_make_the_first_window_too_long_is_a_window_of_its_own():
    result = plan(bookmark=at(8), lookback=dt.timedelta(days=2), max_window=dt.timedelta(days=2))
    assert result.windows == [Window(at(6), at(8)), Window(at(8), at(10, 10))]


def test_a_bookmark_before_start_date_is_ignored():
    result = plan(bookmark=dt.datetime(2023, 6, 1, tzinfo=UTC), end_date=at(3))
    assert result.bookmark is None
    assert result.windows == [Window(at(1), at(3))]


def test_a_run_right_after_another_makes_no_tiny_window():
    result = plan(bookmark=at(10, 9), now=at(10, 11) + dt.timedelta(minutes=10))
    assert result.too_short
    assert result.windows == []


def test_recorded_windows_are_kept_as_they_were_and_the_gaps_around_them_get_new_windows():
    kept = record(at(5), at(6, 12), "kept")
    result = plan(recorded=[kept], end_date=at(8))
    assert result.windows == [
        Window(at(1), at(4)),
        Window(at(4), at(5)),
        Window(at(5), at(6, 12)),
        Window(at(6, 12), at(8)),
    ]
    assert result.reused == {Window(at(5), at(6, 12)): kept}
    assert result.stale == []


def test_recorded_jobs_outside_the_span_or_overlapping_a_kept_one_are_stale():
    kept = record(at(3), at(5), "kept")
    overlapping = record(at(4), at(6), "overlapping")
    before = record(at(1), at(2), "before the lookback")
    past_end = record(at(9), at(12), "past the data end")
    unreadable = {"window_start": "soon", "window_end": None, "job_id": "x"}
    result = plan(bookmark=at(3), recorded=[past_end, overlapping, kept, before, unreadable])
    assert list(result.reused.values()) == [kept]
    assert sorted(r["job_id"] for r in result.stale) == sorted(
        ["overlapping", "before the lookback", "past the data end", "x"]
    )
    assert result.windows[0] == Window(at(3), at(5))


def test_a_recorded_window_is_kept_even_when_the_new_span_after_it_is_too_short():
    kept = record(at(10), at(10, 10), "kept")
    result = plan(bookmark=at(10), recorded=[kept])
    assert result.too_short
    assert result.windows == [Window(at(10), at(10, 10))]
