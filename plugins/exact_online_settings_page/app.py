"""The FastAPI app of the settings page, mounted by the api-server under `/exact-online-imports`.

Who may do what: Airflow's own auth manager decides, through the api-server's dependencies in
`airflow.api_fastapi.core_api.security` (`get_user` reads the Bearer header or the UI's `_token` cookie):
- the page and `GET /api/*`: logged in and allowed to read DAGs (`requires_access_dag("GET")`);
  anonymous: 401 (the HTML page redirects to the login page instead);
- Save (`PUT /api/settings`): allowed to edit the Variable `exact_online_import_settings`
  (the auth manager's `is_authorized_variable(PUT)` for that key, as `requires_access_variable` asks it);
- sync (`POST /api/categories/{name}/sync`): allowed to trigger that category's DAG
  (`requires_access_dag("POST", DagAccessEntity.RUN)` for its dag_id, as Airflow's own trigger endpoint).

Cross-site use: the browser sends the `_token` cookie with every request to this host, so a state-changing request
must prove it comes from this page: it must carry the header `X-Exact-Online-Page: 1` and a JSON body
(`Content-Type: application/json`). A form or image on another site cannot send either without a CORS preflight,
which this app never answers. On top, when the request rides on the cookie (no Authorization header), its `Origin`
(or, without one, `Referer`) must be this server's own origin or `[api] base_url`: this also stops another site
on the same host name (another port, which SameSite=Lax would count as the same site). Requests with a Bearer
token (scripts) are not exposed to that: browsers never add an Authorization header by themselves.

Language: what the server says (refusals, validation problems, the connection's state) is made by key (labels.py)
in the language the request asks for in `Accept-Language`. The page sets that header on every call to the language
chosen in Airflow's UI (page.js, `call`). Why that header and not one of ours: it is HTTP's own header for exactly
this, so a script or curl gets Dutch the same way (`-H "Accept-Language: nl"`); it is CORS-safelisted, so it
changes nothing in the cross-site rules above; and without the page's script (the callback page, the page itself)
the browser sends its own languages in it, the best guess left there. The callback page speaks the language of the
page that started the connect attempt (kept with the attempt).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlparse

# Module level, not under TYPE_CHECKING: FastAPI reads the endpoints' annotations at run time.
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import Body, Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from exact_online_settings_page.labels import category_title, label, language_of
from exact_online_settings_page.request_limits import BodyLimit

if TYPE_CHECKING:
    from airflow.api_fastapi.common.dagbag import CachedDBDagBag

log = logging.getLogger(__name__)

URL_PREFIX = "/exact-online-imports"
STATIC = Path(__file__).parent / "static"
PAGE_HEADER = "x-exact-online-page"

app = FastAPI(title="Exact Online imports: settings page", docs_url=None, redoc_url=None, openapi_url=None)
app.mount("/static", StaticFiles(directory=STATIC), name="static")
# Outermost: a body over the limit is refused before auth, parsing or validation spend anything on it.
app.add_middleware(BodyLimit)


# ---- auth -----------------------------------------------------------------------------------------------------------
def _security():
    from airflow.api_fastapi.core_api import security

    return security


async def current_user(request: Request) -> BaseUser:
    """`security.get_user` (Bearer header first, else the UI's cookie; 401 without either)."""
    from fastapi.security.http import HTTPAuthorizationCredentials

    header = request.headers.get("authorization", "")
    bearer = None
    if header.lower().startswith("bearer "):
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=header[7:].strip())
    return await _security().get_user(request, None, bearer)


UserDep = Annotated[BaseUser, Depends(current_user)]


def lang_of(request: Request) -> str:
    """The language to answer in ("en" or "nl"): see the module doc."""
    return language_of(request.headers.get("accept-language"))


# Airflow's own request session (committed when the endpoint returns, before the answer is sent).
from airflow.api_fastapi.common.db.common import SessionDep  # noqa: E402


