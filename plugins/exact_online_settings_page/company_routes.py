"""The settings page's API for several companies (#21), included into app.py's app: the company selector's list,
one company's state, Save, pause, removal and sync, and adding a company (its Exact connection and division, its
OutSmart database).

Who may do what (Airflow's auth manager, as in app.py): reading needs the right to read DAGs; a company's Save,
pause and removal the right to edit the Variable `exact_online_import_settings`; adding one also the right to edit
connections (it lists and may create them: an Exact connection for a new consent, a Postgres connection for a new
database); sync the right to trigger that category's DAG. Every write is a same-origin JSON request, as Save.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any, Literal

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import APIRouter, Body, Depends, HTTPException, Request, status

from exact_online_settings_page.app import (
    SessionDep,
    UserDep,
    _category_rights,
    _may_edit_settings,
    _no_store,
    _redirect_uri,
    _ui_base,
    can_read,
    editor,
    lang_of,
    same_origin_json,
    start_sync,
)
from exact_online_settings_page.labels import label
from exact_online_settings_page.variable_store import SaveRefused

log = logging.getLogger(__name__)

router = APIRouter()
Reader = Annotated[BaseUser, Depends(can_read)]
Editor = Annotated[BaseUser, Depends(editor)]


# ---- rights -------------------------------------------------------------------------------------------------------
def _may_edit_connection(user: BaseUser, conn_id: str, method: Literal["PUT", "POST"] = "PUT") -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    return bool(
        get_auth_manager().is_authorized_connection(
            method=method, details=ConnectionDetails(conn_id=conn_id), user=user
        )
    )


def _may_add(user: BaseUser) -> bool:
    from exact_online_settings_page.secret_scrub import EXACT_CONN_ID

    return _may_edit_settings(user) and _may_edit_connection(user, EXACT_CONN_ID)


def adder(request: Request, user: UserDep) -> BaseUser:
    """May edit the settings and the connections, and a same-origin JSON request for writes."""
    if not _may_add(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, label("may_not_add_company", lang_of(request)))
    if request.method != "GET":
        same_origin_json(request)
    return user


Adder = Annotated[BaseUser, Depends(adder)]


def _refused(exc: Any, request: Request | None = None) -> Any:
    """A refusal's answer: a ConnectRefused in the page's language (labels.py), the others as they say it."""
    status_code = getattr(exc, "status", 400)
    if hasattr(exc, "text"):
        return _no_store({"detail": exc.text(lang_of(request) if request is not None else "en")}, status_code)
    return _no_store({"detail": getattr(exc, "detail", None) or getattr(exc, "message", str(exc))}, status_code)


# ---- reading ------------------------------------------------------------------------------------------------------
def _first_title() -> str | None:
    """The first company's name: the description of its connection's division, if connecting recorded one."""
    from airflow.models import Connection

    from exact_online_settings_page.secret_scrub import EXACT_CONN_ID

    try:
        extra = Connection.get_connection_from_secrets(EXACT_CONN_ID).extra_dejson or {}
    except Exception:
        return None
    return str(extra.get("division_description") or "") or None


def _stored(session, lang: str = "en"):
    from exact_online_settings_page import company_settings, variable_store

    _, raw = variable_store.read_variable(session)
    return raw, company_settings.valid_settings(raw, lang)


@router.get("/api/companies")
def companies(request: Request, session: SessionDep, user: Reader):
    """The companies for the selector (the first, then the others by title), and what this user may do."""
    from exact_online_settings_page import company_settings
    from include.outsmart_import.settings import MAX_COMPANIES

    limits = {"max_companies": MAX_COMPANIES, "max_variable_kb": company_settings.MAX_VARIABLE_BYTES // 1024}
    rights = {"can_edit": _may_edit_settings(user), "can_add": _may_add(user)}
    try:
        _, settings = _stored(session, lang_of(request))
    except SaveRefused as exc:  # an invalid Variable: the page shows the first company and its problems
        first = {"key": "default", "title": _first_title() or company_settings.FIRST_COMPANY_TITLE, "paused": False}
        return _no_store({"companies": [first], "valid": False, "detail": exc.detail, **rights, "limits": limits})
    listed = company_settings.company_list(settings, _first_title())
    return _no_store({"companies": listed, "valid": True, **rights, "limits": limits})


def _company_state(request: Request, session, user: BaseUser, key: str) -> dict:
    """Everything the page shows for one company, in the shape of /api/state (page.js draws either)."""
    from exact_online_settings_page import airflow_runs, company_settings, outsmart_queries, schedule_picker
    from exact_online_settings_page.schedule_preview import schedule_preview
    from include.outsmart_import.settings import VARIABLE_NAME

    raw, settings = _stored(session, lang_of(request))
    company_settings.block_of(settings, key, lang_of(request))  # 404 for an unknown company
    view = company_settings.company_settings_view(settings, key)
    place = company_settings.place_of(settings, key, _first_title())
    ui_base, lang = _ui_base(request), lang_of(request)
    return {
        "settings": view,
        "stored": {"status": "valid", "problems": [], "error": None, "replace_required": False},
        "stored_error": None,
        "exists": raw is not None,
        "shadowed_by_environment": bool(os.environ.get("AIRFLOW_VAR_" + VARIABLE_NAME.upper())),
        "version": company_settings.company_version(settings, key),
        "company": {"key": key, **place, "paused": view["paused"]},
        "user": {"name": user.get_name(), "can_edit": _may_edit_settings(user)},
        "categories": _category_rights(user, ui_base),
        "runs": airflow_runs.dag_status(session, ui_base, key),
        "imports": outsmart_queries.last_imports(lang, place["target_conn_id"]),
        "schedule_preview": schedule_preview(view["schedule"], view["timezone"], lang),
        "schedule_picker": schedule_picker.from_cron(view["schedule"]).as_dict(),
        "schedule_choices": schedule_picker.choices(),
        "ui_base": ui_base,
    }


@router.get("/api/companies/{key}/state")
def company_state(key: str, request: Request, session: SessionDep, user: Reader):
    try:
        return _no_store(_company_state(request, session, user, key))
    except SaveRefused as exc:
        return _refused(exc)


@router.get("/api/companies/{key}/status")
def company_status(key: str, request: Request, session: SessionDep, user: Reader):
    """What the page polls for one company: its runs, its last imports, its version."""
    from exact_online_settings_page import airflow_runs, company_settings, outsmart_queries

    try:
        _, settings = _stored(session, lang_of(request))
        version = company_settings.company_version(settings, key)
    except SaveRefused as exc:
        return _refused(exc)
    target = company_settings.place_of(settings, key)["target_conn_id"]
    return _no_store(
        {
            "runs": airflow_runs.dag_status(session, _ui_base(request), key),
            "imports": outsmart_queries.last_imports(lang_of(request), target),
            "version": version,
        }
    )


@router.get("/api/companies/{key}/item-groups")
def company_item_groups(key: str, request: Request, session: SessionDep, user: Reader):
    """The item groups of the company's division: from its database once imported, else from Exact."""
    from exact_online_settings_page import category_catalog, company_settings
    from exact_online_settings_page.item_groups import item_groups

    try:
        _, settings = _stored(session, lang_of(request))
        view = company_settings.company_settings_view(settings, key)
    except SaveRefused as exc:
        return _refused(exc)
    place = company_settings.place_of(settings, key)
    return _no_store(
        item_groups(
            category_catalog.item_group_settings(view),
            lang_of(request),
            target_conn_id=place["target_conn_id"],
            exact_conn_id=place["exact_conn_id"],
            division=place["division"],
        )
    )


