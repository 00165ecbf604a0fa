"""The import DAGs' state in Airflow's metadata database (DagModel, DagRun, TaskInstance, through the api-server's
ORM session, as Airflow's own REST endpoints read them) and the manual run the sync icon starts."""

from __future__ import annotations

from exact_online_settings_page.labels import category_title, label
from exact_online_settings_page.variable_store import read_variable, settings_error
from include.outsmart_import import registry
from include.outsmart_import.companies import CompanyNotFound
from include.outsmart_import.companies import company as company_named
from include.outsmart_import.registry import Category
from include.outsmart_import.scheduling import CategoryNotEnabled, CompanyPaused, LicenseRequired, check_runnable
from include.outsmart_import.settings import DEFAULT_COMPANY, ImportSettings, SettingsError, parse_settings


def iso(value) -> str | None:
    return value.isoformat() if value else None


def _run_view(run, ti, category: Category, ui_base: str) -> dict | None:
    return None if run is None else _view_of_run(run, ti, category, ui_base)


def _view_of_run(run, ti, category: Category, ui_base: str) -> dict:
    view = {
        "run_id": run.run_id,
        "state": str(run.state.value if hasattr(run.state, "value") else run.state),
        "run_type": str(getattr(run.run_type, "value", run.run_type)),
        "queued_at": iso(run.queued_at),
        "start_date": iso(run.start_date),
        "end_date": iso(run.end_date),
        "full_refresh": bool((run.conf or {}).get("full_refresh")),
        "company": (run.conf or {}).get("company"),  # a run of one company's import (#21); None: every company
        "run_url": f"{ui_base}dags/{category.dag_id}/runs/{run.run_id}",
        "log_url": None,
        "task_state": None,
    }
    if ti is not None:
        view["task_state"] = str(getattr(ti.state, "value", ti.state)) if ti.state else None
        try_number = max(int(ti.try_number or 0), 1)
        mapped = f"/mapped/{ti.map_index}" if ti.map_index >= 0 else ""
        view["log_url"] = (
            f"{ui_base}dags/{category.dag_id}/runs/{run.run_id}/tasks/{ti.task_id}{mapped}?try_number={try_number}"
        )
    return view


def _active_run(session, dag_id: str):
    """The newest queued or running run of the DAG, or None."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    return session.scalar(
        select(DagRun)
        .where(DagRun.dag_id == dag_id, DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]))
        .order_by(DagRun.id.desc())
        .limit(1)
    )


def _import_task(session, category: Category, run, company: str = DEFAULT_COMPANY):
    """The company's import task in `run` (its log is what the page links to): one mapped task per company, named
    by the company (a run from before companies: the one unmapped task)."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    if run is None:
        return None
    return session.scalar(
        select(TaskInstance)
        .where(
            TaskInstance.dag_id == category.dag_id,
            TaskInstance.run_id == run.run_id,
            TaskInstance.task_id == f"import_{category.name}",
            TaskInstance.map_index.in_([-1, _map_index_of(session, category, run, company)]),
        )
        .order_by(TaskInstance.map_index)
        .limit(1)
    )


def _map_index_of(session, category: Category, run, company: str) -> int:
    """The company's map index in `run`: its place in the list `check_settings` returned (the grid's name of a
    mapped task is only rendered once it ran; the list is there from the start). -2 (none) if not in the run."""
    import json

    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    value = session.scalar(
        select(XComModel.value).where(
            XComModel.dag_id == category.dag_id,
            XComModel.run_id == run.run_id,
            XComModel.task_id == "check_settings",
            XComModel.key == "return_value",
        )
    )
    keys = json.loads(value) if isinstance(value, str) else value
    return keys.index(company) if isinstance(keys, list) and company in keys else -2


# How far back the page looks for a company's latest run of a category (runs of other companies in between).
RUNS_LOOKED_AT = 20


def _companies_of_runs(session, dag_id: str, run_ids: list[str]) -> dict[str, list]:
    """Per run, the companies it imports, in map index order (what its `check_settings` returned)."""
    import json

    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.execute(
        select(XComModel.run_id, XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id.in_(run_ids),
            XComModel.task_id == "check_settings",
            XComModel.key == "return_value",
        )
    )
    out = {}
    for run_id, value in rows:
        keys = json.loads(value) if isinstance(value, str) else value
        out[run_id] = keys if isinstance(keys, list) else []
    return out


