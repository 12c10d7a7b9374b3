"""Talkdesk streams."""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema

from tap_callreports.pagination import HALPageNumberPaginator, PageNumberListing
from tap_callreports.schemas import SCHEMAS
from tap_callreports.talkdesk.client import TalkdeskStream
from tap_callreports.timeutil import parse_instant

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class TalkdeskImportsStream(TalkdeskStream):
    """Bulk user imports: a HAL-paged list (by page number, each id once, checked against its stated
    total) with no server-side filter, so the bookmark filters here."""

    name = "talkdesk_imports"
    path = "/bulk-imports/users"
    primary_keys = ("id",)
    replication_key = "updated_at"
    records_path = ("_embedded", "imports")
    schema = StreamSchema(SCHEMAS)

    def get_new_paginator(self) -> HALPageNumberPaginator:
        listing = self.listing if isinstance(self.listing, PageNumberListing) else self.new_listing()
        return listing.paginator()

    def new_listing(self) -> PageNumberListing:
        return PageNumberListing(self.name, self.talkdesk.page_size, self.records_path)

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        # Every page at our own page size, by number: the vendor's next links may omit per_page.
        return {"page": next_page_token or 1, "per_page": self.talkdesk.page_size}

    def extract_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        # The first run takes updated_at >= start_date; later runs only what changed after the bookmark.
        has_bookmark = self.get_context_state(context).get("replication_key_value") is not None
        since = self.get_starting_timestamp(context) or self.settings.start_date
        until = self.settings.end_date
        for row in super().extract_records(context):
            updated = parse_instant(row.get("updated_at"))
            if updated is not None:
                if updated < since or (has_bookmark and updated == since):
                    continue
                if until is not None and updated >= until:
                    continue
            yield row