def can_read(request: Request, user: UserDep) -> BaseUser:
    _security().requires_access_dag(method="GET")(request, user)
    return user


def _may_edit_settings(user: BaseUser) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import VariableDetails

    from include.outsmart_import.settings import VARIABLE_NAME

    return bool(
        get_auth_manager().is_authorized_variable(method="PUT", details=VariableDetails(key=VARIABLE_NAME), user=user)
    )


def _may_trigger(user: BaseUser, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        get_auth_manager().is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
        )
    )


def _own_origins(request: Request) -> set[str]:
    from airflow.configuration import conf

    origins = set()
    host = request.headers.get("host")
    if host:
        origins.add(f"{request.url.scheme}://{host}".lower())
    base = conf.get("api", "base_url", fallback=None)
    if base:
        p = urlparse(base)
        if p.scheme and p.netloc:
            origins.add(f"{p.scheme}://{p.netloc}".lower())
    return origins


def same_origin_json(request: Request) -> None:
    """Refuse state-changing requests that another site could have made the browser send (see the module doc)."""
    lang = lang_of(request)
    if request.headers.get(PAGE_HEADER) != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, label("refused_no_page_header", lang, header=PAGE_HEADER))
    if not request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, label("send_json", lang))
    if request.headers.get("authorization"):
        return
    origin = request.headers.get("origin")
    if not origin:
        referer = request.headers.get("referer")
        if referer:
            p = urlparse(referer)
            origin = f"{p.scheme}://{p.netloc}"
    if not origin or origin.lower() not in _own_origins(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, label("refused_cross_site", lang))


def editor(request: Request, user: UserDep) -> BaseUser:
    """Logged in, allowed to edit the settings Variable, and a same-origin JSON request."""
    if not _may_edit_settings(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, label("may_not_edit_settings", lang_of(request)))
    same_origin_json(request)
    return user


def _category_rights(user: BaseUser, ui_base: str) -> list[dict]:
    """Per category what this user may do and where its DAG's grid is (GET /api/state and a company's state); what
    the category is and which filters it has, the page takes from GET /api/categories."""
    from include.outsmart_import import registry

    return [
        {
            "name": c.name,
            "dag_id": c.dag_id,
            "can_trigger": _may_trigger(user, c.dag_id),
            "grid_url": f"{ui_base}dags/{c.dag_id}",
        }
        for c in registry.CATEGORIES.values()
    ]


def _ui_base(request: Request) -> str:
    from airflow.api_fastapi.app import get_cookie_path

    base = get_cookie_path()
    return base if base.endswith("/") else base + "/"


def _category(name: str, lang: str):
    from include.outsmart_import import registry

    category = registry.CATEGORIES.get(name)
    if category is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, label("no_such_category", lang, name=repr(name)))
    return category


# Where the Airflow UI shows this page (exact_online_settings_page_plugin.UI_ROUTE): the login page sends the user
# back there, inside Airflow's frame, not to the bare page.
UI_PAGE = "plugin/exact-online-imports"


def login_url(request: Request) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=_ui_base(request) + UI_PAGE)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException):
    """A 401 (no login, or the UI's login expired) says where to log in again: inside Airflow's iframe the page
    cannot be redirected there by the server (the redirect would land in the frame), so the page shows a link."""
    if exc.status_code != status.HTTP_401_UNAUTHORIZED:
        return await http_exception_handler(request, exc)
    payload = {"detail": exc.detail, "login_expired": True, "login_url": login_url(request)}
    return JSONResponse(payload, status_code=401, headers={**(exc.headers or {}), "Cache-Control": "no-store"})


