"""Several divisions in one sandbox (#21), as Exact serves an accountant's companies: each division its own data and
its own rate budget, a token chain per user (consent) that reaches several divisions, refusals for a division the
user may not open. Checked over plain HTTP, and through the real ExactOnlineHook."""

from __future__ import annotations

import json
import os
import pickle
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from include.exact_sandbox import DivisionSpec, SandboxConfig
from tests.helpers.fake_time import FakeTime

A, B, C = 3_000_001, 3_000_002, 3_000_003
CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}
SYNC = {"$select": "ID,Name,Division,Timestamp", "$filter": "Timestamp gt 1L"}


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    """The sandbox's clock stands still (rate windows, tokens): no minute rolls over in the middle of a test."""
    from include.exact_sandbox import server

    fake = FakeTime()
    monkeypatch.setattr(server, "_now", fake.clock)
    return fake


def refresh(server, refresh_token: str) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **CLIENT}
    return requests.post(server.url + "/api/oauth2/token", data=form, timeout=5)


def consent(server, user: str, password: str) -> dict:
    """The user logs in and allows the app (the consent page's form), and the app exchanges the code: the tokens."""
    form = {"redirect_uri": "https://localhost/callback", "response_type": "code", "state": "s", "action": "allow"}
    reply = requests.post(
        server.url + "/api/oauth2/auth",
        data={**form, "client_id": CLIENT["client_id"], "username": user, "password": password},
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(reply.headers["Location"]).query)["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": form["redirect_uri"], **CLIENT}
    tokens = requests.post(server.url + "/api/oauth2/token", data=exchange, timeout=5)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def get(server, division: int, path: str, access: str, params: dict | None = None) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v1/{division}/{path}",
        params=SYNC if params is None else params,
        headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
        timeout=10,
    )


def rows(reply: requests.Response) -> list[dict]:
    assert reply.status_code == 200, reply.text
    return reply.json()["d"]["results"]


def me(server, access: str) -> dict:
    r = requests.get(server.url + "/api/v1/current/Me", headers={"Authorization": f"Bearer {access}"}, timeout=5)
    return r.json()["d"]["results"][0]


def control(server, what: str, body: dict | None = None) -> requests.Response:
    if body is None:
        return requests.get(f"{server.url}/_sandbox/{what}", timeout=5)
    return requests.post(f"{server.url}/_sandbox/{what}", json=body, timeout=5)


def built(server) -> dict[int, bool]:
    return {d["code"]: d["built"] for d in control(server, "divisions").json()["divisions"]}


def test_two_divisions_serve_their_own_data(sandbox):
    s = sandbox(size=30, companies=2, divisions=[DivisionSpec(C, seed=9, size=12, description="Klant C B.V.")])
    access = refresh(s, "sandbox-refresh-token-0").json()["access_token"]
    select = {**SYNC, "$select": "ID,Name,Type,Division,Timestamp"}
    a, b, c = (rows(get(s, d, "sync/CRM/Accounts", access, select)) for d in (A, B, C))
    assert (len(a), len(b), len(c)) == (31, 31, 13)  # each its size, and the division's own account
    assert [{r["Division"] for r in got} for got in (a, b, c)] == [{A}, {B}, {C}]
    assert not {r["ID"] for r in a} & {r["ID"] for r in b}  # seeds 1 and 2: other records, not a copy
    own = [next(r["Name"] for r in got if r["Type"] == "D") for got in (a, b, c)]
    assert own[0] == "Installatiebedrijf De Sandbox B.V." and own[2] == "Klant C B.V." and own[1] not in own[::2]
    listed = rows(get(s, A, "system/Divisions", access, {"$select": "Code,Description,IsMainDivision"}))
    assert [(r["Code"], r["Description"], r["IsMainDivision"]) for r in listed] == [
        (A, own[0], True),
        (B, own[1], False),
        (C, own[2], False),
        (C + 1, "Oefenadministratie", False),  # the licence's practice division: listed, never served
    ]


