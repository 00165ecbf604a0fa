"""Goods delivery lines delivered from several storage locations (the lines' rule of `goods_deliveries`).

Exact: "A goods delivery line can be split into multiple storage locations. In this case, multiple storage
locations will have the same stock transaction ID" (Exact's entity documentation, as copied in Pi-Systems/exact-online,
`Sync/SalesOrder/GoodsDeliveryLines.php`). So `sync/SalesOrder/GoodsDeliveryLines` sends such a line once per
location, each row with its own `StorageLocation` and `QuantityDelivered`. The landing keeps every row
(`Source.key_fields`) and derives one record per line: its newest row, with all its current rows in `declarations.ROWS`.
Here that record becomes one OutSmart row: `quantity_delivered` is the sum over the locations, `storage_locations`
the breakdown (code, GUID, quantity per location, ordered by code). A location row whose quantity is not a number
sets the whole line aside: a sum without it would be wrong.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from include.outsmart_import.declarations import ROWS, number

if TYPE_CHECKING:
    import pandas as pd

    from include.outsmart_import.transforms import Rows

QUANTITY = number("quantity_delivered", "QuantityDelivered")


def goods_delivery_lines(rows: Rows, settings, today: dt.date) -> None:
    """quantity_delivered: the sum over the line's storage locations; storage_locations: the breakdown.

    pandas and the transforms are imported here, when a page is transformed: the registry holds this function and
    is read when Airflow parses the DAG file, which must not import pandas."""
    import pandas as pd

    from include.outsmart_import.transforms import Rejecter, read_column

    f = rows.frame
    if f.empty:
        return
    own = rows.raw.drop(columns=[ROWS], errors="ignore").to_dict("records")
    groups = [g if isinstance(g, list) and g else [r] for g, r in zip(rows.field(ROWS), own, strict=True)]
    flat = pd.DataFrame.from_records([r for g in groups for r in g])
    line = pd.Series([i for i, g in zip(f.index, groups, strict=True) for _ in g], index=flat.index)
    rejecter = Rejecter(flat, "StorageLocationCode")
    quantity = read_column(flat, rejecter, QUANTITY)  # read and checked as the column itself is
    bad = rejecter.reason.notna()
    if bad.any():
        reasons = ("storage location " + _code(flat).astype(str) + ": " + rejecter.reason.astype(str))[bad]
        first = reasons.groupby(line[bad]).first()
        rows.reject(pd.Series(f.index.isin(first.index), index=f.index), lambda r: _reason(first, r))
    f["quantity_delivered"] = quantity.groupby(line).sum(min_count=1).reindex(f.index).astype("Float64")
    f["storage_locations"] = pd.Series(_breakdowns(flat, quantity, line), dtype="object").reindex(f.index)


def _field(flat: pd.DataFrame, name: str) -> pd.Series:
    """A field of the location rows (all None if none has it)."""
    return flat[name] if name in flat else flat.index.to_series().map(lambda _: None).astype("object")


def _code(flat: pd.DataFrame) -> pd.Series:
    return _field(flat, "StorageLocationCode")


def _reason(first: pd.Series, record: pd.Series) -> str:
    """The reject reason of a line whose location rows did not read (called per rejected line)."""
    return str(first.get(record.name, "a storage location row could not be read"))


def _breakdowns(flat: pd.DataFrame, quantity: pd.Series, line: pd.Series) -> dict:
    """Per line, its locations as JSON ([{code, storage_location, quantity_delivered}], by code); None for a line
    without a storage location."""
    location = _field(flat, "StorageLocation")
    entries: dict = {}
    for key, code, guid, q in zip(line, _code(flat), location, quantity, strict=True):
        if _given(code) or _given(guid):
            entries.setdefault(key, []).append(
                {
                    "code": str(code).strip() if _given(code) else None,
                    "storage_location": str(guid).lower() if _given(guid) else None,
                    "quantity_delivered": None if _missing(q) else float(q),
                }
            )
    out = {}
    for key in dict.fromkeys(line):
        found = sorted(entries.get(key, []), key=lambda e: (e["code"] or "", e["storage_location"] or ""))
        out[key] = json.dumps(found, separators=(",", ":"), ensure_ascii=False) if found else None
    return out


def _given(value) -> bool:
    return not _missing(value) and str(value).strip() != ""


def _missing(value) -> bool:
    """None, NaN or pandas' NA (the one value that is not equal to itself, or raises when compared)."""
    try:
        return value is None or bool(value != value)
    except TypeError:  # pandas.NA: its comparison is NA itself, which has no truth value
        return True
