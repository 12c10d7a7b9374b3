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
"""

from __future__ import annotations

import array
import copy
import datetime as dt
import hashlib
import re
import typing as t
from dataclasses import dataclass, field

import orjson

from tap_callreports.conform import ISO_DATE_TIME, Conformer, ValueNotConformed, utc_text
from tap_callreports.errors import StreamError
from tap_callreports.redact import REGISTRY

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_NOT_SQL = re.compile(r"[^a-z0-9_]+")
_SECONDS = frozenset(f"{second:02d}" for second in range(60))
#: The key of rows that carry no id of their own (RowKeys).
ROW_KEY = "_row_key"
ROW_KEY_DESCRIPTION = (
    "Added by the tap: a hash of the row's fields and its occurrence among identical rows of its "
    "window; the same every time the same window is read."
)


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


class RowKeys:
    """`_row_key` for rows that carry no id of their own: a hash of the row's fields (as shaped:
    the same whatever file format) and its occurrence among identical rows of the result, so two
    identical rows stay two rows and a window read again gives every row the same key again.
    Memory: one 16-byte digest per distinct row of the result."""

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def add(self, row: dict[str, t.Any]) -> None:
        digest = hashlib.blake2b(orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str), digest_size=16).digest()
        occurrence = self._seen.get(digest, 0)
        self._seen[digest] = occurrence + 1
        row[ROW_KEY] = f"{digest.hex()}-{occurrence}"


class KeyGuard:
    """The key of every row of one result: a row without its key, or two rows with the same key,
    would make a warehouse drop or merge rows silently, so both stop the stream instead.

    Memory: 8 bytes a row (a 64-bit hash: a false alarm needs two of a window's keys to share one,
    about one chance in 10^7 for a million rows), in 256 arrays by the hash's low byte, so the
    duplicate check sorts one small bucket at a time: memory stays flat at a million rows."""

    BUCKETS = 256

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self._buckets = [array.array("q") for _ in range(self.BUCKETS)]
        self._missing: list[int] = []
        self.add = self._adder()  # a closure: the cheapest call on the hot path

    def _adder(self) -> t.Callable[[t.Mapping[str, t.Any]], bool]:
        """`add(row)`: True when the row lacks its key (it is not counted: it must not leave)."""
        buckets, missing = self._buckets, self._missing.append
        low = self.BUCKETS - 1
        if len(self.key) == 1:
            name = self.key[0]

            def add_one(row: t.Mapping[str, t.Any]) -> bool:
                value = row.get(name)
                if value is None or value == "":
                    missing(1)
                    return True
                digest = hash(value)
                buckets[digest & low].append(digest)
                return False

            return add_one
        names = self.key

        def add_many(row: t.Mapping[str, t.Any]) -> bool:
            values = tuple([row.get(k) for k in names])
            if None in values or "" in values:
                missing(1)
                return True
            digest = hash(values)
            buckets[digest & low].append(digest)
            return False

        return add_many

    @property
    def missing(self) -> int:
        return len(self._missing)

    def duplicates(self) -> int:
        repeated = 0
        for bucket in self._buckets:
            ordered = sorted(bucket)
            repeated += sum(1 for a, b in zip(ordered, ordered[1:]) if a == b)
        return repeated


def json_type(value: t.Any) -> list[str]:
    """A schema type for a value first seen in a field the schema does not know."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, (int, float)):
        kind = "number"  # 4 today may be 4.5 tomorrow: number takes both
    elif isinstance(value, dict):
        kind = "object"
    elif isinstance(value, list):
        kind = "array"
    else:
        kind = "string"
    return [kind, "null"]


class SchemaGrowth:
    """A field the stream's schema does not know reaches the warehouse as its own column: the
    schema gains it (typed from its first non-null value) and a new SCHEMA goes out before the
    first record carrying it. SQL targets create columns only from SCHEMA messages."""

    def __init__(
        self,
        schema: dict,
        typer: t.Callable[[t.Any], dict[str, t.Any]] | None = None,
        declared: t.Callable[[], t.Mapping[str, dict]] | None = None,
    ) -> None:
        """`typer`: the column spec for a new field's first non-null value (default: its JSON type).
        `declared`: the columns the catalog declares: a field the catalog types takes that type, not
        one guessed from a value (the way out AddedInstantNotATime names)."""
        self.schema = schema
        self.known = frozenset(schema.get("properties", {}))
        self.typer = typer or (lambda value: {"type": json_type(value)})
        self.declared = declared
        #: Added columns that hold instants (format date-time).
        self.instants: list[str] = []
        #: Added columns the catalog declares text: their times are converted to UTC all the same
        #: (one zone in one column, whatever zone a window was requested in), other text kept as sent.
        self.text_instants: list[str] = []

    def grow(self, row: t.Mapping[str, t.Any]) -> list[str]:
        """Add the row's unknown non-null fields to the schema; return their names."""
        added = []
        properties = self.schema.setdefault("properties", {})
        declared = self.declared() if self.declared is not None else {}
        for name, value in row.items():
            if name in self.known or name in properties:
                continue
            if name in declared:
                spec = copy.deepcopy(declared[name])
                if spec.get("format") != "date-time" and "string" in _types_of(spec):
                    self.text_instants.append(name)
            elif value is not None:
                spec = {
                    **self.typer(value),
                    "description": "Added by the tap: a field the vendor sent that the schema did not list.",
                }
            else:
                continue  # typed by its first value that is not missing
            properties[name] = spec
            if spec.get("format") == "date-time" or name in self.text_instants:
                self.instants.append(name)
            added.append(name)
        if added:
            self.known = frozenset(properties)
        return added


def _types_of(spec: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    kinds = spec.get("type", ())
    return (kinds,) if isinstance(kinds, str) else tuple(kinds)


def text_or_instant(value: t.Any) -> dict[str, t.Any]:
    """A new column's type the same whatever the file format: an instant (UTC date-time) when its
    first value is date-time text (ISO 8601, with or without offset, or wall-clock
    'YYYY-MM-DD HH:MM:SS'), else text (JSON numbers, booleans, objects as their JSON text), since a
    CSV cell cannot tell 12 from "12" nor "007" from 7."""
    if isinstance(value, str) and ISO_DATE_TIME.fullmatch(value.strip()):
        return {"type": ["string", "null"], "format": "date-time"}
    return {"type": ["string", "null"]}
