"""Credentials: token fetches under the retry policy, 401s across threads, credentials only to
their own host, and MyReports' refresh-token flow (expiry, rotation, refusal)."""

from __future__ import annotations

import base64
import json
import logging
import stat
import threading
import time
import types
import typing as t

import pytest
import requests

from helpers import catalog_selecting, run_cli, sandbox_config, sync
from tap_callreports.auth import BearerTokenAuth
from tap_callreports.oauth import OAuthTokenAuth, RefreshTokenAuth, saved_token_key
from tap_callreports.retry import RetryPolicy, TokenRefreshed

if t.TYPE_CHECKING:
    from tap_callreports.sandbox import RunningSandbox

API = "https://api.example.com"


# ---- 401s with one token shared by many threads (no HTTP: the rule itself) -------------------------


class SequentialTokens(OAuthTokenAuth):
    """token-1, token-2, ... from a token URL that always answers."""

    def __init__(self) -> None:
        super().__init__(
            [API],
            "https://id.example.com/oauth/token",
            credential_settings="the client",
            retry_policy=RetryPolicy(max_retries=0),
            timeout=1,
            logger=logging.getLogger("test"),
        )
        self.fetched = 0

    def request_token(self) -> tuple[str, float]:
        self.fetched += 1
        return f"token-{self.fetched}", 3600.0


def answer(auth: OAuthTokenAuth, token: str, refused: set[str]) -> str:
    """What the client makes of an API answer to a request that carried `token`:
    'ok', 'retry' (TokenRefreshed) or 'fatal' (unauthorized returned)."""
    response = requests.Response()
    response.status_code = 401 if token in refused else 200
    response.request = requests.Request("GET", f"{API}/x", headers={"Authorization": f"Bearer {token}"}).prepare()
    if response.status_code == 200:
        auth.authorized(response)
        return "ok"
    try:
        auth.unauthorized(response)
    except TokenRefreshed:
        return "retry"
    return "fatal"


def current(auth: OAuthTokenAuth) -> str:
    return auth.authorization().removeprefix("Bearer ")


def test_401s_on_many_threads_at_once_fetch_one_token_and_none_is_fatal():
    auth = SequentialTokens()
    first = current(auth)
    refused = {first}  # the vendor revoked it: every request in flight with it gets a 401
    threads = 8
    carried = threading.Barrier(threads)
    outcomes: list[list[str]] = [[] for _ in range(threads)]

    def worker(n: int) -> None:
        token = current(auth)
        carried.wait()  # every thread has sent token-1 before any 401 is handled
        for _ in range(3):
            outcome = answer(auth, token, refused)
            outcomes[n].append(outcome)
            if outcome != "retry":
                return
            token = current(auth)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert all(o == ["retry", "ok"] for o in outcomes), outcomes
    assert auth.fetched == 2  # token-1, and one replacement for all eight threads


def test_a_late_401_with_a_replaced_token_retries_while_the_new_one_is_on_probation():
    auth = SequentialTokens()
    refused = {current(auth)}
    assert answer(auth, "token-1", refused) == "retry"  # thread A: drops token-1
    assert current(auth) == "token-2"  # on probation: fetched because of a 401
    assert answer(auth, "token-1", refused) == "retry"  # thread B's 401, sent before: just retry
    assert auth.fetched == 2  # ...with the current token, not a third one
    assert answer(auth, "token-2", refused) == "ok"


def test_a_401_with_a_token_on_probation_is_fatal_and_an_old_tokens_success_proves_nothing():
    auth = SequentialTokens()
    refused = {current(auth)}
    assert answer(auth, "token-1", set()) == "ok"  # token-1 works for a while
    assert answer(auth, "token-1", refused) == "retry"
    assert current(auth) == "token-2"
    assert answer(auth, "token-1", set()) == "ok"  # a late success of a request sent with token-1
    refused.add("token-2")
    assert answer(auth, "token-2", refused) == "fatal"  # token-2 never worked


