"""The import log: one row per run in `outsmart.import_log`, and the records set aside in `outsmart.import_rejects`.

Written on a connection of its own, in autocommit, so that a failed or rolled-back run is still recorded.
"""

from __future__ import annotations

from include.outsmart_import.database import SCHEMA, quote
from include.outsmart_import.registry import MERGE_COUNTS

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.import_log (
    id                     bigserial PRIMARY KEY,
    category               text NOT NULL,
    run_id                 text,
    started_at             timestamptz NOT NULL DEFAULT now(),
    ended_at               timestamptz,
    status                 text NOT NULL,
    full_refresh           boolean NOT NULL DEFAULT false,
    dry_run                boolean NOT NULL DEFAULT false,
    fetched                integer,
    inserted               integer,
    updated                integer,
    unchanged              integer,
    filtered_out           integer,
    rejected               integer,
    deleted                integer,
    api_calls              integer,
    watermark_before       bigint,
    watermark_after        bigint,
    deleted_watermark_before bigint,
    deleted_watermark_after  bigint,
    error                  text,
    notes                  text,
    streams                jsonb,
    derive                 text,
    related                jsonb
);
CREATE INDEX IF NOT EXISTS import_log_category_started ON {SCHEMA}.import_log (category, started_at DESC);
CREATE TABLE IF NOT EXISTS {SCHEMA}.import_rejects (
    id            bigserial PRIMARY KEY,
    import_log_id bigint REFERENCES {SCHEMA}.import_log (id),
    category      text NOT NULL,
    record_key    text,
    reason        text NOT NULL,
    raw           jsonb NOT NULL,
    rejected_at   timestamptz NOT NULL DEFAULT now()
);
"""

# Columns added to the import log after its first release (CREATE TABLE IF NOT EXISTS does not add them).
ADDED_COLUMNS = {"import_log": {"streams": "jsonb", "derive": "text", "related": "jsonb"}}


class ImportLog:
    """Rows of outsmart.import_log, written in autocommit so that they survive a rolled-back load."""

    def __init__(self, conn):
        self.conn = conn

    def start(self, category: str, run_id: str | None, *, full_refresh: bool, dry_run: bool) -> int:
        with self.conn.cursor() as cur:
            # A run that was killed (SIGKILL, OOM) never wrote its end; say so instead of leaving it 'running'.
            cur.execute(
                f"UPDATE {SCHEMA}.import_log SET status = 'abandoned', ended_at = now(), "
                f"error = 'the run ended without recording a result (killed?)' "
                f"WHERE category = %s AND status = 'running'",
                (category,),
            )
            cur.execute(
                f"INSERT INTO {SCHEMA}.import_log (category, run_id, status, full_refresh, dry_run) "
                f"VALUES (%s, %s, 'running', %s, %s) RETURNING id",
                (category, run_id, full_refresh, dry_run),
            )
            log_id = cur.fetchone()[0]
        self.conn.commit()
        return log_id

    # The counts and watermarks a run records (the runner's summary has the same names).
    COUNT_FIELDS = (
        "fetched",
        *MERGE_COUNTS,
        "api_calls",
        "watermark_before",
        "watermark_after",
        "deleted_watermark_before",
        "deleted_watermark_after",
    )
    # `streams`: per Exact stream, read or reused (JSON); `derive`: incremental, or full and why.
    # `related`: the counts of the related tables (a relation's addresses and contacts), by table (JSON).
    FIELDS = (*COUNT_FIELDS, "error", "notes", "streams", "derive", "related")

    def finish(self, log_id: int, status: str, **values) -> None:
        cols = [f for f in self.FIELDS if f in values]
        sets = ", ".join([f"{c} = %s" for c in cols] + ["status = %s", "ended_at = now()"])
        with self.conn.cursor() as cur:
            cur.execute(
                f"UPDATE {SCHEMA}.import_log SET {sets} WHERE id = %s", (*[values[c] for c in cols], status, log_id)
            )
        self.conn.commit()

    def latest_per_category(self, columns) -> dict[str, dict] | None:
        """The newest row of each category (latest start, then highest id) as {category: {column: value}} with the
        given columns; None while the import log does not exist yet (no import has run)."""
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT to_regclass('{SCHEMA}.import_log') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute(
                f"SELECT DISTINCT ON (category) category, {', '.join(quote(c) for c in columns)} "
                f"FROM {SCHEMA}.import_log ORDER BY category, started_at DESC, id DESC"
            )
            return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in cur.fetchall()}
