"""The Exact streams the import's registry reads, as the sandbox serves them: which endpoints, which records each
holds, which sync/Deleted entity type marks their deletions, and which are synced (their Timestamps regenerate
when Exact moves the division). A category added to the registry is served without a line here.

The sandbox imports the registry, never the other way round. The registry is read on each call
(`registry.CATEGORIES`), so a copy with an added category (a test, a deployment) is what the sandbox serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from include.outsmart_import import registry
from include.outsmart_import.registry import Category, Source, TableSpec


def enrichment_source(category: Category) -> Source | None:
    """The second Exact stream the category's enrichment reads (the standard sales price: the sales item prices)."""
    return category.enrichment.source if category.enrichment is not None else None


def registry_streams(categories: Iterable[Category] | None = None) -> list[tuple[Source, TableSpec | None]]:
    """Every Exact stream the categories read, with the table it fills (None for an enrichment's stream): each
    category's own, its lines' and related tables', its enrichment's."""
    out: list[tuple[Source, TableSpec | None]] = []
    for category in registry.CATEGORIES.values() if categories is None else categories:
        out += [(category.source, category.table), *((d.source, d.table) for d in category.dependents)]
        extra = enrichment_source(category)
        if extra is not None:
            out.append((extra, None))
    return out


def registry_sources(categories: Iterable[Category] | None = None) -> list[Source]:
    return [source for source, _ in registry_streams(categories)]


def entity_of(endpoint: str) -> str:
    """The `data.Division` records an endpoint serves: its last path segment in snake case
    (sync/SalesOrder/SalesOrderHeaders → sales_order_headers, logistics/ItemGroups → item_groups)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", endpoint.rsplit("/", 1)[-1]).lower()


def deleted_entity_types(categories: Iterable[Category] | None = None) -> dict[str, int]:
    """Entity → its sync/Deleted EntityType. Raises ValueError when two registry entries give one endpoint two
    types (the deletions would be lost for one of them)."""
    out: dict[str, int] = {}
    for source in registry_sources(categories):
        if source.deleted_entity_type is None:
            continue
        known = out.setdefault(entity_of(source.endpoint), source.deleted_entity_type)
        if known != source.deleted_entity_type:
            raise ValueError(
                f"{source.endpoint}: sync/Deleted EntityType {source.deleted_entity_type} in one registry entry and "
                f"{known} in another"
            )
    return out


def synced_entities(categories: Iterable[Category] | None = None) -> tuple[str, ...]:
    """The entities read through a sync endpoint (Timestamp watermarks), in the registry's order."""
    return tuple(dict.fromkeys(entity_of(s.endpoint) for s in registry_sources(categories) if s.mode == "sync"))
