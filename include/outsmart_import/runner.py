"""One import run of one category: the stages in order, and the import log around them. No Airflow here.

check_runnable → ensure_schema → import log start → resync.check_resync → landing (each of the category's streams,
or reused) → derive (landed records → transforms → the merge's staging) → merge → commit → import log finish.
Each stage is its own module; this one only sequences them and collects what they report into a `RunSummary`.

The runner is given an Exact client (the hook, or anything with `sync`, `deleted`, `collection`, `stats`) and a
way to connect to the target database, so that it is tested without Airflow and wired by the DAG file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from exact_online.exceptions import ExactDailyLimitReached
from include.outsmart_import.catalogue import DELETED, all_streams, streams_of
from include.outsmart_import.derive import DeriveResult, derive, derive_fingerprint, derived_at, record_derived
from include.outsmart_import.enrichment import MergeContext
from include.outsmart_import.import_log import ImportLog
from include.outsmart_import.landing import Landing, StreamRead
from include.outsmart_import.merge import CategoryLoad, MergeCounts
from include.outsmart_import.registry import CATEGORIES, MERGE_COUNTS, Category, Lines
from include.outsmart_import.resync import check_resync, division_currency, pending_resync
from include.outsmart_import.scheduling import check_runnable
from include.outsmart_import.schema import ensure_schema
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
    run = _Run(category, settings, exact, connect, full_refresh, dry_run, today or today_in_amsterdam())
    log_conn, load_conn = connect(), connect()
    try:
        ensure_schema(load_conn)
        import_log = ImportLog(log_conn)
        log_id = import_log.start(category.name, run_id, full_refresh=full_refresh, dry_run=dry_run)
        summary = RunSummary(category.name, "running", log_id, dry_run=dry_run, full_refresh=full_refresh)
        calls_before = exact.stats.api_calls
        try:
            window = 0.0 if refresh_streams else float(settings.reuse_window_seconds)
            run.land_and_merge(load_conn, summary, reuse_window=window)
        except Exception as exc:
            summary.api_calls = exact.stats.api_calls - calls_before
            summary.status = "stopped_daily_limit" if isinstance(exc, ExactDailyLimitReached) else "failed"
            error = f"{type(exc).__name__}: {exc}"[:4000]
            import_log.finish(log_id, summary.status, error=error, **_log_values(summary))
            raise
        summary.api_calls = exact.stats.api_calls - calls_before
        notes = " ".join(n for n in (summary.notes, _token_note(exact)) if n) or None
        import_log.finish(log_id, summary.status, notes=notes, **_log_values(summary))
        if notes:
            log.warning(notes)
        return summary
    finally:
        log_conn.close()
        load_conn.close()


@dataclass
class _Run:
    """One run's inputs, handed to the stages in order."""

    category: Category
    settings: ImportSettings
    exact: Any
    connect: Callable[[], Any]
    full_refresh: bool
    dry_run: bool
    today: dt.date

    def land_and_merge(self, load_conn, summary: RunSummary, *, reuse_window: float) -> None:
        """The stages after the import log's start: resync check, landing, derive, merge, commit (unless a dry run:
        leaving the load without commit rolls it back)."""
        cat_settings = self.settings.category(self.category.name)
        division = getattr(self.exact, "division", None)  # None: a client without one (test fakes)
        last_derived = derived_at(load_conn, self.category.name)
        check_note = check_resync(self.connect, self.exact, division)
        dependents = self.category.dependents_on(cat_settings)  # the lines, and related tables its settings want
        reads = self._land(dependents, division, reuse_window, last_derived)
        _note_reads(summary, reads)
        resync = pending_resync(load_conn, division, last_derived)
        context = MergeContext(self.today, division_currency(load_conn, division))
        with CategoryLoad(load_conn, self.category, log_id=summary.log_id, dependents=dependents) as load:
            result = derive(
                load,
                cat_settings,
                full_refresh=self.full_refresh,
                today=self.today,
                last_derived=last_derived,
                resync=resync,
            )
            counts = load.merge(full_derive=result.full, context=context)
            _note_merge(summary, result, counts, load.related_counts, check_note)
            if self.dry_run:
                summary.status = "dry_run"
            else:
                record_derived(load, derive_fingerprint(self.category, cat_settings))
                load.commit()
                summary.status = "success"

    def _land(self, dependents: tuple[Lines, ...], division, reuse_window: float, last_derived) -> list[StreamRead]:
        """Refresh each of the category's streams (or find it fresh), each in its own transaction."""
        streams = all_streams([*CATEGORIES.values(), self.category])
        landing = Landing(self.exact, self.connect, division, streams)
        # `full_refresh` reads the category's own streams from scratch; sync/Deleted stays incremental (the full
        # derive that follows reconciles: what Exact no longer has is soft-deleted).
        return [
            landing.refresh(
                stream,
                reuse_window=reuse_window,
                full_read=self.full_refresh and stream.name != DELETED,
                derived_at=last_derived,
            )
            for stream in streams_of(self.category, streams, dependents)
        ]


def _note_reads(summary: RunSummary, reads: list[StreamRead]) -> None:
    summary.streams = [r.as_log() for r in reads]
    for read in reads:
        if read.stream == DELETED and read.action != "reused":
            summary.deleted_watermark_before, summary.deleted_watermark_after = (
                read.watermark_before,
                read.watermark_after,
            )


def _note_merge(summary: RunSummary, result: DeriveResult, counts: MergeCounts, related: dict, check_note) -> None:
    summary.derive = result.derive
    summary.notes = " ".join(n for n in (result.notes, check_note) if n) or None
    summary.fetched = result.fetched
    summary.watermark_before, summary.watermark_after = result.mark_before, result.mark_after
    for name in MERGE_COUNTS:
        setattr(summary, name, getattr(counts, name))
    summary.related = {table: _counts(c) for table, c in related.items()} or None


def _counts(c) -> dict:
    return {k: getattr(c, k) for k in MERGE_COUNTS}


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
