"""The landed copy of Exact (landing.py, catalogue.py, landed_copy.py) against a real PostgreSQL, with an
in-memory Exact client: which streams exist, when a stream is reused and when Exact is asked, that two categories
at once read a page once, and what a full read, a deletion, a broken record and a failed read do to the landed
rows."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

import pytest

from include.outsmart_import.catalogue import DELETED, STREAMS, Stream, all_streams, streams_of
from include.outsmart_import.declarations import ROWS
from include.outsmart_import.landed_copy import derive_pages
from include.outsmart_import.landing import LANDED, Landing
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.schema import ensure_schema

ACCOUNTS = "sync/CRM/Accounts"


def gid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


@dataclass
class Stats:
    api_calls: int = 0


@dataclass
class FakeExact:
    """Exact's paging as the hook yields it: `page_size` records a call, filtered on Timestamp."""

    records: dict[str, list[dict]] = field(default_factory=dict)
    deletions: list[dict] = field(default_factory=list)
    page_size: int = 2
    delay: float = 0.0
    fail_after: int | None = None  # raise on this many-th call
    stats: Stats = field(default_factory=Stats)
    asked: list[tuple] = field(default_factory=list)

    def _paged(self, rows):
        for i in range(0, max(len(rows), 1), self.page_size):
            self.stats.api_calls += 1
            if self.fail_after is not None and self.stats.api_calls >= self.fail_after:
                raise RuntimeError("Exact answered 503 three times")
            time.sleep(self.delay)
            yield [dict(r) for r in rows[i : i + self.page_size]]

    def sync(self, endpoint, select, since):
        self.asked.append((endpoint, tuple(select), since))
        return self._paged([r for r in self.records.get(endpoint, []) if int(r.get("Timestamp") or 0) > since])

    def collection(self, endpoint, select):
        self.asked.append((endpoint, tuple(select), None))
        return self._paged(self.records.get(endpoint, []))

    def deleted(self, entity_type, since):
        assert entity_type is None  # one read for every entity type
        self.asked.append((DELETED, (), since))
        return self._paged([d for d in self.deletions if d["Timestamp"] > since])


def account(i: int, ts: int, name: str | None = None) -> dict:
    return {"ID": gid(i), "Code": f"{i:>6}", "Name": name or f"Account {i}", "Timestamp": ts}


@pytest.fixture
def land(target_db):
    conn = target_db.connect()
    ensure_schema(conn)
    conn.close()
    streams = all_streams()

    def make(exact: FakeExact) -> Landing:
        return Landing(exact, target_db.connect, getattr(exact, "division", None), streams)

    make.streams = streams
    return make


def landed(target_db, stream=ACCOUNTS):
    return target_db.query(
        f"SELECT record_key, exact_timestamp, deleted_at IS NOT NULL, landed_seq FROM {LANDED} "
        f"WHERE stream = %s ORDER BY record_key",
        (stream,),
    )


def test_one_stream_per_endpoint_with_every_categorys_fields():
    streams = all_streams()
    endpoints = {c.source.endpoint for c in CATEGORIES.values()} | {
        d.source.endpoint for c in CATEGORIES.values() for d in c.dependents
    }
    assert set(streams) == endpoints | {DELETED}
    print(f"{len(CATEGORIES)} categories read {len(streams)} streams (sync/Deleted once for all entity types)")
    assert len(streams) == 19  # 16 endpoints of the categories, a relation's addresses and contacts, sync/Deleted
    items = streams["sync/Logistics/Items"]
    assert {"IsTime", "Barcode", "ItemGroupCode", "Timestamp"} <= set(items.select)
    prices = streams["sync/Logistics/SalesItemPrices"]
    # The standard sales price's fields and the price agreements' own: one read serves both.
    assert {"Item", "Account", "AccountName", "ItemCode", "ItemDescription", "Price"} <= set(prices.select)
    assert [s.name for s in streams_of(CATEGORIES["materials"])] == [
        "sync/Logistics/Items",
        "sync/Logistics/SalesItemPrices",
        DELETED,
    ]
    assert [s.name for s in streams_of(CATEGORIES["categories"])] == ["logistics/ItemGroups"]


