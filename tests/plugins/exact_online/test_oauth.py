"""Connecting a company (exact_online.oauth) against the sandbox over HTTP: the authorize page as a browser sees it,
the pasted redirect address, the code exchange into the hook's token store, the hook living on the new chain, and
the chain refused for good (ExactReconnectRequired). One fake clock for the sandbox and the hook: no real waiting."""

from __future__ import annotations

import html
import json
import logging
import re
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from exact_online.exceptions import (
    ExactAuthError,
    ExactCodeRefused,
    ExactConsentDenied,
    ExactConsentNoCode,
    ExactConsentStateMismatch,
    ExactReconnectRequired,
    ExactTransientError,
)
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.oauth import (
    ConnectedUser,
    DivisionChoice,
    ExactApp,
    authorize_url,
    code_from_redirect,
    exchange_code,
    exchange_code_for_hook,
    new_state,
)
from exact_online.token_store import MemoryTokenStore, PostgresTokenStore
from tests.helpers.fake_time import FakeTime

DIV = 3_000_001
PRACTICE = DIV + 1
REDIRECT = "https://localhost/callback"
USERS = {
    "sandbox@example.nl": {"password": "sandbox", "full_name": "Sandbox Gebruiker"},
    "piet@example.nl": {"password": "geheim", "full_name": "Piet de Vries"},
}
RECONNECT = "reconnect on the settings page (Exact imports, in Airflow's navigation)."


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    """The sandbox's clock (`server._now`) and the hook's, one fake: 30 days pass in an instant."""
    from include.exact_sandbox import server

    fake = FakeTime()
    monkeypatch.setattr(server, "_now", fake.clock)
    return fake


@pytest.fixture
def sandbox(sandbox_factory, fake_time):
    return sandbox_factory(size=5, users=USERS)


def new_hook(fake_time: FakeTime, store: MemoryTokenStore) -> ExactOnlineHook:
    return ExactOnlineHook(token_store=store, clock=fake_time.clock, sleep=fake_time.sleep)


def control(server, what, body=None) -> dict:
    if body is None:
        return requests.get(f"{server.url}/_sandbox/{what}", timeout=5).json()
    return requests.post(f"{server.url}/_sandbox/{what}", json=body, timeout=5).json()


def browser_consent(url: str, action="allow", user="piet@example.nl", password="geheim") -> str:
    """What a person does in the browser: open the authorize URL, fill in the form, press a button. Returns the
    address the browser is sent to (the 302 is followed by hand: it points at an address nobody serves)."""
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "<form method='post' action='/api/oauth2/auth'>" in page.text
    form = {
        html.unescape(m.group(1)): html.unescape(m.group(2))
        for m in re.finditer(r"<input type='hidden' name='([^']*)' value='([^']*)'>", page.text)
    }
    form.update(username=user, password=password, action=action)
    target = urlsplit(url)
    reply = requests.post(
        f"{target.scheme}://{target.netloc}/api/oauth2/auth", data=form, allow_redirects=False, timeout=5
    )
    assert reply.status_code == 302, reply.text
    return reply.headers["Location"]


def connect(server, fake_time, store, **consent_kwargs):
    """The whole flow as the settings page will drive it; returns (consent, hook, the code used)."""
    hook = new_hook(fake_time, store)
    state = new_state()
    address = browser_consent(authorize_url(server.url, hook.connection.login, REDIRECT, state), **consent_kwargs)
    code = code_from_redirect(address, state)
    return exchange_code_for_hook(hook, code, REDIRECT), hook, code


def test_authorize_url_is_exacts_and_its_page_is_served(sandbox):
    state = new_state()
    url = authorize_url(sandbox.url + "/", "sandbox-client", REDIRECT, state, force_login=True)
    parts = urlsplit(url)
    assert parts.path == "/api/oauth2/auth" and url.startswith(sandbox.url + "/api/oauth2/auth?")
    assert parse_qs(parts.query) == {
        "client_id": ["sandbox-client"],
        "redirect_uri": [REDIRECT],
        "response_type": ["code"],
        "state": [state],
        "force_login": ["1"],
    }
    assert requests.get(url, timeout=5).status_code == 200
    with pytest.raises(ValueError, match="state"):
        authorize_url(sandbox.url, "sandbox-client", REDIRECT, "")


