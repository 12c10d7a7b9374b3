"""Zendesk streams."""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema
from singer_sdk.pagination import BaseAPIPaginator

from tap_callreports.pagination import CursorLinksPaginator, StableListing
from tap_callreports.schemas import SCHEMAS
from tap_callreports.zendesk.client import ZendeskStream

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

PAGE_SIZE = 100  # Zendesk's maximum page[size]
SHOW_MANY_BATCH = 100  # ids per show_many request


class IdBatchPaginator(BaseAPIPaginator[int]):
    """Walks a fixed list of id batches; an empty answer (all expired) does not stop it."""

    def __init__(self, batch_count: int) -> None:
        super().__init__(0)
        self.batch_count = batch_count

    def get_next(self, response: requests.Response) -> int | None:
        following = self.current_value + 1
        return following if following < self.batch_count else None

    def continue_if_empty(self, response: requests.Response) -> bool:
        return True


class ZendeskJobStatusesStream(ZendeskStream):
    """Background job statuses. Zendesk keeps them about a day and they have no timestamp:
    every run reads them all (full table), keyed by id."""

    name = "zendesk_job_statuses"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)

    @property
    def id_batches(self) -> list[list[str]]:
        ids = list(self.zendesk.job_status_ids)
        return [ids[i : i + SHOW_MANY_BATCH] for i in range(0, len(ids), SHOW_MANY_BATCH)]

    @property
    def path(self) -> str:  # type: ignore[override]
        return "/api/v2/job_statuses/show_many" if self.zendesk.job_status_ids else "/api/v2/job_statuses"

    records_path = ("job_statuses",)

    def get_new_paginator(self) -> BaseAPIPaginator:
        if self.zendesk.job_status_ids:
            return IdBatchPaginator(len(self.id_batches))
        listing = self.listing
        if listing is None:
            return CursorLinksPaginator(self.name)
        return CursorLinksPaginator(self.name, listing.resume_at, listing.committed)

    def new_listing(self) -> StableListing | None:
        # The full list is sorted by completion date: a job that completes while it is read moves
        # to the top, past the cursor. It is read again until one pass is stable.
        return None if self.zendesk.job_status_ids else StableListing(self.name)

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        if self.zendesk.job_status_ids:
            return {"ids": ",".join(self.id_batches[next_page_token or 0])}
        return {"page[size]": PAGE_SIZE}