# ---- one company's Save, pause, removal, sync --------------------------------------------------------------------
@router.put("/api/companies/{key}")
def save_company(key: str, request: Request, session: SessionDep, user: Editor, body: Annotated[dict, Body()]):
    """`{"settings": {license, schedule, paused, categories, timezone, title}, "version"}`: only this company's block
    (and the shared time zone) changes; 409 if this company's block changed since the page loaded it."""
    from exact_online_settings_page import company_settings
    from exact_online_settings_page.schedule_picker import from_cron

    try:
        result = company_settings.save_company(
            session, key, body.get("settings"), str(body.get("version", "")), lang_of(request)
        )
    except SaveRefused as exc:
        session.rollback()
        return _refused(exc)
    log.info("settings page: %s saved company %s", user.get_name(), key)
    return _no_store(
        {
            **result,
            "message": label("saved", lang_of(request)),
            "schedule_picker": from_cron(result["settings"]["schedule"]).as_dict(),
        }
    )


@router.post("/api/companies/{key}/pause")
def pause_company(key: str, request: Request, session: SessionDep, user: Editor, body: Annotated[dict, Body()]):
    """`{"paused": true|false, "version"}`: a paused company is left out of every import; its data stays."""
    from exact_online_settings_page import company_settings

    try:
        result = company_settings.set_paused(
            session, key, body.get("paused"), str(body.get("version", "")), lang_of(request)
        )
    except SaveRefused as exc:
        session.rollback()
        return _refused(exc)
    log.info("settings page: %s %s company %s", user.get_name(), "paused" if result["paused"] else "resumed", key)
    return _no_store(result)


