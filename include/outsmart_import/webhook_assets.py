"""Exact's webhook topics as Airflow Assets: which streams a topic announces, and the Asset of a company's stream.

The scheme: one Asset per company and Exact stream that has a webhook topic, named and addressed
`exact-online://{company}/{stream endpoint}` (e.g. `exact-online://default/sync/CRM/Accounts`). An event of topic T
for company C becomes an asset event on the Asset of every stream of T (a header and its lines share a topic); a
category is scheduled on its cron OR any of its streams' Assets (scheduling.py), so an event starts the categories
that read the changed stream, for that company only (airflow_tasks.check_settings reads the company from the URI).

Why per stream and not per topic or category: the stream is what a run reads incrementally and what categories
share (materials and hour types both read the items), so one event wakes every category that reads it and no other.

The topics themselves live in the registry, one field per Source (`Source.webhook_topic`). No Airflow import here:
the DAG file parses this, and the receiver's relay uses it to name the Assets it fires.
"""

from __future__ import annotations

from include.outsmart_import.catalogue import Stream, all_streams, streams_of
from include.outsmart_import.registry import CATEGORIES, Category

ASSET_SCHEME = "exact-online"
ASSET_GROUP = "exact-online"
_PREFIX = f"{ASSET_SCHEME}://"


def asset_uri(company: str, stream: str) -> str:
    """The Asset of `company`'s stream `stream` (its name and its URI are the same text)."""
    return f"{_PREFIX}{company}/{stream}"


def parse_asset_uri(uri: str) -> tuple[str, str] | None:
    """(company, stream) of an Asset this module named, else None (another DAG's Asset)."""
    if not uri.startswith(_PREFIX):
        return None
    company, sep, stream = uri[len(_PREFIX) :].partition("/")
    return (company, stream) if sep and company and stream else None


def topic_streams(streams: dict[str, Stream] | None = None) -> dict[str, tuple[str, ...]]:
    """Each webhook topic and the streams it announces, e.g. {"Quotations": ("sync/CRM/QuotationHeaders", …)}."""
    out: dict[str, list[str]] = {}
    for stream in (streams if streams is not None else all_streams()).values():
        if stream.webhook_topic:
            out.setdefault(stream.webhook_topic, []).append(stream.name)
    return {topic: tuple(names) for topic, names in sorted(out.items())}


def watched_streams(category: Category) -> list[str]:
    """The category's streams that Exact announces by a webhook (every dependent table's, whether switched on or
    not: a superset only wakes a run that reads nothing new)."""
    return [s.name for s in streams_of(category) if s.webhook_topic]


def topics_of(category: Category) -> list[str]:
    """The webhook topics a category needs subscribed (sorted, once each)."""
    return sorted({s.webhook_topic for s in streams_of(category) if s.webhook_topic})


def category_assets(category: Category, companies: list[str]) -> tuple[str, ...]:
    """The Asset URIs a category's schedule listens to, for these companies."""
    return tuple(asset_uri(c, s) for c in companies for s in watched_streams(category))


def categories_reading(stream: str) -> list[str]:
    """The categories that read `stream` (what an event on it starts)."""
    return [c.name for c in CATEGORIES.values() if any(s.name == stream for s in streams_of(c))]
