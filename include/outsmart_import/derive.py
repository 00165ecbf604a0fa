"""Derive: a category's rows from what has landed, fed page by page through its transforms into the merge.

A category remembers, per stream, the highest `landed_seq` it has derived (its mark, in `outsmart.import_state`),
so "what changed since my last run" is `landed_seq > mark`, whoever read it from Exact. The marks move in the
load's transaction: only when the target commits.

The derive is incremental unless this is the category's first run, its fingerprint (its settings, not the switch,
and how its tables are declared) differs from the last run's, a resync is pending (resync.py), it is the first run
of a day (flags that follow from dates, such as a relation whose end date has passed, change without the record
changing in Exact, and re-deriving from the landed copy costs no Exact call), or a full refresh was asked: then
every landed record is derived again and the merge soft-deletes what came from Exact but is no longer there.

Headers that come in on an incremental derive (new, revived, or passing the filter since they changed) bring their
dependent rows from the landed copy, changed or not: until now those were left out with their header.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from include.outsmart_import.database import SCHEMA
from include.outsmart_import.landed_copy import LandedPage, derive_pages, landed_children
from include.outsmart_import.merge import CategoryLoad, TablePart
from include.outsmart_import.registry import Category, Lines
from include.outsmart_import.resync import Resync
from include.outsmart_import.transforms import today_in_amsterdam

MARKS = f"{SCHEMA}.import_state"
DERIVED = f"{SCHEMA}.category_state"

DDL = f"""
-- Per category and Exact stream: the highest landed_seq of the stream the category has derived (its mark).
CREATE TABLE IF NOT EXISTS {MARKS} (
    category   text NOT NULL,
    stream     text NOT NULL,
    landed_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, stream)
);
-- Per category: the fingerprint of the settings and table its rows were last derived with (a change re-derives).
CREATE TABLE IF NOT EXISTS {DERIVED} (
    category    text PRIMARY KEY,
    fingerprint text NOT NULL,
    derived_at  timestamptz NOT NULL DEFAULT now()
);
"""

INCREMENTAL = "incremental"


@dataclass
class DeriveResult:
    """What the derive did, for the run's summary and the import log."""

    derive: str  # INCREMENTAL, or 'full: <why>'
    fetched: int = 0  # records derived: the category's own and its lines'
    mark_before: int | None = None  # the category's own stream: its mark before and after
    mark_after: int | None = None
    notes: str | None = None  # a resync's details

    @property
    def full(self) -> bool:
        return self.derive != INCREMENTAL


def derived_at(conn, category: str) -> dt.datetime | None:
    """When the category last derived its rows (committed), or None."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT derived_at FROM {DERIVED} WHERE category = %s", (category,))
        row = cur.fetchone()
    conn.commit()
    return row[0] if row else None


def derive_fingerprint(category: Category, cat_settings) -> str:
    """What the category's rows depend on besides Exact's records: its settings (not the switch) and how its
    tables are declared. A different fingerprint than at the last run re-derives every landed record."""
    tables = [category.table, *(d.table for d in category.dependents)]
    spec = {
        "settings": cat_settings.model_dump(mode="json", exclude={"enabled"}),
        "rules": category.rules.__name__ if category.rules else None,
        "enrich": type(category.enrichment).__name__ if category.enrichment else None,
        "tables": [[(c.name, c.sql_type, c.sources, c.read, c.mapping) for c in t.columns] for t in tables],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def derive(
    load: CategoryLoad,
    cat_settings,
    *,
    full_refresh: bool,
    today: dt.date,
    last_derived: dt.datetime | None,
    resync: Resync | None,
) -> DeriveResult:
    """Stage what landed since the category's marks (everything, on a full derive) into the load's tables."""
    category = load.category
    reason = _derive_reason(load, cat_settings, full_refresh, today, last_derived, resync)
    result = DeriveResult(reason, notes=resync.notes if resync is not None else None)
    if resync is not None and resync.moved:
        load.forget_exact_timestamps()
    header = _stager(load.header, category.transform_fn(), cat_settings, today)
    fetched, result.mark_before, result.mark_after = _derive_stream(load, category.source.endpoint, result.full, header)
    result.fetched += fetched
    if load.enrichment is not None:  # its own stream (e.g. the sales item prices), on its own mark
        stage_enrichment = _enrichment_stager(load)
        _derive_stream(load, load.enrichment.source.endpoint, result.full, stage_enrichment)
    for spec, part in load.parts:
        stage = _stager(part, spec.transform_fn(), cat_settings, today)
        records, *_ = _derive_stream(load, spec.source.endpoint, result.full, stage)
        if spec is category.lines:
            result.fetched += records
        if not result.full:
            _derive_children_of_new_headers(load, spec, stage)
    return result


def record_derived(load: CategoryLoad, fingerprint: str) -> None:
    """In the load's transaction: the fingerprint the rows were derived with, and when."""
    load.cur.execute(
        f"INSERT INTO {DERIVED} (category, fingerprint) VALUES (%s, %s) "
        f"ON CONFLICT (category) DO UPDATE SET fingerprint = excluded.fingerprint, derived_at = now()",
        (load.category.name, fingerprint),
    )


