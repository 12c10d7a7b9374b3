"""JSON schemas of the streams, one file each, named after the stream."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from singer_sdk import SchemaDirectory

SCHEMAS = SchemaDirectory(resources.files(__package__))


@cache
def _load(name: str) -> str:
    return (resources.files(__package__) / f"{name}.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict:
    """A fresh copy of a schema file (callers may extend it)."""
    return json.loads(_load(name))
