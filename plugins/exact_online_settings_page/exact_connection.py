"""Exact Online, asked from the api-server: through the same hook, token chain and call budget as the imports
(connection `exact_online_default`; the token chain and the budget live in the OutSmart database)."""

from __future__ import annotations

import typing
from collections.abc import Callable

from exact_online_settings_page.secret_scrub import EXACT_CONN_ID, TARGET_CONN_ID

# Tries per Exact call made while the page waits (an import's hook tries 6 times over about a minute): an unreachable
# Exact is said after a few seconds.
PAGE_MAX_ATTEMPTS = 2


def item_groups_from_exact(conn_id: str = EXACT_CONN_ID, division: int | None = None) -> list[dict]:
    """The division's item groups (code + description), read from Exact's `logistics/ItemGroups` (a company's:
    its connection and division)."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.rate_budget import PostgresRateBudget
    from exact_online.token_store import DbConnection, PostgresTokenStore
    from include.outsmart_import.target_db import connector

    # connector() is typed as returning object; what it returns is a psycopg connection.
    connect = typing.cast("Callable[[], DbConnection]", connector(TARGET_CONN_ID))
    budget = PostgresRateBudget(connect)
    hook = ExactOnlineHook(
        conn_id,
        division=division,
        token_store=PostgresTokenStore(connect),
        rate_budget=budget,
        max_attempts=PAGE_MAX_ATTEMPTS,
    )
    try:
        out = []
        for page in hook.collection("logistics/ItemGroups", ["ID", "Code", "Description"]):
            out += [
                {"code": str(r.get("Code") or "").strip(), "description": r.get("Description") or ""}
                for r in page
                if str(r.get("Code") or "").strip()
            ]
        return sorted(out, key=lambda g: g["code"])
    finally:
        budget.close()
