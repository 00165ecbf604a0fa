"""Transforms of the standard categories other than relations."""

from __future__ import annotations

import datetime as dt

from include.exact_sandbox.odata import encode_value
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.settings import (
    EmployeesSettings,
    ItemGroupSettings,
    PaymentTransactionsSettings,
)


def _transform(name):
    """The category's transform as the runner gets it: the registry's declared columns, then its rules."""
    fn = CATEGORIES[name].transform_fn()
    return lambda records, settings, today: fn(records, settings, today)


employees, hour_types, materials, payment_transactions = map(
    _transform, ["employees", "hour_types", "materials", "payment_transactions"]
)

TODAY = dt.date(2026, 11, 24)


def item(n, **kw):
    rec = {
        "ID": f"00000000-0000-4000-8000-{n:012d}",
        "Code": f"MAT-{n}",
        "Description": f"Item {n}",
        "ItemGroupCode": "ELEK",
        "IsTime": 0,
        "Unit": "stuk",
        "CostPriceStandard": 1.25,
        "Barcode": None,
        "StartDate": encode_value(dt.date(2020, 1, 1)),
        "EndDate": None,
        "Timestamp": 10 + n,
    }
    rec.update(kw)
    return rec


def test_items_split_into_materials_and_hour_types_by_istime_and_group():
    recs = [
        item(1),
        item(2, IsTime=1, ItemGroupCode="UREN"),
        item(3, ItemGroupCode="SAN"),
        item(4, IsTime=1, ItemGroupCode="REIS"),
    ]
    m = materials(recs, ItemGroupSettings(enabled=True, item_groups=["ELEK"]), TODAY).frame
    assert list(m.loc[m["passes_filter"], "code"]) == ["MAT-1"]
    m = materials(recs, ItemGroupSettings(enabled=True), TODAY).frame
    assert list(m.loc[m["passes_filter"], "code"]) == ["MAT-1", "MAT-3"]
    h = hour_types(recs, ItemGroupSettings(enabled=True, item_groups=["UREN", "REIS"]), TODAY).frame
    assert list(h.loc[h["passes_filter"], "code"]) == ["MAT-2", "MAT-4"]
    assert "name" in h.columns and "description" not in h.columns


def test_item_rejects():
    recs = [item(1, CostPriceStandard="veel"), item(2, IsTime=3), item(3, Description=""), item(4)]
    res = materials(recs, ItemGroupSettings(enabled=True), TODAY)
    assert list(res.frame["code"]) == ["MAT-4"]
    assert [r.reason.split(":")[0] for r in res.rejects] == [
        "CostPriceStandard is not a number",
        "IsTime is not 0 or 1",
        "missing description",
    ]


def test_inactive_item_is_flagged_not_dropped():
    res = materials([item(1, EndDate=encode_value(dt.date(2025, 1, 1)))], ItemGroupSettings(enabled=True), TODAY)
    assert bool(res.frame["passes_filter"].iloc[0]) and not bool(res.frame["is_active"].iloc[0])


def emp(n, **kw):
    rec = {
        "ID": f"00000000-0000-4000-8000-{n:012d}",
        "Code": str(100 + n),
        "FirstName": "Daniël",
        "MiddleName": "van der",
        "LastName": "Meulen",
        "FullName": "Daniël van der Meulen",
        "BusinessEmail": "d@x.nl",
        "Email": None,
        "BusinessPhone": None,
        "Mobile": "06-1",
        "Phone": None,
        "IsActive": True,
        "StartDate": encode_value(dt.date(2020, 1, 1)),
        "EndDate": None,
        "Timestamp": 5 + n,
    }
    rec.update(kw)
    return rec


def test_employees_names_and_active_filter():
    recs = [emp(1), emp(2, IsActive=False, EndDate=encode_value(dt.date(2025, 1, 1)))]
    f = employees(recs, EmployeesSettings(enabled=True), TODAY).frame
    assert list(f["last_name"]) == ["van der Meulen", "van der Meulen"]
    assert f["phone"].isna().all()  # only a private Mobile: not imported (#14 item 7)
    assert list(f["passes_filter"]) == [True, False]
    f = employees(recs, EmployeesSettings(enabled=True, include_inactive=True), TODAY).frame
    assert list(f["passes_filter"]) == [True, True] and list(f["is_active"]) == [True, False]


