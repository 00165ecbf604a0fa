"""Pure pandas transforms: a page of Exact records in, OutSmart rows plus rejects out. No Airflow here.

Every transform returns a `TransformResult`:
- `frame`: one row per good record, with the target table's columns and `passes_filter` (does the record pass
  the category's filters?). Rows that fail a filter are still returned: the loader updates rows already in
  OutSmart whatever the filter says (their flags change), and only keeps new ones out.
- `rejects`: records that cannot be loaded, each with its key, the reason and the raw record.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_DATE_RE = r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$"
_GUID_RE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

STATUS_TO_RELATION_TYPE = {"C": "customer", "P": "prospect", "S": "suspect", "A": "none"}


@dataclass
class Reject:
    key: str | None
    reason: str
    raw: dict


@dataclass
class TransformResult:
    frame: pd.DataFrame
    rejects: list[Reject] = field(default_factory=list)


def today_in_amsterdam(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(AMSTERDAM).date()


def _wall_clock(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """`/Date(ms)/` strings → naive wall-clock datetimes, plus a mask of values that were present but invalid.

    Exact writes Dutch wall-clock time into the milliseconds as if it were UTC (reference §4.6).
    """
    present = values.notna() & (values.astype("string").str.len() > 0)
    ms = values.astype("string").str.extract(_DATE_RE, expand=False)
    invalid = present & ms.isna()
    wall = pd.to_datetime(pd.to_numeric(ms, errors="coerce"), unit="ms", errors="coerce")
    invalid |= present & wall.isna()
    return wall, invalid.fillna(False).astype(bool)


def exact_datetime_utc(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    wall, invalid = _wall_clock(values)
    localized = wall.dt.tz_localize(AMSTERDAM, ambiguous="NaT", nonexistent="shift_forward")
    return localized.dt.tz_convert("UTC"), invalid


def exact_date(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    wall, invalid = _wall_clock(values)
    return wall.dt.date.where(wall.notna(), None), invalid


def clean_text(values: pd.Series, *, max_length: int | None = None) -> pd.Series:
    """Trim, and keep '' distinct from NULL (Exact sends null for 'not set')."""
    s = values.astype("string").str.strip()
    return s


def _bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Exact booleans: JSON true/false, or 0/1 for Byte flags. Anything else is invalid."""
    mapping = {True: True, False: False}  # 1 and 0 hash like True and False
    out = values.map(lambda v: mapping.get(v) if isinstance(v, (bool, int, np.integer)) else None)
    invalid = values.notna() & out.isna()
    return out.astype("boolean"), invalid


class _Rejecter:
    """Collects per-row reasons; a row with any reason is rejected with the first one."""

    def __init__(self, df: pd.DataFrame, key_column: str):
        self.df = df
        self.key_column = key_column
        self.reason = pd.Series([None] * len(df), index=df.index, dtype="object")

    def add(self, mask: pd.Series, reason) -> None:
        mask = mask.fillna(False).astype(bool) & self.reason.isna()
        if mask.any():
            if callable(reason):
                self.reason[mask] = [reason(r) for _, r in self.df[mask].iterrows()]
            else:
                self.reason[mask] = reason

    def split(self, records: list[dict]) -> tuple[pd.Series, list[Reject]]:
        bad = self.reason.notna()
        rejects = []
        for pos in np.flatnonzero(bad.to_numpy()):
            raw = {k: v for k, v in records[pos].items() if k != "__metadata"}
            key = raw.get(self.key_column)
            rejects.append(Reject(key=None if key is None else str(key).strip(), reason=self.reason.iloc[pos], raw=raw))
        return ~bad, rejects


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype="object")


def _too_long(s: pd.Series, limit: int) -> pd.Series:
    return s.astype("string").str.len().fillna(0) > limit


def _has_control_chars(s: pd.Series) -> pd.Series:
    return s.astype("string").str.contains(_CONTROL_RE, regex=True).fillna(False).astype(bool)


