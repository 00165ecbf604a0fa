"""Exact's codes and the words the import writes for them, each pair declared once (the sources:
exact-online-api.md and data/).

The registry maps the codes to words when it reads a record (`registry.status`); the settings models in
filters.py offer the same words as filter choices (`statuses`, `relation_types`). Both import them from here, so a
status Exact adds is one line, and a filter can never offer a word the import does not write. A module of its own
because filters.py cannot import the registry (the registry imports filters.py).
"""

from __future__ import annotations

RELATION_TYPE = {"C": "customer", "P": "prospect", "S": "suspect", "A": "none"}
PAYMENT_STATUS = {20: "open", 30: "selected", 40: "processed", 50: "matched"}
SALES_ORDER_STATUS = {12: "open", 20: "partial", 21: "complete", 45: "cancelled"}
SHOP_ORDER_STATUS = {10: "open", 20: "in_process", 30: "finished", 40: "completed"}
QUOTATION_STATUS = {
    5: "rejected",
    6: "closed",
    10: "recovery",
    20: "draft",
    25: "open",
    35: "processing",
    40: "printed",
    50: "accepted",
    60: "awaiting_acceptance",
    70: "accepted_with_error",
}
PLANNING_STATUS = {1: "reserved", 2: "planned"}
ADDRESS_TYPE = {1: "visit", 2: "postal", 3: "invoice", 4: "delivery"}
ASSEMBLY_STATUS = {20: "open", 30: "partial", 50: "complete"}

# A relation type that is no Exact `Status`: an account with `IsSupplier` (any status).
SUPPLIER = "supplier"
