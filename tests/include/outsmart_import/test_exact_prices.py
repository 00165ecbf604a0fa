"""Exact's standard sales price, the enrichment of materials and hour types, against a real PostgreSQL: which
price is the standard one, and that a price change or removal reaches the item without the item changing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from include.outsmart_import import schema
from include.outsmart_import.database import ddl_objects
from include.outsmart_import.enrichment import MergeContext
from include.outsmart_import.merge import CategoryLoad
from include.outsmart_import.registry import CATEGORIES, STANDARD_SALES_PRICE
from include.outsmart_import.resync import check_resync, division_currency
from include.outsmart_import.schema import ensure_schema

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
    project: int | None = None,
    employee: int | None = None,
    currency: str = "EUR",
    unit: str = "stuk",
) -> dict:
    """A sales item price as Exact sends it (sync/Logistics/SalesItemPrices)."""
    return {
        "ID": _gid(2, i),
        "Item": item(item_no),
        "Account": _gid(3, account) if account is not None else None,
        "Project": _gid(4, project) if project is not None else None,
        "Employee": _gid(5, employee) if employee is not None else None,
        "Price": amount,
        "Currency": currency,
        "Quantity": quantity,
        "Unit": unit,
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


def load(db, frame=None, *, prices=(), deleted_prices=(), currency=None):
    """One materials load as the runner does it: the items, then the price stream through the enrichment."""
    with db.connect() as conn:
        with CategoryLoad(conn, MAT) as ld:
            if frame is not None:
                ld.stage(frame)
            ld.stage_enrichment(list(prices), list(deleted_prices))
            counts = ld.merge(full_derive=False, context=MergeContext(TODAY, currency))
            direct = ld.header.direct
            ld.commit()
    return counts, direct


def sales_prices(db) -> dict:
    return dict(db.query("SELECT code, sales_price FROM outsmart.materials"))


def versions(db) -> dict:
    return dict(db.query("SELECT code, xmin::text FROM outsmart.materials"))


def test_the_registry_holds_the_enrichment_object():
    assert MAT.enrichment is STANDARD_SALES_PRICE is CATEGORIES["hour_types"].enrichment
    assert CATEGORIES["relations"].enrichment is None
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
    assert all("exact_item_prices" not in ddl_objects(ddl) for ddl in schema.STAGE_DDL)
    with target_db.connect() as conn:
        ensure_schema(conn)
    assert target_db.scalar("SELECT to_regclass('outsmart.exact_item_prices') IS NOT NULL")
    assert target_db.scalar("SELECT to_regclass('outsmart.exact_item_prices_item') IS NOT NULL")


# ---- #14 item 6: a price for a project or an employee, in another currency or unit is not the standard price -----
def test_standard_price_leaves_out_project_employee_other_currency_and_other_unit_prices(db):
    month_ago = TODAY - dt.timedelta(days=30)  # each would win on its start date if it counted
    prices = [
        price(1, 1, 10.0),  # the standard price of item 1
        price(2, 1, 97.5, project=1, start=month_ago),  # a project's rate
        price(3, 1, 82.0, employee=1, start=month_ago),  # an employee's hourly rate
        price(4, 1, 11.0, currency="USD", start=month_ago),  # in dollars
        price(5, 1, 95.0, unit="doos", start=month_ago),  # for a box, the item's unit is 'stuk'
        price(6, 2, 20.0, currency=" EUR ", unit="stuk"),  # item 2: the division's currency, trimmed
        price(7, 3, 30.0, currency="USD"),  # item 3: only a price in dollars: no standard price
    ]
    load(db, materials(1, 2, 3), prices=prices, currency="EUR")
    assert sales_prices(db) == {"M1": Decimal("10.0000"), "M2": Decimal("20.0000"), "M3": None}
    mirrored = db.query("SELECT project_id IS NOT NULL, employee_id IS NOT NULL FROM outsmart.exact_item_prices")
    assert sorted(mirrored) == [(False, False)] * 5 + [(False, True), (True, False)]


def test_a_price_in_another_unit_counts_once_the_item_has_that_unit(db):
    load(db, materials(1), prices=[price(1, 1, 10.0), price(2, 1, 95.0, unit="doos", start=dt.date(2025, 1, 1))])
    assert sales_prices(db) == {"M1": Decimal("10.0000")}
    frame = materials(1, ts=200)
    frame["unit"] = pd.array(["doos"], dtype="string")  # the item is now sold per box
    load(db, frame)
    assert sales_prices(db) == {"M1": Decimal("95.0000")}


class _Exact:
    """A reader with a division: counts its calls to system/Divisions (the hook's `division_details`)."""

    division = 3000001

    def __init__(self, currency):
        self.currency, self.calls = currency, 0

    def division_details(self):
        self.calls += 1
        return {"Code": self.division, "Currency": self.currency, "DivisionMoveDate": None}


def test_the_divisions_currency_comes_from_the_daily_division_check(db):
    """One system/Divisions call a day per division gives both the move date and the currency (#19: it used to be
    read a second way, for the prices alone, and kept in a second table)."""
    exact = _Exact("EUR")
    check_resync(db.connect, exact, exact.division)
    check_resync(db.connect, exact, exact.division)
    assert exact.calls == 1
    with db.connect() as conn:
        assert division_currency(conn, exact.division) == "EUR"
        assert division_currency(conn, 42) is None and division_currency(conn, None) is None
    prices = [price(1, 1, 10.0), price(2, 1, 9.0, currency="USD", start=dt.date(2025, 1, 1))]
    load(db, materials(1), prices=prices, currency="EUR")
    assert sales_prices(db) == {"M1": Decimal("10.0000")}
    load(db, currency=None)  # not known (no division): the currency is not checked, the newer USD price counts
    assert sales_prices(db) == {"M1": Decimal("9.0000")}


def test_an_older_price_mirror_gets_the_new_columns(target_db):
    """ensure_schema runs DDL only for missing objects: the columns added to an existing mirror come through
    ADD COLUMN (`added_columns`), and the price stream's changed $select re-reads it in full once."""
    with target_db.connect() as conn:
        ensure_schema(conn, [CATEGORIES["relations"]])
        conn.execute(
            "CREATE TABLE outsmart.exact_item_prices (exact_id uuid PRIMARY KEY, item_id uuid, account_id uuid, "
            "price numeric(18,4), currency text, quantity numeric(18,4), unit text, start_date date, end_date date, "
            "exact_timestamp bigint, deleted_at timestamptz, imported_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("CREATE INDEX exact_item_prices_item ON outsmart.exact_item_prices (item_id)")
        conn.commit()
        ensure_schema(conn)
    columns = {
        r[0]
        for r in target_db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'exact_item_prices'"
        )
    }
    assert {"project_id", "employee_id"} <= columns
    assert target_db.scalar("SELECT to_regclass('outsmart.exact_division') IS NULL")  # folded into exact_divisions
