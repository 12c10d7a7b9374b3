"""Tokens fetched at run time: OAuth2 client credentials (Talkdesk) and the refresh grant with
rotation (MyReports), renewed before they expire and judged again on a 401.

Token fetches run under the tap's retry policy; token URLs get only the client credentials or the
refresh token (never the API's hosts' credentials), and the tokens stay on the hosts of auth.py.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
import typing as t
from pathlib import Path

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_callreports.auth import CallReportsAuth, host_path
from tap_callreports.ratelimit import RateLimited
from tap_callreports.retry import RetryPolicy, TokenRefreshed

# Refresh this long before expires_in runs out (at most 10% of the lifetime), so no request
# leaves with a dying token.
TOKEN_SAFETY_MARGIN_SECONDS = 60.0
# Lifetime assumed when a token answer says nothing about it.
DEFAULT_TOKEN_SECONDS = 3600.0
# Where a rotated MyReports refresh token is kept (under the working directory: Meltano runs
# plugins in the project directory) until a human stores it in the config.
SAVED_REFRESH_TOKEN_PATH = Path(".callreports") / "myreports_refresh_token.json"


class OAuthTokenAuth(CallReportsAuth):
    """A bearer token from a token URL, shared by every thread of the tap.

    Renewed shortly before it expires. A 401 is judged against the token its request carried: a
    token already replaced retries with the current one; the current token is dropped and the
    request retried with a new one. A token fetched because of a 401 is on probation until a
    request succeeds with it: only `fresh_token_tries` such tokens in a row refused before any
    success make the 401 fatal (tokens are also revoked at random under load).
    Subclasses say how one token is requested (`request_token`).
    """

    def __init__(
        self,
        hosts: t.Iterable[str],
        token_url: str,
        *,
        credential_settings: str,
        retry_policy: RetryPolicy,
        timeout: float,
        logger: logging.Logger,
        user_agent: str = "tap-callreports",
    ) -> None:
        super().__init__(hosts, credential_settings)
        self.token_url = token_url
        self.retry_policy = retry_policy
        self.logger = logger
        self._timeout = timeout
        self._user_agent = user_agent
        # Reentrant: logging while a token is fetched asks secrets() of this very authenticator.
        self._lock = threading.RLock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._next_on_probation = False  # the token to fetch replaces one a 401 refused
        self._on_probation = False  # the current token came after a 401 and nothing succeeded with it yet
        self._issued: list[str] = []
        self._said_no_lifetime = False
        self._fresh_refused = 0  # fresh tokens in a row refused before any success with them

    @property
    def fresh_token_tries(self) -> int:
        """Fresh tokens in a row that may be refused on first use before the refusal is fatal."""
        return max(1, 2 * self.retry_policy.max_retries)

    # ---- the token -----------------------------------------------------------------------------

    def authorization(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._renew()
            return f"Bearer {self._token}"

    def _renew(self) -> None:
        token, expires_in = self.retry_policy.call(
            self.request_token,
            what=f"token request to {host_path(self.token_url)}",
            url=self.token_url,
            logger=self.logger,
        )
        self._issued.append(token)
        self._token = token
        self._expires_at = time.monotonic() + expires_in - min(TOKEN_SAFETY_MARGIN_SECONDS, expires_in / 10)
        self._on_probation, self._next_on_probation = self._next_on_probation, False

    def request_token(self) -> tuple[str, float]:
        """One token request: (access token, lifetime in seconds). Raises RetriableAPIError when
        trying again can help, FatalAPIError when the credentials are refused."""
        raise NotImplementedError

    def lifetime(self, body: dict) -> float:
        """Seconds a token answer's access token lives: `expires_in`, or the JWT's own `exp` when it
        is sooner or the only one given, else DEFAULT_TOKEN_SECONDS (said once at INFO)."""
        known = [seconds for seconds in (_expires_in(body), _jwt_seconds_left(body["access_token"])) if seconds]
        if known:
            return min(known)
        if not self._said_no_lifetime:
            self._said_no_lifetime = True
            self.logger.info(
                "token from %s: no expires_in and no future exp in the token; assuming it lives "
                "%d s (a 401 renews it sooner)",
                host_path(self.token_url),
                DEFAULT_TOKEN_SECONDS,
            )
        return DEFAULT_TOKEN_SECONDS

    def post_token_form(self, form: dict[str, str], basic: tuple[str, str] | None) -> requests.Response:
        """POST the token URL; 429 and 5xx raise RateLimited (with the wait the answer asked for),
        network failures RetriableAPIError."""
        try:
            response = requests.post(
                self.token_url,
                data=form,
                auth=basic,
                timeout=self._timeout,
                headers={"Accept": "application/json", "User-Agent": self._user_agent},
            )
        except requests.RequestException as exc:
            raise RetriableAPIError(type(exc).__name__) from exc  # the cause: whether the host was reached
        if response.status_code == 429 or response.status_code >= 500:  # noqa: PLR2004
            raise RateLimited(f"{response.status_code} {response.reason} {_vendor_error(response)}".strip(), response)
        return response

    # ---- answers -------------------------------------------------------------------------------

    def unauthorized(self, response: requests.Response) -> str | None:
        sent = _sent_authorization(response)
        with self._lock:
            if self._token is not None and sent == f"Bearer {self._token}":
                if self._on_probation:
                    # A token fetched after a 401 was refused before it ever worked. Tokens are also
                    # revoked at random under load, so only a few fresh ones in a row refused on
                    # their first use say the credentials themselves are refused.
                    self._fresh_refused += 1
                    if self._fresh_refused >= self.fresh_token_tries:
                        return (
                            f"{self._fresh_refused} fresh token(s) in a row were refused before any request "
                            "succeeded with them"
                        )
                self._token = None
                self._next_on_probation = True
            elif not any(sent == f"Bearer {issued}" for issued in self._issued):
                return None  # the request did not carry one of our tokens: a new token cannot help
            # else: the token the request carried was already replaced; retry with the current one
        raise TokenRefreshed("401 with an OAuth token: retrying with a new token", response)

    def authorized(self, response: requests.Response) -> None:
        if response.status_code >= 400:  # noqa: PLR2004 - only a success proves a token
            return
        sent = _sent_authorization(response)
        with self._lock:
            if self._on_probation and self._token is not None and sent == f"Bearer {self._token}":
                self._on_probation = False
                self._fresh_refused = 0

    def secrets(self) -> list[str]:
        return list(self._issued)


class ClientCredentialsAuth(OAuthTokenAuth):
    """OAuth2 client credentials: HTTP Basic client_id:client_secret, grant_type=client_credentials."""

    def __init__(
        self,
        hosts: t.Iterable[str],
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(hosts, token_url, **kwargs)
        self._basic = (client_id, client_secret)
        self._scope = scope

    def request_token(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        response = self.post_token_form(form, self._basic)
        if response.status_code != 200:  # noqa: PLR2004
            raise FatalAPIError(
                f"the token URL {host_path(self.token_url)} refused the client credentials "
                f"({response.status_code} {_vendor_error(response)}); check {self.credential_settings}"
            )
        body = _token_body(response, self.token_url)
        return body["access_token"], self.lifetime(body)

    def secrets(self) -> list[str]:
        basic = base64.b64encode(f"{self._basic[0]}:{self._basic[1]}".encode()).decode()
        return [*super().secrets(), basic]


class RefreshTokenAuth(OAuthTokenAuth):
    """MyReports: OAuth2 refresh grant for access tokens (JWTs).

    Client credentials go both as HTTP Basic and as form fields (providers read one or the
    other). When an answer carries a new refresh token (rotation), it is used for the rest of the
    run and saved (mode 0600) where the next run finds it, because the configured one is now stale.
    """

    setting = "myreports_refresh_token"

    def __init__(
        self,
        hosts: t.Iterable[str],
        token_url: str,
        refresh_token: str,
        client_id: str | None,
        client_secret: str | None,
        *,
        saved_path: Path | None = None,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(hosts, token_url, **kwargs)
        self._client_id = client_id
        self._client_secret = client_secret
        self._configured_sha256 = saved_token_key(token_url, client_id, refresh_token)
        self.saved_path = (saved_path or Path.cwd() / SAVED_REFRESH_TOKEN_PATH).absolute()
        self._refresh_tokens = [refresh_token]
        self._used_saved = False
        self._warned_stale = False
        saved = self._load_saved()
        if saved is not None:
            self._refresh_tokens.append(saved)
            self._used_saved = True
            self.logger.info(
                "myreports: using the refresh token saved in %s (it replaced the configured %s)",
                self.saved_path,
                self.setting,
            )
            self._warn_stale()

    @property
    def refresh_token(self) -> str:
        return self._refresh_tokens[-1]

    def request_token(self) -> tuple[str, float]:
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        basic = None
        if self._client_id:
            form["client_id"] = self._client_id
            basic = (self._client_id, self._client_secret or "")
        if self._client_secret:
            form["client_secret"] = self._client_secret
        response = self.post_token_form(form, basic)
        if response.status_code in (400, 401):
            raise FatalAPIError(self._refused(response))
        if response.status_code != 200:  # noqa: PLR2004
            raise FatalAPIError(
                f"the MyReports token URL {host_path(self.token_url)} answered {response.status_code} "
                f"{_vendor_error(response)}; check myreports_token_url"
            )
        body = _token_body(response, self.token_url)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self.refresh_token:
            self._rotate(rotated)
        return body["access_token"], self.lifetime(body)

    def _refused(self, response: requests.Response) -> str:
        error = _vendor_error(response)
        message = (
            f"the MyReports token URL {host_path(self.token_url)} refused {self.setting} "
            f"({error or response.status_code}); get a new refresh token and set {self.setting}"
        )
        if response.status_code == 401 or "invalid_client" in error:  # noqa: PLR2004
            message += " (and check myreports_client_id and myreports_client_secret)"
        if self._used_saved:
            message += f" (the refused one was the rotated refresh token saved in {self.saved_path})"
        return message

    # ---- rotation --------------------------------------------------------------------------------

    def _load_saved(self) -> str | None:
        """The saved refresh token, when the file says it replaces the configured one."""
        try:
            saved = json.loads(self.saved_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.logger.warning(
                "myreports: ignoring %s, which cannot be read (%s)", self.saved_path, type(exc).__name__
            )
            return None
        if not isinstance(saved, dict) or saved.get("replaces_sha256") != self._configured_sha256:
            return None  # a newer configured refresh token wins over the file
        token = saved.get("refresh_token")
        return token if isinstance(token, str) and token else None

    def _rotate(self, new: str) -> None:
        self._refresh_tokens.append(new)
        try:
            _write_private_json(
                self.saved_path,
                {
                    # Keyed on the configured token at its token URL and client, through any number of
                    # rotations: one look-up on start, and the same token text elsewhere never matches.
                    "replaces_sha256": self._configured_sha256,
                    "refresh_token": new,
                    "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                },
            )
        except OSError as exc:
            self.logger.warning(
                "myreports: the token URL rotated the refresh token and it could not be saved to %s (%s): "
                "the configured %s is stale, the next run will need a new one",
                self.saved_path,
                type(exc).__name__,
                self.setting,
            )
            self._warned_stale = True
            return
        self._warn_stale()

    def _warn_stale(self) -> None:
        if self._warned_stale:
            return
        self._warned_stale = True
        path = self.saved_path
        self.logger.warning(
            "myreports: the configured %s is now stale, the new one is saved in %s; store it with "
            '`meltano config set tap-callreports %s "$(jq -r .refresh_token %s)"` (or the '
            "TAP_CALLREPORTS_MYREPORTS_REFRESH_TOKEN variable) and delete the file",
            self.setting,
            path,
            self.setting,
            path,
        )

    def secrets(self) -> list[str]:
        extra = list(self._refresh_tokens)
        if self._client_id and self._client_secret:
            extra.append(base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode())
        return [*super().secrets(), *extra]


def _write_private_json(path: Path, content: dict) -> None:
    """Write `content` readable by the owner only, replacing the file in one step."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(content, handle)
    os.chmod(temporary, 0o600)  # a leftover temporary file keeps its old mode otherwise
    os.replace(temporary, path)


def saved_token_key(token_url: str, client_id: str | None, refresh_token: str) -> str:
    """What a saved rotated refresh token replaces: the configured token at its token URL and client."""
    return hashlib.sha256(json.dumps([token_url, client_id or "", refresh_token]).encode()).hexdigest()


def _token_body(response: requests.Response, token_url: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise FatalAPIError(f"the token URL {host_path(token_url)} answered without an access_token")
    return body


def _expires_in(body: dict) -> float | None:
    try:
        value = float(body["expires_in"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if value > 0 else None


def _jwt_seconds_left(token: str) -> float | None:
    """Seconds until the `exp` claim of a JWT (read without verifying it: we only need to know when
    to renew), or None when the token is no JWT, has no exp, or its exp has passed (clock skew)."""
    parts = token.split(".")
    if len(parts) != 3:  # noqa: PLR2004
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return None
    left = exp - time.time()
    return left if left > 0 else None


def _sent_authorization(response: requests.Response) -> str:
    request = response.request
    return (request.headers.get("Authorization") if request is not None else None) or ""


def _vendor_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("code", "error", "message", "error_description") if body.get(k)]
        return ": ".join(parts) or (response.reason or "")
    return response.reason or ""
