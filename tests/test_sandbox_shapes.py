"""The sandbox serves each named answer shape (sandbox/shapes.py) as the vendor docs allow it,
plus its MyReports refresh grant, job forgetting and auth_seen events. Plain HTTP, no tap."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from helpers import LONDON_REPORT, MYREPORTS_WS
from tap_callreports.report_types import REPORT_TYPES
from tap_callreports.sandbox import SandboxConfig
from tap_callreports.sandbox.__main__ import main as sandbox_cli
from tap_callreports.sandbox.shapes import SHAPES

TD = {"Authorization": "Bearer sandbox-talkdesk-token"}
MR = {"Authorization": "Bearer sandbox-myreports-token"}
WINDOW = {"from": "2026-10-01T00:00:00Z", "to": "2026-10-01T06:00:00Z"}
FAST = {"job_polls": 1, "rows_per_hour": 3, "myreports_rows_per_hour": 4, "talkdesk_file_redirect": "never"}
NOT_FOUND = {"code": "0000404", "message": "Report file not found"}


def make(make_sandbox, *shapes, **overrides):
    return make_sandbox(shapes=shapes, **(FAST | overrides))


def get(url, headers=None, **kwargs):
    return requests.get(url, headers=headers, allow_redirects=False, timeout=10, **kwargs)


# ---- Talkdesk report jobs ------------------------------------------------------------------------


def create_job(sandbox, timespan=WINDOW, tz="UTC", fmt="json", report_type="calls", base=None):
    answer = requests.post(
        f"{base or sandbox.url}/data/reports/{report_type}/jobs",
        headers=TD,
        timeout=10,
        json={"name": "t", "timezone": tz, "format": fmt, "timespan": timespan},
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["job"]


def poll(sandbox, job, base=None):
    return get(f"{base or sandbox.url}/data/reports/calls/jobs/{job['id']}", TD)


def read_file(sandbox, job):
    """The job's file through the files endpoint (and its 303, without credentials)."""
    answer = get(f"{sandbox.url}/data/reports/calls/files/{job['id']}", TD)
    if answer.status_code == 303:
        answer = get(answer.headers["Location"])
    assert answer.status_code == 200, answer.text
    return answer


def done_file(sandbox, **job_args):
    job = create_job(sandbox, **job_args)
    assert poll(sandbox, job).status_code == 300
    return read_file(sandbox, job)


def entries_of(body):
    return body if isinstance(body, list) else body["entries"]


@pytest.mark.parametrize(
    ("shape", "starts_with"),
    [
        ("talkdesk-bare-array", b"[{"),
        ("talkdesk-total-first", b'{"total":18,"type":"calls","version":"v1","entries":['),
    ],
)
def test_talkdesk_json_layouts_hold_the_same_rows(make_sandbox, shape, starts_with):
    reference = done_file(make(make_sandbox)).json()
    answer = done_file(make(make_sandbox, shape))
    assert answer.content.startswith(starts_with)
    assert entries_of(answer.json()) == reference["entries"]
    assert len(reference["entries"]) == reference["total"] == 18


def test_talkdesk_total_short_once(make_sandbox):
    sandbox = make(make_sandbox, "talkdesk-total-short-once")
    first, second = done_file(sandbox).json(), done_file(sandbox).json()
    assert first["total"] == len(first["entries"]) + 1 == 18
    assert second["total"] == len(second["entries"]) == 18
    assert second["entries"][:-1] == first["entries"]
    other_window = done_file(sandbox, timespan={"from": WINDOW["to"], "to": "2026-10-01T09:00:00Z"}).json()
    assert other_window["total"] == len(other_window["entries"]) + 1  # once per window, not per sandbox


