"""The loader: everything that knows the OutSmart Postgres database.

One run of one category is one transaction (`CategoryLoad`): COPY every page into a TEMP staging table (CSV
written by pyarrow: fast, '' kept distinct from NULL, CR/newlines quoted), then one merge: `INSERT … ON CONFLICT
(merge key) DO UPDATE … WHERE (target) IS DISTINCT FROM (incoming)`, so only changed rows are rewritten; soft
deletes; the watermark, written in the same transaction, so it advances only if the load commits.
A category may name an `Enrichment` (e.g. Exact's standard sales price, exact_prices.py): rules from a second Exact
stream that the loader calls at fixed points without knowing what they are.
The initial load of a simple table (no lookups, enrichment or lines) skips staging: into an empty target the rows are
COPYed directly, and anything only the merge can decide (a repeated ID or code) moves them back to staging.
The import log is written on its own connection, so a failed run is still recorded.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from include.outsmart_import.registry import CATEGORIES, Category, Lines, Source, TableSpec
from include.outsmart_import.transforms import Reject

SCHEMA = "outsmart"

BASE_DDL = f"""
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
CREATE TABLE IF NOT EXISTS {SCHEMA}.import_state (
    category   text NOT NULL,
    stream     text NOT NULL,
    watermark  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, stream)
);
-- Per category: the fingerprint of the settings and table its rows were last derived with (a change re-derives).
CREATE TABLE IF NOT EXISTS {SCHEMA}.category_state (
    category    text PRIMARY KEY,
    fingerprint text NOT NULL,
    derived_at  timestamptz NOT NULL DEFAULT now()
);
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


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ddl_objects(ddl: str) -> set[str]:
    """The tables and indexes a DDL script creates, read from it so that the two cannot drift apart."""
    return set(re.findall(rf"(?:TABLE|INDEX) IF NOT EXISTS (?:{SCHEMA}\.)?(\w+)", ddl))


BASE_OBJECTS = ddl_objects(BASE_DDL)

# Columns added to the base tables after their first release (CREATE TABLE IF NOT EXISTS does not add them).
BASE_COLUMNS = {"import_log": {"streams": "jsonb", "derive": "text", "related": "jsonb"}}


def table_ddl(spec: TableSpec, columns: set[str] | None = None, indexes: set[str] | None = None) -> list[str]:
    """The statements that bring `spec`'s table up to date, given the columns and index names it already has
    (None: the table does not exist yet)."""
    t = f"{SCHEMA}.{_q(spec.name)}"
    ddl = []
    if columns is None:
        cols = ",\n    ".join(f"{_q(c.name)} {c.sql_type}" for c in spec.columns)
        ddl.append(f"""CREATE TABLE IF NOT EXISTS {t} (
    id bigserial PRIMARY KEY,
    {cols},
    deleted_at timestamptz,
    imported_at timestamptz NOT NULL DEFAULT now()
);""")
        columns = {c.name for c in spec.columns}
    # Columns added to the registry later arrive through ADD COLUMN: the migration is additive.
    ddl += [
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {_q(c.name)} {c.sql_type};"
        for c in spec.columns
        if c.name not in columns
    ]
    for col in dict.fromkeys([spec.merge_key, spec.identity]):
        name = f"{spec.name}_{col}_key"
        if name not in (indexes or set()):
            ddl.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {t} ({_q(col)});")
    return ddl


def ensure_schema(conn, categories: list[Category] | None = None) -> None:
    """Create or extend the target schema; safe to run from every DAG at once (advisory lock).

    Only what is missing is run: the catalog is read first (no table locks), because even a no-op `ALTER TABLE …
    IF NOT EXISTS` takes an ACCESS EXCLUSIVE lock, which would queue behind a running load and deadlock with it."""
    categories = categories if categories is not None else list(CATEGORIES.values())
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('outsmart schema migration'))")
        tables, indexes = _catalog(cur)
        # The base tables first (they create the schema), then each enrichment's own tables (e.g. a price mirror).
        from include.outsmart_import.landing import DDL as LANDING_DDL

        enrichments = [e for e in dict.fromkeys(enrichment_of(cat) for cat in categories) if e is not None]
        for ddl in [BASE_DDL, LANDING_DDL, *(e.ddl for e in enrichments)]:
            if not ddl_objects(ddl) <= set(tables) | indexes:
                cur.execute(ddl)
        # Columns added later: to the base tables, and to an enrichment's own tables (e.g. the price mirror).
        for added in [BASE_COLUMNS, *(e.added_columns for e in enrichments)]:
            for table, columns in added.items():
                for name, sql_type in columns.items():
                    if name not in tables.get(table, set(columns)):
                        cur.execute(f"ALTER TABLE {SCHEMA}.{table} ADD COLUMN IF NOT EXISTS {name} {sql_type}")
        for spec in [t for cat in categories for t in (cat.table, *(d.table for d in cat.dependents))]:
            for statement in table_ddl(spec, tables.get(spec.name), indexes):
                cur.execute(statement)
    conn.commit()