def test_fresh_tokens_refused_on_first_use_are_fatal_only_after_a_bounded_retry():
    auth = SequentialTokens()
    auth.retry_policy = RetryPolicy(max_retries=2)
    bound = auth.fresh_token_tries
    assert bound == 4  # noqa: PLR2004 - twice max_retries: random revocations rarely hit 4 fresh tokens in a row
    refused = {current(auth)}
    assert answer(auth, "token-1", refused) == "retry"
    for n in range(2, bound + 1):  # revoked under load before their first success
        refused.add(current(auth))
        assert answer(auth, f"token-{n}", refused) == "retry"
    refused.add(current(auth))
    assert answer(auth, f"token-{bound + 1}", refused) == "fatal"  # one more in a row: the credentials
    assert auth.fetched == bound + 1


def test_a_success_between_refused_fresh_tokens_starts_the_count_again():
    auth = SequentialTokens()
    auth.retry_policy = RetryPolicy(max_retries=2)
    refused = {current(auth)}
    assert answer(auth, "token-1", refused) == "retry"
    refused.add(current(auth))
    assert answer(auth, "token-2", refused) == "retry"  # one fresh token refused
    assert answer(auth, current(auth), refused) == "ok"  # token-3 works: the credentials are fine
    refused.add("token-3")
    assert answer(auth, "token-3", refused) == "retry"
    refused.add(current(auth))
    assert answer(auth, "token-4", refused) == "retry"  # again one fresh token refused, not two
    assert answer(auth, current(auth), refused) == "ok"
    assert auth.fetched == 5


def test_a_success_proves_the_new_token_so_its_own_expiry_later_is_refreshed():
    auth = SequentialTokens()
    refused = {current(auth)}
    assert answer(auth, "token-1", refused) == "retry"
    assert answer(auth, current(auth), refused) == "ok"  # token-2 proven
    refused.add("token-2")
    assert answer(auth, "token-2", refused) == "retry"
    assert current(auth) == "token-3"


def test_a_401_on_a_request_without_our_token_is_fatal():
    auth = SequentialTokens()
    current(auth)
    assert answer(auth, "someone-elses", {"someone-elses"}) == "fatal"


# ---- credentials only to their own host ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "belongs"),
    [
        ("https://api.example.com/bulk-imports/users?page=2", True),
        ("https://API.example.com:443/x", True),
        ("http://api.example.com/x", False),  # another scheme
        ("https://api.example.com:8443/x", False),  # another port
        ("https://storage.example.com/file?sig=1", False),
        ("https://api.example.com.evil.test/x", False),
        ("https://user@api.example.com/x", True),
    ],
)
def test_credentials_go_only_to_their_own_host(url, belongs):
    auth = BearerTokenAuth("t0ken", "x_token", [f"{API}/api"])
    assert auth.belongs_to(url) is belongs
    request = requests.Request("GET", url, headers={"Authorization": "Bearer leftover"}).prepare()
    auth(request)
    assert request.headers.get("Authorization") == ("Bearer t0ken" if belongs else None)


def test_a_download_on_another_host_never_sees_a_credential(make_sandbox):
    """Over HTTP: the API answers with a signed URL on another host (localhost for 127.0.0.1)."""
    sandbox = make_sandbox(shapes=("talkdesk-location-other-host",), talkdesk_file_redirect="always")
    run = sync(sandbox_config(sandbox, vendors=("talkdesk",)), streams=["talkdesk_calls"])
    assert run.error is None, run.error
    other = [e for e in sandbox.app.events("auth_seen") if not e["host"].startswith("127.0.0.1")]
    assert other, "the shape sends downloads to another host"
    assert not [e for e in other if e["authorization"]]


# ---- token fetches under the retry policy ------------------------------------------------------------


def test_a_failing_token_endpoint_is_retried_then_gives_up_in_one_line(tmp_path, make_sandbox):
    sandbox = make_sandbox(faults="always-500")
    config = sandbox_config(sandbox, vendors=("talkdesk",), max_retries=2)
    run = run_cli(tmp_path, config, catalog=catalog_selecting(config, ["talkdesk_imports"]))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith(
        "tap-callreports: error: talkdesk_imports: gave up after 3 attempts: token request to "
        f"{sandbox.url.removeprefix('http://')}/oauth/token failed: 500 "
    )
    assert last.endswith("; run again later or raise max_retries")
    token_requests = [e for e in sandbox.app.events("request") if e["path"] == "/oauth/token"]
    assert len(token_requests) == 3
    retries = [line for line in run.stderr_lines if "token request to" in line and "retrying in" in line]
    assert len(retries) == 2
    assert "sandbox-client-secret" not in run.stderr


