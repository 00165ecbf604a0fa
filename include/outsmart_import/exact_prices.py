"""Exact's standard sales price: the enrichment of materials and hour types (an `enrichment.Enrichment`).

Exact's item sync endpoint has no sales price. Prices are sales item prices (sync/Logistics/SalesItemPrices, the
registry's `PRICE_SOURCE`), landed like every stream and derived on their own mark into a mirror,
`outsmart.exact_item_prices`. An item's standard sales price is the price that is valid today and belongs to nobody
in particular: no account (prices with an account are price agreements), no project, no employee (an employee's
hourly rate on a time item is not the hour type's price), in the division's own currency and for the item's own unit
(the item's `Unit`, the table's `unit` column); where several are, the one for the lowest quantity, then the latest
start, then the newest Timestamp. The mirror lets a price change reach its item without the item changing, and a
removed or ended price clear it.

The division's currency is `Currency` ("Default currency") of Exact's `system/Divisions` (`current/Me` has none),
which the resync stage asks once a day anyway and keeps in `outsmart.exact_divisions`; the merge hands it over
(`MergeContext.currency`). Until it is known (e.g. a test that loads without Exact), currency is not checked.

No pandas at import: the registry holds this object and is read when Airflow parses the DAG file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from include.outsmart_import.database import SCHEMA, copy_deleted, copy_frame

if TYPE_CHECKING:
    from include.outsmart_import.declarations import Source
    from include.outsmart_import.enrichment import MergeContext

MIRROR = f"{SCHEMA}.exact_item_prices"

DDL = f"""
-- Mirror of Exact's sales item prices: the standard sales price of materials and hour types comes from here.
CREATE TABLE IF NOT EXISTS {MIRROR} (
    exact_id        uuid PRIMARY KEY,
    item_id         uuid,
    account_id      uuid,
    project_id      uuid,
    employee_id     uuid,
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
CREATE INDEX IF NOT EXISTS exact_item_prices_item ON {MIRROR} (item_id);
"""

# Columns added to the mirror after its first release (CREATE TABLE IF NOT EXISTS does not add them).
ADDED_COLUMNS = {"exact_item_prices": {"project_id": "uuid", "employee_id": "uuid"}}

MIRROR_COLUMNS = [
    "exact_id",
    "item_id",
    "account_id",
    "project_id",
    "employee_id",
    "price",
    "currency",
    "quantity",
    "unit",
    "start_date",
    "end_date",
    "exact_timestamp",
]


def standard_price_sql(items: str) -> str:
    """Per item of `items` (a table with the items' `exact_id` and `unit`), its standard sales price today
    (%(today)s): the current price of nobody in particular, in the division's currency (%(currency)s; None: any)
    and the item's unit."""
    return f"""
    SELECT DISTINCT ON (p.item_id) p.item_id, p.price
    FROM {MIRROR} p JOIN {items} i ON i.exact_id = p.item_id
    WHERE p.account_id IS NULL AND p.project_id IS NULL AND p.employee_id IS NULL AND p.deleted_at IS NULL
      AND (p.start_date IS NULL OR p.start_date <= %(today)s) AND (p.end_date IS NULL OR p.end_date >= %(today)s)
      AND (p.currency IS NULL OR %(currency)s::text IS NULL OR p.currency = %(currency)s)
      AND (p.unit IS NULL OR i.unit IS NULL OR p.unit = i.unit)
    ORDER BY p.item_id, p.quantity NULLS FIRST, p.start_date DESC NULLS LAST, p.exact_timestamp DESC"""


@dataclass(frozen=True, eq=False)  # one object per enrichment: compared and hashed by identity
class StandardSalesPrice:
    """Fills `sales_price` (by the row's exact_id, the item's ID) with the item's standard sales price."""

    source: Source
    column: str = "sales_price"
    ddl: str = DDL
    added_columns: dict = field(default_factory=lambda: ADDED_COLUMNS)

    def begin(self, cur) -> None:
        cur.execute(f"CREATE TEMP TABLE stg_prices (LIKE {MIRROR} INCLUDING DEFAULTS) ON COMMIT DROP")
        cur.execute(
            "CREATE TEMP TABLE stg_prices_deleted (exact_id uuid NOT NULL, exact_timestamp bigint) ON COMMIT DROP"
        )

    def stage(self, cur, records: list[dict], deleted: list[tuple[str, int | None]]) -> None:
        if records:
            from include.outsmart_import.transforms import standard_prices  # pandas: only when a load runs

            frame = standard_prices(records)
            if not frame.empty:
                copy_frame(cur, "stg_prices", frame.dropna(subset=["exact_id"]), list(frame.columns))
        copy_deleted(cur, "stg_prices_deleted", deleted)

    def before_merge(self, cur) -> None:
        """Bring the price mirror up to date (newest Timestamp wins; deletions are soft)."""
        cols = MIRROR_COLUMNS
        cur.execute(f"""
            INSERT INTO {MIRROR} AS t ({", ".join(cols)}, deleted_at)
            SELECT DISTINCT ON (exact_id) {", ".join(cols)}, NULL FROM stg_prices
            ORDER BY exact_id, exact_timestamp DESC NULLS LAST
            ON CONFLICT (exact_id) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in cols[1:])},
                deleted_at = NULL, imported_at = now()
            WHERE t.exact_timestamp IS NULL OR excluded.exact_timestamp >= t.exact_timestamp""")
        cur.execute(f"""
            UPDATE {MIRROR} t SET deleted_at = now()
            FROM (SELECT exact_id, max(exact_timestamp) AS ts FROM stg_prices_deleted GROUP BY exact_id) d
            WHERE t.exact_id = d.exact_id AND t.deleted_at IS NULL
              AND (t.exact_timestamp IS NULL OR t.exact_timestamp <= d.ts)""")

    def fill(self, cur, cand_table: str, context: MergeContext) -> None:
        """The rows about to be written get today's standard price (before the change filter, so that a price
        that differs from OutSmart's makes the row changed)."""
        cur.execute(
            f"UPDATE {cand_table} c SET {self.column} = sp.price FROM ({standard_price_sql(cand_table)}) sp "
            f"WHERE sp.item_id = c.exact_id",
            {"today": context.today, "currency": context.currency},
        )

    def refresh(self, cur, target: str, cand_table: str, context: MergeContext) -> set:
        """A price can change without its item changing: update those rows too (and clear a removed price).
        Rows just written (`cand_table`) already have it."""
        cur.execute(
            f"""
            UPDATE {target} t SET {self.column} = x.price, imported_at = now()
            FROM (SELECT t2.id, sp.price FROM {target} t2 LEFT JOIN ({standard_price_sql(target)}) sp
                  ON sp.item_id = t2.exact_id) x
            WHERE t.id = x.id AND t.{self.column} IS DISTINCT FROM x.price AND t.deleted_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM {cand_table} c WHERE c.exact_id = t.exact_id)
            RETURNING t.exact_id""",
            {"today": context.today, "currency": context.currency},
        )
        return {r[0] for r in cur.fetchall()}

    def forget_timestamps(self, cur) -> None:
        """Exact moved the division: the mirror's Timestamps no longer compare with the regenerated ones."""
        cur.execute(f"UPDATE {MIRROR} SET exact_timestamp = NULL WHERE exact_timestamp IS NOT NULL")
