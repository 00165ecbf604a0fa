"""Staging: the pages a derive hands the merge, COPYed into TEMP tables (or directly into an empty target).

Part of the merge (merge.py): `TablePart` is a `TableStaging` plus the merge's named steps. Knows Postgres, nothing
of Exact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from include.outsmart_import.database import SCHEMA, column_list, copy_deleted, copy_frame, fetch_one, quote
from include.outsmart_import.declarations import GUID_PATTERN, TableSpec
from include.outsmart_import.transforms import Reject

if TYPE_CHECKING:
    import pandas as pd


class LoadTransaction(Protocol):
    """What a table's staging needs of the load it belongs to."""

    cur: Any
    log_id: int | None
    category: Any


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


class TableStaging:
    """One target table's staging inside a category's transaction (the header, or its lines): every page COPYed into
    its TEMP tables, or, on an initial load, straight into the empty target (direct mode)."""

    def __init__(self, load: LoadTransaction, spec: TableSpec, prefix: str):
        self.load, self.spec, self.p = load, spec, prefix
        self.target = f"{SCHEMA}.{quote(spec.name)}"
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
        return fetch_one(self.cur, sql, params)

    def create_temp_tables(self) -> None:
        col_defs = ", ".join(f"{quote(c.name)} {c.sql_type}" for c in self.spec.columns)
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
                if self._fetch1(
                    f"SELECT EXISTS (SELECT 1 FROM {self.target} WHERE {quote(key)} = ANY({array}))", (arg,)
                ):
                    return True
        return False

    def _leave_direct(self) -> None:
        """Move what direct mode loaded back into staging; the target is as it was at the start. (Rows without an
        Exact ID are not ours: should someone add one meanwhile, it stays.)"""
        cols, ident = column_list(self.cols), quote(self.spec.identity)
        self.cur.execute(
            f"INSERT INTO {self.p}stg ({cols}, passes_filter) SELECT {cols}, true FROM {self.target} "
            f"WHERE {ident} IS NOT NULL"
        )
        self.cur.execute(f"DELETE FROM {self.target} WHERE {ident} IS NOT NULL")
        self.direct, self.direct_rows = False, 0

    def stage_deleted(self, rows: list[tuple[str, int | None]]) -> None:
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


def _is_guid(value) -> bool:
    return isinstance(value, str) and re.fullmatch(GUID_PATTERN, value) is not None
