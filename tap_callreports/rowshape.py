"""Warehouse-ready rows: what a report row looks like when it leaves the tap.

Each report stream declares its `RowPolicy` as data, next to the stream (like a manifest entry):
its key, the fields the vendor renamed, the fields that name an instant, and how vendor names
become SQL-friendly column names. `RowShaper` applies it to every row on the hot path, and
`RowPolicy.output_schema` applies it to the vendor schema file once, so the SCHEMA a target sees
and the rows it gets always agree.

- Column names need no quoting in any SQL warehouse: lower snake_case (`docId` -> `doc_id`),
  declared prefixes stripped (`studio_flow_executions_aggregated.flow_name` -> `flow_name`), any
  other character that is not [a-z0-9_] -> `_`. Two vendor names that would meet keep apart: the
  later one gets its full dotted name with `__` for dots.
- Renamed fields land in one canonical column whichever payload version arrives.
- Instants are RFC 3339 UTC (`...Z`, format date-time). A vendor value with an offset or `Z` is
  converted; a wall time without one is read in the zone the report was requested in, and the
  original text is kept as `<column>_local` (the local wall time carries information).

Row keys (made and checked): rowkeys.py; fields the schema did not list: schemagrowth.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import typing as t
from dataclasses import dataclass, field

from tap_callreports.conform import ISO_DATE_TIME, Conformer, ValueNotConformed, utc_text
from tap_callreports.errors import StreamError
from tap_callreports.redact import REGISTRY
from tap_callreports.rowkeys import ROW_KEY, ROW_KEY_DESCRIPTION

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_NOT_SQL = re.compile(r"[^a-z0-9_]+")
_SECONDS = frozenset(f"{second:02d}" for second in range(60))


def sql_name(name: str, strip_prefixes: t.Sequence[str] = ()) -> str:
    """A column name no SQL warehouse needs quoted."""
    for prefix in strip_prefixes:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    name = _NOT_SQL.sub("_", _CAMEL.sub(r"_\1", name).lower()).strip("_") or "column"
    return f"_{name}" if name[0].isdigit() else name


@dataclass(frozen=True)
class RowPolicy:
    """How one report stream's vendor rows become warehouse rows (all names are output names)."""

    key: tuple[str, ...]
    #: Old vendor names -> the canonical (output) name they fill.
    renamed: t.Mapping[str, str] = field(default_factory=dict)
    #: Output columns that name an instant (emitted as UTC date-time).
    instants: tuple[str, ...] = ()
    #: Instants the vendor writes as local wall time: their original text is kept as `<name>_local`.
    local_instants: tuple[str, ...] = ()
    #: Vendor name prefixes dropped from column names.
    strip_prefixes: tuple[str, ...] = ()
    #: Empty text is null in every column: a CSV cell cannot tell "" from null, so no format does.
    empty_text_is_null: bool = False
    #: The text "None" is a missing value in every column, known or added (Talkdesk writes both).
    none_text_is_null: bool = False

    def output_schema(self, vendor_schema: dict) -> dict:
        """The SCHEMA targets see: vendor properties under their column names, old names folded
        into the canonical ones, instants as date-time, local copies beside them."""
        schema = copy.deepcopy(vendor_schema)
        names = ColumnNames(self)
        properties: dict[str, dict] = {}
        vendor = vendor_schema.get("properties", {})
        for vendor_name, spec in vendor.items():
            if vendor_name not in self.renamed:
                properties[names.column(vendor_name)] = copy.deepcopy(spec)
        for vendor_name, spec in vendor.items():
            if vendor_name in self.renamed:  # folded into its canonical column
                properties.setdefault(self.renamed[vendor_name], copy.deepcopy(spec))
        for column in self.instants:
            spec = properties.setdefault(column, {})
            description = spec.get("description", "")
            properties[column] = {
                "type": ["string", "null"],
                "format": "date-time",
                "description": (description + " " if description else "") + "UTC.",
            }
            if column in self.local_instants:
                properties[f"{column}_local"] = {
                    "type": ["string", "null"],
                    "description": f"{column} as wall-clock time in the report's configured time zone "
                    "(YYYY-MM-DDTHH:MM:SS, whatever zone a window was requested in).",
                }
        for column in self.key:
            if column not in properties:
                properties[column] = (
                    {"type": ["string"], "description": ROW_KEY_DESCRIPTION}
                    if column == ROW_KEY
                    else {"type": ["string"]}
                )
        schema["properties"] = properties
        if "required" in schema:
            schema["required"] = list(dict.fromkeys(names.column(name) for name in schema["required"]))
        return schema


