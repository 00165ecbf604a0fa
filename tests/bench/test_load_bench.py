"""The load benchmark's own checks (not its timings): every method's table is compared with the expected one,
and a method that gets it wrong is marked so."""

from __future__ import annotations

import pandas as pd

from bench import load as bench_load


def _empty_becomes_null(db, df: pd.DataFrame) -> None:
    """A typical fast-but-wrong load: '' stored as NULL (what naive CSV COPY does)."""
    bench_load._ours(db, df.replace({"": None}))


def test_every_method_is_checked_and_a_wrong_one_is_marked(pg_server):
    methods = [bench_load.METHODS[0], bench_load.METHODS[1], ("wrong: '' becomes NULL", _empty_becomes_null, True)]
    rows = bench_load.run_load_benchmark(pg_server, 300, repeat=1, methods=methods)
    got = {r["method"]: r for r in rows}
    assert got["raw COPY -> empty target (limit)"]["correct"] == "yes"
    ours = got["ours: CategoryLoad (stage + merge)"]
    assert ours["correct"] == "yes"
    assert ours["rewritten"] == 3  # 1 % of 300 rows changed, and only those were rewritten
    assert got["wrong: '' becomes NULL"]["correct"] == "NO"


def test_insert_rows_and_to_sql_baselines_load_the_expected_table(pg_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BENCH_TARGET", "")  # the insert_rows method sets it; restored afterwards
    rows = bench_load.run_load_benchmark(
        pg_server, 200, repeat=1, methods=[bench_load.METHODS[0], *bench_load.METHODS[2:]]
    )
    assert [r["correct"] for r in rows] == ["yes", "yes", "yes"]
    assert [r["rewritten"] for r in rows[1:]] == [200, 200]  # both rewrite every row on the re-load
