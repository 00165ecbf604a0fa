"""Resync: when everything must be read from Exact again, noticed before the streams are refreshed.

Two causes:
- Exact moved the division to another database. That regenerates every Timestamp, so `Timestamp gt <watermark>`
  would find nothing any more, silently and forever. system/Divisions' DivisionMoveDate says when ("Please resync
  all data when this value changes because value of Timestamp is regenerated": Exact's REST reference,
  SystemSystemDivisions). Asked at most once a day per division (one call of its 5,000); the same answer gives the
  division's default currency, kept for the standard sales price.
- sync/Deleted went unread for longer than Exact keeps deletions ("the log of records deleted is saved for 2
  months": Exact's documentation of Sync/Deleted, as copied in Pi-Systems/exact-online, Sync/Deleted.php).

A resync is noted in `outsmart.exact_resyncs`: every stream last read in full before it is read in full again
(landing.py; a full read tombstones what Exact no longer has), and every category that derived before it re-derives
in full (`pending_resync`); after a move, the landed Timestamps from before it are not compared with Exact's new
ones. The runner hands this stage the division; nothing here reads it from the Exact client.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from exact_online.exceptions import ExactApiError
from include.outsmart_import.catalogue import DELETED, STREAMS
from include.outsmart_import.database import SCHEMA

DIVISIONS = f"{SCHEMA}.exact_divisions"
RESYNCS = f"{SCHEMA}.exact_resyncs"

# sync/Deleted unread for longer than this and deletions may be gone before the import saw them; 55 days keeps a
# margin on "about two months" (and on runs that take hours).
DELETION_LOG_DAYS = 55
# A move is noticed within a day, and nothing Exact changed meanwhile is lost (the full read that follows returns it).
DIVISION_CHECK_INTERVAL = dt.timedelta(days=1)
DIVISION_MOVED = "division moved"
DELETIONS_EXPIRED = "deletion log expired"

DDL = f"""
-- Per division: Exact's DivisionMoveDate and default currency as last asked (system/Divisions), and when.
CREATE TABLE IF NOT EXISTS {DIVISIONS} (
    division   bigint PRIMARY KEY,
    move_date  timestamptz,
    currency   text,
    checked_at timestamptz NOT NULL
);
-- Why everything is read again: streams fully read, and categories derived, before noticed_at do it in full.
CREATE TABLE IF NOT EXISTS {RESYNCS} (
    id         bigserial PRIMARY KEY,
    division   bigint NOT NULL,
    reason     text NOT NULL,
    detail     text NOT NULL,
    noticed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS exact_resyncs_division ON {RESYNCS} (division, noticed_at);
"""


def check_resync(connect: Callable, exact, division: int | None) -> str | None:
    """Before the category's streams are refreshed: note a resync if Exact moved `division` since it was last asked
    (system/Divisions through `exact.division_details`, at most once per DIVISION_CHECK_INTERVAL) or if sync/Deleted
    was last read more than DELETION_LOG_DAYS ago. Returns a note for the import log if system/Divisions could not
    be asked. `division` None (a client without one, as in unit tests): nothing to check."""
    if division is None:
        return None
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"exact division {division}",))
            _check_deletion_log(cur, division)
            note = _check_division_move(cur, exact, division)
        conn.commit()
        return note
    finally:
        conn.rollback()
        conn.close()


def _check_division_move(cur, exact, division: int) -> str | None:
    cur.execute(
        f"SELECT move_date, checked_at > now() - %s FROM {DIVISIONS} WHERE division = %s",
        (DIVISION_CHECK_INTERVAL, division),
    )
    known = cur.fetchone()
    ask = getattr(exact, "division_details", None)
    if (known is not None and known[1]) or ask is None:
        return None
    note, currency = None, None
    try:
        details = ask()
        moved_on = exact_moment(details.get("DivisionMoveDate")) if details else None
        currency = (details or {}).get("Currency")
    except (ExactApiError, ValueError) as exc:  # a 4xx is never retried: asked again after the interval
        note = f"Could not ask Exact whether division {division} was moved (system/Divisions: {exc}); asked again "
        note += "in a day."
        moved_on = known[0] if known else None
    if moved_on is not None and (moved_on != known[0] if known else _read_before(cur, moved_on)):
        cur.execute(
            f"INSERT INTO {RESYNCS} (division, reason, detail) VALUES (%s, %s, %s)",
            (division, DIVISION_MOVED, _moved_detail(division, moved_on)),
        )
    cur.execute(
        f"INSERT INTO {DIVISIONS} (division, move_date, currency, checked_at) VALUES (%s, %s, %s, now()) "
        f"ON CONFLICT (division) DO UPDATE SET move_date = excluded.move_date, "
        f"currency = coalesce(excluded.currency, {DIVISIONS}.currency), checked_at = now()",
        (division, moved_on, currency),
    )
    return note


def _check_deletion_log(cur, division: int) -> None:
    """sync/Deleted last read more than DELETION_LOG_DAYS ago: Exact may have purged deletions the import never saw.
    Noted once (until sync/Deleted is read again)."""
    cur.execute(
        f"SELECT extract(epoch FROM now() - s.refreshed_at) / 86400, EXISTS (SELECT 1 FROM {RESYNCS} r "
        f"WHERE r.division = %s AND r.reason = %s AND r.noticed_at > s.refreshed_at) "
        f"FROM {STREAMS} s WHERE stream = %s",
        (division, DELETIONS_EXPIRED, DELETED),
    )
    row = cur.fetchone()
    if row is None or float(row[0]) <= DELETION_LOG_DAYS or row[1]:
        return
    detail = (
        f"sync/Deleted was last read {int(row[0])} days ago and Exact keeps deletions about two months: every Exact "
        f"stream is read in full again and every category re-derives in full, soft-deleting what Exact no longer has."
    )
    cur.execute(
        f"INSERT INTO {RESYNCS} (division, reason, detail) VALUES (%s, %s, %s)", (division, DELETIONS_EXPIRED, detail)
    )


def _read_before(cur, moved_on: dt.datetime) -> bool:
    """The first time a division's DivisionMoveDate is seen, there is nothing to compare it with: was any stream last
    read in full before the move? A day's margin, because Exact does not say how precise the date is."""
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {STREAMS} WHERE full_read_at < %s)", (moved_on + dt.timedelta(days=1),))
    return bool(cur.fetchone()[0])


