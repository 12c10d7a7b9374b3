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
- Values the vendor writes in a form other than the column's type are converted where nothing is
  lost (`ValueForm`: flags as text, durations as fractions of a day or `0d 0h 0m 42s` text, lists
  as JSON text), by one converter per column chosen once per layout; any other value stops the
  stream with one line naming the column and the catalog override.
- Instants are RFC 3339 UTC (`...Z`, format date-time). A vendor value with an offset or `Z` is
  converted; a wall time without one is read in the zone the report was requested in, and the
  original text is kept as `<column>_local` (the local wall time carries information).

Row keys (made and checked): rowkeys.py; fields the schema did not list: schemagrowth.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import math
import re
import textwrap
import typing as t
from dataclasses import dataclass, field

import orjson

from tap_callreports.conform import ISO_DATE_TIME, Column, Conformer, ProvenTypes, ValueNotConformed, utc_text
from tap_callreports.errors import StreamError
from tap_callreports.redact import REGISTRY
from tap_callreports.rowkeys import ROW_KEY, ROW_KEY_DESCRIPTION

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_NOT_SQL = re.compile(r"[^a-z0-9_]+")
_SECONDS = frozenset(f"{second:02d}" for second in range(60))
#: The classes of values that hash (`compile_layout`).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def sql_name(name: str, strip_prefixes: t.Sequence[str] = ()) -> str:
    """A column name no SQL warehouse needs quoted."""
    for prefix in strip_prefixes:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    name = _NOT_SQL.sub("_", _CAMEL.sub(r"_\1", name).lower()).strip("_") or "column"
    return f"_{name}" if name[0].isdigit() else name


@dataclass(frozen=True)
class ValueForm:
    """How a vendor writes a column's values, and the lossless conversion to the column's JSON type
    (`kind`). `convert` takes a value that is not missing and returns it converted, or raises
    ValueError when the value is in none of the form's `known` forms."""

    name: str
    kind: str
    known: str
    convert: t.Callable[[t.Any], t.Any]


def _flag_forms() -> dict[t.Any, bool]:
    forms: dict[t.Any, bool] = {True: True, False: False}
    for words, flag in ((("true", "yes", "t", "y", "1"), True), (("false", "no", "f", "n", "0"), False)):
        for word in words:
            for written in (word, word.upper(), word.capitalize()):
                forms[written] = flag
    return forms


_FLAGS = _flag_forms()


def _flag(value: t.Any) -> bool:
    try:
        return _FLAGS[value]
    except (KeyError, TypeError):  # a list or object cannot be looked up
        if value.__class__ is str and (found := _FLAGS.get(value.strip().lower())) is not None:
            return found
        raise ValueError(value) from None


DAY = 86400


def _day_fraction(value: t.Any) -> float:
    """A fraction of a day (0.000069444446, 1.6087963E-6) -> seconds, to the millisecond: the
    vendor's fractions carry about 8 significant digits (a float32), less than a millisecond."""
    cls = value.__class__
    if cls is bool or cls not in (int, float, str):
        raise ValueError(value)
    number = float(value)  # ValueError for text that is not a number
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return round(number * DAY, 3)


_DHMS = re.compile(r"\s*(?:([0-9]+)d)?\s*(?:([0-9]+)h)?\s*(?:([0-9]+)m)?\s*(?:([0-9]+)s)?\s*")


def _dhms(value: t.Any) -> int:
    """Duration text `0d 0h 0m 42s` (any part may be left out) -> whole seconds."""
    found = _DHMS.fullmatch(value) if value.__class__ is str else None
    if found is None or not any(found.groups()):
        raise ValueError(value)
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _json_list(value: t.Any) -> list:
    """A JSON array, or text holding one (`["rg1", "rg2"]`, as CSV cells and some reports write it)."""
    if value.__class__ is list:
        return value
    if value.__class__ is str:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError(value) from None
        if parsed.__class__ is list:
            return parsed
    raise ValueError(value)


#: A flag written as a boolean or as text in any case: true/false, yes/no, t/f, y/n, 1/0.
FLAG = ValueForm("flag", "boolean", "true/false, yes/no, t/f, y/n, 1/0 in any case", _flag)
#: A duration written as a fraction of a day, decimal or exponent form -> seconds.
DAY_FRACTION = ValueForm("day fraction", "number", "a fraction of a day (e.g. 0.000069444446)", _day_fraction)
#: A duration written as text `0d 0h 0m 42s` -> seconds.
DHMS_TEXT = ValueForm("duration text", "number", "duration text like '0d 0h 0m 42s'", _dhms)
#: A list written as a JSON array or as text holding one.
JSON_LIST = ValueForm("list", "array", 'a JSON array or text holding one (e.g. ["a", "b"])', _json_list)


