"""Authenticators, one instance per vendor per tap, shared by its streams and job threads.

They are plain `requests` auth objects: the SDK applies them to every request it sends,
and so does the report-job engine.
"""

from __future__ import annotations

import base64
import threading
import time
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_callreports.retry import TokenRefreshed

# Refresh this long before expires_in runs out, so no request leaves with a dying token.
TOKEN_SAFETY_MARGIN_SECONDS = 60.0


class CallReportsAuth(AuthBase):
    """Base: a 401 is fatal unless the authenticator can get a new token."""

    #: Setting names to check when the vendor refuses the credentials.
    credential_settings: str = "the credentials"

    def unauthorized(self, response: requests.Response) -> None:
        """Called on a 401: raise TokenRefreshed to retry with a new token, or return (fatal)."""

    def authorized(self, response: requests.Response) -> None:
        """Called on any non-401 answer."""

    def secrets(self) -> list[str]:
        """Values to redact from logs (tokens obtained at run time)."""
        return []


class BearerTokenAuth(CallReportsAuth):
    def __init__(self, token: str, credential_settings: str) -> None:
        self._header = f"Bearer {token}"
        self.credential_settings = credential_settings

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request


class BasicAuth(CallReportsAuth):
    def __init__(self, username: str, password: str, credential_settings: str) -> None:
        raw = f"{username}:{password}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode()
        self.credential_settings = credential_settings

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def secrets(self) -> list[str]:
        return [self._header.split(" ", 1)[1]]


class ClientCredentialsAuth(CallReportsAuth):
    """OAuth2 client credentials: HTTP Basic client_id:client_secret, grant_type=client_credentials.

    Refreshes before `expires_in` runs out; on a 401 drops the token and retries once with a
    new one; a second 401 in a row is fatal.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float,
        credential_settings: str,
        scope: str | None = None,
        user_agent: str = "tap-callreports",
    ) -> None:
        self.token_url = token_url
        self._basic = (client_id, client_secret)
        self._scope = scope
        self._timeout = timeout
        self._user_agent = user_agent
        self.credential_settings = credential_settings
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refreshed_after_401 = False
        self._issued: list[str] = []

    def _token_is_fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    def _fetch_token(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        try:
            response = requests.post(
                self.token_url, data=form, auth=self._basic, timeout=self._timeout,
                headers={"Accept": "application/json", "User-Agent": self._user_agent},
            )
        except requests.RequestException as exc:
            raise RetriableAPIError(f"token request to {_host_path(self.token_url)} failed: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetriableAPIError(f"token request to {_host_path(self.token_url)} answered {response.status_code}", response)
        if response.status_code != 200:
            raise FatalAPIError(
                f"the token URL {_host_path(self.token_url)} refused the client credentials "
                f"({response.status_code} {_vendor_error(response)}); check {self.credential_settings}"
            )
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise FatalAPIError(f"the token URL {_host_path(self.token_url)} answered without an access_token") from None
        margin = min(TOKEN_SAFETY_MARGIN_SECONDS, expires_in / 10)
        self._token = token
        self._issued.append(token)
        self._expires_at = time.monotonic() + expires_in - margin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if not self._token_is_fresh():
                self._fetch_token()
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def unauthorized(self, response: requests.Response) -> None:
        sent = (response.request.headers.get("Authorization") if response.request is not None else "") or ""
        with self._lock:
            if self._token and sent == f"Bearer {self._token}":
                if self._refreshed_after_401:
                    return  # the new token was refused too: fatal
                self._token = None
                self._refreshed_after_401 = True
            # else: another thread already replaced the token this request used
        raise TokenRefreshed("401 with an OAuth token: fetching a new token and retrying once", response)

    def authorized(self, response: requests.Response) -> None:
        self._refreshed_after_401 = False

    def secrets(self) -> list[str]:
        basic = base64.b64encode(f"{self._basic[0]}:{self._basic[1]}".encode()).decode()
        return [*self._issued, basic]


def _host_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def _vendor_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("code", "error", "message", "error_description") if body.get(k)]
        return ": ".join(parts) or (response.reason or "")
    return response.reason or ""