def test_a_call_counts_against_its_own_divisions_budget(sandbox, fake_time):
    """Exact's limits are per app per division: division A's spent minute leaves B untouched; B has its own
    numbers (Exact gives some divisions others: 100 a minute, 9,000 a day)."""
    s = sandbox(
        size=5, companies=2, minutely_limit=3, divisions=[DivisionSpec(B, minutely_limit=100, daily_limit=9000)]
    )
    access = refresh(s, "sandbox-refresh-token-0").json()["access_token"]
    left_a = [get(s, A, "sync/CRM/Accounts", access).headers["X-RateLimit-Minutely-Remaining"] for _ in range(3)]
    assert left_a == ["2", "1", "0"] and get(s, A, "sync/CRM/Accounts", access).status_code == 429
    first_b = get(s, B, "sync/CRM/Accounts", access)
    assert first_b.status_code == 200
    assert {k: v for k, v in first_b.headers.items() if k.startswith("X-RateLimit") and "Reset" not in k} == {
        "X-RateLimit-Limit": "9000",
        "X-RateLimit-Remaining": "8999",
        "X-RateLimit-Minutely-Limit": "100",
        "X-RateLimit-Minutely-Remaining": "99",
    }
    assert get(s, A, "sync/CRM/Accounts", access).status_code == 429  # B's call gave A nothing back
    assert control(s, "stats").json()["division_calls"] == {str(A): 3, str(B): 1}
    usage = control(s, "limits").json()
    assert usage[str(A)] == {"minutely_limit": 3, "daily_limit": 5000, "minute_used": 3, "day_used": 3}
    assert usage[str(B)] == {"minutely_limit": 100, "daily_limit": 9000, "minute_used": 1, "day_used": 1}


USERS = {
    "accountant@example.nl": {"password": "boekhouder", "current_division": B},  # every division
    "bob@example.nl": {"password": "bob", "divisions": [C], "initial_refresh_token": "bob-refresh-token-0"},
}


def test_one_consent_reaches_both_divisions_and_a_refresh_rotates_for_both(sandbox):
    s = sandbox(size=5, companies=3, min_token_interval=0, users=USERS)
    tokens = consent(s, "accountant@example.nl", "boekhouder")
    assert me(s, tokens["access_token"])["CurrentDivision"] == B  # one of them: the one the user last opened
    listed = rows(get(s, B, "system/Divisions", tokens["access_token"], {"$select": "Code,Current"}))
    assert [(r["Code"], r["Current"]) for r in listed] == [(A, False), (B, True), (C, False), (C + 1, False)]
    assert all(rows(get(s, d, "sync/CRM/Accounts", tokens["access_token"])) for d in (A, B))
    rotated = refresh(s, tokens["refresh_token"])
    assert rotated.status_code == 200
    access = rotated.json()["access_token"]
    assert all(rows(get(s, d, "sync/CRM/Accounts", access)) for d in (A, B))  # the new token reads both
    # One chain for the consent, not one per division: the spent token is spent for B as much as for A.
    again = refresh(s, tokens["refresh_token"])
    assert (again.status_code, again.json()["error_description"]) == (401, "Old refresh token used.")
    chains = [c for c in control(s, "token-chains").json()["chains"] if c["user"] == "accountant@example.nl"]
    assert [(c["divisions"], c["old_count"]) for c in chains] == [([A, B, C], 1)]


def test_a_division_the_user_may_not_open_is_refused_as_exact_refuses_it(sandbox):
    s = sandbox(size=5, companies=3, users=USERS)
    bob = refresh(s, "bob-refresh-token-0").json()["access_token"]
    assert me(s, bob)["CurrentDivision"] == C and rows(get(s, C, "sync/CRM/Accounts", bob))
    for division in (A, B, 999):  # another user's division, and one that does not exist
        refused = get(s, division, "sync/CRM/Accounts", bob)
        assert (refused.status_code, refused.headers["Reason"]) == (403, "NoDivisionAccess")
        assert refused.json()["error"]["message"]["value"] == "Forbidden" and "X-RateLimit-Limit" not in refused.headers
    assert [r["Code"] for r in rows(get(s, C, "system/Divisions", bob, {"$select": "Code"}))] == [C, C + 1]
    assert control(s, "stats").json()["division_calls"] == {str(C): 2}  # a refused call costs no division's budget
    assert built(s) == {A: True, B: False, C: True}  # nobody read B: never built


def test_revoking_one_user_leaves_the_other_users_divisions_working(sandbox):
    """An accountant reaching A..T and another user reaching only U: withdrawing U's user's consent breaks U only."""
    codes = [A + i for i in range(21)]
    users = {
        "accountant@example.nl": {"password": "x", "divisions": codes[:20], "initial_refresh_token": "acc-rt-0"},
        "bob@example.nl": {"password": "y", "divisions": codes[20:], "initial_refresh_token": "bob-rt-0"},
    }
    s = sandbox(size=5, companies=21, min_token_interval=0, users=users)
    accountant, bob = refresh(s, "acc-rt-0").json(), refresh(s, "bob-rt-0").json()
    assert control(s, "revoke-consent", {"user": "bob@example.nl"}).json() == {"revoked": ["2"]}
    revoked = refresh(s, bob["refresh_token"])
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")
    renewed = refresh(s, accountant["refresh_token"])
    assert renewed.status_code == 200
    for division in (codes[0], codes[19]):
        assert rows(get(s, division, "sync/CRM/Accounts", renewed.json()["access_token"]))
    assert get(s, codes[20], "sync/CRM/Accounts", renewed.json()["access_token"]).status_code == 403