@pytest.mark.parametrize(("asked", "storage"), [("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")])
def test_talkdesk_location_other_host(make_sandbox, asked, storage):
    sandbox = make(make_sandbox, "talkdesk-location-other-host", talkdesk_file_redirect="always")
    port = urlsplit(sandbox.url).port
    base = f"http://{asked}:{port}"
    job = create_job(sandbox, base=base)
    done = poll(sandbox, job, base=base)
    location = urlsplit(done.headers["Location"])
    assert done.status_code == 300
    assert (location.hostname, location.port, location.path) == (storage, port, f"/_storage/talkdesk/{job['id']}.json")
    assert "X-Amz-Signature" in parse_qs(location.query)
    assert done.json()["_links"]["files"]["href"].startswith(base)  # the body still names the files endpoint
    assert get(done.headers["Location"]).json()["total"] == 18
    assert get(done.headers["Location"], TD).status_code == 400  # storage refuses a second auth mechanism
    via_files = get(f"{base}/data/reports/calls/files/{job['id']}", TD)
    assert via_files.status_code == 303 and urlsplit(via_files.headers["Location"]).hostname == storage


@pytest.mark.parametrize("via", ["files-endpoint", "location"])
def test_talkdesk_files_404_once(make_sandbox, via):
    shapes = ["talkdesk-files-404-once"] + (["talkdesk-location-other-host"] if via == "location" else [])
    sandbox = make(make_sandbox, *shapes)
    job = create_job(sandbox)
    done = poll(sandbox, job)
    url = done.headers["Location"] if via == "location" else f"{sandbox.url}/data/reports/calls/files/{job['id']}"
    headers = None if via == "location" else TD
    first, again = get(url, headers), get(url, headers)
    assert first.status_code == 404
    if via == "files-endpoint":
        assert {k: first.json()[k] for k in NOT_FOUND} == NOT_FOUND
    assert again.status_code == 200 and again.json()["total"] == 18
    other = create_job(sandbox)
    poll(sandbox, other)
    assert get(f"{sandbox.url}/data/reports/calls/files/{other['id']}", TD).status_code == 404  # once per job


def test_talkdesk_status_upper(make_sandbox):
    sandbox = make(make_sandbox, "talkdesk-status-upper", job_polls=3)
    job = create_job(sandbox)
    statuses = [job["status"]] + [poll(sandbox, job).json()["job"]["status"] for _ in range(3)]
    assert statuses == ["CREATED", "PROCESSING", "UPLOADING", "DONE"]
    failing = make(make_sandbox, "talkdesk-status-upper", fail_windows=(WINDOW["from"],))
    assert poll(failing, create_job(failing)).json()["job"]["status"] == "FAILED"


@pytest.mark.parametrize(
    ("shapes", "timespan", "start", "end"),
    [
        ((), WINDOW, "2026-10-01T00:00:00+00:00", "2026-10-01T06:00:00+00:00"),
        (
            (),
            {"from": "2026-10-01T00:00:00", "to": "2026-10-01T06:00:00-04:00"},
            "2026-10-01T04:00:00+00:00",
            "2026-10-01T10:00:00+00:00",
        ),
        (
            ("talkdesk-timespan-wall",),
            {"from": "2026-10-01T00:00:00Z", "to": "2026-10-01T06:00:00+02:00"},
            "2026-10-01T04:00:00+00:00",
            "2026-10-01T10:00:00+00:00",
        ),
    ],
)
def test_talkdesk_timespan_reading(make_sandbox, shapes, timespan, start, end):
    sandbox = make(make_sandbox, *shapes)
    job = create_job(sandbox, timespan=timespan, tz="America/New_York")
    assert job["timespan"] == timespan  # echoed as given
    created = sandbox.app.events("job_created")[-1]
    assert (created["start"], created["end"]) == (start, end)


TALKDESK_TYPES = tuple(REPORT_TYPES)


def report_rows(sandbox, report_type, fmt):
    """The rows of one done job's file, parsed as the format says (CSV cells stay text)."""
    job = create_job(
        sandbox,
        fmt=fmt,
        report_type=report_type,
        timespan={"from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z"},
    )
    base = f"{sandbox.url}/data/reports/{report_type}"
    assert get(f"{base}/jobs/{job['id']}", TD).status_code == 300
    body = get(f"{base}/files/{job['id']}", TD)
    assert body.status_code == 200, body.text
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.text)))
    if fmt == "json_bulk":
        return [json.loads(line) for line in body.text.splitlines()]
    return body.json()["entries"]


