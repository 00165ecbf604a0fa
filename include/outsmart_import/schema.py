"""The target schema: creates and extends schema `outsmart`, and moves a database an older version wrote forward.

Each stage declares its own tables (import_log.DDL, derive.DDL, catalogue.DDL, landing.DDL, resync.DDL, an
enrichment's `ddl`); the registry declares the target tables. `ensure_schema` runs what is missing, under an
advisory lock, safe from every DAG at once. Only what is missing is run: the catalog is read first (no table locks),
because even a no-op `ALTER TABLE … IF NOT EXISTS` takes an ACCESS EXCLUSIVE lock, which would queue behind a
running load and deadlock with it. Later columns arrive through ADD COLUMN: the migration is additive, except for
the upgrades below, which rename or fold state that only the import itself reads.
"""

from __future__ import annotations

from include.outsmart_import import catalogue, derive, import_log, landing, resync
from include.outsmart_import.database import SCHEMA, ddl_objects, quote, read_catalog
from include.outsmart_import.registry import CATEGORIES, Category, TableSpec

# Each stage's own tables, in the order they are created (the import log's script creates the schema).
STAGE_DDL = (import_log.DDL, derive.DDL, catalogue.DDL, landing.DDL, resync.DDL)


def ensure_schema(conn, categories: list[Category] | None = None) -> None:
    """Create or extend the target schema (see the module's docstring)."""
    categories = categories if categories is not None else list(CATEGORIES.values())
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('outsmart schema migration'))")
        tables, indexes = read_catalog(cur)
        _upgrade(cur, tables, categories)
        enrichments = [e for e in dict.fromkeys(c.enrichment for c in categories) if e is not None]
        for ddl in [*STAGE_DDL, *(e.ddl for e in enrichments)]:
            if not ddl_objects(ddl) <= set(tables) | indexes:
                cur.execute(ddl)
        # Columns added later: to the import log, and to an enrichment's own tables (e.g. the price mirror).
        for added in [import_log.ADDED_COLUMNS, *(e.added_columns for e in enrichments)]:
            for table, columns in added.items():
                for name, sql_type in columns.items():
                    if name not in tables.get(table, set(columns)):
                        cur.execute(f"ALTER TABLE {SCHEMA}.{table} ADD COLUMN IF NOT EXISTS {name} {sql_type}")
        for spec in [t for cat in categories for t in (cat.table, *(d.table for d in cat.dependents))]:
            for statement in table_ddl(spec, tables.get(spec.name), indexes):
                cur.execute(statement)
    conn.commit()


def _upgrade(cur, tables: dict[str, set[str]], categories: list[Category]) -> None:
    """A database written before #19: its marks were named after their role ('sync', 'lines', 'prices', a related
    table's name) in a column named `watermark`, next to `*_deleted` rows that nothing has read since #13; and the
    division's currency was kept twice (`exact_division` beside `exact_divisions`). Both are folded in place,
    without a re-import: the marks keep their values under the stream's name."""
    if "watermark" in tables.get("import_state", set()):
        cur.execute(f"ALTER TABLE {derive.MARKS} RENAME COLUMN watermark TO landed_seq")
        cur.execute(f"DELETE FROM {derive.MARKS} WHERE right(stream, 8) = '_deleted'")
        for category, role, stream in _old_mark_names(categories):
            cur.execute(
                f"UPDATE {derive.MARKS} SET stream = %s WHERE category = %s AND stream = %s", (stream, category, role)
            )
        tables["import_state"] = (tables["import_state"] - {"watermark"}) | {"landed_seq"}
    if "exact_division" in tables:
        if "exact_divisions" in tables:
            cur.execute(
                f"UPDATE {resync.DIVISIONS} d SET currency = o.currency FROM {SCHEMA}.exact_division o "
                f"WHERE o.division = d.division AND d.currency IS NULL"
            )
        cur.execute(f"DROP TABLE {SCHEMA}.exact_division")
        del tables["exact_division"]


def _old_mark_names(categories: list[Category]) -> list[tuple[str, str, str]]:
    """(category, the mark's old name, its stream) for every mark an older version wrote."""
    out = []
    for category in categories:
        out.append((category.name, "sync", category.source.endpoint))
        for spec in category.dependents:
            out.append((category.name, "lines" if spec is category.lines else spec.table.name, spec.source.endpoint))
        if category.enrichment is not None:
            out.append((category.name, "prices", category.enrichment.source.endpoint))
    return out


def table_ddl(spec: TableSpec, columns: set[str] | None = None, indexes: set[str] | None = None) -> list[str]:
    """The statements that bring `spec`'s table up to date, given the columns and index names it already has
    (None: the table does not exist yet)."""
    t = f"{SCHEMA}.{quote(spec.name)}"
    ddl = []
    if columns is None:
        cols = ",\n    ".join(f"{quote(c.name)} {c.sql_type}" for c in spec.columns)
        ddl.append(f"""CREATE TABLE IF NOT EXISTS {t} (
    id bigserial PRIMARY KEY,
    {cols},
    deleted_at timestamptz,
    imported_at timestamptz NOT NULL DEFAULT now()
);""")
        columns = {c.name for c in spec.columns}
    # Columns added to the registry later arrive through ADD COLUMN: the migration is additive.
    ddl += [
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {quote(c.name)} {c.sql_type};"
        for c in spec.columns
        if c.name not in columns
    ]
    for col in dict.fromkeys([spec.merge_key, spec.identity]):
        name = f"{spec.name}_{col}_key"
        if name not in (indexes or set()):
            ddl.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {t} ({quote(col)});")
    return ddl
