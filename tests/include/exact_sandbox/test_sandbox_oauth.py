"""The sandbox's authorize page and authorization-code grant, checked over plain HTTP as a browser and a client would
see them (include/exact_sandbox/oauth.py)."""

from __future__ import annotations

import functools
import html
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

DIV = 3_000_001
REDIRECT = "https://localhost/callback"
USERS = {
    "sandbox@example.nl": {"password": "sandbox", "full_name": "Sandbox Gebruiker"},
    "piet@example.nl": {"password": "geheim", "full_name": "Piet de Vries", "divisions": [DIV]},
}


@pytest.fixture
def sandbox(sandbox_factory):
    """Sandboxes of five accounts that know the two users."""
    return functools.partial(sandbox_factory, size=5, users=USERS)


def auth_params(**overrides) -> dict:
    return {
        "client_id": "sandbox-client",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "st-123",
        **overrides,
    }


def consent(server, action="allow", user="piet@example.nl", password="geheim", **overrides) -> requests.Response:
    """GET the page, fill in its form (the hidden fields as the page gives them), POST it; no redirect followed."""
    page = requests.get(server.url + "/api/oauth2/auth", params=auth_params(**overrides), timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    form = {
        html.unescape(m.group(1)): html.unescape(m.group(2))
        for m in re.finditer(r"<input type='hidden' name='([^']*)' value='([^']*)'>", page.text)
    }
    form.update(username=user, password=password, action=action)
    return requests.post(server.url + "/api/oauth2/auth", data=form, allow_redirects=False, timeout=5)


def code_of(reply: requests.Response) -> str:
    assert reply.status_code == 302, reply.text
    location = reply.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)  # parse_qs decodes, as a client must
    assert query["state"] == ["st-123"]
    return query["code"][0]


def exchange(server, code, redirect_uri=REDIRECT, secret="sandbox-secret") -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": "sandbox-client",
        "client_secret": secret,
    }
    return requests.post(server.url + "/api/oauth2/token", data=form, timeout=5)


def control(server, what, body=None) -> dict:
    if body is None:
        return requests.get(f"{server.url}/_sandbox/{what}", timeout=5).json()
    return requests.post(f"{server.url}/_sandbox/{what}", json=body, timeout=5).json()


def test_allow_redirects_with_an_encoded_code_that_starts_a_new_chain(sandbox):
    s = sandbox()
    reply = consent(s)
    raw = urlsplit(reply.headers["Location"]).query
    code = code_of(reply)
    assert "!" in code and "*" in code and "%21" in raw and "!" not in raw  # Exact's codes arrive URL-encoded
    assert unquote(re.search(r"code=([^&]*)", raw).group(1)) == code
    tokens = exchange(s, code)
    body = tokens.json()
    assert tokens.status_code == 200 and set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["expires_in"] == "600"
    chains = control(s, "token-chains")["chains"]
    assert [(c["id"], c["user"], c["divisions"]) for c in chains] == [
        ("0", "sandbox@example.nl", [DIV]),
        ("1", "piet@example.nl", [DIV]),
    ]
    assert (
        chains[1]["refresh_token"] == body["refresh_token"] and chains[0]["refresh_token"] == "sandbox-refresh-token-0"
    )
    me = requests.get(
        s.url + "/api/v1/current/Me", headers={"Authorization": "Bearer " + body["access_token"]}, timeout=5
    ).json()["d"]["results"][0]
    assert (me["UserName"], me["FullName"], me["CurrentDivision"]) == ("piet@example.nl", "Piet de Vries", DIV)
    divisions = requests.get(
        f"{s.url}/api/v1/{DIV}/system/Divisions",
        params={"$select": "Code,Description"},
        headers={"Authorization": "Bearer " + body["access_token"], "Accept": "application/json"},
        timeout=5,
    )
    assert divisions.status_code == 200 and DIV in [r["Code"] for r in divisions.json()["d"]["results"]]


def test_the_new_chain_refreshes_and_rotates_on_its_own(sandbox):
    s = sandbox(min_token_interval=0)
    first = exchange(s, code_of(consent(s))).json()
    second = requests.post(
        s.url + "/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
        timeout=5,
    )
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    chains = control(s, "token-chains")["chains"]
    assert chains[1]["old_count"] == 1 and chains[0]["old_count"] == 0  # the preconfigured chain is untouched