@pytest.mark.parametrize("fmt", ["json", "csv", "json_bulk"])
def test_talkdesk_extra_field(make_sandbox, fmt):
    plain, extra = make(make_sandbox), make(make_sandbox, "talkdesk-extra-field")
    for report_type in TALKDESK_TYPES:
        reference, rows = report_rows(plain, report_type, fmt), report_rows(extra, report_type, fmt)
        assert len(rows) == len(reference) >= 72, report_type  # 3 events an hour; some give several rows
        assert report_type != "calls" or len(rows) == 72
        for before, after in zip(reference, rows):
            added = ("sentiment_score", "queue_tags", "sentiment_scored_at")
            assert {k: v for k, v in after.items() if k not in added} == before
            assert (after["sentiment_scored_at"] in (None, "")) == (after["sentiment_score"] in (None, ""))
            tags, score = after["queue_tags"], after["sentiment_score"]
            if fmt == "csv":  # text cells: null is empty, the list is its JSON text
                tags, score = json.loads(tags), float(score) if score else None
            assert isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)
            assert score is None or -1 <= score <= 1
        scores = [row["sentiment_score"] for row in rows]
        assert any(s in (None, "") for s in scores) and any(s not in (None, "") for s in scores), report_type
    # the same rows again: the values come from the row, not from the request
    assert report_rows(extra, "calls", fmt) == report_rows(extra, "calls", fmt)


def test_talkdesk_job_of_unknown_type_is_400(make_sandbox):
    sandbox = make(make_sandbox)
    job = create_job(sandbox)
    for method in ("GET", "DELETE"):
        answer = requests.request(
            method, f"{sandbox.url}/data/reports/weather/jobs/{job['id']}", headers=TD, timeout=10
        )
        assert answer.status_code == 400 and answer.json()["message"] == "Report type is invalid"
    assert get(f"{sandbox.url}/data/reports/contacts/jobs/{job['id']}", TD).status_code == 404


# ---- Talkdesk bulk imports -----------------------------------------------------------------------


def imports_page(sandbox, page, per_page=10):
    return get(f"{sandbox.url}/bulk-imports/users", TD, params={"page": page, "per_page": per_page}).json()


def link_query(body, rel):
    return parse_qs(urlsplit(body["_links"][rel]["href"]).query) if rel in body["_links"] else None


@pytest.mark.parametrize(
    ("shape", "next_pages"),
    [
        (None, [2, 3, 4, 5, None]),
        ("imports-next-missing", [2, None, 4, 5, None]),
        ("imports-next-repeated", [2, 2, 4, 5, None]),
    ],
)
def test_imports_next_links(make_sandbox, shape, next_pages):
    sandbox = make(make_sandbox, *filter(None, [shape]))
    seen = []
    for page in range(1, 6):  # 45 imports, 10 a page
        body = imports_page(sandbox, page)
        assert (body["count"], body["total"], body["page"], body["per_page"]) == (
            min(10, 45 - 10 * (page - 1)),
            45,
            page,
            10,
        )
        assert link_query(body, "last") == {"page": ["5"], "per_page": ["10"]}
        query = link_query(body, "next")
        seen.append(int(query["page"][0]) if query else None)
        if query:
            assert query["per_page"] == ["10"]
    assert seen == next_pages


def test_imports_links_without_per_page(make_sandbox):
    sandbox = make(make_sandbox, "imports-next-without-per-page")
    body = imports_page(sandbox, 2)
    for rel, page in (("next", "3"), ("prev", "1"), ("first", "1"), ("last", "5")):
        assert link_query(body, rel) == {"page": [page]}, rel
    assert link_query(body, "self") == {"page": ["2"], "per_page": ["10"]}
    followed = get(body["_links"]["next"]["href"], TD).json()
    assert (followed["page"], followed["per_page"]) == (3, 20)  # the default page size: drift shows


# ---- MyReports -----------------------------------------------------------------------------------


MR_REQUESTS = f"/api/v1.0/workspaces/{MYREPORTS_WS}/reports/{LONDON_REPORT}/requests"


def mr_create(sandbox, start="2026-10-01T00:00:00+00:00", end="2026-10-01T06:00:00+00:00", headers=MR):
    answer = requests.post(
        sandbox.url + MR_REQUESTS,
        headers=headers,
        timeout=10,
        json={"reportId": LONDON_REPORT, "dateFilter": {"start": start, "end": end}},
    )
    assert answer.status_code == 200, answer.text
    return f"{sandbox.url}{MR_REQUESTS}/{answer.json()['data']['requestId']}"


