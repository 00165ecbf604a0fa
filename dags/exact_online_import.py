"""Exact Online → OutSmart imports: one DAG per category, generated from the category registry.

Parsing this file reads no Variable, opens no connection and imports no pandas: the settings Variable
`exact_online_import_settings` is read inside the first task of each run.

Each DAG: `check_settings` (is the category enabled, licensed, due?) → `migrate_target_schema` (idempotent DDL)
→ `import_<category>` (pool `exact_api`: every task that calls Exact shares one budget).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

# The project root holds `include/`; Airflow puts dags/ and plugins/ on sys.path, not the root.
_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT, _ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.append(str(_p))

from airflow.sdk import Param, dag, get_current_context, task  # noqa: E402

from include.outsmart_import.registry import CATEGORIES, Category  # noqa: E402

EXACT_CONN_ID = "exact_online_default"
TARGET_CONN_ID = "outsmart_postgres"
EXACT_POOL = "exact_api"
# How often each DAG wakes up to check whether its import is due under the Variable's "schedule". The schedule
# itself lives in the Variable (which may not be read while parsing), so the DAG ticks and the first task decides.
TICK = os.environ.get("EXACT_IMPORT_TICK", "*/15 * * * *")
# Task retries (deployment setting; the demo and the tests set 0 so that a failure shows at once).
RETRIES = int(os.environ.get("EXACT_IMPORT_RETRIES", "2"))


def _settings():
    from airflow.sdk import Variable

    from include.outsmart_import.settings import VARIABLE_NAME, parse_settings

    raw = Variable.get(VARIABLE_NAME, default=None)
    return parse_settings(raw)


def build_dag(category: Category):
    @dag(
        dag_id=category.dag_id,
        description=category.title,
        doc_md=f"### {category.title}\n\n{category.doc or 'Import of this category from Exact Online.'}\n\n"
               f"Source: `{category.source.endpoint}` ({category.source.mode}). Target: `outsmart.{category.table.name}`"
               f" (merge on `{category.table.merge_key}`).{' **Needs Exact Online Pro.**' if category.pro else ''}\n\n"
               "Settings: Variable `exact_online_import_settings`. Trigger by hand for an immediate run.",
        schedule=TICK,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["exact-online", "outsmart", "pro" if category.pro else "standard"],
        default_args={
            "owner": "data-engineering",
            "retries": RETRIES,
            "retry_delay": dt.timedelta(minutes=2),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(minutes=30),
        },
        params={
            "full_refresh": Param(False, type="boolean", title="Full refresh",
                                  description="Read everything from Exact instead of only what changed since the last "
                                              "run, and soft-delete what Exact no longer has."),
            "dry_run": Param(False, type="boolean", title="Dry run",
                             description="Fetch and compare, record the counts in the import log, change nothing."),
        },
    )
    def import_dag():
        @task(retries=0)
        def check_settings():
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from include.outsmart_import.runner import (
                CategoryNotEnabled,
                LicenseRequired,
                NotImplementedYet,
                check_runnable,
            )
            from include.outsmart_import.settings import SettingsError

            context = get_current_context()
            try:
                settings = _settings()
                check_runnable(category, settings)
            except (SettingsError, LicenseRequired) as exc:
                raise AirflowFailException(str(exc)) from None
            except (CategoryNotEnabled, NotImplementedYet) as exc:
                print(f"Skipping: {exc}")  # the line the office sees in the task log
                raise AirflowSkipException(str(exc)) from None
            dag_run = context["dag_run"]
            if str(getattr(dag_run, "run_type", "")).lower().endswith("scheduled"):
                due, why = _is_due(category.name, settings.schedule)
                if not due:
                    print(f"Skipping: {why}")
                    raise AirflowSkipException(why)
            return {"category": category.name, "license": settings.license}

        @task
        def migrate_target_schema():
            from include.outsmart_import.loader import ensure_schema
            from include.outsmart_import.target_db import connector

            conn = connector(TARGET_CONN_ID)()
            try:
                ensure_schema(conn)
            finally:
                conn.close()

        @task(task_id=f"import_{category.name}", pool=EXACT_POOL)
        def run_import():
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
            from exact_online.exceptions import ExactApiError, ExactAuthError, ExactDailyLimitReached
            from exact_online.hooks.exact_online import ExactOnlineHook
            from exact_online.rate_budget import PostgresRateBudget
            from exact_online.token_store import PostgresTokenStore

            from include.outsmart_import.runner import run_category
            from include.outsmart_import.settings import SettingsError
            from include.outsmart_import.target_db import connector

            context = get_current_context()
            params = context["params"]
            try:
                settings = _settings()
            except SettingsError as exc:
                raise AirflowFailException(str(exc)) from None
            # Token chain and call budget live in the target database, which every worker reaches.
            hook = ExactOnlineHook(EXACT_CONN_ID, token_store=PostgresTokenStore(connector(TARGET_CONN_ID)),
                                   rate_budget=PostgresRateBudget(connector(TARGET_CONN_ID)))
            try:
                summary = run_category(
                    category.name, settings, hook, connector(TARGET_CONN_ID),
                    run_id=context["run_id"], full_refresh=bool(params.get("full_refresh")),
                    dry_run=bool(params.get("dry_run")),
                )
            except ExactDailyLimitReached as exc:
                # Clean stop: nothing was loaded, the watermark did not move; the next run resumes from it.
                message = f"{exc} Nothing was changed; the next run resumes from the last watermark."
                print(f"Stopping: {message}")
                raise AirflowSkipException(message) from None
            except ExactAuthError as exc:
                raise AirflowFailException(str(exc)) from None
            except ExactApiError as exc:
                # 4xx: retrying would only count towards Exact's 10-errors-per-hour block.
                raise AirflowFailException(str(exc)) from None
            finally:
                hook.rate_budget.close()
            result = summary.as_dict()
            print(
                f"{category.name}: {result['status']}: fetched {result['fetched']}, inserted {result['inserted']}, "
                f"updated {result['updated']}, unchanged {result['unchanged']}, filtered out {result['filtered_out']}, "
                f"rejected {result['rejected']}, deleted {result['deleted']}, API calls {result['api_calls']}"
            )
            return result

        check_settings() >> migrate_target_schema() >> run_import()

    return import_dag()


def _is_due(category: str, schedule: str | None) -> tuple[bool, str]:
    """A scheduled tick runs the import only if the Variable's schedule fired since the last successful run."""
    if schedule is None:
        return False, "The settings have \"schedule\": null: this category runs only when triggered by hand."
    from croniter import croniter

    from include.outsmart_import.target_db import connector

    now = dt.datetime.now(dt.timezone.utc)
    last_fire = croniter(schedule, now).get_prev(dt.datetime)
    conn = connector(TARGET_CONN_ID)()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('outsmart.import_log') IS NOT NULL")
            if not cur.fetchone()[0]:
                return True, "first run"
            cur.execute("SELECT max(started_at) FROM outsmart.import_log WHERE category = %s AND status = 'success'",
                        (category,))
            last_success = cur.fetchone()[0]
    finally:
        conn.close()
    if last_success is None or last_success < last_fire:
        return True, "due"
    nxt = croniter(schedule, now).get_next(dt.datetime)
    return False, f"Not due under schedule {schedule!r}: last successful run {last_success:%Y-%m-%d %H:%M} UTC, next at {nxt:%Y-%m-%d %H:%M} UTC."


for _category in CATEGORIES.values():
    build_dag(_category)
