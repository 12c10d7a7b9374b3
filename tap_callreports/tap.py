"""TapCallReports: settings and the stream list."""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import logging
import threading
import typing as t
from functools import cached_property

from singer_sdk.helpers.capabilities import EMIT_ACTIVATE_VERSION_CONFIG

from tap_callreports.auth import CallReportsAuth
from tap_callreports.connection_test import run_connection_test
from tap_callreports.credentials import build_authenticator
from tap_callreports.errors import CallReportsError
from tap_callreports.redact import REGISTRY, install_log_redaction
from tap_callreports.reportjobs.engine import PollPolicy, ReportJobEngine
from tap_callreports.reportjobs.records import JobRecords, JobRecordsStream
from tap_callreports.reportjobs.services import JobServices
from tap_callreports.reportjobs.state import UnsavedJobs
from tap_callreports.reportjobs.stream import ReportJobStream
from tap_callreports.sdk_hooks import TapSDKHooks
from tap_callreports.settings import (
    SETTINGS_SCHEMA,
    Settings,
    load_settings,
    secret_values,
)
from tap_callreports.timeutil import iso_z
from tap_callreports.vendors import ALL_STREAM_NAMES, NO_CREDENTIALS, VENDORS, job_ceilings
from tap_callreports.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from singer_sdk import Stream


#: Settings the SDK reads without declaring them in its built-in settings: RESTStream.user_agent.
SDK_UNDECLARED_SETTINGS = ("user_agent",)