def test_connect_stores_a_new_chain_the_hook_lives_on(sandbox, fake_time):
    store = MemoryTokenStore()
    consent, hook, code = connect(sandbox, fake_time, store)
    assert "!" in code and "*" in code  # decoded from the %21 and %2A in the address
    assert consent.chain_key == f"sandbox-client/{DIV}" == hook.chain_key
    assert consent.connected_user() == ConnectedUser("Piet de Vries", "piet@example.nl", DIV)
    assert consent.divisions() == [
        DivisionChoice(DIV, "Installatiebedrijf De Sandbox B.V."),
        DivisionChoice(PRACTICE, "Oefenadministratie"),
    ]
    chains = control(sandbox, "token-chains")["chains"]
    assert store.peek(consent.chain_key).refresh_token == chains[1]["refresh_token"]
    # The hook takes the stored chain although its connection still has a (different) "First refresh token".
    assert hook.me()["FullName"] == "Piet de Vries"
    assert control(sandbox, "stats")["token_calls"] == {"consent_given": 1, "ok": 1}
    fake_time.advance(600)  # the access token is spent: the hook refreshes the new chain, not the preconfigured one
    assert new_hook(fake_time, store).me()["FullName"] == "Piet de Vries"
    chains = control(sandbox, "token-chains")["chains"]
    assert (chains[0]["old_count"], chains[1]["old_count"]) == (0, 1)
    assert store.peek(consent.chain_key).refresh_token == chains[1]["refresh_token"]


def test_exchange_without_a_division_takes_the_current_one_and_the_picker_moves_it(sandbox, fake_time):
    store = MemoryTokenStore()
    app = ExactApp(sandbox.url, "sandbox-client", "sandbox-secret", REDIRECT)
    state = new_state()
    address = browser_consent(authorize_url(app.base_url, app.client_id, REDIRECT, state))
    consent = exchange_code(app, code_from_redirect(address, state), store, clock=fake_time.clock)
    assert consent.division == DIV and store.peek(f"sandbox-client/{DIV}") is not None
    before = store.peek(f"sandbox-client/{DIV}")
    consent.use_division(PRACTICE)
    assert consent.chain_key == f"sandbox-client/{PRACTICE}" and store.peek(f"sandbox-client/{DIV}") is None
    assert store.peek(consent.chain_key).refresh_token == before.refresh_token
    assert "sandbox-secret" not in repr(app) and "rt-" not in repr(consent)


def test_deny_and_bad_addresses_are_typed_errors(sandbox):
    state = new_state()
    denied = browser_consent(authorize_url(sandbox.url, "sandbox-client", REDIRECT, state), action="deny")
    with pytest.raises(ExactConsentDenied, match="Access was denied"):
        code_from_redirect(denied, state)
    allowed = browser_consent(authorize_url(sandbox.url, "sandbox-client", REDIRECT, state))
    with pytest.raises(ExactConsentStateMismatch) as mismatch:
        code_from_redirect(allowed, new_state())
    with pytest.raises(ExactConsentNoCode, match=r"\?code="):
        code_from_redirect(f"{REDIRECT}?state={state}", state)
    with pytest.raises(ExactConsentNoCode):
        code_from_redirect(f"{REDIRECT}?error=server_error&state={state}", state)
    code = code_from_redirect(allowed, state)  # the bare query string works too
    assert code_from_redirect(urlsplit(allowed).query, state) == code
    assert code not in str(mismatch.value)


@pytest.mark.parametrize("case", ["reused", "expired", "other_redirect_uri"])
def test_a_refused_code_is_a_typed_error_without_secrets(sandbox, fake_time, case, caplog):
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore()
    redirect = "https://localhost/other" if case == "other_redirect_uri" else REDIRECT
    app = ExactApp(sandbox.url, "sandbox-client", "sandbox-secret", redirect)
    state = new_state()
    code = code_from_redirect(browser_consent(authorize_url(sandbox.url, "sandbox-client", REDIRECT, state)), state)
    if case == "reused":
        exchange_code(app, code, store, division=DIV, clock=fake_time.clock)
    if case == "expired":
        fake_time.advance(181)  # Exact: about 3 minutes
    with pytest.raises(ExactCodeRefused, match=r"refused the authorization code \(400 Bad Request\)") as err:
        exchange_code(app, code, store, division=DIV, clock=fake_time.clock)
    reason = {"reused": "code_reused", "expired": "code_expired", "other_redirect_uri": "redirect_uri_mismatch"}
    assert control(sandbox, "stats")["token_calls"][reason[case]] == 1
    for secret in (code, "sandbox-secret", "geheim"):
        assert secret not in str(err.value) and secret not in caplog.text