def seconds_column(vendor_name: str, strip_prefixes: t.Sequence[str] = ()) -> str:
    """The column of a duration: its name says seconds (`talk_time` -> `talk_time_seconds`)."""
    name = sql_name(vendor_name, strip_prefixes)
    return name if name.endswith("_seconds") else f"{name}_seconds"


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
    #: Output columns whose vendor form is converted to the column's type (`ValueForm`).
    forms: t.Mapping[str, ValueForm] = field(default_factory=dict)

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
        for column, form in self.forms.items():
            spec = properties.setdefault(column, {})
            spec["type"] = [form.kind, "null"]
            if form.kind == "array":
                spec.setdefault("items", {"type": ["string"]})
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


def _holds_any(texts: frozenset[str], row: dict[str, t.Any]) -> bool:
    """Whether a value of the row is one of `texts` (a C-level set probe per value; a list or
    object value cannot be hashed, and then the slower scan decides)."""
    try:
        return not texts.isdisjoint(row.values())
    except TypeError:
        values = row.values()
        return any(text in values for text in texts)


#: Renamed fields move in place while at most one field in this many is renamed (else: rebuilt).
_MOVES_RATIO = 4


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
        forms: t.Callable[[], t.Mapping[str, ValueForm]] | None = None,
    ) -> None:
        """`known` gives the columns the stream's schema has; a row with any other column is handed
        to `on_unknown` (schema growth) before it is converted, so a new column is typed from the
        value as sent (missing texts already null). Checked once per set of vendor fields.
        `conformer` builds the stream's Conformer (again after the schema grows): every row leaves
        with each value of its column's type (`conform.py`). `instants` gives the instant columns
        (again after the schema grows); by default the policy's. `text_instants`: those of them the
        catalog declares text: a time in them is converted all the same, other text kept as sent.
        `forms` gives the columns whose vendor form is converted (again after the schema grows: a
        column the catalog types otherwise is left to the conformer); by default the policy's."""
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
        # Per key tuple seen: (the output names when the layout is rebuilt, else None; the
        # (vendor name, column) pairs moved in place; whether any output name is unknown to the
        # schema; the value types proven to conform per column of this layout; the (column, form)
        # pairs of this layout to convert; the vendor fields that held a missing text so far; the
        # layout's compiled shaper, `compile_layout`).
        self._columns_for: dict[
            tuple[str, ...],
            tuple[
                tuple[str, ...] | None,
                tuple[tuple[str, str], ...],
                bool,
                ProvenTypes,
                tuple[tuple[str, ValueForm], ...],
                list[str],
                t.Callable[[dict[str, t.Any]], dict[str, t.Any] | None] | None,
            ],
        ] = {}
        self._form_columns = forms
        self._forms = dict(forms()) if forms is not None else dict(policy.forms)
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
            columns, moves, unknown, proven, converted, hot, fast = self._columns_for[keys]
        except KeyError:
            columns, moves, unknown, proven, converted, hot, fast = self._columns_for[keys] = self._layout(keys)
        if fast is not None and (shaped := fast(row)) is not None:
            return shaped  # every check passed in the layout's own code (`compile_layout`)
        missing = self._missing
        if missing and _holds_any(missing, row):
            # The fields that held a missing text before in this layout are looked at first (a
            # C-level set probe per value says whether any other is left); the rest one by one.
            for name in hot:
                value = row[name]
                if value.__class__ is str and value in missing:
                    row[name] = None
            if _holds_any(missing, row):
                for name, value in row.items():  # same keys: safe while iterating
                    if value.__class__ is str and value in missing:
                        row[name] = None
                        hot.append(name)
        if columns is not None:
            row = dict(zip(columns, row.values()))
        else:
            for vendor_name, column in moves:
                row[column] = row.pop(vendor_name)
        for name, form in converted:
            value = row[name]
            if value is not None:
                try:
                    row[name] = form.convert(value)
                except (ValueError, TypeError, OverflowError):
                    raise ValueFormNotKnown(self.stream, name, form, value) from None
        if unknown and self._on_unknown is not None:
            # Typed from its first value that is not missing: the same type wherever a run starts.
            self._on_unknown(row)  # the conformer may be new now
            proven = ProvenTypes()
        conformer = self._conformer
        if conformer is not None:
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

    def _layout(self, keys: tuple[str, ...]) -> tuple:
        """What `shape` keeps per layout (the vendor's field names in order): the columns to rebuild
        the row with, or the few fields to move; whether any is unknown to the schema; the value
        types proven; the fields to convert; the fields that held a missing text; the layout's
        compiled shaper (None: it has none)."""
        renamed = tuple(self.names.column(k) for k in keys)
        unknown = self._known is not None and not set(renamed) <= self._known()
        moved = tuple((k, c) for k, c in zip(keys, renamed) if k != c)
        # A few renamed fields move in place (a Talkdesk duration to its `_seconds` column);
        # a layout renamed throughout (camelCase) is rebuilt in one go.
        moves = moved if len(moved) * _MOVES_RATIO <= len(keys) else ()
        columns = renamed if moved and not moves else None
        converted = tuple((name, self._forms[name]) for name in renamed if name in self._forms)
        fast = None if unknown else self._compiled(keys, renamed, moved, columns)
        return (columns, moves, unknown, ProvenTypes(), converted, [], fast)

    def _compiled(
        self,
        keys: tuple[str, ...],
        renamed: tuple[str, ...],
        moved: tuple[tuple[str, str], ...],
        columns: tuple[str, ...] | None,
    ) -> t.Callable[[dict[str, t.Any]], dict[str, t.Any] | None] | None:
        """The layout's compiled shaper, or None where the layout is out of its reach."""
        if columns is None:  # as `shape` orders the columns: moved ones go last, in order
            moved_names = {k for k, _ in moved}
            order = [i for i, k in enumerate(keys) if k not in moved_names]
            order += [keys.index(k) for k, _ in moved]
        else:
            order = list(range(len(keys)))
        conformer = self._conformer
        return compile_layout(
            LayoutPlan(
                columns=renamed,
                order=tuple(order),
                missing=self._missing,
                forms=self._forms,
                rules=conformer.rules if conformer is not None else None,
                required=conformer.required if conformer is not None else (),
                instants=frozenset(self._instants),
                local=self._local,
                minutes=self._minutes,
            )
        )

    def schema_changed(self) -> None:
        """The schema knows more columns now: check each set of vendor fields again."""
        self._columns_for.clear()
        if self._new_conformer is not None:
            self._conformer = self._new_conformer()
        if self._instant_columns is not None:
            self._instants = tuple(self._instant_columns())
        if self._text_instant_columns is not None:
            self._text_instants = frozenset(self._text_instant_columns())
        if self._form_columns is not None:
            self._forms = dict(self._form_columns())


