"""The job-record streams (talkdesk_report_jobs, myreports_requests): one record per report job or
request a run made, collected from the row streams as their jobs run."""

from __future__ import annotations

import threading
import typing as t
from functools import cached_property

from tap_callreports.conform import Conformer, ValueNotConformed
from tap_callreports.schemas import load_schema
from tap_callreports.sdk_hooks import OneErrorLine, whole_stream_batches

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_callreports.sdk_hooks import BatchConfig


class JobRecords:
    """Records for the job-record streams, filled by the row streams as their jobs run; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[dict]] = {}

    def add(self, stream: str, record: dict) -> None:
        with self._lock:
            self._records.setdefault(stream, []).append(record)

    def records(self, stream: str) -> list[dict]:
        with self._lock:
            return list(self._records.get(stream, []))


class JobRecordsStream(OneErrorLine):
    """One record per report job or request this run made (talkdesk_report_jobs,
    myreports_requests). Synced after the row streams whose jobs it reports: empty when none of
    them is selected."""

    replication_key = None

    def __init__(self, tap: Tap, name: str, key: str, job_records: JobRecords) -> None:
        self.job_records = job_records
        super().__init__(tap, name=name, schema=load_schema(name))
        self.primary_keys = [key]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self.job_records.records(self.name)

    @cached_property
    def conformer(self) -> Conformer:
        return Conformer(self.effective_schema, self.name)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Job records are the tap's bookkeeping, some fields copied from vendor metadata: a field
        that does not fit its column is logged and left empty rather than failing a run whose rows
        are all in (its key fields never come from the vendor's metadata)."""
        while True:
            try:
                return self.conformer.conform(row)
            except ValueNotConformed as refused:
                rule = self.conformer.rules.get(refused.column)
                if refused.column not in row or rule is None or "null" not in rule.types:
                    raise
                self.logger.warning(
                    "%s: %s is %r, not %s: left empty in this job record",
                    self.name,
                    refused.column,
                    refused.value,
                    "/".join(rule.types),
                )
                row[refused.column] = None

    def get_batches(self, batch_config: BatchConfig, context: Context | None = None) -> t.Iterable[t.Any]:
        return whole_stream_batches(self, batch_config, context)
