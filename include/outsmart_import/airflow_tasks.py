"""What the tasks of the import DAGs do (dags/exact_online_import.py only wires them): one function per task.

Imported when the DAG file is parsed, so nothing heavy at module level: Airflow, the hook, pandas and psycopg are
imported inside the functions, by the task that needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from include.outsmart_import.companies import (
    DEFAULT_EXACT_CONN_ID,
    DEFAULT_TARGET_CONN_ID,
    STATE_CONN_ID,
    Company,
    CompanyNotFound,
)
from include.outsmart_import.companies import company as company_named
from include.outsmart_import.registry import Category
from include.outsmart_import.settings import VARIABLE_NAME

if TYPE_CHECKING:
    from exact_online.hooks.exact_online import ExactOnlineHook
    from include.outsmart_import.settings import ImportSettings

EXACT_CONN_ID = DEFAULT_EXACT_CONN_ID  # the first company's; docker-compose and the page name it
TARGET_CONN_ID = DEFAULT_TARGET_CONN_ID

# Logged, not printed: Airflow stamps stdout late, so printed counts landed in the collapsed "Post Execute" group.
log = logging.getLogger("exact_online_import")


def check_settings(category: Category) -> list[str]:
    """Task `check_settings`: which companies this run imports, in a fair order (the one whose turn is oldest
    first). Skips the run with the reason if none: the category is off, unlicensed or paused everywhere, or this
    scheduled fire is no company's."""
    from airflow.sdk.exceptions import AirflowSkipException

    from include.outsmart_import.company_turns import fair_order
    from include.outsmart_import.scheduling import (
        CategoryNotEnabled,
        CompanyPaused,
        LicenseRequired,
        companies_for_run,
    )

    context = _context()
    settings = _settings()
    dag_run = context["dag_run"]
    scheduled = str(getattr(dag_run, "run_type", "")).lower().endswith("scheduled")
    fire = (getattr(dag_run, "run_after", None) or context.get("logical_date")) if scheduled else None
    changed = companies_of_events(context) if _asset_triggered(context) else None
    try:
        chosen, why_none = companies_for_run(category, settings, fire, context["params"].get("company"), changed)
    except (CategoryNotEnabled, LicenseRequired, CompanyPaused) as exc:
        chosen, why_none = [], str(exc)
    if not chosen:
        log.warning("Skipping: %s", why_none)
        raise AirflowSkipException(why_none)
    keys = fair_order(connector_of(STATE_CONN_ID), category.name, [c.key for c in chosen])
    log.info("%s: %d companies, in this order: %s", category.name, len(keys), ", ".join(keys))
    return keys


def _asset_triggered(context) -> bool:
    return str(getattr(context["dag_run"], "run_type", "")).lower().endswith("asset_triggered")


def companies_of_events(context) -> frozenset[str]:
    """The companies whose Exact webhook events started this run: an event of company X imports X only. The company
    is in the Asset's URI (webhook_assets.asset_uri); Assets of other schemes are not ours and are ignored."""
    from include.outsmart_import.webhook_assets import parse_asset_uri

    found: set[str] = set()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            parsed = parse_asset_uri(str(getattr(event.asset, "uri", "")))
            if parsed is not None:
                found.add(parsed[0])
    return frozenset(found)


def run_import(category: Category, company_key: str) -> dict[str, Any]:
    """Task `import_<category>` (one per company): read the category from the company's division and merge it into
    its OutSmart database; the run's counts."""
    from include.outsmart_import.company_turns import take_turn
    from include.outsmart_import.runner import run_category

    _name_the_map_index(company_key)
    context = _context()
    params = context["params"]
    company = runnable_company(category, company_key)  # asked again: the settings may have changed meanwhile
    take_turn(connector_of(STATE_CONN_ID), category.name, company.key)
    hook = _exact_hook(company)
    try:
        with _exact_errors_as_task_outcomes():
            summary = run_category(
                category.name,
                company.settings,
                hook,
                connector_of(company.target_conn_id),
                run_id=context["run_id"],
                full_refresh=bool(params.get("full_refresh")),
                dry_run=bool(params.get("dry_run")),
                # Started by an Exact event: the changed stream must be asked now, even if another category read it
                # moments ago (the event may be about a change since then).
                refresh_streams=bool(params.get("refresh_streams")) or _asset_triggered(context),
            )
    finally:
        if hook.rate_budget is not None:
            hook.rate_budget.close()
    result = {"company": company.key, **summary.as_dict()}
    _log_result(category, result)
    return result


