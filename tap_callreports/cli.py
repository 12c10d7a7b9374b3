"""The `tap-callreports` command: the SDK's CLI, with known errors printed as one line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_callreports.connection_test import ConnectionTestFailed
from tap_callreports.errors import CallReportsError, TerminatedBySignal
from tap_callreports.redact import REGISTRY
from tap_callreports.sdk_hooks import STREAM_OF_ERROR
from tap_callreports.tap import TapCallReports

KNOWN_ERRORS = (CallReportsError, FatalAPIError, RetriableAPIError, requests.RequestException, TerminatedBySignal)
#: Options whose value is a JSON file the SDK reads (`--config ENV` reads the environment instead).
JSON_FILE_OPTIONS = {"--config": "config", "--state": "state", "--catalog": "catalog"}


class InputFileError(CallReportsError):
    """A JSON input file that is missing or does not parse."""


def check_input_files(argv: list[str]) -> list[str]:
    """Catch a missing, malformed or non-object --config/--state/--catalog file before the SDK reads
    it (the SDK answers with a long traceback that does not name the file). Returns the arguments to
    run with: an empty state file (0 bytes, as some schedulers create) is no state, said in one line."""
    args: list[str | None] = list(argv)
    for index, arg in enumerate(argv):
        option, inline, value = arg.partition("=")
        if option not in JSON_FILE_OPTIONS:
            continue
        if not inline:
            if index + 1 >= len(argv):
                continue  # click reports the missing value
            value = argv[index + 1]
        what = JSON_FILE_OPTIONS[option]
        if option == "--config" and value == "ENV":
            continue
        path = Path(value)
        if not path.exists():
            raise InputFileError(f"{what}: {path} does not exist; give the path of a JSON file")
        if path.is_dir():
            raise InputFileError(f"{what}: {path} is a directory; give the path of a JSON file")
        if not (path.is_file() or path.is_char_device()):
            continue  # a pipe (`--config <(...)`): reading it here would leave nothing for the SDK
        try:
            text = path.read_text(encoding="utf-8")
            if not text.strip():
                if what != "state":
                    raise InputFileError(f"{what}: {path} is empty; {IF_EMPTY[what]}")
                note(f"state: {path} is empty: no state, so every stream starts at start_date")
                args[index : index + (1 if inline else 2)] = [None] * (1 if inline else 2)
                continue
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(
                f"{what}: {path} is not valid JSON (line {exc.lineno} col {exc.colno}: {exc.msg}); fix the file"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(f"{what}: {path} cannot be read ({type(exc).__name__}); fix the file") from None
        if not isinstance(document, dict):
            raise InputFileError(
                f"{what}: {path} holds a JSON {JSON_KINDS[type(document)]}, not an object "
                f"({EXPECTED[what]}); fix the file"
            )
    return [arg for arg in args if arg is not None]


#: The JSON type of a document, as a user reads it.
JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
IF_EMPTY = {
    "config": 'write the settings in it as one JSON object, e.g. {"start_date": "2026-01-01T00:00:00Z", ...}',
    "catalog": "write a catalog into it with --discover (tap-callreports --config CONFIG --discover > catalog.json)",
}
EXPECTED = {
    "config": 'settings by name, e.g. {"start_date": "2026-01-01T00:00:00Z", ...}',
    "state": 'a Singer state, e.g. {"bookmarks": {...}}',
    "catalog": 'a Singer catalog, e.g. {"streams": [...]}, as --discover writes it',
}


def note(line: str) -> None:
    """An INFO line before the SDK has set up logging."""
    sys.stderr.write(f"tap-callreports: info: {line}\n")


def report(lines: list[str]) -> None:
    """Each error line once on stderr: as a log record at ERROR when a logging config (Meltano's
    structured logging) sends the tap's log to stderr, so it is not shown as INFO nor twice;
    else as a plain line."""
    root = logging.getLogger()
    logged = os.environ.get("SINGER_SDK_LOG_CONFIG") and any(
        isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stderr
        for handler in root.handlers
    )
    if logged:
        logger = logging.getLogger(TapCallReports.name)
        for line in lines:
            logger.error("%s", line)
        return
    for line in lines:
        sys.stderr.write(f"tap-callreports: error: {line}\n")
    sys.stderr.flush()


def error_line(exc: BaseException) -> str:
    """The error's line, naming the stream it stopped when its text does not."""
    line = str(exc) or type(exc).__name__
    stream = getattr(exc, STREAM_OF_ERROR, None)
    return f"{stream}: {line}" if stream and not line.startswith(f"{stream}: ") else line


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        args = check_input_files(args)
        TapCallReports.cli.main(args=args, prog_name="tap-callreports", standalone_mode=True)
    except KNOWN_ERRORS as exc:
        lines = exc.lines if isinstance(exc, ConnectionTestFailed) else [error_line(exc)]
        report([REGISTRY.redact(line).replace("\n", " ") for line in lines])
        sys.exit(128 + exc.signum if isinstance(exc, TerminatedBySignal) else 1)
    except Exception as exc:
        # A bug: its traceback follows, but the stream it stopped is named first (the SDK's line
        # that named it is not logged, sdk_hooks.OneErrorLine).
        stream = getattr(exc, STREAM_OF_ERROR, None)
        if stream:
            report(
                [f"{stream}: stopped by an unexpected {type(exc).__name__}; please report it with the traceback below"]
            )
        raise


def sandbox_main() -> None:
    """`callreports-sandbox`: needs the `sandbox` extra (werkzeug), which the tap itself does not."""
    try:
        import werkzeug  # noqa: F401
    except ImportError:
        sys.stderr.write(
            "callreports-sandbox: error: the sandbox needs its extra: pip install 'tap-callreports[sandbox]'\n"
        )
        sys.exit(1)
    from tap_callreports.sandbox.__main__ import main as run_sandbox

    run_sandbox()


if __name__ == "__main__":
    main()
