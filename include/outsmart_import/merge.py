"""The merge: one category's rows into the OutSmart tables, as one transaction. Knows Postgres, nothing of Exact.

`CategoryLoad` is the transaction: every page the derive hands it is COPYed into a TEMP staging table (staging.py:
CSV written by pyarrow: fast, '' kept distinct from NULL, CR/newlines quoted), then one merge per table
(`TablePart.merge`, in named steps): `INSERT … ON CONFLICT (merge key) DO UPDATE … WHERE (target) IS DISTINCT FROM
(incoming)`, so only changed rows are rewritten; soft deletes; the derive's marks are written in the same
transaction, so they advance only if the load commits. A category's enrichment (enrichment.py) is called at three
points of the merge without the merge knowing what it does. The initial load of a simple table (no lookups,
enrichment or rejected orphans) skips staging: into an empty target the rows are COPYed directly, and anything only
the merge can decide (a repeated ID or code) moves them back to staging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from include.outsmart_import.database import SCHEMA, column_list, copy_deleted, quote
from include.outsmart_import.enrichment import Enrichment, MergeContext
from include.outsmart_import.registry import MERGE_COUNTS, Category, Lines
from include.outsmart_import.staging import MergeCounts, TableStaging
from include.outsmart_import.transforms import Reject

if TYPE_CHECKING:
    import pandas as pd


class TablePart(TableStaging):
    """One target table in a category's transaction: its staging, and the merge's named steps."""

    # ---- merge ------------------------------------------------------------------------------------------------
    def merge(
        self,
        *,
        full_derive: bool,
        context: MergeContext,
        enrichment: Enrichment | None = None,
        parent: tuple | None = None,
    ) -> MergeCounts:
        """Apply the staged rows and deletions. `full_derive`: the staged rows are all of Exact, so rows that
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
            enrichment.fill(self.cur, f"{self.p}cand", context)
        self._apply_lookups()
        n_cand = self._fetch1(f"SELECT count(*) FROM {self.p}cand")
        self._drop_unchanged()
        inserted, updated_ids = self._upsert()
        updated_ids |= recoded_ids
        self.counts.unchanged = n_cand - inserted - len(updated_ids)
        if enrichment is not None:
            updated_ids |= enrichment.refresh(self.cur, self.target, f"{self.p}cand", context)
        self.counts.inserted = inserted
        self.counts.updated = len(updated_ids)  # includes rows whose only change was an enriched column (a price)
        self.counts.deleted = self._apply_deletions() + (self._reconcile() if full_derive else 0)
        return self.counts

    def _direct_load_stands(self) -> bool:
        """Does the direct load stand as COPYed? A filtered-out row that repeats a loaded ID may be that record's
        newer version: then the merge decides, and the loaded rows go back to staging."""
        if not self.direct:
            return False
        ident = quote(self.spec.identity)
        if self._fetch1(f"SELECT EXISTS (SELECT 1 FROM {self.p}stg s JOIN {self.target} x ON x.{ident} = s.{ident})"):
            self._leave_direct()
            return False
        return True

    def _finish_direct(self) -> MergeCounts:
        self.counts.filtered_out = self._fetch1(f"SELECT count(DISTINCT {quote(self.spec.identity)}) FROM {self.p}stg")
        self.counts.inserted = self.direct_rows
        # Every row in the target came from this run, so there is nothing to reconcile; deletions still apply.
        self.counts.deleted = self._apply_deletions()
        return self.counts

    def _dedupe_latest(self) -> None:
        """{p}stg -> {p}stg_latest, one row per Exact ID. A page can repeat an ID; keep the newest version (highest
        Timestamp). Usually none repeats, and finding that out (a hash aggregate over the IDs) costs less than
        sorting every staged row."""
        ident, p = quote(self.spec.identity), self.p
        if self._fetch1(f"SELECT EXISTS (SELECT 1 FROM {p}stg GROUP BY {ident} HAVING count(*) > 1)"):
            self.cur.execute(
                f"CREATE TEMP TABLE {p}stg_latest ON COMMIT DROP AS SELECT DISTINCT ON ({ident}) * "
                f"FROM {p}stg ORDER BY {ident}, exact_timestamp DESC NULLS LAST"
            )
        else:
            self.cur.execute(f"ALTER TABLE {p}stg RENAME TO {p}stg_latest")

    def _check_parents(self, header: TablePart, line_col: str, header_col: str, orphans: str = "reject") -> None:
        """Lines: a line passes only if its header is in OutSmart (and not deleted). `orphans="reject"`: a line
        whose header is nowhere (not in this run, not in OutSmart) and that is not loaded yet is rejected."""
        lc, hc = quote(line_col), quote(header_col)
        self.cur.execute(
            f"UPDATE {self.p}stg_latest s SET passes_filter = EXISTS "
            f"(SELECT 1 FROM {header.target} h WHERE h.{hc} = s.{lc} AND h.deleted_at IS NULL)"
        )
        if orphans == "reject":
            self._reject_orphan_lines(header, line_col, header_col)

    def _reject_orphan_lines(self, header: TablePart, line_col: str, header_col: str) -> None:
        t, ident, p, lc, hc = self.target, quote(self.spec.identity), self.p, quote(line_col), quote(header_col)
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
        t, ident, p = self.target, quote(self.spec.identity), self.p
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
        t, key, ident, p = self.target, quote(self.spec.merge_key), quote(self.spec.identity), self.p
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
        t, key, ident, p = self.target, quote(self.spec.merge_key), quote(self.spec.identity), self.p
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
        union = " UNION ALL ".join(
            f"SELECT exact_id, {quote(lookup.value)} AS v FROM {SCHEMA}.{quote(t)}" for t in present
        )
        self.cur.execute(
            f"UPDATE {self.p}cand c SET {quote(lookup.column)} = l.v FROM ({union}) l "
            f"WHERE l.exact_id = c.{quote(lookup.via)} AND c.{quote(lookup.column)} IS NULL"
        )

    def _drop_unchanged(self) -> None:
        """Keep in {p}cand only the rows OutSmart does not already have exactly so: the guarded ON CONFLICT in
        `_upsert` would leave those as they are but still lock (and WAL-log) each one. One hash anti-join is
        cheaper, and on a re-load most rows are unchanged (copying the few changed ones beats deleting the many
        unchanged ones)."""
        t, key, p = self.target, quote(self.spec.merge_key), self.p
        compare = [c.name for c in self.spec.columns if c.compare]
        self.cur.execute(f"""
            CREATE TEMP TABLE {p}cand_changed ON COMMIT DROP AS SELECT c.* FROM {p}cand c
            WHERE NOT EXISTS (
                SELECT 1 FROM {t} x WHERE x.{key} = c.{key} AND x.deleted_at IS NULL
                  AND ({column_list(compare, "x.")}) IS NOT DISTINCT FROM ({column_list(compare, "c.")}))""")
        self.cur.execute(f"DROP TABLE {p}cand")
        self.cur.execute(f"ALTER TABLE {p}cand_changed RENAME TO {p}cand")

    def _upsert(self) -> tuple[int, set]:
        """Insert new rows, update changed ones (and revive soft-deleted ones); never overwrite a row with an older
        version of its record (lower Timestamp). Returns (rows inserted, Exact IDs of the rows updated)."""
        t, key, ident, cols = self.target, quote(self.spec.merge_key), quote(self.spec.identity), column_list(self.cols)
        compare = [c.name for c in self.spec.columns if c.compare]
        changed = " OR ".join(
            [
                f"({column_list(compare, 't.')}) IS DISTINCT FROM ({column_list(compare, 'excluded.')})",
                "t.deleted_at IS NOT NULL",
            ]
        )
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in self.cols if c != self.spec.merge_key)
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
            WHERE t.{quote(self.spec.identity)} = d.exact_id AND t.deleted_at IS NULL
              AND (t.exact_timestamp IS NULL OR d.ts IS NULL OR t.exact_timestamp <= d.ts)""")
        return self.cur.rowcount

    def _reconcile(self) -> int:
        """The staged rows are all of Exact: soft-delete the rows that came from Exact but were neither staged nor
        rejected (a rejected record still exists in Exact)."""
        ident, p = quote(self.spec.identity), self.p
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
        self.header = TablePart(self, category.table, "")
        # (declaration, its part) per dependent table; the first keeps the prefix the lines always had.
        specs = category.dependents if dependents is None else dependents
        self.parts = [(spec, TablePart(self, spec.table, "l_" if i == 0 else f"l{i}_")) for i, spec in enumerate(specs)]
        self.lines = self.parts[0][1] if self.parts else None
        self.enrichment = category.enrichment
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
            self.enrichment.begin(self.cur)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self.conn.rollback()  # a failed or dry run leaves the target exactly as it was

    # ---- a division moved ----------------------------------------------------------------------------------------
    def forget_exact_timestamps(self) -> None:
        """Exact moved the division to another database and regenerated every Timestamp: the ones this category's
        rows carry no longer compare with Exact's (a newer version would look older and be ignored). Cleared in the
        load's transaction, before the full re-derive; a row gets a Timestamp again when it next changes."""
        for part in (self.header, *(part for _, part in self.parts)):
            self.cur.execute(f"UPDATE {part.target} SET exact_timestamp = NULL WHERE exact_timestamp IS NOT NULL")
        if self.enrichment is not None:
            self.enrichment.forget_timestamps(self.cur)

    # ---- staging ----------------------------------------------------------------------------------------------
    def stage_deleted(self, rows: list[tuple[str, int | None]], table: str = "stg_deleted") -> None:
        copy_deleted(self.cur, table, rows)

    def stage_enrichment(self, records: list[dict], deleted: list[tuple[str, int | None]]) -> None:
        """One page of the enrichment's own stream (`enrichment.source`), as landed."""
        if self.enrichment is None:
            raise TypeError(f"category {self.category.name!r} has no enrichment to stage rows for")
        self.enrichment.stage(self.cur, records, deleted)

    # ---- merge ------------------------------------------------------------------------------------------------
    def merge(self, *, full_derive: bool, context: MergeContext) -> MergeCounts:
        """Merge the header table, then each dependent table, in this one transaction. Returns the counts of the
        header and its lines (an order and its lines are one thing to the user); the related tables' own counts
        (a relation's addresses, its contacts) are in `related_counts`, by table."""
        if self.enrichment:
            self.enrichment.before_merge(self.cur)
        total = self.header.merge(full_derive=full_derive, context=context, enrichment=self.enrichment)
        self.related_counts: dict[str, MergeCounts] = {}
        for spec, part in self.parts:
            counts = part.merge(
                full_derive=full_derive,
                context=context,
                parent=(self.header, spec.parent_key, spec.header_key, spec.orphans),
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
        key = quote(header_key)
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
    for name in ("staged", *MERGE_COUNTS):
        setattr(total, name, getattr(a, name) + getattr(b, name))
    total.rejects = a.rejects + b.rejects
    return total