def _did_you_mean(name: str, valid: t.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class ExpectedUnsortedStream(logging.Filter):
    """The SDK warns on every run that an unsorted stream's "progress is not resumable if
    interrupted". For talkdesk_imports (the only stream that takes the SDK's per-record bookmark;
    report streams move theirs per window) that is by design and loses nothing: the list has no
    order, so the bookmark moves when the stream ends and an interrupted run reads the list again
    from the last one. Said at INFO, not as a warning (docs/errors.md)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Stream is assumed to be unsorted") and record.levelno == logging.WARNING:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def honour_catalog_keys(catalog: t.Any, declared: t.Mapping[str, t.Sequence[str]]) -> None:
    """A key given in the catalog is honoured: `key_properties`, or the `table-key-properties`
    metadata (what Meltano's `metadata` extra sets), whichever differs from the tap's own key
    (`declared`, per stream). The entry is settled before the stream maps and the streams read
    it, so the SCHEMA messages and the key checks use the same key."""
    for entry in catalog.streams:
        own = declared.get(entry.tap_stream_id or "")
        if own is None:
            continue
        root = entry.metadata.get(())
        for given in (getattr(root, "table_key_properties", None), entry.key_properties):
            if given and list(given) != list(own):
                entry.key_properties = list(given)
                if root is not None:
                    root.table_key_properties = list(given)
                break


class TapCallReports(TapSDKHooks):
    """Contact-centre reporting from Talkdesk, Zendesk and MyReports."""

    name = "tap-callreports"
    package_name = "tap-callreports"
    # A copy: the SDK appends its built-in settings (stream maps, flattening...) to this dict.
    config_jsonschema = copy.deepcopy(SETTINGS_SCHEMA)
    message_writer_class = FastSingerWriter

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._auth_lock = threading.Lock()
        self._authenticators: dict[str, CallReportsAuth] = {}
        self.job_records = JobRecords()
        self.unsaved_jobs = UnsavedJobs(lambda: self.state_writer.write_state(self.state))
        super().__init__(*args, **kwargs)
        REGISTRY.add(*secret_values(self.config))
        install_log_redaction()
        sdk_logger = logging.getLogger("singer_sdk")
        if not any(isinstance(f, ExpectedUnsortedStream) for f in sdk_logger.filters):
            sdk_logger.addFilter(ExpectedUnsortedStream())

    # ---- settings ----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """The SDK's built-in settings, plus `emit_activate_version_messages`: the SDK reads it for
        the `activate-version` capability but declares it for targets only."""
        super().append_builtin_config(config_jsonschema)
        for name, spec in EMIT_ACTIVATE_VERSION_CONFIG["properties"].items():
            config_jsonschema["properties"].setdefault(name, spec)

    def check_config(self, config: dict) -> None:
        """Before the SDK's schema validation (`TapSDKHooks._validate_config`): each check names its
        setting in one line; what the run would silently ignore is one warning each."""
        REGISTRY.add(*secret_values(config))
        settings = load_settings(config)
        self._warn_unknown_settings(config)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        if settings.start_date > now:
            self.logger.warning(
                "config: setting 'start_date' is in the future (%s; now %s): incremental streams have "
                "nothing to extract until then; set start_date to an earlier moment",
                iso_z(settings.start_date),
                iso_z(now),
            )

    @classmethod
    def accepted_settings(cls) -> list[str]:
        """Every setting the tap or the SDK reads: the tap's schema with the built-in settings the
        SDK adds for the tap's capabilities (stream maps, flattening, BATCH, activate-version; what
        `--about` lists), plus the few the SDK reads without declaring them."""
        schema = copy.deepcopy(SETTINGS_SCHEMA)
        cls.append_builtin_config(schema)
        return [*schema["properties"], *SDK_UNDECLARED_SETTINGS]

    def _warn_unknown_settings(self, config: dict) -> None:
        """A misspelt setting would be ignored and its default used without a word: one warning
        names each unknown one with the closest valid name."""
        valid = self.accepted_settings()
        unknown = [name for name in config if name not in valid]
        if unknown:
            self.logger.warning(
                "config: unknown setting(s) ignored (their defaults apply): %s; see docs/settings.md",
                ", ".join(f"'{name}'{_did_you_mean(name, valid)}" for name in unknown),
            )

    @cached_property
    def job_services(self) -> JobServices:
        """What every stream is handed when it is made (streams never reach into the tap for these)."""
        return JobServices(
            engine=self.engine,
            unsaved=self.unsaved_jobs,
            job_records=self.job_records,
            message_writer=self.message_writer,
            write_state=self.state_writer.write_state,
        )

    @cached_property
    def engine(self) -> ReportJobEngine:
        jobs = self.settings.jobs
        return ReportJobEngine(
            ceilings=job_ceilings(self.settings),
            poll=PollPolicy(jobs.poll_interval_seconds, jobs.poll_max_interval_seconds, jobs.timeout_seconds),
            logger=self.logger,
        )

    # ---- authenticators, one per vendor, shared by its streams and job threads -------------------

    def authenticator_for(self, vendor: str) -> CallReportsAuth:
        with self._auth_lock:
            if vendor not in self._authenticators:
                # bound to the vendor's API host (its authenticator in vendors.py)
                declared = VENDORS.get(vendor)
                factory = declared.authenticator if declared is not None else None
                self._authenticators[vendor] = build_authenticator(vendor, factory, self.settings, self.logger)
            return self._authenticators[vendor]

    # ---- streams -------------------------------------------------------------------------------

    def setup_mapper(self) -> None:
        if self.input_catalog is not None:
            # before the maps and streams read the keys
            honour_catalog_keys(
                self.input_catalog,
                {
                    name: key
                    for vendor in VENDORS.values()
                    for name, key in vendor.catalog_keys(vendor.group(self.settings)).items()
                },
            )
        super().setup_mapper()

    def discover_streams(self) -> list[Stream]:
        settings = self.settings
        streams: list[Stream] = []
        job_logs: list[Stream] = []
        for vendor in VENDORS.values():
            group = vendor.group(settings)
            if group is None:
                continue
            streams.extend(vendor.streams(self, group))
            if vendor.job_records is not None:
                job_logs.append(JobRecordsStream(self, *vendor.job_records, self.job_records))
        streams.extend(job_logs)  # last: they report the jobs the row streams ran
        if not streams:
            raise CallReportsError(NO_CREDENTIALS)
        return streams

    def check_selection(self) -> None:
        """A catalog selecting a stream this config does not produce stops the run with one line
        (the SDK would skip it and exit 0 with nothing written)."""
        if self.input_catalog is None:
            return
        for entry in self.input_catalog.streams:
            name = entry.tap_stream_id
            if name not in self.streams and entry.metadata.resolve_selection()[()]:
                raise CallReportsError(f"catalog: stream '{name}' is selected but {self._why_not_produced(name)}")

    def _why_not_produced(self, name: str) -> str:
        vendor = VENDORS.get(name.split("_", 1)[0])
        # A name no declared stream is close to may be one the vendor produces under its generic
        # rules (a Talkdesk report type).
        generic = (
            vendor is not None
            and vendor.may_produce(name)
            and not difflib.get_close_matches(name, ALL_STREAM_NAMES, n=1, cutoff=0.8)
        )
        if vendor is not None and (name in ALL_STREAM_NAMES or generic):
            if vendor.group(self.settings) is None:
                return f"the config has no {vendor.label} credentials; set {vendor.credentials}, or deselect the stream"
            return f"talkdesk_report_types does not include {name.removeprefix('talkdesk_')}; add it, or deselect the stream"
        return (
            f"tap-callreports has no such stream{_did_you_mean(name, ALL_STREAM_NAMES)}; "
            "run --discover for a current catalog"
        )

    def start_sync(self) -> None:
        """Every selected report stream starts its jobs now, before its turn to sync; then the
        streams of the vendor whose jobs end first are read first (`_read_first_what_ends_first`)."""
        for stream in self.streams.values():
            if isinstance(stream, ReportJobStream) and stream.selected:
                stream.prefetch()
        self._read_first_what_ends_first()

    def _read_first_what_ends_first(self) -> None:
        """Report streams sync in the order their vendor's jobs end (fewest rounds of jobs per slot
        first; within a vendor, as discovered): while one vendor's results are read, the other's
        jobs still run, and a window split when read (a MyReports fall-back, a cut result) gets its
        new jobs while there is still time to hide them. The other streams keep their places."""
        streams = self.streams
        places = [n for n, s in enumerate(streams.values()) if isinstance(s, ReportJobStream) and s.selected]
        if not places or "engine" not in self.__dict__:
            return
        names = list(streams)
        rounds = {vendor: slots.rounds() for vendor, slots in self.engine.slots.items()}
        ordered = sorted(places, key=lambda n: (rounds.get(t.cast(ReportJobStream, streams[names[n]]).vendor, 0.0), n))
        if ordered == places:
            return
        for place, source in zip(places, ordered, strict=True):
            names[place] = list(streams)[source]
        self._streams = {name: streams[name] for name in names}
        self.logger.info(
            "report streams are read in the order their jobs end: %s",
            ", ".join(name for name in names if isinstance(streams[name], ReportJobStream) and streams[name].selected),
        )

    def check_connection(self) -> bool:
        """`--test`: each configured vendor checked cheaply (connection_test.py)."""
        return run_connection_test(self, VENDORS.values())

    def end_sync(self) -> None:
        if "engine" in self.__dict__:
            self.engine.shutdown()
        self.unsaved_jobs.record()  # jobs created but not yet in a STATE: the next run polls them
        t.cast(FastSingerWriter, self.message_writer).flush()  # records written before a failure still reach the target
