"""What every stage that writes the OutSmart database shares: the schema's name, quoting, COPY, the catalog.

The lowest layer of the import core: it imports no other stage. pyarrow is imported inside `copy_frame`, not at the
top: the registry holds objects (an enrichment) that use this module, and the registry is read when Airflow parses
the DAG file, which must stay free of pandas and pyarrow.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = "outsmart"


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def column_list(names, prefix: str = "") -> str:
    """A quoted, comma-separated column list, each name prefixed (e.g. 'x.')."""
    return ", ".join(prefix + quote(c) for c in names)


def ddl_objects(ddl: str) -> set[str]:
    """The tables and indexes a DDL script creates, read from it so that the two cannot drift apart."""
    return set(re.findall(rf"(?:TABLE|INDEX) IF NOT EXISTS (?:{SCHEMA}\.)?(\w+)", ddl))


def read_catalog(cur) -> tuple[dict[str, set[str]], set[str]]:
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


def copy_frame(cur, table: str, frame: pd.DataFrame, cols: list[str]) -> None:
    """COPY a DataFrame's `cols` into `table`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    # pyarrow quotes every string and writes NULL as an empty unquoted field: '' stays '', a lone CR is safe.
    pacsv.write_csv(
        pa.Table.from_pandas(frame[cols], preserve_index=False),
        buf,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    with cur.copy(f"COPY {table} ({', '.join(quote(c) for c in cols)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buf.getvalue())


def copy_deleted(cur, table: str, rows: list[tuple[str, int | None]]) -> None:
    """COPY (Exact ID, Timestamp) deletions into a staging table with columns exact_id, exact_timestamp."""
    if rows:
        with cur.copy(f"COPY {table} (exact_id, exact_timestamp) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def fetch_one(cur, sql: str, params=None):
    """The first column of the first row."""
    cur.execute(sql, params)
    return cur.fetchone()[0]
