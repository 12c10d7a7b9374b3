"""Zendesk base stream: {subdomain}.zendesk.com, API token or OAuth."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_callreports.client import CallReportsStream
from tap_callreports.ratelimit import Backoff, Pacer, pacer_for

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

    def answered(self, response: requests.Response) -> None:
        """Every Zendesk answer says how many requests are left (X-Rate-Limit-Remaining): at the
        floor, the account's next request waits for the window to reset instead of spending a 429."""
        super().answered(response)
        spent = Backoff.window_spent(response, RATE_LIMIT_FLOOR, DEFAULT_WINDOW_SECONDS)
        if spent is None:
            return
        self.logger.info(
            "%s: %s request(s) left of %s in Zendesk's rate-limit window; pausing %.1fs",
            self.name,
            response.headers.get("X-Rate-Limit-Remaining"),
            response.headers.get("X-Rate-Limit", "?"),
            spent.seconds,
        )
        self.account_pacer.hold(spent.seconds)