#: The widest layout `compile_layout` compiles: its straight-line code costs a few steps per
#: field, the general path a C-level probe per check, so on wider rows (Talkdesk calls, 52
#: fields) the general path is faster; layouts with local instants always need the general path.
COMPILED_FIELDS = 32


@dataclass(frozen=True)
class LayoutPlan:
    """What `compile_layout` needs to know about one layout (one tuple of vendor keys)."""

    #: The output column of each vendor field, in the row's order.
    columns: tuple[str, ...]
    #: The fields' positions in the order `RowShaper.shape` leaves them (moved columns last).
    order: tuple[int, ...]
    missing: frozenset[str]
    forms: t.Mapping[str, ValueForm]
    #: The conformer's rules (None: no type check), and its required columns.
    rules: t.Mapping[str, Column] | None
    required: tuple[str, ...]
    instants: frozenset[str]
    local: frozenset[str]
    #: The UTC minutes proven valid (the shaper's own set, growing as rows come).
    minutes: set[str]


def compile_layout(plan: LayoutPlan) -> t.Callable[[dict[str, t.Any]], dict[str, t.Any] | None] | None:
    """A function made for one layout: `fast(row)` unpacks the row's values by position (the
    caller matched the row's keys to the layout), applies every check `RowShaper.shape` applies
    (missing texts to null, value forms, each value's type against its column's rule, instants
    already RFC 3339 UTC in a proven minute) as straight-line code, and returns the shaped row, a
    new dict, byte for byte what `shape` would give. Where any value is out of its reach (a form
    that does not convert, a type to convert, a time to convert, a nested value) it returns None
    and leaves the row untouched: the general path decides, and stops with its own line. None for
    a layout it cannot take at all (a column twice, a required column missing)."""
    columns = plan.columns
    if len(columns) > COMPILED_FIELDS or plan.local & set(columns) & plan.instants:
        return None  # measured slower than the general path's C-level probes (docs/performance.md)
    if len(set(columns)) != len(columns) or not all(c.__class__ is str for c in columns):
        return None
    if plan.rules is not None and not set(plan.required) <= set(columns):
        return None
    names = [f"v{i}" for i in range(len(columns))]
    env: dict[str, t.Any] = {"M": plan.missing, "MIN": plan.minutes, "SEC": _SECONDS}
    lines = ["def fast(row):", f"    {', '.join(names)}, = row.values()"]
    for i, (v, column) in enumerate(zip(names, columns, strict=True)):
        form = plan.forms.get(column)
        rule = plan.rules.get(column) if plan.rules is not None else None
        if plan.missing and form is None and rule is not None and rule.ok <= _SCALARS:
            lines.append(f"    if {v} in M: {v} = None")  # its values hash (else: TypeError, see below)
        elif plan.missing:
            lines.append(f"    if {v}.__class__ is str and {v} in M: {v} = None")
        if form is not None:
            env[f"F{i}"] = form.convert
            lines.append(
                f"    if {v} is not None:\n        try: {v} = F{i}({v})\n        except Exception: return None"
            )
        if rule is not None:
            ok = set(rule.ok) - {decimal.Decimal, *([dict] if rule.nested else []), *([list] if rule.items else [])}
            env[f"OK{i}"] = frozenset(ok)
            lines.append(f"    if {v}.__class__ not in OK{i}: return None")
            if float in ok:  # JSON has no NaN or infinity
                lines.append(f"    if {v}.__class__ is float and {v} - {v} != 0.0: return None")
        if column in plan.instants:
            utc = (
                "True"
                if column in plan.local
                else (
                    f"not (len({v}) == 20 and {v}[19] == 'Z' and {v}[10] == 'T' and {v}[:16] in MIN and "
                    f"{v}[16] == ':' and {v}[17:19] in SEC)"
                )
            )
            lines.append(f"    if {v}.__class__ is str and {v} != '' and {utc}: return None")
            lines.append(f"    if {v} == '': {v} = None")
    pairs = ", ".join(f"{columns[i]!r}: {names[i]}" for i in plan.order)
    lines.append(f"    return {{{pairs}}}")
    # A value that does not hash where only scalars belong (a list, an object): the general path.
    body = textwrap.indent("\n".join(lines[1:]), "    ")
    code = f"def fast(row):\n    try:\n{body}\n    except TypeError:\n        return None"
    exec(compile(code, "<rowshape layout>", "exec"), env)  # noqa: S102 - names from the layout, repr'd
    return t.cast("t.Callable[[dict[str, t.Any]], dict[str, t.Any] | None]", env["fast"])


