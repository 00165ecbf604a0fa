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
    # Rules that fill columns from a second Exact stream (a `loader.Enrichment`), as "module:attribute": a name,
    # not the object, so that parsing the DAG file does not import pandas. E.g. the standard sales price.
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
# Sales item prices (the prices the item sync endpoint lacks): price agreements, and the standard sales price.
PRICE_SOURCE = Source("sync/Logistics/SalesItemPrices", "sync",
                      ("ID", "Item", "Account", "Price", "Currency", "Quantity", "Unit", "StartDate", "EndDate",
                       "Timestamp"), deleted_entity_type=8)
STANDARD_SALES_PRICE = "include.outsmart_import.exact_prices:STANDARD_SALES_PRICE"

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
        enrich=STANDARD_SALES_PRICE,
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
        enrich=STANDARD_SALES_PRICE,
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
    # ---- Exact Online Pro ------------------------------------------------------------------------------------
    Category(
        name="warehouses", title="Warehouses", pro=True,
        source=Source("inventory/Warehouses", "full", ("ID", "Code", "Description", "Main")),
        table=TableSpec("warehouses", _audit(Column("code", T), Column("description", T), Column("is_main", B))),
        transform="warehouses",
        doc="Exact warehouses (no sync endpoint: read in full; what disappears is soft-deleted).",
    ),
    Category(
        name="price_agreements", title="Price agreements", pro=True,
        source=PRICE_SOURCE,
        table=TableSpec("price_agreements", _audit(
            Column("account_exact_id", "uuid"), Column("account_code", T), Column("account_name", T),
            Column("item_code", T), Column("item_description", T), Column("price", N), Column("currency", T),
            Column("min_quantity", N), Column("unit", T), Column("start_date", D), Column("end_date", D),
        ), merge_key="exact_id", lookups=(Lookup("account_code", "account_exact_id", ("relations",)),)),
        transform="price_agreements",
        doc="Sales item prices that have an account (Exact treats those as price agreements); with "
            "`only_current`, only those valid today. The customer's code comes from outsmart.relations.",
    ),
    Category(
        name="sales_orders", title="Sales orders", pro=True,
        source=Source("sync/SalesOrder/SalesOrderHeaders", "sync",
                      ("ID", "OrderID", "OrderNumber", "OrderedBy", "OrderedByName", "OrderDate", "DeliveryDate",
                       "Status", "AmountDC", "Currency", "WarehouseCode", "Description", "YourRef", "Timestamp"), 32),
        table=TableSpec("sales_orders", _audit(
            Column("order_id", "uuid"), Column("order_number", "bigint"), Column("customer_exact_id", "uuid"),
            Column("customer_code", T), Column("customer_name", T), Column("order_date", D),
            Column("delivery_date", D), Column("status", T), Column("amount", N), Column("currency", T),
            Column("warehouse_code", T), Column("description", T), Column("your_ref", T),
        ), merge_key="exact_id", lookups=(Lookup("customer_code", "customer_exact_id", ("relations",)),)),
        transform="sales_orders",
        lines=Lines(
            Source("sync/SalesOrder/SalesOrderLines", "sync",
                   ("ID", "OrderID", "OrderNumber", "LineNumber", "ItemCode", "Description", "Quantity", "UnitCode",
                    "UnitPrice", "NetPrice", "AmountDC", "QuantityDelivered", "QuantityInvoiced", "DeliveryDate",
                    "Timestamp"), 33),
            TableSpec("sales_order_lines", _audit(
                Column("order_id", "uuid"), Column("order_number", "bigint"), Column("line_number", "integer"),
                Column("item_code", T), Column("description", T), Column("quantity", N), Column("unit", T),
                Column("unit_price", N), Column("net_price", N), Column("amount", N),
                Column("quantity_delivered", N), Column("quantity_invoiced", N), Column("delivery_date", D),
            ), merge_key="exact_id"),
            "sales_order_lines", parent_key="order_id", header_key="order_id"),
        doc="Exact sales orders (SalesOrderHeaders) and their lines, filtered by `statuses` (open, partial, complete, "
            "cancelled). The customer's code comes from outsmart.relations.",
    ),
    Category(
        name="shop_orders", title="Shop orders", pro=True,
        source=Source("sync/Manufacturing/ShopOrders", "sync",
                      ("ID", "ShopOrderNumber", "ItemCode", "Description", "PlannedQuantity", "ProducedQuantity",
                       "PlannedStartDate", "PlannedDate", "Status", "IsReleased", "IsOnHold", "Timestamp"), 36),
        table=TableSpec("shop_orders", _audit(
            Column("shop_order_number", "bigint"), Column("item_code", T), Column("description", T),
            Column("planned_quantity", N), Column("produced_quantity", N), Column("planned_start_date", D),
            Column("planned_end_date", D), Column("status", T), Column("is_released", B), Column("is_on_hold", B),
        ), merge_key="exact_id"),
        transform="shop_orders",
        doc="Exact manufacturing shop orders.",
    ),
    Category(
        name="goods_deliveries", title="Goods deliveries", pro=True,
        source=Source("sync/SalesOrder/GoodsDeliveries", "sync",
                      ("EntryID", "DeliveryNumber", "DeliveryAccountCode", "DeliveryAccountName", "DeliveryDate",
                       "TrackingNumber", "WarehouseCode", "Description", "Timestamp"), 16),
        table=TableSpec("goods_deliveries", _audit(
            Column("delivery_number", "bigint"), Column("customer_code", T), Column("customer_name", T),
            Column("delivery_date", D), Column("tracking_number", T), Column("warehouse_code", T),
            Column("description", T),
        ), merge_key="exact_id"),
        transform="goods_deliveries",
        lines=Lines(
            Source("sync/SalesOrder/GoodsDeliveryLines", "sync",
                   ("ID", "EntryID", "LineNumber", "ItemCode", "QuantityDelivered", "QuantityOrdered",
                    "SalesOrderNumber", "SalesOrderLineNumber", "Unitcode", "DeliveryDate", "Timestamp"), 17),
            TableSpec("goods_delivery_lines", _audit(
                Column("entry_id", "uuid"), Column("line_number", "integer"), Column("item_code", T),
                Column("quantity_delivered", N), Column("quantity_ordered", N), Column("sales_order_number", "bigint"),
                Column("sales_order_line_number", "integer"), Column("unit", T), Column("delivery_date", D),
            ), merge_key="exact_id"),
            "goods_delivery_lines", parent_key="entry_id", header_key="exact_id"),
        doc="Exact goods deliveries (the header key is EntryID) and their lines, linked to sales order lines. A "
            "line split over storage locations can repeat its ID on the sync endpoint: the newest version wins.",
    ),
    Category(
        name="quotations", title="Quotations", pro=True,
        source=Source("sync/CRM/QuotationHeaders", "sync",
                      ("ID", "QuotationID", "QuotationNumber", "VersionNumber", "OrderAccountCode", "OrderAccountName",
                       "QuotationDate", "DueDate", "Status", "AmountDC", "Currency", "Description", "Timestamp"), 34),
        table=TableSpec("quotations", _audit(
            Column("quotation_id", "uuid"), Column("quotation_number", "bigint"), Column("version_number", "integer"),
            Column("customer_code", T), Column("customer_name", T), Column("quotation_date", D),
            Column("due_date", D), Column("status", T), Column("amount", N), Column("currency", T),
            Column("description", T),
        ), merge_key="exact_id"),
        transform="quotations",
        lines=Lines(
            Source("sync/CRM/QuotationLines", "sync",
                   ("ID", "QuotationID", "QuotationNumber", "LineNumber", "Item", "ItemDescription", "Quantity",
                    "UnitCode", "UnitPrice", "AmountDC", "Timestamp"), 35),
            TableSpec("quotation_lines", _audit(
                Column("quotation_id", "uuid"), Column("quotation_number", "bigint"), Column("line_number", "integer"),
                Column("item_exact_id", "uuid"), Column("item_code", T), Column("description", T),
                Column("quantity", N), Column("unit", T), Column("unit_price", N), Column("amount", N),
            ), merge_key="exact_id",
                lookups=(Lookup("item_code", "item_exact_id", ("materials", "hour_types")),)),
            "quotation_lines", parent_key="quotation_id", header_key="quotation_id"),
        doc="Exact quotations (QuotationHeaders, every version) and their lines, filtered by `statuses`. Quotation "
            "lines carry only the item's ID: its code comes from outsmart.materials / outsmart.hour_types.",
    ),
    Category(
        name="project_planning", title="Project planning", pro=True,
        source=Source("sync/Project/ProjectPlanning", "sync",
                      ("ID", "EmployeeCode", "ProjectCode", "ProjectDescription", "AccountCode", "HourTypeCode",
                       "StartDate", "EndDate", "Hours", "Status", "Description", "Timestamp"), 26),
        table=TableSpec("project_planning", _audit(
            Column("employee_code", T), Column("project_code", T), Column("project_description", T),
            Column("customer_code", T), Column("hour_type_code", T), Column("start_at", "timestamptz"),
            Column("end_at", "timestamptz"), Column("hours", N), Column("status", T), Column("description", T),
        ), merge_key="exact_id"),
        transform="project_planning",
        doc="Exact project planning: employee, project, customer, hour type, start/end, hours, status.",
    ),
    Category(
        name="assembly_orders", title="Assembly orders", pro=True,
        source=Source("inventory/AssemblyOrders", "full",
                      ("ID", "OrderNumber", "ItemCode", "Description", "PlannedQuantity", "FinishedQuantity",
                       "OrderDate", "AssemblyDate", "FinishedAssemblyDate", "OrderStatus", "Type", "WarehouseCode")),
        table=TableSpec("assembly_orders", _audit(
            Column("order_number", "bigint"), Column("item_code", T), Column("description", T),
            Column("planned_quantity", N), Column("finished_quantity", N), Column("order_date", D),
            Column("assembly_date", D), Column("finished_date", D), Column("status", T),
            Column("is_disassembly", B), Column("warehouse_code", T),
        ), merge_key="exact_id"),
        transform="assembly_orders",
        doc="Exact assembly orders. Exact has no sync endpoint and no Modified field for them: every run reads "
            "them all and soft-deletes what disappeared.",
    ),
]}

STANDARD = [c for c in CATEGORIES.values() if not c.pro]
PRO = [c for c in CATEGORIES.values() if c.pro]
