"""Records that provably conform to their SCHEMA: what lets a target skip its own validation.

Every record the tap emits is checked against the schema the target was sent (the catalog's, with
any column the tap added since), column by column:

- a value of the column's JSON type passes (for `format: date-time`, RFC 3339 text; an offset
  other than `Z`, or none at all (read as UTC, as the tap reads the vendors' times), is rewritten
  as UTC `...Z`);
- a value the vendor sent as another JSON type is converted when that loses nothing: `"12"`,
  `12.0` or `true` in an integer column, `"12.5"` in a number column, `"true"`/`1` in a boolean
  column, numbers, booleans, objects and arrays in a string column (as their JSON text), `""` in a
  nullable integer/number/boolean column (null);
- anything else (`"N/A"` in an integer column, null where the schema has no null, `"abc"` as a
  date-time) stops the stream with one line naming the column: a record that would not load, or
  would load as a different number, is not emitted.

Report streams call `check` from their row shaper with a per-layout `ProvenTypes`: for each column
of the layout, the value types already proven to pass it unchanged; a row whose every value's type
is in its column's set passes with one C-level probe per value (and a finiteness test of its float
values), a row with a value of a type new to its column has only those values conformed. Other
streams call `conform` per record.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import operator
import re
import typing as t

import orjson

from tap_callreports.errors import StreamError
from tap_callreports.redact import REGISTRY

_NULL = type(None)
_RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")
#: ISO 8601 date-time text: (date and time to the second, the fraction, the offset).
ISO_DATE_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
#: Above this a float no longer holds every integer: such a float may not be the number sent.
_EXACT_FLOAT = 2.0**53
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_SHOWN = 60  # characters of a refused value shown in the error line


class ValueNotConformed(StreamError):
    """A vendor value that is not of its column's type and cannot become it without loss."""

    def __init__(
        self,
        stream: str,
        column: str,
        types: t.Sequence[str],
        value: t.Any,
        fmt: str | None = None,
        *,
        missing: bool = False,
    ) -> None:
        self.column = column
        self.value = value
        if missing:
            sent = "a record without it"
        else:
            shown = REGISTRY.redact(
                repr(value) if isinstance(value, str) else orjson.dumps(value, default=str).decode()
            )
            sent = shown[:_SHOWN] + "..." if len(shown) > _SHOWN else shown
        wanted = "/".join(types) + (f" ({fmt})" if fmt else "")
        super().__init__(
            stream,
            f"column '{column}' is {wanted} in the schema but the vendor sent {sent}, which "
            "cannot become one without loss; the record was not emitted, the stream stopped and no "
            "bookmark moved past it. If the vendor now sends such values, override the column's type "
            'in the catalog (Meltano: the extractor\'s `schema` extra, e.g. type [string, "null"]) '
            "and run again",
        )


