"""`make airflow`'s environment: one for every component, never borrowed from another Airflow in the shell."""

from __future__ import annotations

from pathlib import Path

from include.airflow_stack import StackOptions, airflow_env

SECRET = {"jwt_secret": "j" * 64, "fernet_key": "f", "passwords": {"admin": "pw", "viewer": "pw2"}}


def test_the_shells_airflow_settings_connections_and_harness_overrides_do_not_leak_in(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", "/somebody/elses/airflow")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////tmp/other.db")
    monkeypatch.setenv("AIRFLOW_CONN_EXACT_ONLINE_DEFAULT", '{"conn_type": "http"}')
    monkeypatch.setenv("AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS", "{}")
    monkeypatch.setenv("EXACT_IMPORT_RETRIES", "0")
    options = StackOptions(state_dir=tmp_path, port=8099, env={"AIRFLOW__CORE__PARALLELISM": "8"})
    env = airflow_env(options, "postgresql+psycopg2://postgres@/airflow?host=/tmp/x&port=5432", SECRET)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/airflow?host=/tmp/x&port=5432")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8099/execution/"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "8"  # --env wins
    assert not {
        "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT",
        "AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS",
        "EXACT_IMPORT_RETRIES",
    } & set(env)
    assert (
        Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text() == '{"admin": "pw", "viewer": "pw2"}'
    )
    assert oct(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).stat().st_mode)[-3:] == "600"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,viewer:viewer"