class ValueFormNotKnown(ValueNotConformed):
    """A value in none of its column's known forms (a flag that is neither yes nor no, a duration
    that is no fraction of a day): converting it would be a guess, and null would lose it. The
    stream stops; the line names the catalog declaration that keeps such values as text."""

    def __init__(self, stream: str, column: str, form: ValueForm, value: t.Any) -> None:
        self.column, self.value = column, value
        shown = REGISTRY.redact(repr(value))[:_SHOWN_ADDED]
        StreamError.__init__(  # the message is this class's own, not ValueNotConformed's
            self,
            stream,
            f"column '{column}' ({form.kind}) takes {form.known}, but the vendor sent {shown}; converting it "
            "would be a guess, so the record was not emitted and no bookmark moved past it. To keep such values, "
            f"{_as_text(stream, column)}; the column then holds the values as the vendor wrote them",
        )


def _as_text(stream: str, column: str) -> str:
    """The way out of a stop on a column's value: the catalog declaration that keeps it as text."""
    return (
        f'declare the column as text in the stream\'s catalog schema: "{column}": {{"type": ["string", "null"]}} '
        f"under the {stream} entry's schema.properties (Meltano: the extractor's `schema` extra, "
        f'{stream}: {{{column}: {{type: [string, "null"]}}}}) and run again'
    )


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
            f"no bookmark moved past it. To keep it, {_as_text(stream, column)}; times in it still land as UTC "
            "text, any other text as sent",
        )


_SHOWN_ADDED = 80