def _derive_reason(load, cat_settings, full_refresh, today, last_derived, resync: Resync | None) -> str:
    """INCREMENTAL, or 'full: <why>'."""
    known = _fingerprint(load)
    if full_refresh:
        return "full: full refresh"
    if known is None:
        return "full: first run"
    if resync is not None:
        return f"full: {resync.reason}"
    if known != derive_fingerprint(load.category, cat_settings):
        return "full: settings changed"
    if last_derived is not None and today_in_amsterdam(last_derived) < today:
        return "full: new day"
    return INCREMENTAL


# A page of landed records, staged: transformed into a table's rows and rejects, and its deletions.
Stager = Callable[[LandedPage], None]


def _stager(part: TablePart, transform, cat_settings, today: dt.date) -> Stager:
    """Transform a page and stage its good rows, rejects and deletions into a table part (header or lines)."""

    def stage(page: LandedPage) -> None:
        if page.records:
            result = transform(page.records, cat_settings, today)
            part.stage(result.frame)
            part.reject(result.rejects)
        if page.deleted:
            part.stage_deleted(page.deleted)

    return stage


def _enrichment_stager(load: CategoryLoad) -> Stager:
    def stage(page: LandedPage) -> None:
        if page.records or page.deleted:
            load.stage_enrichment(page.records, page.deleted)

    return stage


def _derive_children_of_new_headers(load: CategoryLoad, spec: Lines, stage: Stager) -> None:
    """Headers that come in now (new, revived, or passing the filter since they changed) bring their dependent rows,
    changed or not: until now those were left out with their header."""
    new_headers = load.new_header_keys(spec.header_key)
    field = next(c.sources[0] for c in spec.table.columns if c.name == spec.parent_key)
    children = landed_children(load.cur, spec.source.endpoint, field, new_headers)
    if children:
        stage(LandedPage(children, [], 0))


def _derive_stream(load: CategoryLoad, stream: str, full: bool, stage: Stager) -> tuple:
    """Feed the landed rows of `stream` after the category's mark on it (all of them when `full`) to `stage`; the
    mark moves in the load's transaction. Returns (records, mark before, mark after)."""
    before = None if full else _mark(load, stream)
    high, records = before or 0, 0
    for page in derive_pages(load.cur, stream, before or 0):
        records += len(page.records)
        stage(page)
        high = page.high
    load.cur.execute(
        f"INSERT INTO {MARKS} (category, stream, landed_seq) VALUES (%s, %s, %s) "
        f"ON CONFLICT (category, stream) DO UPDATE SET landed_seq = excluded.landed_seq, updated_at = now()",
        (load.category.name, stream, int(high)),
    )
    return records, before, high


def _mark(load: CategoryLoad, stream: str) -> int | None:
    load.cur.execute(
        f"SELECT landed_seq FROM {MARKS} WHERE category = %s AND stream = %s", (load.category.name, stream)
    )
    row = load.cur.fetchone()
    return row[0] if row else None


def _fingerprint(load: CategoryLoad) -> str | None:
    """The fingerprint (settings and table) the category's rows were last derived with; None: never."""
    load.cur.execute(f"SELECT fingerprint FROM {DERIVED} WHERE category = %s", (load.category.name,))
    row = load.cur.fetchone()
    return row[0] if row else None
