"""MyReports base stream: regional API base, JWT bearer token (static, or renewed from a refresh
token), the {data, error, message, status, timestamp} envelope."""

from __future__ import annotations

import typing as t

import requests
from singer_sdk.exceptions import FatalAPIError

from tap_callreports.client import CallReportsStream
from tap_callreports.responses import json_body, request_label

if t.TYPE_CHECKING:
    from tap_callreports.settings import MyReportsSettings


class MyReportsStream(CallReportsStream):
    vendor = "myreports"

    @property
    def auth_help(self) -> str:  # type: ignore[override]
        if self.myreports.refresh_token:
            return (
                "the MyReports API refused an access token its token URL had just issued: check that "
                "myreports_token_url and myreports_refresh_token belong to the region of myreports_api_url"
            )
        return (
            "the MyReports token is missing or expired: get a new one and set myreports_token, or set "
            "myreports_refresh_token (with myreports_token_url, myreports_client_id and "
            "myreports_client_secret) so the tap renews access tokens itself"
        )

    @property
    def myreports(self) -> MyReportsSettings:
        assert self.settings.myreports is not None
        return self.settings.myreports

    @property
    def url_base(self) -> str:
        return self.myreports.api_url

    def envelope_data(self, response: requests.Response) -> t.Any:
        return envelope_data(response, self.name)


def envelope_data(response: requests.Response, stream: str) -> t.Any:
    """The `data` of an enveloped answer; an envelope saying error is fatal."""
    body = json_body(response, stream)
    if not isinstance(body, dict):
        raise FatalAPIError(f"{request_label(response)} answered without the documented envelope")
    if str(body.get("status", "success")).lower() == "error" or body.get("error"):
        raise FatalAPIError(f"{request_label(response)} answered error={body.get('error')}: {body.get('message')}")
    return body.get("data")
