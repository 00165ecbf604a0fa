"""What the settings page reads from the OutSmart database (connection `outsmart_postgres`, resolved in the
api-server through the metadata database): the last import per category and the imported item groups. Answers
carry counts, states and messages only; an error message is scrubbed of our connections' secrets."""

from __future__ import annotations

import logging

from exact_online_settings_page.airflow_runs import iso
from exact_online_settings_page.labels import label
from exact_online_settings_page.secret_scrub import TARGET_CONN_ID, scrub
from include.outsmart_import.registry import MERGE_COUNTS

log = logging.getLogger(__name__)

# The import log's columns the page shows: the run, then what the merge did (MERGE_COUNTS), then its error.
LOG_COLUMNS = (
    "category",
    "run_id",
    "started_at",
    "ended_at",
    "status",
    "full_refresh",
    "dry_run",
    "fetched",
    *MERGE_COUNTS,
    "error",
)


def connect(conn_id: str = TARGET_CONN_ID):
    from include.outsmart_import.target_db import connector

    return connector(conn_id)()


def last_imports(lang: str = "en", conn_id: str = TARGET_CONN_ID) -> dict:
    """The newest `outsmart.import_log` row per category, in the company's database (`conn_id`; a message in
    `lang` when there is none to show)."""
    from include.outsmart_import.import_log import ImportLog

    try:
        with connect(conn_id) as conn:
            latest = ImportLog(conn).latest_per_category(LOG_COLUMNS)
        if latest is None:
            return {"available": True, "by_category": {}, "message": label("no_import_has_run", lang)}
    except Exception as exc:
        log.warning("settings page: import log not readable: %s", type(exc).__name__)
        return {
            "available": False,
            "by_category": {},
            "message": label("outsmart_unreadable", lang, error=f"{type(exc).__name__}: {scrub(str(exc), (conn_id,))}"),
        }
    out = {}
    for rec in latest.values():
        for k in ("started_at", "ended_at"):
            rec[k] = iso(rec[k])
        rec["error"] = scrub(rec["error"], (conn_id,)) if rec["error"] else None
        out[rec["category"]] = rec
    return {"available": True, "by_category": out}


def imported_item_groups(limit: int | None = None, conn_id: str = TARGET_CONN_ID) -> list[dict]:
    """The item groups in `outsmart.categories` (code + description) of the company's database, the first `limit` by
    code; empty until that category was imported."""
    with connect(conn_id) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('outsmart.categories') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute(
            "SELECT code, description FROM outsmart.categories WHERE deleted_at IS NULL ORDER BY code LIMIT %s",
            (limit,),
        )
        return [{"code": c, "description": d or ""} for c, d in cur.fetchall()]
