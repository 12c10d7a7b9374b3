"""What each vendor of the sandbox builds on: `VendorApi` (its routes, and the shared sandbox it
answers through) and the answer helpers (JSON, MyReports' envelope, moments in a request)."""

from __future__ import annotations

import datetime as dt
import typing as t

import orjson
from werkzeug.wrappers import Response

if t.TYPE_CHECKING:
    from tap_callreports.sandbox.server import Sandbox

UTC = dt.UTC
CHUNK = 1 << 20  # bytes a file body is read and written in


def json_response(body: t.Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def envelope(
    data: t.Any, status: str = "success", error: str | None = None, message: str | None = None, http_status: int = 200
) -> Response:
    return json_response(
        {
            "data": data,
            "error": error,
            "message": message,
            "status": status,
            "timestamp": dt.datetime.now(UTC).isoformat(),
        },
        http_status,
    )


def parse_moment(value: t.Any, tz: dt.tzinfo, wall: bool = False) -> dt.datetime | None:
    """An ISO moment as UTC; without an offset (or, when `wall`, whatever its offset) it is a wall
    time in `tz`."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo and not wall else parsed.replace(tzinfo=tz)).astimezone(UTC)


def job_finished_by_clock(polls: int, age: float, config: t.Any) -> bool:
    """The job clock both vendors' report jobs run on: a job is finished after `job_polls` polls
    or `job_wall_seconds` after it was created, whichever comes first, and never before
    `job_seconds`. Like the vendors' jobs, it finishes whether anyone polls it or not: jobs a
    stopped client left behind free the account's slots (docs/sandbox.md)."""
    return (polls >= config.job_polls or age >= config.job_wall_seconds) and age >= config.job_seconds


class VendorApi:
    """One vendor's routes and state. The router (server.Sandbox) sends each of `ROUTES` to the
    method it names; what the vendors share (config, data, lock, events, shapes, faults, file
    bodies) is the sandbox's, reached through `box`."""

    #: The vendor's name: its routes' endpoints are "<name>.<method>".
    NAME: t.ClassVar[str]
    #: (path, method, HTTP methods) of its routes; /_sandbox/ ones are the sandbox's own controls.
    ROUTES: t.ClassVar[tuple[tuple[str, str, list[str]], ...]]

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.config = box.config
        self.data = box.data
        self.lock = box.lock

    def jobs_held(self) -> dict[str, t.Any]:
        """The vendor's report jobs by id (the sandbox's /_sandbox/forget drops them), if it has any."""
        return {}
