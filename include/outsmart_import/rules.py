"""The categories' rules: what is more than reading a field (filters, activity, name rules).

Each rule takes the page being transformed (`transforms.Rows`), the category's settings and today, and sets columns
and `passes_filter` in `rows.frame`. The registry holds these functions themselves; this module imports no pandas
(only the objects it is handed are pandas), because the registry is read when Airflow parses the DAG file.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from include.outsmart_import.declarations import flag, text

if TYPE_CHECKING:
    from include.outsmart_import.transforms import Rows


def relations(rows: Rows, settings, today: dt.date) -> None:
    """passes_filter: type selected (or 'supplier' selected and IsSupplier) and, unless included, not inactive
    and not blocked. Never the division's own account (Exact `Type` 'D'; ordinary accounts are 'A'), whatever the
    settings: it is the administration itself, not a relation."""
    f = rows.frame
    is_active = rows.active(today)
    f["is_active"] = is_active.astype("boolean")
    wanted = set(settings.relation_types)
    passes = f["relation_type"].isin(list(wanted)).fillna(False).astype(bool)
    if "supplier" in wanted:
        passes |= f["is_supplier"].astype(bool)
    if not settings.include_inactive:
        passes &= is_active
    if not settings.include_blocked:
        passes &= ~f["is_blocked"].astype(bool)
    passes &= ~(rows.field("Type").astype("string").str.strip() == "D").fillna(False).astype(bool)
    f["passes_filter"] = passes


def contacts(rows: Rows, settings, today: dt.date) -> None:
    """A contact person is active until the day after their end date."""
    rows.frame["is_active"] = rows.active(today).astype("boolean")


def _items(rows: Rows, settings, today: dt.date, *, time_items: bool) -> None:
    """Exact items: IsTime splits them into materials (0) and hour types (1); then the selected item groups
    (none selected = all)."""
    f = rows.frame
    is_time = rows.numbers("IsTime")
    rows.reject(~is_time.isin([0, 1]), lambda r: f"IsTime is not 0 or 1: {r.get('IsTime')!r}")
    f["is_active"] = rows.active(today).astype("boolean")
    groups = list(settings.item_groups)
    in_group = f["category_code"].isin(groups).fillna(False).astype(bool) if groups else True
    f["passes_filter"] = (is_time == (1 if time_items else 0)).fillna(False).astype(bool) & in_group


def materials(rows: Rows, settings, today: dt.date) -> None:
    _items(rows, settings, today, time_items=False)


def hour_types(rows: Rows, settings, today: dt.date) -> None:
    _items(rows, settings, today, time_items=True)


def employees(rows: Rows, settings, today: dt.date) -> None:
    """Inactive (IsActive false, or ended) only when included. Dutch surnames carry their prefix ("van der",
    "de") in MiddleName; OutSmart wants it with the last name, and a full name when Exact has none."""
    f = rows.frame
    middle = rows.read(text("middle_name", "MiddleName", 60))
    first, last, full = f["first_name"], f["last_name"], f["full_name"]
    prefix = (middle.fillna("") + " ").str.lstrip()
    f["full_name"] = full.where(
        full.notna() & (full != ""), (first.fillna("") + " " + prefix + last.fillna("")).str.strip()
    )
    f["last_name"] = (prefix + last.fillna("")).str.strip().where(last.notna(), None)
    is_active = rows.read(flag("is_active_flag", "IsActive")).fillna(True).astype(bool) & rows.active(today)
    f["is_active"] = is_active.astype("boolean")
    f["passes_filter"] = True if settings.include_inactive else is_active


def payment_transactions(rows: Rows, settings, today: dt.date) -> None:
    """Customer receivables only (LineType 20; payables are 22); with only_open, those not fully paid."""
    f = rows.frame
    passes = (rows.numbers("LineType") == 20).fillna(False).astype(bool)
    if settings.only_open:
        passes &= ~f["is_fully_paid"].fillna(False).astype(bool)
    f["passes_filter"] = passes


def price_agreements(rows: Rows, settings, today: dt.date) -> None:
    """Sales item prices that have an account (Exact's "price agreements"); with only_current, valid today."""
    f = rows.frame
    passes = f["account_exact_id"].notna().astype(bool)
    if settings.only_current:
        passes &= rows.active(today)
    f["passes_filter"] = passes


def status_filter(rows: Rows, settings, today: dt.date) -> None:
    """Only the statuses selected in the settings (sales orders, quotations)."""
    rows.frame["passes_filter"] = rows.frame["status"].isin(list(settings.statuses)).fillna(False).astype(bool)


def assembly_orders(rows: Rows, settings, today: dt.date) -> None:
    """Exact's assembly order Type 8061 is a disassembly."""
    kind = rows.numbers("Type")
    rows.frame["is_disassembly"] = (kind == 8061).fillna(False).astype("boolean")