def test_deny_redirects_with_access_denied_and_no_code(sandbox):
    s = sandbox()
    reply = consent(s, action="deny")
    assert reply.status_code == 302
    assert parse_qs(urlsplit(reply.headers["Location"]).query) == {"error": ["access_denied"], "state": ["st-123"]}


def test_wrong_password_shows_the_page_again_without_echoing_it(sandbox):
    s = sandbox()
    reply = consent(s, password="not-the-password")
    assert reply.status_code == 200 and "Invalid user name or password." in reply.text
    assert "not-the-password" not in reply.text and "Location" not in reply.headers


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": "someone-else"}, "There is no app with this client ID."),
        ({"redirect_uri": "https://evil.example/callback"}, "does not match the one registered"),
    ],
)
def test_unknown_client_or_unregistered_redirect_gets_an_error_page_and_no_redirect(sandbox, overrides, message):
    s = sandbox()
    for method in ("GET", "POST"):
        params = {**auth_params(**overrides), "username": "piet@example.nl", "password": "geheim", "action": "allow"}
        kwargs = {"params": params} if method == "GET" else {"data": params}
        reply = requests.request(method, s.url + "/api/oauth2/auth", allow_redirects=False, timeout=5, **kwargs)
        assert reply.status_code == 400 and message in reply.text and "Location" not in reply.headers
    assert "consent_given" not in control(s, "stats")["token_calls"]


def test_state_is_escaped_on_the_page(sandbox):
    s = sandbox()
    page = requests.get(s.url + "/api/oauth2/auth", params=auth_params(state="'><script>x</script>"), timeout=5)
    assert "<script>x" not in page.text and "&#x27;&gt;&lt;script&gt;" in page.text


def test_a_code_is_single_use(sandbox):
    s = sandbox()
    code = code_of(consent(s))
    assert exchange(s, code).status_code == 200
    again = exchange(s, code)
    assert (again.status_code, again.text) == (400, "Bad Request")  # all Exact says
    assert control(s, "stats")["token_calls"]["code_reused"] == 1


def test_a_code_expires(sandbox):
    s = sandbox(authorization_code_lifetime=180)
    code = code_of(consent(s))
    control(s, "age-oauth", {"seconds": 181})
    assert exchange(s, code).status_code == 400
    assert control(s, "stats")["token_calls"]["code_expired"] == 1


def test_the_exchange_needs_the_same_redirect_uri_and_a_decoded_code(sandbox):
    s = sandbox()
    code = code_of(consent(s))
    assert exchange(s, code, redirect_uri="https://localhost/other").status_code == 400
    still_encoded = code_of(consent(s)).replace("!", "%21")
    assert exchange(s, still_encoded).status_code == 400
    calls = control(s, "stats")["token_calls"]
    assert calls["redirect_uri_mismatch"] == 1 and calls["code_unknown"] == 1 and "ok" not in calls


def test_unused_refresh_token_expires_and_a_revoked_consent_is_refused(sandbox):
    s = sandbox(min_token_interval=0)
    first = exchange(s, code_of(consent(s))).json()
    second = exchange(s, code_of(consent(s, user="sandbox@example.nl", password="sandbox"))).json()

    def refresh(token):
        form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "sandbox-client"}
        return requests.post(s.url + "/api/oauth2/token", data={**form, "client_secret": "sandbox-secret"}, timeout=5)

    assert control(s, "revoke-consent", {"user": "piet@example.nl"}) == {"revoked": ["1"]}
    revoked = refresh(first["refresh_token"])
    assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"
    control(s, "age-oauth", {"seconds": 30 * 86400 + 1})
    expired = refresh(second["refresh_token"])
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_request"
    assert re.fullmatch(r"The refresh token expired at .+ and it is now .+\.", expired.json()["error_description"])
    assert control(s, "stats")["token_calls"] == {
        "consent_given": 2,
        "ok": 2,
        "consent_revoked": 1,
        "refresh_token_expired": 1,
    }


def test_consent_chains_survive_a_restart(sandbox, tmp_path):
    s = sandbox()
    tokens = exchange(s, code_of(consent(s))).json()
    s.state.save(tmp_path / "sandbox.pickle")
    again = sandbox(min_token_interval=0)
    assert again.state.load(tmp_path / "sandbox.pickle")
    chains = control(again, "token-chains")["chains"]
    assert [(c["user"], c["refresh_token"]) for c in chains][1] == ("piet@example.nl", tokens["refresh_token"])
    me = requests.get(
        again.url + "/api/v1/current/Me", headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=5
    )
    assert me.json()["d"]["results"][0]["UserName"] == "piet@example.nl"
