"""A changed filter reaches the records already in Exact (issue #13): widening relation types or item groups brings
in the records the old filter dropped, narrowing keeps the rows that leave the filter (the product's rule), and
neither reads Exact in full. "Equals a fresh import" is checked literally: the same runner, with the new settings,
into an empty database of its own (same sandbox, same token chain)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.settings import parse_settings
from include.outsmart_import.target_db import conninfo_from_airflow_json
from tests.helpers.e2e import run_dag


def rows(conninfo: str, table: str) -> dict[str, tuple]:
    """{code: every declared column, and whether the row is deleted}: what a user sees of the table."""
    cols = ", ".join(f'"{c}"' for c in CATEGORIES[table].table.column_names)
    with psycopg.connect(conninfo) as conn:
        found = conn.execute(f"SELECT code, {cols}, deleted_at IS NULL FROM outsmart.{table}").fetchall()
    return {r[0]: r[1:] for r in found}


def fresh_import(pg_server, target_db, name: str, settings: dict) -> dict[str, tuple]:
    """The category imported with `settings` into a new, empty database: the same runner, hook and sandbox (the
    hook's token chain stays in the test's database, so the sandbox's rotating refresh token keeps working)."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import PostgresTokenStore
    from include.outsmart_import.runner import run_category

    db = "fresh_" + uuid.uuid4().hex[:10]
    with psycopg.connect(conninfo_from_airflow_json(pg_server), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    conninfo = conninfo_from_airflow_json({**pg_server, "schema": db})
    hook = ExactOnlineHook(token_store=PostgresTokenStore(target_db.connect))
    summary = run_category(name, parse_settings(settings), hook, lambda: psycopg.connect(conninfo))
    assert summary.status == "success" and summary.derive == "full: first run"
    return rows(conninfo, name)


def last(target_db, name: str) -> dict:
    cols = ("status", "api_calls", "derive", "inserted", "updated", "filtered_out")
    row = target_db.query(
        f"SELECT {', '.join(cols)} FROM outsmart.import_log WHERE category = %s ORDER BY id DESC LIMIT 1", (name,)
    )[0]
    return dict(zip(cols, row, strict=True))


CASES = [
    ("relations", "relation_types", ["customer"], ["customer", "supplier", "prospect"]),
    ("materials", "item_groups", ["ELEK"], []),  # one item group, then all of them (empty = all)
]


@pytest.mark.parametrize(("name", "key", "narrow", "wide"), CASES, ids=[c[0] for c in CASES])
def test_widening_and_narrowing_a_filter_reaches_existing_records(
    dags, sandbox_factory, target_db, settings_var, pg_server, figure, name, key, narrow, wide
):
    sandbox_factory(size=600, seed=41)

    def settings(value):
        return {"categories": {name: {"enabled": True, key: value}}}

    settings_var(settings(narrow))
    run_dag(dags, name)
    first = rows(target_db.conninfo, name)
    run_dag(dags, name)  # nothing changed: what an ordinary scheduled run costs
    unchanged = last(target_db, name)
    assert unchanged["derive"] == "incremental" and unchanged["inserted"] == unchanged["updated"] == 0

    # Widen: the records the old filter dropped come in, without a full read of Exact.
    settings_var(settings(wide))
    run_dag(dags, name)
    widened = last(target_db, name)
    wide_rows = rows(target_db.conninfo, name)
    assert widened["derive"] == "full: settings changed"
    assert wide_rows == fresh_import(pg_server, target_db, name, settings(wide))
    assert widened["inserted"] == len(wide_rows) - len(first) > 0 and widened["updated"] == 0
    assert widened["api_calls"] <= unchanged["api_calls"]

    # Narrow again: the rows that pass equal a fresh import; the rows that left the filter stay as they were.
    settings_var(settings(narrow))
    run_dag(dags, name)
    narrowed = last(target_db, name)
    narrow_rows = rows(target_db.conninfo, name)
    fresh = fresh_import(pg_server, target_db, name, settings(narrow))
    assert narrowed["derive"] == "full: settings changed" and narrowed["api_calls"] <= unchanged["api_calls"]
    assert {c: r for c, r in narrow_rows.items() if c in fresh} == fresh
    assert {c: r for c, r in narrow_rows.items() if c not in fresh} == {
        c: r for c, r in wide_rows.items() if c not in fresh
    }
    assert (narrowed["inserted"], narrowed["updated"]) == (0, 0)
    figure(
        f"{name} {key}: {narrow} -> {len(first)} rows; widened to {wide or 'all'} -> {len(wide_rows)} rows "
        f"(= a fresh import) in {widened['api_calls']} API calls; narrowed back: {len(fresh)} pass, "
        f"{len(narrow_rows) - len(fresh)} kept, {narrowed['api_calls']} calls; an unchanged run: "
        f"{unchanged['api_calls']} calls"
    )


def test_the_first_run_of_a_day_rederives_flags_that_follow_from_dates(sandbox_factory, target_db):
    """A relation whose end date passes stops being active without changing in Exact: the first run of a day
    re-derives from the landed copy (no extra Exact call), so its flag follows."""
    import datetime as dt

    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import PostgresTokenStore
    from include.exact_sandbox.data import update_record
    from include.outsmart_import.runner import run_category
    from tests.helpers.e2e import TODAY

    server = sandbox_factory(size=200, seed=43)
    div = server.state.division
    ending = next(a for a in div.accounts.values() if a["Status"] == "C" and a["EndDate"] is None)
    update_record(div, "accounts", ending, {"EndDate": TODAY}, now=dt.datetime.now(dt.UTC))
    settings = parse_settings({"categories": {"relations": {"enabled": True, "include_inactive": True}}})
    hook = ExactOnlineHook(token_store=PostgresTokenStore(target_db.connect))

    def run(today):
        return run_category("relations", settings, hook, target_db.connect, today=today)

    def active():
        return target_db.scalar("SELECT is_active FROM outsmart.relations WHERE exact_id = %s", (ending["ID"],))

    first = run(TODAY)
    assert first.derive == "full: first run" and active() is True
    same_day = run(TODAY)
    assert same_day.derive == "incremental" and (same_day.fetched, same_day.updated) == (0, 0)
    next_day = run(TODAY + dt.timedelta(days=1))
    assert next_day.derive == "full: new day" and active() is False
    assert next_day.updated == 1 and next_day.api_calls <= same_day.api_calls
