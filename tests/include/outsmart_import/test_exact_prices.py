"""Exact's standard sales price, the enrichment of materials and hour types, against a real PostgreSQL: which
price is the standard one, and that a price change or removal reaches the item without the item changing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from include.outsmart_import import loader
from include.outsmart_import.exact_prices import STANDARD_SALES_PRICE
from include.outsmart_import.loader import CategoryLoad, enrichment_of, ensure_schema
from include.outsmart_import.registry import CATEGORIES

MAT = CATEGORIES["materials"]
TODAY = dt.date(2025, 6, 15)


def _gid(kind: int, i: int) -> str:
    return f"00000000-0000-4000-{8000 + kind}-{i:012d}"


def item(i: int) -> str:
    return _gid(1, i)


def _ms(day: dt.date) -> str:
    return f"/Date({int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)})/"


def price(
    i: int,
    item_no: int,
    amount: float,
    *,
    account: int | None = None,
    quantity: float = 1.0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    ts: int = 100,
) -> dict:
    """A sales item price as Exact sends it (sync/Logistics/SalesItemPrices)."""
    return {
        "ID": _gid(2, i),
        "Item": item(item_no),
        "Account": _gid(3, account) if account is not None else None,
        "Price": amount,
        "Currency": "EUR",
        "Quantity": quantity,
        "Unit": "stuk",
        "StartDate": _ms(start) if start else None,
        "EndDate": _ms(end) if end else None,
        "Timestamp": ts,
    }


def materials(*numbers: int, ts: int = 100) -> pd.DataFrame:
    """Materials rows as the transform gives them (no sales price: that comes from the enrichment)."""
    df = pd.DataFrame(
        [
            {
                "code": f"M{i}",
                "description": f"Artikel {i}",
                "category_code": "ELEK",
                "unit": "stuk",
                "cost_price": 1.5,
                "sales_price": None,
                "barcode": None,
                "is_active": True,
                "start_date": None,
                "end_date": None,
                "exact_id": item(i),
                "exact_timestamp": ts,
                "passes_filter": True,
            }
            for i in numbers
        ]
    )
    for col in ("code", "description", "category_code", "unit", "barcode", "exact_id"):
        df[col] = df[col].astype("string")
    df["cost_price"] = df["cost_price"].astype("Float64")
    df["sales_price"] = df["sales_price"].astype("Float64")
    df["start_date"] = df["start_date"].astype(object)
    df["end_date"] = df["end_date"].astype(object)
    for col in ("is_active", "passes_filter"):
        df[col] = df[col].astype("boolean")
    df["exact_timestamp"] = df["exact_timestamp"].astype("Int64")
    return df


@pytest.fixture
def db(target_db):
    with target_db.connect() as conn:
        ensure_schema(conn)
    return target_db


def load(db, frame=None, *, prices=(), deleted_prices=()):
    """One materials load as the runner does it: the items, then the price stream through the enrichment."""
    with db.connect() as conn:
        with CategoryLoad(conn, MAT) as ld:
            if frame is not None:
                ld.stage(frame)
            if prices:
                ld.stage_enrichment(list(prices))
            ld.stage_enrichment_deleted(list(deleted_prices))
            counts = ld.merge(reconcile=False, today=TODAY)
            direct = ld.header.direct
            ld.commit()
    return counts, direct


def sales_prices(db) -> dict:
    return dict(db.query("SELECT code, sales_price FROM outsmart.materials"))


def versions(db) -> dict:
    return dict(db.query("SELECT code, xmin::text FROM outsmart.materials"))


def test_the_registry_points_at_the_enrichment_and_keeps_the_prices_stream():
    assert enrichment_of(MAT) is STANDARD_SALES_PRICE is enrichment_of(CATEGORIES["hour_types"])
    assert enrichment_of(CATEGORIES["relations"]) is None
    # Existing import_state rows ('prices', 'prices_deleted') keep working.
    assert STANDARD_SALES_PRICE.stream == "prices"
    assert STANDARD_SALES_PRICE.source.endpoint == "sync/Logistics/SalesItemPrices"
    assert STANDARD_SALES_PRICE.source.deleted_entity_type == 8


def test_standard_price_is_the_current_price_without_an_account(db):
    prices = [
        price(1, 1, 10.0),  # the standard price of item 1
        price(2, 1, 5.0, account=7),  # a price agreement: not the standard price
        price(3, 1, 8.0, quantity=10),  # a staffel price: the lowest quantity wins
        price(4, 1, 7.0, end=TODAY - dt.timedelta(days=1)),  # ended yesterday
        price(5, 1, 12.0, start=TODAY + dt.timedelta(days=1)),  # starts tomorrow
        price(6, 2, 20.0, start=dt.date(2024, 1, 1)),  # item 2: the latest start wins...
        price(7, 2, 21.0, start=dt.date(2025, 1, 1), end=TODAY),  # ...valid up to and including today
        price(8, 3, 30.0, account=7),  # item 3: only an agreement, no standard price
    ]
    counts, direct = load(db, materials(1, 2, 3), prices=prices)
    assert direct is False  # an enrichment fills the rows in the merge: no direct COPY into the empty target
    assert counts.inserted == 3
    assert sales_prices(db) == {"M1": Decimal("10.0000"), "M2": Decimal("21.0000"), "M3": None}
    assert db.scalar("SELECT count(*) FROM outsmart.exact_item_prices") == 8  # the mirror keeps every price


def test_a_price_only_change_updates_the_item(db):
    load(db, materials(1, 2), prices=[price(1, 1, 10.0), price(2, 2, 20.0)])
    before = versions(db)
    counts, _ = load(db, prices=[price(1, 1, 11.5, ts=200)])  # no item changed: only its price
    assert (counts.inserted, counts.updated) == (0, 1)
    assert sales_prices(db) == {"M1": Decimal("11.5000"), "M2": Decimal("20.0000")}
    after = versions(db)
    assert after["M2"] == before["M2"] and after["M1"] != before["M1"]
    counts, _ = load(db, prices=[price(1, 1, 10.0, ts=150)])  # an older version of the price does not win
    assert counts.updated == 0 and sales_prices(db)["M1"] == Decimal("11.5000")


def test_a_removed_or_ended_price_clears_it(db):
    load(db, materials(1, 2), prices=[price(1, 1, 10.0), price(2, 2, 20.0)])
    counts, _ = load(db, deleted_prices=[(_gid(2, 1), 300)])  # sync/Deleted
    assert counts.updated == 1
    assert sales_prices(db) == {"M1": None, "M2": Decimal("20.0000")}
    counts, _ = load(db, prices=[price(2, 2, 20.0, end=TODAY - dt.timedelta(days=1), ts=300)])
    assert counts.updated == 1
    assert sales_prices(db) == {"M1": None, "M2": None}
    counts, _ = load(db)  # nothing new: nothing to do
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 0)


def test_an_item_change_and_its_new_price_are_one_update(db):
    load(db, materials(1), prices=[price(1, 1, 10.0)])
    frame = materials(1, ts=200)
    frame.loc[0, "description"] = "Nieuw"
    counts, _ = load(db, frame, prices=[price(1, 1, 12.0, ts=200)])
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 0)
    assert db.query("SELECT description, sales_price FROM outsmart.materials") == [("Nieuw", Decimal("12.0000"))]


def test_the_price_mirror_is_created_through_the_enrichment(target_db):
    with target_db.connect() as conn:
        ensure_schema(conn, [CATEGORIES["relations"]])  # no enrichment: no price mirror
    assert target_db.scalar("SELECT to_regclass('outsmart.exact_item_prices') IS NULL")
    assert "exact_item_prices" not in loader.BASE_OBJECTS
    with target_db.connect() as conn:
        ensure_schema(conn)
    assert target_db.scalar("SELECT to_regclass('outsmart.exact_item_prices') IS NOT NULL")
    assert target_db.scalar("SELECT to_regclass('outsmart.exact_item_prices_item') IS NOT NULL")
