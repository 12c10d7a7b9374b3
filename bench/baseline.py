"""The no-SDK baseline: download a report body and write its rows as Singer RECORD lines with
ijson's C backend and orjson, the fastest parser and serialiser at hand.

    python bench/baseline.py talkdesk|myreports URL TOKEN   (RECORD lines on stdout)
"""

from __future__ import annotations

import datetime as dt
import sys
from zoneinfo import ZoneInfo

import ijson
import orjson
import requests

UTC = dt.timezone.utc


def main() -> None:
    vendor, url, token = sys.argv[1:4]
    response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=600)
    response.raise_for_status()
    response.raw.decode_content = True
    out = sys.stdout.buffer
    backend = ijson.get_backend("yajl2_c")
    if vendor == "talkdesk":
        stream, prefix = "talkdesk_calls", "entries.item"
        origin = {"report_job_id": "job", "report_window_start": "2026-10-01T00:00:00Z",
                  "report_window_end": "2026-10-11T00:00:00Z"}
        tz = None
    else:
        stream, prefix = "myreports_call_rows", "data.item"
        origin = {"report_id": "report", "request_id": "request"}
        tz = ZoneInfo("Europe/London")
    head = b'{"type":"RECORD","stream":"' + stream.encode() + b'","record":'
    for row in backend.items(response.raw, prefix, use_float=True, buf_size=256 * 1024):
        if tz is not None:
            local = dt.datetime.fromisoformat(row["start"]).replace(tzinfo=tz)
            row["start_utc"] = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        row.update(origin)
        out.write(head + orjson.dumps(row) + b"}\n")
    out.flush()


if __name__ == "__main__":
    main()
