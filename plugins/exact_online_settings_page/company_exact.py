"""A new company's Exact side (#21): which Exact Online connections there are, the divisions a connection's consent
reaches (to pick the company's division from), and a new connection for a new consent.

Why a company may reuse a connection: one Exact user's consent reaches every division of their licence (an
accountant's login reaches many administrations), and all of them share the consent's one rotating token chain
(`ExactOnlineHook.chain_key`). A second consent is needed only for divisions that user cannot open; it gets a
connection of its own, with the app (Base URL, Client ID, Client secret) copied from `exact_online_default`, and is
connected with the same flow as that one (exact_connect.py, for that connection).

Nothing here returns or logs a secret: connections are described by their id, the division their consent is known
by, and who connected them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from exact_online_settings_page.exact_connect import ConnectRefused, hook
from exact_online_settings_page.secret_scrub import EXACT_CONN_ID, scrub
from include.outsmart_import.settings import COMPANY_KEY

log = logging.getLogger(__name__)

EXACT_CONN_TYPE = "exact_online"
NEW_CONN_PREFIX = "exact_online_"
MAX_LISTED_DIVISIONS = 5000  # an accountant's licence has hundreds; the picker says when it cuts


def _app_connections(session) -> list:
    """The connections of type "Exact Online", the first company's (whatever its type), and any other connection
    of the same app (client id): a company may take its division through any of them."""
    from airflow.models import Connection
    from sqlalchemy import or_, select

    default = session.scalar(select(Connection).where(Connection.conn_id == EXACT_CONN_ID))
    clauses = [Connection.conn_type == EXACT_CONN_TYPE, Connection.conn_id == EXACT_CONN_ID]
    if default is not None and default.login:
        clauses.append(Connection.login == default.login)
    return list(session.scalars(select(Connection).where(or_(*clauses)).order_by(Connection.conn_id)))


def exact_connections(session) -> list[dict]:
    """Each Exact connection: its id, the division its consent is known by, who connected it (names only)."""
    from exact_online.hooks.exact_online import _positive_int

    out = []
    for conn in _app_connections(session):
        extra = conn.extra_dejson or {}
        division = _positive_int(extra.get("division") or extra.get("extra__exact_online__division"))
        who = extra.get("connected_as") if isinstance(extra.get("connected_as"), dict) else None
        out.append(
            {
                "conn_id": conn.conn_id,
                "client_id": conn.login or "",  # the app's public id (not a secret): the same app, the same key space
                "division": division,
                "division_description": str(extra.get("division_description") or ""),
                "connected_as": {k: str(who.get(k) or "") for k in ("full_name", "user_name")} if who else None,
            }
        )
    return out


def consent_divisions(conn_id: str) -> dict:
    """The divisions the connection's consent reaches (`system/Divisions` on its stored chain, refreshed first if
    its access token is old), for the new company's division picker."""
    from exact_online.exceptions import ExactConfigError, ExactOnlineError, ExactReconnectRequired
    from exact_online.oauth import ExactApp, ExactConsent

    h = hook(conn_id)
    try:
        h.get_access_token()  # the stored chain's access token, refreshed under its lock when old
        app = ExactApp(h.api_base, h.connection.login or "", h.connection.password or "", "")
        found = ExactConsent(app, h.token_store, h.consent_division, h.get_conn()).divisions()
    except ExactReconnectRequired as exc:
        raise ConnectRefused("consent_refused", 409, conn_id=conn_id, error=scrub(str(exc))) from None
    except ExactConfigError:
        raise ConnectRefused("consent_missing", 409, conn_id=conn_id) from None
    except ExactOnlineError as exc:
        raise ConnectRefused("divisions_not_listed", 502, conn_id=conn_id, error=scrub(str(exc))) from None
    listed = [{"code": d.code, "description": d.description} for d in found[:MAX_LISTED_DIVISIONS]]
    return {
        "conn_id": conn_id,
        "consent_division": h.consent_division,
        "divisions": listed,
        "truncated": len(found) > MAX_LISTED_DIVISIONS,
        "limit": MAX_LISTED_DIVISIONS,
    }


def new_connection_id(key: Any) -> str:
    if not isinstance(key, str) or not re.fullmatch(COMPANY_KEY.strip("^$"), key):
        raise ConnectRefused("company_key_needed", 422)
    return NEW_CONN_PREFIX + key


def new_connection(session, conn_id: str) -> bool:
    """The connection for a company's own consent, with the app of `exact_online_default` (host, client id, secret;
    its "redirect_uri", as the app is registered with it) and nothing of its consent. True if it was made now; an
    existing one without a consent is connected again, one with a consent is refused (use its consent)."""
    from airflow.models import Connection
    from sqlalchemy import select

    existing = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
    if existing is not None:
        if (existing.extra_dejson or {}).get("division"):
            raise ConnectRefused("connection_has_consent", 409, conn_id=conn_id)
        return False
    app = session.scalar(select(Connection).where(Connection.conn_id == EXACT_CONN_ID))
    if app is None or not app.login or not app.password:
        raise ConnectRefused("app_connection_missing", 409, conn_id=EXACT_CONN_ID)
    redirect = (app.extra_dejson or {}).get("redirect_uri")
    session.add(
        Connection(
            conn_id=conn_id,
            conn_type=app.conn_type,
            description="Exact Online: a company's own consent (made on the settings page)",
            host=app.host,
            schema=app.schema,
            port=app.port,
            login=app.login,
            password=app.password,
            extra=json.dumps({"redirect_uri": redirect} if redirect else {}),
        )
    )
    session.flush()
    log.info("settings page: connection %s made for a company's consent", conn_id)
    return True
