"""Resync (resync.py) against a real PostgreSQL: Exact moved the division, or sync/Deleted went unread longer than
Exact keeps it; the division's check once a day, and the full reads and full derives that follow."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exact_online.exceptions import ExactApiError
from include.outsmart_import.catalogue import DELETED, STREAMS, all_streams
from include.outsmart_import.landing import Landing
from include.outsmart_import.resync import (
    DELETION_LOG_DAYS,
    DELETIONS_EXPIRED,
    DIVISION_MOVED,
    RESYNCS,
    check_resync,
    pending_resync,
)
from include.outsmart_import.schema import ensure_schema
from tests.include.outsmart_import.test_landing import ACCOUNTS, FakeExact, account, gid, landed


@pytest.fixture
def land(target_db):
    """A Landing for an Exact client, on the full schema; `land.streams`: every stream."""
    with target_db.connect() as conn:
        ensure_schema(conn)
    streams = all_streams()

    def make(exact: FakeExact) -> Landing:
        return Landing(exact, target_db.connect, exact.division, streams)

    make.streams = streams  # type: ignore[attr-defined]
    return make


def check(landing: Landing) -> str | None:
    """The resync stage as the runner calls it: handed the division."""
    return check_resync(landing.connect, landing.exact, landing.division)


@dataclass
class MovingExact(FakeExact):
    """A FakeExact with a division and system/Divisions (`move_date` as Exact sends it, `/Date(ms)/`)."""

    division: int = 3_000_001
    move_date: str | None = None
    division_error: Exception | None = None
    asked_division: int = 0

    def division_details(self):
        self.asked_division += 1
        if self.division_error is not None:
            raise self.division_error
        return {"Code": self.division, "DivisionMoveDate": self.move_date}


def test_a_division_move_is_checked_once_a_day_and_reads_everything_again(land, target_db):
    exact = MovingExact({ACCOUNTS: [account(1, 500), account(2, 501)]})
    landing = land(exact)
    assert check(landing) is None and exact.asked_division == 1  # first run: asked, never moved
    landing.refresh(land.streams[ACCOUNTS], reuse_window=0)
    derived_at = target_db.scalar("SELECT now()")
    assert check(landing) is None and exact.asked_division == 1  # asked once a day, not on every run
    # Exact moves the division: DivisionMoveDate is set, Timestamps start again from small numbers.
    exact.move_date = "/Date(1795000000000)/"
    exact.records[ACCOUNTS] = [account(1, 7, "Renamed after the move"), account(2, 8)]
    assert landing.refresh(land.streams[ACCOUNTS], reuse_window=0).records == 0  # Timestamp gt 501: nothing, forever
    target_db.query("UPDATE outsmart.exact_divisions SET checked_at = checked_at - interval '25 hours' RETURNING 1")
    check(landing)
    assert exact.asked_division == 2
    assert target_db.query(f"SELECT division, reason FROM {RESYNCS}") == [(exact.division, DIVISION_MOVED)]
    read = landing.refresh(land.streams[ACCOUNTS], reuse_window=300)  # not reused: a resync is due
    assert (read.action, read.resync, read.records, read.watermark_after) == ("full_read", DIVISION_MOVED, 2, 8)
    # The new versions replace the landed ones, although their Timestamps are lower.
    assert [(k, ts) for k, ts, _, _ in landed(target_db)] == [(gid(1), 7), (gid(2), 8)]
    assert landing.refresh(land.streams[ACCOUNTS], reuse_window=0).action == "read"  # once only
    conn = target_db.connect()
    resync = pending_resync(conn, exact.division, derived_at)
    assert resync is not None and resync.moved and "DivisionMoveDate" in resync.notes
    assert pending_resync(conn, exact.division, target_db.scalar("SELECT now()")) is None


def test_a_division_check_refused_by_exact_is_noted_and_not_repeated_that_day(land, target_db):
    exact = MovingExact(division_error=ExactApiError(403, "system/Divisions", "Forbidden", "NoDivisionAccess"))
    landing = land(exact)
    note = check(landing)
    assert note is not None and "system/Divisions" in note and "Forbidden" in note
    assert check(landing) is None and exact.asked_division == 1


def test_sync_deleted_unread_longer_than_exact_keeps_it_reads_everything_again(land, target_db):
    exact = MovingExact({ACCOUNTS: [account(1, 10), account(2, 11)]})
    landing = land(exact)
    landing.refresh(land.streams[ACCOUNTS], reuse_window=0)
    landing.refresh(land.streams[DELETED], reuse_window=0)
    # Within Exact's two months: nothing to do.
    target_db.query(f"UPDATE {STREAMS} SET refreshed_at = now() - interval '{DELETION_LOG_DAYS - 1} days' RETURNING 1")
    check(landing)
    assert target_db.scalar(f"SELECT count(*) FROM {RESYNCS}") == 0
    # Longer: account 2 was deleted meanwhile and its deletion has left Exact's log.
    target_db.query(f"UPDATE {STREAMS} SET refreshed_at = refreshed_at - interval '30 days' RETURNING 1")
    exact.records[ACCOUNTS].pop(1)
    check(landing)
    check(landing)  # noted once, until sync/Deleted is read again
    assert target_db.query(f"SELECT reason FROM {RESYNCS}") == [(DELETIONS_EXPIRED,)]
    read = landing.refresh(land.streams[ACCOUNTS], reuse_window=300)
    assert (read.action, read.resync) == ("full_read", DELETIONS_EXPIRED)
    assert [(k, d) for k, _, d, _ in landed(target_db)] == [(gid(1), False), (gid(2), True)]
    deletions = landing.refresh(land.streams[DELETED], reuse_window=0)
    assert (deletions.action, exact.asked[-1]) == ("full_read", (DELETED, (), 1))
    check(landing)
    assert target_db.scalar(f"SELECT count(*) FROM {RESYNCS}") == 1
