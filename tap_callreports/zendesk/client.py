"""Zendesk base stream: {subdomain}.zendesk.com, API token or OAuth."""

from __future__ import annotations

import typing as t

from tap_callreports.client import CallReportsStream

if t.TYPE_CHECKING:
    from tap_callreports.settings import ZendeskSettings


class ZendeskStream(CallReportsStream):
    vendor = "zendesk"
    auth_help = "check zendesk_email + zendesk_api_token (or zendesk_oauth_token) and zendesk_subdomain"

    @property
    def zendesk(self) -> ZendeskSettings:
        assert self.settings.zendesk is not None
        return self.settings.zendesk

    @property
    def url_base(self) -> str:
        return self.zendesk.api_url
