"""The loader: everything that knows the OutSmart Postgres database.

One run of one category is one transaction (`CategoryLoad`): COPY every page into a TEMP staging table (CSV
written by pyarrow: fast, '' kept distinct from NULL, CR/newlines quoted), then one merge: `INSERT … ON CONFLICT
(merge key) DO UPDATE … WHERE (target) IS DISTINCT FROM (incoming)`, so only changed rows are rewritten; soft
deletes; the watermark, written in the same transaction, so it advances only if the load commits.
The initial load of a simple table (no lookups, prices or lines) skips staging: into an empty target the rows are
COPYed directly, and anything only the merge can decide (a repeated ID or code) moves them back to staging.
The import log is written on its own connection, so a failed run is still recorded.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from include.outsmart_import.registry import CATEGORIES, Category, TableSpec
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
    notes                  text
);
CREATE INDEX IF NOT EXISTS import_log_category_started ON {SCHEMA}.import_log (category, started_at DESC);
CREATE TABLE IF NOT EXISTS {SCHEMA}.import_state (
    category   text NOT NULL,
    stream     text NOT NULL,
    watermark  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, stream)
);
-- Mirror of Exact's sales item prices: the standard sales price of materials and hour types comes from here.
CREATE TABLE IF NOT EXISTS {SCHEMA}.exact_item_prices (
    exact_id        uuid PRIMARY KEY,
    item_id         uuid,
    account_id      uuid,
    price           numeric(18,4),
    currency        text,
    quantity        numeric(18,4),
    unit            text,
    start_date      date,
    end_date        date,
    exact_timestamp bigint,
    deleted_at      timestamptz,
    imported_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS exact_item_prices_item ON {SCHEMA}.exact_item_prices (item_id);
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


# The tables and indexes BASE_DDL creates, read from it so that the two cannot drift apart.
BASE_OBJECTS = set(re.findall(rf"(?:TABLE|INDEX) IF NOT EXISTS (?:{SCHEMA}\.)?(\w+)", BASE_DDL))


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
    ddl += [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {_q(c.name)} {c.sql_type};" for c in spec.columns
            if c.name not in columns]
    for col in dict.fromkeys([spec.merge_key, spec.identity]):
        name = f"{spec.name}_{col}_key"
        if name not in (indexes or set()):
            ddl.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {t} ({_q(col)});")
    return ddl


def ensure_schema(conn, categories: list[Category] | None = None) -> None:
    """Create or extend the target schema; safe to run from every DAG at once (advisory lock).

    Only what is missing is run: the catalog is read first (no table locks), because even a no-op `ALTER TABLE …
    IF NOT EXISTS` takes an ACCESS EXCLUSIVE lock, which would queue behind a running load and deadlock with it."""
    categories = categories if categories is not None else [c for c in CATEGORIES.values() if c.implemented]
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('outsmart schema migration'))")
        cur.execute("SELECT c.relname, c.relkind, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'i')", (SCHEMA,))
        tables: dict[str, set[str]] = {}
        indexes: set[str] = set()
        for rel, kind, col in cur.fetchall():
            if kind == "i":
                indexes.add(rel)
            else:
                tables.setdefault(rel, set()).add(col)
        if not BASE_OBJECTS <= set(tables) | indexes:
            cur.execute(BASE_DDL)
        for spec in [t for cat in categories for t in (cat.table, cat.lines.table if cat.lines else None) if t]:
            for statement in table_ddl(spec, tables.get(spec.name), indexes):
                cur.execute(statement)
    conn.commit()


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

    FIELDS = ("fetched", "inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted", "api_calls",
              "watermark_before", "watermark_after", "deleted_watermark_before", "deleted_watermark_after", "error", "notes")

    def finish(self, log_id: int, status: str, **values) -> None:
        cols = [f for f in self.FIELDS if f in values]
        sets = ", ".join([f"{c} = %s" for c in cols] + ["status = %s", "ended_at = now()"])
        with self.conn.cursor() as cur:
            cur.execute(f"UPDATE {SCHEMA}.import_log SET {sets} WHERE id = %s", (*[values[c] for c in cols], status, log_id))
        self.conn.commit()

    def latest_per_category(self, columns) -> dict[str, dict] | None:
        """The newest row of each category (latest start, then highest id) as {category: {column: value}} with the
        given columns; None while the import log does not exist yet (no import has run)."""
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT to_regclass('{SCHEMA}.import_log') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute(f"SELECT DISTINCT ON (category) category, {', '.join(_q(c) for c in columns)} "
                        f"FROM {SCHEMA}.import_log ORDER BY category, started_at DESC, id DESC")
            return {row[0]: dict(zip(columns, row[1:])) for row in cur.fetchall()}


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


STANDARD_PRICE_SQL = f"""
    SELECT DISTINCT ON (item_id) item_id, price FROM {SCHEMA}.exact_item_prices
    WHERE account_id IS NULL AND deleted_at IS NULL
      AND (start_date IS NULL OR start_date <= %(today)s) AND (end_date IS NULL OR end_date >= %(today)s)
    ORDER BY item_id, quantity NULLS FIRST, start_date DESC NULLS LAST, exact_timestamp DESC"""


class _TablePart:
    """Staging and merge of one target table inside a category's transaction (the header, or its lines)."""

    def __init__(self, load: "CategoryLoad", spec: TableSpec, prefix: str):
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

    def create_temp_tables(self) -> None:
        col_defs = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in self.spec.columns)
        self.cur.execute(f"CREATE TEMP TABLE {self.p}stg ({col_defs}, passes_filter boolean NOT NULL) ON COMMIT DROP")
        self.cur.execute(f"CREATE TEMP TABLE {self.p}stg_deleted (exact_id uuid NOT NULL, exact_timestamp bigint) ON COMMIT DROP")
        self.cur.execute(f"CREATE TEMP TABLE {self.p}stg_seen (exact_id uuid NOT NULL) ON COMMIT DROP")

    def start_direct_if_empty(self) -> None:
        self.cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {self.target})")
        self.direct = self.cur.fetchone()[0]

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
        self.load._copy_frame(f"{self.p}stg", frame, [*self.cols, "passes_filter"])

    def _copy_direct(self, frame: pd.DataFrame) -> bool:
        """COPY rows straight into the (empty at start) target, unless one would meet a row already there."""
        if frame.empty:
            return True
        if self._would_conflict(frame):
            self._leave_direct()
            return False
        self.load._copy_frame(self.target, frame, self.cols)
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
                if types[key] == "uuid":  # one string, split by the server: adapting 1,000 list items costs more
                    arg, array = ",".join(present), "string_to_array(%s, ',')::uuid[]"
                else:
                    arg, array = present.tolist(), f"%s::{types[key]}[]"
                self.cur.execute(f"SELECT EXISTS (SELECT 1 FROM {self.target} WHERE {_q(key)} = ANY({array}))", (arg,))
                if self.cur.fetchone()[0]:
                    return True
        return False

    def _leave_direct(self) -> None:
        """Move what direct mode loaded back into staging; the target is as it was at the start. (Rows without an
        Exact ID are not ours: should someone add one meanwhile, it stays.)"""
        cols, ident = ", ".join(_q(c) for c in self.cols), _q(self.spec.identity)
        self.cur.execute(f"INSERT INTO {self.p}stg ({cols}, passes_filter) SELECT {cols}, true FROM {self.target} "
                         f"WHERE {ident} IS NOT NULL")
        self.cur.execute(f"DELETE FROM {self.target} WHERE {ident} IS NOT NULL")
        self.direct, self.direct_rows = False, 0

    def stage_deleted(self, rows: list[tuple[str, int]]) -> None:
        self.load.stage_deleted(rows, f"{self.p}stg_deleted")

    def reject(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        self.counts.rejects.extend(rejects)
        self.counts.rejected += len(rejects)
        with self.cur.copy(
            f"COPY {SCHEMA}.import_rejects (import_log_id, category, record_key, reason, raw) FROM STDIN"
        ) as copy:
            for r in rejects:
                copy.write_row((self.load.log_id, self.load.category.name, r.key, r.reason, json.dumps(r.raw, default=str)))
        seen = [r.raw.get("ID") for r in rejects if _is_guid(r.raw.get("ID"))]
        if seen:
            with self.cur.copy(f"COPY {self.p}stg_seen (exact_id) FROM STDIN") as copy:
                for s_ in seen:
                    copy.write_row((s_,))

    def merge(self, *, reconcile: bool, today, prices: bool = False, parent: tuple | None = None) -> MergeCounts:
        """Apply the staged rows and deletions. `reconcile`: the staged rows are all of Exact, so rows that
        came from Exact but were not staged are soft-deleted. `parent`: (header part, lines column, header
        column): a line is loaded only if its header is in OutSmart; a line whose header is nowhere is rejected."""
        cur, t, key, ident, p = self.cur, self.target, _q(self.spec.merge_key), _q(self.spec.identity), self.p
        cols = ", ".join(_q(c) for c in self.cols)
        if self.direct:
            # A filtered-out row that repeats a loaded ID may be that record's newer version: the merge decides.
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {p}stg s JOIN {t} x ON x.{ident} = s.{ident})")
            if cur.fetchone()[0]:
                self._leave_direct()
            else:
                return self._finish_direct()
        # A page can repeat an ID; keep the newest version (highest Timestamp). Usually none repeats, and finding
        # that out (a hash aggregate over the IDs) costs less than sorting every staged row.
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {p}stg GROUP BY {ident} HAVING count(*) > 1)")
        if cur.fetchone()[0]:
            cur.execute(f"CREATE TEMP TABLE {p}stg_latest ON COMMIT DROP AS "
                        f"SELECT DISTINCT ON ({ident}) * FROM {p}stg ORDER BY {ident}, exact_timestamp DESC NULLS LAST")
        else:
            cur.execute(f"ALTER TABLE {p}stg RENAME TO {p}stg_latest")
        if parent is not None:
            header, line_col, header_col = parent
            lc, hc = _q(line_col), _q(header_col)
            cur.execute(f"UPDATE {p}stg_latest s SET passes_filter = EXISTS "
                        f"(SELECT 1 FROM {header.target} h WHERE h.{hc} = s.{lc} AND h.deleted_at IS NULL)")
            cur.execute(f"""
                DELETE FROM {p}stg_latest s
                WHERE NOT s.passes_filter
                  AND NOT EXISTS (SELECT 1 FROM {header.p}stg_latest h WHERE h.{hc} = s.{lc})
                  AND NOT EXISTS (SELECT 1 FROM {header.target} h WHERE h.{hc} = s.{lc})
                  AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{ident} = s.{ident})
                RETURNING s.{ident}::text, s.{lc}::text""")
            orphans = cur.fetchall()
            self.reject([Reject(i, f"{self.spec.name} line without its header: {header_col} {h} is neither in this run "
                                   f"nor in outsmart.{header.spec.name}", {"ID": i, line_col: h}) for i, h in orphans])
        # New rows must pass the filters; rows already in OutSmart are updated whatever the filter says.
        cur.execute(f"CREATE TEMP TABLE {p}cand ON COMMIT DROP AS SELECT s.* FROM {p}stg_latest s "
                    f"WHERE s.passes_filter OR EXISTS (SELECT 1 FROM {t} x WHERE x.{ident} = s.{ident})")
        cur.execute(f"SELECT (SELECT count(*) FROM {p}stg_latest) - (SELECT count(*) FROM {p}cand)")
        self.counts.filtered_out = cur.fetchone()[0]

        merge_rejects: list[Reject] = []
        recoded_ids: set = set()
        if self.spec.merge_key != self.spec.identity:
            # The same code on two Exact records: keep the one OutSmart already has, set the others aside.
            cur.execute(f"""
                DELETE FROM {p}cand c USING (SELECT {key} FROM {p}cand GROUP BY {key} HAVING count(*) > 1) d
                WHERE c.{key} = d.{key}
                  AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{key} = c.{key} AND x.{ident} = c.{ident})
                RETURNING c.{key}, c.{ident}""")
            merge_rejects += [Reject(str(k), f"duplicate {self.spec.merge_key} {k!r}: more than one Exact record has it",
                                     {"ID": str(i), "Code": k}) for k, i in cur.fetchall()]
            # Records whose code Exact changed: found with one join over all candidates, kept in a small table.
            cur.execute(f"CREATE TEMP TABLE {p}recode ON COMMIT DROP AS "
                        f"SELECT c.{key} AS new_key, c.{ident} AS ident, x.{key} AS old_key, x.id "
                        f"FROM {p}cand c JOIN {t} x ON x.{ident} = c.{ident} WHERE x.{key} <> c.{key}")
            # The new code is taken by another row: set the record aside.
            cur.execute(f"""
                WITH taken AS (DELETE FROM {p}recode r USING {t} y WHERE y.{key} = r.new_key AND y.id <> r.id RETURNING r.*)
                DELETE FROM {p}cand c USING taken WHERE c.{ident} = taken.ident
                RETURNING taken.new_key, taken.ident, taken.old_key""")
            merge_rejects += [Reject(str(k), f"code changed in Exact from {old!r} to {k!r}, but {k!r} is already used "
                                             f"by another {self.spec.name} row", {"ID": str(i), "Code": k})
                              for k, i, old in cur.fetchall()]
            # Otherwise recode in place (same Exact ID, new code): update the row, do not insert a duplicate.
            cur.execute(f"UPDATE {t} x SET {key} = r.new_key, imported_at = now() FROM {p}recode r "
                        f"WHERE x.id = r.id RETURNING x.{ident}")
            recoded_ids = {r[0] for r in cur.fetchall()}
        if merge_rejects:
            self.reject(merge_rejects)
        if prices:
            cur.execute(f"UPDATE {p}cand c SET sales_price = sp.price FROM ({STANDARD_PRICE_SQL}) sp "
                        f"WHERE sp.item_id = c.exact_id", {"today": today})
        for lookup in self.spec.lookups:
            self._apply_lookup(lookup)

        compare = [c.name for c in self.spec.columns if c.compare]
        cur.execute(f"SELECT count(*) FROM {p}cand")
        n_cand = cur.fetchone()[0]
        # Keep only the rows OutSmart does not already have exactly so: the guarded ON CONFLICT below would leave
        # those as they are but still lock (and WAL-log) each one. One hash anti-join is cheaper, and on a re-load
        # most rows are unchanged (copying the few changed ones beats deleting the many unchanged ones).
        cur.execute(f"""
            CREATE TEMP TABLE {p}cand_changed ON COMMIT DROP AS SELECT c.* FROM {p}cand c
            WHERE NOT EXISTS (
                SELECT 1 FROM {t} x WHERE x.{key} = c.{key} AND x.deleted_at IS NULL
                  AND ({', '.join('x.' + _q(c) for c in compare)}) IS NOT DISTINCT FROM ({', '.join('c.' + _q(c) for c in compare)}))""")
        cur.execute(f"DROP TABLE {p}cand")
        cur.execute(f"ALTER TABLE {p}cand_changed RENAME TO {p}cand")
        changed = " OR ".join([
            f"({', '.join('t.' + _q(c) for c in compare)}) IS DISTINCT FROM ({', '.join('excluded.' + _q(c) for c in compare)})",
            "t.deleted_at IS NOT NULL",
        ])
        updates = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in self.cols if c != self.spec.merge_key)
        cur.execute(f"""
            INSERT INTO {t} AS t ({cols}, imported_at, deleted_at)
            SELECT {cols}, now(), NULL FROM {p}cand
            ON CONFLICT ({key}) DO UPDATE SET {updates}, imported_at = excluded.imported_at, deleted_at = NULL
            WHERE ({changed})
              AND (t.exact_timestamp IS NULL OR excluded.exact_timestamp IS NULL
                   OR excluded.exact_timestamp >= t.exact_timestamp)
            RETURNING (xmax = 0) AS inserted, t.{ident}""")
        rows = cur.fetchall()
        inserted = sum(1 for ins, _ in rows if ins)
        updated_ids = {i for ins, i in rows if not ins} | recoded_ids
        self.counts.unchanged = n_cand - inserted - len(updated_ids)
        if prices:
            # A price can change without its item changing: update those rows too (and clear a removed price).
            cur.execute(f"""
                UPDATE {t} t SET sales_price = x.price, imported_at = now()
                FROM (SELECT t2.id, sp.price FROM {t} t2 LEFT JOIN ({STANDARD_PRICE_SQL}) sp
                      ON sp.item_id = t2.exact_id) x
                WHERE t.id = x.id AND t.sales_price IS DISTINCT FROM x.price AND t.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM {p}cand c WHERE c.exact_id = t.exact_id)
                RETURNING t.exact_id""", {"today": today})
            updated_ids |= {r[0] for r in cur.fetchall()}
        self.counts.inserted = inserted
        self.counts.updated = len(updated_ids)  # includes rows whose only change was their standard price

        deleted = self._apply_deletions()
        if reconcile:
            cur.execute(f"""
                UPDATE {t} t SET deleted_at = now()
                WHERE t.{ident} IS NOT NULL AND t.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM {p}stg_latest s WHERE s.{ident} = t.{ident})
                  AND NOT EXISTS (SELECT 1 FROM {p}stg_seen s WHERE s.exact_id = t.{ident})""")
            deleted += cur.rowcount
        self.counts.deleted = deleted
        return self.counts

    def _finish_direct(self) -> MergeCounts:
        self.cur.execute(f"SELECT count(DISTINCT {_q(self.spec.identity)}) FROM {self.p}stg")
        self.counts.filtered_out = self.cur.fetchone()[0]
        self.counts.inserted = self.direct_rows
        # Every row in the target came from this run, so there is nothing to reconcile; deletions still apply.
        self.counts.deleted = self._apply_deletions()
        return self.counts

    def _apply_deletions(self) -> int:
        """Deletions from sync/Deleted: soft delete, and only if our copy is not newer than the deletion."""
        self.cur.execute(f"""
            UPDATE {self.target} t SET deleted_at = now()
            FROM (SELECT exact_id, max(exact_timestamp) AS ts FROM {self.p}stg_deleted GROUP BY exact_id) d
            WHERE t.{_q(self.spec.identity)} = d.exact_id AND t.deleted_at IS NULL
              AND (t.exact_timestamp IS NULL OR d.ts IS NULL OR t.exact_timestamp <= d.ts)""")
        return self.cur.rowcount

    def _apply_lookup(self, lookup) -> None:
        """Fill a code column from another OutSmart table by Exact ID (e.g. the customer's code from relations)."""
        present = []
        for table in lookup.tables:
            self.cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{table}",))
            if self.cur.fetchone()[0]:
                present.append(table)
        if not present:
            return
        union = " UNION ALL ".join(f"SELECT exact_id, {_q(lookup.value)} AS v FROM {SCHEMA}.{_q(t)}" for t in present)
        self.cur.execute(f"UPDATE {self.p}cand c SET {_q(lookup.column)} = l.v FROM ({union}) l "
                         f"WHERE l.exact_id = c.{_q(lookup.via)} AND c.{_q(lookup.column)} IS NULL")


