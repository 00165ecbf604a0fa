"""Error messages for the page without any password or token of our connections: a driver's or the hook's message
can quote a connection string."""

from __future__ import annotations

TARGET_CONN_ID = "outsmart_postgres"
EXACT_CONN_ID = "exact_online_default"


def scrub(text: str, conn_ids: tuple[str, ...] = ()) -> str:
    """An error message for the page: first line only, without any password or token of our connections (and of
    `conn_ids`: a company's own)."""
    text = (text or "").strip().splitlines()[0][:300] if text else ""
    try:
        from airflow.models import Connection

        for conn_id in (TARGET_CONN_ID, EXACT_CONN_ID, *conn_ids):
            try:
                c = Connection.get_connection_from_secrets(conn_id)
            except Exception:
                continue
            for secret in (c.password, (c.extra_dejson or {}).get("refresh_token")):
                if secret and str(secret) in text:
                    text = text.replace(str(secret), "***")
    except Exception:
        pass
    return text