def test_a_stream_read_moments_ago_by_another_category_is_reused(land, target_db):
    exact = FakeExact({ACCOUNTS: [account(i, 10 + i) for i in range(5)]})
    landing = land(exact)
    stream = land.streams[ACCOUNTS]
    first = landing.refresh(stream, reuse_window=300)
    assert (first.action, first.api_calls, first.records, first.landed) == ("full_read", 3, 5, 5)
    # Another category, which last derived before that read: takes the landed copy, no call.
    before = target_db.scalar("SELECT now() - interval '1 hour'")
    again = landing.refresh(stream, reuse_window=300, derived_at=before)
    assert (again.action, again.api_calls) == ("reused", 0)
    # The category that read it, run again: asks Exact (from the watermark), as does a window of 0.
    after = target_db.scalar("SELECT now()")
    own = landing.refresh(stream, reuse_window=300, derived_at=after)
    assert (own.action, own.api_calls, own.watermark_before) == ("read", 1, 14)
    assert landing.refresh(stream, reuse_window=0).action == "read"
    assert exact.asked[-1] == (ACCOUNTS, stream.select, 14)
    assert exact.stats.api_calls == 5


def test_two_categories_at_once_read_each_page_once(land, target_db):
    exact = FakeExact({ACCOUNTS: [account(i, 10 + i) for i in range(6)]}, delay=0.3)
    stream = land.streams[ACCOUNTS]
    results = []

    def refresh():
        results.append(land(exact).refresh(stream, reuse_window=300))

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"two refreshes at once: {sorted(r.action for r in results)}, {exact.stats.api_calls} calls for 3 pages")
    assert sorted(r.action for r in results) == ["full_read", "reused"]
    assert exact.stats.api_calls == 3


def test_unchanged_records_keep_their_place_and_changed_ones_move_up(land, target_db):
    exact = FakeExact({ACCOUNTS: [account(i, 10 + i) for i in range(4)]})
    landing = land(exact)
    stream = land.streams[ACCOUNTS]
    landing.refresh(stream, reuse_window=0)
    seqs = {k: s for k, _, _, s in landed(target_db)}
    mark = max(seqs.values())
    exact.records[ACCOUNTS][1] = account(1, 50, "Renamed")
    exact.records[ACCOUNTS].append(account(9, 51))
    read = landing.refresh(stream, reuse_window=0, full_read=True)  # a full read returns the unchanged ones too
    assert (read.records, read.landed) == (5, 2)
    after = {k: s for k, _, _, s in landed(target_db)}
    assert after[gid(0)] == seqs[gid(0)] and after[gid(1)] > mark and after[gid(9)] > mark
    conn = target_db.connect()
    pages = list(derive_pages(conn.cursor(), ACCOUNTS, mark))
    assert [r["ID"] for p in pages for r in p.records] == [gid(1), gid(9)]
    assert pages[0].records[0]["Name"] == "Renamed"


def test_a_full_read_tombstones_what_exact_no_longer_has(land, target_db):
    groups = "logistics/ItemGroups"
    exact = FakeExact({groups: [{"ID": gid(i), "Code": f"G{i}"} for i in range(3)]})
    landing = land(exact)
    landing.refresh(land.streams[groups], reuse_window=0)
    mark = max(s for *_, s in landed(target_db, groups))
    exact.records[groups].pop(1)
    read = landing.refresh(land.streams[groups], reuse_window=0)  # a stream without a sync endpoint: always full
    assert (read.action, read.landed) == ("full_read", 1)
    pages = list(derive_pages(target_db.connect().cursor(), groups, mark))
    assert [p.deleted for p in pages] == [[(gid(1), None)]] and pages[0].records == []