@router.delete("/api/companies/{key}")
def remove_company(key: str, request: Request, session: SessionDep, user: Editor, body: Annotated[dict, Body()]):
    """`{"confirm": true, "version"}`: the company leaves the settings; its database and connections stay."""
    from exact_online_settings_page import company_settings

    lang = lang_of(request)
    if body.get("confirm") is not True:
        return _no_store({"detail": label("remove_needs_confirm", lang)}, 422)
    try:
        gone = company_settings.remove_company(session, key, str(body.get("version", "")), lang)
    except SaveRefused as exc:
        session.rollback()
        return _refused(exc)
    log.info("settings page: %s removed company %s from the settings", user.get_name(), key)
    message = label("company_removed_server", lang, title=gone["title"], conn_id=gone["target_conn_id"])
    return _no_store({**gone, "message": message})


@router.post("/api/companies/{key}/categories/{name}/sync")
def sync_company(
    key: str,
    name: str,
    request: Request,
    session: SessionDep,
    user: UserDep,
    body: Annotated[dict | None, Body()] = None,
):
    """One company's import of one category now (the DAG run's conf says `company`)."""
    return start_sync(name, request, session, user, body, company=key)


# ---- adding a company ---------------------------------------------------------------------------------------------
def _used_targets(session) -> dict[str, str]:
    from exact_online_settings_page.secret_scrub import TARGET_CONN_ID

    try:
        _, settings = _stored(session)
    except SaveRefused:
        return {TARGET_CONN_ID: "default"}
    return {TARGET_CONN_ID: "default", **{c.target_conn_id: k for k, c in settings.companies.items()}}


@router.get("/api/exact-connections")
def exact_connections(request: Request, session: SessionDep, user: Adder):
    """The Exact connections a new company may take its division through (ids, divisions, who: no secret)."""
    from exact_online_settings_page import company_exact, exact_connect

    return _no_store(
        {
            "connections": company_exact.exact_connections(session),
            "attempt": exact_connect.latest_company_attempt(user.get_name(), lang_of(request)),
        }
    )


@router.get("/api/exact-connections/{conn_id}/divisions")
def consent_divisions(conn_id: str, request: Request, session: SessionDep, user: Adder):
    """The divisions the connection's consent reaches, each with the company that imports it already, if any."""
    from exact_online_settings_page import company_exact
    from exact_online_settings_page.exact_connect import ConnectRefused

    if conn_id not in {c["conn_id"] for c in company_exact.exact_connections(session)}:
        return _no_store({"detail": label("no_exact_connection", lang_of(request), conn_id=conn_id)}, 404)
    try:
        found = company_exact.consent_divisions(conn_id)
    except ConnectRefused as exc:
        return _refused(exc, request)
    taken = _taken_divisions(session, conn_id, found["consent_division"])
    for d in found["divisions"]:
        d["company"] = taken.get(d["code"])
    return _no_store(found)


def _taken_divisions(session, conn_id: str, consent_division: int) -> dict[int, str]:
    """Division -> the company importing it through this connection."""
    from exact_online_settings_page.secret_scrub import EXACT_CONN_ID

    try:
        _, settings = _stored(session)
    except SaveRefused:
        return {}
    taken = {c.division: k for k, c in settings.companies.items() if c.exact_conn_id == conn_id}
    if conn_id == EXACT_CONN_ID:
        taken[consent_division] = "default"
    return taken


@router.post("/api/exact-connections")
def connect_new_consent(request: Request, session: SessionDep, user: Adder, body: Annotated[dict, Body()]):
    """`{"key": "<the new company's key>"}`: the connection `exact_online_<key>` with the first company's app (made
    if missing), and a connect attempt for it → Exact's authorize URL (the page sends the top window there)."""
    from exact_online_settings_page import company_exact, exact_connect

    try:
        conn_id = company_exact.new_connection_id(body.get("key"))
        if not _may_edit_connection(user, conn_id, "POST"):
            raise exact_connect.ConnectRefused("may_not_create_connection", 403, conn_id=conn_id)
        company_exact.new_connection(session, conn_id)
        session.commit()  # the attempt's callback reads the connection in another request
        url = exact_connect.start(user.get_name(), _redirect_uri(request), lang_of(request), conn_id)
    except exact_connect.ConnectRefused as exc:
        session.rollback()
        return _refused(exc, request)
    log.info("settings page: %s is connecting a new consent on %s", user.get_name(), conn_id)
    return _no_store({"conn_id": conn_id, "authorize_url": url})


@router.get("/api/targets")
def targets(session: SessionDep, user: Adder):
    """The Postgres connections a new company may import into (ids and database names), each with the company
    that imports into it already, if any."""
    from exact_online_settings_page import company_targets

    return _no_store({"connections": company_targets.postgres_connections(session, _used_targets(session))})


