"""Pure pandas transforms: a page of Exact records in, OutSmart rows plus rejects out. No Airflow here.

`transform` reads a page the way the registry declares it: each column from its Exact field, validated by its
kind (text, number, date, ...); then the category's rules (rules.py, held by the registry entry) add
what is more than a field mapping: filters, activity, name rules.

Every transform returns a `TransformResult`:
- `frame`: one row per good record, with the target table's columns and `passes_filter` (does the record pass
  the category's filters?). Rows that fail a filter are still returned: the loader updates rows already in
  OutSmart whatever the filter says (their flags change), and only keeps new ones out.
- `rejects`: records that cannot be loaded, each with its key, the reason and the raw record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from include.outsmart_import.declarations import GUID_PATTERN

if TYPE_CHECKING:
    from include.outsmart_import.declarations import Column, Source, TableSpec

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_DATE_RE = r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$"
_GUID_RE = rf"^{GUID_PATTERN}$"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    return (now or dt.datetime.now(dt.UTC)).astimezone(AMSTERDAM).date()


def _wall_clock(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """`/Date(ms)/` strings → naive wall-clock datetimes, plus a mask of values that were present but invalid.

    Exact writes Dutch wall-clock time into the milliseconds as if it were UTC (as Airbyte's Exact connector reads it,
    citing Exact's REST FAQ; other clients call it a UTC epoch: we follow Airbyte and Exact's FAQ).
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


def clean_text(values: pd.Series) -> pd.Series:
    """Trim, and keep '' distinct from NULL (Exact sends null for 'not set')."""
    s = values.astype("string").str.strip()
    return s


# Exact's OData can write numbers, booleans and the Int64 Timestamp as JSON text ("12.50", "true", "1", "123456":
# Airbyte's source-exact tests feed them so "as that also is how Exact can return the data"; OData v2 writes Int64 as
# a string). Every documented spelling is read; only what is no number or boolean at all is rejected.
_NUMBER_RE = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_DIGITS_RE = r"^[+-]?\d+$"
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}


def _bool_value(value) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):  # Byte flags: 0/1
        return {1: True, 0: False}.get(int(value))
    if isinstance(value, str):
        return _BOOL_TEXT.get(value.strip().lower())
    return None


def _bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Exact booleans: JSON true/false, 0/1 for Byte flags, or either as text ("true", "0"). Anything else is
    invalid."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean"), pd.Series(False, index=values.index)
    out = values.map(_bool_value)
    invalid = values.notna() & out.isna()
    return out.astype("boolean"), invalid


def _numbers(values: pd.Series, pattern: str = _NUMBER_RE) -> tuple[pd.Series, pd.Series]:
    """JSON numbers, or numbers written as text ("12.50"), as floats; plus a mask of values that are present but no
    number (text that does not read as one, booleans)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("Float64"), pd.Series(False, index=values.index)
    is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_))).astype(bool)
    text = values.astype("string").str.strip()
    ok = text.str.fullmatch(pattern).fillna(False).astype(bool) & ~is_bool
    numbers = pd.to_numeric(text.where(ok, None), errors="coerce").astype("Float64")
    return numbers, values.notna() & ~ok


def _whole_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Whole numbers (Int32/Int64 fields, the Timestamp), as JSON numbers or text ("123456"); a fraction is invalid.
    Text of digits is read exactly, not through a float (an Int64 beyond 2**53)."""
    if pd.api.types.is_integer_dtype(values):
        return _int64(values), pd.Series(False, index=values.index)
    numbers, invalid = _numbers(values)
    invalid = (invalid | (numbers.notna() & (numbers != numbers.round()))).fillna(False).astype(bool)
    whole = _int64(numbers.where(~invalid, None))
    if not pd.api.types.is_float_dtype(values):  # text (pandas' str or object): digits read exactly
        text = values.astype("string").str.strip()
        digits = text.str.fullmatch(_DIGITS_RE).fillna(False).astype(bool)
        whole = whole.mask(digits, text.where(digits, None).astype("Int64"))
    return whole, invalid


