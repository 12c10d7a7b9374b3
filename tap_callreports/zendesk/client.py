"""Zendesk base stream: {subdomain}.zendesk.com, API token or OAuth."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_callreports.client import CallReportsStream
from tap_callreports.ratelimit import Pacer, pacer_for
from tap_callreports.retry import parse_retry_after

# Pause when this few requests are left in Zendesk's rate-limit window, before a 429 happens.
RATE_LIMIT_FLOOR = 1
DEFAULT_WINDOW_SECONDS = 60.0

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

    from tap_callreports.settings import ZendeskSettings


class ZendeskStream(CallReportsStream):
    vendor = "zendesk"
    auth_help = "check zendesk_email + zendesk_api_token (or zendesk_oauth_token) and zendesk_subdomain"
    #: A host-mapped account's links may name its canonical {subdomain}.zendesk.com, and the reverse.
    vendor_domains = (".zendesk.com",)

    @property
    def zendesk(self) -> ZendeskSettings:
        assert self.settings.zendesk is not None
        return self.settings.zendesk

    @property
    def url_base(self) -> str:
        return self.zendesk.api_url

    # ---- Zendesk's account-wide rate limit (ratelimit.py) ---------------------------------------

    @cached_property
    def account_pacer(self) -> Pacer:
        """The account's requests, held when an answer says its rate-limit window is spent."""
        return pacer_for(self.tap, self.url_base, None)

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        self.account_pacer.wait()
        return super()._request(prepared_request, context)

    def validate_response(self, response: requests.Response) -> None:
        super().validate_response(response)
        self.respect_rate_limit(response)

    def respect_rate_limit(self, response: requests.Response) -> None:
        """Every Zendesk answer says how many requests are left (X-Rate-Limit-Remaining): at the
        floor, the account's next request waits for the window to reset instead of spending a 429."""
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        try:
            left = int(remaining) if remaining is not None else None
        except ValueError:
            left = None
        if left is None or left > RATE_LIMIT_FLOOR:
            return
        wait = parse_retry_after(response.headers.get("ratelimit-reset"))
        if wait is None:  # no reset header: wait out a whole window
            wait = DEFAULT_WINDOW_SECONDS
        self.logger.info(
            "%s: %s request(s) left of %s in Zendesk's rate-limit window; pausing %.1fs",
            self.name,
            left,
            response.headers.get("X-Rate-Limit", "?"),
            wait,
        )
        self.account_pacer.hold(wait)