def test_a_wrong_client_secret_is_an_auth_error(sandbox):
    state = new_state()
    code = code_from_redirect(browser_consent(authorize_url(sandbox.url, "sandbox-client", REDIRECT, state)), state)
    app = ExactApp(sandbox.url, "sandbox-client", "wrong-secret", REDIRECT)
    with pytest.raises(ExactAuthError, match="invalid_client") as err:
        exchange_code(app, code, MemoryTokenStore(), division=DIV)
    assert "wrong-secret" not in str(err.value)


def test_an_unused_refresh_token_expires_and_the_import_must_reconnect(sandbox, fake_time, caplog):
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore()
    consent, hook, _ = connect(sandbox, fake_time, store)
    record = store.peek(consent.chain_key)
    fake_time.advance(30 * 86400 + 1)  # Exact: an unused refresh token dies after 30 days
    with pytest.raises(ExactReconnectRequired) as err:
        new_hook(fake_time, store).me()
    text = str(err.value)
    assert text.startswith("Exact Online refused the connection (the refresh token has expired") and text.endswith(
        RECONNECT
    )
    assert isinstance(err.value, ExactAuthError) and err.value.needs_reauthorisation
    assert control(sandbox, "stats")["token_calls"]["refresh_token_expired"] == 1  # asked once, not retried
    for secret in (record.refresh_token, record.access_token, "sandbox-secret"):
        assert secret not in text and secret not in caplog.text


def test_a_revoked_consent_makes_the_import_reconnect(sandbox, fake_time):
    store = MemoryTokenStore()
    consent, hook, _ = connect(sandbox, fake_time, store)
    assert control(sandbox, "revoke-consent", {"user": "piet@example.nl"}) == {"revoked": ["1"]}
    fake_time.advance(600)
    with pytest.raises(ExactReconnectRequired, match=r"the consent was withdrawn or the token chain is unknown"):
        new_hook(fake_time, store).me()
    assert control(sandbox, "stats")["token_calls"]["consent_revoked"] == 1
    # The preconfigured chain of another consent is not affected: a hook on it still refreshes.
    other = ExactOnlineHook(token_store=MemoryTokenStore(), clock=fake_time.clock, sleep=fake_time.sleep)
    assert other.me()["FullName"] == "Sandbox Gebruiker"


def test_an_unreachable_token_endpoint_stays_retryable(monkeypatch, fake_time):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = {
        "conn_type": "http",
        "host": f"http://127.0.0.1:{port}",
        "login": "c",
        "password": "s",
        "extra": {"division": 1, "refresh_token": "r", "max_attempts": 2, "backoff_seconds": 0.01},
    }
    monkeypatch.setenv("AIRFLOW_CONN_EXACT_ONLINE_DEFAULT", json.dumps(conn))
    hook = new_hook(fake_time, MemoryTokenStore())
    with pytest.raises(ExactTransientError, match="could not be reached twice in a row"):
        hook.me()
    assert hook.stats.token_calls == 4 and hook.stats.retries == 1  # two tries of the call, two posts each


def test_a_token_endpoint_5xx_is_retried_and_the_chain_survives(sandbox, fake_time):
    store = MemoryTokenStore()
    consent, _, _ = connect(sandbox, fake_time, store)
    fake_time.advance(600)
    control(sandbox, "faults", {"fail_next_token_calls": 1})
    hook = new_hook(fake_time, store)
    assert hook.me()["FullName"] == "Piet de Vries"  # the 503 was retried, then the refresh went through
    assert hook.stats.retries == 1 and control(sandbox, "stats")["faults_injected"] == {"token_error": 1}
    assert store.peek(consent.chain_key).refreshes == 1


def test_the_chain_lands_in_postgres_and_moves_with_the_division_picked(sandbox, fake_time, target_db):
    store = PostgresTokenStore.from_conninfo(target_db.conninfo)
    consent, hook, _ = connect(sandbox, fake_time, store)
    stored = store.peek(f"sandbox-client/{DIV}")
    assert stored.refresh_token == control(sandbox, "token-chains")["chains"][1]["refresh_token"]
    consent.use_division(PRACTICE)
    assert store.peek(f"sandbox-client/{DIV}") is None
    assert store.peek(f"sandbox-client/{PRACTICE}").refresh_token == stored.refresh_token