@router.post("/api/targets")
def create_target(request: Request, session: SessionDep, user: Adder, body: Annotated[dict, Body()]):
    """`{"key"}`: the database `outsmart_<key>` on the server of outsmart_postgres (made if missing), and its
    connection `outsmart_<key>` with the same credentials."""
    from exact_online_settings_page import company_targets

    lang = lang_of(request)
    try:
        conn_id, _ = company_targets.new_target_names(body.get("key"), lang)
        if not _may_edit_connection(user, conn_id, "POST"):
            raise company_targets.TargetRefused(label("may_not_create_connection", lang, conn_id=conn_id), 403)
        made = company_targets.create_target(session, body.get("key"), lang)
    except company_targets.TargetRefused as exc:
        session.rollback()
        return _refused(exc)
    log.info("settings page: %s made the target %s", user.get_name(), made["conn_id"])
    said = {"conn_id": made["conn_id"], "database": made["database"]}
    message = label("target_made", lang, **said) if made["created_database"] else label("target_reused", lang, **said)
    return _no_store({**made, "message": message}, 201)


@router.post("/api/companies")
def add_company(request: Request, session: SessionDep, user: Adder, body: Annotated[dict, Body()]):
    """`{"key", "title", "exact_conn_id", "division", "target_conn_id", "settings": {license, schedule, categories}}`
    → 201; 422 with the problems at their fields (a key taken, a division or database another company's, a
    division the connection's consent does not reach)."""
    from exact_online_settings_page import company_settings

    company, lang = _new_company(body), lang_of(request)
    try:
        company_settings.add_company(session, body.get("key"), company, _first_division(), lang)
        _check_reachable(session, company, lang)
        _check_same_division_elsewhere(session, str(body.get("key")), company, lang)
    except SaveRefused as exc:
        session.rollback()
        return _refused(exc)
    log.info("settings page: %s added company %s", user.get_name(), body.get("key"))
    return _no_store(
        {"key": body.get("key"), "message": label("company_added_server", lang, title=company.get("title"))}, 201
    )


def _new_company(body: dict) -> dict:
    from exact_online_settings_page.company_settings import CHOICES

    submitted = body.get("settings")
    choices: dict = submitted if isinstance(submitted, dict) else {}
    place = {k: body.get(k) for k in ("title", "exact_conn_id", "division", "target_conn_id")}
    return {**place, **{k: v for k, v in choices.items() if k in CHOICES}}


def _first_division() -> int | None:
    from exact_online_settings_page import exact_connect

    try:
        return exact_connect.hook().consent_division
    except Exception:
        return None


def _check_reachable(session, company: dict, lang: str) -> None:
    """The connection is an Exact one, its consent reaches the division, the target is a Postgres connection."""
    from exact_online_settings_page import company_exact, company_targets
    from exact_online_settings_page.exact_connect import ConnectRefused

    errors = []
    if company["exact_conn_id"] not in {c["conn_id"] for c in company_exact.exact_connections(session)}:
        message = label("no_exact_connection", lang, conn_id=company["exact_conn_id"])
        errors.append({"path": "exact_conn_id", "message": message})
    if company["target_conn_id"] not in {c["conn_id"] for c in company_targets.postgres_connections(session, {})}:
        message = label("no_postgres_connection", lang, conn_id=company["target_conn_id"])
        errors.append({"path": "target_conn_id", "message": message})
    if not errors:
        try:
            codes = {d["code"] for d in company_exact.consent_divisions(company["exact_conn_id"])["divisions"]}
        except ConnectRefused as exc:
            raise SaveRefused(exc.status, label("company_not_added_because", lang, error=exc.text(lang))) from None
        if company["division"] not in codes:
            said = {"conn_id": company["exact_conn_id"], "division": str(company["division"])}
            errors.append({"path": "division", "message": label("division_not_reached", lang, **said)})
    if errors:
        raise SaveRefused(422, {"message": label("company_not_added", lang), "errors": errors})


def _check_same_division_elsewhere(session, key: str, company: dict, lang: str) -> None:
    """The division is not imported already through another connection of the same app (another consent that
    reaches it): the same administration imported twice, into two databases, is one company counted twice."""
    from exact_online_settings_page import company_exact

    app_of = {c["conn_id"]: c.get("client_id") for c in company_exact.exact_connections(session)}
    _, settings = _stored(session)  # as written in this request, with the new company in it
    mine = (app_of.get(company["exact_conn_id"]), company["division"])
    places = {k: (app_of.get(c.exact_conn_id), c.division) for k, c in settings.companies.items() if k != key}
    first = _first_division()
    if first is not None:
        places["default"] = (app_of.get("exact_online_default"), first)
    for other, place in sorted(places.items()):
        if place == mine:
            message = label("division_imported_by", lang, division=str(company["division"]), company=other)
            errors = [{"path": "division", "message": message}]
            raise SaveRefused(422, {"message": label("company_not_added", lang), "errors": errors})