def mr_result(sandbox, **window):
    url = mr_create(sandbox, **window)
    assert get(url, MR).json()["data"]["status"] in ("Complete", "COMPLETE")
    return get(url + "/data", MR)


def test_myreports_request_after_data(make_sandbox):
    reference = mr_result(make(make_sandbox)).json()
    body = mr_result(make(make_sandbox, "myreports-request-after-data")).json()
    assert list(body)[:3] == ["requestId", "data", "request"]
    assert list(reference)[:3] == ["requestId", "tenantId", "request"]
    assert set(body) == set(reference) and body["data"] == reference["data"] and len(body["data"]) == 24


def test_myreports_no_timezone(make_sandbox):
    assert mr_result(make(make_sandbox)).json()["request"]["timeZoneId"] == "Europe/London"
    answer = mr_result(make(make_sandbox, "myreports-no-timezone"))
    assert "timeZoneId" not in answer.json()["request"]
    assert b"Europe/" not in answer.content


@pytest.mark.parametrize(
    ("shape", "errors"),
    [("myreports-error-envelope-once", [True, False, False]), ("myreports-error-envelope-always", [True, True, True])],
)
def test_myreports_error_envelope(make_sandbox, shape, errors):
    sandbox = make(make_sandbox, shape)
    url = mr_create(sandbox)
    get(url, MR)
    answers = [get(url + "/data", MR) for _ in errors]
    assert {a.status_code for a in answers} == {200}
    for answer, error in zip(answers, errors):
        body = answer.json()
        if error:
            assert {k: body[k] for k in ("data", "error", "message", "status")} == {
                "data": None,
                "error": "InternalError",
                "message": "Result not available",
                "status": "error",
            }
            assert body["timestamp"]
        else:
            assert body["totalCount"] == len(body["data"]) == 24


def test_myreports_count_short_once(make_sandbox):
    sandbox = make(make_sandbox, "myreports-count-short-once")
    first, second = mr_result(sandbox).json(), mr_result(sandbox).json()
    assert first["totalCount"] == len(first["data"]) + 1 == 24 and first["rowLimitExceeded"] is False
    assert second["totalCount"] == len(second["data"]) == 24
    assert second["data"][:-1] == first["data"]


def test_myreports_data_enveloped(make_sandbox):
    reference = mr_result(make(make_sandbox)).json()
    body = mr_result(make(make_sandbox, "myreports-data-enveloped")).json()
    assert set(body) == {"data", "error", "message", "status", "timestamp"}
    assert (body["error"], body["message"], body["status"]) == (None, None, "success")
    assert set(body["data"]) == set(reference) and body["data"]["data"] == reference["data"]


def test_myreports_status_upper(make_sandbox):
    sandbox = make(make_sandbox, "myreports-status-upper", job_polls=2)
    url = mr_create(sandbox)
    assert [get(url, MR).json()["data"]["status"] for _ in range(2)] == ["PROCESSING", "COMPLETE"]


def test_myreports_other_template(make_sandbox):
    reference = mr_result(make(make_sandbox)).json()
    body = mr_result(make(make_sandbox, "myreports-other-template")).json()
    assert reference["request"]["reportTemplateName"] == "CallListByUserSegmented"
    assert body["request"]["reportTemplateName"] == "CallSummaryByUser"
    shown = [f["fieldName"] for f in body["request"]["displayFields"]]
    assert shown == [f["fieldName"] for f in reference["request"]["displayFields"]] + [
        "talkTime",
        "holdCount",
        "transferredTo",
    ]
    assert len(body["data"]) == len(reference["data"]) == 24
    for before, after in zip(reference["data"], body["data"]):
        assert {k: v for k, v in after.items() if k not in ("talkTime", "holdCount", "transferredTo")} == before
        assert isinstance(after["talkTime"], float) and isinstance(after["holdCount"], int)
    transferred = [row.get("transferredTo") for row in body["data"]]
    assert None in transferred and any(isinstance(t, str) and t for t in transferred)  # only some rows carry it


