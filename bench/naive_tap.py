"""The straightforward singer-sdk stream: GET the body, `response.json()`, yield the rows.

python bench/naive_tap.py talkdesk|myreports URL TOKEN   (Singer messages on stdout)
"""

from __future__ import annotations

import sys

from singer_sdk import RESTStream, Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import SinglePagePaginator

VENDOR, URL, TOKEN = sys.argv[1:4]
del sys.argv[1:4]


class NaiveRowsStream(RESTStream):
    name = "talkdesk_calls" if VENDOR == "talkdesk" else "myreports_call_rows"
    url_base = URL
    path = ""
    records_jsonpath = "$.entries[*]" if VENDOR == "talkdesk" else "$.data[*]"
    schema = th.PropertiesList(th.Property("id", th.StringType)).to_dict() | {"additionalProperties": True}

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=TOKEN)

    def get_new_paginator(self) -> SinglePagePaginator:
        return SinglePagePaginator()


class NaiveTap(Tap):
    name = "naive-tap"
    config_jsonschema = th.PropertiesList().to_dict()

    def discover_streams(self) -> list:
        return [NaiveRowsStream(self)]


if __name__ == "__main__":
    NaiveTap.cli()
