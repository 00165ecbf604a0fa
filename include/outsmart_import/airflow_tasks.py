"""What the tasks of the import DAGs do (dags/exact_online_import.py only wires them): one function per task.

Imported when the DAG file is parsed, so nothing heavy at module level: Airflow, the hook, pandas and psycopg are
imported inside the functions, by the task that needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from include.outsmart_import.registry import Category
from include.outsmart_import.settings import VARIABLE_NAME

if TYPE_CHECKING:
    from exact_online.hooks.exact_online import ExactOnlineHook
    from include.outsmart_import.settings import ImportSettings

EXACT_CONN_ID = "exact_online_default"
TARGET_CONN_ID = "outsmart_postgres"

# Logged, not printed: Airflow stamps stdout late, so printed counts landed in the collapsed "Post Execute" group.
log = logging.getLogger("exact_online_import")


def check_settings(category: Category) -> dict[str, str]:
    """Task `check_settings`: is the category enabled and licensed? Skips the run with the reason if not."""
    settings = runnable_settings(category)
    return {"category": category.name, "license": settings.license}


def migrate_target_schema() -> None:
    """Task `migrate_target_schema`: the idempotent DDL of the OutSmart schema."""
    from include.outsmart_import.schema import ensure_schema
    from include.outsmart_import.target_db import connector

    conn = connector(TARGET_CONN_ID)()
    try:
        ensure_schema(conn)
    finally:
        conn.close()


def run_import(category: Category) -> dict[str, Any]:
    """Task `import_<category>`: read the category from Exact and merge it into OutSmart; the run's counts."""
    from include.outsmart_import.runner import run_category
    from include.outsmart_import.target_db import connector

    context = _context()
    params = context["params"]
    settings = runnable_settings(category)  # asked again: the settings may have changed while the run waited
    hook = _exact_hook()
    try:
        with _exact_errors_as_task_outcomes():
            summary = run_category(
                category.name,
                settings,
                hook,
                connector(TARGET_CONN_ID),
                run_id=context["run_id"],
                full_refresh=bool(params.get("full_refresh")),
                dry_run=bool(params.get("dry_run")),
                refresh_streams=bool(params.get("refresh_streams")),
            )
    finally:
        if hook.rate_budget is not None:
            hook.rate_budget.close()
    result = summary.as_dict()
    _log_result(category, result)
    return result


def runnable_settings(category: Category) -> ImportSettings:
    """The run's settings, if this category may run under them; else the task is skipped with the reason.

    Asked by the first task and again by the import: the settings may change between the two (a category
    switched off while its run waits for the pool), and that is not an error either."""
    from airflow.sdk.exceptions import AirflowSkipException

    from include.outsmart_import.scheduling import CategoryNotEnabled, LicenseRequired, check_runnable

    settings = _settings()
    try:
        check_runnable(category, settings)
    except (CategoryNotEnabled, LicenseRequired) as exc:
        # Reached by a manual trigger, or by a run under way when the settings changed: the schedule already
        # leaves such categories out. A switched-off category is not an error.
        log.warning("Skipping: %s", exc)
        raise AirflowSkipException(str(exc)) from None
    return settings


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


def _exact_hook() -> ExactOnlineHook:
    """The hook for this run. Token chain and call budget live in the target database, which every worker
    reaches."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.rate_budget import PostgresRateBudget
    from exact_online.token_store import PostgresTokenStore
    from include.outsmart_import.target_db import connector

    return ExactOnlineHook(
        EXACT_CONN_ID,
        token_store=PostgresTokenStore(connector(TARGET_CONN_ID)),
        rate_budget=PostgresRateBudget(connector(TARGET_CONN_ID)),
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
