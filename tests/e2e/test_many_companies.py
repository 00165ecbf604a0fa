"""Several companies in one deployment (#21), through the real DAGs (dag.test()) and the sandbox.

A database and a settings Variable written by the one-company version are company `default` as they are: adding
companies to the Variable neither re-imports nor rewrites what company 1 has.
"""

from __future__ import annotations

import pytest
import requests

from tests.helpers.e2e import run_dag, snapshot

pytestmark = pytest.mark.e2e

ONE_COMPANY = {"schedule": None, "categories": {"relations": {"enabled": True, "relation_types": ["customer"]}}}


def test_a_one_company_database_is_company_default_without_a_re_import(dags, sandbox_factory, target_db, settings_var):
    sandbox_factory(size=300)
    settings_var(ONE_COMPANY)  # as the one-company version wrote it
    run_dag(dags, "relations")
    before = snapshot(target_db, "relations", "relation_addresses", "relation_contacts")
    settings_var(
        {
            **ONE_COMPANY,
            "companies": {
                "acme": {"title": "Acme BV", "division": 7, "target_conn_id": "outsmart_acme", "paused": True},
            },
        }
    )
    dr, states = run_dag(dags, "relations")
    assert states["check_settings"] == "success" and states["import_relations[default]"] == "success"
    assert "import_relations[acme]" not in states  # paused: not in the run
    status, derive, fetched, calls = target_db.query(
        "SELECT status, derive, fetched, api_calls FROM outsmart.import_log ORDER BY id DESC LIMIT 1"
    )[0]
    print(f"company default after the upgrade: {status}, derive {derive!r}, fetched {fetched}, {calls} API calls")
    assert status == "success" and not derive.startswith("full") and fetched == 0
    assert snapshot(target_db, "relations", "relation_addresses", "relation_contacts") == before


# ---- three companies: two through one consent, one through a consent of its own ----------------------------------
FIRST = 3_000_001  # SandboxConfig().division
BOB = {"bob@example.nl": {"password": "bob", "divisions": [FIRST + 2], "initial_refresh_token": "bob-refresh-token-0"}}


def _new_database(pg_server, monkeypatch, conn_id: str) -> str:
    """An empty database on the session server, published as connection `conn_id`; its conninfo."""
    import json
    import uuid

    import psycopg

    from include.outsmart_import.target_db import conninfo_from_airflow_json

    db = "c_" + uuid.uuid4().hex[:10]
    with psycopg.connect(conninfo_from_airflow_json(pg_server), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    monkeypatch.setenv("AIRFLOW_CONN_" + conn_id.upper(), json.dumps({**pg_server, "schema": db}))
    return conninfo_from_airflow_json({**pg_server, "schema": db})


def _one_company_import(pg_server, monkeypatch, target_db, division: int, settings: dict) -> dict:
    """The division imported alone, as the one-company version would: the same runner and sandbox into a fresh
    database, on the first consent's chain (kept in the test's database, as the DAGs keep it)."""
    import psycopg

    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import PostgresTokenStore
    from include.outsmart_import.runner import run_category
    from include.outsmart_import.settings import parse_settings

    conninfo = _new_database(pg_server, monkeypatch, f"alone_{division}")
    hook = ExactOnlineHook(division=division, token_store=PostgresTokenStore(target_db.connect))
    assert run_category("relations", parse_settings(settings), hook, lambda: psycopg.connect(conninfo)).status == (
        "success"
    )
    return _tables(conninfo)


def _tables(conninfo: str) -> dict:
    import psycopg

    out = {}
    with psycopg.connect(conninfo) as conn:
        for t in ("relations", "relation_addresses", "relation_contacts"):
            out[t] = conn.execute(f"SELECT * FROM outsmart.{t} ORDER BY exact_id").fetchall()
    return out


def _without_row_times(tables: dict) -> dict:
    """The rows as a user sees them: without the import's own clock columns (when a row was written)."""
    import datetime as dt

    return {t: [tuple(v for v in r if not isinstance(v, dt.datetime)) for r in rows] for t, rows in tables.items()}


def test_three_companies_each_equal_a_one_company_import_and_a_broken_consent_fails_alone(
    dags, sandbox_factory, target_db, settings_var, pg_server, monkeypatch
):
    import json

    server = sandbox_factory(size=120, companies=3, users=BOB)
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXACT_ONLINE_BOB",
        json.dumps(
            {
                "conn_type": "http",
                "host": server.url,
                "login": "sandbox-client",
                "password": "sandbox-secret",
                "extra": {"division": FIRST + 2, "refresh_token": "bob-refresh-token-0", "backoff_seconds": 0.05},
            }
        ),
    )
    acme, bob = (_new_database(pg_server, monkeypatch, c) for c in ("outsmart_acme", "outsmart_bob"))
    company = {"schedule": None, "categories": ONE_COMPANY["categories"]}
    settings = {
        **ONE_COMPANY,
        "companies": {
            "acme": {"title": "Acme", "division": FIRST + 1, "target_conn_id": "outsmart_acme", **company},
            "bob": {
                "title": "Bob",
                "division": FIRST + 2,
                "exact_conn_id": "exact_online_bob",
                "target_conn_id": "outsmart_bob",
                **company,
            },
        },
    }
    settings_var(settings)
    dr, states = run_dag(dags, "relations")
    assert [states[f"import_relations[{k}]"] for k in ("default", "acme", "bob")] == ["success"] * 3
    mine = {"default": _tables(target_db.conninfo), "acme": _tables(acme), "bob": _tables(bob)}
    assert mine["default"]["relations"] != mine["acme"]["relations"]  # two divisions, two sets of data
    for key, division in (("default", FIRST), ("acme", FIRST + 1)):
        alone = _one_company_import(pg_server, monkeypatch, target_db, division, ONE_COMPANY)
        assert _without_row_times(mine[key]) == _without_row_times(alone), key
        print(f"{key}: {len(mine[key]['relations'])} relations, equal to division {division} imported alone")
    # Bob's consent is revoked in Exact: his company fails, the two on the other consent do not.
    requests.post(server.url + "/_sandbox/revoke-consent", json={"user": "bob@example.nl"}, timeout=10)
    # ... and ten minutes have passed: every access token has run out, so each chain is refreshed; Bob's is refused.
    requests.post(server.url + "/_sandbox/age-oauth", json={"seconds": 700}, timeout=10)
    with __import__("psycopg").connect(target_db.conninfo) as conn:  # the chains, as the DAGs keep them
        conn.execute("UPDATE exact_online.oauth_token_chain SET access_expires_at = 0, access_obtained_at = 0")
    dr, states = run_dag(dags, "relations", expect="failed")
    assert [states[f"import_relations[{k}]"] for k in ("default", "acme", "bob")] == ["success", "success", "failed"]
    with __import__("psycopg").connect(bob) as conn:
        status, message = conn.execute(
            "SELECT status, error FROM outsmart.import_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert status == "failed" and "reconnect on the settings page" in message