def test_fifty_divisions_start_fast_and_are_built_on_first_use(sandbox, figure):
    started = time.perf_counter()
    s = sandbox(companies=50)  # 500 accounts each
    start_seconds = time.perf_counter() - started
    assert list(built(s).values()).count(True) == 1  # the main division only
    access = refresh(s, "sandbox-refresh-token-0").json()["access_token"]
    first = time.perf_counter()
    assert len(rows(get(s, A + 49, "sync/CRM/Accounts", access))) == 501
    first_use = time.perf_counter() - first
    again = time.perf_counter()
    get(s, A + 49, "sync/CRM/Accounts", access)
    second_use = time.perf_counter() - again
    assert start_seconds < 5.0 and list(built(s).values()).count(True) == 2  # all fifty built: 10 s here
    figure(
        f"50 divisions of 500 accounts: started in {start_seconds:.2f} s; a division's first call (it is built) "
        f"{first_use:.2f} s, the next {second_use:.3f} s"
    )


def test_controls_name_a_division_and_default_to_the_main_one(sandbox):
    s = sandbox(size=10, companies=2)
    access = refresh(s, "sandbox-refresh-token-0").json()["access_token"]
    added = control(s, "mutate", {"division": B, "op": "add", "records": [{"Name": "Alleen in B"}]})
    assert added.status_code == 200
    control(s, "mutate", {"op": "add", "records": [{"Name": "Alleen in A"}]}).raise_for_status()
    names = {d: {r["Name"] for r in rows(get(s, d, "sync/CRM/Accounts", access))} for d in (A, B)}
    assert "Alleen in B" in names[B] - names[A] and "Alleen in A" in names[A] - names[B]
    high_a = max(r["Timestamp"] for r in rows(get(s, A, "sync/CRM/Accounts", access)))
    moved = control(s, "move-division", {"division": B}).json()
    assert moved["highest_timestamp"] < high_a
    assert max(r["Timestamp"] for r in rows(get(s, A, "sync/CRM/Accounts", access))) == high_a  # A stays
    listed = rows(get(s, A, "system/Divisions", access, {"$select": "Code,DivisionMoveDate"}))
    assert [r["Code"] for r in listed if r["DivisionMoveDate"]] == [B]
    gone = next(iter(s.state.data_of(B).accounts))
    control(s, "mutate", {"division": B, "op": "delete", "ids": [gone]}).raise_for_status()
    assert control(s, "purge-deleted", {"division": A, "older_than_seconds": 0}).json() == {"purged": 0}
    assert control(s, "purge-deleted", {"division": B, "older_than_seconds": 0}).json() == {"purged": 1}
    sampled = control(s, "records", {"division": B, "fields": ["Division"]}).json()["records"]
    assert {r["Division"] for r in sampled} == {B}
    unknown = control(s, "mutate", {"division": 999, "op": "add"})
    assert unknown.status_code == 400 and unknown.json()["error"].startswith(
        f"unknown division 999: the sandbox serves {A}, {B}"
    )


def test_a_divisions_limits_can_be_set_while_it_runs(sandbox):
    s = sandbox(size=5, companies=2)
    access = refresh(s, "sandbox-refresh-token-0").json()["access_token"]
    assert control(s, "limits", {"division": B, "minutely_limit": 100}).status_code == 200
    b, a = get(s, B, "sync/CRM/Accounts", access), get(s, A, "sync/CRM/Accounts", access)
    assert (b.headers["X-RateLimit-Minutely-Limit"], b.headers["X-RateLimit-Limit"]) == ("100", "5000")
    assert a.headers["X-RateLimit-Minutely-Limit"] == "60"
    bad = control(s, "limits", {"division": B, "daily_limit": -1})
    assert bad.status_code == 400 and "daily_limit must be a whole number" in bad.json()["error"]
    wrong = control(s, "config", {"users": {"x@example.nl": {"password": "p", "divisions": [999]}}})
    assert wrong.status_code == 400 and "not one the sandbox serves" in wrong.json()["error"]
    assert control(s, "config").json()["users"] == SandboxConfig().users  # nothing changed


def test_bad_division_settings_are_refused_at_the_start_with_the_reason():
    with pytest.raises(ValueError, match="companies must be a whole number of at least 1"):
        SandboxConfig(companies=0)
    with pytest.raises(ValueError, match="'sise' is not one of them"):
        SandboxConfig(divisions=[{"code": B, "sise": 5}])
    with pytest.raises(ValueError, match="same initial_refresh_token"):
        SandboxConfig(users={"x@example.nl": {"password": "p", "initial_refresh_token": "sandbox-refresh-token-0"}})


