"""No Docker engine runs here, so the compose file is checked for structure and agreement with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_official_services_plus_target_and_sandbox():
    services = COMPOSE["services"]
    assert {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-init",
        "outsmart-postgres",
        "exact-sandbox",
    } <= set(services)
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
    ):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["outsmart-postgres"]["condition"] == "service_healthy"


def test_common_environment_matches_airflow_3():
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in env  # without it workers fail "Signature verification failed"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    # the settings decide what runs; a paused DAG would leave triggered runs queued
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
    assert not [k for k in env if k.startswith("EXACT_IMPORT_")], "schedule and retries come from the Variable"
    assert env["PYTHONPATH"] == "/opt/airflow:/opt/airflow/plugins"
    mounts = {v.rsplit(":", 1)[1] for v in COMPOSE["services"]["airflow-worker"]["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= mounts


def test_image_matches_pinned_airflow():
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{pinned}" in (ROOT / "Dockerfile").read_text()


def test_init_creates_the_connections_variable_and_pool_the_code_uses():
    import importlib.util

    from include.outsmart_import.settings import VARIABLE_NAME, parse_settings

    spec = importlib.util.spec_from_file_location("dagfile", ROOT / "dags" / "exact_online_import.py")
    dagfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dagfile)
    init = "\n".join(COMPOSE["services"]["airflow-init"]["command"])
    assert f"airflow pools set {dagfile.EXACT_POOL} 1" in init
    assert f"airflow variables set {VARIABLE_NAME}" in init
    for conn_id in (dagfile.EXACT_CONN_ID, dagfile.TARGET_CONN_ID):
        assert f"airflow connections add {conn_id}" in init
    exact = json.loads(re.search(r"connections add exact_online_default \\\s*--conn-json '([^']+)'", init).group(1))
    assert exact["host"] == "http://exact-sandbox:8765" and isinstance(exact["extra"]["division"], int)
    target = json.loads(re.search(r"connections add outsmart_postgres \\\s*--conn-json '([^']+)'", init).group(1))
    db = COMPOSE["services"]["outsmart-postgres"]["environment"]
    assert (target["host"], target["login"], target["password"], target["schema"]) == (
        "outsmart-postgres",
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        db["POSTGRES_DB"],
    )
    settings_file = re.search(r"cat /opt/airflow/(\S+?)\)", init).group(1)
    parse_settings((ROOT / settings_file).read_text())  # the Variable it loads is valid


def test_sandbox_service_runs_the_sandbox_module():
    sandbox = COMPOSE["services"]["exact-sandbox"]
    assert sandbox["entrypoint"][:3] == ["python", "-m", "include.exact_sandbox"]
    assert "8765:8765" in sandbox["ports"]


def test_exact_companies_adds_companies_with_their_own_databases_and_divisions(monkeypatch):
    """EXACT_COMPANIES=3 (#21): the sandbox serves three divisions; airflow-init adds companies 2 and 3 before it
    would create the Variable itself."""
    from include.airflow_stack import compose_companies
    from include.outsmart_import.companies import companies_of
    from include.outsmart_import.settings import parse_settings

    init = "\n".join(COMPOSE["services"]["airflow-init"]["command"])
    assert init.index("include.airflow_stack.compose_companies") < init.index("airflow variables set")
    assert COMPOSE["services"]["exact-sandbox"]["command"] == ["--divisions", "${EXACT_COMPANIES:-1}"]
    target = {"host": "outsmart-postgres", "port": 5432, "login": "outsmart", "password": "outsmart", "schema": "x"}
    made = compose_companies.spec(target, (ROOT / "include/demo/settings_standard.json").read_text(), 3)
    assert [c["conn_id"] for c in made["connections"]] == ["outsmart_company2", "outsmart_company3"]
    assert made["connections"][1]["schema"] == "outsmart_company3" and made["pool"]["slots"] == 3
    companies = companies_of(parse_settings(made["variable"]["value"]))
    assert [(c.division, c.target_conn_id) for c in companies[1:]] == [
        (3_000_002, "outsmart_company2"),
        (3_000_003, "outsmart_company3"),
    ]
    monkeypatch.setenv("EXACT_COMPANIES", "0")
    with pytest.raises(SystemExit, match="from 1 to 100"):
        compose_companies.companies_wanted()