def test_token_retries_wait_retry_after_exactly_else_back_off(monkeypatch):
    from singer_sdk.exceptions import RetriableAPIError

    waits: list[float] = []
    monkeypatch.setattr("tap_callreports.retry.time.sleep", waits.append)

    def answer_with(status: int, headers: dict) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        return response

    failures = [answer_with(429, {"Retry-After": "7"}), answer_with(503, {})]

    def attempt() -> str:
        if failures:
            raise RetriableAPIError("busy", failures.pop(0))
        return "token"

    policy = RetryPolicy(max_retries=2, base_seconds=1.0)
    assert (
        policy.call(attempt, what="token request to id.example.com/oauth/token", logger=logging.getLogger("test"))
        == "token"
    )
    assert waits[0] == 7  # the vendor's Retry-After, no jitter
    assert 1.0 <= waits[1] <= 2.0  # second retry: base x 2, jittered down to half


# ---- MyReports: refresh tokens over HTTP -------------------------------------------------------------

REFRESH = {
    "myreports_refresh_token": "sandbox-myreports-refresh",
    "myreports_client_id": "sandbox-myreports-client",
    "myreports_client_secret": "sandbox-myreports-secret",
}


def refresh_config(sandbox: RunningSandbox, **overrides: t.Any) -> dict:
    """Four daily windows, jobs slower than the 2-second access tokens: tokens expire mid-run."""
    config = sandbox_config(
        sandbox,
        vendors=("myreports",),
        start_date="2026-09-30T00:00:00Z",
        job_poll_interval_seconds=0.2,
        job_poll_max_interval_seconds=0.4,
        max_concurrent_jobs=2,
        myreports_token_url=f"{sandbox.url}/myreports/oauth/token",
        **REFRESH,
    )
    del config["myreports_token"]
    config.update(overrides)
    return config


def slow_sandbox(
    make_sandbox: t.Callable[..., RunningSandbox], monkeypatch: pytest.MonkeyPatch, **overrides: t.Any
) -> tuple[RunningSandbox, list[str]]:
    """A sandbox whose access tokens live 2 s; also the API requests it refused (token expired)."""
    from tap_callreports.sandbox.myreports import MyReportsApi

    refusals: list[str] = []
    original = MyReportsApi._auth

    def counting(self, request):
        denied = original(self, request)
        if denied is not None:
            refusals.append(request.path)
        return denied

    monkeypatch.setattr(MyReportsApi, "_auth", counting)  # the sandbox runs in this process
    settings = {"myreports_access_ttl": 2, "job_seconds": 1.5, **overrides}
    return make_sandbox(**settings), refusals


def doc_ids(run: t.Any) -> list[str]:
    return sorted(r["doc_id"] for r in run.records("myreports_call_rows"))


#: Access tokens of the clocked sandbox live 10 minutes: not the 3600 s the tap assumes of a token
#: that states no lifetime, so a renewal on time shows the lifetime was read.
CLOCKED_TTL = 600


class TokenClock:
    """The clock the token code reads on both sides (the tap's oauth module, the sandbox's MyReports
    module; the run is in this process): the real clock, plus jumps the test makes."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def time(self) -> float:
        return time.time() + self.ahead

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def module(self, *faked: str) -> types.SimpleNamespace:
        """The `time` module with the `faked` functions read from this clock."""
        real = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
        return types.SimpleNamespace(**(real | {name: getattr(self, name) for name in faked}))


def clocked_sandbox(
    make_sandbox: t.Callable[..., RunningSandbox], monkeypatch: pytest.MonkeyPatch, **overrides: t.Any
) -> tuple[RunningSandbox, list[tuple[str, int]]]:
    """A sandbox whose MyReports access tokens expire by a clock the test moves, and the requests it
    refused (path, tokens issued by then). Each time the run creates a request, the clock jumps to
    halfway through the current token's renewal margin (the end of its life that the tap does not
    use): the tap's next request must renew it first, while requests already sent with it still
    pass. A token is refused only when used after the next token's jump, so the first renewal,
    before any token can be refused, shows whether the tap renews before expiry, whatever the
    machine's load."""
    from tap_callreports import oauth
    from tap_callreports.sandbox import myreports

    clock = TokenClock()
    monkeypatch.setattr(oauth, "time", clock.module("time", "monotonic"))
    monkeypatch.setattr(myreports, "time", clock.module("time"))  # token expiry only; the job clock stays real
    sandbox = make_sandbox(**{"myreports_access_ttl": CLOCKED_TTL, **overrides})
    margin = min(oauth.TOKEN_SAFETY_MARGIN_SECONDS, CLOCKED_TTL / 10)
    app, note = sandbox.app, sandbox.app.event

    def event(kind: str, **details: t.Any) -> None:
        note(kind, **details)
        issued = app.events("myreports_token_issued") if kind == "job_created" else []
        if issued and clock.time() < issued[-1]["exp"] - margin / 2:
            clock.ahead += issued[-1]["exp"] - margin / 2 - clock.time()

    app.event = event  # the vendors note events through the app, in this process
    refusals: list[tuple[str, int]] = []
    original = myreports.MyReportsApi._auth

    def counting(self: t.Any, request: t.Any) -> t.Any:
        denied = original(self, request)
        if denied is not None:
            refusals.append((request.path, len(app.events("myreports_token_issued"))))
        return denied

    monkeypatch.setattr(myreports.MyReportsApi, "_auth", counting)
    return sandbox, refusals