class Rejecter:
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


def _active(start: pd.Series, end: pd.Series, today: dt.date, index) -> pd.Series:
    ended = pd.Series([e is not None and not pd.isna(e) and e < today for e in end], index=index, dtype=bool)
    not_started = pd.Series([s is not None and not pd.isna(s) and s > today for s in start], index=index, dtype=bool)
    return ~(ended | not_started)


def _int64(s: pd.Series) -> pd.Series:
    return s.astype("Int64") if len(s) else pd.Series([], dtype="Int64")


# ---- readers: one per `Column.read` kind ----------------------------------------------------------------------
def _read_text(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    s = clean_text(_column(df, name))
    if col.max_length:
        rej.add(_too_long(s, col.max_length), f"{col.label} longer than {col.max_length} characters")
    rej.add(_has_control_chars(_column(df, name)), f"control character in {name}")
    return s


def _read_int(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    values, invalid = _whole_numbers(_column(df, name))
    rej.add(invalid, lambda r: f"{name} is not a whole number: {r.get(name)!r}")
    return values


def _read_num(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    values, invalid = _numbers(_column(df, name))
    rej.add(invalid, lambda r: f"{name} is not a number: {r.get(name)!r}")
    return values


def _read_date(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    values, invalid = exact_date(_column(df, name))
    rej.add(invalid, lambda r: f"invalid date in {name}: {r.get(name)!r}")
    return values


def _read_datetime(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    values, invalid = exact_datetime_utc(_column(df, name))
    rej.add(invalid, lambda r: f"invalid date in {name}: {r.get(name)!r}")
    return values


def _read_bool(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    values, invalid = _bool(_column(df, name))
    rej.add(invalid, lambda r: f"{name} is not a boolean: {r.get(name)!r}")
    return values


def _read_guid(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    s = clean_text(_column(df, name)).str.lower()
    bad = s.notna() & ~s.fillna("").str.match(_GUID_RE)
    rej.add(bad | (s.isna() if col.required else False), f"missing or invalid {name}")
    return s


def _read_map(df: pd.DataFrame, rej: Rejecter, col: Column, name: str) -> pd.Series:
    """Exact's codes (numbers or letters) → our words; an unknown code is NULL, or a reject when strict."""
    mapping = dict(col.mapping)
    raw = _column(df, name)
    numeric = all(isinstance(k, int) for k in mapping)
    codes = pd.to_numeric(raw, errors="coerce") if numeric else clean_text(raw).astype(object)
    words = codes.map(mapping).astype("string")
    if col.strict:
        rej.add(raw.notna() & words.isna(), lambda r: f"unknown {name} {r.get(name)!r}")
    return words


READERS: dict[str, Callable[[pd.DataFrame, Rejecter, Column, str], pd.Series]] = {
    "text": _read_text,
    "int": _read_int,
    "num": _read_num,
    "date": _read_date,
    "datetime": _read_datetime,
    "bool": _read_bool,
    "guid": _read_guid,
    "map": _read_map,
}
_EMPTY_DTYPES = {"text": "string", "uuid": "string", "boolean": "boolean", "bigint": "Int64", "integer": "Int64"}


def read_column(df: pd.DataFrame, rej: Rejecter, col: Column) -> pd.Series:
    """One declared column: read from its Exact field (the first that has a value, if it names several),
    checked as its kind says, required if declared so, defaulted if Exact sent nothing."""
    if not col.sources or col.read is None:
        dtype = "Float64" if col.sql_type.startswith("numeric") else _EMPTY_DTYPES.get(col.sql_type, "object")
        return pd.Series([None] * len(df), index=df.index, dtype=dtype)
    reader = READERS[col.read]
    values = reader(df, rej, col, col.sources[0])
    for other in col.sources[1:]:
        values = values.fillna(reader(df, rej, col, other))
    if col.required:
        missing = values.isna() | (values == "") if col.read == "text" else values.isna()
        rej.add(missing, f"missing {col.label}")
    if col.default is not None:
        values = values.fillna(col.default)
    return values


@dataclass
class Rows:
    """A page being transformed, as the category's rules see it: the declared columns already read (`frame`,
    with `passes_filter` True), the records as Exact sent them (`raw`), and the reject reasons so far."""

    frame: pd.DataFrame
    raw: pd.DataFrame
    rejecter: Rejecter

    def field(self, name: str) -> pd.Series:
        """An Exact field as sent (all None if the page does not have it)."""
        return _column(self.raw, name)

    def read(self, col: Column) -> pd.Series:
        """A field the rules need that is no column of the table, read and checked like a declared column."""
        return read_column(self.raw, self.rejecter, col)

    def numbers(self, name: str) -> pd.Series:
        """An Exact field as sent, as numbers (NaN where it is none): for codes the rules compare (IsTime, Type)."""
        return pd.to_numeric(self.field(name), errors="coerce")

    def reject(self, mask: pd.Series, reason) -> None:
        self.rejecter.add(mask, reason)

    def active(self, today: dt.date) -> pd.Series:
        """Started (StartDate empty or not after today) and not ended (EndDate empty or today or later)."""
        return _active(self.frame["start_date"], self.frame["end_date"], today, self.frame.index)


def transform(
    records: list[dict], settings, today: dt.date, *, source: Source, table: TableSpec, rules: Callable | None
) -> TransformResult:
    """A page of Exact records → the table's rows (each column read as the registry declares it) and rejects."""
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    key = next((c.sources[0] for c in table.columns if c.name == table.merge_key and c.sources), source.id_field)
    rej = Rejecter(df, key)
    exact_id = clean_text(_column(df, source.id_field)).str.lower()
    rej.add(exact_id.isna() | ~exact_id.fillna("").str.match(_GUID_RE), "missing or invalid Exact ID")
    out = {"exact_id": exact_id}
    if source.mode == "sync":
        timestamp, invalid = _whole_numbers(_column(df, "Timestamp"))  # Edm.Int64: a number, or text
        rej.add(timestamp.isna() | invalid, "missing or invalid Timestamp")
        out["exact_timestamp"] = timestamp
    else:  # Exact has no Timestamp on these endpoints
        out["exact_timestamp"] = pd.Series([None] * len(df), index=df.index, dtype="Int64")
    for col in table.columns:
        if col.name not in out:
            out[col.name] = read_column(df, rej, col)
    frame = pd.DataFrame(out, index=df.index)
    frame["passes_filter"] = True
    if rules is not None:
        rules(Rows(frame, df, rej), settings, today)
    keep, rejects = rej.split(records)
    frame["passes_filter"] = frame["passes_filter"].fillna(False).astype("boolean")
    return TransformResult(frame=frame[keep.to_numpy()].reset_index(drop=True), rejects=rejects)


def standard_prices(records: list[dict]) -> pd.DataFrame:
    """Sales item prices → rows of the price mirror (all of them; the standard price is chosen in SQL)."""
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    start, _ = exact_date(_column(df, "StartDate"))
    end, _ = exact_date(_column(df, "EndDate"))
    return pd.DataFrame(
        {
            "exact_id": clean_text(_column(df, "ID")).str.lower(),
            "item_id": clean_text(_column(df, "Item")).str.lower(),
            "account_id": clean_text(_column(df, "Account")).str.lower(),
            "project_id": clean_text(_column(df, "Project")).str.lower(),
            "employee_id": clean_text(_column(df, "Employee")).str.lower(),
            "price": pd.to_numeric(_column(df, "Price"), errors="coerce").astype("Float64"),
            "currency": clean_text(_column(df, "Currency")),
            "quantity": pd.to_numeric(_column(df, "Quantity"), errors="coerce").astype("Float64"),
            "unit": clean_text(_column(df, "Unit")),
            "start_date": start,
            "end_date": end,
            "exact_timestamp": _int64(pd.to_numeric(_column(df, "Timestamp"), errors="coerce")),
        }
    )
