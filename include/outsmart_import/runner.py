"""One import run of one category: extract page by page, transform, stage, merge, record. No Airflow here.

The runner is given an Exact client (the hook, or anything with `sync`, `deleted`, `collection`, `stats`) and a
way to connect to the target database, so that it is tested without Airflow and wired by the DAG file.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from exact_online.exceptions import ExactDailyLimitReached
from include.outsmart_import.loader import CategoryLoad, ImportLog, ensure_schema
from include.outsmart_import.registry import CATEGORIES

# The rule itself lives with the schedule (no pandas there: the DAG file imports it at parse time).
from include.outsmart_import.scheduling import (  # noqa: F401 - re-exported for the DAG file and the demo
    CategoryNotEnabled,
    LicenseRequired,
    NotImplementedYet,
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
    today: dt.date | None = None,
) -> RunSummary:
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
            with CategoryLoad(load_conn, category, log_id=log_id) as load:
                _extract_and_stage(category, cat_settings, exact, load, summary, full_refresh, today)
                counts = load.merge(reconcile=full_refresh or category.source.mode == "full", today=today)
                for name in ("inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted"):
                    setattr(summary, name, getattr(counts, name))
                summary.api_calls = exact.stats.api_calls - calls_before
                if dry_run:
                    summary.status = "dry_run"  # leaving the block without commit rolls everything back
                else:
                    load.commit()
                    summary.status = "success"
        except Exception as exc:
            summary.api_calls = exact.stats.api_calls - calls_before
            summary.status = "stopped_daily_limit" if isinstance(exc, ExactDailyLimitReached) else "failed"
            import_log.finish(
                log_id, summary.status, error=f"{type(exc).__name__}: {exc}"[:4000], **_log_values(summary)
            )
            raise
        notes = _token_note(exact)
        import_log.finish(log_id, summary.status, notes=notes, **_log_values(summary))
        if notes:
            log.warning(notes)
        return summary
    finally:
        log_conn.close()
        load_conn.close()


def _log_values(s: RunSummary) -> dict:
    return {k: getattr(s, k) for k in ImportLog.COUNT_FIELDS}


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


def _read_stream(exact, load: CategoryLoad, source, stream: str, full_refresh: bool, on_page, on_deleted) -> dict:
    """Read one sync stream (changes, then `sync/Deleted` for its entity type) from its watermarks.

    Both watermarks are written in the load's transaction, so they advance only if the load commits; on a full
    refresh both start from the beginning. Exact's Timestamps are row versions: the watermark is the highest seen."""
    before = None if full_refresh else load.watermark(stream)
    high, fetched = before or 0, 0
    for page in exact.sync(source.endpoint, list(source.select), before or 1):
        fetched += len(page)
        high = max([high, *(_int(r.get("Timestamp")) for r in page)])
        on_page(page)
    load.set_watermark(stream, high)
    out = {"fetched": fetched, "before": before, "after": high, "deleted_before": None, "deleted_after": None}
    if source.deleted_entity_type is not None:
        del_stream = "deleted" if stream == "sync" else f"{stream}_deleted"
        del_before = None if full_refresh else load.watermark(del_stream)
        del_high = del_before or 0
        for page in exact.deleted(source.deleted_entity_type, del_before or 1):
            rows = [(str(r["EntityKey"]).lower(), _int(r.get("Timestamp"))) for r in page if r.get("EntityKey")]
            del_high = max([del_high, *(ts for _, ts in rows)])
            on_deleted(rows)
        load.set_watermark(del_stream, del_high)
        out.update(deleted_before=del_before, deleted_after=del_high)
    return out


def _extract_and_stage(category, cat_settings, exact, load: CategoryLoad, summary: RunSummary, full_refresh, today):
    src = category.source
    transform = category.transform_fn()

    def stage_into(part, fn):
        """Transform a page and stage its good rows and rejects into a table part (header or lines)."""

        def on_page(page):
            result = fn(page, cat_settings, today)
            part.stage(result.frame)
            part.reject(result.rejects)

        return on_page

    if src.mode == "sync":
        main = _read_stream(
            exact, load, src, "sync", full_refresh, stage_into(load.header, transform), load.header.stage_deleted
        )
        summary.fetched += main["fetched"]
        summary.watermark_before, summary.watermark_after = main["before"], main["after"]
        summary.deleted_watermark_before, summary.deleted_watermark_after = (
            main["deleted_before"],
            main["deleted_after"],
        )
        if load.enrichment is not None:  # its own Exact stream (e.g. the sales item prices), on its own watermarks
            _read_stream(
                exact,
                load,
                load.enrichment.source,
                load.enrichment.stream,
                full_refresh,
                load.stage_enrichment,
                load.stage_enrichment_deleted,
            )
        if category.lines:
            assert load.lines is not None  # the load has a lines part exactly when the category has lines
            lines = _read_stream(
                exact,
                load,
                category.lines.source,
                "lines",
                full_refresh,
                stage_into(load.lines, category.lines.transform_fn()),
                load.lines.stage_deleted,
            )
            summary.fetched += lines["fetched"]
    else:
        for page in exact.collection(src.endpoint, list(src.select)):
            summary.fetched += len(page)
            stage_into(load.header, transform)(page)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
