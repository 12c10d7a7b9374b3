"""Rate limits have one home (ratelimit.py): an answer's Retry-After, or a spent rate-limit
window, is read once into a `Backoff` value and handed on, never kept aside on the thread; no
answer is paused over while it is validated (the next request waits instead)."""

from __future__ import annotations

import logging
import types

import pytest
import requests

from tap_callreports.errors import AccountFull
from tap_callreports.ratelimit import RETRY_AFTER_CAP_SECONDS, Backoff, RateLimited
from tap_callreports.reportjobs import engine as job_engine
from tap_callreports.reportjobs.engine import PollPolicy, ReportJobEngine
from tap_callreports.retry import RetryPolicy
from tests.helpers import sandbox_config


def _answer(status: int, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response.url = "https://example.talkdesk.test/data/reports/calls/jobs"
    return response


def test_a_retry_after_is_read_once_into_a_backoff():
    assert Backoff.asked_by(_answer(200, **{"Retry-After": "7"})) == Backoff(7.0)
    assert Backoff.asked_by(_answer(200)) is None
    assert Backoff.asked_by(_answer(200, **{"Retry-After": "soon"})) is None
    assert Backoff.asked_by(None) is None
    assert Backoff(86400.0).capped == RETRY_AFTER_CAP_SECONDS
    limited = RateLimited("429", _answer(429, **{"Retry-After": "3"}))
    assert (limited.backoff, limited.limited) == (Backoff(3.0), True)
    unavailable = RateLimited("503", _answer(503))
    assert (unavailable.backoff, unavailable.limited) == (None, False)


def test_the_retry_policy_waits_the_backoff_a_rate_limited_answer_carries():
    response = _answer(429, **{"Retry-After": "7"})
    limited = RateLimited("429", response)
    response.headers["Retry-After"] = "1"  # read once, when the answer was sorted: later changes do not count
    policy = RetryPolicy(max_retries=5, base_seconds=1.0)
    assert [policy.wait_seconds(limited, n) for n in (1, 2)] == [7.0, 7.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Rate-Limit-Remaining": "1", "ratelimit-reset": "3"}, Backoff(3.0)),
        ({"X-Rate-Limit-Remaining": "0"}, Backoff(60.0)),  # no reset header: a whole window
        ({"X-Rate-Limit-Remaining": "2", "ratelimit-reset": "3"}, None),  # above the floor
        ({"X-Rate-Limit-Remaining": "many"}, None),
        ({}, None),
    ],
)
def test_a_spent_rate_limit_window_is_a_backoff(headers, expected):
    assert Backoff.window_spent(_answer(200, **headers), 1, 60.0) == expected


def test_zendesk_validates_an_answer_without_pausing_or_holding(sandbox):
    from tap_callreports.tap import TapCallReports

    stream = TapCallReports(config=sandbox_config(sandbox, vendors=("zendesk",))).streams["zendesk_job_statuses"]
    response = _answer(200, **{"X-Rate-Limit-Remaining": "0", "ratelimit-reset": "30"})
    response.url = f"{stream.url_base}/api/v2/job_statuses"
    stream.validate_response(response)  # sorting an answer holds nothing
    assert stream.account_pacer.delay() == 0.0
    stream.answered(response)  # what the answer says about the limit: the next request waits
    assert stream.account_pacer.delay() == pytest.approx(30.0, abs=0.5)


class _Stop:
    """A stop event on a fake clock that records each pause."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0.0)
        self.now += timeout or 0.0
        return False


def test_a_poll_returns_the_wait_its_answer_asked_for_and_the_engine_keeps_to_it(monkeypatch):
    """No Retry-After travels aside: a poll's answer that asks for a wait is returned as a Backoff
    (a note left on the thread by an earlier answer no longer exists to be picked up)."""
    jobs = ReportJobEngine({"talkdesk": 1}, PollPolicy(2, 60, 3600), logging.getLogger("test.jobs"))
    stop = _Stop()
    monkeypatch.setattr(job_engine, "time", types.SimpleNamespace(monotonic=lambda: stop.now))
    answers = iter([Backoff(9.0), None, "done"])
    assert jobs.wait_for(lambda: next(answers), "job", stop) == "done"  # type: ignore[arg-type]
    assert stop.pauses == [2, 9.0, 2]


def test_a_job_creation_refused_with_a_429_is_account_full_with_its_wait(sandbox, monkeypatch):
    from tap_callreports.tap import TapCallReports

    stream = TapCallReports(config=sandbox_config(sandbox, vendors=("talkdesk",))).streams["talkdesk_calls"]
    refused = _answer(429, **{"Retry-After": "4"})
    refused.raw = None  # type: ignore[assignment]
    monkeypatch.setattr(stream.requests_session, "send", lambda *_a, **_k: refused)
    with pytest.raises(AccountFull) as full:
        stream.send("POST", f"{stream.url_base}/data/reports/calls/jobs", json={}, creates_job=True)
    assert full.value.retry_after == 4.0
