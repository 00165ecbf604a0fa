"""Exact Online, asked from the api-server: through the same hook, token chain and call budget as the imports
(connection `exact_online_default`; the token chain and the budget live in the OutSmart database)."""

from __future__ import annotations

import typing
from collections.abc import Callable

from exact_online_settings_page.secret_scrub import EXACT_CONN_ID, TARGET_CONN_ID

if typing.TYPE_CHECKING:
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.rate_budget import PostgresRateBudget
    from exact_online.token_store import DbConnection

# Tries per Exact call made while the page waits (an import's hook tries 6 times over about a minute): an unreachable
# Exact is said after a few seconds.
PAGE_MAX_ATTEMPTS = 2


def _outsmart_db() -> Callable[[], DbConnection]:
    from include.outsmart_import.target_db import connector

    # connector() is typed as returning object; what it returns is a psycopg connection.
    return typing.cast("Callable[[], DbConnection]", connector(TARGET_CONN_ID))


def page_hook(
    conn_id: str = EXACT_CONN_ID, *, division: int | None = None, rate_budget: PostgresRateBudget | None = None
) -> ExactOnlineHook:
    """The hook every question the page asks Exact goes through (connect, divisions, item groups, webhooks): the
    connection's (`exact_online_default` unless a company's), on the imports' shared Postgres token store (one
    token chain), trying each call PAGE_MAX_ATTEMPTS times, as someone is waiting."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import PostgresTokenStore

    return ExactOnlineHook(
        conn_id,
        division=division,
        token_store=PostgresTokenStore(_outsmart_db()),
        rate_budget=rate_budget,
        max_attempts=PAGE_MAX_ATTEMPTS,
    )


def item_groups_from_exact(conn_id: str = EXACT_CONN_ID, division: int | None = None) -> list[dict]:
    """The division's item groups (code + description), read from Exact's `logistics/ItemGroups` (a company's:
    its connection and division)."""
    from exact_online.rate_budget import PostgresRateBudget

    budget = PostgresRateBudget(_outsmart_db())
    hook = page_hook(conn_id, division=division, rate_budget=budget)
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