def _name_the_map_index(company_key: str) -> None:
    """The grid names each mapped task by its company (the tasks' map_index_template reads this)."""
    _context()["company"] = company_key


def connector_of(conn_id: str):
    from include.outsmart_import.target_db import connector

    return connector(conn_id)


def _company(key: str) -> Company:
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return company_named(_settings(), key)
    except CompanyNotFound as exc:  # removed from the settings while its run waited
        raise AirflowFailException(str(exc)) from None


def runnable_company(category: Category, key: str) -> Company:
    """The company, if this category may run for it now; else its task is skipped with the reason."""
    from airflow.sdk.exceptions import AirflowSkipException

    from include.outsmart_import.scheduling import CategoryNotEnabled, CompanyPaused, LicenseRequired, check_runnable

    company = _company(key)
    try:
        check_runnable(category, company.settings, company.key)
    except (CategoryNotEnabled, LicenseRequired, CompanyPaused) as exc:
        log.warning("Skipping: %s", exc)
        raise AirflowSkipException(str(exc)) from None
    return company


def _settings() -> ImportSettings:
    """The settings as a task sees them now: authoritative for the run.

    Invalid settings fail a run someone triggered (they asked for it and read the message). A scheduled run that
    was already under way when someone saved a broken Variable is skipped instead: the broken Variable is already
    shown once, as the settings check's import error, and must not also turn every category red."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from include.outsmart_import.settings import SettingsError, parse_settings

    try:
        return parse_settings(Variable.get(VARIABLE_NAME, default=None))
    except SettingsError as exc:
        run_type = str(getattr(_context()["dag_run"], "run_type", "")).lower()
        if run_type.endswith("scheduled"):
            log.warning("Skipping this scheduled run: %s", exc)
            raise AirflowSkipException(str(exc)) from None
        raise AirflowFailException(str(exc)) from None


def _context() -> Any:
    from airflow.sdk import get_current_context

    return get_current_context()


def _exact_hook(company: Company) -> ExactOnlineHook:
    """The company's hook. The token chains and the call budgets live in the deployment's own database, which every
    worker reaches: companies reached through one consent share its chain, and each division has its budget."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.rate_budget import PostgresRateBudget
    from exact_online.token_store import PostgresTokenStore

    return ExactOnlineHook(
        company.exact_conn_id,
        division=company.division,
        token_store=PostgresTokenStore(connector_of(STATE_CONN_ID)),
        rate_budget=PostgresRateBudget(connector_of(STATE_CONN_ID)),
    )


@contextmanager
def _exact_errors_as_task_outcomes() -> Iterator[None]:
    """Turn what the hook raises on purpose into the task's outcome: a spent daily budget skips the run (the next
    one resumes), an auth or API error fails it without retries."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from exact_online.exceptions import ExactApiError, ExactAuthError, ExactDailyLimitReached

    try:
        yield
    except ExactDailyLimitReached as exc:
        # Clean stop: nothing was loaded, the watermark did not move; the next run resumes from it.
        message = f"{exc} Nothing was changed; the next run resumes from the last watermark."
        log.warning("Stopping: %s", message)
        raise AirflowSkipException(message) from None
    except ExactAuthError as exc:
        raise AirflowFailException(str(exc)) from None
    except ExactApiError as exc:
        # 4xx: retrying would only count towards Exact's 10-errors-per-hour block.
        raise AirflowFailException(str(exc)) from None


def _log_result(category: Category, result: dict[str, Any]) -> None:
    # The counts as one readable line; the returned dict is for XCom, not for the log.
    log.info(
        "%s: %s: fetched %s, inserted %s, updated %s, unchanged %s, filtered out %s, rejected %s, "
        "deleted %s, API calls %s; derive %s; streams %s",
        category.name,
        result["status"],
        result["fetched"],
        result["inserted"],
        result["updated"],
        result["unchanged"],
        result["filtered_out"],
        result["rejected"],
        result["deleted"],
        result["api_calls"],
        result["derive"],
        ", ".join(f"{r['stream']} {r['action']}" for r in result["streams"] or []),
    )