# ---- the page -------------------------------------------------------------------------------------------------------
@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request):
    """The page itself (no data in it: the script loads it). Not logged in: to Airflow's login page."""
    from airflow.api_fastapi.app import get_auth_manager

    try:
        user = await current_user(request)
    except HTTPException:
        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=307)
    try:
        can_read(request, user)
    except HTTPException as exc:
        from html import escape

        said = label("may_not_see_page", lang_of(request), detail=exc.detail)
        return HTMLResponse(f"<p>{escape(said)}</p>", status_code=exc.status_code)
    base = request.scope.get("root_path", "").rstrip("/") or URL_PREFIX
    from exact_online_settings_page import labels

    # The labels are in the page itself, so that even "your login has expired" can be said in the user's language.
    html = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{BASE}}", base)
    html = html.replace("{{LABELS}}", labels.as_script_json())
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


# ---- the API --------------------------------------------------------------------------------------------------------
def _no_store(payload, status_code: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status_code, headers={"Cache-Control": "no-store"})


@app.get("/api/categories")
def categories(user: Annotated[BaseUser, Depends(can_read)]):
    """The categories the page draws, from the registry: per category its name, titles, Pro mark, DAG id and
    filters (widget, label, choices, default); and the counts an import reports (`MERGE_COUNTS`)."""
    from exact_online_settings_page import category_catalog

    return _no_store(category_catalog.catalog())


@app.get("/api/state")
def state(request: Request, session: SessionDep, user: Annotated[BaseUser, Depends(can_read)]):
    """Everything the page shows: settings + version, categories, runs, last imports, what this user may do."""
    from exact_online_settings_page import airflow_runs, outsmart_queries, schedule_picker, variable_store
    from exact_online_settings_page.schedule_preview import schedule_preview

    ui_base, lang = _ui_base(request), lang_of(request)
    _, raw = variable_store.read_variable(session)
    view = variable_store.settings_view(raw, lang)
    payload = {
        **view,
        "user": {"name": user.get_name(), "can_edit": _may_edit_settings(user)},
        "categories": _category_rights(user, ui_base),
        "runs": airflow_runs.dag_status(session, ui_base),
        "imports": outsmart_queries.last_imports(lang),
        "schedule_preview": schedule_preview(view["settings"]["schedule"], view["settings"]["timezone"], lang),
        "schedule_picker": schedule_picker.from_cron(view["settings"]["schedule"]).as_dict(),
        "schedule_choices": schedule_picker.choices(),
        "ui_base": ui_base,
    }
    return _no_store(payload)


@app.get("/api/status")
def run_status(request: Request, session: SessionDep, user: Annotated[BaseUser, Depends(can_read)]):
    """What the page polls while imports run: run states and the last import per category, and the stored
    settings' version (so the page can tell that someone else saved)."""
    from exact_online_settings_page import airflow_runs, outsmart_queries, variable_store

    _, raw = variable_store.read_variable(session)
    return _no_store(
        {
            "runs": airflow_runs.dag_status(session, _ui_base(request)),
            "imports": outsmart_queries.last_imports(lang_of(request)),
            "version": variable_store.version_of(raw),
        }
    )


@app.get("/api/item-groups")
def get_item_groups(request: Request, session: SessionDep, user: Annotated[BaseUser, Depends(can_read)]):
    from exact_online_settings_page import category_catalog, variable_store
    from exact_online_settings_page.item_groups import item_groups

    _, raw = variable_store.read_variable(session)
    settings = variable_store.settings_view(raw)["settings"]
    return _no_store(item_groups(category_catalog.item_group_settings(settings), lang_of(request)))


@app.get("/api/schedule-preview")
def get_schedule_preview(
    request: Request,
    user: Annotated[BaseUser, Depends(can_read)],
    schedule: str = "",
    timezone: str = "Europe/Amsterdam",
):
    from exact_online_settings_page.schedule_picker import from_cron
    from exact_online_settings_page.schedule_preview import schedule_preview

    # the picker too: a cron typed under "advanced" that is one of the picker's forms can be shown in office words
    preview = schedule_preview(schedule or None, timezone, lang_of(request))
    return _no_store({**preview, "picker": from_cron(schedule or None).as_dict()})


