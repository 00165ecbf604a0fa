"""Exact as it really behaves (#14): goods delivery lines split over storage locations, a division moved to another
database, and a deletion log that keeps only about two months. Each test runs the real DAGs against the sandbox
with the behaviour switched on, and fails without the import's answer to it."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from tests.helpers.e2e import ids, last_log, mutate, run_dag

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
