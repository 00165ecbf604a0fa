"""Exact Online → OutSmart imports: one DAG per category, generated from the category registry.

Each DAG: `check_settings` (is the category enabled and licensed?) → `migrate_target_schema` (idempotent DDL)
→ `import_<category>` (pool `exact_api`: every task that calls Exact shares one budget).

Scheduling follows the settings Variable `exact_online_import_settings`: parsing reads it once (no connection,
no network, no pandas) and gives each enabled, licensed category the settings' cron in the settings' time
zone; every other category has no schedule, so its grid shows only what someone triggered. Why the schedule
is read here and not decided inside a run: see include/outsmart_import/scheduling.py. A Variable that does
not validate schedules nothing; `exact_online_import_settings_check.py` turns it into one import error
that names the wrong key.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from pathlib import Path

# The project root holds `include/`; Airflow puts dags/ and plugins/ on sys.path, not the root.
_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT, _ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.append(str(_p))

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, get_parsing_context, task  # noqa: E402

from include.outsmart_import.registry import CATEGORIES, Category  # noqa: E402
from include.outsmart_import.scheduling import ParsedSettings, read_settings, schedule_for  # noqa: E402
from include.outsmart_import.settings import VARIABLE_NAME  # noqa: E402

EXACT_CONN_ID = "exact_online_default"
TARGET_CONN_ID = "outsmart_postgres"
EXACT_POOL = "exact_api"

# Logged, not printed: Airflow stamps stdout late, so printed counts landed in the collapsed "Post Execute" group.
log = logging.getLogger("exact_online_import")


def _settings():
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
        run_type = str(getattr(get_current_context()["dag_run"], "run_type", "")).lower()
        if run_type.endswith("scheduled"):
            log.warning("Skipping this scheduled run: %s", exc)
            raise AirflowSkipException(str(exc)) from None
        raise AirflowFailException(str(exc)) from None


def _runnable_settings(category: Category):
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


def _settings_at_parse() -> ParsedSettings:
    """The Variable as the parser sees it: the dag-processor (through its in-process execution API), a worker
    starting a task, or `dag.test()`/pytest (which see only `AIRFLOW_VAR_*`)."""
    from airflow.sdk import Variable

    try:
        raw = Variable.get(VARIABLE_NAME, default=None)
    except Exception:
        if get_parsing_context().dag_id is not None:
            # A worker starting a task needs only the DAG's tasks; the task reads the Variable itself.
            return read_settings(None)
        # In the dag-processor a failed read (not an invalid value) must not unschedule every category: failing
        # the parse keeps the last parsed DAGs and shows the reason as an import error. A hiccup passes at the
        # next parse; a read failing for longer than [dag_processor] stale_dag_threshold (50 s) deactivates them.
        raise
    return read_settings(raw)


def _retries(parsed: ParsedSettings) -> tuple[int, dt.timedelta]:
    # EXACT_IMPORT_RETRIES exists for the test and demo harnesses (dag.test() waits out every retry delay).
    settings = parsed.settings
    retries = settings.task_retries if settings else 2
    delay = settings.retry_delay_seconds if settings else 120
    override = os.environ.get("EXACT_IMPORT_RETRIES")
    return (int(override) if override not in (None, "") else retries), dt.timedelta(seconds=delay)


def build_dag(category: Category, parsed: ParsedSettings):
    when = schedule_for(category, parsed)
    retries, retry_delay = _retries(parsed)

    @dag(
        dag_id=category.dag_id,
        # The DAG list shows this: whether the settings schedule the category, and why not.
        description=f"{category.title}: {when.why}"[:1000],
        doc_md=f"### {category.title}\n\n{category.doc or 'Import of this category from Exact Online.'}\n\n"
        f"Source: `{category.source.endpoint}` ({category.source.mode}). Target: `outsmart.{category.table.name}`"
        f" (merge on `{category.table.merge_key}`).{' **Needs Exact Online Pro.**' if category.pro else ''}\n\n"
        "Settings: Variable `exact_online_import_settings` (`enabled` and `schedule` decide when it runs). "
        "Trigger by hand for an immediate run.",
        schedule=CronTriggerTimetable(when.cron, timezone=when.timezone) if when.cron else None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["exact-online", "outsmart", "pro" if category.pro else "standard"],
        default_args={
            "owner": "data-engineering",
            "retries": retries,
            "retry_delay": retry_delay,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(minutes=30),
        },
        params={
            "full_refresh": Param(
                False,
                type="boolean",
                title="Full refresh",
                description="Read everything from Exact instead of only what changed since the last "
                "run, and soft-delete what Exact no longer has.",
            ),
            "dry_run": Param(
                False,
                type="boolean",
                title="Dry run",
                description="Fetch and compare, record the counts in the import log, change nothing in OutSmart "
                "(what is read from Exact is kept in the landed copy of Exact, so the next run need not read it "
                "again).",
            ),
            "refresh_streams": Param(
                False,
                type="boolean",
                title="Ask Exact now",
                description="Ask Exact for changes even if another category read the same data within the "
                "settings' reuse window (the settings page's sync icon does this).",
            ),
        },
    )
    def import_dag():
        @task
        def check_settings():
            settings = _runnable_settings(category)
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

        # The counts are logged as one readable line below; the returned dict is for XCom, not for the log.
        @task(task_id=f"import_{category.name}", pool=EXACT_POOL, show_return_value_in_logs=False)
        def run_import():
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from exact_online.exceptions import ExactApiError, ExactAuthError, ExactDailyLimitReached
            from exact_online.hooks.exact_online import ExactOnlineHook
            from exact_online.rate_budget import PostgresRateBudget
            from exact_online.token_store import PostgresTokenStore
            from include.outsmart_import.runner import run_category
            from include.outsmart_import.target_db import connector

            context = get_current_context()
            params = context["params"]
            settings = _runnable_settings(category)
            # Token chain and call budget live in the target database, which every worker reaches.
            hook = ExactOnlineHook(
                EXACT_CONN_ID,
                token_store=PostgresTokenStore(connector(TARGET_CONN_ID)),
                rate_budget=PostgresRateBudget(connector(TARGET_CONN_ID)),
            )
            try:
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
            finally:
                hook.rate_budget.close()
            result = summary.as_dict()
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
            return result

        check_settings() >> migrate_target_schema() >> run_import()

    return import_dag()


# Settings are read once per parse; a worker starting one task builds only that task's DAG.
_PARSED = _settings_at_parse()
_ONLY = get_parsing_context().dag_id
for _category in CATEGORIES.values():
    if _ONLY is None or _ONLY == _category.dag_id:
        build_dag(_category, _PARSED)
