"""Exact as it really behaves (#14): goods delivery lines split over storage locations, a division moved to another
database, and a deletion log that keeps only about two months. Each test runs the real DAGs against the sandbox
with the behaviour switched on, and fails without the import's answer to it."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import requests

from tests.e2e.test_standard_categories import expected_items, standard_price
from tests.helpers.e2e import ids, last_log, mutate, reset_stats, run_dag, sandbox_stats

GOODS = {"license": "pro", "categories": {"goods_deliveries": {"enabled": True}}}
Q = Decimal("0.0001")


# ---- goods delivery lines split over storage locations ----------------------------------------------------------
def exact_quantities(div) -> dict[str, Decimal]:
    """Per goods delivery line (its ID), the quantity Exact delivered: the sum over its storage location rows."""
    total: dict[str, Decimal] = defaultdict(Decimal)
    for row in div.goods_delivery_lines.values():
        total[row["ID"]] += Decimal(str(row["QuantityDelivered"]))
    return {i: q.quantize(Q) for i, q in total.items()}


def imported_quantities(db) -> dict[str, Decimal]:
    rows = db.query(
        "SELECT exact_id::text, quantity_delivered FROM outsmart.goods_delivery_lines WHERE deleted_at IS NULL"
    )
    return dict(rows)


def locations(db, line_id: str) -> list[tuple[str, Decimal]]:
    """The breakdown of one line as imported: (storage location code, quantity) per location."""
    value = db.scalar(
        "SELECT storage_locations FROM outsmart.goods_delivery_lines WHERE exact_id = %s::uuid", (line_id,)
    )
    return [(loc["code"], Decimal(str(loc["quantity_delivered"])).quantize(Q)) for loc in value or []]


def test_a_delivery_line_split_over_storage_locations_keeps_every_locations_quantity(
    dags, sandbox_factory, target_db, settings_var
):
    server = sandbox_factory(size=300, seed=45, split_delivery_lines=0.3)
    settings_var(GOODS)
    div = server.state.division
    split = sorted({r["ID"] for k, r in div.goods_delivery_lines.items() if "/" in k})
    plain = sorted(k for k in div.goods_delivery_lines if "/" not in k)
    assert len(split) >= 3 and plain
    # Three locations on one line, with a fraction (the sandbox's own split has two or three).
    three = plain[0]
    mutate(
        server, entity="goods_delivery_lines", op="split", id=three, quantities={"A-01": 1.5, "B-01": 2, "KOEL": 0.25}
    )
    run_dag(dags, "goods_deliveries")
    assert imported_quantities(target_db) == exact_quantities(div)
    assert locations(target_db, three) == [
        ("A-01", Decimal("1.5000")),
        ("B-01", Decimal("2.0000")),
        ("KOEL", Decimal("0.2500")),
    ]
    assert last_log(target_db, "goods_deliveries")["rejected"] == 0

    # Incremental: one location's quantity changes, a location disappears from a line, a split line is deleted.
    changed, shrunk, gone = split[0], three, split[1]
    first_location = next(r["StorageLocation"] for r in div.goods_delivery_lines.values() if r["ID"] == changed)
    mutate(
        server,
        entity="goods_delivery_lines",
        op="update",
        records=[{"ID": changed, "StorageLocation": first_location, "QuantityDelivered": 7.25}],
    )
    koel = next(
        k for k, r in div.goods_delivery_lines.items() if r["ID"] == shrunk and r["StorageLocationCode"] == "KOEL"
    )
    mutate(server, entity="goods_delivery_lines", op="delete", ids=[koel])
    mutate(server, entity="goods_delivery_lines", op="delete", ids=[gone])
    run_dag(dags, "goods_deliveries")
    assert imported_quantities(target_db) == exact_quantities(div)
    assert locations(target_db, shrunk) == [("A-01", Decimal("1.5000")), ("B-01", Decimal("2.0000"))]
    assert gone not in ids(target_db, "goods_delivery_lines")
    log = last_log(target_db, "goods_deliveries")
    assert (log["updated"], log["deleted"], log["rejected"]) == (2, 1, 0), log


# ---- common -----------------------------------------------------------------------------------------------------
ALL_RELATIONS = {
    "enabled": True,
    "relation_types": ["customer", "prospect", "suspect", "none", "supplier"],
    "include_inactive": True,
    "include_blocked": True,
}


def move_back(db, table: str, column: str, interval: str, where: str = "true") -> None:
    """Time passes for the import's own state: move `column` of `table` back by `interval`, as if the runs that wrote
    it had happened that long ago (a table the import does not have yet is left alone)."""
    if db.scalar("SELECT to_regclass(%s) IS NOT NULL", (f"outsmart.{table}",)):
        with db.connect() as conn:
            conn.execute(f"UPDATE outsmart.{table} SET {column} = {column} - interval '{interval}' WHERE {where}")


def log_notes(db, category: str) -> tuple[str, str]:
    return db.query(
        "SELECT derive, coalesce(notes, '') FROM outsmart.import_log WHERE category = %s ORDER BY id DESC LIMIT 1",
        (category,),
    )[0]


def relation_names(db) -> dict[str, str]:
    return dict(db.query("SELECT exact_id::text, name FROM outsmart.relations WHERE deleted_at IS NULL"))


# ---- Exact moves the division to another database ----------------------------------------------------------------
def test_a_division_moved_to_another_database_is_read_in_full_again(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=200, seed=46)
    settings_var({"categories": {"relations": ALL_RELATIONS, "materials": {"enabled": True}}})
    run_dag(dags, "relations")
    run_dag(dags, "materials")
    div = server.state.division
    # Exact moves the division: every Timestamp starts again from a small number. Then users change things.
    requests.post(server.url + "/_sandbox/move-division", json={}, timeout=5).raise_for_status()
    renamed, deleted = sorted(relation_accounts(div))[:2]
    mutate(server, op="update", records=[{"ID": renamed, "Name": "Verhuisd B.V."}])
    mutate(server, op="delete", ids=[deleted])
    mutate(server, op="add", records=[{"Status": "C"}])
    item = next(iter(expected_items(server, time_items=False, groups=[]).values()))
    price = next(
        p
        for p in div.sales_item_prices.values()
        if p["Item"] == item["ID"] and p["Account"] is None and p["EndDate"] is None
    )
    mutate(server, entity="sales_item_prices", op="update", records=[{"ID": price["ID"], "Price": 77.7}])
    # A day later the division is checked again (system/Divisions, at most once a day).
    move_back(target_db, "exact_divisions", "checked_at", "25 hours")
    reset_stats(server)
    run_dag(dags, "relations")
    assert relation_names(target_db) == {i: a["Name"] for i, a in relation_accounts(div).items()}
    derive, notes = log_notes(target_db, "relations")
    assert derive == "full: division moved" and "moved division" in notes and "DivisionMoveDate" in notes
    assert sandbox_stats(server)["calls"]["system/Divisions"] == 1
    # Materials, which share no stream with relations, catch up on their next run: items and prices read in full.
    run_dag(dags, "materials")
    prices = dict(target_db.query("SELECT code, sales_price FROM outsmart.materials WHERE deleted_at IS NULL"))
    assert prices[item["Code"]] == standard_price(server, item["ID"]) == Decimal("77.7000")
    assert log_notes(target_db, "materials")[0] == "full: division moved"
    # After that, incremental again on the new Timestamps, and the division is not asked again that day.
    mutate(server, op="update", records=[{"ID": renamed, "Name": "Verhuisd en hernoemd B.V."}])
    reset_stats(server)
    run_dag(dags, "relations")
    assert relation_names(target_db)[renamed] == "Verhuisd en hernoemd B.V."
    log = last_log(target_db, "relations")
    assert (log["updated"], log["deleted"]) == (1, 0) and log_notes(target_db, "relations")[0] == "incremental"
    assert "system/Divisions" not in sandbox_stats(server)["calls"]


def relation_accounts(div) -> dict[str, dict]:
    """Every account but the division's own (Type 'D': never a relation, #14 item 5)."""
    return {i: a for i, a in div.accounts.items() if a.get("Type") != "D"}


