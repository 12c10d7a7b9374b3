"""Fields the schema did not list: each becomes its own column, typed once from its first value
(or as the catalog declares it), announced by a new SCHEMA before the first record carrying it.
"""

from __future__ import annotations

import copy
import typing as t

from tap_callreports.conform import ISO_DATE_TIME, json_types


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
                if spec.get("format") != "date-time" and "string" in json_types(spec):
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


def text_or_instant(value: t.Any) -> dict[str, t.Any]:
    """A new column's type the same whatever the file format: an instant (UTC date-time) when its
    first value is date-time text (ISO 8601, with or without offset, or wall-clock
    'YYYY-MM-DD HH:MM:SS'), else text (JSON numbers, booleans, objects as their JSON text), since a
    CSV cell cannot tell 12 from "12" nor "007" from 7."""
    if isinstance(value, str) and ISO_DATE_TIME.fullmatch(value.strip()):
        return {"type": ["string", "null"], "format": "date-time"}
    return {"type": ["string", "null"]}