def _catalog(cur) -> tuple[dict[str, set[str]], set[str]]:
    """The schema's tables (name -> column names) and index names, read from the catalog without table locks."""
    cur.execute(
        "SELECT c.relname, c.relkind, a.attname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'i')",
        (SCHEMA,),
    )
    tables: dict[str, set[str]] = {}
    indexes: set[str] = set()
    for rel, kind, col in cur.fetchall():
        if kind == "i":
            indexes.add(rel)
        else:
            tables.setdefault(rel, set()).add(col)
    return tables, indexes


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
        "inserted",
        "updated",
        "unchanged",
        "filtered_out",
        "rejected",
        "deleted",
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
                f"SELECT DISTINCT ON (category) category, {', '.join(_q(c) for c in columns)} "
                f"FROM {SCHEMA}.import_log ORDER BY category, started_at DESC, id DESC"
            )
            return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in cur.fetchall()}


@dataclass
class MergeCounts:
    staged: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    filtered_out: int = 0
    rejected: int = 0
    deleted: int = 0
    rejects: list[Reject] = field(default_factory=list)


class Enrichment(Protocol):
    """Rules that fill columns of a category's rows from a second Exact stream, mirrored in a table of their own
    (e.g. Exact's standard sales price: exact_prices.py). The registry names one per category (`Category.enrich`);
    the loader calls it at fixed points of the load, in the load's transaction, without knowing what it does."""

    ddl: str  # creates its own tables (IF NOT EXISTS); ensure_schema runs it when one of them is missing
    added_columns: dict[str, dict[str, str]]  # columns added to those tables later: {table: {column: sql type}}
    source: Source  # the extra Exact stream the runner reads, from its own watermarks...
    stream: str  # ...named so in import_state (its sync/Deleted watermark: f"{stream}_deleted")

    def prepare(self, exact, connect, *, refresh: bool = False) -> None:
        """Before the load, in a transaction of its own: what it needs from Exact besides its stream (e.g. the
        division's currency, read once and kept). `refresh`: read it again (a full refresh)."""

    def transform(self, page: list[dict]) -> pd.DataFrame:
        """A page of the stream -> rows for `stage`."""

    def create_temp_tables(self, cur) -> None:
        """Its staging tables (TEMP … ON COMMIT DROP), at the start of the load."""

    def stage(self, cur, frame: pd.DataFrame) -> None:
        """Stage one transformed page."""

    def stage_deleted(self, cur, rows: list[tuple[str, int]]) -> None:
        """Stage (Exact ID, Timestamp) deletions of the stream."""

    def merge_mirror(self, cur) -> None:
        """Bring its mirror table up to date from the staged rows, before the category's merge."""

    def fill_candidates(self, cur, cand_table: str, today) -> None:
        """Fill its columns of the rows about to be upserted (`cand_table`, before the change filter)."""

    def refresh_target(self, cur, target: str, cand_table: str, today) -> set:
        """After the upsert: update target rows whose enriched columns changed while the row itself did not
        (`cand_table`: the rows just upserted). Returns the updated rows' Exact IDs."""

    def forget_timestamps(self, cur) -> None:
        """Exact moved the division and regenerated its Timestamps: clear the ones its own tables keep."""


def enrichment_of(category: Category) -> Enrichment | None:
    """The category's enrichment: `Category.enrich` is 'module:attribute', imported only now (the registry is read
    when the DAG file is parsed, which must not import pandas or psycopg)."""
    if not category.enrich:
        return None
    module, _, attr = category.enrich.partition(":")
    return getattr(importlib.import_module(module), attr)


