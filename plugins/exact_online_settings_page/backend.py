"""What the settings page reads and writes, inside the api-server process.

The api-server is not a task: it may use Airflow's ORM session (Variable, DagModel, DagRun, TaskInstance), as its
own REST endpoints do. The OutSmart database is reached through the `outsmart_postgres` connection (PostgresHook;
in the api-server connections resolve through the metadata database). No function here returns a connection,
a password or a token: answers carry settings, states, counts and messages only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import typing
from collections.abc import Callable, Sequence

from include.outsmart_import.registry import CATEGORIES, Category
from include.outsmart_import.settings import (
    VARIABLE_NAME,
    ImportSettings,
    QuotationStatus,
    RelationType,
    SalesOrderStatus,
    SettingsError,
    parse_settings,
    settings_problems,
)

log = logging.getLogger(__name__)

TARGET_CONN_ID = "outsmart_postgres"
EXACT_CONN_ID = "exact_online_default"

# The words the office knows from Exact Online (Dutch), shown in brackets after the English title.
DUTCH = {
    "relations": "Relaties",
    "materials": "Artikelen",
    "hour_types": "Uursoorten",
    "categories": "Artikelgroepen",
    "employees": "Medewerkers",
    "payment_transactions": "Openstaande posten",
    "warehouses": "Magazijnen",
    "price_agreements": "Prijsafspraken",
    "sales_orders": "Verkooporders",
    "shop_orders": "Productieorders",
    "goods_deliveries": "Leveringen",
    "quotations": "Offertes",
    "project_planning": "Projectplanning",
    "assembly_orders": "Assemblageorders",
}
SHORT_TITLE = {
    "relations": "Relations",
    "materials": "Materials",
    "hour_types": "Hour types",
    "categories": "Categories",
    "employees": "Employees",
    "payment_transactions": "Payment transactions",
}
OPTION_LABELS = {
    "customer": "Customer (Klant)",
    "prospect": "Prospect",
    "suspect": "Suspect",
    "none": "None (Geen)",
    "supplier": "Supplier (Leverancier)",
    "open": "Open",
    "partial": "Partly delivered (Gedeeltelijk)",
    "complete": "Complete (Afgehandeld)",
    "cancelled": "Cancelled (Geannuleerd)",
    "rejected": "Rejected (Afgewezen)",
    "closed": "Closed (Gesloten)",
    "recovery": "Recovery (Herstel)",
    "draft": "Draft (Concept)",
    "processing": "Processing (In behandeling)",
    "printed": "Printed (Afgedrukt)",
    "accepted": "Accepted (Geaccepteerd)",
    "awaiting_acceptance": "Awaiting acceptance (Wacht op acceptatie)",
    "accepted_with_error": "Accepted with error (Geaccepteerd met fout)",
}


def _options(literal) -> list[dict]:
    return [{"value": v, "label": OPTION_LABELS.get(v, v)} for v in typing.get_args(literal)]


def _flag(key: str, label: str) -> dict:
    return {"key": key, "kind": "bool", "label": label}


# Per category the filters the page shows; a test checks that they are exactly the model's fields.
FILTERS: dict[str, list[dict]] = {
    "relations": [
        {
            "key": "relation_types",
            "kind": "checkboxes",
            "label": "Relation types (Relatiesoorten)",
            "options": _options(RelationType),
        },
        _flag("include_inactive", "Include inactive relations (niet actief: einddatum verstreken)"),
        _flag("include_blocked", "Include blocked relations (Geblokkeerd)"),
        _flag("include_addresses", "Import their addresses: visit, postal, invoice, delivery (Adressen)"),
        _flag("include_contacts", "Import their contact persons (Contactpersonen)"),
    ],
    "materials": [{"key": "item_groups", "kind": "item_groups", "label": "Item groups (Artikelgroepen); none = all"}],
    "hour_types": [{"key": "item_groups", "kind": "item_groups", "label": "Item groups (Artikelgroepen); none = all"}],
    "employees": [_flag("include_inactive", "Include inactive employees (uit dienst)")],
    "payment_transactions": [_flag("only_open", "Only open items (alleen openstaande posten)")],
    "price_agreements": [_flag("only_current", "Only agreements valid today (alleen geldige prijsafspraken)")],
    "sales_orders": [
        {
            "key": "statuses",
            "kind": "checkboxes",
            "label": "Order statuses (Status)",
            "options": _options(SalesOrderStatus),
        }
    ],
    "quotations": [
        {
            "key": "statuses",
            "kind": "checkboxes",
            "label": "Quotation statuses (Status)",
            "options": _options(QuotationStatus),
        }
    ],
}


def categories_meta(ui_base: str) -> list[dict]:
    out = []
    for c in CATEGORIES.values():
        out.append(
            {
                "name": c.name,
                "title": SHORT_TITLE.get(c.name, c.title),
                "long_title": c.title,
                "dutch": DUTCH.get(c.name, ""),
                "pro": c.pro,
                "dag_id": c.dag_id,
                "filters": FILTERS.get(c.name, []),
                "grid_url": f"{ui_base}dags/{c.dag_id}",
            }
        )
    return out


# ---- the Variable -------------------------------------------------------------------------------------------------
def version_of(raw: str | None) -> str:
    """The version the page sends back on Save: a hash of the stored text (not the text: no need to echo it)."""
    if raw is None:
        return "absent"
    return "sha256:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


def read_variable(session, *, for_update: bool = False):
    from airflow.models import Variable
    from sqlalchemy import select

    stmt = select(Variable).where(Variable.key == VARIABLE_NAME)
    if for_update:
        stmt = stmt.with_for_update()
    var = session.scalar(stmt)
    return var, (var.val if var is not None else None)


def settings_view(raw: str | None) -> dict:
    """The stored settings as the page edits them (every key explicit), or the reason they cannot be used."""
    try:
        settings = parse_settings(raw)
        error = None
    except SettingsError as exc:
        settings, error = ImportSettings(), str(exc)
    shadowed = bool(os.environ.get("AIRFLOW_VAR_" + VARIABLE_NAME.upper()))
    return {
        "settings": settings.model_dump(mode="json"),
        "stored_error": error,
        "exists": raw is not None,
        "shadowed_by_environment": shadowed,
        "version": version_of(raw),
    }


class SaveRefused(Exception):
    def __init__(self, status: int, detail):
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def save_settings(session, submitted, expected_version: str) -> dict:
    """Validate with the DAGs' model; refuse a stale page (409); write the whole Variable in one statement."""
    from airflow.models import Variable

    if not isinstance(submitted, dict):
        raise SaveRefused(
            422,
            {
                "message": "The settings must be a JSON object.",
                "errors": [{"path": "(top level)", "message": "must be a JSON object"}],
            },
        )
    settings, problems = settings_problems(submitted)
    if settings is None:  # invalid: the problems say why
        raise SaveRefused(422, {"message": "Nothing was saved: fix the fields marked in red.", "errors": problems})
    # The row lock makes compare-and-write atomic against another Save through this page; the REST API and the
    # Variables page write without it, but a write of theirs that lands first changes the hash and is caught here.
    var, current = read_variable(session, for_update=True)
    if version_of(current) != expected_version:
        raise SaveRefused(
            409,
            {
                "message": "The settings were changed by someone else (or on the Variables page) "
                "after this page was loaded. Nothing was saved: reload the page to see "
                "the new settings, then make your change again.",
                "current_version": version_of(current),
            },
        )
    text = json.dumps(settings.model_dump(mode="json"), indent=2)
    if var is None:
        session.add(
            Variable(
                key=VARIABLE_NAME,
                val=text,
                description="Exact Online imports: which categories, their filters, licence, schedule",
            )
        )
    else:
        var.set_val(text)
    session.flush()
    try:
        from airflow.sdk import SecretCache

        SecretCache.invalidate_variable(VARIABLE_NAME)
    except Exception:  # the cache is optional
        pass
    return {"version": version_of(text), "settings": settings.model_dump(mode="json")}


