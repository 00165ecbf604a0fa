"""The relations transform: pure pandas, no Airflow."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from include.exact_sandbox.odata import encode_value
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.settings import RelationsSettings
from include.outsmart_import.transforms import exact_date, exact_datetime_utc

relations = CATEGORIES["relations"].transform_fn()

TODAY = dt.date(2026, 11, 24)
GUID = "0a1b2c3d-0000-4000-8000-00000000000{}"


def account(n: int = 1, **overrides) -> dict:
    rec = {
        "__metadata": {"uri": "x", "type": "y"},
        "ID": GUID.format(n),
        "Code": f"{1000 + n:>18}",
        "Name": f"Bakker Installatietechniek {n}",
        "Status": "C",
        "IsSupplier": False,
        "Blocked": False,
        "StartDate": encode_value(dt.date(2020, 1, 1)),
        "EndDate": None,
        "Email": "info@bakker.nl",
        "Phone": "010-1234567",
        "AddressLine1": "Kerkstraat 1",
        "Postcode": "1011 AB",
        "City": "'s-Hertogenbosch",
        "Country": "NL ",
        "VATNumber": None,
        "ChamberOfCommerce": "12345678",
        "Timestamp": 1000 + n,
    }
    rec.update(overrides)
    return rec


def run(records, **settings):
    return relations(records, RelationsSettings(enabled=True, **settings), TODAY)


def test_codes_and_country_are_trimmed_and_types_mapped():
    res = run([account(1), account(2, Status="P", Code="              2002")])
    f = res.frame
    assert list(f["code"]) == ["1001", "2002"]
    assert list(f["country"]) == ["NL", "NL"]
    assert list(f["relation_type"]) == ["customer", "prospect"]
    assert list(f["exact_timestamp"]) == [1001, 1002]
    assert res.rejects == []


def test_exact_dates_are_dutch_wall_clock():
    # 2026-07-01 12:00 written as if UTC means 12:00 in Amsterdam (CEST, UTC+2) = 10:00 UTC.
    wall_ms = int((dt.datetime(2026, 7, 1, 12, 0) - dt.datetime(1970, 1, 1)).total_seconds() * 1000)
    ts, invalid = exact_datetime_utc(pd.Series([f"/Date({wall_ms})/", None]))
    assert ts.iloc[0] == pd.Timestamp("2026-07-01 10:00", tz="UTC")
    assert pd.isna(ts.iloc[1]) and not invalid.any()
    d, invalid = exact_date(pd.Series([encode_value(dt.date(2025, 3, 30)), "/Date(nonsense)/"]))
    assert d.iloc[0] == dt.date(2025, 3, 30)
    assert list(invalid) == [False, True]


@pytest.mark.parametrize(
    ("overrides", "settings", "passes"),
    [
        ({}, {}, True),
        ({"Status": "P"}, {}, False),
        ({"Status": "P"}, {"relation_types": ["prospect"]}, True),
        ({"Status": "S"}, {"relation_types": ["suspect"]}, True),
        ({"Status": "A"}, {"relation_types": ["none"]}, True),
        ({"Status": "A", "IsSupplier": True}, {}, False),
        ({"Status": "A", "IsSupplier": True}, {"relation_types": ["supplier"]}, True),
        ({"Blocked": True}, {}, False),
        ({"Blocked": True}, {"include_blocked": True}, True),
        ({"EndDate": encode_value(dt.date(2026, 11, 23))}, {}, False),
        ({"EndDate": encode_value(dt.date(2026, 11, 23))}, {"include_inactive": True}, True),
        ({"EndDate": encode_value(dt.date(2026, 11, 24))}, {}, True),  # ends today: still active today
        ({"StartDate": encode_value(dt.date(2027, 1, 1))}, {}, False),  # not started yet: inactive
    ],
)
def test_filters(overrides, settings, passes):
    res = run([account(1, **overrides)], **settings)
    assert bool(res.frame["passes_filter"].iloc[0]) is passes


def test_flags_reflect_status():
    f = run([account(1, Blocked=True, EndDate=encode_value(dt.date(2020, 1, 1)))]).frame
    assert bool(f["is_blocked"].iloc[0]) is True
    assert bool(f["is_active"].iloc[0]) is False


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Code": "   "}, "missing code"),
        ({"Code": None}, "missing code"),
        ({"ID": "not-a-guid"}, "missing or invalid Exact ID"),
        ({"Timestamp": "x"}, "missing or invalid Timestamp"),
        ({"EndDate": "2024-13-45"}, "invalid date in EndDate"),
        ({"Blocked": "yes"}, "Blocked is not a boolean"),
        ({"Status": "Q"}, "unknown Status"),
        ({"Name": ""}, "missing name"),
        ({"Name": "x" * 300}, "name longer than 255"),
        ({"City": "Ede\x00"}, "control character in City"),
    ],
)
def test_broken_records_are_set_aside_with_reason(overrides, reason):
    res = run([account(1), account(2, **overrides), account(3)])
    assert list(res.frame["code"]) == ["1001", "1003"]
    assert len(res.rejects) == 1
    assert res.rejects[0].reason.startswith(reason)
    assert res.rejects[0].raw["ID"] == account(2, **overrides)["ID"]
    assert "__metadata" not in res.rejects[0].raw


def test_quotes_semicolons_and_empty_strings_survive():
    res = run([account(1, Name='D\'Hondt; "Sanitair" \\ B.V.', Email="", Phone=None)])
    f = res.frame
    assert f["name"].iloc[0] == 'D\'Hondt; "Sanitair" \\ B.V.'
    assert f["email"].iloc[0] == ""
    assert pd.isna(f["phone"].iloc[0])


def test_empty_page():
    res = run([])
    assert res.frame.empty and res.rejects == []


# ---- #14 item 8: Exact can write numbers, booleans and the Int64 Timestamp as JSON text ----------------------------
@pytest.mark.parametrize(
    ("as_text", "native"),
    [
        ({"Blocked": "true", "IsSupplier": "false"}, {"Blocked": True, "IsSupplier": False}),
        ({"Blocked": "TRUE", "IsSupplier": " False "}, {"Blocked": True, "IsSupplier": False}),
        ({"Blocked": "1", "IsSupplier": "0"}, {"Blocked": True, "IsSupplier": False}),
        ({"Blocked": 1, "IsSupplier": 0}, {"Blocked": True, "IsSupplier": False}),  # Byte flags
        ({"Timestamp": "123456"}, {"Timestamp": 123456}),
        ({"Timestamp": "9007199254740993"}, {"Timestamp": 9007199254740993}),  # Int64 beyond a float: exact
    ],
    ids=["true-false", "case-and-spaces", "one-zero-text", "one-zero-number", "timestamp", "timestamp-int64"],
)
def test_booleans_and_timestamp_as_text_read_as_the_values(as_text, native):
    text, value = run([account(1, **as_text)]), run([account(1, **native)])
    assert text.rejects == []
    pd.testing.assert_frame_equal(text.frame, value.frame)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Blocked": "yes please"}, "Blocked is not a boolean"),
        ({"Blocked": "abc"}, "Blocked is not a boolean"),
        ({"Blocked": 2}, "Blocked is not a boolean"),
        ({"Timestamp": "abc"}, "missing or invalid Timestamp"),
        ({"Timestamp": "1.2.3"}, "missing or invalid Timestamp"),
        ({"Timestamp": "12.5"}, "missing or invalid Timestamp"),
        ({"Timestamp": True}, "missing or invalid Timestamp"),
    ],
)
def test_text_that_is_no_boolean_or_timestamp_is_still_rejected(overrides, reason):
    res = run([account(1), account(2, **overrides)])
    assert list(res.frame["code"]) == ["1001"]
    assert [r.reason.split(":")[0] for r in res.rejects] == [reason]


# ---- #14 item 5: the division's own account (Type 'D') is never a relation -----------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"relation_types": ["none"]},
        {
            "relation_types": ["customer", "prospect", "suspect", "none", "supplier"],
            "include_inactive": True,
            "include_blocked": True,
        },
    ],
    ids=["default", "none", "everything"],
)
def test_the_divisions_own_account_never_passes(settings):
    res = run([account(1, Status="A", Type="A"), account(2, Status="A", Type="D")], **settings)
    passes = dict(zip(res.frame["code"], res.frame["passes_filter"], strict=True))
    assert res.rejects == []  # not broken: filtered out (a row an older version imported is kept, flags updated)
    assert bool(passes["1002"]) is False
    assert bool(passes["1001"]) is ("none" in settings.get("relation_types", []))
