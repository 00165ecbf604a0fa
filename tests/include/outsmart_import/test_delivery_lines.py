"""The goods delivery lines' rule: a line delivered from several storage locations is one row whose quantity is the
sum over its locations, with the breakdown kept (delivery_lines.py)."""

from __future__ import annotations

import datetime as dt
import json

from include.outsmart_import.declarations import ROWS
from include.outsmart_import.registry import CATEGORIES

LINES = CATEGORIES["goods_deliveries"].lines
TODAY = dt.date(2026, 11, 24)


def row(location: str | None, code: str | None, quantity, ts: int, line: str = "11111111-1111-4111-8111-111111111111"):
    return {
        "ID": line,
        "EntryID": "22222222-2222-4222-8222-222222222222",
        "LineNumber": 1,
        "ItemCode": "MAT-1",
        "StorageLocation": location,
        "StorageLocationCode": code,
        "QuantityDelivered": quantity,
        "QuantityOrdered": 10.0,
        "Timestamp": ts,
    }


def line(*rows: dict) -> dict:
    """The record landing.derive_pages gives for a line: its newest row, with every current row."""
    return {**max(rows, key=lambda r: r["Timestamp"]), ROWS: list(rows)}


def transform(records):
    return LINES.transform_fn()(records, None, TODAY)


def test_the_quantity_is_the_sum_over_the_locations_and_the_breakdown_is_kept():
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    plain = row(None, None, 4.0, 30, line="33333333-3333-4333-8333-333333333333")
    result = transform([line(row(b, "B-01", 2.5, 20), row(a, "A-01", 1.25, 21)), plain])
    assert result.rejects == []
    frame = result.frame.set_index("exact_id")
    split = frame.loc["11111111-1111-4111-8111-111111111111"]
    assert split["quantity_delivered"] == 3.75 and split["exact_timestamp"] == 21
    assert json.loads(split["storage_locations"]) == [
        {"code": "A-01", "storage_location": a, "quantity_delivered": 1.25},
        {"code": "B-01", "storage_location": b, "quantity_delivered": 2.5},
    ]
    # A line without storage locations (a record without its rows, as well): its own quantity, no breakdown.
    other = frame.loc["33333333-3333-4333-8333-333333333333"]
    assert other["quantity_delivered"] == 4.0 and other["storage_locations"] is None


def test_a_location_whose_quantity_does_not_read_sets_the_whole_line_aside():
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    result = transform([line(row(a, "A-01", "veel", 20), row(b, "B-01", 1.0, 21))])  # the newest row reads
    assert result.frame.empty
    assert [r.reason for r in result.rejects] == ["storage location A-01: QuantityDelivered is not a number: 'veel'"]
