"""Which host may see which credential: the authenticators' base, and the static ones.

Authenticators are plain `requests` auth objects, one instance per vendor per tap, shared by its
streams and job threads: the SDK applies them to every request it sends, and so does the
report-job engine. Each knows the hosts its credentials belong to and never hands them to any
other host. Tokens fetched at run time: oauth.py; which vendor gets which: credentials.py.
"""

from __future__ import annotations

import base64
import typing as t
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

Origin = tuple[str, str, int]


def origin(url: str) -> Origin | None:
    """scheme, host and port (default ports made explicit), or None for a URL without a host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in ("http", "https"):
        return None
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    return scheme, parts.hostname.lower(), port


class CallReportsAuth(AuthBase):
    """Base: attaches credentials to requests for the vendor's own hosts only.

    A 401 is fatal unless the authenticator can get a new token.
    """

    #: Setting names to check when the vendor refuses the credentials.
    credential_settings: str = "the credentials"

    def __init__(self, hosts: t.Iterable[str], credential_settings: str) -> None:
        self._origins = frozenset(o for o in map(origin, hosts) if o is not None)
        self.credential_settings = credential_settings

    def belongs_to(self, url: str) -> bool:
        """True when `url` is on one of the hosts (scheme + host + port) these credentials are for."""
        return origin(url) in self._origins

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.url and self.belongs_to(request.url):
            request.headers["Authorization"] = self.authorization()
        else:
            request.headers.pop("Authorization", None)
        return request

    def authorization(self) -> str:
        """The Authorization header value."""
        raise NotImplementedError

    def unauthorized(self, response: requests.Response) -> str | None:
        """Called on a 401: raise TokenRefreshed to retry with a new token, or return (fatal),
        optionally with why."""
        return None

    def authorized(self, response: requests.Response) -> None:
        """Called on any non-401 answer."""

    def secrets(self) -> list[str]:
        """Values to redact from logs (tokens obtained at run time)."""
        return []


class BearerTokenAuth(CallReportsAuth):
    def __init__(self, token: str, credential_settings: str, hosts: t.Iterable[str]) -> None:
        super().__init__(hosts, credential_settings)
        self._header = f"Bearer {token}"

    def authorization(self) -> str:
        return self._header


class BasicAuth(CallReportsAuth):
    def __init__(self, username: str, password: str, credential_settings: str, hosts: t.Iterable[str]) -> None:
        super().__init__(hosts, credential_settings)
        raw = f"{username}:{password}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode()

    def authorization(self) -> str:
        return self._header

    def secrets(self) -> list[str]:
        return [self._header.split(" ", 1)[1]]


def host_path(url: str) -> str:
    """host[:port]/path of a URL: what a log line or error may show of it."""
    parts = urlsplit(url)
    return f"{parts.netloc.rpartition('@')[2]}{parts.path}"
