"""Reading vendor answers: JSON bodies parsed once, error details, labels without secrets."""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import orjson
import requests

from tap_callreports.errors import MalformedBodyError

MAX_ERROR_DETAIL = 400


def vendor_error_details(response: requests.Response) -> str:
    """The vendor's own words from an error body: code, message, description, fields."""
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip().replace("\n", " ")
        return text[:MAX_ERROR_DETAIL]
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in ("code", "error", "message", "description", "details"):
        value = body.get(key)
        if value and not isinstance(value, (dict, list)):
            parts.append(f"{key}={value}")
        elif isinstance(value, dict) and key == "error":
            parts.extend(f"error.{k}={v}" for k, v in value.items() if not isinstance(v, (dict, list)))
    fields = body.get("fields")
    if isinstance(fields, list) and fields:
        described = []
        for item in fields:
            if isinstance(item, dict):
                described.append(f"{item.get('name')} ({item.get('description')})")
        if described:
            parts.append("fields=" + "; ".join(described))
    return ", ".join(parts)[:MAX_ERROR_DETAIL]


def vendor_words(body: t.Any) -> str:
    """What a small JSON document that is not the expected one says (an error envelope, usually)."""
    if not isinstance(body, dict) or not body:
        return f"the body is {type(body).__name__}" if body not in ({}, None) else "the body is empty"
    said = [
        f"{key}={body[key]}"
        for key in ("status", "error", "code", "message", "description")
        if body.get(key) not in (None, "", [], {})
    ]
    return ", ".join(said)[:MAX_ERROR_DETAIL] if said else "members: " + ", ".join(list(body)[:8])


def request_label(response: requests.Response) -> str:
    """`GET /path` — the path only: query strings may hold signatures or ids."""
    method = response.request.method if response.request is not None else "GET"
    return f"{method} {urlsplit(response.url).path}"


_BODY_ATTR = "_callreports_json"


def json_body(response: requests.Response, stream_name: str) -> t.Any:
    """The response's JSON, parsed once and cached on the response; a clear error if malformed."""
    cached = getattr(response, _BODY_ATTR, None)
    if cached is not None:
        return cached
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(
            stream_name,
            f"malformed JSON in the response to {request_label(response)} at byte {exc.pos} "
            f"({exc.msg}); the vendor sent a broken body, run again later and report it if it persists",
        ) from None
    setattr(response, _BODY_ATTR, body)
    return body


def dig(body: t.Any, *path: str) -> t.Any:
    """body[path[0]][path[1]]..., or None where any step is missing."""
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def id_from_location(response: requests.Response) -> str | None:
    """The id a creation answer names only in its Location header (`.../jobs/<id>`): its last path
    segment, or None."""
    location = response.headers.get("Location") or ""
    segment = urlsplit(location).path.rstrip("/").rpartition("/")[2]
    return segment or None


def created_body(response: requests.Response, stream_name: str) -> t.Any:
    """A creation answer's JSON, or {} when its body is empty (the id is then in its Location)."""
    return json_body(response, stream_name) if response.content.strip() else {}