def test_every_division_is_saved_and_read_back_on_first_use(sandbox, tmp_path):
    cfg = {"size": 10, "companies": 3, "users": USERS, "min_token_interval": 0}
    first = sandbox(**cfg)
    control(first, "mutate", {"division": B, "op": "add", "records": [{"Name": "Alleen in B"}]}).raise_for_status()
    bob = refresh(first, "bob-refresh-token-0").json()
    path = tmp_path / "sandbox.pickle"
    first.state.save(path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"sandbox.division-{A}.pickle", f"sandbox.division-{B}.pickle", "sandbox.pickle"]  # C: unused
    b_file = tmp_path / f"sandbox.division-{B}.pickle"
    written = b_file.stat().st_mtime_ns
    first.state.save(path)
    assert b_file.stat().st_mtime_ns == written  # unchanged since: not written again
    second = sandbox(**cfg)
    assert second.state.load(path) and built(second) == {A: False, B: False, C: False}
    access = refresh(second, bob["refresh_token"]).json()["access_token"]  # bob's chain came back
    assert refresh(second, "sandbox-refresh-token-0").status_code == 200
    names = {r["Name"] for r in second.state.data_of(B).accounts.values()}
    assert "Alleen in B" in names and built(second) == {A: False, B: True, C: False}
    assert rows(get(second, C, "sync/CRM/Accounts", access))  # never saved: built on first use


def test_a_state_file_of_the_single_division_sandbox_is_read(sandbox, tmp_path):
    """A file written before several divisions holds the division itself: a restart keeps it."""
    first = sandbox(size=10)
    control(first, "mutate", {"op": "add", "records": [{"Name": "Van voor #21"}]}).raise_for_status()
    old = {"division": first.state.division, "chains": first.state.chains, "codes": {}, "access_tokens": {}}
    (tmp_path / "sandbox.pickle").write_bytes(pickle.dumps({**old, "access_chain": {}}))
    second = sandbox(size=10, companies=2)
    assert second.state.load(tmp_path / "sandbox.pickle")
    assert "Van voor #21" in {r["Name"] for r in second.state.division.accounts.values()}
    second.state.save(tmp_path / "sandbox.pickle")
    assert os.path.exists(tmp_path / f"sandbox.division-{A}.pickle")


# ---- through the real hook ---------------------------------------------------------------------------------------
class OneChainPerConsent:
    """The token store of one consent, whichever division a hook asks it for: the hook keys its chain by app and
    division (`ExactOnlineHook.chain_key`), while Exact has one chain per consent (user) for all its divisions."""

    def __init__(self, store):
        self.store = store

    def _key(self, key: str) -> str:
        return key.split("/")[0] + "/consent"

    def peek(self, key):
        return self.store.peek(self._key(key))

    def locked(self, key):
        return self.store.locked(self._key(key))

    def discard(self, key):
        return self.store.discard(self._key(key))


def test_the_hook_reads_two_divisions_one_after_the_other_on_one_token_chain(sandbox, fake_time, monkeypatch):
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import MemoryTokenStore

    s = sandbox(size=40, companies=2)
    for name, division in (("EXACT_A", A), ("EXACT_B", B)):
        extra = {"division": division, "refresh_token": "sandbox-refresh-token-0", "backoff_seconds": 0.05}
        conn = {"conn_type": "http", "host": s.url, "login": CLIENT["client_id"], "password": CLIENT["client_secret"]}
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps({**conn, "extra": extra}))
    store = OneChainPerConsent(MemoryTokenStore())

    def read(conn_id: str) -> tuple[list[dict], ExactOnlineHook]:
        hook = ExactOnlineHook(conn_id, token_store=store, clock=fake_time.clock, sleep=fake_time.sleep)
        return [r for page in hook.sync("sync/CRM/Accounts", ["ID", "Division"], 1) for r in page], hook

    a, hook_a = read("exact_a")
    b, hook_b = read("exact_b")
    assert {r["Division"] for r in a} == {A} and {r["Division"] for r in b} == {B} and len(a) == len(b) == 41
    assert (hook_a.stats.token_calls, hook_b.stats.token_calls) == (1, 0)  # B used the token A's refresh brought
    assert hook_a.rate.minutely_remaining == hook_b.rate.minutely_remaining == 59  # each division its own budget
    fake_time.advance(600)  # the access token has expired: whoever reads next refreshes, for both divisions
    b_again, hook_b = read("exact_b")
    a_again, hook_a = read("exact_a")
    assert (hook_b.stats.token_calls, hook_a.stats.token_calls) == (1, 0) and a_again == a and b_again == b
    (chain,) = control(s, "token-chains").json()["chains"]
    assert chain["old_count"] == 2 and control(s, "stats").json()["token_calls"] == {"ok": 2}