def json_types(spec: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    """The JSON types a column's schema allows (its `type`, a name or a list)."""
    kinds = spec.get("type")
    if kinds is None:
        return ()
    return (kinds,) if isinstance(kinds, str) else tuple(kinds)


def utc_text(text: str) -> str | None:
    """RFC 3339 UTC text for an ISO 8601 date-time text, or None when it is not one. An offset
    other than Z is applied; no offset reads as UTC (as the tap reads vendor times); the fraction
    of a second is kept as written (Python's datetime would cut it at microseconds)."""
    if _RFC3339_UTC.fullmatch(text):
        try:
            dt.datetime.fromisoformat(text[:19])  # a real date and time of day
        except ValueError:
            return None
        return text
    found = ISO_DATE_TIME.fullmatch(text.strip())
    if found is None:
        return None
    base, fraction, offset = found.groups()
    if offset in (None, "Z", "z"):
        offset = "+00:00"
    elif ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    try:
        moment = dt.datetime.fromisoformat(base + offset).astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not a real date, or beyond year 9999 in UTC
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + (fraction or "") + "Z"


def _finite(value: float | decimal.Decimal) -> bool:
    return value.is_finite() if value.__class__ is decimal.Decimal else math.isfinite(value)


def exact_number(text: str) -> int | decimal.Decimal | None:
    """A number written as text, exactly: an int, or a Decimal (the writer prints its digits as
    they are); an integral value like '12.0' or '1e3' is an int. None when not a finite number."""
    if "_" in text:  # Python reads '1_000'; no vendor means that
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if number == number.to_integral_value() and abs(number.adjusted()) < 100:
        return int(number)
    return number


def _json_text(value: t.Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class Column:
    """One property's rule: the Python classes that pass as they are, and how others convert."""

    __slots__ = ("name", "types", "ok", "date_time", "nested", "items")

    def __init__(self, name: str, spec: t.Mapping[str, t.Any], *, text_checked: bool = False) -> None:
        """`text_checked`: a date-time column whose text the tap itself checks (row shaping)."""
        self.name = name
        self.types = json_types(spec)
        kinds = set(self.types)
        ok: set[type] = set()
        if not kinds:  # no type: anything goes
            ok = {str, int, float, bool, dict, list, _NULL}
        if "string" in kinds:
            ok.add(str)
        if "integer" in kinds:
            ok.add(int)
        if "number" in kinds:
            ok |= {int, float, decimal.Decimal}  # Decimal: the writer keeps its exact text
        if "boolean" in kinds:
            ok.add(bool)
        if "object" in kinds:
            ok.add(dict)
        if "array" in kinds:
            ok.add(list)
        if "null" in kinds:
            ok.add(_NULL)
        self.date_time = "string" in kinds and spec.get("format") == "date-time" and not text_checked
        # Nested rules, only where the schema declares nested types.
        props = spec.get("properties") if "object" in kinds else None
        self.nested = Conformer.rules_for(props) if props else None
        items = spec.get("items") if "array" in kinds else None
        self.items = Column(f"{name}[]", items) if isinstance(items, dict) and json_types(items) else None
        if self.date_time:
            ok.discard(str)  # date-time text is checked value by value
        self.ok = frozenset(ok)

    def conform(self, value: t.Any, stream: str) -> t.Any:
        """`value` as this column's type, or ValueNotConformed."""
        cls = value.__class__
        if cls in self.ok:
            if (cls is float or cls is decimal.Decimal) and not _finite(value):
                raise ValueNotConformed(stream, self.name, self.types, str(value))  # JSON has no NaN/inf
            if cls is dict and self.nested:
                return Conformer.conform_mapping(value, self.nested, stream)
            if cls is list and self.items is not None:
                return [self.items.conform(item, stream) for item in value]
            return value
        kinds = self.types
        if cls is str:
            if self.date_time:
                utc = utc_text(value)
                if utc is not None:
                    return utc
            elif value.strip() == "":
                if "null" in kinds and ("integer" in kinds or "number" in kinds or "boolean" in kinds):
                    return None
            else:
                text = value.strip()
                if "integer" in kinds or "number" in kinds:
                    number = exact_number(text)
                    if number is not None and (number.__class__ is int or "number" in kinds):
                        return number
                if "boolean" in kinds:
                    lowered = text.lower()
                    if lowered in _TRUE:
                        return True
                    if lowered in _FALSE:
                        return False
        elif cls is bool:
            if "integer" in kinds or "number" in kinds:
                return int(value)
            if "string" in kinds and not self.date_time:
                return "true" if value else "false"
        elif cls is int or cls is float:
            # A float beyond 2**53 may be a longer integer the JSON parser rounded: its digits are
            # not known, so it becomes no integer and no text.
            exact = cls is int or abs(value) < _EXACT_FLOAT
            if cls is float and "integer" in kinds and value.is_integer() and exact:
                return int(value)
            if "boolean" in kinds and value in (0, 1):
                return bool(value)
            if "string" in kinds and not self.date_time and exact and math.isfinite(value):
                return _json_text(value)
        elif cls is decimal.Decimal and value.is_finite():
            if "integer" in kinds and value == value.to_integral_value():
                return int(value)
            if "string" in kinds and not self.date_time:
                return format(value, "f")
        elif cls is dict or cls is list:
            if "string" in kinds and not self.date_time:
                return _json_text(value)
        raise ValueNotConformed(stream, self.name, kinds, value, "date-time" if self.date_time else None)


class Conformer:
    """A stream's records against its schema's top-level properties (nested ones where declared)."""

    def __init__(self, schema: t.Mapping[str, t.Any], stream: str, text_checked: t.Iterable[str] = ()) -> None:
        """`text_checked`: date-time columns whose text the row shaper checks and converts itself."""
        self.stream = stream
        self.rules = self.rules_for(schema.get("properties") or {})
        for name in text_checked:
            if name in self.rules:
                self.rules[name] = Column(name, schema["properties"][name], text_checked=True)
        self.required = tuple(schema.get("required") or ())

    @staticmethod
    def rules_for(properties: t.Mapping[str, t.Any]) -> dict[str, Column]:
        return {name: Column(name, spec) for name, spec in properties.items() if isinstance(spec, dict)}

    @staticmethod
    def conform_mapping(row: dict[str, t.Any], rules: t.Mapping[str, Column], stream: str) -> dict[str, t.Any]:
        for name, value in row.items():
            rule = rules.get(name)
            if rule is not None and value.__class__ not in rule.ok:
                row[name] = rule.conform(value, stream)  # same keys: safe while iterating
            elif rule is not None and (rule.nested or rule.items is not None or value.__class__ is float):
                row[name] = rule.conform(value, stream)  # nested values; NaN/inf (stdlib json reads them)
        return row

    def conform(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """The row with every value of its column's type (converted in place), or ValueNotConformed."""
        for name in self.required:
            if name not in row:
                raise ValueNotConformed(
                    self.stream, name, self.rules[name].types if name in self.rules else (), None, missing=True
                )
        return self.conform_mapping(row, self.rules, self.stream)

    def check(self, row: dict[str, t.Any], proven: ProvenTypes) -> dict[str, t.Any]:
        """`conform` for the hot path, with the same verdicts and lines: a row whose every value's
        type was proven before for its column (`proven` belongs to one tuple of keys, so a column is
        a position) passes with one probe per value (`ProvenTypes.fast`, code made for the layout's
        proven types, once a row passed the C-level probes below); otherwise only the values of
        types not yet proven for their column are conformed, in the row's order, and each value
        that passed as it was proves its type for its column."""
        fast = proven.fast
        if fast is not None:
            if fast(row):
                return row
            return self._check_values(row, proven)
        seen = proven.seen
        if seen is not None and all(map(operator.contains, seen, map(type, row.values()))):
            for name in proven.floats:  # JSON has no NaN or infinity: each float is tested
                value = row[name]
                if value.__class__ is float and value - value != 0.0:
                    break
            else:
                proven.compile(row)
                return row
        return self._check_values(row, proven)

    def _check_values(self, row: dict[str, t.Any], proven: ProvenTypes) -> dict[str, t.Any]:
        """`conform_mapping`'s loop, skipping the values of a type proven for their column."""
        for name in self.required:
            if name not in row:
                raise ValueNotConformed(
                    self.stream, name, self.rules[name].types if name in self.rules else (), None, missing=True
                )
        if proven.seen is None:
            proven.seen = [set() for _ in row]
        rules, stream, floats = self.rules, self.stream, proven.floats
        for (name, value), types in zip(row.items(), proven.seen, strict=True):
            cls = value.__class__
            if cls in types and (cls is not float or value - value == 0.0):
                continue
            rule = rules.get(name)
            if rule is None:  # a column without a rule takes any value as it is
                if cls not in types:
                    types.add(cls)
                    proven.fast = None
                continue
            whole = rule.nested or rule.items is not None
            if cls not in rule.ok or whole or cls is float:
                row[name] = rule.conform(value, stream)  # same keys: safe while iterating
            if cls in rule.ok and not whole and cls not in types:  # passed as it was (a float: finite)
                types.add(cls)
                proven.fast = None  # made for fewer types: made again from these
                if cls is float and name not in floats:
                    floats.append(name)
        return row


class ProvenTypes:
    """What `Conformer.check` keeps per layout (one tuple of keys): for each column, by position,
    the value types proven to pass it as they are (None until the first row is checked), the
    columns where float was proven (each float value is still tested for NaN and infinity), and
    `fast`, the check made for those types (`compile`; None until a row passed them all, and
    again whenever a column proves a new type)."""

    __slots__ = ("seen", "floats", "fast", "compiled")

    #: The most times `compile` makes a layout's check (types keep arriving: the probes do it).
    MAX_COMPILES = 64

    def __init__(self) -> None:
        self.seen: list[set[type]] | None = None
        self.floats: list[str] = []
        self.fast: t.Callable[[dict[str, t.Any]], bool] | None = None
        self.compiled = 0

    def compile(self, row: dict[str, t.Any]) -> None:
        """`fast(row)`: True when every value of `row` (of this layout: same keys, same order) is
        of a type proven for its column and no float of a column where float was proven is NaN or
        infinite; False sends the row to `Conformer._check_values`. Straight-line code: the values
        unpacked by position, one test per value (`v is None or type(v) is str` for the usual text
        column, `type(v) in S` where more types are proven), about half the C-level probes' cost
        on a layout of 52 columns. Made from a copy of each column's types, so it is made again
        (by the next row that passes the probes) whenever a column proves one more type."""
        seen = self.seen
        if not seen or len(seen) != len(row) or self.compiled >= self.MAX_COMPILES:
            return
        self.compiled += 1
        floats = set(self.floats)
        env: dict[str, t.Any] = {}
        tests = []
        for i, (name, types) in enumerate(zip(row, seen, strict=True)):
            v = f"v{i}"
            if not types:
                return  # a column whose values were all conformed so far: nothing proven to test
            if types == {str, _NULL}:
                tests.append(f"({v} is None or type({v}) is str)")
            elif types == {_NULL}:
                tests.append(f"{v} is None")
            elif len(types) == 1:
                env[f"T{i}"] = next(iter(types))
                tests.append(f"type({v}) is T{i}")
            else:
                env[f"S{i}"] = frozenset(types)
                tests.append(f"type({v}) in S{i}")
            if name in floats and float in types:  # JSON has no NaN or infinity
                tests.append(f"(type({v}) is not float or {v} - {v} == 0.0)")
        names = ", ".join(f"v{i}" for i in range(len(seen)))
        code = (
            f"def fast(row):\n    try:\n        {names}, = row.values()\n    except ValueError:\n"
            f"        return False\n    return {' and '.join(tests) or 'True'}"
        )
        exec(compile(code, "<proven types>", "exec"), env)  # noqa: S102 - no text from the row: positions only
        self.fast = env["fast"]
