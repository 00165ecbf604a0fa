"""Connecting Exact Online from the settings page (#20) inside Airflow's real api-server app, against a real sandbox:
Connect → Exact's consent page (driven with requests, as a browser would) → the callback → the division picker →
the connection's extra and the token chain the hook then lives on; Deny; the pasted address; a state reused, expired
or another user's; a viewer; Disconnect; the refresh token's life and the last refusal.

The connection `exact_online_default` is the sandbox, in the metadata database (the page writes its extra there).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.plugins.exact_online.test_oauth import browser_consent
from tests.plugins.exact_online_settings_page.test_settings_page_api import CLIENT_SECRET, PAGE, PREFIX, auth, token

DIV = 3_000_001
PRACTICE = DIV + 1
CALLBACK = "http://testserver" + PREFIX + "/oauth/callback"


def _set_connection(**fields) -> dict:
    """Replace fields of the stored `exact_online_default`; returns what they were."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        conn = s.query(Connection).filter(Connection.conn_id == "exact_online_default").one()
        before = {k: getattr(conn, k) for k in fields}
        for k, v in fields.items():
            setattr(conn, k, v)
    return before


def stored_extra() -> dict:
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as s:
        return s.query(Connection).filter(Connection.conn_id == "exact_online_default").one().extra_dejson


def later_hook(seconds: float):
    """The import's hook (shared Postgres token store) with its clock `seconds` ahead."""
    import time

    from exact_online_settings_page import exact_connect

    hook = exact_connect.hook()
    hook._clock = lambda: time.time() + seconds
    return hook


def connect_division(client, division=DIV) -> None:
    url, _ = start(client)
    assert come_back(client, browser_consent(url)).status_code == 303
    r = post(client, "/api/connect/division", {"division": division})
    assert r.status_code == 200, r.text


def post(client, path, body, role="admin"):
    return client.post(PREFIX + path, json=body, headers={**auth(role), **PAGE})


def connection(client, role="admin"):
    r = client.get(PREFIX + "/api/connection", headers=auth(role))
    assert r.status_code == 200, r.text
    return r.json()


def start(client) -> tuple[str, str]:
    """Press Connect: (the authorize URL, its state)."""
    r = post(client, "/api/connect", {})
    assert r.status_code == 200, r.text
    url = r.json()["authorize_url"]
    return url, parse_qs(urlsplit(url).query)["state"][0]


def come_back(client, address: str):
    """The browser follows Exact's redirect to the callback (with the user's session)."""
    parts = urlsplit(address)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return client.get(PREFIX + "/oauth/callback?" + parts.query, headers=auth("admin"), follow_redirects=False)


def test_connect_pick_a_division_and_the_hook_lives_on_the_new_chain(client, sandbox, caplog):
    assert connection(client)["redirect_uri"] == CALLBACK
    page = client.get(PREFIX + "/", headers=auth("admin")).text
    assert "Exact Online connection" in page and "/static/connection.js" in page
    url, state = start(client)
    assert url.startswith(sandbox.url + "/api/oauth2/auth?") and parse_qs(urlsplit(url).query)["redirect_uri"] == [
        CALLBACK
    ]
    back = come_back(client, browser_consent(url))
    assert back.status_code == 303 and back.headers["location"] == "/plugin/exact-online-imports"
    shown = connection(client)["attempt"]
    assert shown["outcome"] == "picking"
    assert shown["connected_user"] == {"full_name": "Piet de Vries", "user_name": "piet@example.nl"}
    assert shown["divisions"] == [
        {"code": DIV, "description": "Installatiebedrijf De Sandbox B.V."},
        {"code": PRACTICE, "description": "Oefenadministratie"},
    ]
    r = post(client, "/api/connect/division", {"division": PRACTICE})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == f"Connected to division {PRACTICE} (Oefenadministratie)."
    again = post(client, "/api/connect/division", {"division": DIV})  # the consent is spent: no second pick
    assert again.status_code == 409 and "No consent is waiting" in again.json()["detail"]
    extra = stored_extra()
    assert extra["division"] == PRACTICE and extra["division_description"] == "Oefenadministratie"
    assert extra["connected_as"] == {"full_name": "Piet de Vries", "user_name": "piet@example.nl"}
    assert "refresh_token" not in extra and not any("rt-" in str(v) for v in extra.values())
    shown = connection(client)
    assert shown["connected"] is True and shown["division"] == PRACTICE and shown["warning"] is None
    assert shown["connected_as"]["user_name"] == "piet@example.nl" and 29.9 < shown["days_left"] <= 30
    # The import's hook, as a task builds it, lives on the new chain: it refreshes it and reads the user.

    # Ten minutes on (the sandbox aged, the hook's clock ahead): it must refresh the new chain to go on.
    requests.post(sandbox.url + "/_sandbox/age-oauth", json={"seconds": 600}, timeout=5)
    hook = later_hook(600)
    assert hook.me()["FullName"] == "Piet de Vries"
    record = hook.token_store.peek(f"{sandbox.state.config.client_id}/{PRACTICE}")
    assert record is not None and record.refreshes == 1
    assert hook.token_store.peek(f"{sandbox.state.config.client_id}/{DIV}") is None
    chains = requests.get(sandbox.url + "/_sandbox/token-chains", timeout=5).json()["chains"]
    assert [(c["user"], c["old_count"]) for c in chains] == [("sandbox@example.nl", 0), ("piet@example.nl", 1)]
    assert record.refresh_token == chains[1]["refresh_token"]
    # No token, code or secret in any answer or log.
    answers = json.dumps(shown) + r.text
    for secret in (record.refresh_token, record.access_token or "x-none", CLIENT_SECRET, "sandbox-secret", state):
        assert secret not in answers and secret not in caplog.text


