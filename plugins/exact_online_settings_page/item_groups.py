"""The item groups the page offers in an item-group filter: the imported ones, else the division's in Exact."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from exact_online_settings_page import exact_connection, outsmart_queries
from exact_online_settings_page.labels import label
from exact_online_settings_page.secret_scrub import scrub

log = logging.getLogger(__name__)

# The page puts every group in a multi-select: a division has tens of item groups, and a list of 300,000 (26.6 MB)
# was an answer the page never finished loading. Past this many the answer says it is cut, and by how much it
# knows. The chosen codes stay on the page whatever this cuts: page.js adds any chosen code the list lacks.
MAX_LISTED = 2000


def item_groups(
    extra_codes: Sequence[str] = (),
    lang: str = "en",
    *,
    target_conn_id: str = outsmart_queries.TARGET_CONN_ID,
    exact_conn_id: str = exact_connection.EXACT_CONN_ID,
    division: int | None = None,
) -> dict:
    """The division's item groups (code + description): from `outsmart.categories` once that category has been
    imported, otherwise read from Exact through the hook (the same token chain and call budget as the imports); a
    company's from its database and its division (#21).
    `extra_codes` (chosen in the settings) are listed too, marked unknown when the division does not have them.
    Our words in `lang`; an error's own words as the database or the hook said them."""
    groups, source, message = [], None, None
    try:
        # one more than is shown: enough to know that the list is cut, without reading every row
        groups = outsmart_queries.imported_item_groups(limit=MAX_LISTED + 1, conn_id=target_conn_id)
        source = "outsmart.categories" if groups else None
    except Exception as exc:
        message = label(
            "groups_outsmart_error", lang, error=f"{type(exc).__name__}: {scrub(str(exc), (target_conn_id,))}"
        )
    if not groups:
        try:
            groups = exact_connection.item_groups_from_exact(exact_conn_id, division)
            source = "Exact Online"
        except Exception as exc:
            log.warning("settings page: item groups not readable from Exact: %s", type(exc).__name__)
            message = (
                message + "; " if message else ""
            ) + f"Exact Online: {type(exc).__name__}: {scrub(str(exc), (exact_conn_id,))}"
    known = {g["code"] for g in groups}
    for code in extra_codes:
        if code not in known:
            groups.append({"code": code, "description": label("group_unknown", lang), "unknown": True})
    return _bounded(groups, source, message, lang)


def _bounded(groups: list[dict], source: str | None, message: str | None, lang: str) -> dict:
    """The answer, at most MAX_LISTED groups, saying so when it is cut."""
    truncated = len(groups) > MAX_LISTED
    if truncated:
        groups = groups[:MAX_LISTED]
        cut = label("groups_cut", lang, limit=MAX_LISTED)
        message = f"{message} {cut}" if message else cut
    return {"groups": groups, "source": source, "message": message, "truncated": truncated, "limit": MAX_LISTED}