def _latest_for(session, category: Category, company: str | None):
    """The DAG's latest run; for `company` (the page shows one of several), the latest run that imports it: its
    key in the run's list, or a run not yet past `check_settings` that is for it or for every company."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    newest = select(DagRun).where(DagRun.dag_id == category.dag_id).order_by(DagRun.id.desc())
    if company is None:
        return session.scalar(newest.limit(1))
    runs = list(session.scalars(newest.limit(RUNS_LOOKED_AT)))
    listed = _companies_of_runs(session, category.dag_id, [r.run_id for r in runs])
    for run in runs:
        if (run.conf or {}).get("company") not in (None, company):
            continue
        keys = listed.get(run.run_id)
        if keys is None and str(getattr(run.state, "value", run.state)) in ("queued", "running"):
            return run  # its companies are not known yet
        if keys and company in keys:
            return run
    return None


def dag_status(session, ui_base: str, company: str | None = None) -> dict[str, dict]:
    """Per category: is its DAG parsed, paused, scheduled, running, and its latest run (for `company`, the latest
    run that imports it, and its task in that run)."""
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    categories = list(registry.CATEGORIES.values())
    ids = [c.dag_id for c in categories]
    models = {d.dag_id: d for d in session.scalars(select(DagModel).where(DagModel.dag_id.in_(ids)))}
    out = {}
    for c in categories:
        dm = models.get(c.dag_id)
        latest = _latest_for(session, c, company)
        out[c.name] = {
            "parsed": dm is not None and not dm.is_stale,
            "paused": bool(dm.is_paused) if dm else None,
            "has_import_errors": bool(dm.has_import_errors) if dm else False,
            "schedule": dm.timetable_summary if dm else None,
            "next_run": iso(dm.next_dagrun_create_after) if dm else None,  # REST: next_dagrun_run_after
            "active": _active_run(session, c.dag_id) is not None,
            "latest_run": _run_view(latest, _import_task(session, c, latest, company or DEFAULT_COMPANY), c, ui_base),
        }
    return out


class TriggerRefused(Exception):
    """A sync that is not started; `message` in the page's language."""

    def __init__(self, status: int, message: str, run: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.run = status, message, run


def _lock_parsed_dag(session, category: Category, lang: str) -> None:
    """Lock the DAG's row (two clicks at once cannot both start a run); refuse a DAG Airflow cannot start."""
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    dm = session.scalar(select(DagModel).where(DagModel.dag_id == category.dag_id).with_for_update())
    if dm is None or dm.is_stale:
        raise TriggerRefused(409, label("dag_not_parsed", lang, dag_id=category.dag_id))
    if dm.has_import_errors:
        raise TriggerRefused(409, label("dag_import_errors", lang, dag_id=category.dag_id))


def _saved_settings_allow(session, category: Category, lang: str, company: str | None = None) -> ImportSettings:
    """The saved settings, if they let the category run (for `company`, with its own choices): the DAG's own check
    (`check_runnable`), in the page's words. The run would otherwise start and be skipped at once."""
    _, raw = read_variable(session)
    try:
        settings = parse_settings(raw)
    except SettingsError as exc:
        raise TriggerRefused(409, label("settings_invalid_no_import", lang, error=settings_error(exc, lang))) from None
    title = category_title(category, lang)
    key = company or DEFAULT_COMPANY
    try:
        check_runnable(category, company_named(settings, key).settings, key)
    except CompanyNotFound:
        raise TriggerRefused(404, label("company_unknown", lang, company=key)) from None
    except CompanyPaused:
        raise TriggerRefused(409, label("company_paused_sync", lang, company=key)) from None
    except CategoryNotEnabled:
        raise TriggerRefused(409, label("switched_off", lang, title=title)) from None
    except LicenseRequired:
        raise TriggerRefused(409, label("needs_pro_licence", lang, title=title)) from None
    return settings


def _create_manual_run(
    session, dag_bag, category: Category, *, full_refresh: bool, user_name: str, company: str | None = None
):
    from airflow.api_fastapi.common.dagbag import get_latest_version_of_dag
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    dag = get_latest_version_of_dag(dag_bag, category.dag_id, session)
    params = TriggerDAGRunPostBody(
        # The sync icon asks Exact now, even if a scheduled round read the same data a moment ago.
        logical_date=None,
        conf={
            "refresh_streams": True,
            **({"full_refresh": True} if full_refresh else {}),
            # one company's import (#21); without it the run imports every company with the category on
            **({"company": company} if company else {}),
        },
    ).validate_context(dag)
    return dag.create_dagrun(
        run_id=params["run_id"],
        logical_date=params["logical_date"],
        data_interval=params["data_interval"],
        run_after=params["run_after"],
        conf=params["conf"],
        run_type=DagRunType.MANUAL,
        triggered_by=DagRunTriggeredByType.UI,
        triggering_user_name=user_name,
        state=DagRunState.QUEUED,
        partition_key=params.get("partition_key"),
        partition_date=params.get("partition_date"),
        session=session,
    )


def trigger_sync(
    session,
    dag_bag,
    category: Category,
    *,
    full_refresh: bool,
    user_name: str,
    ui_base: str,
    lang: str = "en",
    company: str | None = None,
) -> dict:
    """A manual run of the category's DAG (of one company's import, if `company`), unless one is queued or running
    (409). The DAG row is locked while checking, so that two clicks at once cannot both start a run. A refusal says
    why in `lang`."""
    _lock_parsed_dag(session, category, lang)
    _saved_settings_allow(session, category, lang, company)
    active = _active_run(session, category.dag_id)
    if active is not None:
        view = _view_of_run(active, None, category, ui_base)
        state = label("state_" + view["state"], lang)  # queued or running (_active_run), as the page says it
        raise TriggerRefused(
            409, label("import_already_active", lang, title=category_title(category, lang), state=state), view
        )
    run = _create_manual_run(
        session, dag_bag, category, full_refresh=full_refresh, user_name=user_name, company=company
    )
    session.flush()
    return _view_of_run(run, None, category, ui_base)
