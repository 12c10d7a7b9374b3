"""Zendesk Talk calls and legs (zendesk/talk.py) against the sandbox's incremental exports, over
real HTTP: every item once per version, a resumed run that re-reads only the boundary second, runs
that end although next_page never does, a full second stopped loudly, the rate limit paced and its
429s waited out; the pacer (ratelimit.py) on a fake clock."""

from __future__ import annotations

import collections
import datetime as dt
import json

import pytest

# the targets and the schema as test_warehouse installs and makes them (fixtures), and its pipe
from test_warehouse import duckdb_query, pg_schema, pipe, postgres_config, target_duckdb, target_postgres  # noqa: F401

from helpers import catalog_selecting, psql, run_cli, sandbox_config, sync
from tap_callreports.errors import StreamError
from tap_callreports.ratelimit import Budget, Pacer
from tap_callreports.sandbox import SandboxConfig, start_sandbox
from tap_callreports.zendesk.talk import PAGE_SIZE

TALK = ("zendesk_talk_calls", "zendesk_talk_legs")
RESOURCE = {"zendesk_talk_calls": "calls", "zendesk_talk_legs": "legs"}
ANCHOR = "2026-10-04T00:00:00Z"
FIRST_NOW, SECOND_NOW = "2026-10-03T12:00:00Z", "2026-10-06T00:00:00Z"
#: The sandbox's Talk limit: 10 requests per second per endpoint (the real one: per minute), and the
#: tap's matching setting.
FAST_WINDOW = {"zendesk_talk_rate_window_seconds": 1.0}
MATCHED = {"zendesk_talk_rate_limit": 10, "zendesk_talk_rate_window_seconds": 1}


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def talk_sandbox(**overrides):
    return start_sandbox(
        SandboxConfig(
            **{
                "seed": 28,
                "list_anchor": ANCHOR,
                "zendesk_talk_days": 3,
                "zendesk_talk_calls_per_hour": 40,
                "zendesk_talk_now": FIRST_NOW,
                **FAST_WINDOW,
                **overrides,
            }
        )
    )


def talk_config(sandbox, **overrides):
    config = sandbox_config(sandbox, vendors=("zendesk",), start_date="2026-10-01T00:00:00Z", **MATCHED)
    config.pop("end_date")
    return config | overrides


def talk_api(sandbox):
    return next(vendor for vendor in sandbox.app.vendors if vendor.NAME == "zendesk").talk


def upserted(*runs, stream):
    """What a warehouse upserting by id holds after the runs: the last version sent of each id."""
    rows: dict = {}
    for run in runs:
        for record in run.records(stream):
            rows[record["id"]] = record
    return rows


def pages(sandbox, stream):
    return [e for e in sandbox.app.events("zendesk_talk_page") if e["resource"] == RESOURCE[stream]]


@pytest.fixture
def sandbox():
    running = talk_sandbox()
    yield running
    running.stop()


def test_discovered_with_zendesk_credentials_keyed_by_id_and_incremental_on_updated_at(sandbox):
    catalog = catalog_selecting(talk_config(sandbox), TALK)
    entries = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    for name in TALK:
        entry = entries[name]
        assert list(entry["key_properties"]) == ["id"]
        assert entry["replication_key"] == "updated_at"
        properties = entry["schema"]["properties"]
        assert properties["updated_at"]["format"] == "date-time"
        assert properties["created_at"]["format"] == "date-time"
        assert properties["quality_issues"]["type"] == ["array", "null"]
        assert properties["call_charge"]["type"] == ["string", "null"]  # decimal text, as Zendesk writes it
    no_zendesk = sandbox_config(sandbox, vendors=("talkdesk",))
    assert not set(TALK) & {e["tap_stream_id"] for e in catalog_selecting(no_zendesk, ())["streams"]}