class ColumnNames:
    """Vendor name -> column name, cached; collisions resolved deterministically."""

    def __init__(self, policy: RowPolicy) -> None:
        self.policy = policy
        self._columns: dict[str, str] = {}
        self._owners: dict[str, str] = {}

    def column(self, vendor_name: str) -> str:
        found = self._columns.get(vendor_name)
        if found is not None:
            return found
        if vendor_name in self.policy.renamed:
            column = self.policy.renamed[vendor_name]
        else:
            column = sql_name(vendor_name, self.policy.strip_prefixes)
            owner = self._owners.get(column)
            if owner is not None and owner != vendor_name:
                column = sql_name(vendor_name.replace(".", "__"))
                suffix = 2
                while self._owners.get(column, vendor_name) != vendor_name:
                    column = f"{sql_name(vendor_name.replace('.', '__'))}_{suffix}"
                    suffix += 1
        self._owners.setdefault(column, vendor_name)
        self._columns[vendor_name] = column
        return column


class UtcInstants:
    """Vendor time text -> RFC 3339 UTC text, and UTC text -> wall time in a zone. Offsets are
    looked up once per minute: a minute seen before is converted by its cached text (zone offsets
    are whole minutes, so the seconds carry over as written)."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, t.Any], dt.timedelta] = {}
        #: (wall 'YYYY-MM-DD HH:MM' as sent, zone) -> its UTC 'YYYY-MM-DDTHH:MM'; and the reverse.
        self._utc_minutes: dict[tuple[str, t.Any], str] = {}
        self._wall_minutes: dict[tuple[str, t.Any], str] = {}

    def to_utc(self, text: str, zone: dt.tzinfo) -> tuple[str | None, bool]:
        """(UTC text or None if not an ISO 8601 date-time, whether `text` was a local wall time).
        The fraction of a second is kept as written."""
        if len(text) == 19 and text[16] == ":" and text[17:19] in _SECONDS:  # noqa: PLR2004 - wall text to the second
            minute = self._utc_minutes.get((text[:16], zone))
            if minute is not None:
                return f"{minute}{text[16:]}Z", True
        found = ISO_DATE_TIME.fullmatch(text.strip())
        if found is None:
            return None, False
        base, fraction, offset = found.groups()
        if offset is not None:
            return utc_text(text), False
        try:
            parsed = dt.datetime.fromisoformat(base)
        except ValueError:
            return None, False
        key = (base[:16], zone)
        shift = self._offsets.get(key)
        if shift is None:
            shift = parsed.replace(second=0, microsecond=0, tzinfo=zone).utcoffset() or dt.timedelta(0)
            self._offsets[key] = shift
        try:
            moment = parsed - shift
        except OverflowError:
            return None, False
        utc = moment.isoformat(timespec="seconds") + (fraction or "") + "Z"
        if base == text and len(text) == 19 and shift.total_seconds() % 60 == 0 and text[17:19] in _SECONDS:  # noqa: PLR2004
            self._utc_minutes[(text[:16], zone)] = utc[:16]
        return utc, True

    def wall(self, utc: str, zone: dt.tzinfo) -> str:
        """The wall time of a UTC text in `zone`, as `_local` columns write it (as MyReports'
        start_local): YYYY-MM-DDTHH:MM:SS, and the fraction as written."""
        key = (utc[:16], zone)
        minute = self._wall_minutes.get(key)
        if minute is None:
            local = dt.datetime.fromisoformat(utc[:16] + ":00+00:00").astimezone(zone)
            if local.utcoffset().total_seconds() % 60:  # type: ignore[union-attr]  # a zone of 1900: no cache
                moment = dt.datetime.fromisoformat(utc[:19] + "+00:00").astimezone(zone)
                return moment.strftime("%Y-%m-%dT%H:%M:%S") + utc[19:-1]
            minute = local.strftime("%Y-%m-%dT%H:%M")
            self._wall_minutes[key] = minute
        return minute + utc[16:-1]


def _wall_text(text: str) -> str:
    """A wall-clock text ('YYYY-MM-DD HH:MM:SS' or with T) as `_local` columns write it."""
    text = text.strip()
    return text if text[10] == "T" else f"{text[:10]}T{text[11:]}"


_MISSING_TEXTS = frozenset({"", "None"})


def _has_missing_text(row: dict[str, t.Any]) -> bool:
    """Whether a value is "" or "None" (a C-level set probe per value; a list or object value
    cannot be hashed, and then the slower scan decides)."""
    try:
        return not _MISSING_TEXTS.isdisjoint(row.values())
    except TypeError:
        values = row.values()
        return "" in values or "None" in values


class RowShaper:
    """Applies a RowPolicy to rows, in place where it can (the hot path)."""

    def __init__(
        self,
        policy: RowPolicy,
        vendor_names: t.Iterable[str] = (),
        known: t.Callable[[], frozenset[str]] | None = None,
        on_unknown: t.Callable[[dict[str, t.Any]], None] | None = None,
        conformer: t.Callable[[], Conformer] | None = None,
        stream: str = "",
        instants: t.Callable[[], t.Sequence[str]] | None = None,
        text_instants: t.Callable[[], t.Collection[str]] | None = None,
    ) -> None:
        """`known` gives the columns the stream's schema has; a row with any other column is handed
        to `on_unknown` (schema growth) before it is converted, so a new column is typed from the
        value as sent (missing texts already null). Checked once per set of vendor fields.
        `conformer` builds the stream's Conformer (again after the schema grows): every row leaves
        with each value of its column's type (`conform.py`). `instants` gives the instant columns
        (again after the schema grows); by default the policy's. `text_instants`: those of them the
        catalog declares text: a time in them is converted all the same, other text kept as sent."""
        self.policy = policy
        self.stream = stream
        self.names = ColumnNames(policy)
        self._known = known
        self._on_unknown = on_unknown
        self._new_conformer = conformer
        self._conformer = conformer() if conformer is not None else None
        for name in vendor_names:  # the schema's fields claim their columns first, as in output_schema
            self.names.column(name)
        #: The texts that are a missing value in every column (known or added).
        self._missing = frozenset(
            ({"None"} if policy.none_text_is_null else set()) | ({""} if policy.empty_text_is_null else set())
        )
        self.instants = UtcInstants()
        # Per key tuple seen: (the output names when any differs from the vendor's, else None;
        # whether any output name is unknown to the schema; the value-type patterns proven to
        # conform for this layout).
        self._columns_for: dict[tuple[str, ...], tuple[tuple[str, ...] | None, bool, set]] = {}
        self._instant_columns = instants
        self._instants = tuple(instants()) if instants is not None else policy.instants
        self._text_instant_columns = text_instants
        self._text_instants = frozenset(text_instants()) if text_instants is not None else frozenset()
        self._local = frozenset(policy.local_instants)
        self._minutes: set[str] = set()  # 'YYYY-MM-DDTHH:MM' prefixes of UTC texts proven valid

    def shape(self, row: dict[str, t.Any], zone: dt.tzinfo, local_zone: dt.tzinfo | None = None) -> dict[str, t.Any]:
        """Column names, canonical fields, UTC instants. Wall times are read in `zone` (the zone the
        report was requested in); their `_local` copies are the report zone's wall times
        (`local_zone`, when the report was requested in another zone; else `zone`), written
        YYYY-MM-DDTHH:MM:SS whatever form the vendor used."""
        keys = tuple(row)
        try:
            columns, unknown, proven = self._columns_for[keys]
        except KeyError:
            renamed = tuple(self.names.column(k) for k in keys)
            unknown = self._known is not None and not set(renamed) <= self._known()
            columns = None if renamed == keys else renamed
            proven = set()
            self._columns_for[keys] = (columns, unknown, proven)
        if columns is not None:
            row = dict(zip(columns, row.values()))
        if self._missing and _has_missing_text(row):
            missing = self._missing
            for name, value in row.items():  # same keys: safe while iterating
                if value.__class__ is str and value in missing:
                    row[name] = None
        if unknown and self._on_unknown is not None:
            # Typed from its first value that is not missing: the same type wherever a run starts.
            self._on_unknown(row)  # the conformer may be new now
            proven = set()
        conformer = self._conformer
        if conformer is not None and tuple(map(type, row.values())) not in proven:
            conformer.check(row, proven)
        local = self._local
        for name in self._instants:
            value = row.get(name)
            if value == "":
                row[name] = None  # no instant (instant columns take null)
            elif value.__class__ is str:
                if (
                    len(value) == 20
                    and value[19] == "Z"
                    and value[10] == "T"
                    and name not in local
                    and value[:16] in self._minutes
                    and value[16] == ":"
                    and value[17:19] in _SECONDS
                ):
                    continue  # already RFC 3339 UTC: the common case
                utc, was_local = self.instants.to_utc(value, zone)
                if utc is None:
                    if name in self._text_instants:
                        continue  # declared text in the catalog: kept as sent
                    if name in self.policy.instants:
                        raise ValueNotConformed(self.stream, name, ("string", "null"), value, "date-time")
                    raise AddedInstantNotATime(self.stream, name, value)
                if len(utc) == 20:
                    self._minutes.add(utc[:16])
                row[name] = utc
                if name in local:
                    row[f"{name}_local"] = (
                        _wall_text(value)
                        if was_local and local_zone is None
                        else self.instants.wall(utc, local_zone or zone)
                    )
        return row

    def schema_changed(self) -> None:
        """The schema knows more columns now: check each set of vendor fields again."""
        self._columns_for.clear()
        if self._new_conformer is not None:
            self._conformer = self._new_conformer()
        if self._instant_columns is not None:
            self._instants = tuple(self._instant_columns())
        if self._text_instant_columns is not None:
            self._text_instants = frozenset(self._text_instant_columns())


class AddedInstantNotATime(ValueNotConformed):
    """A column the tap added as an instant (its first value was a time) gets a value that is not
    one. Emitting it as null would lose it, and guessing a type from whichever value came first
    would give another table on another run: the stream stops, and the line names the exact
    catalog declaration that takes such values (SchemaGrowth honours it)."""

    def __init__(self, stream: str, column: str, value: t.Any) -> None:
        self.column, self.value = column, value
        shown = REGISTRY.redact(repr(value))[:_SHOWN_ADDED]
        StreamError.__init__(  # the message is this class's own, not ValueNotConformed's
            self,
            stream,
            f"column '{column}' (a field the schema did not list) was added as a UTC date-time because its first "
            f"value was a time, but the vendor sent {shown}, which is not a time; the record was not emitted and "
            f"no bookmark moved past it. Declare the column as text in the stream's catalog schema: "
            f'"{column}": {{"type": ["string", "null"]}} under the {stream} entry\'s schema.properties (Meltano: '
            f'the extractor\'s `schema` extra, {stream}: {{{column}: {{type: [string, "null"]}}}}) and run again; '
            "times in it still land as UTC text, any other text as sent",
        )


_SHOWN_ADDED = 80
