"""What a category is declared with: its Exact source, its target table and each column, once.

A column says where its value comes from in an Exact record and how to read it; a table its columns, merge key and
lookups; a source its endpoint, mode and `$select` (derived from the table). The registry declares every category
with these; the transforms read each column as declared; the rules read a field that is no column through the same
declarations. No pandas here, and no import of the registry: the registry is read when Airflow parses the DAG file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    """An Exact `/Date(ms)/` as a calendar date (Exact's Dutch wall clock: date-only fields arrive as midnight)."""
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


@dataclass(frozen=True)
class Lookup:
    """Fill `column` with `value` from another OutSmart table whose exact_id equals this row's `via` column
    (Exact gives some records only the GUID of a related account or item, not its code)."""

    column: str
    via: str
    tables: tuple[str, ...]
    value: str = "code"


@dataclass(frozen=True)
class TableSpec:
    name: str  # without schema; the table lives in schema `outsmart`
    columns: tuple[Column, ...]
    merge_key: str = "code"
    identity: str = "exact_id"  # Exact's stable ID: finds a row whose code was changed in Exact
    lookups: tuple[Lookup, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Source:
    endpoint: str  # e.g. 'sync/CRM/Accounts'
    mode: Literal["sync", "full"]  # sync: Timestamp watermark + sync/Deleted; full: read all, soft-delete the rest
    # The `$select`. Derived from the table's columns for a category's own stream (leave it empty there); given
    # only for a stream that feeds no table of ours directly (e.g. an enrichment's mirror).
    select: tuple[str, ...] = ()
    deleted_entity_type: int | None = None  # sync/Deleted EntityType
    id_field: str = "ID"  # the Exact field that is the record's stable ID (goods deliveries: EntryID)
    rule_fields: tuple[str, ...] = ()  # Exact fields only the category's rules read (they fill no column)
    # Exact fields that identify a row together with the ID, where Exact sends one ID in several rows: a goods
    # delivery line split over storage locations comes back once per StorageLocation (delivery_lines.py cites Exact).
    # Each row is landed on its own (landing.record_key); the category derives one record per ID from its rows.
    key_fields: tuple[str, ...] = ()
    # The Exact webhook topic whose events announce a change in this endpoint's records (beyond.md §1.2), or None:
    # Exact has no topic for it, so only the schedule reads it. One topic can cover several endpoints (a header
    # and its lines); an event of the topic starts the categories that read any of them (webhook_assets.py).
    webhook_topic: str | None = None

    def bound_to(self, table: TableSpec) -> Source:
        """This source with its `$select` derived from `table`: the ID field and the key fields, every column's
        source, the rules' fields, and Timestamp on a sync endpoint."""
        if self.select:
            return self
        fields = [self.id_field, *self.key_fields, *(s for c in table.columns for s in c.sources), *self.rule_fields]
        if self.mode == "sync":
            fields.append("Timestamp")
        return replace(self, select=tuple(dict.fromkeys(fields)))
