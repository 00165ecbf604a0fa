"""Docker Compose's companies (#21): `EXACT_COMPANIES=3 docker compose up` imports three companies, as
`make airflow AIRFLOW_ARGS="--companies 3"` does: companies 2..N each on sandbox division 3000000 + i, with their own
database `outsmart_company<i>` on the outsmart-postgres service and its connection; the settings Variable is created
with them (an existing Variable is left as the users made it, like the rest of airflow-init).

Run by airflow-init before its own `variables set` (which then finds the Variable made): `python -m
include.airflow_stack.compose_companies /opt/airflow/include/demo/settings_standard.json`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from include.demo.companies import MAX_COMPANIES, database_of, with_companies


def companies_wanted() -> int:
    text = os.environ.get("EXACT_COMPANIES", "1").strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= MAX_COMPANIES:
        raise SystemExit(f"EXACT_COMPANIES must be a whole number from 1 to {MAX_COMPANIES}, not {text!r}")
    return int(text)


def create_databases(target: dict, count: int) -> None:
    """The companies' databases on the server of `outsmart_postgres` (its login must be allowed CREATE DATABASE:
    the service's own user is)."""
    import psycopg

    from include.outsmart_import.target_db import conninfo_from_airflow_json

    with psycopg.connect(conninfo_from_airflow_json(target), autocommit=True) as admin:
        have = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
        for i in range(2, count + 1):
            if database_of(i) not in have:
                admin.execute(f"CREATE DATABASE {database_of(i)}")


def spec(target: dict, settings_text: str, count: int) -> dict:
    """What bootstrap() creates where missing: the connections, the Variable with the companies, the pool."""
    connections = [
        {"conn_id": database_of(i), "conn_type": "postgres", **{**target, "schema": database_of(i)}}
        for i in range(2, count + 1)
    ]
    return {
        "connections": connections,
        "variable": {
            "key": "exact_online_import_settings",
            "value": json.dumps(with_companies(json.loads(settings_text), count)),
        },
        "pool": {"name": "exact_api", "slots": max(2, min(count, 8)), "description": "Exact Online API"},
    }


def main(argv: list[str]) -> int:
    count = companies_wanted()
    if count == 1:
        print("EXACT_COMPANIES=1: one company, nothing to add", flush=True)
        return 0
    from airflow.sdk import BaseHook

    from include.airflow_stack.bootstrap import bootstrap

    c = BaseHook.get_connection("outsmart_postgres")
    target = {"host": c.host, "port": c.port, "login": c.login, "password": c.password, "schema": c.schema}
    create_databases(target, count)
    made = bootstrap(spec(target, Path(argv[0]).read_text(), count))
    print(f"{count} companies: created {', '.join(made) if made else 'nothing (all there)'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