def relations(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Exact CRM accounts → OutSmart relations.

    relation_type: Status C/P/S/A → customer/prospect/suspect/none; `is_supplier` from IsSupplier.
    is_active: not ended (EndDate empty or today or later) and started (StartDate empty or not after today).
    passes_filter: type selected (or 'supplier' selected and IsSupplier) and, unless included,
    not inactive and not blocked.
    """
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    rej = _Rejecter(df, "Code")
    exact_id = clean_text(_column(df, "ID")).str.lower()
    code = clean_text(_column(df, "Code"))
    timestamp = pd.to_numeric(_column(df, "Timestamp"), errors="coerce")
    start, bad_start = exact_date(_column(df, "StartDate"))
    end, bad_end = exact_date(_column(df, "EndDate"))
    blocked, bad_blocked = _bool(_column(df, "Blocked"))
    supplier, bad_supplier = _bool(_column(df, "IsSupplier"))
    status = clean_text(_column(df, "Status"))
    name = clean_text(_column(df, "Name"))

    rej.add(exact_id.isna() | ~exact_id.fillna("").str.match(_GUID_RE), "missing or invalid Exact ID")
    rej.add(code.isna() | (code == ""), "missing code")
    rej.add(_too_long(code, 50), "code longer than 50 characters")
    rej.add(timestamp.isna(), "missing or invalid Timestamp")
    rej.add(bad_start, lambda r: f"invalid date in StartDate: {r.get('StartDate')!r}")
    rej.add(bad_end, lambda r: f"invalid date in EndDate: {r.get('EndDate')!r}")
    rej.add(bad_blocked, lambda r: f"Blocked is not a boolean: {r.get('Blocked')!r}")
    rej.add(bad_supplier, lambda r: f"IsSupplier is not a boolean: {r.get('IsSupplier')!r}")
    rej.add(status.notna() & ~status.isin(list(STATUS_TO_RELATION_TYPE)), lambda r: f"unknown Status {r.get('Status')!r}")
    rej.add(name.isna() | (name == ""), "missing name")
    rej.add(_too_long(name, 255), "name longer than 255 characters")
    for col in ("Code", "Name", "Email", "Phone", "AddressLine1", "Postcode", "City"):
        rej.add(_has_control_chars(_column(df, col)), f"control character in {col}")
    keep, rejects = rej.split(records)

    relation_type = status.map(STATUS_TO_RELATION_TYPE).astype("string")
    is_blocked = blocked.fillna(False)
    is_supplier = supplier.fillna(False)
    is_active = _active(start, end, today, df.index)

    wanted = set(settings.relation_types)
    type_ok = relation_type.isin(list(wanted)).fillna(False)
    if "supplier" in wanted:
        type_ok = type_ok | is_supplier.astype(bool)
    passes = type_ok.astype(bool)
    if not settings.include_inactive:
        passes &= is_active
    if not settings.include_blocked:
        passes &= ~is_blocked.astype(bool)

    frame = pd.DataFrame({
        "code": code,
        "name": name,
        "relation_type": relation_type,
        "is_supplier": is_supplier,
        "is_blocked": is_blocked,
        "is_active": is_active.astype("boolean"),
        "email": clean_text(_column(df, "Email")),
        "phone": clean_text(_column(df, "Phone")),
        "address_line1": clean_text(_column(df, "AddressLine1")),
        "postcode": clean_text(_column(df, "Postcode")),
        "city": clean_text(_column(df, "City")),
        "country": clean_text(_column(df, "Country")),
        "vat_number": clean_text(_column(df, "VATNumber")),
        "coc_number": clean_text(_column(df, "ChamberOfCommerce")),
        "start_date": start,
        "end_date": end,
        "exact_id": exact_id,
        "exact_timestamp": timestamp.astype("Int64") if len(df) else pd.Series([], dtype="Int64"),
        "passes_filter": passes.astype("boolean"),
    })
    return TransformResult(frame=frame[keep.to_numpy()].reset_index(drop=True), rejects=rejects)


# ---- shared helpers for the item-based and other standard categories -----------------------------------------
def _start(records: list[dict], key_column: str = "Code"):
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return df, _Rejecter(df, key_column)


def _identity(df: pd.DataFrame, rej: _Rejecter) -> tuple[pd.Series, pd.Series]:
    exact_id = clean_text(_column(df, "ID")).str.lower()
    timestamp = pd.to_numeric(_column(df, "Timestamp"), errors="coerce")
    rej.add(exact_id.isna() | ~exact_id.fillna("").str.match(_GUID_RE), "missing or invalid Exact ID")
    return exact_id, timestamp


def _code(df: pd.DataFrame, rej: _Rejecter, column: str = "Code", limit: int = 50) -> pd.Series:
    code = clean_text(_column(df, column))
    rej.add(code.isna() | (code == ""), "missing code")
    rej.add(_too_long(code, limit), f"code longer than {limit} characters")
    rej.add(_has_control_chars(_column(df, column)), f"control character in {column}")
    return code


def _text(df: pd.DataFrame, rej: _Rejecter, column: str, limit: int = 255) -> pd.Series:
    s = clean_text(_column(df, column))
    rej.add(_too_long(s, limit), f"{column} longer than {limit} characters")
    rej.add(_has_control_chars(_column(df, column)), f"control character in {column}")
    return s


def _dates(df: pd.DataFrame, rej: _Rejecter, *columns: str) -> list[pd.Series]:
    out = []
    for col in columns:
        values, invalid = exact_date(_column(df, col))
        rej.add(invalid, lambda r, col=col: f"invalid date in {col}: {r.get(col)!r}")
        out.append(values)
    return out


def _number(df: pd.DataFrame, rej: _Rejecter, column: str) -> pd.Series:
    raw = _column(df, column)
    is_num = raw.map(lambda v: v is None or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)))
    rej.add(~is_num.astype(bool), lambda r: f"{column} is not a number: {r.get(column)!r}")
    return pd.to_numeric(raw.where(is_num.astype(bool), None), errors="coerce").astype("Float64")


def _flag(df: pd.DataFrame, rej: _Rejecter, column: str) -> pd.Series:
    values, invalid = _bool(_column(df, column))
    rej.add(invalid, lambda r: f"{column} is not a boolean: {r.get(column)!r}")
    return values


def _active(start: pd.Series, end: pd.Series, today: dt.date, index) -> pd.Series:
    ended = pd.Series([e is not None and not pd.isna(e) and e < today for e in end], index=index, dtype=bool)
    not_started = pd.Series([s is not None and not pd.isna(s) and s > today for s in start], index=index, dtype=bool)
    return ~(ended | not_started)


def _finish(frame: pd.DataFrame, rej: _Rejecter, records: list[dict]) -> TransformResult:
    keep, rejects = rej.split(records)
    frame["passes_filter"] = frame["passes_filter"].astype("boolean")
    return TransformResult(frame=frame[keep.to_numpy()].reset_index(drop=True), rejects=rejects)


def _int64(s: pd.Series) -> pd.Series:
    return s.astype("Int64") if len(s) else pd.Series([], dtype="Int64")


def _items(records: list[dict], settings, today: dt.date, *, time_items: bool) -> tuple[pd.DataFrame, _Rejecter]:
    df, rej = _start(records)
    exact_id, timestamp = _identity(df, rej)
    code = _code(df, rej)
    description = _text(df, rej, "Description", 255)
    rej.add(description.isna() | (description == ""), "missing description")
    group_code = _text(df, rej, "ItemGroupCode", 60)
    unit = _text(df, rej, "Unit", 30)
    cost = _number(df, rej, "CostPriceStandard")
    is_time = pd.to_numeric(_column(df, "IsTime"), errors="coerce")
    rej.add(~is_time.isin([0, 1]), lambda r: f"IsTime is not 0 or 1: {r.get('IsTime')!r}")
    start, end = _dates(df, rej, "StartDate", "EndDate")
    groups = list(settings.item_groups)
    in_group = group_code.isin(groups).fillna(False).astype(bool) if groups else pd.Series(True, index=df.index)
    passes = (is_time == (1 if time_items else 0)).fillna(False).astype(bool) & in_group
    frame = pd.DataFrame({
        "code": code,
        "_text": description,
        "category_code": group_code,
        "unit": unit,
        "cost_price": cost,
        "sales_price": pd.Series([None] * len(df), index=df.index, dtype="Float64"),  # filled from the price mirror
        "is_active": _active(start, end, today, df.index).astype("boolean"),
        "start_date": start,
        "end_date": end,
        "exact_id": exact_id,
        "exact_timestamp": _int64(timestamp),
        "passes_filter": passes,
    })
    if not time_items:
        frame["barcode"] = _text(df, rej, "Barcode", 60)
    rej.add(timestamp.isna(), "missing or invalid Timestamp")
    return frame, rej


def materials(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Exact items that are not time items (IsTime = 0), in the selected item groups (none selected = all)."""
    frame, rej = _items(records, settings, today, time_items=False)
    return _finish(frame.rename(columns={"_text": "description"}), rej, records)


def hour_types(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Exact time items (IsTime = 1: labour, travel), in the selected item groups (none selected = all)."""
    frame, rej = _items(records, settings, today, time_items=True)
    return _finish(frame.rename(columns={"_text": "name"}), rej, records)


def categories(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Exact item groups (no sync endpoint: read in full every run)."""
    df, rej = _start(records)
    exact_id = clean_text(_column(df, "ID")).str.lower()
    rej.add(exact_id.isna() | ~exact_id.fillna("").str.match(_GUID_RE), "missing or invalid Exact ID")
    frame = pd.DataFrame({
        "code": _code(df, rej),
        "description": _text(df, rej, "Description"),
        "is_default": _flag(df, rej, "IsDefault").fillna(False),
        "exact_id": exact_id,
        "exact_timestamp": pd.Series([None] * len(df), index=df.index, dtype="Int64"),
        "passes_filter": pd.Series(True, index=df.index),
    })
    return _finish(frame, rej, records)


def employees(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Exact payroll employees; inactive ones (IsActive false or ended) only when included."""
    df, rej = _start(records)
    exact_id, timestamp = _identity(df, rej)
    code = _code(df, rej)
    first, last, full = (_text(df, rej, c, 120) for c in ("FirstName", "LastName", "FullName"))
    middle = _text(df, rej, "MiddleName", 60)
    rej.add(last.isna() | (last == ""), "missing last name")
    is_active_flag = _flag(df, rej, "IsActive")
    start, end = _dates(df, rej, "StartDate", "EndDate")
    rej.add(timestamp.isna(), "missing or invalid Timestamp")
    active = is_active_flag.fillna(True).astype(bool) & _active(start, end, today, df.index)
    email = _text(df, rej, "BusinessEmail").fillna(_text(df, rej, "Email"))
    phone = _text(df, rej, "BusinessPhone", 60).fillna(_text(df, rej, "Mobile", 60)).fillna(_text(df, rej, "Phone", 60))
    full_name = full.where(full.notna() & (full != ""), (first.fillna("") + " " + (middle.fillna("") + " ").str.lstrip() + last.fillna("")).str.strip())
    passes = active if not settings.include_inactive else pd.Series(True, index=df.index)
    frame = pd.DataFrame({
        "code": code, "first_name": first,
        # Dutch surnames carry their prefix ("van der", "de") in MiddleName; OutSmart wants it with the last name.
        "last_name": ((middle.fillna("") + " ").str.lstrip() + last.fillna("")).str.strip().where(last.notna(), None),
        "full_name": full_name, "email": email, "phone": phone, "is_active": active.astype("boolean"),
        "start_date": start, "end_date": end, "exact_id": exact_id, "exact_timestamp": _int64(timestamp),
        "passes_filter": passes,
    })
    return _finish(frame, rej, records)


PAYMENT_STATUS = {20: "open", 30: "selected", 40: "processed", 50: "matched"}


def payment_transactions(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Customer receivables (payment terms with LineType 20); with only_open, those not fully paid."""
    df, rej = _start(records, "ID")
    exact_id, timestamp = _identity(df, rej)
    rej.add(timestamp.isna(), "missing or invalid Timestamp")
    line_type = pd.to_numeric(_column(df, "LineType"), errors="coerce")
    invoice = pd.to_numeric(_column(df, "InvoiceNumber"), errors="coerce")
    rej.add(_column(df, "InvoiceNumber").notna() & invoice.isna(), lambda r: f"InvoiceNumber is not a number: {r.get('InvoiceNumber')!r}")
    amount = _number(df, rej, "AmountDC")
    fully_paid = _flag(df, rej, "IsFullyPaid")
    status_code = pd.to_numeric(_column(df, "Status"), errors="coerce")
    invoice_date, due_date, last_payment = _dates(df, rej, "InvoiceDate", "DueDate", "LastPaymentDate")
    passes = (line_type == 20).fillna(False).astype(bool)
    if settings.only_open:
        passes &= ~fully_paid.fillna(False).astype(bool)
    frame = pd.DataFrame({
        "invoice_number": _int64(invoice),
        "account_code": _text(df, rej, "AccountCode", 60),
        "account_name": _text(df, rej, "AccountName"),
        "amount": amount,
        "currency": _text(df, rej, "Currency", 3),
        "is_fully_paid": fully_paid,
        "status": status_code.map(PAYMENT_STATUS).astype("string"),
        "invoice_date": invoice_date,
        "due_date": due_date,
        "last_payment_date": last_payment,
        "exact_id": exact_id,
        "exact_timestamp": _int64(timestamp),
        "passes_filter": passes,
    })
    return _finish(frame, rej, records)


def standard_prices(records: list[dict]) -> pd.DataFrame:
    """Sales item prices → rows of the price mirror (all of them; the standard price is chosen in SQL)."""
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    start, _ = exact_date(_column(df, "StartDate"))
    end, _ = exact_date(_column(df, "EndDate"))
    return pd.DataFrame({
        "exact_id": clean_text(_column(df, "ID")).str.lower(),
        "item_id": clean_text(_column(df, "Item")).str.lower(),
        "account_id": clean_text(_column(df, "Account")).str.lower(),
        "price": pd.to_numeric(_column(df, "Price"), errors="coerce").astype("Float64"),
        "currency": clean_text(_column(df, "Currency")),
        "quantity": pd.to_numeric(_column(df, "Quantity"), errors="coerce").astype("Float64"),
        "unit": clean_text(_column(df, "Unit")),
        "start_date": start,
        "end_date": end,
        "exact_timestamp": _int64(pd.to_numeric(_column(df, "Timestamp"), errors="coerce")),
    })


# ---- Pro categories: declarative field maps ------------------------------------------------------------------
def _guid(df: pd.DataFrame, rej: _Rejecter, column: str, required: bool) -> pd.Series:
    s = clean_text(_column(df, column)).str.lower()
    bad = s.notna() & ~s.fillna("").str.match(_GUID_RE)
    rej.add(bad | (s.isna() if required else False), f"missing or invalid {column}")
    return s


def _mapped(records: list[dict], fields: list[tuple[str, str, str]], *, key: str = "ID",
            identity: str = "ID", with_timestamp: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, _Rejecter]:
    """Build a frame from (target column, Exact field, kind) triples; kinds: text, code, int, num, date,
    datetime, bool, guid, guid!. Returns (frame, source frame, rejecter) with exact_id/exact_timestamp set."""
    df, rej = _start(records, key)
    out = {}
    for target, source, kind in fields:
        if kind == "text":
            out[target] = _text(df, rej, source)
        elif kind == "code":
            out[target] = _text(df, rej, source, 60)
        elif kind == "int":
            v = pd.to_numeric(_column(df, source), errors="coerce")
            rej.add(_column(df, source).notna() & v.isna(), lambda r, s=source: f"{s} is not a number: {r.get(s)!r}")
            out[target] = _int64(v)
        elif kind == "num":
            out[target] = _number(df, rej, source)
        elif kind == "date":
            out[target] = _dates(df, rej, source)[0]
        elif kind == "datetime":
            values, invalid = exact_datetime_utc(_column(df, source))
            rej.add(invalid, lambda r, s=source: f"invalid date in {s}: {r.get(s)!r}")
            out[target] = values
        elif kind == "bool":
            out[target] = _flag(df, rej, source)
        elif kind in ("guid", "guid!"):
            out[target] = _guid(df, rej, source, kind == "guid!")
        else:  # pragma: no cover - a registry mistake
            raise ValueError(kind)
    out["exact_id"] = _guid(df, rej, identity, True)
    if with_timestamp:
        ts = pd.to_numeric(_column(df, "Timestamp"), errors="coerce")
        rej.add(ts.isna(), "missing or invalid Timestamp")
        out["exact_timestamp"] = _int64(ts)
    else:
        out["exact_timestamp"] = pd.Series([None] * len(df), index=df.index, dtype="Int64")
    frame = pd.DataFrame(out, index=df.index)
    frame["passes_filter"] = True
    return frame, df, rej


def _status(df: pd.DataFrame, column: str, names: dict[int, str]) -> pd.Series:
    return pd.to_numeric(_column(df, column), errors="coerce").map(names).astype("string")


def warehouses(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, _, rej = _mapped(records, [("code", "Code", "code"), ("description", "Description", "text"),
                                      ("is_main", "Main", "bool")], key="Code", with_timestamp=False)
    rej.add(frame["code"].isna() | (frame["code"] == ""), "missing code")
    return _finish(frame, rej, records)


def price_agreements(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Sales item prices that have an account (Exact's "price agreements"); with only_current, valid today."""
    frame, df, rej = _mapped(records, [
        ("account_exact_id", "Account", "guid"), ("account_name", "AccountName", "text"),
        ("item_code", "ItemCode", "code"), ("item_description", "ItemDescription", "text"), ("price", "Price", "num"),
        ("currency", "Currency", "code"), ("min_quantity", "Quantity", "num"), ("unit", "Unit", "code"),
        ("start_date", "StartDate", "date"), ("end_date", "EndDate", "date")])
    frame["account_code"] = pd.Series([None] * len(frame), index=frame.index, dtype="string")  # from relations
    passes = frame["account_exact_id"].notna()
    if settings.only_current:
        passes &= _active(frame["start_date"], frame["end_date"], today, frame.index)
    frame["passes_filter"] = passes.astype(bool)
    return _finish(frame, rej, records)


SALES_ORDER_STATUS = {12: "open", 20: "partial", 21: "complete", 45: "cancelled"}


def sales_orders(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, df, rej = _mapped(records, [
        ("order_id", "OrderID", "guid!"), ("order_number", "OrderNumber", "int"),
        ("customer_exact_id", "OrderedBy", "guid"), ("customer_name", "OrderedByName", "text"),
        ("order_date", "OrderDate", "date"), ("delivery_date", "DeliveryDate", "date"), ("amount", "AmountDC", "num"),
        ("currency", "Currency", "code"), ("warehouse_code", "WarehouseCode", "code"),
        ("description", "Description", "text"), ("your_ref", "YourRef", "text")])
    rej.add(frame["order_number"].isna(), "missing OrderNumber")
    frame["status"] = _status(df, "Status", SALES_ORDER_STATUS)
    frame["customer_code"] = pd.Series([None] * len(frame), index=frame.index, dtype="string")  # from relations
    frame["passes_filter"] = frame["status"].isin(list(settings.statuses)).fillna(False).astype(bool)
    return _finish(frame, rej, records)


def sales_order_lines(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, _, rej = _mapped(records, [
        ("order_id", "OrderID", "guid!"), ("order_number", "OrderNumber", "int"), ("line_number", "LineNumber", "int"),
        ("item_code", "ItemCode", "code"), ("description", "Description", "text"), ("quantity", "Quantity", "num"),
        ("unit", "UnitCode", "code"), ("unit_price", "UnitPrice", "num"), ("net_price", "NetPrice", "num"),
        ("amount", "AmountDC", "num"), ("quantity_delivered", "QuantityDelivered", "num"),
        ("quantity_invoiced", "QuantityInvoiced", "num"), ("delivery_date", "DeliveryDate", "date")])
    return _finish(frame, rej, records)


SHOP_ORDER_STATUS = {10: "open", 20: "in_process", 30: "finished", 40: "completed"}


def shop_orders(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, df, rej = _mapped(records, [
        ("shop_order_number", "ShopOrderNumber", "int"), ("item_code", "ItemCode", "code"),
        ("description", "Description", "text"), ("planned_quantity", "PlannedQuantity", "num"),
        ("produced_quantity", "ProducedQuantity", "num"), ("planned_start_date", "PlannedStartDate", "date"),
        ("planned_end_date", "PlannedDate", "date"), ("is_released", "IsReleased", "bool"),
        ("is_on_hold", "IsOnHold", "bool")])
    rej.add(frame["shop_order_number"].isna(), "missing ShopOrderNumber")
    frame["status"] = _status(df, "Status", SHOP_ORDER_STATUS)
    return _finish(frame, rej, records)


def goods_deliveries(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, df, rej = _mapped(records, [
        ("delivery_number", "DeliveryNumber", "int"), ("customer_code", "DeliveryAccountCode", "code"),
        ("customer_name", "DeliveryAccountName", "text"), ("delivery_date", "DeliveryDate", "date"),
        ("tracking_number", "TrackingNumber", "code"), ("warehouse_code", "WarehouseCode", "code"),
        ("description", "Description", "text")], key="EntryID", identity="EntryID")
    rej.add(frame["delivery_number"].isna(), "missing DeliveryNumber")
    return _finish(frame, rej, records)


def goods_delivery_lines(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, _, rej = _mapped(records, [
        ("entry_id", "EntryID", "guid!"), ("line_number", "LineNumber", "int"), ("item_code", "ItemCode", "code"),
        ("quantity_delivered", "QuantityDelivered", "num"), ("quantity_ordered", "QuantityOrdered", "num"),
        ("sales_order_number", "SalesOrderNumber", "int"), ("sales_order_line_number", "SalesOrderLineNumber", "int"),
        ("unit", "Unitcode", "code"), ("delivery_date", "DeliveryDate", "date")])
    return _finish(frame, rej, records)


QUOTATION_STATUS = {5: "rejected", 6: "closed", 10: "recovery", 20: "draft", 25: "open", 35: "processing",
                    40: "printed", 50: "accepted", 60: "awaiting_acceptance", 70: "accepted_with_error"}


def quotations(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, df, rej = _mapped(records, [
        ("quotation_id", "QuotationID", "guid!"), ("quotation_number", "QuotationNumber", "int"),
        ("version_number", "VersionNumber", "int"), ("customer_code", "OrderAccountCode", "code"),
        ("customer_name", "OrderAccountName", "text"), ("quotation_date", "QuotationDate", "date"),
        ("due_date", "DueDate", "date"), ("amount", "AmountDC", "num"), ("currency", "Currency", "code"),
        ("description", "Description", "text")])
    rej.add(frame["quotation_number"].isna(), "missing QuotationNumber")
    frame["status"] = _status(df, "Status", QUOTATION_STATUS)
    frame["passes_filter"] = frame["status"].isin(list(settings.statuses)).fillna(False).astype(bool)
    return _finish(frame, rej, records)


def quotation_lines(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, _, rej = _mapped(records, [
        ("quotation_id", "QuotationID", "guid!"), ("quotation_number", "QuotationNumber", "int"),
        ("line_number", "LineNumber", "int"), ("item_exact_id", "Item", "guid"),
        ("description", "ItemDescription", "text"), ("quantity", "Quantity", "num"), ("unit", "UnitCode", "code"),
        ("unit_price", "UnitPrice", "num"), ("amount", "AmountDC", "num")])
    frame["item_code"] = pd.Series([None] * len(frame), index=frame.index, dtype="string")  # from materials/hour types
    return _finish(frame, rej, records)


PLANNING_STATUS = {1: "reserved", 2: "planned"}


def project_planning(records: list[dict], settings, today: dt.date) -> TransformResult:
    frame, df, rej = _mapped(records, [
        ("employee_code", "EmployeeCode", "code"), ("project_code", "ProjectCode", "code"),
        ("project_description", "ProjectDescription", "text"), ("customer_code", "AccountCode", "code"),
        ("hour_type_code", "HourTypeCode", "code"), ("start_at", "StartDate", "datetime"),
        ("end_at", "EndDate", "datetime"), ("hours", "Hours", "num"), ("description", "Description", "text")])
    frame["status"] = _status(df, "Status", PLANNING_STATUS)
    return _finish(frame, rej, records)


ASSEMBLY_STATUS = {20: "open", 30: "partial", 50: "complete"}


def assembly_orders(records: list[dict], settings, today: dt.date) -> TransformResult:
    """Exact assembly orders: no sync, no Modified field, so read in full every run."""
    frame, df, rej = _mapped(records, [
        ("order_number", "OrderNumber", "int"), ("item_code", "ItemCode", "code"),
        ("description", "Description", "text"), ("planned_quantity", "PlannedQuantity", "num"),
        ("finished_quantity", "FinishedQuantity", "num"), ("order_date", "OrderDate", "date"),
        ("assembly_date", "AssemblyDate", "date"), ("finished_date", "FinishedAssemblyDate", "date"),
        ("warehouse_code", "WarehouseCode", "code")], with_timestamp=False)
    rej.add(frame["order_number"].isna(), "missing OrderNumber")
    frame["status"] = _status(df, "OrderStatus", ASSEMBLY_STATUS)
    frame["is_disassembly"] = (pd.to_numeric(_column(df, "Type"), errors="coerce") == 8061).fillna(False).astype("boolean")
    return _finish(frame, rej, records)