class CategoryLoad:
    """One category's load as one transaction. Use as a context manager; call `commit()` to keep it.

    `stage`/`stage_deleted`/`reject` go to the category's main table; `lines` (if the category has lines) has the
    same methods for the lines table, merged in the same transaction after the headers."""

    def __init__(self, conn, category: Category, *, log_id: int | None = None):
        self.conn = conn
        self.category = category
        self.log_id = log_id
        self.header = _TablePart(self, category.table, "")
        self.lines = _TablePart(self, category.lines.table, "l_") if category.lines else None
        self._committed = False

    # The header part's interface, for single-table categories and existing callers.
    @property
    def counts(self) -> MergeCounts:
        return self.header.counts

    def stage(self, frame: pd.DataFrame) -> None:
        self.header.stage(frame)

    def reject(self, rejects: list[Reject]) -> None:
        self.header.reject(rejects)

    def __enter__(self) -> "CategoryLoad":
        self.cur = self.conn.cursor()
        # One load per category at a time, whoever starts it (scheduler, a manual trigger, a test).
        self.cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"outsmart import {self.category.name}",))
        # The merge's hash joins compare every staged row with the target; at Postgres' default 4 MB they spill to
        # disk in batches (a 1M-row re-load took 13 s instead of 8 s). For this transaction only.
        self.cur.execute("SELECT set_config('work_mem', %s, true)", (os.environ.get("OUTSMART_MERGE_WORK_MEM", "256MB"),))
        self.header.create_temp_tables()
        if self.lines:
            self.lines.create_temp_tables()
        # Direct mode only where the merge has nothing to add: no lookups, no prices, no lines to check.
        if not (self.lines or self.category.table.lookups or self.category.enrich):
            self.header.start_direct_if_empty()
        if self.category.enrich == "standard_sales_price":
            self.cur.execute(f"CREATE TEMP TABLE stg_prices (LIKE {SCHEMA}.exact_item_prices INCLUDING DEFAULTS) ON COMMIT DROP")
            self.cur.execute("CREATE TEMP TABLE stg_prices_deleted (exact_id uuid NOT NULL, exact_timestamp bigint) ON COMMIT DROP")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self.conn.rollback()  # a failed or dry run leaves the target exactly as it was

    # ---- state ------------------------------------------------------------------------------------------------
    def watermark(self, stream: str) -> int | None:
        self.cur.execute(f"SELECT watermark FROM {SCHEMA}.import_state WHERE category = %s AND stream = %s",
                         (self.category.name, stream))
        row = self.cur.fetchone()
        return row[0] if row else None

    def set_watermark(self, stream: str, value: int) -> None:
        self.cur.execute(
            f"INSERT INTO {SCHEMA}.import_state (category, stream, watermark) VALUES (%s, %s, %s) "
            f"ON CONFLICT (category, stream) DO UPDATE SET watermark = excluded.watermark, updated_at = now()",
            (self.category.name, stream, int(value)),
        )

    # ---- staging ----------------------------------------------------------------------------------------------
    def _copy_frame(self, table: str, frame: pd.DataFrame, cols: list[str]) -> None:
        buf = io.BytesIO()
        # pyarrow quotes every string and writes NULL as an empty unquoted field: '' stays '', a lone CR is safe.
        pacsv.write_csv(pa.Table.from_pandas(frame[cols], preserve_index=False), buf,
                        pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        with self.cur.copy(f"COPY {table} ({', '.join(_q(c) for c in cols)}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buf.getvalue())

    def stage_prices(self, frame: pd.DataFrame) -> None:
        if not frame.empty:
            self._copy_frame("stg_prices", frame.dropna(subset=["exact_id"]), list(frame.columns))

    def stage_deleted(self, rows: list[tuple[str, int]], table: str = "stg_deleted") -> None:
        if rows:
            with self.cur.copy(f"COPY {table} (exact_id, exact_timestamp) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    # ---- merge ------------------------------------------------------------------------------------------------
    def _merge_prices(self) -> None:
        """Bring the price mirror up to date (newest Timestamp wins; deletions are soft)."""
        cols = ["exact_id", "item_id", "account_id", "price", "currency", "quantity", "unit", "start_date",
                "end_date", "exact_timestamp"]
        self.cur.execute(f"""
            INSERT INTO {SCHEMA}.exact_item_prices AS t ({', '.join(cols)}, deleted_at)
            SELECT DISTINCT ON (exact_id) {', '.join(cols)}, NULL FROM stg_prices
            ORDER BY exact_id, exact_timestamp DESC NULLS LAST
            ON CONFLICT (exact_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols[1:])},
                deleted_at = NULL, imported_at = now()
            WHERE t.exact_timestamp IS NULL OR excluded.exact_timestamp >= t.exact_timestamp""")
        self.cur.execute(f"""
            UPDATE {SCHEMA}.exact_item_prices t SET deleted_at = now()
            FROM (SELECT exact_id, max(exact_timestamp) AS ts FROM stg_prices_deleted GROUP BY exact_id) d
            WHERE t.exact_id = d.exact_id AND t.deleted_at IS NULL AND (t.exact_timestamp IS NULL OR t.exact_timestamp <= d.ts)""")

    def merge(self, *, reconcile: bool, today=None) -> MergeCounts:
        """Merge the header table, then (if any) the lines, in this one transaction. Returns the sum of both."""
        import datetime as dt

        today = today or dt.date.today()
        prices = self.category.enrich == "standard_sales_price"
        if prices:
            self._merge_prices()
        counts = self.header.merge(reconcile=reconcile, today=today, prices=prices)
        if not self.lines:
            return counts
        spec = self.category.lines
        lines = self.lines.merge(reconcile=reconcile, today=today, parent=(self.header, spec.parent_key, spec.header_key))
        total = MergeCounts()
        for name in ("staged", "inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted"):
            setattr(total, name, getattr(counts, name) + getattr(lines, name))
        total.rejects = counts.rejects + lines.rejects
        return total

    def commit(self) -> None:
        self.conn.commit()
        self._committed = True


def _is_guid(value) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value) is not None
