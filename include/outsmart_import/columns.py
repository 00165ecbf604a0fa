"""What a target column is and how its value is read from an Exact record: one declaration per column.

The registry declares every table with these; the transforms read each column as declared; the categories' rules
read a field that is no column through the same declarations. No pandas here (the registry is read when Airflow
parses the DAG file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# Exact's IDs are GUIDs; a record whose ID is not one cannot be tracked (rejected by the transform, landed under a
# key derived from its content). The one spelling of the pattern, for the landing, the transforms and the merge.
GUID_PATTERN = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"

# In a record derived from an ID that Exact sends in several rows (`Source.key_fields`: a goods delivery line per
# storage location): all its current rows, as Exact sent them (the record itself is the newest of them). Not an
# Exact field name (Exact's are PascalCase; its own extra is `__metadata`).
ROWS = "__rows"

# How a column's value is read from its Exact field(s); transforms.READERS implements each.
Read = Literal["text", "int", "num", "date", "datetime", "bool", "guid", "map"]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    # The Exact field the value comes from; a tuple: the first of them that has a value. None: the column is
    # filled by the category's rules, an enrichment or a lookup (or is one of the identity columns).
    source: str | tuple[str, ...] | None = None
    read: Read | None = None
    max_length: int | None = None  # text: longer values are rejected
    required: bool = False  # a record without a value is rejected ("missing <column>")
    default: Any = None  # the value when Exact sends none (flags: False)
    mapping: tuple[tuple[Any, str], ...] = ()  # read="map": Exact's code -> our word
    strict: bool = False  # read="map": a code not in the mapping rejects the record (else NULL)
    # Columns that only record where a row came from do not make it "changed" on their own.
    compare: bool = True

    @property
    def sources(self) -> tuple[str, ...]:
        if self.source is None:
            return ()
        return (self.source,) if isinstance(self.source, str) else self.source

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


# ---- column declarations: one call per column -------------------------------------------------------------------
def text(name: str, source: str | tuple[str, ...], max_length: int = 255, *, required: bool = False) -> Column:
    return Column(name, "text", source, "text", max_length=max_length, required=required)


def code(name: str, source: str, max_length: int = 60, *, required: bool = False) -> Column:
    """A code or short reference (item code, unit, currency): text of at most 60 characters by default."""
    return Column(name, "text", source, "text", max_length=max_length, required=required)


def integer(name: str, source: str, sql_type: str = "bigint", *, required: bool = False) -> Column:
    return Column(name, sql_type, source, "int", required=required)


def number(name: str, source: str) -> Column:
    return Column(name, "numeric(18,4)", source, "num")


def date(name: str, source: str) -> Column:
    """An Exact `/Date(ms)/` as a calendar date (Exact's wall clock, reference §4.6)."""
    return Column(name, "date", source, "date")


def moment(name: str, source: str) -> Column:
    """An Exact `/Date(ms)/` as a point in time (Amsterdam wall clock → UTC)."""
    return Column(name, "timestamptz", source, "datetime")


def flag(name: str, source: str, default: bool | None = None) -> Column:
    return Column(name, "boolean", source, "bool", default=default)


def guid(name: str, source: str, *, required: bool = False) -> Column:
    return Column(name, "uuid", source, "guid", required=required)


def status(name: str, source: str, mapping: dict, *, strict: bool = False) -> Column:
    """Exact's status code → our word; an unknown code is NULL, or rejects the record when `strict`."""
    return Column(name, "text", source, "map", mapping=tuple(mapping.items()), strict=strict)


def derived(name: str, sql_type: str) -> Column:
    """Filled by the category's rules, its enrichment or a lookup, not read from one Exact field."""
    return Column(name, sql_type)


def _audit(*cols: Column) -> tuple[Column, ...]:
    """Business columns plus the Exact identity columns every table has (read from the source's ID field and, on
    sync endpoints, its Timestamp)."""
    return (*cols, Column("exact_id", "uuid"), Column("exact_timestamp", "bigint", compare=False))
