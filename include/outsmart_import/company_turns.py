"""A fair order across companies: whoever's import of a category started longest ago goes first.

A run of a category's DAG imports many companies as mapped tasks, and the scheduler starts mapped tasks in their map
index order as pool slots and workers free up. With a fixed order, the first companies would always be served
first, and a slow one early in the list would hold back the same others every round; ordering each run by when
each company's import last started gives each its turn. Kept in the deployment's own database (beside the token
chains and call budgets), one row per category and company.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS exact_online;
CREATE TABLE IF NOT EXISTS exact_online.company_turns (
    category     text NOT NULL,
    company      text NOT NULL,
    last_started timestamptz NOT NULL,
    PRIMARY KEY (category, company)
);
"""


def _cursor_do(connect: Callable[[], Any], sql: str, params: tuple) -> list[tuple]:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('exact_online.company_turns schema'))")
            cur.execute(SCHEMA_SQL)
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def fair_order(connect: Callable[[], Any], category: str, keys: list[str]) -> list[str]:
    """`keys` with those never started first (in the given order), then by when their import last started."""
    if len(keys) < 2:
        return list(keys)
    rows = _cursor_do(
        connect,
        "SELECT company, last_started FROM exact_online.company_turns WHERE category = %s AND company = ANY(%s)",
        (category, keys),
    )
    started = dict(rows)
    position = {k: i for i, k in enumerate(keys)}
    return sorted(keys, key=lambda k: (k in started, started.get(k), position[k]))


def take_turn(connect: Callable[[], Any], category: str, company: str) -> None:
    """The company's import of the category starts now: it goes to the back of the next run's order."""
    _cursor_do(
        connect,
        "INSERT INTO exact_online.company_turns (category, company, last_started) VALUES (%s, %s, now()) "
        "ON CONFLICT (category, company) DO UPDATE SET last_started = excluded.last_started",
        (category, company),
    )