def _moved_detail(division: int, moved_on: dt.datetime) -> str:
    return (
        f"Exact moved division {division} to another database (DivisionMoveDate {moved_on:%Y-%m-%d %H:%M} UTC), which "
        f"regenerates every Timestamp: every Exact stream is read in full again and every category re-derives in full."
    )


def exact_moment(value) -> dt.datetime | None:
    """An Exact `/Date(ms)/` as a point in time (Amsterdam wall clock, as the transforms read it); None if empty."""
    if value in (None, ""):
        return None
    import pandas as pd  # only when Exact answered: this module is imported by every run, not at DAG parse time

    from include.outsmart_import.transforms import exact_datetime_utc

    values, invalid = exact_datetime_utc(pd.Series([value], dtype="object"))
    if bool(invalid.iloc[0]) or pd.isna(values.iloc[0]):
        raise ValueError(f"not an Exact date: {value!r}")
    return values.iloc[0].to_pydatetime()


def division_currency(conn, division: int | None) -> str | None:
    """The division's default currency as system/Divisions last said (None: not known, or no division)."""
    if division is None:
        return None
    with conn.cursor() as cur:
        cur.execute(f"SELECT currency FROM {DIVISIONS} WHERE division = %s", (division,))
        row = cur.fetchone()
    conn.commit()
    return row[0] if row else None


@dataclass(frozen=True)
class Resync:
    """What the category has to catch up on since it last derived: a full derive, and why."""

    reason: str  # DIVISION_MOVED if any of them was a move, else the latest reason
    notes: str  # their details, for the import log
    moved: bool  # Exact regenerated the Timestamps: the category's own ones no longer compare with Exact's


def pending_resync(conn, division: int | None, derived_at: dt.datetime | None) -> Resync | None:
    """The resyncs of `division` noticed after the category last derived (`derived_at`; None: never derived, so its
    first derive is full anyway, from streams landed since)."""
    if division is None or derived_at is None:
        return None
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT reason, detail FROM {RESYNCS} WHERE division = %s AND noticed_at > %s ORDER BY noticed_at",
            (division, derived_at),
        )
        rows = cur.fetchall()
    conn.commit()
    if not rows:
        return None
    moved = any(reason == DIVISION_MOVED for reason, _ in rows)
    notes = " ".join(dict.fromkeys(detail for _, detail in rows))
    return Resync(DIVISION_MOVED if moved else rows[-1][0], notes, moved)
