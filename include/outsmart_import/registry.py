"""The category registry: per import category, where the data comes from, how it is shaped and where it goes.

Adding a category is one `Category(...)` entry here (plus its transform function and, for a new Exact
endpoint, the sandbox's data): the DAG file generates one DAG per entry and the runner and loader read
everything else from the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal



@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    # Columns that only record where a row came from do not make it "changed" on their own.
    compare: bool = True


@dataclass(frozen=True)
class Lookup:
    """Fill `column` with `value` from another OutSmart table whose exact_id equals this row's `via` column
    (Exact gives some records only the GUID of a related account or item, not its code)."""

    column: str
    via: str
    tables: tuple[str, ...]
    value: str = "code"


@dataclass(frozen=True)
class TableSpec:
    name: str  # without schema; the table lives in schema `outsmart`
    columns: tuple[Column, ...]
    merge_key: str = "code"
    identity: str = "exact_id"  # Exact's stable ID: finds a row whose code was changed in Exact
    lookups: tuple[Lookup, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Source:
    endpoint: str  # e.g. 'sync/CRM/Accounts'
    mode: Literal["sync", "full"]  # sync: Timestamp watermark + sync/Deleted; full: read all, soft-delete the rest
    select: tuple[str, ...]
    deleted_entity_type: int | None = None  # sync/Deleted EntityType


@dataclass(frozen=True)
class Lines:
    """The lines of a header category (order lines, ...): their own sync stream and table, loaded in the same
    transaction as the headers; a line whose header (lines.parent_key = header.header_key) is nowhere is rejected."""

    source: Source
    table: TableSpec
    transform: str
    parent_key: str
    header_key: str

    def transform_fn(self) -> Callable:
        from include.outsmart_import import transforms

        return getattr(transforms, self.transform)


@dataclass(frozen=True)
class Category:
    name: str
    title: str
    pro: bool
    source: Source
    table: TableSpec
    # Name of the function in transforms.py; None: not implemented yet (the DAG exists and says so). A name, not
    # the function, so that parsing the DAG file does not import pandas.
    transform: str | None = None
    doc: str = ""
    # "standard_sales_price": also mirror sync/Logistics/SalesItemPrices and fill `sales_price` from it.
    enrich: str | None = None
    lines: Lines | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def implemented(self) -> bool:
        return self.transform is not None

    def transform_fn(self) -> Callable:
        from include.outsmart_import import transforms

        return getattr(transforms, self.transform)

    @property
    def dag_id(self) -> str:
        return f"exact_online_import_{self.name}"


def _audit(*cols: Column) -> tuple[Column, ...]:
    """Business columns plus the Exact identity columns every table has."""
    return (*cols, Column("exact_id", "uuid"), Column("exact_timestamp", "bigint", compare=False))


T, B, D, N = "text", "boolean", "date", "numeric(18,4)"
ITEM_SELECT = ("ID", "Code", "Description", "ItemGroupCode", "IsTime", "Unit", "CostPriceStandard", "Barcode",
               "StartDate", "EndDate", "Timestamp")
# Standard sales prices (sync/Logistics/SalesItemPrices has the prices the item sync endpoint lacks).
PRICE_SOURCE = Source("sync/Logistics/SalesItemPrices", "sync",
                      ("ID", "Item", "Account", "Price", "Currency", "Quantity", "Unit", "StartDate", "EndDate",
                       "Timestamp"), deleted_entity_type=8)

CATEGORIES: dict[str, Category] = {c.name: c for c in [
    Category(
        name="relations",
        title="Relations (Exact accounts)",
        pro=False,
        source=Source(
            endpoint="sync/CRM/Accounts",
            mode="sync",
            select=("ID", "Code", "Name", "Status", "IsSupplier", "Blocked", "StartDate", "EndDate", "Email", "Phone",
                    "AddressLine1", "Postcode", "City", "Country", "VATNumber", "ChamberOfCommerce", "Timestamp"),
            deleted_entity_type=2,
        ),
        table=TableSpec("relations", _audit(
            Column("code", T), Column("name", T), Column("relation_type", T), Column("is_supplier", B),
            Column("is_blocked", B), Column("is_active", B), Column("email", T), Column("phone", T),
            Column("address_line1", T), Column("postcode", T), Column("city", T), Column("country", T),
            Column("vat_number", T), Column("coc_number", T), Column("start_date", D), Column("end_date", D),
        )),
        transform="relations",
        doc="Exact customers (and, by setting, prospects, suspects, suppliers), filtered by relation type; "
            "inactive (ended) and blocked accounts only when included.",
    ),
    Category(
        name="materials",
        title="Materials (Exact items that are not time items)",
        pro=False,
        source=Source("sync/Logistics/Items", "sync", ITEM_SELECT, deleted_entity_type=9),
        table=TableSpec("materials", _audit(
            Column("code", T), Column("description", T), Column("category_code", T), Column("unit", T),
            Column("cost_price", N), Column("sales_price", N), Column("barcode", T), Column("is_active", B),
            Column("start_date", D), Column("end_date", D),
        )),
        transform="materials",
        enrich="standard_sales_price",
        doc="Exact items with IsTime = 0, limited to the item groups in `item_groups` (empty = all). The sales "
            "price is the item's standard sales price: the current sales item price without an account.",
    ),
    Category(
        name="hour_types",
        title="Hour types (Exact time items)",
        pro=False,
        source=Source("sync/Logistics/Items", "sync", ITEM_SELECT, deleted_entity_type=9),
        table=TableSpec("hour_types", _audit(
            Column("code", T), Column("name", T), Column("category_code", T), Column("unit", T),
            Column("cost_price", N), Column("sales_price", N), Column("is_active", B), Column("start_date", D),
            Column("end_date", D),
        )),
        transform="hour_types",
        enrich="standard_sales_price",
        doc="Exact time items (IsTime = 1: labour, travel), limited to the item groups in `item_groups`.",
    ),
    Category(
        name="categories",
        title="Categories (Exact item groups)",
        pro=False,
        source=Source("logistics/ItemGroups", "full", ("ID", "Code", "Description", "IsDefault")),
        table=TableSpec("categories", _audit(Column("code", T), Column("description", T), Column("is_default", B))),
        transform="categories",
        doc="Exact item groups. Exact has no sync endpoint for them: every run reads them all and soft-deletes "
            "groups that disappeared.",
    ),
    Category(
        name="employees",
        title="Employees",
        pro=False,
        source=Source("sync/Payroll/Employees", "sync",
                      ("ID", "Code", "FirstName", "MiddleName", "LastName", "FullName", "BusinessEmail", "Email",
                       "BusinessPhone", "Mobile", "Phone", "IsActive", "StartDate", "EndDate", "Timestamp"),
                      deleted_entity_type=42),
        table=TableSpec("employees", _audit(
            Column("code", T), Column("first_name", T), Column("last_name", T), Column("full_name", T),
            Column("email", T), Column("phone", T), Column("is_active", B), Column("start_date", D),
            Column("end_date", D),
        )),
        transform="employees",
        doc="Exact payroll employees; inactive ones only with `include_inactive`.",
    ),
    Category(
        name="payment_transactions",
        title="Payment transactions (customer receivables)",
        pro=False,
        source=Source("sync/Cashflow/PaymentTerms", "sync",
                      ("ID", "LineType", "InvoiceNumber", "InvoiceDate", "DueDate", "AccountCode", "AccountName",
                       "AmountDC", "Currency", "IsFullyPaid", "Status", "LastPaymentDate", "Timestamp"),
                      deleted_entity_type=10),
        table=TableSpec("payment_transactions", _audit(
            Column("invoice_number", "bigint"), Column("account_code", T), Column("account_name", T),
            Column("amount", N), Column("currency", T), Column("is_fully_paid", B), Column("status", T),
            Column("invoice_date", D), Column("due_date", D), Column("last_payment_date", D),
        ), merge_key="exact_id"),
        transform="payment_transactions",
        doc="Customer receivables: Exact payment terms with LineType 20 (payables, 22, are left out); with "
            "`only_open`, only those not fully paid. Merged on the Exact ID.",
    ),
    Category("warehouses", "Warehouses", True,
             Source("inventory/Warehouses", "full", ("ID", "Code", "Description", "Main")),
             TableSpec("warehouses", _audit(Column("code", T), Column("description", T)))),
    Category("price_agreements", "Price agreements", True,
             Source("sync/Logistics/SalesItemPrices", "sync", ("ID", "Account", "ItemCode", "Price", "Timestamp"), 8),
             TableSpec("price_agreements", _audit(Column("item_code", T)), merge_key="exact_id")),
    Category("sales_orders", "Sales orders", True,
             Source("sync/SalesOrder/SalesOrderHeaders", "sync", ("ID", "OrderID", "OrderNumber", "Timestamp"), 32),
             TableSpec("sales_orders", _audit(Column("order_number", T)), merge_key="exact_id")),
    Category("shop_orders", "Shop orders", True,
             Source("sync/Manufacturing/ShopOrders", "sync", ("ID", "ShopOrderNumber", "Timestamp"), 36),
             TableSpec("shop_orders", _audit(Column("shop_order_number", T)), merge_key="exact_id")),
    Category("goods_deliveries", "Goods deliveries", True,
             Source("sync/SalesOrder/GoodsDeliveries", "sync", ("EntryID", "DeliveryNumber", "Timestamp"), 16),
             TableSpec("goods_deliveries", _audit(Column("delivery_number", T)), merge_key="exact_id")),
    Category("quotations", "Quotations", True,
             Source("sync/CRM/QuotationHeaders", "sync", ("ID", "QuotationID", "QuotationNumber", "Timestamp"), 34),
             TableSpec("quotations", _audit(Column("quotation_number", T)), merge_key="exact_id")),
    Category("project_planning", "Project planning", True,
             Source("sync/Project/ProjectPlanning", "sync", ("ID", "EmployeeCode", "ProjectCode", "Timestamp"), 26),
             TableSpec("project_planning", _audit(Column("project_code", T)), merge_key="exact_id")),
    Category("assembly_orders", "Assembly orders", True,
             Source("inventory/AssemblyOrders", "full", ("ID", "OrderNumber", "ItemCode")),
             TableSpec("assembly_orders", _audit(Column("order_number", T)), merge_key="exact_id")),
]}

STANDARD = [c for c in CATEGORIES.values() if not c.pro]
PRO = [c for c in CATEGORIES.values() if c.pro]
