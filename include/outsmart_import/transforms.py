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
    mapping = {True: True, False: False, 1: True, 0: False}
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
    ended = pd.Series([e is not None and not pd.isna(e) and e < today for e in end], index=df.index)
    not_started = pd.Series([s is not None and not pd.isna(s) and s > today for s in start], index=df.index)
    is_active = ~(ended | not_started)

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
