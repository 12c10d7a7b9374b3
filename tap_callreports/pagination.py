"""Paginators, chosen per stream by name (as in a low-code manifest)."""

from __future__ import annotations

import typing as t
from urllib.parse import urljoin

from singer_sdk.pagination import BaseHATEOASPaginator

from tap_callreports.responses import dig, json_body

if t.TYPE_CHECKING:
    import requests

class HALPaginator(BaseHATEOASPaginator):
    """HAL links: follow `_links.next.href` (absolute, or relative to the page) until none."""

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self.stream_name = stream_name

    def get_next_url(self, response: requests.Response) -> str | None:
        href = dig(json_body(response, self.stream_name), "_links", "next", "href")
        return urljoin(response.url, href) if href else None


class CursorLinksPaginator(BaseHATEOASPaginator):
    """Zendesk cursor pagination: follow `links.next` while `meta.has_more` is true."""

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self.stream_name = stream_name

    def has_more(self, response: requests.Response) -> bool:
        return bool(dig(json_body(response, self.stream_name), "meta", "has_more"))

    def get_next_url(self, response: requests.Response) -> str | None:
        href = dig(json_body(response, self.stream_name), "links", "next")
        return urljoin(response.url, href) if href else None
