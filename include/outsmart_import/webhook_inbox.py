"""The durable inbox of Exact's webhook events: written before Exact gets its 2xx, drained into Airflow asset events.

Why an inbox: Exact retries a delivery that gets no 2xx (hookdeck's notes; not documented by Exact) and gives up on
it some time later, so once we answer 2xx the event is ours to keep. It is committed here before the answer, so a
crash after the answer loses nothing; the relay (plugins/exact_online_webhooks/relay.py) then turns unrelayed rows
into asset events and marks them relayed only after Airflow committed those, so a crash in between relays a row
twice (one more incremental run that finds nothing) but never loses one.

Deduplicated on (company, topic, key, action, EventCreatedOn): Exact's duplicates (or its retries of a delivery we
did answer) are one row. Relayed rows are kept RETENTION_DAYS (the page's "last event per stream"; the dedup window).
In the deployment's own database (schema exact_online, beside the token chains), one for every company.

Only psycopg-style DB-API calls here (a `connect()` returning a connection); no Airflow, no Exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INBOX = "exact_online.webhook_inbox"
RETENTION_DAYS = 7

DDL = f"""
CREATE SCHEMA IF NOT EXISTS exact_online;
CREATE TABLE IF NOT EXISTS {INBOX} (
    id               bigserial PRIMARY KEY,
    company          text NOT NULL,
    division         integer NOT NULL,
    topic            text NOT NULL,
    action           text NOT NULL,
    record_key       text NOT NULL,
    event_created_on text NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    relayed_at       timestamptz,
    UNIQUE (company, topic, record_key, action, event_created_on)
);
CREATE INDEX IF NOT EXISTS webhook_inbox_unrelayed ON {INBOX} (id) WHERE relayed_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_inbox_latest ON {INBOX} (company, topic, received_at);
CREATE INDEX IF NOT EXISTS webhook_inbox_relayed ON {INBOX} (relayed_at);
"""

_READY: set[tuple] = set()  # the databases (host, port, name) known to have the inbox: its DDL once per process


@dataclass(frozen=True)
class InboxEvent:
    id: int
    company: str
    topic: str
    action: str
    record_key: str
    event_created_on: str


def ensure_inbox(conn: Any) -> None:
    """Create the inbox if missing (idempotent; serialised, as two processes may start at once)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('exact_online.webhook_inbox schema'))")
        cur.execute(DDL)
    conn.commit()


def _open(connect: Callable[[], Any]) -> Any:
    conn = connect()
    where = (conn.info.host, conn.info.port, conn.info.dbname)
    if where not in _READY:
        ensure_inbox(conn)
        _READY.add(where)
    return conn


def record_event(
    connect: Callable[[], Any], company: str, division: int, topic: str, action: str, key: str, created_on: str
) -> bool:
    """Keep one event, committed; False if the inbox already had it (a duplicate: nothing changes)."""
    conn = _open(connect)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {INBOX} (company, division, topic, action, record_key, event_created_on) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                (company, division, topic, action, key, created_on),
            )
            new = cur.fetchone() is not None
        conn.commit()
        return new
    finally:
        conn.close()


def claim_unrelayed(conn: Any, limit: int = 5000) -> list[InboxEvent]:
    """The oldest unrelayed events, locked in the caller's open transaction (another relay skips them); the caller
    marks them relayed (`mark_relayed`) and commits, or rolls back and they stay for the next relay."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id, company, topic, action, record_key, event_created_on FROM {INBOX} "
            "WHERE relayed_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        )
        return [InboxEvent(*row) for row in cur.fetchall()]


def held_back(conn: Any, seconds: float) -> dict[tuple[str, str], float]:
    """The debounce (relay.py): per (company, topic) relayed less than `seconds` ago, the seconds left until its
    events may be relayed again. In the inbox itself, so it holds across api-server workers and restarts."""
    if seconds <= 0:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT company, topic, extract(epoch FROM max(relayed_at) + make_interval(secs => %s) - now()) "
            f"FROM {INBOX} WHERE relayed_at > now() - make_interval(secs => %s) GROUP BY company, topic",
            (seconds, seconds),
        )
        return {(company, topic): float(left) for company, topic, left in cur.fetchall()}


def mark_relayed(conn: Any, ids: list[int]) -> None:
    """Mark the events relayed and drop the relayed ones past the retention (the caller commits)."""
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {INBOX} SET relayed_at = now() WHERE id = ANY(%s)", (ids,))
        cur.execute(
            f"DELETE FROM {INBOX} WHERE relayed_at < now() - make_interval(days => %s)",
            (RETENTION_DAYS,),
        )


def open_inbox(connect: Callable[[], Any]) -> Any:
    """A connection with the inbox in place (the relay's transaction)."""
    return _open(connect)


def topic_overview(connect: Callable[[], Any]) -> list[dict]:
    """Per company and topic: the last event received, Exact's time of it, events in 24 h, how many wait."""
    conn = _open(connect)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT company, topic, max(received_at), max(event_created_on), "
                "count(*) FILTER (WHERE received_at > now() - interval '1 day'), "
                f"count(*) FILTER (WHERE relayed_at IS NULL) FROM {INBOX} GROUP BY company, topic "
                "ORDER BY company, topic"
            )
            rows = cur.fetchall()
        conn.commit()
    finally:
        conn.close()
    keys = ("company", "topic", "last_received_at", "last_event_created_on", "events_24h", "unrelayed")
    return [dict(zip(keys, row, strict=True)) for row in rows]
