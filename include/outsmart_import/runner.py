"""One import run of one category: land its Exact streams (landing.py), derive its rows from what has landed
page by page (transform, stage), merge, record. No Airflow here.

The runner is given an Exact client (the hook, or anything with `sync`, `deleted`, `collection`, `stats`) and a
way to connect to the target database, so that it is tested without Airflow and wired by the DAG file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from exact_online.exceptions import ExactDailyLimitReached
from include.outsmart_import.landing import (
    DELETED,
    Landing,
    Resync,
    all_streams,
    derive_pages,
    division_of,
    landed_children,
    pending_resync,
    streams_of,
)
from include.outsmart_import.loader import SCHEMA, CategoryLoad, ImportLog, enrichment_of, ensure_schema
from include.outsmart_import.registry import CATEGORIES, Category, Lines

# The rule itself lives with the schedule (no pandas there: the DAG file imports it at parse time).
from include.outsmart_import.scheduling import (  # noqa: F401 - re-exported for the DAG file and the demo
    CategoryNotEnabled,
    LicenseRequired,
    check_runnable,
)
from include.outsmart_import.settings import ImportSettings
from include.outsmart_import.transforms import today_in_amsterdam

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    category: str
    status: str
    log_id: int | None
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    filtered_out: int = 0
    rejected: int = 0
    deleted: int = 0
    api_calls: int = 0
    watermark_before: int | None = None
    watermark_after: int | None = None
    deleted_watermark_before: int | None = None
    deleted_watermark_after: int | None = None
    dry_run: bool = False
    full_refresh: bool = False
    streams: list[dict] | None = None  # per Exact stream: read or reused (StreamRead.as_log)
    derive: str | None = None  # 'incremental', or 'full: <why>'
    related: dict[str, dict] | None = None  # the related tables' counts (a relation's addresses, contacts)
    notes: str | None = None  # for the import log: a resync and why, a division check that failed

    def as_dict(self) -> dict:
        return asdict(self)


def run_category(
    category_name: str,
    settings: ImportSettings,
    exact,
    connect: Callable[[], Any],
    *,
    run_id: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    refresh_streams: bool = False,
    today: dt.date | None = None,
) -> RunSummary:
    """Land the category's Exact streams (or reuse them, if read within the settings' reuse window and
    `refresh_streams` is not asked), then derive its table from what has landed, in one transaction.

    The derive is incremental (what landed since this category's last run) unless this is its first run, its
    settings or table changed since, or `full_refresh` (which also reads its streams from Exact in full): then
    every landed record is derived again and rows that came from Exact but are no longer there are soft-deleted."""
    category = CATEGORIES[category_name]
    check_runnable(category, settings)
    cat_settings = settings.category(category.name)
    today = today or today_in_amsterdam()

    log_conn = connect()
    load_conn = connect()
    try:
        ensure_schema(load_conn)
        import_log = ImportLog(log_conn)
        log_id = import_log.start(category.name, run_id, full_refresh=full_refresh, dry_run=dry_run)
        summary = RunSummary(category.name, "running", log_id, dry_run=dry_run, full_refresh=full_refresh)
        calls_before = exact.stats.api_calls
        try:
            window = 0.0 if refresh_streams else float(settings.reuse_window_seconds)
            seen_at = _derived_at(load_conn, category.name)
            dependents = category.dependents_on(cat_settings)  # the lines, and related tables its settings want
            _land(
                category, dependents, exact, connect, summary, reuse_window=window, full=full_refresh, seen_at=seen_at
            )
            if (enrichment := enrichment_of(category)) is not None:  # e.g. the division's currency (#14), read once
                enrichment.prepare(exact, connect, refresh=full_refresh)
            resync = pending_resync(load_conn, division_of(exact), seen_at)
            with CategoryLoad(load_conn, category, log_id=log_id, dependents=dependents) as load:
                full = _derive(
                    category, cat_settings, load, summary, full_refresh, today, last_day=_day(seen_at), resync=resync
                )
                counts = load.merge(reconcile=full, today=today)
                for name in ("inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted"):
                    setattr(summary, name, getattr(counts, name))
                summary.related = {table: _counts(c) for table, c in load.related_counts.items()} or None
                summary.api_calls = exact.stats.api_calls - calls_before
                if dry_run:
                    summary.status = "dry_run"  # leaving the block without commit rolls everything back
                else:
                    load.set_fingerprint(derive_fingerprint(category, cat_settings))
                    load.commit()
                    summary.status = "success"
        except Exception as exc:
            summary.api_calls = exact.stats.api_calls - calls_before
            summary.status = "stopped_daily_limit" if isinstance(exc, ExactDailyLimitReached) else "failed"
            import_log.finish(
                log_id, summary.status, error=f"{type(exc).__name__}: {exc}"[:4000], **_log_values(summary)
            )
            raise
        notes = " ".join(n for n in (summary.notes, _token_note(exact)) if n) or None
        import_log.finish(log_id, summary.status, notes=notes, **_log_values(summary))
        if notes:
            log.warning(notes)
        return summary
    finally:
        log_conn.close()
        load_conn.close()


def derive_fingerprint(category: Category, cat_settings) -> str:
    """What the category's rows depend on besides Exact's records: its settings (not the switch) and how its
    tables are declared. A different fingerprint than at the last run re-derives every landed record."""
    tables = [category.table, *(d.table for d in category.dependents)]
    spec = {
        "settings": cat_settings.model_dump(mode="json", exclude={"enabled"}),
        "rules": category.rules,
        "enrich": category.enrich,
        "tables": [[(c.name, c.sql_type, c.sources, c.read, c.mapping) for c in t.columns] for t in tables],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _derived_at(conn, category: str) -> dt.datetime | None:
    """When the category last derived its rows (committed), or None."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT derived_at FROM {SCHEMA}.category_state WHERE category = %s", (category,))
        row = cur.fetchone()
    conn.commit()
    return row[0] if row else None


