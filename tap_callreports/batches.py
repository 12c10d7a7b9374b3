"""BATCH messages for report streams: gzip JSON Lines files per window, at the record path's speed.

With `batch_config` set, a report stream writes each window's rows to files under
`batch_config.storage.root` (`<prefix>tap-callreports--<stream>--<run>-<n>.json.gz`, a new file every
`batch_size` rows, since targets read a file whole). Each file is announced in a BATCH message as
full (held, with the window's RECORD lines, until the window's keys are proven: `writer.py`); when
the window's rows are all out, its last file's BATCH goes out, then the window's STATE. So a STATE
never reaches the target before the BATCH holding its rows, exactly as in RECORD mode. A window
that fails its key check is never announced and its files are deleted (`discard_window`).

Streams without windows (`sdk_hooks.whole_stream_batches`) write their rows to the same kind of files, with
one BATCH at the end.

Clean-up: targets read the files but do not delete them. When a stream syncs again, the tap deletes
its own files from earlier runs (same root, prefix and stream): by then the earlier run's pipeline
has ended. Roots other than local paths (`file://` or a plain path) are left to the user.
"""

from __future__ import annotations

import gzip
import time
import typing as t
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import orjson

from tap_callreports.errors import ConfigError
from tap_callreports.writer import dumps

if t.TYPE_CHECKING:
    from tap_callreports.sdk_hooks import BatchConfig

FLUSH_BYTES = 1 << 20
#: zlib level 1: ~5x faster than the default 6, files ~15% larger; the files are transient.
GZIP_LEVEL = 1


def _local_root(root: str) -> Path | None:
    parts = urlsplit(root)
    if parts.scheme in ("", "file"):
        return Path(unquote(parts.path) if parts.scheme else root)
    return None


class WindowBatches:
    """One stream's batch files: rows go in with `write`, `finish_window` closes the window's files
    and returns their URLs (the BATCH manifest)."""

    def __init__(
        self, stream_name: str, batch_config: BatchConfig, on_full: t.Callable[[list[str]], None] | None = None
    ) -> None:
        """`on_full` gets the URL of each file that filled up mid-window (to announce it at once)."""
        encoding = batch_config.encoding
        if encoding.format != "jsonl" or encoding.compression not in ("gzip", None, "none"):
            raise ConfigError(
                "batch_config.encoding",
                f"must be format jsonl with compression gzip or none (got {encoding.format}, {encoding.compression})",
            )
        self.stream_name = stream_name
        self.storage = batch_config.storage
        self.batch_size = max(1, int(batch_config.batch_size or 10_000))
        self.compress = encoding.compression == "gzip"
        self.name_prefix = f"{self.storage.prefix or ''}tap-callreports--{stream_name}--"
        self._run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self._count = 0
        self._file: t.Any = None
        self._rows_in_file = 0
        self._buffer = bytearray()
        self._manifest: list[str] = []
        self._window_files: list[str] = []  # the files of the window being written
        self._on_full = on_full

    # ---- clean-up ------------------------------------------------------------------------------

    def delete_earlier_runs(self) -> int:
        """Delete this stream's files from earlier runs (local roots only); return how many."""
        root = _local_root(self.storage.root)
        if root is None or not root.is_dir():
            return 0
        mine = self.name_prefix + self._run
        deleted = 0
        for path in root.glob(f"{self.name_prefix}*"):
            if path.is_file() and not path.name.startswith(mine):
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    # ---- writing -------------------------------------------------------------------------------

    def write(self, record: dict) -> None:
        if self._file is None:
            self._open()
        self._buffer += dumps(record)
        self._buffer += b"\n"
        self._rows_in_file += 1
        if len(self._buffer) >= FLUSH_BYTES:
            self._flush()
        if self._rows_in_file >= self.batch_size:
            self._close()
            if self._on_full is not None:
                manifest, self._manifest = self._manifest, []
                self._on_full(manifest)

    def finish_window(self) -> list[str]:
        """The window's rows are all written: close its files; the URLs not announced yet, in order."""
        self._close()
        manifest, self._manifest = self._manifest, []
        self._window_files = []
        return manifest

    def discard_window(self) -> None:
        """The window's rows must not reach the target: its files (never announced) are deleted."""
        self._close()
        root = _local_root(self.storage.root)
        if root is not None:
            for name in self._window_files:
                (root / name).unlink(missing_ok=True)
        self._manifest, self._window_files = [], []

    def _open(self) -> None:
        self._count += 1
        filename = f"{self.name_prefix}{self._run}-{self._count:05d}.json" + (".gz" if self.compress else "")
        self._context = self.storage.open(filename, "wb")
        raw = self._context.__enter__()
        self._file = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL) if self.compress else raw
        self._manifest.append(self.storage.get_url(filename))
        self._window_files.append(filename)
        self._rows_in_file = 0

    def _flush(self) -> None:
        if self._buffer and self._file is not None:
            self._file.write(self._buffer)
            self._buffer.clear()

    def _close(self) -> None:
        if self._file is None:
            return
        self._flush()
        if self.compress:
            self._file.close()
        self._context.__exit__(None, None, None)
        self._file = None


def read_batch_file(url: str) -> list[dict]:
    """The records of one local batch file (tests, and a reader's reference)."""
    path = _local_root(url)
    assert path is not None, url
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]
