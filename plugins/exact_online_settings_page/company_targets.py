"""A company's OutSmart database (#21): the Postgres connections a new company may import into, and a new database
for it on the server of `outsmart_postgres`.

Why a database per company: each company's tables, landed copy, watermarks and import log live in it, keyed by the
database rather than by a company column in every statement; removing a company from the settings leaves its
database as it is. A new one is made on the server that already holds company 1's (`outsmart_postgres`), with the
same credentials: `CREATE DATABASE outsmart_<key>` if it is not there yet (a database left by a company removed
earlier is used again, with its data), and the connection `outsmart_<key>` pointing at it.

No password leaves this module: connections are listed by id and database name only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from exact_online_settings_page.labels import label
from exact_online_settings_page.secret_scrub import TARGET_CONN_ID, scrub
from include.outsmart_import.settings import COMPANY_KEY

log = logging.getLogger(__name__)

NEW_TARGET_PREFIX = "outsmart_"
MAX_DB_NAME = 63  # Postgres cuts identifiers at 63 bytes; "outsmart_" + a 40-character key is 49


class TargetRefused(Exception):
    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message, self.status = message, status


def postgres_connections(session, used_by: dict[str, str]) -> list[dict]:
    """The Postgres connections in Admin → Connections (not company 1's), with the company that imports into each
    (`used_by`: conn_id → company key)."""
    from airflow.models import Connection
    from sqlalchemy import select

    rows = session.scalars(
        select(Connection).where(Connection.conn_type == "postgres", Connection.conn_id != TARGET_CONN_ID)
    )
    return [
        {"conn_id": c.conn_id, "database": c.schema or "", "company": used_by.get(c.conn_id)}
        for c in sorted(rows, key=lambda c: c.conn_id)
    ]


def new_target_names(key: Any, lang: str = "en") -> tuple[str, str]:
    """(connection id, database name) of a new company's database."""
    if not isinstance(key, str) or not re.fullmatch(COMPANY_KEY.strip("^$"), key):
        raise TargetRefused(label("target_key_needed", lang), 422)
    return NEW_TARGET_PREFIX + key, NEW_TARGET_PREFIX + key


def _server(lang: str):
    from airflow.models import Connection

    try:
        return Connection.get_connection_from_secrets(TARGET_CONN_ID)
    except Exception as exc:
        raise TargetRefused(
            label("target_server_unreadable", lang, conn_id=TARGET_CONN_ID, error=scrub(str(exc)))
        ) from None


def _create_database(server, database: str, lang: str) -> bool:
    """CREATE DATABASE on the server of `server` unless it exists; True if made now."""
    import psycopg
    from psycopg import sql

    params = {
        "host": server.host,
        "port": server.port or 5432,
        "user": server.login,
        "password": server.password or None,
        "dbname": server.schema or "postgres",
        "connect_timeout": 10,
    }
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v not in (None, "")}, autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                return False
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            return True
    except psycopg.errors.InsufficientPrivilege:
        raise TargetRefused(label("target_no_createdb", lang, conn_id=TARGET_CONN_ID, database=database)) from None
    except psycopg.Error as exc:
        raise TargetRefused(label("target_not_created", lang, database=database, error=scrub(str(exc))), 502) from None


def create_target(session, key: Any, lang: str = "en") -> dict:
    """The database `outsmart_<key>` on company 1's server (made if missing) and the connection `outsmart_<key>`."""
    from airflow.models import Connection
    from sqlalchemy import select

    conn_id, database = new_target_names(key, lang)
    if session.scalar(select(Connection).where(Connection.conn_id == conn_id)) is not None:
        raise TargetRefused(label("target_exists", lang, conn_id=conn_id))
    server = _server(lang)
    made = _create_database(server, database, lang)
    session.add(
        Connection(
            conn_id=conn_id,
            conn_type="postgres",
            description="OutSmart database of a company (made on the settings page)",
            host=server.host,
            port=server.port,
            login=server.login,
            password=server.password,
            schema=database,
            extra=server.extra,
        )
    )
    session.flush()
    log.info("settings page: connection %s to database %s (%s)", conn_id, database, "made" if made else "existed")
    return {"conn_id": conn_id, "database": database, "created_database": made}