def test_deny_is_a_clear_message_and_nothing_changes(client, sandbox):
    url, _ = start(client)
    back = come_back(client, browser_consent(url, action="deny"))
    assert back.status_code == 303
    shown = connection(client)
    assert shown["attempt"]["outcome"] == "denied"
    assert shown["attempt"]["message"] == "Exact Online was not connected: you chose Deny."
    assert shown["connected"] is False and shown["attempt"]["divisions"] is None
    assert post(client, "/api/connect/division", {"division": DIV}).status_code == 409
    assert stored_extra()["division"] == DIV


def test_the_pasted_address_connects_too(client, sandbox):
    """No public address: an HTTPS address nobody serves is registered and put in the extra as "redirect_uri"."""
    sandbox.state.config.redirect_uri = "https://localhost/callback"
    extra = stored_extra()
    _set_connection(extra=json.dumps({**extra, "redirect_uri": "https://localhost/callback"}))
    assert connection(client)["redirect_uri"] == "https://localhost/callback"
    url, _ = start(client)
    address = browser_consent(url)
    r = post(client, "/api/connect/paste", {"address": "  " + address + "\n"})
    assert r.status_code == 200 and r.json()["outcome"] == "picking", r.text
    assert post(client, "/api/connect/division", {"division": DIV}).status_code == 200
    assert connection(client)["connected"] is True
    # The import reads the division on the new chain (the page's own read of the item groups, through the hook).
    from exact_online_settings_page.exact_connection import item_groups_from_exact

    assert later_hook(0).division_details()["Description"] == "Installatiebedrijf De Sandbox B.V."
    assert item_groups_from_exact() and "refresh_token" not in stored_extra()
    assert stored_extra()["redirect_uri"] == "https://localhost/callback"
    again = post(client, "/api/connect/paste", {"address": address})  # the same address twice: refused
    assert again.status_code == 400 and "already used" in again.json()["detail"]
    too_long = post(client, "/api/connect/paste", {"address": address + "&x=" + "a" * 5000})
    assert too_long.status_code == 400 and "4 KB" in too_long.json()["detail"]


def test_a_state_reused_expired_or_of_another_user_is_refused(client, sandbox, monkeypatch):
    from exact_online_settings_page import exact_connect

    url, _ = start(client)
    address = browser_consent(url)
    assert come_back(client, address).status_code == 303
    reused = come_back(client, address)
    assert reused.status_code == 400 and "already used" in reused.text
    url, _ = start(client)
    other = client.get(
        PREFIX + "/oauth/callback?" + urlsplit(browser_consent(url)).query, headers=auth("op"), follow_redirects=False
    )
    assert other.status_code == 400 and "another user" in other.text  # `op` may edit connections, not use admin's
    url, _ = start(client)
    address = browser_consent(url)
    later = exact_connect.time.time() + exact_connect.ATTEMPT_SECONDS + 1
    monkeypatch.setattr(exact_connect.time, "time", lambda: later)
    expired = come_back(client, address)
    assert expired.status_code == 400 and "older than 10 minutes" in expired.text
    forged = client.get(PREFIX + "/oauth/callback?code=x&state=" + "s" * 300, headers=auth("admin"))
    assert forged.status_code == 400


@pytest.mark.parametrize("division", ["3000001", 1.5, True, 0, -1, 2**31, None])
def test_the_division_must_be_a_whole_number(client, sandbox, division):
    r = post(client, "/api/connect/division", {"division": division})
    assert r.status_code == 422