@app.get("/api/schedule-picker")
def get_schedule_picker(
    request: Request, user: Annotated[BaseUser, Depends(can_read)], timezone: str = "Europe/Amsterdam"
):
    """The picker's choice (mode, every, unit, start, end, at, weekdays_only, cron) as the cron the page stores in
    `schedule`, with its next runs; 422 with the label key of what is wrong (the page says it in its language)."""
    from exact_online_settings_page import schedule_picker
    from exact_online_settings_page.schedule_preview import schedule_preview

    try:
        picker = schedule_picker.from_query(dict(request.query_params))
        cron = schedule_picker.to_cron(picker)
    except schedule_picker.PickerError as exc:
        return _no_store({"next": [], "errors": [{"path": "schedule", "key": exc.key, "message": str(exc)}]}, 422)
    return _no_store(
        {**schedule_preview(cron, timezone, lang_of(request)), "schedule": cron, "picker": picker.as_dict()}
    )


@app.put("/api/settings")
def save(
    request: Request, session: SessionDep, user: Annotated[BaseUser, Depends(editor)], body: Annotated[dict, Body()]
):
    """`{"settings": {...}, "version": "<from the page state>"}` → 200 {version}, 422 {errors}, 409 stale; over a
    stored Variable the page cannot read (not JSON, too large) only with `"replace": true` (else 409)."""
    from exact_online_settings_page import variable_store

    lang = lang_of(request)
    try:
        result = variable_store.save_settings(
            session, body.get("settings"), str(body.get("version", "")), replace=body.get("replace") is True, lang=lang
        )
    except variable_store.SaveRefused as exc:
        session.rollback()
        return _no_store({"detail": exc.detail}, exc.status)
    log.info("settings page: %s saved %s", user.get_name(), "exact_online_import_settings")
    from exact_online_settings_page.schedule_picker import from_cron

    return _no_store(
        {
            **result,
            "message": label("saved", lang),
            "schedule_picker": from_cron(result["settings"]["schedule"]).as_dict(),
        }
    )


@app.post("/api/categories/{name}/sync")
def sync(name: str, request: Request, session: SessionDep, user: UserDep, body: Annotated[dict | None, Body()] = None):
    """Start a manual import of one category now (`{"full_refresh": true}` for a full refresh)."""
    return start_sync(name, request, session, user, body)


def start_sync(name: str, request: Request, session, user, body: dict | None, company: str | None = None):
    """A manual import of one category now, of one company's if `company` (the run's conf says it): the page's sync
    icon for the first company and the companies' routes (company_routes.py) alike."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.common.dagbag import create_dag_bag

    from exact_online_settings_page import airflow_runs

    lang = lang_of(request)
    category = _category(name, lang)
    # The same check as Airflow's own "trigger DAG" endpoint, for this category's DAG.
    _security().requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=category.dag_id)(
        request, user
    )
    same_origin_json(request)
    full_refresh = bool((body or {}).get("full_refresh"))
    try:
        run = airflow_runs.trigger_sync(
            session,
            _dag_bag(create_dag_bag),
            category,
            full_refresh=full_refresh,
            user_name=user.get_name(),
            ui_base=_ui_base(request),
            lang=lang,
            company=company,
        )
    except airflow_runs.TriggerRefused as exc:
        session.rollback()
        return _no_store({"detail": exc.message, "run": exc.run}, exc.status)
    log.info(
        "settings page: %s started %s%s (full_refresh=%s)",
        user.get_name(),
        category.dag_id,
        f" for company {company}" if company else "",
        full_refresh,
    )
    return _no_store({"run": run, "message": label("sync_started", lang, title=category_title(category, lang))}, 201)


_DAG_BAG: list[CachedDBDagBag] = []


def _dag_bag(factory: Callable[[], CachedDBDagBag]) -> CachedDBDagBag:
    if not _DAG_BAG:
        _DAG_BAG.append(factory())
    return _DAG_BAG[0]


# ---- the Exact Online connection (#20) -------------------------------------------------------------------------------
def _may_edit_connection(user: BaseUser) -> bool:
    """Connecting the company changes the connection `exact_online_default`: the auth manager's right to edit it."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    from exact_online_settings_page.secret_scrub import EXACT_CONN_ID

    return bool(
        get_auth_manager().is_authorized_connection(
            method="PUT", details=ConnectionDetails(conn_id=EXACT_CONN_ID), user=user
        )
    )


