"""The item groups the page offers in an item-group filter: the imported ones, else the division's in Exact."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from exact_online_settings_page import exact_connection, outsmart_queries
from exact_online_settings_page.secret_scrub import scrub

log = logging.getLogger(__name__)


def item_groups(extra_codes: Sequence[str] = ()) -> dict:
    """The division's item groups (code + description): from `outsmart.categories` once that category has been
    imported, otherwise read from Exact through the hook (the same token chain and call budget as the imports).
    `extra_codes` (chosen in the settings) are listed too, marked unknown when the division does not have them."""
    groups, source, message = [], None, None
    try:
        groups = outsmart_queries.imported_item_groups()
        source = "outsmart.categories" if groups else None
    except Exception as exc:
        message = f"OutSmart database: {type(exc).__name__}: {scrub(str(exc))}"
    if not groups:
        try:
            groups = exact_connection.item_groups_from_exact()
            source = "Exact Online"
        except Exception as exc:
            log.warning("settings page: item groups not readable from Exact: %s", type(exc).__name__)
            message = (message + "; " if message else "") + f"Exact Online: {type(exc).__name__}: {scrub(str(exc))}"
    known = {g["code"] for g in groups}
    for code in extra_codes:
        if code not in known:
            groups.append({"code": code, "description": "(not among the division's item groups)", "unknown": True})
    return {"groups": groups, "source": source, "message": message}