def _land(
    category: Category,
    dependents: tuple[Lines, ...],
    exact,
    connect,
    summary: RunSummary,
    *,
    reuse_window: float,
    full: bool,
    seen_at,
) -> None:
    """Refresh each of the category's streams (or find it fresh), each in its own transaction; first note a resync
    if Exact moved the division or sync/Deleted went unread too long (`Landing.check_resync`)."""
    streams = all_streams([*CATEGORIES.values(), category])
    landing = Landing(exact, connect, streams)
    summary.notes = landing.check_resync()
    reads = []
    for stream in streams_of(category, streams, dependents):
        # `full_refresh` reads the category's own streams from scratch; sync/Deleted stays incremental (the full
        # derive that follows reconciles: what Exact no longer has is soft-deleted).
        read = landing.refresh(stream, reuse_window=reuse_window, full=full and stream.name != DELETED, seen_at=seen_at)
        reads.append(read)
        if stream.name == DELETED and read.action != "reused":
            summary.deleted_watermark_before, summary.deleted_watermark_after = (
                read.watermark_before,
                read.watermark_after,
            )
    summary.streams = [r.as_log() for r in reads]


def _day(moment: dt.datetime | None) -> dt.date | None:
    return today_in_amsterdam(moment) if moment else None


def _derive(
    category: Category,
    cat_settings,
    load: CategoryLoad,
    summary: RunSummary,
    full_refresh: bool,
    today: dt.date,
    *,
    last_day: dt.date | None = None,
    resync: Resync | None = None,
) -> bool:
    """Stage what landed since the category's marks (everything, on a full derive). Returns whether it was full.

    Full on the first run of a day too: flags that follow from dates (a relation whose end date passed is no longer
    active, a price agreement no longer current) change without the record changing in Exact, and re-deriving
    from the landed copy costs no Exact call. Full after a resync (`resync`: Exact moved the division, or deletions
    expired unseen), which also forgets the category's Timestamps if they were regenerated."""
    summary.derive = _derive_reason(category, cat_settings, load.fingerprint(), full_refresh, today, last_day, resync)
    full = summary.derive != "incremental"
    if resync is not None:
        summary.notes = " ".join(n for n in (resync.notes, summary.notes) if n)
        if resync.moved:
            load.forget_exact_timestamps()

    def stage_into(part, fn):
        """Transform a page and stage its good rows and rejects into a table part (header or lines)."""

        def on_records(records):
            result = fn(records, cat_settings, today)
            part.stage(result.frame)
            part.reject(result.rejects)

        return on_records

    main = _derive_stream(
        load,
        category.source.endpoint,
        "sync",
        full,
        stage_into(load.header, category.transform_fn()),
        load.header.stage_deleted,
    )
    summary.fetched += main[0]
    summary.watermark_before, summary.watermark_after = main[1], main[2]
    if load.enrichment is not None:  # its own stream (e.g. the sales item prices), on its own mark
        _derive_stream(
            load,
            load.enrichment.source.endpoint,
            load.enrichment.stream,
            full,
            load.stage_enrichment,
            load.stage_enrichment_deleted,
        )
    for spec, part in load.parts:
        on_records = stage_into(part, spec.transform_fn())
        # The lines keep the mark name they always had; a related table's mark is named after its table.
        mark = "lines" if spec is category.lines else spec.table.name
        records, *_ = _derive_stream(load, spec.source.endpoint, mark, full, on_records, part.stage_deleted)
        if spec is category.lines:
            summary.fetched += records
        if not full:
            _derive_children_of_new_headers(load, spec, on_records)
    return full