def test_refresh_token_run_renews_expiring_tokens_and_gets_the_static_runs_rows(make_sandbox, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    sandbox, refusals = clocked_sandbox(make_sandbox, monkeypatch)
    static = sync(sandbox_config(sandbox, vendors=("myreports",), start_date="2026-09-30T00:00:00Z"))
    assert static.error is None, static.error
    run = sync(refresh_config(sandbox))
    assert run.error is None, run.error
    assert doc_ids(run) == doc_ids(static) and len(doc_ids(run)) > 0
    issued = sandbox.app.events("myreports_token_issued")
    assert len(issued) >= 2  # the run outlived its first token
    assert [path for path, tokens in refusals if tokens < 2] == []  # renewed before expiry, not after a 401
    used = sandbox.app.events("myreports_refresh_used")
    assert {e["refresh_token"] for e in used} == {"sandbox-myreports-refresh"}
    assert not (tmp_path / ".callreports").exists()  # no rotation, nothing saved


def test_without_expires_in_the_jwt_exp_decides_renewal(make_sandbox, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    sandbox, refusals = clocked_sandbox(make_sandbox, monkeypatch, myreports_token_expires_in=False)
    run = sync(refresh_config(sandbox))
    assert run.error is None, run.error
    issued = sandbox.app.events("myreports_token_issued")
    assert len(issued) >= 2
    # renewed from exp, before expiry; assuming 3600 s would have waited for a 401
    assert [path for path, tokens in refusals if tokens < 2] == []


def test_jwt_exp_is_read_without_verifying():
    def jwt(claims: dict) -> str:
        part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"eyJhbGciOiJIUzI1NiJ9.{part}.c2ln"

    auth = RefreshTokenAuth(
        [API],
        "https://id.example.com/token",
        "r",
        None,
        None,
        credential_settings="x",
        retry_policy=RetryPolicy(),
        timeout=1,
        logger=logging.getLogger("test"),
        saved_path=None,
    )
    assert 95 < auth.lifetime({"access_token": jwt({"exp": time.time() + 100})}) <= 100
    assert auth.lifetime({"access_token": jwt({"exp": time.time() + 100}), "expires_in": 50}) == 50
    assert 95 < auth.lifetime({"access_token": jwt({"exp": time.time() + 100}), "expires_in": 500}) <= 100
    assert auth.lifetime({"access_token": "opaque"}) == 3600
    assert auth.lifetime({"access_token": jwt({"exp": time.time() - 5})}) == 3600  # past exp: skewed clock


def test_rotated_refresh_token_is_saved_privately_and_used_by_the_next_run(make_sandbox, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    sandbox, _ = slow_sandbox(make_sandbox, monkeypatch, myreports_rotate_refresh=True)
    config = refresh_config(sandbox)
    run = run_cli(tmp_path, config)
    assert run.returncode == 0, run.stderr[-2000:]
    saved_path = tmp_path / ".callreports" / "myreports_refresh_token.json"
    saved = json.loads(saved_path.read_text())
    assert stat.S_IMODE(saved_path.stat().st_mode) == 0o600
    assert saved["replaces_sha256"] == saved_token_key(
        config["myreports_token_url"], config.get("myreports_client_id"), "sandbox-myreports-refresh"
    )
    used = [e["refresh_token"] for e in sandbox.app.events("myreports_refresh_used")]
    assert len(used) >= 2 and saved["refresh_token"] not in used  # the last one issued, never used yet
    warnings = [line for line in run.stderr_lines if "is now stale" in line]
    assert len(warnings) == 1
    assert (
        str(saved_path) in warnings[0] and "meltano config set tap-callreports myreports_refresh_token" in warnings[0]
    )
    tokens = [e["token"] for e in sandbox.app.events("myreports_token_issued")]
    refresh_tokens = [*used, saved["refresh_token"]]
    output = run.stdout + run.stderr  # type: ignore[attr-defined]
    assert [s for s in [*tokens, *refresh_tokens] if s in output] == []

    # The configured token is dead now (rotation): the next run goes on from the saved one.
    second = run_cli(tmp_path, config)
    assert second.returncode == 0, second.stderr[-2000:]
    used_next = [e["refresh_token"] for e in sandbox.app.events("myreports_refresh_used")][len(used) :]
    assert used_next[0] == saved["refresh_token"]
    again = json.loads(saved_path.read_text())
    assert again["replaces_sha256"] == saved["replaces_sha256"]  # still keyed on the configured token
    assert again["refresh_token"] != saved["refresh_token"]


def test_a_new_configured_refresh_token_wins_over_the_saved_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".callreports").mkdir()
    (tmp_path / ".callreports" / "myreports_refresh_token.json").write_text(
        json.dumps(
            {
                "replaces_sha256": saved_token_key("https://id.example.com/token", "client", "older"),
                "refresh_token": "saved",
                "saved_at": "x",
            }
        )
    )

    def auth_for(
        configured: str, token_url: str = "https://id.example.com/token", client_id: str | None = "client"
    ) -> RefreshTokenAuth:
        return RefreshTokenAuth(
            [API],
            token_url,
            configured,
            client_id,
            "secret",
            credential_settings="x",
            retry_policy=RetryPolicy(),
            timeout=1,
            logger=logging.getLogger("test"),
        )

    assert auth_for("newer").refresh_token == "newer"
    assert auth_for("older").refresh_token == "saved"
    # The same token text at another token URL or for another client is another token: not replaced.
    assert auth_for("older", token_url="https://other.example.com/token").refresh_token == "older"
    assert auth_for("older", client_id="another-client").refresh_token == "older"
    assert auth_for("older", client_id=None).refresh_token == "older"


def test_a_refused_refresh_token_is_one_line_naming_the_setting(tmp_path, sandbox, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_cli(tmp_path, refresh_config(sandbox, myreports_refresh_token="revoked-refresh-token"))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-callreports: error: myreports_call_rows: the MyReports token URL ")
    assert "/myreports/oauth/token refused myreports_refresh_token (invalid_grant: " in last
    assert last.endswith("get a new refresh token and set myreports_refresh_token")
    assert "revoked-refresh-token" not in run.stdout + run.stderr  # type: ignore[attr-defined]


def test_a_refused_client_names_the_client_settings(tmp_path, sandbox, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_cli(tmp_path, refresh_config(sandbox, myreports_client_secret="wrong-secret"))
    assert run.returncode == 1
    last = run.stderr_lines[-1]
    assert "refused myreports_refresh_token (invalid_client: " in last and "myreports_client_secret" in last


def test_a_token_endpoint_503_once_is_retried_for_talkdesk_and_myreports(make_sandbox, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    sandbox = make_sandbox(shapes=("token-fault-first",))
    config = refresh_config(sandbox) | {
        k: v for k, v in sandbox_config(sandbox, vendors=("talkdesk",)).items() if k.startswith("talkdesk_")
    }
    run = sync(config, streams=["talkdesk_imports", "myreports_call_rows"])
    assert run.error is None, run.error
    assert sandbox.app.events("imports_page") and run.records("myreports_call_rows")  # both got through
    faults = {e["path"] for e in sandbox.app.events("fault") if e["fault"] == "503"}
    assert faults == {"/oauth/token", "/myreports/oauth/token"}
    assert len(sandbox.app.events("token_issued")) == 1
    assert len(sandbox.app.events("myreports_token_issued")) == 1
