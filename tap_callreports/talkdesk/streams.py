"""Talkdesk streams."""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema

from tap_callreports.pagination import HALPaginator
from tap_callreports.schemas import SCHEMAS
from tap_callreports.talkdesk.client import TalkdeskStream
from tap_callreports.timeutil import parse_instant

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class TalkdeskImportsStream(TalkdeskStream):
    """Bulk user imports: a HAL-paged list with no server-side filter, so the bookmark filters here."""

    name = "talkdesk_imports"
    path = "/bulk-imports/users"
    primary_keys = ("id",)
    replication_key = "updated_at"
    records_path = ("_embedded", "imports")
    schema = StreamSchema(SCHEMAS)

    def get_new_paginator(self) -> HALPaginator:
        return HALPaginator(self.name)

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        return {"page": 1, "per_page": self.talkdesk.page_size}

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        # The first run takes updated_at >= start_date; later runs only what changed after the bookmark.
        has_bookmark = self.get_context_state(context).get("replication_key_value") is not None
        since = self.get_starting_timestamp(context) or self.settings.start_date
        until = self.settings.end_date
        for row in self.request_records(context):
            updated = parse_instant(row.get("updated_at"))
            if updated is not None:
                if updated < since or (has_bookmark and updated == since):
                    continue
                if until is not None and updated >= until:
                    continue
            yield row
