"""Several companies on the settings page (#21), inside Airflow's real api-server app against a real sandbox and a
real Postgres server: adding a company through an existing consent (its divisions listed from Exact) and a new
database made for it; its own Save that leaves every other company as stored (and a stale page refused); pause,
removal (its database and connections stay), its sync; a new consent on a connection of its own, which never takes
over another connection's token chain; errors at their fields, limits, and who may do what.

The sandbox's consent lists its division and a practice division it does not serve: a company is added for the
practice division here (listing and adding need no import); importing it waits for the sandbox to serve it.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
import requests

from include.outsmart_import.target_db import conninfo_from_airflow_json
from tests.plugins.exact_online.test_oauth import browser_consent
from tests.plugins.exact_online_settings_page.test_connect_page import (
    DIV,
    PRACTICE,
    _set_connection,
    come_back,
    connection,
    later_hook,
)
from tests.plugins.exact_online_settings_page.test_settings_page_api import (
    CLIENT_SECRET,
    PAGE,
    PREFIX,
    SECRET_PASSWORD,
    auth,
    set_variable,
    stored,
)


# ---- helpers ------------------------------------------------------------------------------------------------------
def get(client, path, role="admin"):
    return client.get(PREFIX + path, headers=auth(role))


def send(client, method, path, body, role="admin"):
    return client.request(method, PREFIX + path, json=body, headers={**auth(role), **PAGE})


def ok(r, code=200) -> dict:
    assert r.status_code == code, r.text
    return r.json()


def variable() -> dict:
    return json.loads(stored() or "{}")


@pytest.fixture
def key():
    """A fresh company key (its database lives on the session's Postgres server), and its connections cleaned up."""
    k = "co-" + uuid.uuid4().hex[:8]
    yield k
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        s.query(Connection).filter(Connection.conn_id.in_([f"outsmart_{k}", f"exact_online_{k}"])).delete()


def database_exists(target_db, name: str) -> bool:
    with psycopg.connect(conninfo_from_airflow_json(target_db.airflow_json)) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def add(client, key, division=PRACTICE, target=None, conn="exact_online_default", role="admin", **more):
    body = {
        "key": key,
        "title": more.pop("title", "Acme Installatietechniek"),
        "exact_conn_id": conn,
        "division": division,
        "target_conn_id": target or f"outsmart_{key}",
        "settings": more.pop("settings", {"categories": {"relations": {"enabled": True}}}),
        **more,
    }
    return send(client, "POST", "/api/companies", body, role)


def company_state(client, key, role="admin") -> dict:
    return ok(get(client, f"/api/companies/{key}/state", role))


# ---- adding, Save, pause, removal ---------------------------------------------------------------------------------
def test_add_a_company_through_the_first_consent_into_a_new_database_then_save_pause_and_remove(
    client, sandbox, target_db, key, caplog
):
    listed = ok(get(client, "/api/companies"))
    assert [c["key"] for c in listed["companies"]] == ["default"] and listed["can_add"] is True
    conns = ok(get(client, "/api/exact-connections"))["connections"]
    assert [c["conn_id"] for c in conns] == ["exact_online_default"] and conns[0]["division"] == DIV
    divisions = ok(get(client, "/api/exact-connections/exact_online_default/divisions"))
    assert [(d["code"], d["company"]) for d in divisions["divisions"]] == [(DIV, "default"), (PRACTICE, None)]
    assert divisions["divisions"][1]["description"] == "Oefenadministratie"

    made = ok(send(client, "POST", "/api/targets", {"key": key}), 201)
    assert made == {
        "conn_id": f"outsmart_{key}",
        "database": f"outsmart_{key}",
        "created_database": True,
        "message": f"Connection outsmart_{key} to the database outsmart_{key} (made).",
    }
    assert database_exists(target_db, f"outsmart_{key}")
    again = send(client, "POST", "/api/targets", {"key": key})
    assert again.status_code == 409 and "exists already: pick it" in again.json()["detail"]
    targets = ok(get(client, "/api/targets"))["connections"]
    assert {"conn_id": f"outsmart_{key}", "database": f"outsmart_{key}", "company": None} in targets

    taken = ok(add(client, key, division=DIV), 422)["detail"]["errors"]
    assert taken == [{"path": "division", "message": f"division {DIV} is the first company's"}]
    ok(add(client, key), 201)
    saved = variable()["companies"][key]
    assert (saved["title"], saved["exact_conn_id"], saved["division"], saved["target_conn_id"]) == (
        "Acme Installatietechniek",
        "exact_online_default",
        PRACTICE,
        f"outsmart_{key}",
    )
    first = variable()["categories"]
    listed = ok(get(client, "/api/companies"))["companies"]
    assert [(c["key"], c["title"]) for c in listed] == [("default", "Company 1"), (key, "Acme Installatietechniek")]

    # the company's own page: its choices, its database's (empty) import log
    shown = company_state(client, key)
    assert shown["company"]["target_conn_id"] == f"outsmart_{key}" and shown["company"]["division"] == PRACTICE
    assert shown["settings"]["categories"]["relations"]["enabled"] is True and "companies" not in shown["settings"]
    assert shown["imports"] == {"available": True, "by_category": {}, "message": "No import has run yet."}

    # Save of this company changes only its block; a Save of another company meanwhile does not make it stale
    mine = shown["version"]
    theirs = company_state(client, "default")
    changed = {**theirs["settings"], "schedule": "0 6 * * *"}
    ok(send(client, "PUT", "/api/companies/default", {"settings": changed, "version": theirs["version"]}))
    mine_changed = {
        **shown["settings"],
        "categories": {**shown["settings"]["categories"], "materials": {"enabled": True}},
    }
    r = ok(send(client, "PUT", f"/api/companies/{key}", {"settings": mine_changed, "version": mine}))
    after = variable()
    assert after["companies"][key]["categories"]["materials"]["enabled"] is True
    assert after["schedule"] == "0 6 * * *" and after["categories"]["materials"] == first["materials"]
    stale = send(client, "PUT", f"/api/companies/{key}", {"settings": shown["settings"], "version": mine})
    assert stale.status_code == 409 and "changed by someone else" in stale.json()["detail"]["message"]
    assert variable() == after

    # pause: the company's imports stop, its sync is refused; resume
    paused = ok(send(client, "POST", f"/api/companies/{key}/pause", {"paused": True, "version": r["version"]}))
    assert variable()["companies"][key]["paused"] is True and variable()["paused"] is False
    refused = send(client, "POST", f"/api/companies/{key}/categories/relations/sync", {})
    assert refused.status_code == 409 and "is paused: resume it first" in refused.json()["detail"]

    # removal: confirmed, and its database and connections stay
    assert send(client, "DELETE", f"/api/companies/{key}", {"version": paused["version"]}).status_code == 422
    gone = ok(send(client, "DELETE", f"/api/companies/{key}", {"confirm": True, "version": paused["version"]}))
    assert "its imports stop" in gone["message"] and f"connection outsmart_{key}" in gone["message"]
    assert key not in variable()["companies"] and variable()["schedule"] == "0 6 * * *"
    assert database_exists(target_db, f"outsmart_{key}")
    assert f"outsmart_{key}" in {c["conn_id"] for c in ok(get(client, "/api/targets"))["connections"]}
    assert get(client, f"/api/companies/{key}/state").status_code == 404
    # a database left by a removed company is used again, with what it holds
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        s.query(Connection).filter(Connection.conn_id == f"outsmart_{key}").delete()
    assert ok(send(client, "POST", "/api/targets", {"key": key}), 201)["created_database"] is False

    answers = json.dumps([listed, shown, made, divisions, targets, gone, conns])
    c = sandbox.state.config
    for secret in (SECRET_PASSWORD, CLIENT_SECRET, c.client_secret, c.initial_refresh_token):
        assert secret not in answers and secret not in caplog.text


def test_sync_starts_the_companys_own_import_and_its_status_shows_that_run(client, sandbox, target_db, key):
    ok(send(client, "POST", "/api/targets", {"key": key}), 201)
    ok(add(client, key), 201)
    r = ok(send(client, "POST", f"/api/companies/{key}/categories/relations/sync", {}), 201)
    assert r["run"]["company"] == key and r["run"]["state"] == "queued"
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as s:
        (run,) = s.query(DagRun).filter(DagRun.dag_id == "exact_online_import_relations").all()
        assert run.conf == {"refresh_streams": True, "company": key}
    second = send(client, "POST", "/api/companies/default/categories/relations/sync", {})
    assert second.status_code == 409 and "already queued" in second.json()["detail"]
    status = ok(get(client, f"/api/companies/{key}/status"))
    assert status["runs"]["relations"]["active"] is True
    assert status["runs"]["relations"]["latest_run"]["run_id"] == r["run"]["run_id"]
    # the first company's status does not show another company's run as its own
    assert ok(get(client, "/api/companies/default/status"))["runs"]["relations"]["latest_run"] is None
    off = send(client, "POST", f"/api/companies/{key}/categories/materials/sync", {})
    assert off.status_code == 409 and "switched off" in off.json()["detail"]
    assert send(client, "POST", "/api/companies/nobody/categories/relations/sync", {}).status_code in (404, 409)


# ---- a company's own consent --------------------------------------------------------------------------------------
def test_a_new_consent_gets_a_connection_of_its_own_with_the_first_companys_app(client, sandbox, target_db, key):
    """The first company is not connected (no division): the new consent's chain takes the user's current division
    as its key, and its connection is known by it; its divisions are then listed like any consent's."""
    _set_connection(extra=json.dumps({"backoff_seconds": 0.05}))
    r = ok(send(client, "POST", "/api/exact-connections", {"key": key}))
    assert r["conn_id"] == f"exact_online_{key}" and r["authorize_url"].startswith(sandbox.url + "/api/oauth2/auth?")
    assert come_back(client, browser_consent(r["authorize_url"])).status_code == 303
    attempt = ok(get(client, "/api/exact-connections"))["attempt"]
    assert attempt["conn_id"] == f"exact_online_{key}" and attempt["outcome"] == "connected", attempt
    assert attempt["connected_user"] == {"full_name": "Piet de Vries", "user_name": "piet@example.nl"}
    assert connection(client)["attempt"] is None  # not the first company's connection section's business
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        made = s.query(Connection).filter(Connection.conn_id == f"exact_online_{key}").one()
        c = sandbox.state.config
        assert (made.login, made.password, made.host) == (c.client_id, c.client_secret, sandbox.url)
        assert made.extra_dejson["division"] == DIV and "refresh_token" not in made.extra_dejson
    listed = ok(get(client, f"/api/exact-connections/exact_online_{key}/divisions"))["divisions"]
    assert [d["code"] for d in listed] == [DIV, PRACTICE]
    ok(send(client, "POST", "/api/targets", {"key": key}), 201)
    ok(add(client, key, division=DIV, conn=f"exact_online_{key}"), 201)
    again = send(client, "POST", "/api/exact-connections", {"key": key})
    assert again.status_code == 409 and "has a consent" in again.json()["detail"]
    # the same division through another connection of the same app: the same administration twice, refused
    with create_session() as s:
        twin = Connection(conn_id=f"outsmart_{key}x", conn_type="postgres", host="h", schema="d")
        s.add(twin)
        s.add(
            Connection(
                conn_id=f"exact_online_{key}x",
                conn_type="http",
                host=sandbox.url,
                login=c.client_id,
                password=c.client_secret,
                extra=json.dumps({"division": DIV}),
            )
        )
    try:
        twice = ok(add(client, key + "x", division=DIV, conn=f"exact_online_{key}x"), 422)["detail"]["errors"]
        assert twice == [{"path": "division", "message": f"division {DIV} is imported by {key} already"}]
    finally:
        with create_session() as s:
            s.query(Connection).filter(Connection.conn_id.in_([f"outsmart_{key}x", f"exact_online_{key}x"])).delete()


def test_a_new_consent_never_takes_over_another_connections_token_chain(client, sandbox, target_db, key):
    """The same Exact user consents again: their current division is how the first company's consent is known, so
    the new chain would end that one. Refused; the first company's chain is as it was."""
    ok(get(client, "/api/exact-connections/exact_online_default/divisions"))  # the first chain, stored
    from exact_online_settings_page import exact_connect

    chain_key = f"{sandbox.state.config.client_id}/{DIV}"
    before = exact_connect.hook().token_store.peek(chain_key)
    r = ok(send(client, "POST", "/api/exact-connections", {"key": key}))
    come_back(client, browser_consent(r["authorize_url"], user="sandbox@example.nl", password="sandbox"))
    attempt = ok(get(client, "/api/exact-connections"))["attempt"]
    assert attempt["outcome"] == "failed" and "already how another connection's consent is known" in attempt["message"]
    after = exact_connect.hook().token_store.peek(chain_key)
    assert after.refresh_token == before.refresh_token and after.access_token == before.access_token
    assert "division" not in stored_extra_of(f"exact_online_{key}")
    requests.post(sandbox.url + "/_sandbox/age-oauth", json={"seconds": 600}, timeout=5)
    assert later_hook(600).me()["FullName"]  # the first company still reaches Exact on its chain, refreshing it


def stored_extra_of(conn_id: str) -> dict:
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        return s.query(Connection).filter(Connection.conn_id == conn_id).one().extra_dejson


# ---- bad input, limits, rights ------------------------------------------------------------------------------------
def test_bad_input_is_refused_at_its_field_and_nothing_is_written(client, sandbox, target_db, key, monkeypatch):
    ok(send(client, "POST", "/api/targets", {"key": key}), 201)
    before = stored()
    cases = [
        (dict(key="Acme BV"), "key", "lower-case letters"),
        (dict(key="default"), "key", "the first company's key"),
        (dict(key=key, title=""), "title", "must not be empty"),
        (dict(key=key, title="x" * 101), "title", "longer than 100"),
        (dict(key=key, division=999), "division", "does not reach division 999"),
        (dict(key=key, division="3000002"), "division", ""),
        (dict(key=key, target="outsmart_postgres"), "target_conn_id", "first company's database"),
        (dict(key=key, target="no_such_conn"), "target_conn_id", "no Postgres connection"),
        (dict(key=key, conn="no_such_exact"), "exact_conn_id", "no Exact Online connection"),
        (dict(key=key, settings={"schedule": "every hour"}), "schedule", "not a cron expression"),
    ]
    for args, path, words in cases:
        r = add(client, **args)
        assert r.status_code == 422, (args, r.text)
        errors = r.json()["detail"]["errors"]
        assert any(e["path"] == path and words in e["message"] for e in errors), (args, errors)
    assert stored() == before
    # in the page's language (Accept-Language, as the page sends it)
    body = {"key": key, "title": "", "exact_conn_id": "exact_online_default", "division": PRACTICE}
    dutch = client.post(
        PREFIX + "/api/companies", json=body, headers={**auth("admin"), **PAGE, "Accept-Language": "nl"}
    )
    assert dutch.status_code == 422 and dutch.json()["detail"]["message"].startswith("Niets opgeslagen")
    ok(add(client, key), 201)
    assert add(client, key, division=DIV + 7).json()["detail"]["errors"][0]["path"] == "key"  # taken
    shown = company_state(client, key)
    groups = {"enabled": True, "item_groups": [f"G{i}" for i in range(1001)]}
    too_many = {**shown["settings"], "categories": {**shown["settings"]["categories"], "materials": groups}}
    r = send(client, "PUT", f"/api/companies/{key}", {"settings": too_many, "version": shown["version"]})
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0] == {
        "path": "categories.materials.item_groups",
        "message": "has 1,001 entries; at most 1,000 are allowed",
    }
    # the Variable's size: refused with what to do, nothing written
    from exact_online_settings_page import company_settings

    monkeypatch.setattr(company_settings, "MAX_VARIABLE_BYTES", len(stored().encode()) + 10)
    fewer = {
        **shown["settings"],
        "categories": {**shown["settings"]["categories"], "materials": {"item_groups": ["A" * 60] * 1}},
    }
    before = stored()
    r = send(client, "PUT", f"/api/companies/{key}", {"settings": fewer, "version": shown["version"]})
    assert r.status_code == 413 and "more than the" in r.json()["detail"] and "remove companies" in r.json()["detail"]
    assert stored() == before
    assert send(client, "PUT", f"/api/companies/{key}", {"settings": "x" * 300_000, "version": "v"}).status_code == 413
    assert get(client, "/api/companies/nobody/state").status_code == 404
    assert send(client, "DELETE", "/api/companies/default", {"confirm": True, "version": "v"}).status_code == 400


