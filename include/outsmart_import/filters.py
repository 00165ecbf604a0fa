"""Per-category settings (the switch and the filters each category has), as pydantic models.

The registry points each category at one of these; `settings.py` builds the Variable's `categories` section
from the registry, so a category's settings and their defaults are declared once, beside nothing else.
Unknown keys are errors (a misspelt "include_blocked" must not be silently ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from include.outsmart_import.exact_codes import QUOTATION_STATUS, RELATION_TYPE, SALES_ORDER_STATUS, SUPPLIER
from include.outsmart_import.problems import problem

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


# Limits that keep the Variable (and the settings page that loads it whole) small. An item-group code is at most as
# long as `outsmart.categories.code` can be (declarations.code: 60 characters); a division has tens of item groups,
# so 1,000 chosen codes is far above any real choice and far below what makes the page slow (300,000 codes made a
# 3.8 MB Variable the page never finished loading). "None chosen" already means every group.
MAX_ITEM_GROUPS = 1000
MAX_ITEM_GROUP_CODE = 60


def _no_repeats(v: list[str]) -> list[str]:
    """A list of choices names each choice once: with repeats allowed, the list had no bound at all."""
    seen: set[str] = set()
    for i, word in enumerate(v):
        if word in seen:
            raise problem("listed_twice", value=repr(word), position=str(i))
        seen.add(word)
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySettings(Strict):
    """A category without filters: only the on/off switch."""

    enabled: bool = False


class RelationsSettings(CategorySettings):
    relation_types: list[RelationType] = Field(default_factory=_relation_types, max_length=len(RELATION_TYPE) + 1)
    include_inactive: bool = False
    include_blocked: bool = False
    # The relations' other addresses and their contact persons (outsmart.relation_addresses / relation_contacts).
    include_addresses: bool = True
    include_contacts: bool = True

    _once = field_validator("relation_types")(_no_repeats)


class ItemGroupSettings(CategorySettings):
    # Item-group codes as shown in Exact; empty = every group.
    item_groups: list[str] = Field(default_factory=list, max_length=MAX_ITEM_GROUPS)

    @field_validator("item_groups")
    @classmethod
    def _codes_not_blank(cls, v: list[str]) -> list[str]:
        for i, code in enumerate(v):
            if not code.strip():
                raise problem("empty_code", position=str(i))
            if len(code) > MAX_ITEM_GROUP_CODE:
                raise problem("code_too_long", position=str(i), max_length=MAX_ITEM_GROUP_CODE)
        return v


class EmployeesSettings(CategorySettings):
    include_inactive: bool = False


class PaymentTransactionsSettings(CategorySettings):
    only_open: bool = False


class PriceAgreementsSettings(CategorySettings):
    only_current: bool = False


class SalesOrdersSettings(CategorySettings):
    statuses: list[SalesOrderStatus] = Field(default_factory=_sales_order_statuses, max_length=len(SALES_ORDER_STATUS))
    _once = field_validator("statuses")(_no_repeats)


class QuotationsSettings(CategorySettings):
    statuses: list[QuotationStatus] = Field(default_factory=_quotation_statuses, max_length=len(QUOTATION_STATUS))
    _once = field_validator("statuses")(_no_repeats)