def test_a_run_and_a_resumed_run_give_every_call_and_leg_once_in_its_latest_version(sandbox):
    config = talk_config(sandbox)
    first = sync(config, streams=TALK)
    assert first.error is None, first.error
    state = first.final_state
    sandbox.app.config.zendesk_talk_now = SECOND_NOW  # two and a half days of updates later
    before = len(sandbox.app.events("zendesk_talk_page"))
    second = sync(config, state=state, streams=TALK)
    assert second.error is None, second.error

    talk = talk_api(sandbox)
    for stream in TALK:
        latest = talk.latest(RESOURCE[stream], epoch(SECOND_NOW))
        assert len(latest) > 2 * PAGE_SIZE
        # each id once, in its latest version, after an upsert by id
        assert upserted(first, second, stream=stream) == latest, stream
        # within a run, each item went out once (the boundary seconds' repeats were left out)
        for run in (first, second):
            counts = collections.Counter(record["id"] for record in run.records(stream))
            assert max(counts.values()) == 1, stream
        # updates re-appeared: items of the first run came again, newer
        firsts = {r["id"]: r["updated_at"] for r in first.records(stream)}
        again = [r for r in second.records(stream) if r["id"] in firsts]
        assert again and all(r["updated_at"] >= firsts[r["id"]] for r in again)

        # the resumed run asked from the bookmark's second, and re-sent only that second's items
        bookmark = state["bookmarks"][stream]["replication_key_value"]
        asked = [e for e in sandbox.app.events("zendesk_talk_page")[before:] if e["resource"] == RESOURCE[stream]]
        assert asked[0]["start_time"] == epoch(bookmark)
        same = [r for r in again if r["updated_at"] == firsts[r["id"]]]
        assert same and {r["updated_at"] for r in same} == {bookmark}
        assert second.final_state["bookmarks"][stream]["replication_key_value"] == max(
            r["updated_at"] for r in latest.values()
        )


def bookmarks_in_order(run, stream):
    """The stream's bookmark in each STATE of the run, and the newest updated_at emitted before it."""
    seen, newest = [], None
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == stream:
            newest = max(newest or "", message["record"]["updated_at"])
        elif message["type"] == "STATE":
            value = message["value"].get("bookmarks", {}).get(stream, {}).get("replication_key_value")
            if value is not None:
                seen.append((value, newest))
    return seen


def test_resumed_runs_with_a_lookback_send_its_items_again_and_the_bookmark_only_rises(sandbox):
    lookback = 24 * 60  # a day: the third run, after the last updates, still finds some in it
    config = talk_config(sandbox, zendesk_talk_lookback_minutes=lookback)
    first = sync(config, streams=TALK)
    assert first.error is None, first.error
    sandbox.app.config.zendesk_talk_now = SECOND_NOW
    before = len(sandbox.app.events("zendesk_talk_page"))
    second = sync(config, state=first.final_state, streams=TALK)
    assert second.error is None, second.error  # not InvalidStreamSortException on the first older item
    before_third = len(sandbox.app.events("zendesk_talk_page"))
    third = sync(config, state=second.final_state, streams=TALK)  # nothing new: only the lookback again
    assert third.error is None, third.error

    talk = talk_api(sandbox)
    for stream in TALK:
        latest = talk.latest(RESOURCE[stream], epoch(SECOND_NOW))
        newest = max(r["updated_at"] for r in latest.values())
        assert upserted(first, second, stream=stream) == latest, stream
        for run, state, since in ((second, first.final_state, before), (third, second.final_state, before_third)):
            bookmark = state["bookmarks"][stream]["replication_key_value"]
            asked = [e for e in sandbox.app.events("zendesk_talk_page")[since:] if e["resource"] == RESOURCE[stream]]
            assert asked[0]["start_time"] == epoch(bookmark) - lookback * 60
            # the lookback's items went out again, oldest first, each once
            records = run.records(stream)
            assert any(r["updated_at"] < bookmark for r in records), stream
            assert [r["updated_at"] for r in records] == sorted(r["updated_at"] for r in records)
            assert len(records) == len({r["id"] for r in records})
            # every STATE: never below the bookmark the run started from, never past what was emitted
            seen = bookmarks_in_order(run, stream)
            assert seen and [value for value, _ in seen] == sorted(value for value, _ in seen)
            assert all(value >= bookmark for value, _ in seen), stream
            assert all(value <= max(emitted or "", bookmark) for value, emitted in seen), stream
        assert second.final_state["bookmarks"][stream]["replication_key_value"] == newest
        assert third.final_state["bookmarks"][stream]["replication_key_value"] == newest  # not moved back
        assert {r["id"]: r for r in third.records(stream)}.items() <= latest.items()


