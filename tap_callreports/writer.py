"""A faster Singer message writer (the SDK's `message_writer_class` extension point).

orjson instead of simplejson, and RECORD lines buffered: the buffer is flushed before every
other message (SCHEMA, STATE...), when it passes FLUSH_BYTES, and at the end of the run. A STATE
therefore never reaches the target ahead of the records it covers.

A report window's RECORD (and BATCH) lines can be held (`hold`): they go to a spool file on disk,
already serialised, instead of stdout, until the window's keys are proven; then `release` copies
them out in one buffered copy, or `discard` drops them (nothing of the window leaves). Other
messages (SCHEMA, STATE) are not held: a STATE written meanwhile covers only committed windows.
"""

from __future__ import annotations

import decimal
import os
import shutil
import signal
import sys
import tempfile
import typing as t

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.messages import Message, RecordMessage, SingerMessageType

FLUSH_BYTES = 1 << 20
#: Buffer of the copy of a held window to stdout.
COPY_BYTES = 1 << 20
#: Messages a held window keeps back (the ones that carry its rows).
HELD_TYPES = frozenset({SingerMessageType.RECORD, SingerMessageType.BATCH})
# Held back while lines are written: a signal landing in a write to a full pipe would end the
# write part-way and leave half a line for the target.
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_CAN_HOLD = hasattr(signal, "pthread_sigmask")  # not on Windows
_orjson_dumps = orjson.dumps


def _default(value: t.Any) -> t.Any:
    if isinstance(value, decimal.Decimal):
        # Exact: Decimal text is valid JSON number text (no float rounding).
        return orjson.Fragment(format(value, "f").encode())
    return str(value)


def _copy_spool(spool: t.BinaryIO, binary: t.BinaryIO) -> None:
    """The spool file from its position to `binary` (flushed): by the kernel where it can
    (`os.sendfile`: no pass through Python's buffers, a held window is hundreds of MB), else
    through a 1 MB buffer from where the kernel stopped."""
    position = spool.tell()
    try:
        out, source = binary.fileno(), spool.fileno()
        while sent := os.sendfile(out, source, position, COPY_BYTES):
            position += sent
        return
    except (AttributeError, OSError, ValueError):  # no file descriptor (io.UnsupportedOperation), or not here
        spool.seek(position)
    shutil.copyfileobj(spool, binary, COPY_BYTES)


def dumps(value: t.Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


class FastSingerWriter(GenericSingerWriter[bytes, Message]):
    """Only the main thread writes messages (job threads never do), so there is no lock.

    Consecutive RECORD lines of one stream and one time_extracted form a run: they share a head
    (`{"type":"RECORD","stream":...,"record":`) and a tail (`,"time_extracted":...}` + newline).
    While a run is open the buffer ends with the head of the line to come, and each record adds
    its body and the tail+head that separates it from the next one (in one append, so an
    interrupted run never holds half a line); ending the run cuts that last head off. A record
    body skips orjson's non-string-key option (twice the cost) unless it has such keys.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._stream: str | None = None  # the open run's stream and time_extracted
        self._stamp: t.Any = None
        self._open = b""  # the head the buffer ends with while a run is open
        self._between = b""  # tail + head
        self._held: t.BinaryIO | None = None  # the spool file while a window is held

    def write_record(self, stream: str, record: dict, time_extracted: t.Any) -> None:
        """A RECORD line byte-for-byte like write_message(RecordMessage(...)) would give, without
        building the message object or a bytes object per line."""
        if stream is not self._stream or time_extracted is not self._stamp:
            self._start_run(stream, time_extracted)
        buffer = self._buffer
        try:
            buffer += _orjson_dumps(record, default=_default) + self._between
        except orjson.JSONEncodeError:  # non-string keys; anything else fails again, as before
            buffer += dumps(record) + self._between
        if len(buffer) >= FLUSH_BYTES:
            self.flush()

    def _start_run(self, stream: str, time_extracted: t.Any) -> None:
        self._end_run()
        head = dumps({"type": "RECORD", "stream": stream})[:-1] + b',"record":'
        tail = (b',"time_extracted":' + dumps(time_extracted) if time_extracted is not None else b"") + b"}\n"
        self._buffer += head
        self._stream, self._stamp, self._open, self._between = stream, time_extracted, head, tail + head

    def _end_run(self) -> None:
        if self._open:
            del self._buffer[-len(self._open) :]
            self._stream = self._stamp = None
            self._open = b""

    def serialize_message(self, message: Message) -> bytes:
        if type(message) is RecordMessage:
            line: dict[str, t.Any] = {"type": "RECORD", "stream": message.stream, "record": message.record}
            if message.version is not None:
                line["version"] = message.version
            if message.time_extracted is not None:
                line["time_extracted"] = message.time_extracted
            return dumps(line)
        return dumps(message.to_dict())

    def write_message(self, message: Message) -> None:
        self._end_run()
        line = self.format_message(message) + b"\n"
        if self._held is not None and message.type not in HELD_TYPES:
            self.flush()  # the held lines to the spool; this one goes out now
            self._emit(line)
            return
        self._buffer += line
        if type(message) is not RecordMessage or len(self._buffer) >= FLUSH_BYTES:
            self.flush()

    # ---- holding a window's lines ----------------------------------------------------------------

    def hold(self) -> None:
        """From now on RECORD and BATCH lines go to the spool file, not out."""
        self.discard()  # (a window held and never released or dropped: nothing of it leaves)
        self.flush()
        self._held = t.cast(t.BinaryIO, tempfile.TemporaryFile(prefix="tap-callreports-window-"))

    def release(self) -> None:
        """The held lines go out, in order, and nothing is held any more."""
        spool = self._held
        if spool is None:
            return
        self.flush()
        self._held = None
        with spool:
            spool.seek(0)
            self._emit(spool)

    def discard(self) -> None:
        """The held lines are dropped: none of them ever leaves."""
        spool = self._held
        if spool is None:
            return
        self._end_run()
        self._buffer = bytearray()
        self._held = None
        spool.close()

    def flush(self) -> None:
        self._end_run()
        if not self._buffer:
            return
        # Handed over before the write: a signal raised once the lines are out must not leave
        # them buffered, to be written a second time by the final flush.
        data, self._buffer = self._buffer, bytearray()
        if self._held is not None:
            self._held.write(data)
            return
        self._emit(data)

    def _emit(self, data: bytes | bytearray | t.BinaryIO) -> None:
        """Write bytes, or a whole spool file in one buffered copy, to stdout, signals held so no
        half line is left for the target."""
        chunks: t.Iterable[bytes | bytearray] = [data] if isinstance(data, (bytes, bytearray)) else data
        out = sys.stdout
        binary = getattr(out, "buffer", None)
        if binary is None:  # a text stream without a byte buffer (tests capturing stdout): whole lines
            for chunk in chunks:
                out.write(chunk.decode())
            out.flush()
            return
        out.flush()
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS) if _CAN_HOLD else None
        try:
            if isinstance(data, (bytes, bytearray)):
                binary.write(data)
            else:
                binary.flush()
                _copy_spool(data, binary)
            binary.flush()
        finally:
            if held is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
