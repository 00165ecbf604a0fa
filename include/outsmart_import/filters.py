"""Per-category settings (the switch and the filters each category has), as pydantic models.

The registry points each category at one of these; `settings.py` builds the Variable's `categories` section
from the registry, so a category's settings and their defaults are declared once, beside nothing else.
Unknown keys are errors (a misspelt "include_blocked" must not be silently ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from include.outsmart_import.exact_codes import QUOTATION_STATUS, RELATION_TYPE, SALES_ORDER_STATUS, SUPPLIER

# The filters' choices are the words the registry writes for Exact's codes (exact_codes.py): declared once there.
# mypy sees plain `str` (a Literal built at run time is no static type); pydantic validates against the words.
if TYPE_CHECKING:
    RelationType = str
    SalesOrderStatus = str
    QuotationStatus = str
else:
    RelationType = Literal[(*RELATION_TYPE.values(), SUPPLIER)]
    SalesOrderStatus = Literal[tuple(SALES_ORDER_STATUS.values())]
    QuotationStatus = Literal[tuple(QUOTATION_STATUS.values())]


def _relation_types() -> list[RelationType]:
    return ["customer"]


def _sales_order_statuses() -> list[SalesOrderStatus]:
    return list(SALES_ORDER_STATUS.values())  # every status


def _quotation_statuses() -> list[QuotationStatus]:
    return ["draft", "open", "processing", "printed", "accepted", "awaiting_acceptance"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySettings(Strict):
    """A category without filters: only the on/off switch."""

    enabled: bool = False


class RelationsSettings(CategorySettings):
    relation_types: list[RelationType] = Field(default_factory=_relation_types)
    include_inactive: bool = False
    include_blocked: bool = False
    # The relations' other addresses and their contact persons (outsmart.relation_addresses / relation_contacts).
    include_addresses: bool = True
    include_contacts: bool = True


class ItemGroupSettings(CategorySettings):
    # Item-group codes as shown in Exact; empty = every group.
    item_groups: list[str] = Field(default_factory=list)

    @field_validator("item_groups")
    @classmethod
    def _codes_not_blank(cls, v: list[str]) -> list[str]:
        for i, code in enumerate(v):
            if not code.strip():
                raise ValueError(f"item group code at position {i} is empty")
            if len(code) > 60:
                raise ValueError(f"item group code at position {i} is longer than 60 characters")
        return v


class EmployeesSettings(CategorySettings):
    include_inactive: bool = False


class PaymentTransactionsSettings(CategorySettings):
    only_open: bool = False


class PriceAgreementsSettings(CategorySettings):
    only_current: bool = False


class SalesOrdersSettings(CategorySettings):
    statuses: list[SalesOrderStatus] = Field(default_factory=_sales_order_statuses)


class QuotationsSettings(CategorySettings):
    statuses: list[QuotationStatus] = Field(default_factory=_quotation_statuses)
