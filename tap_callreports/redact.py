"""Keep secrets out of logs and error lines, at every log level."""

from __future__ import annotations

import logging
import re
import threading
import typing as t

# Query strings of signed storage URLs (S3/GCS/Azure style) carry credentials.
_SIGNED_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-[a-z-]+|signature|sig|se|sp|sv|token|access_token|expires|key-pair-id|policy)=)[^&\s\"']+"
)
_SIGNATURE_PARAMETER = re.compile(r"(?i)(?:^|&)(?:x-amz-signature|x-goog-signature|signature|sig)=")
_AUTH_HEADER = re.compile(r"(?i)(authori[sz]ation['\"]?\s*[:=]\s*['\"]?(?:bearer|basic)?\s*)[A-Za-z0-9._~+/=-]+")


def is_signed_url(url: str) -> bool:
    """A URL that carries its own credentials in its query (S3/GCS/Azure presigned URLs)."""
    query = url.split("?", 1)[1] if "?" in url else ""
    return bool(_SIGNATURE_PARAMETER.search(query))


class SecretRegistry:
    """Known secret values (config secrets and tokens fetched at run time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._static: set[str] = set()
        self._sources: list[t.Callable[[], t.Iterable[str]]] = []

    def add(self, *values: str) -> None:
        with self._lock:
            self._static.update(v for v in values if v and len(v) >= 4)

    def add_source(self, source: t.Callable[[], t.Iterable[str]]) -> None:
        with self._lock:
            self._sources.append(source)

    def values(self) -> list[str]:
        with self._lock:
            found = set(self._static)
            sources = list(self._sources)
        for source in sources:
            found.update(v for v in source() if v and len(v) >= 4)
        return sorted(found, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self.values():
            if value in text:
                text = text.replace(value, "***")
        text = _AUTH_HEADER.sub(r"\1***", text)
        return _SIGNED_QUERY.sub(r"\1***", text)


REGISTRY = SecretRegistry()


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets replaced."""

    def __init__(self, registry: SecretRegistry) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not break the sync
            return True
        cleaned = self.registry.redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks print exception args: render them now, redacted.
            exc = record.exc_info[1]
            record.exc_text = self.registry.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            del exc
        return True


def install_log_redaction(registry: SecretRegistry = REGISTRY) -> None:
    """Attach the filter to every handler present (root and named loggers), once."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter(registry))
    # urllib3 logs full URLs (signed-URL query strings included) at debug level.
    logging.getLogger("urllib3").setLevel(max(logging.getLogger("urllib3").level, logging.INFO))
