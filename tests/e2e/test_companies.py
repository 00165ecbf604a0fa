"""Several companies in one deployment (#21), through the real DAGs (dag.test()) and the sandbox.

A database and a settings Variable written by the one-company version are company `default` as they are: adding
companies to the Variable neither re-imports nor rewrites what company 1 has.
"""

from __future__ import annotations

import pytest

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