def test_paging_crosses_seconds_shared_by_two_pages_and_ends_when_caught_up(sandbox):
    sandbox.app.config.zendesk_talk_now = SECOND_NOW
    run = sync(talk_config(sandbox), streams=TALK)
    assert run.error is None, run.error
    for stream in TALK:
        asked = pages(sandbox, stream)
        # a page boundary fell inside a second: the next page asked from it and got the rest too
        split = [
            (page, following)
            for page, following in zip(asked, asked[1:])
            if page["at_end_time"] and following["start_time"] == page["end_time"]
        ]
        assert split, stream
        # every page but the last was full; the last was short and the run ended on it (next_page
        # was the URL just asked: never followed)
        assert [page["count"] for page in asked[:-1]] == [PAGE_SIZE] * (len(asked) - 1)
        assert asked[-1]["count"] < PAGE_SIZE
        records = run.records(stream)
        assert (
            len(records)
            == len({r["id"] for r in records})
            == len(talk_api(sandbox).latest(RESOURCE[stream], epoch(SECOND_NOW)))
        )
        assert [r["updated_at"] for r in records] == sorted(r["updated_at"] for r in records)


def test_a_caught_up_run_asks_once_and_sends_only_the_boundary_second(sandbox):
    config = talk_config(sandbox)
    first = sync(config, streams=["zendesk_talk_calls"])
    before = len(pages(sandbox, "zendesk_talk_calls"))
    again = sync(config, state=first.final_state, streams=["zendesk_talk_calls"])
    assert again.error is None
    asked = pages(sandbox, "zendesk_talk_calls")[before:]
    assert len(asked) == 1  # next_page repeats this URL: not followed
    bookmark = first.final_state["bookmarks"]["zendesk_talk_calls"]["replication_key_value"]
    assert {r["updated_at"] for r in again.records("zendesk_talk_calls")} == {bookmark}
    assert again.final_state["bookmarks"]["zendesk_talk_calls"]["replication_key_value"] == bookmark


def test_a_full_page_sharing_one_second_stops_loudly_without_looping():
    sandbox = talk_sandbox(shapes=("zendesk-talk-second-full",), zendesk_talk_now=SECOND_NOW)
    try:
        run = sync(talk_config(sandbox), streams=["zendesk_talk_legs"])
        assert isinstance(run.error, StreamError)
        message = str(run.error)
        assert message.startswith("zendesk_talk_legs: ") and "2026-10-01T12:00:00Z" in message
        assert "cannot be paged past that second" in message
        asked = pages(sandbox, "zendesk_talk_legs")
        assert len(asked) <= 4  # stopped at the stuck second, not asked again and again
        # nothing after the stuck second went out, and the bookmark is no later than it
        records = run.records("zendesk_talk_legs")
        assert records and max(r["updated_at"] for r in records) <= "2026-10-01T12:00:00Z"
        for state in run.states:
            value = state.get("bookmarks", {}).get("zendesk_talk_legs", {}).get("replication_key_value")
            assert value is None or value <= "2026-10-01T12:00:00Z"
    finally:
        sandbox.stop()