def connection_reader(request: Request, user: UserDep) -> BaseUser:
    """The section is for those who may edit the connection: others do not see who connected it."""
    if not _may_edit_connection(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, label("may_not_connect", lang_of(request)))
    return user


def connection_editor(request: Request, user: Annotated[BaseUser, Depends(connection_reader)]) -> BaseUser:
    """May edit the connection, and a same-origin JSON request (as Save)."""
    same_origin_json(request)
    return user


ConnectionEditor = Annotated[BaseUser, Depends(connection_editor)]


def _redirect_uri(request: Request) -> str:
    from airflow.configuration import conf

    from exact_online_settings_page.exact_connect import redirect_uri

    origin = f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"
    prefix = request.scope.get("root_path", "").rstrip("/") or URL_PREFIX
    return redirect_uri(conf.get("api", "base_url", fallback=None), origin, prefix)


def _refused(exc, request: Request) -> JSONResponse:
    return _no_store({"detail": exc.text(lang_of(request))}, exc.status)


@app.get("/api/connection")
def connection_status(request: Request, user: Annotated[BaseUser, Depends(connection_reader)]):
    """Connected or not, as whom, which division, since when, the refresh token's life; this user's attempt in
    progress (the divisions to pick from) or its outcome; the redirect URI to register in Exact's App Centre."""
    from exact_online_settings_page import exact_connect

    lang = lang_of(request)
    attempt = exact_connect.latest_attempt(user.get_name())
    payload = {
        **exact_connect.status(lang=lang),
        "redirect_uri": _redirect_uri(request),
        "attempt": None
        if attempt is None
        else {
            "outcome": attempt.outcome,
            "message": attempt.message(lang),
            "connected_user": attempt.connected_user,
            "divisions": attempt.divisions if attempt.outcome == "picking" else None,
        },
    }
    return _no_store(payload)


@app.post("/api/connect")
def connect_start(request: Request, user: ConnectionEditor):
    """A new connect attempt (its state kept server-side for this user, 10 minutes, single use) → the authorize
    URL; the page sends the top window there (Exact's page may not be framed)."""
    from exact_online_settings_page import exact_connect

    try:
        url = exact_connect.start(user.get_name(), _redirect_uri(request), lang_of(request))
    except exact_connect.ConnectRefused as exc:
        return _refused(exc, request)
    return _no_store({"authorize_url": url, "redirect_uri": _redirect_uri(request)})


@app.get("/oauth/callback", include_in_schema=False)
async def connect_callback(request: Request, state: str = "", code: str = "", error: str = ""):
    """Where Exact sends the browser back (top window): check the attempt, exchange the code, then back to the page
    in the Airflow UI, which shows the division picker or what went wrong."""
    from fastapi.concurrency import run_in_threadpool

    from exact_online_settings_page import exact_connect

    # No script of the page runs here: the language of the page that started the attempt, else the browser's.
    lang = await run_in_threadpool(exact_connect.attempt_language, state) or lang_of(request)
    try:
        user = await current_user(request)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            # Not on through the login page: its `next` would carry the code and the state into the login's own
            # requests and their access-log lines. The code lives 3 minutes anyway: connect again after logging in.
            return _callback_page(label("callback_login_expired", lang), lang, 401)
        return _callback_page(str(exc.detail), lang, exc.status_code)
    if not _may_edit_connection(user):
        return _callback_page(label("may_not_connect", lang), lang, status.HTTP_403_FORBIDDEN)
    if len(request.url.query) > exact_connect.MAX_ADDRESS_BYTES:
        return _callback_page(label("callback_too_long", lang), lang, 400)
    try:
        # The address as Exact sent it (the query string), parsed by the same code as a pasted one.
        await run_in_threadpool(
            exact_connect.complete, "?" + request.url.query, state, user.get_name(), _redirect_uri(request)
        )
    except exact_connect.ConnectRefused as exc:
        return _callback_page(exc.text(lang), lang, exc.status)
    return RedirectResponse(f"{_ui_base(request)}plugin/exact-online-imports", status_code=303)