def test_a_save_of_the_whole_page_keeps_the_companies_as_stored(client, sandbox, target_db, key):
    """The first company's Save (PUT /api/settings) cannot drop or undo another company: it keeps them as stored."""
    ok(send(client, "POST", "/api/targets", {"key": key}), 201)
    ok(add(client, key), 201)
    page = ok(get(client, "/api/state"))
    settings = {**page["settings"], "companies": {}, "schedule": "@daily"}
    ok(send(client, "PUT", "/api/settings", {"settings": settings, "version": page["version"]}))
    assert variable()["schedule"] == "@daily" and key in variable()["companies"]


def test_viewers_see_read_only_and_only_editors_add_or_remove(client, sandbox, target_db, key):
    set_variable(
        json.dumps({"companies": {key: {"title": "Beta", "division": PRACTICE, "target_conn_id": f"outsmart_{key}"}}})
    )
    seen = ok(get(client, "/api/companies", role="viewer"))
    assert [c["key"] for c in seen["companies"]] == ["default", key] and seen["can_add"] is False
    assert seen["can_edit"] is False and company_state(client, key, role="viewer")["user"]["can_edit"] is False
    before = stored()
    version = company_state(client, key)["version"]
    for role in ("viewer", "user"):  # `user` may trigger DAGs, not edit Variables or connections
        for method, path, body in (
            ("PUT", f"/api/companies/{key}", {"settings": {}, "version": version}),
            ("POST", f"/api/companies/{key}/pause", {"paused": True, "version": version}),
            ("DELETE", f"/api/companies/{key}", {"confirm": True, "version": version}),
            ("POST", "/api/companies", {"key": "x"}),
            ("POST", "/api/targets", {"key": "x"}),
            ("POST", "/api/exact-connections", {"key": "x"}),
        ):
            assert send(client, method, path, body, role).status_code == 403, (role, method, path)
        assert get(client, "/api/exact-connections", role).status_code == 403
        assert get(client, "/api/targets", role).status_code == 403
    assert send(client, "POST", f"/api/companies/{key}/categories/relations/sync", {}, "viewer").status_code == 403
    assert stored() == before
    # a write needs the page's header and this origin, as Save
    r = client.post(
        PREFIX + f"/api/companies/{key}/pause", json={"paused": True, "version": version}, headers=auth("admin")
    )
    assert r.status_code == 403 and stored() == before


def test_a_stored_variable_that_does_not_validate_changes_no_company(client, key):
    set_variable(json.dumps({"companies": {key: {"title": "Beta", "division": 0, "target_conn_id": "x"}}}))
    listed = ok(get(client, "/api/companies"))
    assert listed["valid"] is False and [c["key"] for c in listed["companies"]] == ["default"]
    r = send(client, "PUT", "/api/companies/default", {"settings": {}, "version": "v"})
    assert r.status_code == 409 and "do not validate" in r.json()["detail"]
    page = ok(get(client, "/api/state"))
    problem = next(p for p in page["stored"]["problems"] if p["path"].startswith("companies"))
    assert "Save keeps the companies as stored" in problem["message"]
