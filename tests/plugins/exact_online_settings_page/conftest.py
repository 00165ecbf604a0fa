"""The api-server app and its TestClient, for every test of the settings page's API (test_settings_page_api.py,
test_connect_page.py, test_companies_api.py, test_server_messages_language.py). The app is built once for them all
(package scope): its metadata database, parsed DAGs and api-server app cost seconds each time, and each test's
`client` starts from the same settings Variable, no runs and a fresh OutSmart database anyway."""

from __future__ import annotations

import json

import pytest

from include.outsmart_import.registry import CATEGORIES
from tests.plugins.exact_online_settings_page.test_settings_page_api import (
    CLIENT_SECRET,
    REFRESH_TOKEN,
    SECRET_PASSWORD,
    _clear_runs,
    set_variable,
)


@pytest.fixture(scope="package")
def airflow_app(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("auth")
    (home / "passwords.json").write_text(json.dumps({"admin": "a", "viewer": "v"}))
    for key, value in {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "x" * 64,
        # what `airflow api-server` sets: connections resolve through the metadata DB (and the environment)
        "_AIRFLOW_PROCESS_CONTEXT": "server",
    }.items():
        mp.setenv(key, value)
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from include import local_airflow

    local_airflow.init_db()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(
        dag_folder=str(local_airflow.ROOT / "dags"), bundle_path=local_airflow.ROOT / "dags", bundle_name="dags-folder"
    )
    assert {c.dag_id for c in CATEGORIES.values()} <= set(bag.dags)
    sync_bag_to_db(bag, "dags-folder", None)
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        s.add(
            Connection(
                conn_id="exact_online_default",
                conn_type="http",
                host="http://127.0.0.1:9",
                login="id",
                password=CLIENT_SECRET,
                extra=json.dumps({"division": 1, "refresh_token": REFRESH_TOKEN}),
            )
        )
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    # The api-server's core apps, as `airflow api-server --apps core` serves them: plugins (the page), auth manager,
    # JWT middleware, REST API. Not the Task Execution API, which only task processes call: ~2 s of CPU to build.
    app = create_app(apps="core")
    yield app
    purge_cached_app()
    mp.undo()


@pytest.fixture
def client(airflow_app, target_db, monkeypatch):
    from fastapi.testclient import TestClient

    # the OutSmart connection with a password that must never reach an answer
    monkeypatch.setenv(
        "AIRFLOW_CONN_OUTSMART_POSTGRES", json.dumps({**target_db.airflow_json, "password": SECRET_PASSWORD})
    )
    set_variable(json.dumps({"categories": {"relations": {"enabled": True}, "materials": {"enabled": False}}}))
    _clear_runs()
    with TestClient(airflow_app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def sandbox(sandbox_factory, client, monkeypatch):
    """A sandbox as `exact_online_default` in the metadata database, for the connect flow and the companies (the
    page writes that connection's extra there; the environment's copy would shadow it, so it goes for the test)."""
    from tests.plugins.exact_online.test_oauth import USERS
    from tests.plugins.exact_online_settings_page.test_connect_page import CALLBACK, _set_connection

    server = sandbox_factory(size=5, users=USERS, redirect_uri=CALLBACK)
    c = server.state.config
    monkeypatch.delenv("AIRFLOW_CONN_EXACT_ONLINE_DEFAULT")
    extra = {"division": c.division, "refresh_token": c.initial_refresh_token, "backoff_seconds": 0.05}
    before = _set_connection(host=server.url, login=c.client_id, password=c.client_secret, extra=json.dumps(extra))
    yield server
    _set_connection(**before)
