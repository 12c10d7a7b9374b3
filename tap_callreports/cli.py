"""The `tap-callreports` command: the SDK's CLI, with known errors printed as one line."""

from __future__ import annotations

import sys

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_callreports.errors import CallReportsError, TerminatedBySignal
from tap_callreports.redact import REGISTRY
from tap_callreports.tap import TapCallReports

KNOWN_ERRORS = (CallReportsError, FatalAPIError, RetriableAPIError, requests.RequestException, TerminatedBySignal)


def main(argv: list[str] | None = None) -> None:
    try:
        TapCallReports.cli.main(args=argv, prog_name="tap-callreports", standalone_mode=True)
    except KNOWN_ERRORS as exc:
        line = REGISTRY.redact(str(exc) or type(exc).__name__).replace("\n", " ")
        sys.stderr.write(f"tap-callreports: error: {line}\n")
        sys.stderr.flush()
        sys.exit(128 + exc.signum if isinstance(exc, TerminatedBySignal) else 1)


if __name__ == "__main__":
    main()
