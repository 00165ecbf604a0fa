"""The stream catalogue: which Exact streams the categories read, and how each is identified and tracked.

A stream is one Exact endpoint as landed (landing.py). Categories share streams (materials and hour types both read
the items; the standard sales price and the price agreements both read the sales item prices), so a stream's
`$select` is the union of every category's fields on that endpoint. `sync/Deleted` is one stream for every entity
type, read once; its rows become tombstones in the streams they belong to.

`outsmart.exact_streams` holds, per stream, its Exact watermark (the highest Timestamp landed), the `$select` it was
read with (a changed select is read in full again: the landed records lack the new field) and when it was last read,
and last read in full.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from include.outsmart_import.database import SCHEMA
from include.outsmart_import.declarations import GUID_PATTERN
from include.outsmart_import.registry import CATEGORIES, Category, Lines, Source

STREAMS = f"{SCHEMA}.exact_streams"

DDL = f"""
CREATE TABLE IF NOT EXISTS {STREAMS} (
    stream        text PRIMARY KEY,
    watermark     bigint,
    select_hash   text NOT NULL,
    refreshed_at  timestamptz NOT NULL,
    full_read_at  timestamptz NOT NULL
);
"""

# Exact's own `sync/Deleted`: one stream for all entity types; its rows become tombstones in the streams above.
DELETED = "sync/Deleted"
_DELETED_SELECT = ("ID", "EntityKey", "EntityType", "DeletedDate", "Timestamp")
GUID = re.compile(GUID_PATTERN)
KEY_SEPARATOR = "/"  # record_key of a row Exact sends once per key field value: '<ID>/<value>'


@dataclass(frozen=True)
class Stream:
    """One Exact endpoint as landed: its `$select` is the union of every category's fields on that endpoint."""

    name: str  # the endpoint, e.g. 'sync/CRM/Accounts'
    mode: str  # 'sync' (Timestamp watermark), 'full' (no sync endpoint: every read is complete), 'deleted'
    select: tuple[str, ...]
    id_field: str = "ID"
    deleted_entity_type: int | None = None
    key_fields: tuple[str, ...] = ()  # Source.key_fields: with the ID, they identify a row
    webhook_topic: str | None = None  # Source.webhook_topic: the Exact webhook topic announcing its changes

    @property
    def select_hash(self) -> str:
        return hashlib.sha256(",".join(sorted(self.select)).encode()).hexdigest()[:16]


def sources_of(category: Category, dependents: tuple[Lines, ...] | None = None) -> list[Source]:
    """The Exact sources a category derives from: its own, its dependent tables' (all, or those given), its
    enrichment's."""
    out = [category.source]
    out += [d.source for d in (category.dependents if dependents is None else dependents)]
    if category.enrichment is not None:
        out.append(category.enrichment.source)
    return out


def all_streams(categories: list[Category] | None = None) -> dict[str, Stream]:
    """Every stream the categories (default: the registry's) read, each with the union of their `$select`s."""
    categories = categories if categories is not None else list(CATEGORIES.values())
    fields: dict[str, list[str]] = {}
    first: dict[str, Source] = {}
    topics: dict[str, set[str]] = {}
    for category in categories:
        for src in sources_of(category):
            other = first.setdefault(src.endpoint, src)
            if _identity(other) != _identity(src):
                raise ValueError(
                    f"{src.endpoint}: categories disagree on its mode, ID field, key fields or deleted entity type"
                )
            fields.setdefault(src.endpoint, []).extend(src.select)
            if src.webhook_topic:
                topics.setdefault(src.endpoint, set()).add(src.webhook_topic)
    # The topic belongs to the endpoint, not to a category: one that declares it speaks for all (a new category on
    # an existing stream need not repeat it); two different topics for one endpoint are a mistake.
    for name, found in topics.items():
        if len(found) > 1:
            raise ValueError(f"{name}: categories disagree on its webhook topic ({', '.join(sorted(found))})")
    streams = {
        name: Stream(
            name,
            src.mode,
            tuple(dict.fromkeys(fields[name])),
            src.id_field,
            src.deleted_entity_type,
            src.key_fields,
            next(iter(topics.get(name, ())), None),
        )
        for name, src in first.items()
    }
    streams[DELETED] = Stream(DELETED, "deleted", _DELETED_SELECT)
    return streams


def _identity(src: Source) -> tuple:
    return (src.mode, src.id_field, src.deleted_entity_type, src.key_fields)


def streams_of(
    category: Category, streams: dict[str, Stream] | None = None, dependents: tuple[Lines, ...] | None = None
) -> list[Stream]:
    """The streams a category derives from, in the order they are refreshed: its own, its dependent tables' (all,
    or those given), its enrichment's, then `sync/Deleted` if any of them has deletions there."""
    streams = streams if streams is not None else all_streams([*CATEGORIES.values(), category])
    own = [streams[s.endpoint] for s in sources_of(category, dependents)]
    if any(s.deleted_entity_type is not None for s in own):
        own.append(streams[DELETED])
    return own


def record_key(record: dict, id_field: str, key_fields: tuple[str, ...] = ()) -> str:
    """The Exact ID, lowercased, followed by '/<value>' per key field (a goods delivery line's row per storage
    location: '<ID>/<StorageLocation>', '<ID>/' without one); a record without a valid ID gets a key from its
    content (the transform rejects it; landing it keeps that reject visible instead of dropping the record here)."""
    value = record.get(id_field)
    if isinstance(value, str) and GUID.fullmatch(value):
        parts = [value.lower(), *("" if record.get(f) is None else str(record[f]).strip().lower() for f in key_fields)]
        return KEY_SEPARATOR.join(parts)
    return "invalid:" + hashlib.sha256(dump_record(record).encode()).hexdigest()[:32]


def dump_record(record: dict) -> str:
    """A record as landed: JSON text, keys sorted, every character as Exact sent it."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def exact_timestamp(value) -> int | None:
    """Exact's Timestamp (a number, or text holding one) as an int; None if it is neither."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