def term(n, **kw):
    rec = {
        "ID": f"00000000-0000-4000-8000-{n:012d}",
        "LineType": 20,
        "InvoiceNumber": 26000000 + n,
        "InvoiceDate": encode_value(dt.date(2026, 1, 1)),
        "DueDate": encode_value(dt.date(2026, 1, 31)),
        "AccountCode": "              1001",
        "AccountName": "Bakker",
        "AmountDC": 121.0,
        "Currency": "EUR",
        "IsFullyPaid": False,
        "Status": 20,
        "LastPaymentDate": None,
        "Timestamp": 50 + n,
    }
    rec.update(kw)
    return rec


def test_payment_transactions_receivables_only_and_only_open():
    recs = [term(1), term(2, IsFullyPaid=True, Status=50), term(3, LineType=22, AmountDC=-50.0)]
    f = payment_transactions(recs, PaymentTransactionsSettings(enabled=True), TODAY).frame
    assert list(f["passes_filter"]) == [True, True, False]
    assert list(f["account_code"]) == ["1001"] * 3 and list(f["status"]) == ["open", "matched", "open"]
    f = payment_transactions(recs, PaymentTransactionsSettings(enabled=True, only_open=True), TODAY).frame
    assert list(f["passes_filter"]) == [True, False, False]
    res = payment_transactions([term(4, AmountDC="12,50")], PaymentTransactionsSettings(enabled=True), TODAY)
    assert res.frame.empty and res.rejects[0].reason.startswith("AmountDC is not a number")


# ---- #14 item 8: numbers as JSON text ("12.50"), as Exact can write them -------------------------------------------
def test_numbers_as_text_read_as_the_numbers():
    settings = PaymentTransactionsSettings(enabled=True)
    text = payment_transactions(
        [term(1, InvoiceNumber="26000001", AmountDC="121.00", Status="20", LineType="20", IsFullyPaid="false")],
        settings,
        TODAY,
    )
    native = payment_transactions([term(1)], settings, TODAY)
    assert text.rejects == []
    assert text.frame.to_dict("records") == native.frame.to_dict("records")
    res = materials(
        [item(1, CostPriceStandard="12.50", IsTime="0"), item(2, CostPriceStandard=" 1e1 ")],
        ItemGroupSettings(enabled=True),
        TODAY,
    )
    assert res.rejects == [] and list(res.frame["cost_price"]) == [12.5, 10.0]


def test_text_that_is_no_number_is_still_rejected():
    settings = PaymentTransactionsSettings(enabled=True)
    recs = [
        term(1, AmountDC="abc"),
        term(2, AmountDC="1.2.3"),
        term(3, AmountDC=True),
        term(4, InvoiceNumber="12.5"),
        term(5, InvoiceNumber="abc"),
        term(6),
    ]
    res = payment_transactions(recs, settings, TODAY)
    assert list(res.frame["invoice_number"]) == [26000006]
    assert [r.reason for r in res.rejects] == [
        "AmountDC is not a number: 'abc'",
        "AmountDC is not a number: '1.2.3'",
        "AmountDC is not a number: True",
        "InvoiceNumber is not a whole number: '12.5'",
        "InvoiceNumber is not a whole number: 'abc'",
    ]


# ---- #14 item 7: business numbers only; Mobile and Phone are the employee's private numbers -----------------------
def test_employees_get_their_business_phone_and_mobile_never_a_private_number():
    recs = [
        emp(1, BusinessPhone="010-1234567", BusinessMobile="06-11111111", Mobile="06-99999999", Phone="010-9999999"),
        emp(2, BusinessPhone=None, BusinessMobile="06-22222222", Mobile="06-99999998"),
        emp(3, BusinessPhone=None, BusinessMobile=None, Mobile="06-99999997", Phone="010-9999997"),
    ]
    f = employees(recs, EmployeesSettings(enabled=True), TODAY).frame
    numbers = [
        tuple(v if isinstance(v, str) else None for v in row) for row in zip(f["phone"], f["mobile"], strict=True)
    ]
    assert numbers == [("010-1234567", "06-11111111"), (None, "06-22222222"), (None, None)]
    assert {"Mobile", "Phone", "PrivateEmail"}.isdisjoint(CATEGORIES["employees"].source.select)