def test_a_viewer_cannot_connect_or_see_the_connection(client, sandbox):
    assert client.get(PREFIX + "/api/connection", headers=auth("viewer")).status_code == 403
    for path, body in (
        ("/api/connect", {}),
        ("/api/connect/paste", {"address": "x"}),
        ("/api/connect/division", {"division": DIV}),
        ("/api/disconnect", {"confirm": True}),
    ):
        assert post(client, path, body, role="viewer").status_code == 403, path
    # the page's header and this origin are needed, as for Save
    assert client.post(PREFIX + "/api/connect", json={}, headers=auth("admin")).status_code == 403
    client.cookies.set("_token", token("admin"))
    try:
        r = client.post(PREFIX + "/api/connect", json={}, headers={**PAGE, "Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    finally:
        client.cookies.clear()


def test_disconnect_discards_the_chain_and_clears_the_division(client, sandbox):
    connect_division(client)
    key = f"{sandbox.state.config.client_id}/{DIV}"
    assert later_hook(0).token_store.peek(key) is not None
    assert post(client, "/api/disconnect", {}).status_code == 422  # not confirmed: nothing happens
    assert connection(client)["connected"] is True
    r = post(client, "/api/disconnect", {"confirm": True})
    assert r.status_code == 200 and "Disconnected" in r.json()["message"]
    assert later_hook(0).token_store.peek(key) is None
    extra = stored_extra()
    assert "division" not in extra and "connected_as" not in extra and "refresh_token" not in extra
    assert connection(client)["connected"] is False


def test_the_refresh_tokens_life_and_the_last_refusal_are_shown(client, sandbox, target_db):
    from dataclasses import replace

    from exact_online.exceptions import ExactReconnectRequired

    connect_division(client)
    hook = later_hook(0)
    key = f"{sandbox.state.config.client_id}/{DIV}"
    with hook.token_store.locked(key) as (record, save):  # last used 24 days ago: 6 days left
        save(replace(record, refresh_obtained_at=record.refresh_obtained_at - 24 * 86400))
    shown = connection(client)
    assert 5.9 < shown["days_left"] < 6.1 and "dies in 6 days" in shown["warning"]
    assert shown["last_refusal"] is None
    # The user withdraws the consent in Exact: the next import stops on ExactReconnectRequired.
    requests.post(sandbox.url + "/_sandbox/revoke-consent", json={"user": "piet@example.nl"}, timeout=5)
    requests.post(sandbox.url + "/_sandbox/age-oauth", json={"seconds": 600}, timeout=5)
    with pytest.raises(ExactReconnectRequired) as refused:
        later_hook(600).me()
    from include.outsmart_import.schema import ensure_schema

    with target_db.connect() as conn:
        ensure_schema(conn)
        conn.execute(
            "INSERT INTO outsmart.import_log (category, status, started_at, ended_at, fetched, inserted, updated, "
            "deleted, rejected, error) VALUES ('relations', 'failed', now(), now(), 0, 0, 0, 0, 0, %s)",
            (f"{type(refused.value).__name__}: {refused.value}",),  # as runner.py writes it
        )
        conn.commit()
    last = connection(client)["last_refusal"]
    assert last["category"] == "relations" and last["error"] == str(refused.value)
    assert "the consent was withdrawn" in last["error"]
    connect_division(client)  # connected again since: the refusal is history
    assert connection(client)["last_refusal"] is None


def test_the_callbacks_code_and_state_never_reach_the_access_log(client, sandbox, monkeypatch):
    """Airflow writes an access line for every request, with its query string (HttpAccessLogMiddleware, through
    structlog); the callback's shows *** for the code and the state (access_log.py, installed by the plugin)."""
    from airflow._shared.logging import structlog as airflow_structlog
    from structlog.testing import capture_logs

    monkeypatch.setitem(airflow_structlog.PER_LOGGER_LEVELS, "http.access", 20)  # info: the tests log warnings only
    url, state = start(client)
    address = browser_consent(url)
    code = parse_qs(urlsplit(address).query)["code"][0]
    with capture_logs() as logs:
        assert come_back(client, address).status_code == 303
    (line,) = [e for e in logs if e.get("path") == PREFIX + "/oauth/callback"]
    assert line["event"] == "request finished" and line["query"] == "code=***&state=***"
    assert code not in str(logs) and state not in str(logs)


def test_the_redacted_query_keeps_only_the_error():
    from exact_online_settings_page.access_log import redact_callback_query, redacted_query

    assert redacted_query("error=access_denied&state=abc") == "error=access_denied&state=***"
    assert redacted_query("code=a%21b*c&state=x&extra=1") == "code=***&state=***&extra=***"
    assert redacted_query("code") == "***"  # not a query string: dropped whole
    other = {"event": "request finished", "path": PREFIX + "/api/state", "query": "code=kept"}
    assert redact_callback_query(None, "info", dict(other)) == other


def test_a_callback_without_an_airflow_login_does_not_carry_the_code_on(client, sandbox):
    """Not on to the login page with the code in its `next` (and so in the login's requests and access lines)."""
    url, _ = start(client)
    address = browser_consent(url)
    back = client.get(PREFIX + "/oauth/callback?" + urlsplit(address).query, follow_redirects=False)
    assert back.status_code == 401 and "location" not in back.headers
    assert "login has expired" in back.text and "code" not in back.text