# ---- the deletion log keeps about two months ----------------------------------------------------------------------
def test_a_deletion_older_than_exacts_deletion_log_still_reaches_outsmart(
    dags, sandbox_factory, target_db, settings_var
):
    server = sandbox_factory(size=100, seed=47)
    settings_var({"categories": {"relations": ALL_RELATIONS}})
    run_dag(dags, "relations")
    gone = sorted(relation_accounts(server.state.division))[0]
    # The import does not run for two months. Meanwhile an account is deleted, and Exact purges its deletion log.
    mutate(server, op="delete", ids=[gone])
    requests.post(server.url + "/_sandbox/purge-deleted", json={"older_than_seconds": 0}, timeout=5).raise_for_status()
    move_back(target_db, "exact_streams", "refreshed_at", "60 days")
    move_back(target_db, "exact_streams", "full_read_at", "60 days")
    move_back(target_db, "category_state", "derived_at", "60 days")
    run_dag(dags, "relations")
    assert gone not in ids(target_db, "relations")
    assert ids(target_db, "relations") == set(relation_accounts(server.state.division))
    derive, notes = log_notes(target_db, "relations")
    assert derive == "full: deletion log expired" and "last read 60 days ago" in notes
    assert last_log(target_db, "relations")["deleted"] == 1
    # Noted once: the next run trusts sync/Deleted again.
    run_dag(dags, "relations")
    assert log_notes(target_db, "relations")[0] == "incremental"