def _derive_reason(category, cat_settings, known, full_refresh, today, last_day, resync: Resync | None) -> str:
    """'incremental', or 'full: <why>' (`known`: the fingerprint the category last derived with, None: never)."""
    if full_refresh:
        return "full: full refresh"
    if known is None:
        return "full: first run"
    if resync is not None:
        return f"full: {resync.reason}"
    if known != derive_fingerprint(category, cat_settings):
        return "full: settings changed"
    if last_day is not None and last_day < today:
        return "full: new day"
    return "incremental"


def _derive_children_of_new_headers(load: CategoryLoad, spec: Lines, on_records) -> None:
    """Headers that come in now (new, revived, or passing the filter since they changed) bring their dependent rows,
    changed or not: until now those were left out with their header."""
    new_headers = load.new_header_keys(spec.header_key)
    field = next(c.sources[0] for c in spec.table.columns if c.name == spec.parent_key)
    children = landed_children(load.cur, spec.source.endpoint, field, new_headers)
    if children:
        on_records(children)


def _derive_stream(load: CategoryLoad, stream: str, mark: str, full: bool, on_records, on_deleted) -> tuple:
    """Feed the landed rows of `stream` after the category's mark `mark` (all of them when `full`) to the
    transform; the mark moves in the load's transaction. Returns (records, mark before, mark after)."""
    before = None if full else load.watermark(mark)
    high, records = before or 0, 0
    for page in derive_pages(load.cur, stream, before or 0):
        if page.records:
            records += len(page.records)
            on_records(page.records)
        if page.deleted:
            on_deleted(page.deleted)
        high = page.high
    load.set_watermark(mark, high)
    return records, before, high


def _counts(c) -> dict:
    return {k: getattr(c, k) for k in ("inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted")}


def _log_values(s: RunSummary) -> dict:
    values = {k: getattr(s, k) for k in ImportLog.COUNT_FIELDS}
    as_json = {k: json.dumps(getattr(s, k)) if getattr(s, k) is not None else None for k in ("streams", "related")}
    return {**values, **as_json, "derive": s.derive}


def _token_note(exact) -> str | None:
    """Warn in the import log when the refresh token is close to Exact's 30-day limit."""
    expires_at = getattr(exact, "refresh_token_expires_at", None)
    if not expires_at:
        return None
    days = (expires_at - dt.datetime.now(dt.UTC).timestamp()) / 86400
    if days < 5:
        return (
            f"The Exact refresh token expires in {days:.1f} days unless an import runs before then; "
            f"if it expires, the app must be re-authorised."
        )
    return None