# ---- tokens --------------------------------------------------------------------------------------


MR_CLIENT = ("sandbox-myreports-client", "sandbox-myreports-secret")


def td_token(sandbox):
    return requests.post(
        f"{sandbox.url}/oauth/token",
        auth=("sandbox-client-id", "sandbox-client-secret"),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )


def mr_grant(sandbox, refresh="sandbox-myreports-refresh", client=MR_CLIENT, basic=True):
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    if not basic:
        form |= {"client_id": client[0], "client_secret": client[1]}
    return requests.post(f"{sandbox.url}/myreports/oauth/token", data=form, auth=client if basic else None, timeout=10)


def jwt_payload(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def workspaces(sandbox, token):
    return get(f"{sandbox.url}/api/v1.0/workspaces", {"Authorization": f"Bearer {token}"})


def test_token_fault_first(make_sandbox):
    sandbox = make(make_sandbox, "token-fault-first")
    assert [td_token(sandbox).status_code for _ in range(2)] == [503, 200]
    assert [mr_grant(sandbox).status_code for _ in range(2)] == [503, 200]  # each endpoint once


@pytest.mark.parametrize("basic", [True, False], ids=["basic-auth", "form-auth"])
def test_myreports_refresh_grant(make_sandbox, basic):
    sandbox = make(make_sandbox)
    before = int(time.time())
    answer = mr_grant(sandbox, basic=basic)
    after = time.time()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600) and "refresh_token" not in body
    claims = jwt_payload(body["access_token"])
    assert claims["sub"] == "sandbox" and before + 3600 <= claims["exp"] <= after + 3600  # issued while asked
    assert workspaces(sandbox, body["access_token"]).status_code == 200
    assert mr_grant(sandbox, basic=basic).status_code == 200  # no rotation: the refresh token keeps working
    wrong_client = mr_grant(sandbox, client=(MR_CLIENT[0], "nope"), basic=basic)
    assert wrong_client.status_code == 401 and wrong_client.json()["error"] == "invalid_client"
    wrong_refresh = mr_grant(sandbox, refresh="nope", basic=basic)
    assert wrong_refresh.status_code == 400 and wrong_refresh.json()["error"] == "invalid_grant"
    assert [e["client_auth"] for e in sandbox.app.events("myreports_refresh_used")] == [
        "basic" if basic else "form"
    ] * 2
    assert [e["token"] for e in sandbox.app.events("myreports_token_issued")][0] == body["access_token"]


def test_myreports_refresh_rotation(make_sandbox):
    sandbox = make(make_sandbox, myreports_rotate_refresh=True)
    first = mr_grant(sandbox).json()
    assert mr_grant(sandbox).json()["error"] == "invalid_grant"  # the used refresh token is dead
    second = mr_grant(sandbox, refresh=first["refresh_token"]).json()
    assert second["refresh_token"] not in (first["refresh_token"], "sandbox-myreports-refresh")
    assert mr_grant(sandbox, refresh=first["refresh_token"]).status_code == 400
    assert workspaces(sandbox, second["access_token"]).status_code == 200


def test_myreports_expired_access_token_refused(make_sandbox):
    sandbox = make(make_sandbox, myreports_access_ttl=0, myreports_token_expires_in=False)
    body = mr_grant(sandbox).json()
    assert "expires_in" not in body and jwt_payload(body["access_token"])["exp"] <= time.time()
    refused = workspaces(sandbox, body["access_token"])
    assert refused.status_code == 401 and refused.json()["error"] == "Unauthorised"
    assert workspaces(sandbox, "sandbox-myreports-token").status_code == 200  # the static token still works


# ---- forgetting jobs, auth_seen, configuration ---------------------------------------------------