def _callback_page(message: str, lang: str, status_code: int) -> HTMLResponse:
    from html import escape

    back = escape(label("back_to_page", lang))
    body = (
        f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><p>{escape(message)}</p>"
        f"<p><a href='/plugin/exact-online-imports' target='_top'>{back}</a></p></html>"
    )
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


@app.post("/api/connect/paste")
def connect_paste(user: ConnectionEditor, request: Request, body: Annotated[dict, Body()]):
    """The fallback when the redirect cannot reach this Airflow: the address the browser was sent to, pasted."""
    from exact_online_settings_page import exact_connect

    address = body.get("address")
    try:
        if not isinstance(address, str) or not address.strip():
            raise exact_connect.ConnectRefused("paste_whole_address")
        state = exact_connect.state_of_paste(address)
        outcome = exact_connect.complete(address, state, user.get_name(), _redirect_uri(request))
    except exact_connect.ConnectRefused as exc:
        return _refused(exc, request)
    attempt = exact_connect.latest_attempt(user.get_name())
    return _no_store({"outcome": outcome, "message": attempt.message(lang_of(request)) if attempt else None})


@app.post("/api/connect/division")
def connect_division(request: Request, session: SessionDep, user: ConnectionEditor, body: Annotated[dict, Body()]):
    """The division picked: the chain moves there and the connection's extra gets it (no token in the extra)."""
    from exact_online_settings_page import exact_connect

    lang = lang_of(request)
    division = body.get("division")
    if isinstance(division, bool) or not isinstance(division, int) or not 0 < division <= exact_connect.MAX_DIVISION:
        return _no_store({"detail": label("division_not_a_code", lang)}, 422)
    try:
        picked = exact_connect.pick(user.get_name(), division, session)
    except exact_connect.ConnectRefused as exc:
        session.rollback()
        return _refused(exc, request)
    said = label("connected_to_division", lang, division=str(division), description=picked["description"])
    return _no_store({**picked, "message": said})


@app.post("/api/disconnect")
def disconnect(request: Request, session: SessionDep, user: ConnectionEditor, body: Annotated[dict, Body()]):
    """`{"confirm": true}`: discard the stored chain and clear the division; the imports stop until a new connect."""
    from exact_online_settings_page import exact_connect

    lang = lang_of(request)
    if body.get("confirm") is not True:
        return _no_store({"detail": label("disconnect_needs_confirm", lang)}, 422)
    try:
        exact_connect.disconnect(session, user.get_name())
    except exact_connect.ConnectRefused as exc:
        session.rollback()
        return _refused(exc, request)
    return _no_store({"message": label("disconnected", lang)})


# ---- Exact webhooks (#22): the section's routes live in webhook_section.py -------------------------------------------
def _webhook_base(request: Request) -> tuple[str | None, str]:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback=None), f"{request.url.scheme}://{request.headers.get('host') or ''}"


def _register_webhook_section() -> None:
    from exact_online_settings_page import webhook_section

    webhook_section.register(app, can_read, connection_editor, _no_store, _webhook_base)


_register_webhook_section()


# ---- several companies (#21): company_routes.py --------------------------------------------------------------------
from exact_online_settings_page.company_routes import router as _company_router  # noqa: E402

app.include_router(_company_router)