def test_429s_are_waited_out_and_the_run_still_gives_everything():
    sandbox = talk_sandbox(zendesk_talk_rate_limit=1)  # 1 a second, the tap asks up to 10 a second
    try:
        run = sync(talk_config(sandbox), streams=["zendesk_talk_legs"])
        assert run.error is None, run.error
        limited = sandbox.app.events("rate_limited")
        assert limited and all(e["retry_after"] >= 1 for e in limited)
        latest = talk_api(sandbox).latest("legs", epoch(FIRST_NOW))
        assert upserted(run, stream="zendesk_talk_legs") == latest
        # each 429 was followed by a wait of its Retry-After before the endpoint was asked again
        requests = [e for e in sandbox.app.events() if e["kind"] in ("rate_limited", "zendesk_talk_page")]
        for refused, following in zip(requests, requests[1:]):
            if refused["kind"] == "rate_limited":
                assert following["wall"] - refused["wall"] >= refused["retry_after"] * 0.9
    finally:
        sandbox.stop()


def test_the_tap_paced_to_the_limit_is_never_refused(sandbox):
    sandbox.app.config.zendesk_talk_now = SECOND_NOW
    sandbox.app.config.zendesk_talk_rate_limit = 2  # 2 a second, and the tap told so
    run = sync(talk_config(sandbox, zendesk_talk_rate_limit=2), streams=TALK)
    assert run.error is None
    assert len(pages(sandbox, "zendesk_talk_legs")) > 2 * 2  # more requests than two windows allow
    assert sandbox.app.events("rate_limited") == []
    # the two exports share the budget: no second (the sandbox's window) saw more than 2 of them
    # together, also where calls ended and legs began
    asked = [e["wall"] for e in sandbox.app.events("zendesk_talk_page")]
    assert all(later - earlier >= 1.0 for earlier, later in zip(asked, asked[2:]))


def test_the_calls_and_legs_exports_share_one_pacer_per_run(sandbox):
    from tap_callreports.tap import TapCallReports

    config = talk_config(sandbox)
    tap = TapCallReports(config=config, validate_config=False)
    calls, legs = tap.streams["zendesk_talk_calls"], tap.streams["zendesk_talk_legs"]
    assert calls.pacer is legs.pacer
    assert calls.pacer_endpoint == legs.pacer_endpoint == f"{calls.url_base}/api/v2/channels/voice/stats/incremental/"
    for _ in range(10):  # calls spent the budget: legs waits for it
        calls.pacer.sent()
    assert legs.pacer.delay() > 0
    # another run (tap) has its own
    assert TapCallReports(config=config, validate_config=False).streams["zendesk_talk_legs"].pacer is not calls.pacer


def test_end_date_bounds_what_goes_out_and_the_bookmark(sandbox):
    end = "2026-10-02T00:00:00Z"
    run = sync(talk_config(sandbox, end_date=end), streams=["zendesk_talk_calls"])
    assert run.error is None
    records = run.records("zendesk_talk_calls")
    assert records and all(r["updated_at"] < end for r in records)
    assert run.final_state["bookmarks"]["zendesk_talk_calls"]["replication_key_value"] < end
    # it stopped once a page reached the end, well before the export's end
    assert pages(sandbox, "zendesk_talk_calls")[-1]["end_time"] < epoch(FIRST_NOW)


def test_connection_test_asks_the_talk_export_once(sandbox, tmp_path):
    run = run_cli(tmp_path, talk_config(sandbox), "--test")
    assert run.returncode == 0, run.stderr
    assert "zendesk: ok" in run.stderr and "talk" in run.stderr
    assert len(pages(sandbox, "zendesk_talk_calls")) == 1


def test_progress_lines_say_how_long_a_backfill_will_take(sandbox, tmp_path):
    config = talk_config(sandbox, zendesk_talk_rate_limit=10, zendesk_talk_rate_window_seconds=60)
    catalog = catalog_selecting(config, ["zendesk_talk_legs"])
    sandbox.app.config.zendesk_talk_rate_window_seconds = 60.0
    # one page at the real pace: its progress line estimates the rest at 10 requests a minute
    run = run_cli(tmp_path, config | {"end_date": "2026-10-01T06:00:00Z"}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stderr_lines if "zendesk_talk_legs: page 1 " in line]
    assert lines and "left at 10 requests/minute" in lines[0], run.stderr[-2000:]
    json.dumps(lines)