def schedule_preview(schedule: str | None, timezone: str, count: int = 3) -> dict:
    """The next fires of a schedule (UTC ISO; the page shows them in the browser's time zone)."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    if schedule is None or schedule == "":
        return {"next": [], "message": "Only when started by hand (no schedule)."}
    try:
        settings = ImportSettings(schedule=schedule, timezone=timezone)
    except Exception as exc:
        _, problems = settings_problems({"schedule": schedule, "timezone": timezone})
        return {"next": [], "errors": problems or [{"path": "schedule", "message": str(exc)}]}
    now = dt.datetime.now(ZoneInfo(settings.timezone))
    it = croniter(settings.schedule, now)
    fires = [it.get_next(dt.datetime).astimezone(dt.UTC).isoformat() for _ in range(count)]
    return {"next": fires}


# ---- Airflow: DAGs and runs ---------------------------------------------------------------------------------------
def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _run_view(run, ti, category: Category, ui_base: str) -> dict | None:
    return None if run is None else _view_of_run(run, ti, category, ui_base)


def _view_of_run(run, ti, category: Category, ui_base: str) -> dict:
    view = {
        "run_id": run.run_id,
        "state": str(run.state.value if hasattr(run.state, "value") else run.state),
        "run_type": str(getattr(run.run_type, "value", run.run_type)),
        "queued_at": _iso(run.queued_at),
        "start_date": _iso(run.start_date),
        "end_date": _iso(run.end_date),
        "full_refresh": bool((run.conf or {}).get("full_refresh")),
        "run_url": f"{ui_base}dags/{category.dag_id}/runs/{run.run_id}",
        "log_url": None,
        "task_state": None,
    }
    if ti is not None:
        view["task_state"] = str(getattr(ti.state, "value", ti.state)) if ti.state else None
        try_number = max(int(ti.try_number or 0), 1)
        view["log_url"] = (
            f"{ui_base}dags/{category.dag_id}/runs/{run.run_id}/tasks/{ti.task_id}?try_number={try_number}"
        )
    return view


def dag_status(session, ui_base: str) -> dict[str, dict]:
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    ids = [c.dag_id for c in CATEGORIES.values()]
    models = {d.dag_id: d for d in session.scalars(select(DagModel).where(DagModel.dag_id.in_(ids)))}
    out = {}
    for c in CATEGORIES.values():
        dm = models.get(c.dag_id)
        latest = session.scalar(select(DagRun).where(DagRun.dag_id == c.dag_id).order_by(DagRun.id.desc()).limit(1))
        active = session.scalar(
            select(DagRun)
            .where(DagRun.dag_id == c.dag_id, DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]))
            .order_by(DagRun.id.desc())
            .limit(1)
        )
        ti = None
        if latest is not None:
            ti = session.scalar(
                select(TaskInstance).where(
                    TaskInstance.dag_id == c.dag_id,
                    TaskInstance.run_id == latest.run_id,
                    TaskInstance.task_id == f"import_{c.name}",
                    TaskInstance.map_index == -1,
                )
            )
        out[c.name] = {
            "parsed": dm is not None and not dm.is_stale,
            "paused": bool(dm.is_paused) if dm else None,
            "has_import_errors": bool(dm.has_import_errors) if dm else False,
            "schedule": dm.timetable_summary if dm else None,
            "next_run": _iso(dm.next_dagrun_create_after) if dm else None,  # REST: next_dagrun_run_after
            "active": active is not None,
            "latest_run": _run_view(latest, ti, c, ui_base),
        }
    return out


class TriggerRefused(Exception):
    def __init__(self, status: int, message: str, run: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.run = status, message, run


def trigger_sync(session, dag_bag, category: Category, *, full_refresh: bool, user_name: str, ui_base: str) -> dict:
    """A manual run of the category's DAG, unless one is queued or running (409). The DAG row is locked while
    checking, so that two clicks at once cannot both start a run."""
    from airflow.api_fastapi.common.dagbag import get_latest_version_of_dag
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    dm = session.scalar(select(DagModel).where(DagModel.dag_id == category.dag_id).with_for_update())
    if dm is None or dm.is_stale:
        raise TriggerRefused(409, f"{category.dag_id} is not (yet) known to Airflow: the DAG file has not been parsed.")
    if dm.has_import_errors:
        raise TriggerRefused(409, f"{category.dag_id} has import errors and cannot be started.")
    _, raw = read_variable(session)
    try:
        settings = parse_settings(raw)
    except SettingsError as exc:
        raise TriggerRefused(409, f"The saved settings are invalid, so no import can run: {exc}") from None
    if not settings.category(category.name).enabled:
        raise TriggerRefused(
            409, f"{category.title} is switched off in the saved settings: switch it on and Save first."
        )
    if category.pro and settings.license != "pro":
        raise TriggerRefused(409, f"{category.title} needs the Exact Online Pro licence.")
    active = session.scalar(
        select(DagRun)
        .where(DagRun.dag_id == category.dag_id, DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]))
        .order_by(DagRun.id.desc())
        .limit(1)
    )
    if active is not None:
        raise TriggerRefused(
            409,
            f"An import of {category.title} is already {active.state}: wait for it to finish.",
            _run_view(active, None, category, ui_base),
        )
    dag = get_latest_version_of_dag(dag_bag, category.dag_id, session)
    params = TriggerDAGRunPostBody(
        # The sync icon asks Exact now, even if a scheduled round read the same data a moment ago.
        logical_date=None,
        conf={"refresh_streams": True, **({"full_refresh": True} if full_refresh else {})},
    ).validate_context(dag)
    run = dag.create_dagrun(
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
    session.flush()
    return _view_of_run(run, None, category, ui_base)


# ---- the OutSmart database ----------------------------------------------------------------------------------------
def _connect():
    from include.outsmart_import.target_db import connector

    return connector(TARGET_CONN_ID)()


def _scrub(text: str) -> str:
    """An error message for the page: first line only, without any password or token of our connections."""
    text = (text or "").strip().splitlines()[0][:300] if text else ""
    try:
        from airflow.models import Connection

        for conn_id in (TARGET_CONN_ID, EXACT_CONN_ID):
            try:
                c = Connection.get_connection_from_secrets(conn_id)
            except Exception:
                continue
            for secret in (c.password, (c.extra_dejson or {}).get("refresh_token")):
                if secret and str(secret) in text:
                    text = text.replace(str(secret), "***")
    except Exception:
        pass
    return text


LOG_COLUMNS = (
    "category",
    "run_id",
    "started_at",
    "ended_at",
    "status",
    "full_refresh",
    "dry_run",
    "fetched",
    "inserted",
    "updated",
    "unchanged",
    "filtered_out",
    "rejected",
    "deleted",
    "error",
)


def last_imports() -> dict:
    """The newest `outsmart.import_log` row per category."""
    from include.outsmart_import.import_log import ImportLog

    try:
        with _connect() as conn:
            latest = ImportLog(conn).latest_per_category(LOG_COLUMNS)
        if latest is None:
            return {"available": True, "by_category": {}, "message": "No import has run yet."}
    except Exception as exc:
        log.warning("settings page: import log not readable: %s", type(exc).__name__)
        return {
            "available": False,
            "by_category": {},
            "message": f"The OutSmart database could not be read ({type(exc).__name__}: {_scrub(str(exc))}).",
        }
    out = {}
    for rec in latest.values():
        for k in ("started_at", "ended_at"):
            rec[k] = _iso(rec[k])
        rec["error"] = _scrub(rec["error"]) if rec["error"] else None
        out[rec["category"]] = rec
    return {"available": True, "by_category": out}


def item_groups(extra_codes: Sequence[str] = ()) -> dict:
    """The division's item groups (code + description): from `outsmart.categories` once that category has been
    imported, otherwise read from Exact through the hook (the same token chain and call budget as the imports)."""
    groups, source, message = [], None, None
    try:
        with _connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('outsmart.categories') IS NOT NULL")
            if cur.fetchone()[0]:
                cur.execute("SELECT code, description FROM outsmart.categories WHERE deleted_at IS NULL ORDER BY code")
                groups = [{"code": c, "description": d or ""} for c, d in cur.fetchall()]
                source = "outsmart.categories"
    except Exception as exc:
        message = f"OutSmart database: {type(exc).__name__}: {_scrub(str(exc))}"
    if not groups:
        try:
            groups = _item_groups_from_exact()
            source = "Exact Online"
        except Exception as exc:
            log.warning("settings page: item groups not readable from Exact: %s", type(exc).__name__)
            message = (message + "; " if message else "") + f"Exact Online: {type(exc).__name__}: {_scrub(str(exc))}"
    known = {g["code"] for g in groups}
    for code in extra_codes:
        if code not in known:
            groups.append({"code": code, "description": "(not among the division's item groups)", "unknown": True})
    return {"groups": groups, "source": source, "message": message}


def _item_groups_from_exact() -> list[dict]:
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.rate_budget import PostgresRateBudget
    from exact_online.token_store import DbConnection, PostgresTokenStore
    from include.outsmart_import.target_db import connector

    # connector() is typed as returning object; what it returns is a psycopg connection.
    connect = typing.cast("Callable[[], DbConnection]", connector(TARGET_CONN_ID))
    budget = PostgresRateBudget(connect)
    hook = ExactOnlineHook(EXACT_CONN_ID, token_store=PostgresTokenStore(connect), rate_budget=budget)
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
