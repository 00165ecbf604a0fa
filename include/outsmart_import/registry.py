"""The category registry: per import category, where the data comes from, how it is shaped and where it goes.

Each target column is declared once, with the Exact field it is read from and how to read it; the `$select`,
the DDL, the change comparison and the plain field mapping are all derived from that declaration. Hand-written
code remains only for real rules (filters, activity, name rules): the function the entry holds (rules.py).

Adding a category is one `Category(...)` entry (plus, if it has rules, one function, and, if it has filters,
one settings model in filters.py): the DAG file generates its DAG, the settings Variable accepts its switch,
the schema migration creates its table and the runner lands, derives and merges it from this entry alone.

Parsing the DAG file imports this module and what it holds (rules.py, delivery_lines.py, exact_prices.py): keep them
free of pandas, pyarrow and database imports at module level.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from include.outsmart_import import rules
from include.outsmart_import.declarations import (  # noqa: F401 - re-exported for the entries and the tests
    GUID_PATTERN,
    ROWS,
    Column,
    Lookup,
    Read,
    Source,
    TableSpec,
    _audit,
    code,
    date,
    derived,
    flag,
    guid,
    integer,
    moment,
    number,
    status,
    text,
)
from include.outsmart_import.delivery_lines import goods_delivery_lines
from include.outsmart_import.enrichment import Enrichment
from include.outsmart_import.exact_codes import (
    ADDRESS_TYPE,
    ASSEMBLY_STATUS,
    PAYMENT_STATUS,
    PLANNING_STATUS,
    QUOTATION_STATUS,
    RELATION_TYPE,
    SALES_ORDER_STATUS,
    SHOP_ORDER_STATUS,
)
from include.outsmart_import.exact_prices import StandardSalesPrice
from include.outsmart_import.filters import (
    CategorySettings,
    EmployeesSettings,
    ItemGroupSettings,
    PaymentTransactionsSettings,
    PriceAgreementsSettings,
    QuotationsSettings,
    RelationsSettings,
    SalesOrdersSettings,
)

# What the merge did with the records of one run, in the order the import log and the settings page show them. One
# tuple for the import core, the log and the page, so that a count added to the merge cannot be missing on the page.
MERGE_COUNTS = ("inserted", "updated", "unchanged", "filtered_out", "rejected", "deleted")


# A category's rules: (rows, settings, today) -> None, setting columns and `passes_filter` (rules.py).
Rule = Callable[..., None]


def _transform_fn(source: Source, table: TableSpec, rule: Rule | None) -> Callable:
    """records, settings, today → TransformResult: the declared columns read generically, then the rules. The
    transforms (pandas) are imported only now: the registry is read when Airflow parses the DAG file."""
    from functools import partial

    from include.outsmart_import import transforms

    return partial(transforms.transform, source=source, table=table, rules=rule)


@dataclass(frozen=True)
class Lines:
    """A table that belongs to the category's rows (order lines, a relation's addresses, ...): its own sync stream
    and table, loaded in the same transaction as the headers. A line passes only while its header (lines.parent_key
    = header.header_key) is in OutSmart; a line whose header is nowhere is rejected (`orphans="reject"`: an order
    line without its order is an error) or just left out (`orphans="filter"`: the address of an account that the
    relations filter leaves out is no error)."""

    source: Source
    table: TableSpec
    parent_key: str
    header_key: str
    rules: Rule | None = None  # the lines' rules (rules.py or a module of their own, e.g. delivery_lines.py)
    orphans: Literal["reject", "filter"] = "reject"
    # A boolean of the category's settings that switches this table on (None: always on).
    setting: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", self.source.bound_to(self.table))

    def transform_fn(self) -> Callable:
        return _transform_fn(self.source, self.table, self.rules)


# ---- how the settings page shows a category's filters ---------------------------------------------------------------
# checkbox: a flag; checkboxes: a list of words, one checkbox each; item_groups: the division's item-group codes.
Widget = Literal["checkbox", "checkboxes", "item_groups"]

# The words of the filters' choices as the office knows them from Exact Online (Dutch in brackets). A word without a
# label here is shown as it is.
CHOICE_LABELS = {
    "customer": "Customer (Klant)",
    "prospect": "Prospect",
    "suspect": "Suspect",
    "none": "None (Geen)",
    "supplier": "Supplier (Leverancier)",
    "open": "Open",
    "partial": "Partly delivered (Gedeeltelijk)",
    "complete": "Complete (Afgehandeld)",
    "cancelled": "Cancelled (Geannuleerd)",
    "rejected": "Rejected (Afgewezen)",
    "closed": "Closed (Gesloten)",
    "recovery": "Recovery (Herstel)",
    "draft": "Draft (Concept)",
    "processing": "Processing (In behandeling)",
    "printed": "Printed (Afgedrukt)",
    "accepted": "Accepted (Geaccepteerd)",
    "awaiting_acceptance": "Awaiting acceptance (Wacht op acceptatie)",
    "accepted_with_error": "Accepted with error (Geaccepteerd met fout)",
}


# The same words in Dutch, for the page in Dutch (tests/plugins/exact_online_settings_page/test_labels.py: every word
# of CHOICE_LABELS has one).
DUTCH_CHOICE_LABELS = {
    "customer": "Klant",
    "prospect": "Prospect",
    "suspect": "Suspect",
    "none": "Geen",
    "supplier": "Leverancier",
    "open": "Open",
    "partial": "Gedeeltelijk",
    "complete": "Afgehandeld",
    "cancelled": "Geannuleerd",
    "rejected": "Afgewezen",
    "closed": "Gesloten",
    "recovery": "Herstel",
    "draft": "Concept",
    "processing": "In behandeling",
    "printed": "Afgedrukt",
    "accepted": "Geaccepteerd",
    "awaiting_acceptance": "Wacht op acceptatie",
    "accepted_with_error": "Geaccepteerd met fout",
}


@dataclass(frozen=True)
class Filter:
    """The settings page's label for one setting of the category's settings model (every setting but `enabled`,
    which is the category's switch). The widget follows from the setting's type: a flag is a checkbox, a list of
    words one checkbox per word; `widget` is given only where the type does not say (a list of item-group codes)."""

    key: str
    label: str
    widget: Widget | None = None
    # The label in Dutch, with the words the office knows from Exact Online's Dutch screens (the page in Dutch).
    dutch_label: str = ""


@dataclass(frozen=True)
class FilterWidget:
    """One filter as the settings page draws it: derived from a `Filter` and the settings model (`filter_widgets`)."""

    key: str
    widget: Widget
    label: str
    default: Any
    choices: tuple[tuple[str, str], ...] = ()  # (value, label), in the model's order
    dutch_label: str = ""


def _widget_for(category: str, declared: Filter, annotation: Any) -> tuple[Widget, tuple[tuple[str, str], ...]]:
    if annotation is bool:
        return "checkbox", ()
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and args and typing.get_origin(args[0]) is Literal:
        return "checkboxes", tuple((word, CHOICE_LABELS.get(word, word)) for word in typing.get_args(args[0]))
    if declared.widget is None:
        raise ValueError(
            f"category {category!r}: the setting {declared.key!r} ({annotation}) is neither a flag nor a list of "
            f"words: name its widget, e.g. Filter({declared.key!r}, ..., widget='item_groups')"
        )
    return declared.widget, ()


def filter_widgets(category: Category) -> tuple[FilterWidget, ...]:
    """The category's filters as the settings page shows them, in the order the entry declares them. Raises
    ValueError naming the setting when the entry's `filters` and its settings model disagree: a setting the page
    could not show, or a label for a setting the model does not have."""
    fields = category.settings.model_fields
    settable = [name for name in fields if name != "enabled"]
    declared = {f.key: f for f in category.filters}
    unknown = sorted(set(declared) - set(settable))
    if unknown:
        raise ValueError(
            f"category {category.name!r}: filters {unknown} are not settings of {category.settings.__name__}"
        )
    unlabelled = [name for name in settable if name not in declared]
    if unlabelled:
        raise ValueError(
            f"category {category.name!r}: the settings {unlabelled} of {category.settings.__name__} have no "
            f"Filter(key, label) in the registry entry, so the settings page could not show them"
        )
    defaults = category.default_settings()
    out = []
    for f in category.filters:
        widget, choices = _widget_for(category.name, f, fields[f.key].annotation)
        default = getattr(defaults, f.key)
        out.append(
            FilterWidget(
                f.key,
                widget,
                f.label,
                list(default) if isinstance(default, list) else default,
                choices,
                f.dutch_label,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Category:
    name: str
    title: str
    pro: bool
    source: Source
    table: TableSpec
    # The category's rules: a function (rows, settings, today), e.g. from rules.py; None: the declared columns are
    # all there is.
    rules: Rule | None = None
    # Its settings: the switch and its filters (a model in filters.py); the defaults come from that model.
    settings: type[CategorySettings] = CategorySettings
    enabled_by_default: bool = False
    doc: str = ""
    # Rules that fill columns from a second Exact stream (an `enrichment.Enrichment`), e.g. the standard sales price.
    enrichment: Enrichment | None = None
    lines: Lines | None = None
    # More tables of the same kind (a relation's addresses and contact persons), loaded in the same transaction.
    related: tuple[Lines, ...] = ()
    # The settings page: a shorter title (default: `title`), the name the office knows from Exact Online (Dutch)
    # and a label per filter of `settings` (see `filter_widgets`).
    short_title: str = ""
    dutch_title: str = ""
    filters: tuple[Filter, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", self.source.bound_to(self.table))
        filter_widgets(self)  # a filter the page could not show is an error in the entry, not on the page

    def transform_fn(self) -> Callable:
        return _transform_fn(self.source, self.table, self.rules)

    @property
    def dependents(self) -> tuple[Lines, ...]:
        """Every table that is loaded with the category's own: its lines, then the related tables."""
        return ((self.lines,) if self.lines else ()) + self.related

    def dependents_on(self, settings: CategorySettings) -> tuple[Lines, ...]:
        """The dependent tables the category's settings switch on."""
        return tuple(d for d in self.dependents if d.setting is None or getattr(settings, d.setting))

    def default_settings(self) -> CategorySettings:
        return self.settings(enabled=self.enabled_by_default)

    @property
    def dag_id(self) -> str:
        return f"exact_online_import_{self.name}"


T, B, D, N = "text", "boolean", "date", "numeric(18,4)"

ITEMS = Source("sync/Logistics/Items", "sync", deleted_entity_type=9, rule_fields=("IsTime",), webhook_topic="Items")
# Sales item prices (the prices the item sync endpoint lacks): price agreements, and the standard sales price. A
# price for a project or an employee, in another currency or for another unit is not the item's standard price.
PRICE_SOURCE = Source(
    "sync/Logistics/SalesItemPrices",
    "sync",
    (
        "ID",
        "Item",
        "Account",
        "Project",
        "Employee",
        "Price",
        "Currency",
        "Quantity",
        "Unit",
        "StartDate",
        "EndDate",
        "Timestamp",
    ),
    deleted_entity_type=8,
)
STANDARD_SALES_PRICE = StandardSalesPrice(PRICE_SOURCE)


def _item_columns(text_column: str, *extra: Column) -> tuple[Column, ...]:
    """Materials and hour types read the same item fields; the description's column name differs."""
    return (
        code("code", "Code", 50, required=True),
        text(text_column, "Description", required=True),
        code("category_code", "ItemGroupCode"),
        code("unit", "Unit", 30),
        number("cost_price", "CostPriceStandard"),
        derived("sales_price", N),
        *extra,
        derived("is_active", B),
        date("start_date", "StartDate"),
        date("end_date", "EndDate"),
    )


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in [
        Category(
            name="relations",
            title="Relations (Exact accounts)",
            pro=False,
            source=Source(
                "sync/CRM/Accounts", "sync", deleted_entity_type=2, rule_fields=("Type",), webhook_topic="Accounts"
            ),
            table=TableSpec(
                "relations",
                _audit(
                    code("code", "Code", 50, required=True),
                    text("name", "Name", required=True),
                    status("relation_type", "Status", RELATION_TYPE, strict=True),
                    flag("is_supplier", "IsSupplier", False),
                    flag("is_blocked", "Blocked", False),
                    derived("is_active", B),
                    text("email", "Email"),
                    text("phone", "Phone"),
                    text("address_line1", "AddressLine1"),
                    text("postcode", "Postcode"),
                    text("city", "City"),
                    text("country", "Country"),
                    text("vat_number", "VATNumber"),
                    text("coc_number", "ChamberOfCommerce"),
                    date("start_date", "StartDate"),
                    date("end_date", "EndDate"),
                    text("address_line2", "AddressLine2"),
                    text("address_line3", "AddressLine3"),
                    text("website", "Website"),
                ),
            ),
            rules=rules.relations,
            settings=RelationsSettings,
            enabled_by_default=True,
            related=(
                Lines(
                    Source("sync/CRM/Addresses", "sync", deleted_entity_type=3),
                    TableSpec(
                        "relation_addresses",
                        _audit(
                            guid("account_exact_id", "Account", required=True),
                            derived("relation_code", T),
                            status("address_type", "Type", ADDRESS_TYPE),
                            flag("is_main", "Main", False),
                            text("address_line1", "AddressLine1"),
                            text("address_line2", "AddressLine2"),
                            text("address_line3", "AddressLine3"),
                            text("postcode", "Postcode", 30),
                            text("city", "City"),
                            text("state", "State", 60),
                            text("country", "Country", 60),
                            text("phone", "Phone", 60),
                        ),
                        merge_key="exact_id",
                        lookups=(Lookup("relation_code", "account_exact_id", ("relations",)),),
                    ),
                    parent_key="account_exact_id",
                    header_key="exact_id",
                    orphans="filter",
                    setting="include_addresses",
                ),
                Lines(
                    Source("sync/CRM/Contacts", "sync", deleted_entity_type=5, webhook_topic="Contacts"),
                    TableSpec(
                        "relation_contacts",
                        _audit(
                            guid("account_exact_id", "Account", required=True),
                            derived("relation_code", T),
                            text("first_name", "FirstName", 120),
                            text("last_name", "LastName", 120),
                            text("full_name", "FullName"),
                            text("function", "JobTitleDescription"),
                            text("email", ("Email", "BusinessEmail")),
                            text("phone", ("Phone", "BusinessPhone"), 60),
                            text("mobile", ("BusinessMobile", "Mobile"), 60),
                            flag("is_main_contact", "IsMainContact", False),
                            derived("is_active", B),
                            date("start_date", "StartDate"),
                            date("end_date", "EndDate"),
                        ),
                        merge_key="exact_id",
                        lookups=(Lookup("relation_code", "account_exact_id", ("relations",)),),
                    ),
                    parent_key="account_exact_id",
                    header_key="exact_id",
                    rules=rules.contacts,
                    orphans="filter",
                    setting="include_contacts",
                ),
            ),
            short_title="Relations",
            dutch_title="Relaties",
            filters=(
                Filter("relation_types", "Relation types (Relatiesoorten)", dutch_label="Relatiesoorten"),
                Filter(
                    "include_inactive",
                    "Include inactive relations (niet actief: einddatum verstreken)",
                    dutch_label="Ook niet-actieve relaties (einddatum verstreken)",
                ),
                Filter(
                    "include_blocked",
                    "Include blocked relations (Geblokkeerd)",
                    dutch_label="Ook geblokkeerde relaties",
                ),
                Filter(
                    "include_addresses",
                    "Import their addresses: visit, postal, invoice, delivery (Adressen)",
                    dutch_label="Hun adressen importeren: bezoek, post, factuur, aflever (Adressen)",
                ),
                Filter(
                    "include_contacts",
                    "Import their contact persons (Contactpersonen)",
                    dutch_label="Hun contactpersonen importeren",
                ),
            ),
            doc="Exact customers (and, by setting, prospects, suspects, suppliers), filtered by relation type; "
            "inactive (ended) and blocked accounts only when included. With them, their addresses (visit, postal, "
            "invoice, delivery) and contact persons, in outsmart.relation_addresses and outsmart.relation_contacts.",
        ),
        Category(
            name="materials",
            title="Materials (Exact items that are not time items)",
            pro=False,
            source=ITEMS,
            table=TableSpec("materials", _audit(*_item_columns("description", code("barcode", "Barcode")))),
            rules=rules.materials,
            settings=ItemGroupSettings,
            enrichment=STANDARD_SALES_PRICE,
            short_title="Materials",
            dutch_title="Materialen",
            filters=(
                Filter(
                    "item_groups",
                    "Item groups (Artikelgroepen); none = all",
                    widget="item_groups",
                    dutch_label="Artikelgroepen; geen = alle",
                ),
            ),
            doc="Exact items with IsTime = 0, limited to the item groups in `item_groups` (empty = all). The sales "
            "price is the item's standard sales price: the current sales item price without an account.",
        ),
        Category(
            name="hour_types",
            title="Hour types (Exact time items)",
            pro=False,
            source=ITEMS,
            table=TableSpec("hour_types", _audit(*_item_columns("name"))),
            rules=rules.hour_types,
            settings=ItemGroupSettings,
            enrichment=STANDARD_SALES_PRICE,
            short_title="Hour types",
            dutch_title="Uursoorten",
            filters=(
                Filter(
                    "item_groups",
                    "Item groups (Artikelgroepen); none = all",
                    widget="item_groups",
                    dutch_label="Artikelgroepen; geen = alle",
                ),
            ),
            doc="Exact time items (IsTime = 1: labour, travel), limited to the item groups in `item_groups`.",
        ),
        Category(
            name="categories",
            title="Categories (Exact item groups)",
            pro=False,
            source=Source("logistics/ItemGroups", "full"),
            table=TableSpec(
                "categories",
                _audit(
                    code("code", "Code", required=True),
                    text("description", "Description"),
                    flag("is_default", "IsDefault", False),
                ),
            ),
            short_title="Categories",
            dutch_title="Categorieën (artikelgroepen)",
            doc="Exact item groups. Exact has no sync endpoint for them: every run reads them all and soft-deletes "
            "groups that disappeared.",
        ),
        Category(
            name="employees",
            title="Employees",
            pro=False,
            source=Source(
                "sync/Payroll/Employees", "sync", deleted_entity_type=42, rule_fields=("MiddleName", "IsActive")
            ),
            table=TableSpec(
                "employees",
                _audit(
                    code("code", "Code", 50, required=True),
                    text("first_name", "FirstName", 120),
                    text("last_name", "LastName", 120, required=True),
                    text("full_name", "FullName", 120),
                    text("email", ("BusinessEmail", "Email")),
                    # Business numbers only: Mobile and Phone are the employee's private ones (like PrivateEmail).
                    text("phone", "BusinessPhone", 60),
                    text("mobile", "BusinessMobile", 60),
                    derived("is_active", B),
                    date("start_date", "StartDate"),
                    date("end_date", "EndDate"),
                ),
            ),
            rules=rules.employees,
            settings=EmployeesSettings,
            short_title="Employees",
            dutch_title="Medewerkers",
            filters=(
                Filter(
                    "include_inactive",
                    "Include inactive employees (uit dienst)",
                    dutch_label="Ook medewerkers uit dienst",
                ),
            ),
            doc="Exact payroll employees; inactive ones only with `include_inactive`.",
        ),
        Category(
            name="payment_transactions",
            title="Payment transactions (customer receivables)",
            pro=False,
            source=Source("sync/Cashflow/PaymentTerms", "sync", deleted_entity_type=10, rule_fields=("LineType",)),
            table=TableSpec(
                "payment_transactions",
                _audit(
                    integer("invoice_number", "InvoiceNumber"),
                    code("account_code", "AccountCode"),
                    text("account_name", "AccountName"),
                    number("amount", "AmountDC"),
                    code("currency", "Currency", 3),
                    flag("is_fully_paid", "IsFullyPaid"),
                    status("status", "Status", PAYMENT_STATUS),
                    date("invoice_date", "InvoiceDate"),
                    date("due_date", "DueDate"),
                    date("last_payment_date", "LastPaymentDate"),
                ),
                merge_key="exact_id",
            ),
            rules=rules.payment_transactions,
            settings=PaymentTransactionsSettings,
            short_title="Payment transactions",
            dutch_title="Betalingstransacties",
            filters=(
                Filter(
                    "only_open", "Only open items (alleen openstaande posten)", dutch_label="Alleen openstaande posten"
                ),
            ),
            doc="Customer receivables: Exact payment terms with LineType 20 (payables, 22, are left out); with "
            "`only_open`, only those not fully paid. Merged on the Exact ID.",
        ),
        # ---- Exact Online Pro ------------------------------------------------------------------------------------
        Category(
            name="warehouses",
            title="Warehouses",
            pro=True,
            source=Source("inventory/Warehouses", "full"),
            table=TableSpec(
                "warehouses",
                _audit(
                    code("code", "Code", required=True),
                    text("description", "Description"),
                    flag("is_main", "Main"),
                ),
            ),
            dutch_title="Magazijnen",
            doc="Exact warehouses (no sync endpoint: read in full; what disappears is soft-deleted).",
        ),
        Category(
            name="price_agreements",
            title="Price agreements",
            pro=True,
            source=Source("sync/Logistics/SalesItemPrices", "sync", deleted_entity_type=8),
            table=TableSpec(
                "price_agreements",
                _audit(
                    guid("account_exact_id", "Account"),
                    derived("account_code", T),
                    text("account_name", "AccountName"),
                    code("item_code", "ItemCode"),
                    text("item_description", "ItemDescription"),
                    number("price", "Price"),
                    code("currency", "Currency"),
                    number("min_quantity", "Quantity"),
                    code("unit", "Unit"),
                    date("start_date", "StartDate"),
                    date("end_date", "EndDate"),
                ),
                merge_key="exact_id",
                lookups=(Lookup("account_code", "account_exact_id", ("relations",)),),
            ),
            rules=rules.price_agreements,
            settings=PriceAgreementsSettings,
            dutch_title="Prijsafspraken",
            filters=(
                Filter(
                    "only_current",
                    "Only agreements valid today (alleen geldige prijsafspraken)",
                    dutch_label="Alleen prijsafspraken die vandaag gelden",
                ),
            ),
            doc="Sales item prices that have an account (Exact treats those as price agreements); with "
            "`only_current`, only those valid today. The customer's code comes from outsmart.relations.",
        ),
        Category(
            name="sales_orders",
            title="Sales orders",
            pro=True,
            source=Source(
                "sync/SalesOrder/SalesOrderHeaders", "sync", deleted_entity_type=32, webhook_topic="SalesOrders"
            ),
            table=TableSpec(
                "sales_orders",
                _audit(
                    guid("order_id", "OrderID", required=True),
                    integer("order_number", "OrderNumber", required=True),
                    guid("customer_exact_id", "OrderedBy"),
                    derived("customer_code", T),
                    text("customer_name", "OrderedByName"),
                    date("order_date", "OrderDate"),
                    date("delivery_date", "DeliveryDate"),
                    status("status", "Status", SALES_ORDER_STATUS),
                    number("amount", "AmountDC"),
                    code("currency", "Currency"),
                    code("warehouse_code", "WarehouseCode"),
                    text("description", "Description"),
                    text("your_ref", "YourRef"),
                ),
                merge_key="exact_id",
                lookups=(Lookup("customer_code", "customer_exact_id", ("relations",)),),
            ),
            rules=rules.status_filter,
            settings=SalesOrdersSettings,
            lines=Lines(
                Source("sync/SalesOrder/SalesOrderLines", "sync", deleted_entity_type=33, webhook_topic="SalesOrders"),
                TableSpec(
                    "sales_order_lines",
                    _audit(
                        guid("order_id", "OrderID", required=True),
                        integer("order_number", "OrderNumber"),
                        integer("line_number", "LineNumber", "integer"),
                        code("item_code", "ItemCode"),
                        text("description", "Description"),
                        number("quantity", "Quantity"),
                        code("unit", "UnitCode"),
                        number("unit_price", "UnitPrice"),
                        number("net_price", "NetPrice"),
                        number("amount", "AmountDC"),
                        number("quantity_delivered", "QuantityDelivered"),
                        number("quantity_invoiced", "QuantityInvoiced"),
                        date("delivery_date", "DeliveryDate"),
                    ),
                    merge_key="exact_id",
                ),
                parent_key="order_id",
                header_key="order_id",
            ),
            dutch_title="Verkooporders",
            filters=(Filter("statuses", "Order statuses (Status)", dutch_label="Orderstatussen"),),
            doc="Exact sales orders (SalesOrderHeaders) and their lines, filtered by `statuses` (open, partial, "
            "complete, cancelled). The customer's code comes from outsmart.relations.",
        ),
        Category(
            name="shop_orders",
            title="Shop orders",
            pro=True,
            source=Source("sync/Manufacturing/ShopOrders", "sync", deleted_entity_type=36),
            table=TableSpec(
                "shop_orders",
                _audit(
                    integer("shop_order_number", "ShopOrderNumber", required=True),
                    code("item_code", "ItemCode"),
                    text("description", "Description"),
                    number("planned_quantity", "PlannedQuantity"),
                    number("produced_quantity", "ProducedQuantity"),
                    date("planned_start_date", "PlannedStartDate"),
                    date("planned_end_date", "PlannedDate"),
                    status("status", "Status", SHOP_ORDER_STATUS),
                    flag("is_released", "IsReleased"),
                    flag("is_on_hold", "IsOnHold"),
                ),
                merge_key="exact_id",
            ),
            dutch_title="Productieorders",
            doc="Exact manufacturing shop orders.",
        ),
        Category(
            name="goods_deliveries",
            title="Goods deliveries",
            pro=True,
            source=Source(
                "sync/SalesOrder/GoodsDeliveries",
                "sync",
                deleted_entity_type=16,
                id_field="EntryID",
                webhook_topic="GoodsDeliveries",
            ),
            table=TableSpec(
                "goods_deliveries",
                _audit(
                    integer("delivery_number", "DeliveryNumber", required=True),
                    code("customer_code", "DeliveryAccountCode"),
                    text("customer_name", "DeliveryAccountName"),
                    date("delivery_date", "DeliveryDate"),
                    code("tracking_number", "TrackingNumber"),
                    code("warehouse_code", "WarehouseCode"),
                    text("description", "Description"),
                ),
                merge_key="exact_id",
            ),
            lines=Lines(
                Source(
                    "sync/SalesOrder/GoodsDeliveryLines",
                    "sync",
                    deleted_entity_type=17,
                    key_fields=("StorageLocation",),
                    rule_fields=("StorageLocationCode",),
                    webhook_topic="GoodsDeliveries",
                ),
                TableSpec(
                    "goods_delivery_lines",
                    _audit(
                        guid("entry_id", "EntryID", required=True),
                        integer("line_number", "LineNumber", "integer"),
                        code("item_code", "ItemCode"),
                        number("quantity_delivered", "QuantityDelivered"),  # the sum over its storage locations
                        derived("storage_locations", "jsonb"),  # per location: code, GUID, quantity delivered
                        number("quantity_ordered", "QuantityOrdered"),
                        integer("sales_order_number", "SalesOrderNumber"),
                        integer("sales_order_line_number", "SalesOrderLineNumber", "integer"),
                        code("unit", "Unitcode"),
                        date("delivery_date", "DeliveryDate"),
                    ),
                    merge_key="exact_id",
                ),
                parent_key="entry_id",
                header_key="exact_id",
                rules=goods_delivery_lines,
            ),
            dutch_title="Leveringen",
            doc="Exact goods deliveries (the header key is EntryID) and their lines, linked to sales order lines. A "
            "line delivered from several storage locations comes back once per location, all with the line's ID: "
            "one row per line, its quantity the sum, the locations in storage_locations.",
        ),
        Category(
            name="quotations",
            title="Quotations",
            pro=True,
            source=Source("sync/CRM/QuotationHeaders", "sync", deleted_entity_type=34, webhook_topic="Quotations"),
            table=TableSpec(
                "quotations",
                _audit(
                    guid("quotation_id", "QuotationID", required=True),
                    integer("quotation_number", "QuotationNumber", required=True),
                    integer("version_number", "VersionNumber", "integer"),
                    code("customer_code", "OrderAccountCode"),
                    text("customer_name", "OrderAccountName"),
                    date("quotation_date", "QuotationDate"),
                    date("due_date", "DueDate"),
                    status("status", "Status", QUOTATION_STATUS),
                    number("amount", "AmountDC"),
                    code("currency", "Currency"),
                    text("description", "Description"),
                ),
                merge_key="exact_id",
            ),
            rules=rules.status_filter,
            settings=QuotationsSettings,
            lines=Lines(
                Source("sync/CRM/QuotationLines", "sync", deleted_entity_type=35, webhook_topic="Quotations"),
                TableSpec(
                    "quotation_lines",
                    _audit(
                        guid("quotation_id", "QuotationID", required=True),
                        integer("quotation_number", "QuotationNumber"),
                        integer("line_number", "LineNumber", "integer"),
                        guid("item_exact_id", "Item"),
                        derived("item_code", T),
                        text("description", "ItemDescription"),
                        number("quantity", "Quantity"),
                        code("unit", "UnitCode"),
                        number("unit_price", "UnitPrice"),
                        number("amount", "AmountDC"),
                    ),
                    merge_key="exact_id",
                    lookups=(Lookup("item_code", "item_exact_id", ("materials", "hour_types")),),
                ),
                parent_key="quotation_id",
                header_key="quotation_id",
            ),
            dutch_title="Offertes",
            filters=(Filter("statuses", "Quotation statuses (Status)", dutch_label="Offertestatussen"),),
            doc="Exact quotations (QuotationHeaders, every version) and their lines, filtered by `statuses`. Quotation "
            "lines carry only the item's ID: its code comes from outsmart.materials / outsmart.hour_types.",
        ),
        Category(
            name="project_planning",
            title="Project planning",
            pro=True,
            source=Source(
                "sync/Project/ProjectPlanning", "sync", deleted_entity_type=26, webhook_topic="ProjectPlanning"
            ),
            table=TableSpec(
                "project_planning",
                _audit(
                    code("employee_code", "EmployeeCode"),
                    code("project_code", "ProjectCode"),
                    text("project_description", "ProjectDescription"),
                    code("customer_code", "AccountCode"),
                    code("hour_type_code", "HourTypeCode"),
                    moment("start_at", "StartDate"),
                    moment("end_at", "EndDate"),
                    number("hours", "Hours"),
                    status("status", "Status", PLANNING_STATUS),
                    text("description", "Description"),
                ),
                merge_key="exact_id",
            ),
            dutch_title="Projectplanning",
            doc="Exact project planning: employee, project, customer, hour type, start/end, hours, status.",
        ),
        Category(
            name="assembly_orders",
            title="Assembly orders",
            pro=True,
            source=Source("inventory/AssemblyOrders", "full", rule_fields=("Type",)),
            table=TableSpec(
                "assembly_orders",
                _audit(
                    integer("order_number", "OrderNumber", required=True),
                    code("item_code", "ItemCode"),
                    text("description", "Description"),
                    number("planned_quantity", "PlannedQuantity"),
                    number("finished_quantity", "FinishedQuantity"),
                    date("order_date", "OrderDate"),
                    date("assembly_date", "AssemblyDate"),
                    date("finished_date", "FinishedAssemblyDate"),
                    status("status", "OrderStatus", ASSEMBLY_STATUS),
                    derived("is_disassembly", B),
                    code("warehouse_code", "WarehouseCode"),
                ),
                merge_key="exact_id",
            ),
            rules=rules.assembly_orders,
            dutch_title="Assemblageorders",
            doc="Exact assembly orders. Exact has no sync endpoint and no Modified field for them: every run reads "
            "them all and soft-deletes what disappeared.",
        ),
    ]
}

STANDARD = [c for c in CATEGORIES.values() if not c.pro]
PRO = [c for c in CATEGORIES.values() if c.pro]
