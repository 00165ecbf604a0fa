"""#14 item 8: Exact can write numbers, booleans and the Int64 Timestamp as JSON text ("12.50", "true", "1",
"123456"). With the sandbox writing them so on every endpoint, an import of all 14 categories gives exactly the rows
it gives with JSON numbers and booleans, and rejects nothing."""

from __future__ import annotations

import os

import psycopg

from include.outsmart_import.registry import CATEGORIES
from tests.helpers.e2e import all_enabled, dump_table, run_dag, sandbox_stats, second_database, target_tables


def test_numbers_booleans_and_timestamps_as_text_import_the_same_rows(
    dags, sandbox_factory, target_db, settings_var, monkeypatch, figure
):
    settings_var(all_enabled())
    sandbox_factory(size=300, seed=81)  # Exact as usual: JSON numbers and booleans
    for name in CATEGORIES:
        run_dag(dags, name)
    native_conninfo = target_db.conninfo
    # The same division (same seed) in a second sandbox that writes every number, boolean and Timestamp as text.
    text_conninfo = second_database(target_db, monkeypatch, f"as_text_{os.getpid()}")
    as_text = sandbox_factory(size=300, seed=81, types_as_text=True)
    for name in CATEGORIES:
        run_dag(dags, name)
    sent = [r for r in sandbox_stats(as_text)["requests"] if r[1].startswith("/api/v1/")]
    assert sent  # the second import really read from the sandbox that writes text
    compared = 0
    for table in target_tables():
        native, text = dump_table(native_conninfo, table), dump_table(text_conninfo, table)
        assert text == native and native, table
        compared += len(native)
    with psycopg.connect(text_conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM outsmart.import_rejects").fetchone()[0] == 0
    figure(f"types as text: {compared} rows in {len(target_tables())} tables equal to the import of JSON numbers")