# ---- the pacer ----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_spreads_requests_evenly_and_counts_from_each_answer():
    clock = FakeClock()
    pacer = Pacer(Budget(10, 60.0), clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(25):
        pacer.wait()
        sent.append(clock.now)
        clock.now += 0.5  # the answer takes half a second
        pacer.sent()
    assert all(later - earlier >= 6.0 for earlier, later in zip(sent, sent[1:]))
    # never more than 10 in any 60 seconds, wherever the window falls
    assert all(sum(1 for s in sent if start <= s < start + 60) <= 10 for start in sent)
    assert sent[-1] - sent[0] == pytest.approx(24 * 6.5)


def test_the_pacer_holds_for_a_retry_after_and_allows_bursts_when_not_even():
    clock = FakeClock()
    pacer = Pacer(Budget(3, 10.0, even=False), clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert pacer.wait() == 0
        pacer.sent()
    assert pacer.delay() == pytest.approx(10.0)
    pacer.hold(30.0)
    assert pacer.wait() == pytest.approx(30.0)
    assert pacer.waits == 1


# ---- through the targets: PostgreSQL and DuckDB, each id once in its latest version --------------


@pytest.mark.slow
def test_a_run_and_a_resumed_run_land_each_call_and_leg_once_in_postgres_and_duckdb(
    tmp_path,
    target_postgres,  # noqa: F811 - test_warehouse's fixtures
    target_duckdb,  # noqa: F811
    pg_schema,  # noqa: F811
):
    sandbox = talk_sandbox(zendesk_talk_calls_per_hour=30)
    try:
        config = talk_config(sandbox)  # no catalog: every Zendesk stream, job statuses too
        duck = tmp_path / "talk.duckdb"
        targets = {
            "postgres": (target_postgres, postgres_config(pg_schema), f"{pg_schema}."),
            "duckdb": (target_duckdb, {"filepath": str(duck), "default_target_schema": "zendesk"}, "zendesk."),
        }
        states: dict[str, dict | None] = {}
        sent: dict[str, list] = {name: [] for name in targets}
        for phase, now in (("first", FIRST_NOW), ("resumed", SECOND_NOW)):
            sandbox.app.config.zendesk_talk_now = now
            for name, (target, target_config, _) in targets.items():
                run = pipe(
                    tmp_path,
                    f"{name}-{phase}",
                    config,
                    target,
                    target_config,
                    state=states.get(name),
                    target_env={"PGTZ": "UTC"},
                )
                states[name] = run.confirmed_state
                sent[name].append(run)
        talk = talk_api(sandbox)
        for stream in TALK:
            latest = talk.latest(RESOURCE[stream], epoch(SECOND_NOW))
            newest = max(r["updated_at"] for r in latest.values())
            for name, (target, _, schema) in targets.items():
                runs = sent[name]
                # records went out more than once (updates re-appeared, the boundary second) ...
                assert sum(run.sent(stream) for run in runs) > len(latest)
                # ... yet each id landed once, in its latest version
                count_query = f"select count(*), count(distinct id), max(updated_at) from {schema}{stream}"
                versions_query = f"select id, updated_at from {schema}{stream}"
                if name == "postgres":
                    (count, distinct, _), landed = psql(count_query)[0], psql(versions_query)
                else:
                    answers = duckdb_query(target, duck, [count_query, versions_query])
                    (count, distinct, _), landed = answers[count_query][0], answers[versions_query]
                assert int(count) == int(distinct) == len(latest), (name, stream)
                stamps = {int(row[0]): z_text(row[1]) for row in landed}
                assert stamps == {item_id: row["updated_at"] for item_id, row in latest.items()}, (name, stream)
                assert states[name]["bookmarks"][stream]["replication_key_value"] == newest
        assert sandbox.app.events("rate_limited") == []
    finally:
        sandbox.stop()


def z_text(value) -> str:
    """A landed updated_at (PostgreSQL text or DuckDB timestamp text) as RFC 3339 UTC."""
    text = str(value).replace(" ", "T")
    text = text.split("+")[0].removesuffix("Z")
    return text[:19] + "Z"


# ---- the paginator on answers the sandbox does not give ----------------------------------------------

URL = "https://acme.zendesk.com/api/v2/channels/voice/stats/incremental/calls"


class StubStream:
    name = "zendesk_talk_calls"
    resource = "calls"

    def log_progress(self, read, count) -> None:
        pass


def answer(start_time: int, body: dict):
    import requests

    response = requests.Response()
    response.status_code = 200
    response.url = f"{URL}?start_time={start_time}"
    response._content = json.dumps(body).encode()
    response.request = requests.Request("GET", response.url).prepare()
    return response


def full_page(end_time: int, next_page) -> dict:
    return {"calls": [{"id": n} for n in range(PAGE_SIZE)], "count": PAGE_SIZE, "end_time": end_time} | (
        {"next_page": next_page} if next_page is not ... else {}
    )


def paginator():
    from tap_callreports.zendesk.talk import ExportRead, TalkExportPaginator

    return TalkExportPaginator(StubStream(), ExportRead(since=100, until=10_000))  # type: ignore[arg-type]


def test_a_short_page_ends_the_read_whatever_its_next_page_says():
    pages_ = paginator()
    pages_.advance(
        answer(100, {"calls": [{"id": 1}], "count": 1, "end_time": 500, "next_page": f"{URL}?start_time=900"})
    )
    assert pages_.finished


def test_a_full_page_without_next_page_goes_on_from_its_end_time():
    pages_ = paginator()
    pages_.advance(answer(100, full_page(500, None)))
    assert not pages_.finished and pages_.current_value.geturl() == f"{URL}?start_time=500"


@pytest.mark.parametrize(
    ("next_page", "why"),
    [
        (f"{URL}?start_time=100", "would repeat or skip"),  # the same second again: a loop
        (f"{URL}?start_time=700", "would repeat or skip"),  # past end_time: items in between lost
        (f"{URL}?cursor=abc", "no start_time"),
    ],
)
def test_a_next_page_that_would_loop_or_skip_stops_loudly(next_page, why):
    with pytest.raises(StreamError, match=why):
        paginator().advance(answer(100, full_page(500, next_page)))


def test_an_account_without_talk_skips_the_streams_with_one_warning_and_the_run_goes_on(tmp_path):
    sandbox = talk_sandbox(shapes=("zendesk-talk-absent",))
    try:
        run = run_cli(tmp_path, talk_config(sandbox))
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.records("zendesk_job_statuses")  # the other Zendesk stream still loads
        warnings = [line for line in run.stderr_lines if "| WARNING" in line]
        assert len(warnings) == 2, warnings  # one per Talk stream
        assert all(
            "Zendesk Talk is not on this account; deselect zendesk_talk_calls and zendesk_talk_legs" in line
            for line in warnings
        )
        assert not run.records("zendesk_talk_calls")
        assert "zendesk_talk_calls" not in run.final_state.get("bookmarks", {}) or not run.final_state["bookmarks"][
            "zendesk_talk_calls"
        ].get("replication_key_value")
        checked = run_cli(tmp_path, talk_config(sandbox), "--test")
        assert checked.returncode == 0 and "talk calls export: 404" in checked.stderr
    finally:
        sandbox.stop()


def test_a_user_who_may_not_read_the_exports_stops_the_stream_with_what_to_do(tmp_path):
    sandbox = talk_sandbox(shapes=("zendesk-talk-forbidden",))
    try:
        run = sync(talk_config(sandbox), streams=["zendesk_talk_calls"])
        assert isinstance(run.error, StreamError)
        assert str(run.error).startswith("zendesk_talk_calls: 403")
        assert "deselect zendesk_talk_calls and zendesk_talk_legs" in str(run.error)
        checked = run_cli(tmp_path, talk_config(sandbox), "--test")
        assert checked.returncode != 0 and "zendesk: refused: Talk export: 403" in checked.stderr
    finally:
        sandbox.stop()


# ---- the sandbox's exports, as a client sees them (plain HTTP) -------------------------------------


def test_the_sandbox_export_repeats_itself_when_caught_up_and_limits_each_endpoint():
    import requests

    sandbox = talk_sandbox(zendesk_talk_rate_limit=3, zendesk_talk_rate_window_seconds=60.0)
    try:
        auth = ("agent@example.com/token", "sandbox-zendesk-token")
        url = f"{sandbox.url}/api/v2/channels/voice/stats/incremental/calls.json?start_time={epoch(FIRST_NOW) - 600}"
        first = requests.get(url, auth=auth, timeout=10).json()
        assert 0 < first["count"] < PAGE_SIZE and first["end_time"] == epoch(first["calls"][-1]["updated_at"])
        again = requests.get(first["next_page"], auth=auth, timeout=10).json()
        # caught up: next_page is the URL just asked, and it repeats the items of the last second
        assert again["next_page"] == first["next_page"] and again["end_time"] == first["end_time"]
        assert again["calls"] == [c for c in first["calls"] if c["updated_at"] == first["calls"][-1]["updated_at"]]
        requests.get(first["next_page"], auth=auth, timeout=10)
        refused = requests.get(first["next_page"], auth=auth, timeout=10)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        legs = requests.get(url.replace("calls.json", "legs"), auth=auth, timeout=10)
        assert legs.status_code == 200  # the limit is per endpoint
    finally:
        sandbox.stop()


def test_items_updated_within_the_data_lag_are_left_to_the_next_run():
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sandbox = talk_sandbox(
        # Calls up to now, 40 an hour: saves fall within the last 30 minutes at any time of day
        # (an anchor an hour back left the newest save 5-50 minutes old, by the clock's minute).
        list_anchor=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        zendesk_talk_days=1,
        zendesk_talk_now=None,  # the real clock: calls of the last hour are being saved now
    )
    try:
        start = (now - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        run = sync(talk_config(sandbox, start_date=start, zendesk_talk_data_lag_minutes=30), streams=TALK)
        assert run.error is None, run.error
        cutoff = (now - dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        served = [e for e in sandbox.app.events("zendesk_talk_page") if e["end_time"] >= epoch(cutoff)]
        assert served  # the export had newer items ...
        for stream in TALK:
            records = run.records(stream)
            assert records and max(r["updated_at"] for r in records) < cutoff  # ... which did not go out
            assert run.final_state["bookmarks"][stream]["replication_key_value"] < cutoff
    finally:
        sandbox.stop()


def test_items_before_the_newest_second_sent_are_not_sent_again():
    from tap_callreports.zendesk.talk import ExportRead

    read = ExportRead(since=0, until=10_000)
    assert read.fresh({"id": 1, "v": 1}, 100) and read.fresh({"id": 2, "v": 1}, 200)
    assert not read.fresh({"id": 2, "v": 1}, 200)  # the boundary second, answered again
    assert read.fresh({"id": 2, "v": 2}, 200)  # changed within that second: the newer content goes out
    assert not read.fresh({"id": 1, "v": 1}, 100)  # a page asked from before the boundary
    assert read.repeats == 2


def test_a_start_within_the_data_lag_asks_nothing(sandbox):
    soon = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = sync(talk_config(sandbox, start_date=soon), streams=TALK)
    assert run.error is None and not run.records("zendesk_talk_calls")
    assert sandbox.app.events("zendesk_talk_page") == []  # not asked from inside the lag
