"""Talkdesk base stream: regional API URL and the account's authenticator."""

from __future__ import annotations

import typing as t

from tap_callreports.client import CallReportsStream

if t.TYPE_CHECKING:
    from tap_callreports.settings import TalkdeskSettings


class TalkdeskStream(CallReportsStream):
    vendor = "talkdesk"
    auth_help = (
        "check talkdesk_client_id / talkdesk_client_secret (or talkdesk_access_token) and that the "
        "client has the scopes bulk-imports:read, data-reports:read and data-reports:write"
    )

    @property
    def talkdesk(self) -> TalkdeskSettings:
        assert self.settings.talkdesk is not None  # streams exist only when it is configured
        return self.settings.talkdesk

    @property
    def url_base(self) -> str:
        return self.talkdesk.api_url