def test_deletions_are_tombstones_an_older_version_cannot_revive(land, target_db):
    exact = FakeExact({ACCOUNTS: [account(1, 10), account(2, 11)]})
    landing = land(exact)
    landing.refresh(land.streams[ACCOUNTS], reuse_window=0)
    exact.deletions = [
        {"EntityKey": gid(1).upper(), "EntityType": 2, "Timestamp": 20},
        {"EntityKey": gid(7), "EntityType": 2, "Timestamp": 21},  # never landed: a tombstone all the same
        {"EntityKey": gid(8), "EntityType": 9999, "Timestamp": 22},  # an entity type no category reads
    ]
    read = landing.refresh(land.streams[DELETED], reuse_window=0)
    assert (read.records, read.landed, read.watermark_after) == (3, 2, 22)
    assert [(k, ts, d) for k, ts, d, _ in landed(target_db)] == [
        (gid(1), 20, True),
        (gid(2), 11, False),
        (gid(7), 21, True),
    ]
    # A late page with the record's older version (Timestamp 10 < the deletion's 20) leaves it deleted.
    landing.refresh(land.streams[ACCOUNTS], reuse_window=0, full_read=True)
    assert landed(target_db)[0][:3] == (gid(1), 20, True)


def test_a_record_without_an_id_lands_so_that_the_transform_can_reject_it(land, target_db):
    broken = {"ID": "not-a-guid", "Code": "X", "Name": "Broken", "Timestamp": 12}
    exact = FakeExact({ACCOUNTS: [account(1, 10), broken]})
    land(exact).refresh(land.streams[ACCOUNTS], reuse_window=0)
    keys = [k for k, *_ in landed(target_db)]
    assert keys[0] == gid(1) and keys[1].startswith("invalid:")
    records = [r for p in derive_pages(target_db.connect().cursor(), ACCOUNTS, 0) for r in p.records]
    assert broken in records


def test_a_failed_read_leaves_records_and_watermark_as_they_were(land, target_db):
    exact = FakeExact({ACCOUNTS: [account(i, 10 + i) for i in range(4)]})
    land(exact).refresh(land.streams[ACCOUNTS], reuse_window=0)
    before = (landed(target_db), target_db.query(f"SELECT watermark, refreshed_at FROM {STREAMS}"))
    exact.records[ACCOUNTS] += [account(i, 30 + i) for i in range(10, 15)]
    exact.fail_after = exact.stats.api_calls + 2  # the second page of the next read fails
    with pytest.raises(RuntimeError, match="503"):
        land(exact).refresh(land.streams[ACCOUNTS], reuse_window=0)
    assert (landed(target_db), target_db.query(f"SELECT watermark, refreshed_at FROM {STREAMS}")) == before


def test_a_changed_select_is_read_in_full_again(land, target_db):
    exact = FakeExact({ACCOUNTS: [account(1, 10)]})
    stream = land.streams[ACCOUNTS]
    land(exact).refresh(stream, reuse_window=0)
    wider = Stream(stream.name, stream.mode, (*stream.select, "Website"), stream.id_field, stream.deleted_entity_type)
    read = land(exact).refresh(wider, reuse_window=300)  # fresh, but landed without the new field
    assert (read.action, exact.asked[-1][2]) == ("full_read", 1)


LINES = "sync/SalesOrder/GoodsDeliveryLines"


def line_row(i: int, location: str | None, quantity: float, ts: int) -> dict:
    """A goods delivery line's row as Exact sends it: one per storage location, all with the line's ID."""
    return {
        "ID": gid(i),
        "EntryID": gid(900),
        "StorageLocation": location,
        "StorageLocationCode": location and location[-2:],
        "QuantityDelivered": quantity,
        "Timestamp": ts,
    }


def derived(target_db, after=0, stream=LINES):
    conn = target_db.connect()
    try:
        pages = list(derive_pages(conn.cursor(), stream, after))
    finally:
        conn.close()
    records = {r["ID"]: r for p in pages for r in p.records}
    return records, [d for p in pages for d in p.deleted]


