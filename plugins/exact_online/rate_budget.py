"""A call budget per Exact division shared by every process that calls Exact (all 14 DAGs, manual runs, tests).

Exact counts 60 calls a minute and 5,000 a day per app and division, whoever makes them. Each hook learns the
window and what is left from the `X-RateLimit-*` headers; this store shares that knowledge: before a call a
process takes one call from the current window's budget (under a row lock), and waits for the next window when
it is spent, instead of finding out through a 429. The `exact_api` pool serialises the DAG tasks in production;
this budget also covers what runs outside the pool (a manual `airflow tasks test`, a second Airflow, a script).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from exact_online.token_store import DbConnection

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS exact_online;
CREATE TABLE IF NOT EXISTS exact_online.rate_budget (
    division   bigint NOT NULL,
    scope      text NOT NULL,      -- 'minute' or 'day'
    reset_ms   bigint NOT NULL,    -- when this window ends (epoch ms, from X-RateLimit-*-Reset)
    call_limit integer NOT NULL,
    used       integer NOT NULL,
    window_ms  bigint,                 -- learnt from consecutive server resets (Exact: a minute)
    server_reset_ms bigint NOT NULL,   -- the last reset the server announced
    PRIMARY KEY (division, scope)
);
"""


class PostgresRateBudget:
    def __init__(self, connect: Callable[[], DbConnection], *, clock: Callable[[], float] = time.time):
        self._connect = connect
        self._conn: DbConnection | None = None
        self._clock = clock

    @classmethod
    def from_conninfo(cls, conninfo: str) -> PostgresRateBudget:
        import psycopg

        return cls(lambda: psycopg.connect(conninfo))

    def _db(self) -> DbConnection:
        if self._conn is None or getattr(self._conn, "closed", False):
            self._conn = self._connect()
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('exact_online.rate_budget schema'))")
                cur.execute(SCHEMA_SQL)
            self._conn.commit()
        return self._conn

    def acquire(self, division: int) -> float | None:
        """Take one call. Returns None when taken, or the seconds to wait before asking again.

        Raises nothing: the daily budget is checked by `daily_spent`."""
        conn = self._db()
        now_ms = self._clock() * 1000
        with conn.cursor() as cur:
            cur.execute(
                "SELECT reset_ms, call_limit, used, window_ms FROM exact_online.rate_budget "
                "WHERE division = %s AND scope = 'minute' FOR UPDATE",
                (division,),
            )
            row = cur.fetchone()
            if row is None:
                conn.rollback()
                return None  # no known window: the first call's headers will open one
            reset_ms, limit, used, window_ms = row
            if reset_ms <= now_ms and not window_ms:
                conn.rollback()
                return None  # window length not learnt yet: the call's headers will tell
            if reset_ms <= now_ms:
                # The window we knew has ended: open the next one ourselves, so that processes do not all rush in
                # before any of them has seen the new window's headers.
                periods = int((now_ms - reset_ms) // window_ms) + 1
                cur.execute(
                    "UPDATE exact_online.rate_budget SET reset_ms = %s, used = 1 "
                    "WHERE division = %s AND scope = 'minute'",
                    (reset_ms + periods * window_ms, division),
                )
                conn.commit()
                return None
            if used < limit:
                cur.execute(
                    "UPDATE exact_online.rate_budget SET used = used + 1 WHERE division = %s AND scope = 'minute'",
                    (division,),
                )
                conn.commit()
                return None
        conn.rollback()
        return (reset_ms - now_ms) / 1000 + 0.05

    def daily_spent(self, division: int) -> int | None:
        """The reset (epoch ms) of a spent daily budget, or None while calls are left."""
        conn = self._db()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT reset_ms, call_limit, used FROM exact_online.rate_budget WHERE division = %s AND scope = 'day'",
                (division,),
            )
            row = cur.fetchone()
        conn.rollback()
        if row and row[0] > self._clock() * 1000 and row[2] >= row[1]:
            return row[0]
        return None

    def observe(
        self, division: int, scope: str, reset_ms: int | None, limit: int | None, remaining: int | None
    ) -> None:
        """Record what Exact's headers said about a window (the server's count wins over ours)."""
        if reset_ms is None or limit is None or remaining is None:
            return
        conn = self._db()
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO exact_online.rate_budget (division, scope, reset_ms, call_limit, used, server_reset_ms)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (division, scope) DO UPDATE SET
                     used = CASE WHEN exact_online.rate_budget.reset_ms = excluded.reset_ms
                                 THEN greatest(exact_online.rate_budget.used, excluded.used) ELSE excluded.used END,
                     window_ms = CASE WHEN excluded.reset_ms > exact_online.rate_budget.server_reset_ms
                                      THEN least(coalesce(exact_online.rate_budget.window_ms,
                                                          excluded.reset_ms - exact_online.rate_budget.server_reset_ms),
                                                 excluded.reset_ms - exact_online.rate_budget.server_reset_ms)
                                      ELSE exact_online.rate_budget.window_ms END,
                     server_reset_ms = greatest(exact_online.rate_budget.server_reset_ms, excluded.reset_ms),
                     reset_ms = excluded.reset_ms,  -- the server's window wins over our prediction
                     call_limit = excluded.call_limit""",
                (division, scope, int(reset_ms), int(limit), int(limit) - int(remaining), int(reset_ms)),
            )
        conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
