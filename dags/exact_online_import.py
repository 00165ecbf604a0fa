"""Exact Online → OutSmart imports: one DAG per category, generated from the category registry.

Each DAG: `check_settings` (which companies have the category on, licensed, not paused, and due at this fire?)
→ `import_<category>`, mapped: one task per company (pool `exact_api`).

Scheduling follows the settings Variable `exact_online_import_settings`: parsing reads it once (no connection,
no network, no pandas) and gives each enabled, licensed category the settings' cron in the settings' time
zone; every other category has no schedule, so its grid shows only what someone triggered. Why the schedule
is read here and not decided inside a run: see include/outsmart_import/scheduling.py. A Variable that does
not validate schedules nothing; `exact_online_import_settings_check.py` turns it into one import error
that names the wrong key.

This file only wires: the DAGs' arguments here, what each task does in include/outsmart_import/airflow_tasks.py.
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

from airflow.sdk import (  # noqa: E402
    Asset,
    AssetAny,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    MultipleCronTriggerTimetable,
    Param,
    dag,
    get_parsing_context,
    task,
)

from include.outsmart_import import airflow_tasks  # noqa: E402
from include.outsmart_import.airflow_tasks import EXACT_CONN_ID, TARGET_CONN_ID  # noqa: E402, F401 - docker-compose
from include.outsmart_import.registry import CATEGORIES, Category  # noqa: E402
from include.outsmart_import.scheduling import CategorySchedule, ParsedSettings, read_settings, schedule_for  # noqa: E402
from include.outsmart_import.settings import VARIABLE_NAME  # noqa: E402
from include.outsmart_import.webhook_assets import ASSET_GROUP  # noqa: E402

EXACT_POOL = "exact_api"


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


def _doc_md(category: Category) -> str:
    return (
        f"### {category.title}\n\n{category.doc or 'Import of this category from Exact Online.'}\n\n"
        f"Source: `{category.source.endpoint}` ({category.source.mode}). Target: `outsmart.{category.table.name}`"
        f" (merge on `{category.table.merge_key}`).{' **Needs Exact Online Pro.**' if category.pro else ''}\n\n"
        "Settings: Variable `exact_online_import_settings` (`enabled` and `schedule` decide when it runs). "
        "Trigger by hand for an immediate run."
    )


def _default_args(parsed: ParsedSettings) -> dict:
    retries, retry_delay = _retries(parsed)
    return {
        "owner": "data-engineering",
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
    }


def _params() -> dict[str, Param]:
    """What a manual trigger may ask for; a scheduled run takes the defaults."""
    return {
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
        "company": Param(
            None,
            type=["null", "string"],
            maxLength=40,
            title="Company",
            description="Only this company (its key in the settings, e.g. default); empty: every company for which "
            "this category is on.",
        ),
        "refresh_streams": Param(
            False,
            type="boolean",
            title="Ask Exact now",
            description="Ask Exact for changes even if another category read the same data within the "
            "settings' reuse window (the settings page's sync icon does this).",
        ),
    }


def _dag_arguments(category: Category, parsed: ParsedSettings) -> dict:
    when = schedule_for(category, parsed)
    return {
        "dag_id": category.dag_id,
        # The DAG list shows this: whether the settings schedule the category, and why not.
        "description": f"{category.title}: {when.why}"[:1000],
        "doc_md": _doc_md(category),
        "schedule": _schedule(when),
        "start_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["exact-online", "outsmart", "pro" if category.pro else "standard"],
        "default_args": _default_args(parsed),
        "params": _params(),
    }


def _schedule(when: CategorySchedule):
    """The cron, or (with Assets) the cron OR an Exact webhook event on one of the category's streams: a burst of
    events becomes one run (a run consumes every event since the previous one; max_active_runs is 1)."""
    cron = _timetable(when.crons, when.timezone)
    if cron is None or not when.assets:
        return cron
    assets = [Asset(name=uri, uri=uri, group=ASSET_GROUP) for uri in when.assets]
    return AssetOrTimeSchedule(timetable=cron, assets=AssetAny(*assets))


def _timetable(crons: tuple[str, ...], timezone: str):
    if not crons:
        return None
    if len(crons) == 1:
        return CronTriggerTimetable(crons[0], timezone=timezone)
    return MultipleCronTriggerTimetable(*crons, timezone=timezone)


# The grid names each company's mapped task by the company (airflow_tasks._name_the_map_index sets it).
BY_COMPANY = "{{ company }}"


def build_dag(category: Category, parsed: ParsedSettings):
    """`check_settings` (the companies of this run) >> `import_<category>`, one mapped task per company.

    One task per company, not a schema task and an import task: the import makes its database's schema first
    anyway (idempotent DDL), and with many companies every task instance is a process to start on a worker. A
    company whose database or consent fails fails its own task only. What each task does: airflow_tasks.py."""

    @dag(**_dag_arguments(category, parsed))
    def import_dag():
        @task
        def check_settings():
            return airflow_tasks.check_settings(category)

        # The counts are logged as one readable line; the returned dict is for XCom, not for the log.
        @task(
            task_id=f"import_{category.name}",
            pool=EXACT_POOL,
            show_return_value_in_logs=False,
            map_index_template=BY_COMPANY,
        )
        def run_import(company: str):
            return airflow_tasks.run_import(category, company)

        run_import.expand(company=check_settings())

    return import_dag()


# Settings are read once per parse; a worker starting one task builds only that task's DAG.
_PARSED = _settings_at_parse()
_ONLY = get_parsing_context().dag_id
for _category in CATEGORIES.values():
    if _ONLY is None or _ONLY == _category.dag_id:
        build_dag(_category, _PARSED)