def test_a_line_split_over_storage_locations_lands_one_row_per_location(land, target_db):
    a, b, c = gid(701), gid(702), gid(703)
    exact = FakeExact({LINES: [line_row(1, a, 2.0, 10), line_row(1, b, 3.5, 11), line_row(2, None, 4.0, 12)]})
    landing = land(exact)
    stream = land.streams[LINES]
    assert stream.key_fields == ("StorageLocation",) and "StorageLocation" in stream.select
    landing.refresh(stream, reuse_window=0)
    assert [k for k, *_ in landed(target_db, LINES)] == [f"{gid(1)}/{a}", f"{gid(1)}/{b}", f"{gid(2)}/"]
    records, deleted = derived(target_db)
    # one record per line: its newest row, with every current row
    assert set(records) == {gid(1), gid(2)} and deleted == []
    assert records[gid(1)]["Timestamp"] == 11 and [r["QuantityDelivered"] for r in records[gid(1)][ROWS]] == [2.0, 3.5]
    mark = max(s for *_, s in landed(target_db, LINES))

    # One location's quantity changes and another replaces the second: Exact re-sends the line's current rows.
    exact.records[LINES] = [line_row(1, a, 5.0, 20), line_row(1, c, 1.0, 21)]
    read = landing.refresh(stream, reuse_window=0)
    assert (read.records, read.landed) == (2, 3)  # a changed, c new, b gone (a tombstone)
    assert [(k, d) for k, _, d, _ in landed(target_db, LINES)][:3] == [
        (f"{gid(1)}/{a}", False),
        (f"{gid(1)}/{b}", True),
        (f"{gid(1)}/{c}", False),
    ]
    records, deleted = derived(target_db, mark)
    assert list(records) == [gid(1)] and deleted == []
    assert {r["StorageLocation"]: r["QuantityDelivered"] for r in records[gid(1)][ROWS]} == {a: 5.0, c: 1.0}
    mark = max(s for *_, s in landed(target_db, LINES))

    # sync/Deleted deletes the line by its ID: every row of it goes, and the line is derived as deleted.
    exact.deletions = [{"EntityKey": gid(1), "EntityType": 17, "Timestamp": 30}]
    landing.refresh(land.streams[DELETED], reuse_window=0)
    assert all(d for k, _, d, _ in landed(target_db, LINES) if k.startswith(gid(1)))
    records, deleted = derived(target_db, mark)
    assert records == {} and deleted == [(gid(1), 30)]
    # A late copy of an older row (Timestamp 21 < the deletion's 30), even of a location never landed, stays out.
    exact.records[LINES] = [line_row(1, c, 1.0, 21), line_row(1, gid(704), 9.0, 22)]
    landing.refresh(stream, reuse_window=0)
    assert derived(target_db)[0].keys() == {gid(2)}


def test_lines_landed_by_id_alone_become_rows_per_location_without_losing_the_line(land, target_db):
    """Upgrading: lines landed under their ID alone (no StorageLocation in the select) are read in full again, as
    rows per location; the line's old key becomes a tombstone, which must not delete the line."""
    stream = land.streams[LINES]
    old = Stream(stream.name, stream.mode, ("ID", "EntryID", "QuantityDelivered", "Timestamp"), "ID", 17)
    exact = FakeExact({LINES: [line_row(1, gid(701), 2.0, 10), line_row(1, gid(702), 3.0, 11)]})
    land(exact).refresh(old, reuse_window=0)
    assert [k for k, *_ in landed(target_db, LINES)] == [gid(1)]  # the newest row won: 3.0 of the 5.0 delivered
    read = land(exact).refresh(stream, reuse_window=300)
    assert read.action == "full_read"
    records, deleted = derived(target_db)
    assert deleted == [] and sum(r["QuantityDelivered"] for r in records[gid(1)][ROWS]) == 5.0


def test_a_webhook_topic_is_the_endpoints_so_a_category_need_not_repeat_it():
    """A new category reading an endpoint another category already declares with its topic inherits the topic;
    two different topics for one endpoint are a mistake in the registry."""
    relations = CATEGORIES["relations"]
    assert all_streams()[relations.source.endpoint].webhook_topic == "Accounts"
    silent = dataclasses.replace(
        relations, name="relations_again", source=dataclasses.replace(relations.source, webhook_topic=None)
    )
    assert all_streams([silent, *CATEGORIES.values()])[relations.source.endpoint].webhook_topic == "Accounts"
    other = dataclasses.replace(silent, source=dataclasses.replace(relations.source, webhook_topic="Contacts"))
    with pytest.raises(ValueError, match="disagree on its webhook topic"):
        all_streams([other, *CATEGORIES.values()])
