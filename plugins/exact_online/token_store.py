"""Where the rotating Exact Online token chain lives between task runs.

Why Postgres and not an Airflow Variable: Exact rotates the refresh token on every refresh and refuses the old
one, so two workers that refresh at once lose the chain unless the read-refresh-write is serialised. Airflow 3
forbids tasks to touch its metadata database, and Variables (written through the Execution API) offer no lock.
A row in a Postgres database that every worker reaches (by default the OutSmart target database) gives us a
real cross-process, cross-host lock (`pg_advisory_xact_lock`), a read after the lock, and a commit of the new
pair before it is used. The store knows nothing about OutSmart: it is given a way to connect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS exact_online;
CREATE TABLE IF NOT EXISTS exact_online.oauth_token_chain (
    chain_key              text PRIMARY KEY,
    seed_hash              text NOT NULL,
    refresh_token          text NOT NULL,
    refresh_obtained_at    double precision NOT NULL,
    access_token           text,
    access_obtained_at     double precision,
    access_expires_at      double precision,
    refreshes              bigint NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class TokenRecord:
    seed_hash: str  # sha256 of the refresh token in the connection that started this chain
    refresh_token: str
    refresh_obtained_at: float  # epoch seconds; a refresh token dies 30 days after this if unused
    access_token: str | None = None
    access_obtained_at: float | None = None
    access_expires_at: float | None = None
    refreshes: int = 0

    def __repr__(self) -> str:  # never print tokens
        return f"TokenRecord(refreshes={self.refreshes}, access_expires_at={self.access_expires_at})"


def seed_hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class DbConnection(Protocol):
    """What the stores use of a DB-API connection (psycopg 3 or psycopg2): they work with either."""

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class TokenStore(Protocol):
    def peek(self, key: str) -> TokenRecord | None:
        """The current record, read without a lock (may be stale by the time it is used)."""

    @contextmanager
    def locked(self, key: str) -> Iterator[tuple[TokenRecord | None, Callable[[TokenRecord], None]]]:
        """Hold the chain's exclusive lock; yield the record as read *after* taking it, and a `save` that
        commits a new record at once (durable before the caller uses the tokens in it)."""

    def discard(self, key: str) -> None:
        """Remove the chain (it moved to another key). Call it while holding `locked(key)`: it takes no lock itself,
        so that it does not wait for the caller's own lock."""


class PostgresTokenStore:
    """Token chain rows in `exact_online.oauth_token_chain`, locked with a transaction-level advisory lock."""

    def __init__(self, connect: Callable[[], DbConnection]):
        # `connect` returns a new DB-API connection (psycopg 3 or psycopg2) to a database all workers share.
        self._connect = connect
        self._schema_ready = False

    @classmethod
    def from_conninfo(cls, conninfo: str) -> PostgresTokenStore:
        import psycopg

        return cls(lambda: psycopg.connect(conninfo))

    @classmethod
    def from_airflow_connection(cls, postgres_conn_id: str) -> PostgresTokenStore:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        # get_conn() is a psycopg2 or psycopg 3 connection, both with rollback(); the provider's return type (its
        # CompatConnection protocol) merely leaves rollback out.
        return cls(lambda: cast(DbConnection, PostgresHook(postgres_conn_id=postgres_conn_id).get_conn()))

    def _ensure_schema(self, conn: DbConnection) -> None:
        if self._schema_ready:
            return
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('exact_online.oauth_token_chain schema'))")
            cur.execute(SCHEMA_SQL)
        conn.commit()
        self._schema_ready = True

    _COLUMNS = (
        "seed_hash",
        "refresh_token",
        "refresh_obtained_at",
        "access_token",
        "access_obtained_at",
        "access_expires_at",
        "refreshes",
    )

    def _read(self, cur, key: str) -> TokenRecord | None:
        cur.execute(
            f"SELECT {', '.join(self._COLUMNS)} FROM exact_online.oauth_token_chain WHERE chain_key = %s", (key,)
        )
        row = cur.fetchone()
        return TokenRecord(*row) if row else None

    def peek(self, key: str) -> TokenRecord | None:
        conn = self._connect()
        try:
            self._ensure_schema(conn)
            with conn.cursor() as cur:
                rec = self._read(cur, key)
            conn.rollback()
            return rec
        finally:
            conn.close()

    @contextmanager
    def locked(self, key: str):
        conn = self._connect()
        try:
            self._ensure_schema(conn)
            cur = conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("exact_online token chain " + key,))
            record = self._read(cur, key)  # read *after* the lock: a peer may have just refreshed

            def save(new: TokenRecord) -> None:
                cur.execute(
                    f"""INSERT INTO exact_online.oauth_token_chain (chain_key, {", ".join(self._COLUMNS)}, updated_at)
                        VALUES (%s, {", ".join(["%s"] * len(self._COLUMNS))}, now())
                        ON CONFLICT (chain_key) DO UPDATE SET
                        {", ".join(f"{c} = excluded.{c}" for c in self._COLUMNS)}, updated_at = now()""",
                    (key, *(getattr(new, c) for c in self._COLUMNS)),
                )
                conn.commit()  # durable now; this also ends the lock, which is fine: the caller is done with it

            yield record, save
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def discard(self, key: str) -> None:
        conn = self._connect()
        try:
            self._ensure_schema(conn)
            with conn.cursor() as cur:
                cur.execute("DELETE FROM exact_online.oauth_token_chain WHERE chain_key = %s", (key,))
            conn.commit()
        finally:
            conn.close()


class MemoryTokenStore:
    """A process-local store for unit tests (no cross-process safety)."""

    def __init__(self):
        import threading

        self._rows: dict[str, TokenRecord] = {}
        self._lock = threading.RLock()

    def peek(self, key: str) -> TokenRecord | None:
        return self._rows.get(key)

    @contextmanager
    def locked(self, key: str):
        with self._lock:

            def save(new: TokenRecord) -> None:
                self._rows[key] = replace(new)

            yield self._rows.get(key), save

    def discard(self, key: str) -> None:
        with self._lock:
            self._rows.pop(key, None)