def copy_frame(cur, table: str, frame: pd.DataFrame, cols: list[str]) -> None:
    """COPY a DataFrame's `cols` into `table`."""
    buf = io.BytesIO()
    # pyarrow quotes every string and writes NULL as an empty unquoted field: '' stays '', a lone CR is safe.
    pacsv.write_csv(
        pa.Table.from_pandas(frame[cols], preserve_index=False),
        buf,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    with cur.copy(f"COPY {table} ({', '.join(_q(c) for c in cols)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buf.getvalue())


def copy_deleted(cur, table: str, rows: list[tuple[str, int]]) -> None:
    """COPY (Exact ID, Timestamp) deletions into a staging table with columns exact_id, exact_timestamp."""
    if rows:
        with cur.copy(f"COPY {table} (exact_id, exact_timestamp) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _cols(names, prefix: str = "") -> str:
    """A quoted, comma-separated column list, each name prefixed (e.g. 'x.')."""
    return ", ".join(prefix + _q(c) for c in names)


class _TablePart:
    """Staging and merge of one target table inside a category's transaction (the header, or its lines)."""

    def __init__(self, load: CategoryLoad, spec: TableSpec, prefix: str):
        self.load, self.spec, self.p = load, spec, prefix
        self.target = f"{SCHEMA}.{_q(spec.name)}"
        self.cols = spec.column_names
        self.counts = MergeCounts()
        # Direct mode (the initial load): the target is empty, so the rows that pass the filters are COPYed straight
        # into it; the staging pass would cost as much again. Anything the merge would have to decide (an ID or code
        # seen twice, a row the filters drop that repeats a loaded ID) sends the load back to the staging path.
        self.direct = False
        self.direct_rows = 0

    @property
    def cur(self):
        return self.load.cur

    def _fetch1(self, sql: str, params=None):
        self.cur.execute(sql, params)
        return self.cur.fetchone()[0]

    def create_temp_tables(self) -> None:
        col_defs = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in self.spec.columns)
        self.cur.execute(f"CREATE TEMP TABLE {self.p}stg ({col_defs}, passes_filter boolean NOT NULL) ON COMMIT DROP")
        self.cur.execute(
            f"CREATE TEMP TABLE {self.p}stg_deleted (exact_id uuid NOT NULL, exact_timestamp bigint) ON COMMIT DROP"
        )
        self.cur.execute(f"CREATE TEMP TABLE {self.p}stg_seen (exact_id uuid NOT NULL) ON COMMIT DROP")

    # ---- staging ----------------------------------------------------------------------------------------------
    def start_direct_if_empty(self) -> None:
        self.direct = self._fetch1(f"SELECT NOT EXISTS (SELECT 1 FROM {self.target})")

    def stage(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self.counts.staged += len(frame)
        if self.direct:
            passing = frame["passes_filter"].fillna(False).astype(bool)
            if self._copy_direct(frame[passing]):
                frame = frame[~passing]  # only the filtered-out rows are staged: counted, and checked for repeats
                if frame.empty:
                    return
        copy_frame(self.cur, f"{self.p}stg", frame, [*self.cols, "passes_filter"])

    def _copy_direct(self, frame: pd.DataFrame) -> bool:
        """COPY rows straight into the (empty at start) target, unless one would meet a row already there."""
        if frame.empty:
            return True
        if self._would_conflict(frame):
            self._leave_direct()
            return False
        copy_frame(self.cur, self.target, frame, self.cols)
        self.direct_rows += len(frame)
        return True

    def _would_conflict(self, frame: pd.DataFrame) -> bool:
        """Would this page break a unique index (a code or ID twice in the page, or already loaded)? Checked before
        the COPY rather than caught after it: catching needs a SAVEPOINT per page, and a transaction with more than
        64 subtransactions slows every other session's snapshots (PostgreSQL's subxid cache overflows)."""
        types = {c.name: c.sql_type for c in self.spec.columns}
        for key in dict.fromkeys([self.spec.merge_key, self.spec.identity]):
            values = frame[key]
            if not values.is_unique:
                return True
            if self.direct_rows:  # index probes (~1,000 a page, ~1 ms), only once the target holds rows of this run
                present = values.dropna().astype(str)
                arg: str | list[str]
                if types[key] == "uuid":  # one string, split by the server: adapting 1,000 list items costs more
                    arg, array = ",".join(present), "string_to_array(%s, ',')::uuid[]"
                else:
                    arg, array = present.tolist(), f"%s::{types[key]}[]"
                if self._fetch1(f"SELECT EXISTS (SELECT 1 FROM {self.target} WHERE {_q(key)} = ANY({array}))", (arg,)):
                    return True
        return False

    def _leave_direct(self) -> None:
        """Move what direct mode loaded back into staging; the target is as it was at the start. (Rows without an
        Exact ID are not ours: should someone add one meanwhile, it stays.)"""
        cols, ident = _cols(self.cols), _q(self.spec.identity)
        self.cur.execute(
            f"INSERT INTO {self.p}stg ({cols}, passes_filter) SELECT {cols}, true FROM {self.target} "
            f"WHERE {ident} IS NOT NULL"
        )
        self.cur.execute(f"DELETE FROM {self.target} WHERE {ident} IS NOT NULL")
        self.direct, self.direct_rows = False, 0

    def stage_deleted(self, rows: list[tuple[str, int]]) -> None:
        copy_deleted(self.cur, f"{self.p}stg_deleted", rows)

    def reject(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        self.counts.rejects.extend(rejects)
        self.counts.rejected += len(rejects)
        log_id, category = self.load.log_id, self.load.category.name
        with self.cur.copy(
            f"COPY {SCHEMA}.import_rejects (import_log_id, category, record_key, reason, raw) FROM STDIN"
        ) as copy:
            for r in rejects:
                copy.write_row((log_id, category, r.key, r.reason, json.dumps(r.raw, default=str)))
        seen = [r.raw.get("ID") for r in rejects if _is_guid(r.raw.get("ID"))]
        if seen:
            with self.cur.copy(f"COPY {self.p}stg_seen (exact_id) FROM STDIN") as copy:
                for s_ in seen:
                    copy.write_row((s_,))

    # ---- merge ------------------------------------------------------------------------------------------------
    def merge(
        self, *, reconcile: bool, today, enrichment: Enrichment | None = None, parent: tuple | None = None
    ) -> MergeCounts:
        """Apply the staged rows and deletions. `reconcile`: the staged rows are all of Exact, so rows that
        came from Exact but were not staged are soft-deleted. `enrichment`: fills columns of the candidates and
        refreshes them in the target. `parent`: (header part, lines column, header column): a line is loaded only
        if its header is in OutSmart; a line whose header is nowhere is rejected.

        The steps work on TEMP tables: {p}stg (as staged) -> {p}stg_latest (one row per Exact ID) -> {p}cand (the
        rows that may be written) -> {p}cand, reduced to the rows that differ from the target -> the upsert."""
        if self._direct_load_stands():
            return self._finish_direct()
        self._dedupe_latest()
        if parent is not None:
            self._check_parents(*parent)
        self._select_candidates()
        recoded_ids = self._resolve_code_conflicts()
        if enrichment is not None:
            enrichment.fill_candidates(self.cur, f"{self.p}cand", today)
        self._apply_lookups()
        n_cand = self._fetch1(f"SELECT count(*) FROM {self.p}cand")
        self._drop_unchanged()
        inserted, updated_ids = self._upsert()
        updated_ids |= recoded_ids
        self.counts.unchanged = n_cand - inserted - len(updated_ids)
        if enrichment is not None:
            updated_ids |= enrichment.refresh_target(self.cur, self.target, f"{self.p}cand", today)
        self.counts.inserted = inserted
        self.counts.updated = len(updated_ids)  # includes rows whose only change was an enriched column (a price)
        self.counts.deleted = self._apply_deletions() + (self._reconcile() if reconcile else 0)
        return self.counts

    def _direct_load_stands(self) -> bool:
        """Does the direct load stand as COPYed? A filtered-out row that repeats a loaded ID may be that record's
        newer version: then the merge decides, and the loaded rows go back to staging."""
        if not self.direct:
            return False
        ident = _q(self.spec.identity)
        if self._fetch1(f"SELECT EXISTS (SELECT 1 FROM {self.p}stg s JOIN {self.target} x ON x.{ident} = s.{ident})"):
            self._leave_direct()
            return False
        return True

    def _finish_direct(self) -> MergeCounts:
        self.counts.filtered_out = self._fetch1(f"SELECT count(DISTINCT {_q(self.spec.identity)}) FROM {self.p}stg")
        self.counts.inserted = self.direct_rows
        # Every row in the target came from this run, so there is nothing to reconcile; deletions still apply.
        self.counts.deleted = self._apply_deletions()
        return self.counts

    def _dedupe_latest(self) -> None:
        """{p}stg -> {p}stg_latest, one row per Exact ID. A page can repeat an ID; keep the newest version (highest
        Timestamp). Usually none repeats, and finding that out (a hash aggregate over the IDs) costs less than
        sorting every staged row."""
        ident, p = _q(self.spec.identity), self.p
        if self._fetch1(f"SELECT EXISTS (SELECT 1 FROM {p}stg GROUP BY {ident} HAVING count(*) > 1)"):
            self.cur.execute(
                f"CREATE TEMP TABLE {p}stg_latest ON COMMIT DROP AS SELECT DISTINCT ON ({ident}) * "
                f"FROM {p}stg ORDER BY {ident}, exact_timestamp DESC NULLS LAST"
            )
        else:
            self.cur.execute(f"ALTER TABLE {p}stg RENAME TO {p}stg_latest")

    def _check_parents(self, header: _TablePart, line_col: str, header_col: str, orphans: str = "reject") -> None:
        """Lines: a line passes only if its header is in OutSmart (and not deleted). `orphans="reject"`: a line
        whose header is nowhere (not in this run, not in OutSmart) and that is not loaded yet is rejected."""
        lc, hc = _q(line_col), _q(header_col)
        self.cur.execute(
            f"UPDATE {self.p}stg_latest s SET passes_filter = EXISTS "
            f"(SELECT 1 FROM {header.target} h WHERE h.{hc} = s.{lc} AND h.deleted_at IS NULL)"
        )
        if orphans == "reject":
            self._reject_orphan_lines(header, line_col, header_col)

    def _reject_orphan_lines(self, header: _TablePart, line_col: str, header_col: str) -> None:
        t, ident, p, lc, hc = self.target, _q(self.spec.identity), self.p, _q(line_col), _q(header_col)
        self.cur.execute(f"""
            DELETE FROM {p}stg_latest s
            WHERE NOT s.passes_filter
              AND NOT EXISTS (SELECT 1 FROM {header.p}stg_latest h WHERE h.{hc} = s.{lc})
              AND NOT EXISTS (SELECT 1 FROM {header.target} h WHERE h.{hc} = s.{lc})
              AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{ident} = s.{ident})
            RETURNING s.{ident}::text, s.{lc}::text""")
        orphans = self.cur.fetchall()
        self.reject(
            [
                Reject(
                    i,
                    f"{self.spec.name} line without its header: {header_col} {h} is neither in this run "
                    f"nor in outsmart.{header.spec.name}",
                    {"ID": i, line_col: h},
                )
                for i, h in orphans
            ]
        )

    def _select_candidates(self) -> None:
        """{p}stg_latest -> {p}cand. New rows must pass the filters; rows already in OutSmart are updated whatever
        the filter says (their flags change)."""
        t, ident, p = self.target, _q(self.spec.identity), self.p
        self.cur.execute(
            f"CREATE TEMP TABLE {p}cand ON COMMIT DROP AS SELECT s.* FROM {p}stg_latest s "
            f"WHERE s.passes_filter OR EXISTS (SELECT 1 FROM {t} x WHERE x.{ident} = s.{ident})"
        )
        self.counts.filtered_out = self._fetch1(
            f"SELECT (SELECT count(*) FROM {p}stg_latest) - (SELECT count(*) FROM {p}cand)"
        )

    def _resolve_code_conflicts(self) -> set:
        """Where the merge key is a code (not the Exact ID): set aside candidates whose code clashes, and recode
        in place the rows whose code Exact changed. Returns the recoded rows' Exact IDs."""
        if self.spec.merge_key == self.spec.identity:
            return set()
        rejects = self._set_aside_duplicate_codes()
        taken, recoded_ids = self._apply_recodes()
        self.reject(rejects + taken)
        return recoded_ids

    def _set_aside_duplicate_codes(self) -> list[Reject]:
        """The same code on two Exact records: keep the one OutSmart already has, set the others aside."""
        t, key, ident, p = self.target, _q(self.spec.merge_key), _q(self.spec.identity), self.p
        self.cur.execute(f"""
            DELETE FROM {p}cand c USING (SELECT {key} FROM {p}cand GROUP BY {key} HAVING count(*) > 1) d
            WHERE c.{key} = d.{key}
              AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{key} = c.{key} AND x.{ident} = c.{ident})
            RETURNING c.{key}, c.{ident}""")
        return [
            Reject(
                str(k),
                f"duplicate {self.spec.merge_key} {k!r}: more than one Exact record has it",
                {"ID": str(i), "Code": k},
            )
            for k, i in self.cur.fetchall()
        ]

    def _apply_recodes(self) -> tuple[list[Reject], set]:
        """Records whose code Exact changed (same Exact ID, new code): update the row in place rather than insert
        a duplicate; if the new code is taken by another row, set the record aside. Returns (rejects, recoded IDs)."""
        t, key, ident, p = self.target, _q(self.spec.merge_key), _q(self.spec.identity), self.p
        # Found with one join over all candidates, kept in a small table.
        self.cur.execute(
            f"CREATE TEMP TABLE {p}recode ON COMMIT DROP AS "
            f"SELECT c.{key} AS new_key, c.{ident} AS ident, x.{key} AS old_key, x.id "
            f"FROM {p}cand c JOIN {t} x ON x.{ident} = c.{ident} WHERE x.{key} <> c.{key}"
        )
        # The new code is taken by another row: set the record aside.
        self.cur.execute(f"""
            WITH taken AS (DELETE FROM {p}recode r USING {t} y WHERE y.{key} = r.new_key AND y.id <> r.id
                           RETURNING r.*)
            DELETE FROM {p}cand c USING taken WHERE c.{ident} = taken.ident
            RETURNING taken.new_key, taken.ident, taken.old_key""")
        taken = [
            Reject(
                str(k),
                f"code changed in Exact from {old!r} to {k!r}, but {k!r} is already used "
                f"by another {self.spec.name} row",
                {"ID": str(i), "Code": k},
            )
            for k, i, old in self.cur.fetchall()
        ]
        # Otherwise recode in place.
        self.cur.execute(
            f"UPDATE {t} x SET {key} = r.new_key, imported_at = now() FROM {p}recode r "
            f"WHERE x.id = r.id RETURNING x.{ident}"
        )
        return taken, {r[0] for r in self.cur.fetchall()}

    def _apply_lookups(self) -> None:
        for lookup in self.spec.lookups:
            self._apply_lookup(lookup)

    def _apply_lookup(self, lookup) -> None:
        """Fill a code column from another OutSmart table by Exact ID (e.g. the customer's code from relations)."""
        present = [
            table
            for table in lookup.tables
            if self._fetch1("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{table}",))
        ]
        if not present:
            return
        union = " UNION ALL ".join(f"SELECT exact_id, {_q(lookup.value)} AS v FROM {SCHEMA}.{_q(t)}" for t in present)
        self.cur.execute(
            f"UPDATE {self.p}cand c SET {_q(lookup.column)} = l.v FROM ({union}) l "
            f"WHERE l.exact_id = c.{_q(lookup.via)} AND c.{_q(lookup.column)} IS NULL"
        )

    def _drop_unchanged(self) -> None:
        """Keep in {p}cand only the rows OutSmart does not already have exactly so: the guarded ON CONFLICT in
        `_upsert` would leave those as they are but still lock (and WAL-log) each one. One hash anti-join is
        cheaper, and on a re-load most rows are unchanged (copying the few changed ones beats deleting the many
        unchanged ones)."""
        t, key, p = self.target, _q(self.spec.merge_key), self.p
        compare = [c.name for c in self.spec.columns if c.compare]
        self.cur.execute(f"""
            CREATE TEMP TABLE {p}cand_changed ON COMMIT DROP AS SELECT c.* FROM {p}cand c
            WHERE NOT EXISTS (
                SELECT 1 FROM {t} x WHERE x.{key} = c.{key} AND x.deleted_at IS NULL
                  AND ({_cols(compare, "x.")}) IS NOT DISTINCT FROM ({_cols(compare, "c.")}))""")
        self.cur.execute(f"DROP TABLE {p}cand")
        self.cur.execute(f"ALTER TABLE {p}cand_changed RENAME TO {p}cand")

    def _upsert(self) -> tuple[int, set]:
        """Insert new rows, update changed ones (and revive soft-deleted ones); never overwrite a row with an older
        version of its record (lower Timestamp). Returns (rows inserted, Exact IDs of the rows updated)."""
        t, key, ident, cols = self.target, _q(self.spec.merge_key), _q(self.spec.identity), _cols(self.cols)
        compare = [c.name for c in self.spec.columns if c.compare]
        changed = " OR ".join(
            [f"({_cols(compare, 't.')}) IS DISTINCT FROM ({_cols(compare, 'excluded.')})", "t.deleted_at IS NOT NULL"]
        )
        updates = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in self.cols if c != self.spec.merge_key)
        self.cur.execute(f"""
            INSERT INTO {t} AS t ({cols}, imported_at, deleted_at)
            SELECT {cols}, now(), NULL FROM {self.p}cand
            ON CONFLICT ({key}) DO UPDATE SET {updates}, imported_at = excluded.imported_at, deleted_at = NULL
            WHERE ({changed})
              AND (t.exact_timestamp IS NULL OR excluded.exact_timestamp IS NULL
                   OR excluded.exact_timestamp >= t.exact_timestamp)
            RETURNING (xmax = 0) AS inserted, t.{ident}""")
        rows = self.cur.fetchall()
        return sum(1 for ins, _ in rows if ins), {i for ins, i in rows if not ins}

    def _apply_deletions(self) -> int:
        """Deletions from sync/Deleted: soft delete, and only if our copy is not newer than the deletion."""
        self.cur.execute(f"""
            UPDATE {self.target} t SET deleted_at = now()
            FROM (SELECT exact_id, max(exact_timestamp) AS ts FROM {self.p}stg_deleted GROUP BY exact_id) d
            WHERE t.{_q(self.spec.identity)} = d.exact_id AND t.deleted_at IS NULL
              AND (t.exact_timestamp IS NULL OR d.ts IS NULL OR t.exact_timestamp <= d.ts)""")
        return self.cur.rowcount

    def _reconcile(self) -> int:
        """The staged rows are all of Exact: soft-delete the rows that came from Exact but were neither staged nor
        rejected (a rejected record still exists in Exact)."""
        ident, p = _q(self.spec.identity), self.p
        self.cur.execute(f"""
            UPDATE {self.target} t SET deleted_at = now()
            WHERE t.{ident} IS NOT NULL AND t.deleted_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM {p}stg_latest s WHERE s.{ident} = t.{ident})
              AND NOT EXISTS (SELECT 1 FROM {p}stg_seen s WHERE s.exact_id = t.{ident})""")
        return self.cur.rowcount


class CategoryLoad:
    """One category's load as one transaction. Use as a context manager; call `commit()` to keep it.

    `stage`/`stage_deleted`/`reject` go to the category's main table; each dependent table (`parts`: the category's
    lines and related tables that its settings switch on; `lines` is the first) has the same methods, merged in
    the same transaction after the headers; `stage_enrichment` and
    `stage_enrichment_deleted` feed the category's enrichment (if any) with its own stream."""

    def __init__(
        self, conn, category: Category, *, log_id: int | None = None, dependents: tuple[Lines, ...] | None = None
    ):
        self.conn = conn
        self.category = category
        self.log_id = log_id
        self.header = _TablePart(self, category.table, "")
        # (declaration, its part) per dependent table; the first keeps the prefix the lines always had.
        specs = category.dependents if dependents is None else dependents
        self.parts = [
            (spec, _TablePart(self, spec.table, "l_" if i == 0 else f"l{i}_")) for i, spec in enumerate(specs)
        ]
        self.lines = self.parts[0][1] if self.parts else None
        self.enrichment = enrichment_of(category)
        self._committed = False

    # The header part's interface, for single-table categories and existing callers.
    @property
    def counts(self) -> MergeCounts:
        return self.header.counts

    def stage(self, frame: pd.DataFrame) -> None:
        self.header.stage(frame)

    def reject(self, rejects: list[Reject]) -> None:
        self.header.reject(rejects)

    def __enter__(self) -> CategoryLoad:
        self.cur = self.conn.cursor()
        # One load per category at a time, whoever starts it (scheduler, a manual trigger, a test).
        self.cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"outsmart import {self.category.name}",))
        # The merge's hash joins compare every staged row with the target; at Postgres' default 4 MB they spill to
        # disk in batches (a 1M-row re-load took 13 s instead of 8 s). For this transaction only.
        self.cur.execute(
            "SELECT set_config('work_mem', %s, true)", (os.environ.get("OUTSMART_MERGE_WORK_MEM", "256MB"),)
        )
        self.header.create_temp_tables()
        for _, part in self.parts:
            part.create_temp_tables()
        # Direct mode only where the merge has nothing to add: no lookups, no enrichment (it fills the candidates
        # in the merge), no lines whose orphans it must find (that needs the headers staged).
        rejecting = any(spec.orphans == "reject" for spec, _ in self.parts)
        if not (rejecting or self.category.table.lookups or self.enrichment):
            self.header.start_direct_if_empty()
        if self.enrichment:
            self.enrichment.create_temp_tables(self.cur)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self.conn.rollback()  # a failed or dry run leaves the target exactly as it was

    # ---- state ------------------------------------------------------------------------------------------------
    def watermark(self, stream: str) -> int | None:
        self.cur.execute(
            f"SELECT watermark FROM {SCHEMA}.import_state WHERE category = %s AND stream = %s",
            (self.category.name, stream),
        )
        row = self.cur.fetchone()
        return row[0] if row else None

    def set_watermark(self, stream: str, value: int) -> None:
        self.cur.execute(
            f"INSERT INTO {SCHEMA}.import_state (category, stream, watermark) VALUES (%s, %s, %s) "
            f"ON CONFLICT (category, stream) DO UPDATE SET watermark = excluded.watermark, updated_at = now()",
            (self.category.name, stream, int(value)),
        )

    def fingerprint(self) -> str | None:
        """The fingerprint (settings and table) this category's rows were last derived with; None: never."""
        self.cur.execute(f"SELECT fingerprint FROM {SCHEMA}.category_state WHERE category = %s", (self.category.name,))
        row = self.cur.fetchone()
        return row[0] if row else None

    def forget_exact_timestamps(self) -> None:
        """Exact moved the division to another database and regenerated every Timestamp: the ones this category's
        rows carry no longer compare with Exact's (a newer version would look older and be ignored). Cleared in the
        load's transaction, before the full re-derive; a row gets a Timestamp again when it next changes."""
        for part in (self.header, *(part for _, part in self.parts)):
            self.cur.execute(f"UPDATE {part.target} SET exact_timestamp = NULL WHERE exact_timestamp IS NOT NULL")
        if self.enrichment is not None:
            self.enrichment.forget_timestamps(self.cur)

    def set_fingerprint(self, value: str) -> None:
        self.cur.execute(
            f"INSERT INTO {SCHEMA}.category_state (category, fingerprint) VALUES (%s, %s) "
            f"ON CONFLICT (category) DO UPDATE SET fingerprint = excluded.fingerprint, derived_at = now()",
            (self.category.name, value),
        )

    # ---- staging ----------------------------------------------------------------------------------------------
    def _copy_frame(self, table: str, frame: pd.DataFrame, cols: list[str]) -> None:
        copy_frame(self.cur, table, frame, cols)

    def stage_deleted(self, rows: list[tuple[str, int]], table: str = "stg_deleted") -> None:
        copy_deleted(self.cur, table, rows)

    def stage_enrichment(self, page: list[dict]) -> None:
        """One page of the enrichment's own stream (`enrichment.source`)."""
        enrichment = self._enrichment()
        enrichment.stage(self.cur, enrichment.transform(page))

    def stage_enrichment_deleted(self, rows: list[tuple[str, int]]) -> None:
        self._enrichment().stage_deleted(self.cur, rows)

    def _enrichment(self) -> Enrichment:
        if self.enrichment is None:
            raise TypeError(f"category {self.category.name!r} has no enrichment to stage rows for")
        return self.enrichment

    # ---- merge ------------------------------------------------------------------------------------------------
    def merge(self, *, reconcile: bool, today=None) -> MergeCounts:
        """Merge the header table, then each dependent table, in this one transaction. Returns the counts of the
        header and its lines (an order and its lines are one thing to the user); the related tables' own counts
        (a relation's addresses, its contacts) are in `related_counts`, by table."""
        import datetime as dt

        today = today or dt.date.today()
        if self.enrichment:
            self.enrichment.merge_mirror(self.cur)
        total = self.header.merge(reconcile=reconcile, today=today, enrichment=self.enrichment)
        self.related_counts: dict[str, MergeCounts] = {}
        for spec, part in self.parts:
            counts = part.merge(
                reconcile=reconcile, today=today, parent=(self.header, spec.parent_key, spec.header_key, spec.orphans)
            )
            if spec is self.category.lines:
                total = _sum_counts(total, counts)
            else:
                self.related_counts[spec.table.name] = counts
        return total

    def new_header_keys(self, header_key: str) -> list[str]:
        """Values of `header_key` of the staged headers that pass and are not (or no longer) in OutSmart: their
        dependent rows must come in now, even those that did not change (e.g. a relation that now passes the
        filter brings its addresses). Only on the staging path: the direct load is a full derive anyway."""
        if self.header.direct:
            return []
        key = _q(header_key)
        self.cur.execute(
            f"SELECT DISTINCT s.{key}::text FROM stg s WHERE s.passes_filter AND s.{key} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {self.header.target} x WHERE x.{key} = s.{key} AND x.deleted_at IS NULL)"
        )
        return [r[0] for r in self.cur.fetchall()]

    def commit(self) -> None:
        self.conn.commit()
        self._committed = True


def _sum_counts(a: MergeCounts, b: MergeCounts) -> MergeCounts:
    total = MergeCounts()
    for name in ("staged", "inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted"):
        setattr(total, name, getattr(a, name) + getattr(b, name))
    total.rejects = a.rejects + b.rejects
    return total


def _is_guid(value) -> bool:
    return isinstance(value, str) and re.fullmatch(_GUID_RE, value) is not None


_GUID_RE = r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
