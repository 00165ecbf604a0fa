"""The trace's normalisation (bench/trace.py): it masks the clock and numbers the sessions, and nothing else, so a
change to a statement's text still shows. The full run (two trees, four rounds) is `python -m bench.trace`."""

from __future__ import annotations

from bench import trace

LOG = """\
|6751.1|LOG:  checkpoint starting: time
outsmart_trace|675a1.10|LOG:  execute <unnamed>: SELECT 'trace: round 1 relations'
outsmart_trace|675a1.2a|LOG:  statement: BEGIN
outsmart_trace|675a1.2b|LOG:  execute <unnamed>: SELECT reason FROM outsmart.exact_resyncs
\t    WHERE noticed_at > $1
outsmart_trace|675a1.2b|DETAIL:  Parameters: $1 = '2026-12-07 10:31:02.123456+01', $2 = '2026-11-24'
exact_tokens|675a1.3|LOG:  statement: SELECT pg_advisory_xact_lock(hashtext('x'))
outsmart_trace|675a1.2a|LOG:  execute <unnamed>: UPDATE outsmart.import_log SET streams = $1
outsmart_trace|675a1.2a|DETAIL:  Parameters: $1 = '[{"action": "reused", "age_seconds": 2.4}]'
outsmart_trace|675a1.10|LOG:  statement: SELECT 'trace: round 1 materials'
outsmart_trace|675a1.2b|LOG:  statement: COMMIT
"""


def test_the_clock_is_masked_sessions_numbered_and_other_databases_left_out():
    assert trace.normalise(LOG) == [
        "-- round 1 relations",
        "s1|LOG:  statement: BEGIN",
        "s2|LOG:  execute <unnamed>: SELECT reason FROM outsmart.exact_resyncs",
        "s2|\t    WHERE noticed_at > $1",
        "s2|DETAIL:  Parameters: $1 = '<timestamp>', $2 = '2026-11-24'",  # a date is a value, not the clock
        "s1|LOG:  execute <unnamed>: UPDATE outsmart.import_log SET streams = $1",
        """s1|DETAIL:  Parameters: $1 = '[{"action": "reused", "age_seconds": <seconds>}]'""",
        "-- round 1 materials",
        "s1|LOG:  statement: COMMIT",  # numbered afresh per category
    ]


def test_a_changed_statement_is_a_difference_with_its_category():
    old = trace.normalise(LOG)
    new = trace.normalise(LOG.replace("SELECT reason", "select reason"))
    changed, diff = trace.trace_diff(old, new)
    assert changed == 2
    assert any(d.startswith("@@ ") and d.endswith("round 1 relations") for d in diff)
    assert trace.trace_diff(old, trace.normalise(LOG.replace("10:31:02.123456", "11:00:00")))[0] == 0


def test_clock_columns_and_stream_ages_leave_the_table_comparison():
    assert trace._without_ages({"streams": '[{"stream": "s", "age_seconds": 1.5}]'}) == {"streams": '[{"stream": "s"}]'}
    old = {"relations": ['{"code": "1"}'], "materials": []}
    assert trace.compare_tables(old, old) == []
    assert trace.compare_tables(old, {"relations": ['{"code": "2"}'], "materials": []})[0].startswith(
        "outsmart.relations: 1 rows old, 1 new"
    )