def test_forget_one_job_then_all(make_sandbox):
    sandbox = make(make_sandbox)
    kept, forgotten = create_job(sandbox), create_job(sandbox)
    poll(sandbox, kept)
    request_url = mr_create(sandbox)
    answer = requests.post(f"{sandbox.url}/_sandbox/forget", params={"job_id": forgotten["id"]}, timeout=10)
    assert answer.json() == {"forgotten": [forgotten["id"]]}
    assert poll(sandbox, forgotten).status_code == 404
    assert get(f"{sandbox.url}/data/reports/calls/files/{kept['id']}", TD).status_code == 200
    assert get(request_url, MR).status_code == 200
    everything = requests.post(f"{sandbox.url}/_sandbox/forget", timeout=10).json()["forgotten"]
    assert set(everything) == {kept["id"], request_url.rsplit("/", 1)[1]}
    assert get(f"{sandbox.url}/data/reports/calls/files/{kept['id']}", TD).status_code == 404
    assert get(request_url, MR).status_code == 404 and get(request_url + "/data", MR).status_code == 404
    assert [e["job_ids"] for e in sandbox.app.events("job_forgotten")] == [[forgotten["id"]], everything]


def test_auth_seen_names_host_and_credential(make_sandbox):
    sandbox = make(make_sandbox, "talkdesk-location-other-host")
    job = create_job(sandbox)
    get(poll(sandbox, job).headers["Location"])
    requests.get(f"{sandbox.url}/_sandbox/health", headers=TD, timeout=10)
    port = urlsplit(sandbox.url).port
    seen = [(e["host"], e["path"].split("/")[1], e["authorization"]) for e in sandbox.app.events("auth_seen")]
    assert seen == [
        (f"127.0.0.1:{port}", "data", True),
        (f"127.0.0.1:{port}", "data", True),
        (f"localhost:{port}", "_storage", False),
    ]


def test_unknown_shape_is_refused(capsys):
    with pytest.raises(ValueError, match="talkdesk-bare-array") as refused:
        SandboxConfig(shapes=("talkdesk-bare-aray",))
    assert all(name in str(refused.value) for name in SHAPES)
    with pytest.raises(SystemExit) as exited:
        sandbox_cli(["--port", "0", "--shape", "imports-next-missing", "--shape", "nope"])
    assert exited.value.code == 2 and "unknown sandbox shape 'nope'" in capsys.readouterr().err


# ---- the job clock -------------------------------------------------------------------------------------


def test_jobs_finish_on_their_own_clock_polled_or_not(make_sandbox):
    """As at the vendors: a job nobody polls (its client stopped, e.g. by `meltano config test`)
    finishes after job_wall_seconds and frees its slot; polls still finish it sooner (job_polls).
    The wall time is moved, not waited for: the slots stay full until the test says so."""
    sandbox = make(
        make_sandbox, job_polls=5, job_wall_seconds=3600, talkdesk_max_active_jobs=2, myreports_max_active_requests=1
    )
    left = [create_job(sandbox), create_job(sandbox)]
    mr_left = mr_create(sandbox)
    full = requests.post(
        f"{sandbox.url}/data/reports/calls/jobs",
        headers=TD,
        timeout=10,
        json={"name": "t", "format": "json", "timespan": WINDOW},
    )
    assert full.status_code == 429
    assert (
        requests.post(
            sandbox.url + MR_REQUESTS,
            headers=MR,
            timeout=10,
            json={
                "reportId": LONDON_REPORT,
                "dateFilter": {"start": "2026-10-02T00:00:00Z", "end": "2026-10-02T06:00:00Z"},
            },
        ).status_code
        == 429
    )
    sandbox.app.config.job_wall_seconds = 0.0  # their wall time has come (read at each request)
    create_job(sandbox), mr_create(sandbox, start="2026-10-02T00:00:00+00:00", end="2026-10-02T06:00:00+00:00")
    finished = {e["job_id"] for e in sandbox.app.events("job_finished") if e.get("by") == "clock"}
    assert {left[0]["id"], left[1]["id"], mr_left.rsplit("/", 1)[1]} <= finished
    # a job the clock finished answers done at its first poll, with its file
    assert poll(sandbox, left[0]).status_code == 300
    assert read_file(sandbox, left[0]).content
    assert get(mr_left, MR).json()["data"]["status"] == "Complete"
    assert get(mr_left + "/data", MR).status_code == 200


def test_polls_finish_a_job_before_its_wall_time(make_sandbox):
    sandbox = make(make_sandbox, job_polls=2, job_wall_seconds=3600)
    job = create_job(sandbox)
    assert poll(sandbox, job).json()["job"]["status"] == "processing"
    assert poll(sandbox, job).status_code == 300
