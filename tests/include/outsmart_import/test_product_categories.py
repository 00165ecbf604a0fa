"""What the product promises, in one place: six standard categories and eight more with the Pro licence.

Every other test takes its categories from the registry (`CATEGORIES`, `STANDARD`, `PRO`), so a new category
needs no test edits beyond this list.
"""

from __future__ import annotations

from include.outsmart_import.registry import CATEGORIES, PRO, STANDARD

PROMISED_STANDARD = ["relations", "materials", "hour_types", "categories", "employees", "payment_transactions"]
PROMISED_PRO = [
    "warehouses",
    "price_agreements",
    "sales_orders",
    "shop_orders",
    "goods_deliveries",
    "quotations",
    "project_planning",
    "assembly_orders",
]


def test_the_registry_has_the_promised_standard_and_pro_categories():
    assert [c.name for c in STANDARD] == PROMISED_STANDARD
    assert [c.name for c in PRO] == PROMISED_PRO
    assert list(CATEGORIES) == PROMISED_STANDARD + PROMISED_PRO
