"""ExactOnlineHook against the sandbox: tokens, paging, limits, retries, secrets."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pytest
import requests

from exact_online.exceptions import (
    ExactApiError,
    ExactAuthError,
    ExactDailyLimitReached,
    ExactReconnectRequired,
    ExactTransientError,
)
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import MemoryTokenStore, PostgresTokenStore, TokenRecord
from tests.helpers.fake_time import FakeTime
from tests.helpers.waiting import StartLine

WORKER = Path(__file__).resolve().parents[3] / "helpers" / "token_worker.py"
SELECT = ["ID", "Code", "Name"]


def stats(server) -> dict:
    return requests.get(server.url + "/_sandbox/stats", timeout=5).json()


def chain(server) -> dict:
    return requests.get(server.url + "/_sandbox/token-chain", timeout=5).json()


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    """One fake clock for the sandbox and the hook (see `timed_hook`): the hook's waits for a token interval or a
    rate-limit window take no real time, and each is recorded in `fake_time.sleeps`. Set up before the test starts
    its sandbox, so that the sandbox's token chain begins on the fake clock too."""
    from include.exact_sandbox import server

    fake = FakeTime()
    monkeypatch.setattr(server, "_now", fake.clock)
    return fake


def timed_hook(fake_time: FakeTime, **kwargs) -> ExactOnlineHook:
    kwargs.setdefault("token_store", MemoryTokenStore())
    return ExactOnlineHook(clock=fake_time.clock, sleep=fake_time.sleep, **kwargs)


def fetch_all(hook, endpoint="sync/CRM/Accounts") -> list[dict]:
    if endpoint.startswith("sync/"):
        pages = hook.sync(endpoint, SELECT, 1)
    else:
        pages = hook.collection(
            endpoint, SELECT, "Blocked eq false or Blocked eq true".replace(" or Blocked eq true", "")
        )
    return [r for page in pages for r in page]


def test_session_sends_no_credentials_and_no_extras(sandbox_factory):
    sandbox_factory(size=5, extra={"token_min_interval": 570})
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    session = hook.get_conn()
    assert session.auth is None  # the client id and secret go to the token endpoint only, in its form
    assert hook.extras and not set(hook.extras) & set(session.headers)
    assert session.headers["Accept"] == "application/json"
    assert hook.get_conn() is session  # one session (one connection pool) for all the hook's calls


def test_paging_follows_next_and_counts_calls(sandbox_factory):
    server = sandbox_factory(size=2345)
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    rows = fetch_all(hook)
    # 2,345 generated accounts and the division's own one
    assert len(rows) == 2346 and len({r["ID"] for r in rows}) == 2346
    assert hook.stats.api_calls == 3  # 1,000 per sync page
    assert stats(server)["calls"]["sync/CRM/Accounts"] == 3
    regular = [r for p in hook.collection("crm/Accounts", SELECT, "Blocked eq false") for r in p]
    assert 0 < len(regular) < 2345 and stats(server)["calls"]["crm/Accounts"] == -(-len(regular) // 60)


def test_token_rotation_is_persisted_before_use(sandbox_factory, target_db):
    server = sandbox_factory(size=5)
    store = PostgresTokenStore.from_conninfo(target_db.conninfo)
    hook = ExactOnlineHook(token_store=store)
    hook.me()
    key = hook.chain_key
    stored = store.peek(key)
    assert stored.refresh_token == chain(server)["refresh_token"] != "sandbox-refresh-token-0"
    assert stored.refreshes == 1
    # A second hook (a later task) reuses the stored access token: no second token call.
    other = ExactOnlineHook(token_store=store)
    other.me()
    assert other.stats.token_calls == 0
    assert stats(server)["token_calls"] == {"ok": 1}


@pytest.mark.slow  # two fresh interpreters importing Airflow
def test_two_processes_refreshing_at_once_lose_no_token(sandbox_factory, target_db, tmp_path):
    server = sandbox_factory(
        size=5,
        access_token_lifetime=1.5,
        min_token_interval=1.0,
        extra={"token_refresh_margin": 0.3, "token_min_interval": 1.0},
    )
    line = StartLine(tmp_path / "start")  # both processes import airflow first, then start together
    for i in range(2):
        line.start(f"worker{i}", [sys.executable, str(WORKER), target_db.conninfo, str(line.folder), "12", "0.3"])
    line.release(timeout=120)
    results = []
    for name in line.procs:
        code, out, err = line.finish(name, timeout=120)
        assert code == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    token_calls = stats(server)["token_calls"]
    print(f"\n2 processes, {sum(r['calls'] for r in results)} API calls, token endpoint: {token_calls}")
    assert all(r["errors"] == [] for r in results), results
    assert token_calls.get("old_refresh_token", 0) == 0
    assert token_calls.get("too_early", 0) == 0  # the 570 s rule (scaled to 1 s) was never broken
    assert token_calls["ok"] >= 3  # the chain rotated several times during the run
    stored = PostgresTokenStore.from_conninfo(target_db.conninfo).peek(f"sandbox-client/{server.state.config.division}")
    assert stored.refresh_token == chain(server)["refresh_token"]  # the chain is still alive


def test_never_refreshes_within_the_minimum_interval(sandbox_factory, fake_time):
    server = sandbox_factory(
        size=5,
        access_token_lifetime=0.5,
        min_token_interval=1.0,
        extra={"token_refresh_margin": 0.1, "token_min_interval": 1.0},
    )
    hook = timed_hook(fake_time)
    step = 0.07  # a call's round trip; the 7th call (at 0.42 s) is the first past the 0.4 s refresh margin
    start, refreshed_at = fake_time.now, []
    while fake_time.now < start + 3.5:
        hook.me()
        if hook._access.access_obtained_at not in refreshed_at:
            refreshed_at.append(hook._access.access_obtained_at)
        fake_time.advance(step)
    token_calls = stats(server)["token_calls"]
    assert token_calls == {"ok": len(refreshed_at)} and len(refreshed_at) >= 4  # never "too_early"
    # Each token was renewed as soon as the 1 s minimum allowed, never sooner: the hook waited out the rest of the
    # interval (1 - 0.42 s) instead of calling the token endpoint early.
    gaps = [b - a for a, b in zip(refreshed_at, refreshed_at[1:], strict=False)]
    assert refreshed_at[0] == start and gaps == pytest.approx([1.0] * len(gaps), abs=1e-6)
    assert fake_time.sleeps == pytest.approx([1.0 - 6 * step] * len(gaps), abs=1e-6)


def test_429_waits_for_the_minutely_reset(sandbox_factory, fake_time):
    server = sandbox_factory(size=600, minutely_limit=5, minute_seconds=2.0)
    store = MemoryTokenStore()  # one token chain, shared as in production
    hook = timed_hook(fake_time, token_store=store, rng=lambda: 0.5)
    token = hook.get_access_token()
    # Another client spends this window's budget, so the hook's first call meets a 429 it could not foresee.
    url = hook._url("crm/Accounts", {"$select": "ID", "$filter": "Blocked eq false"})
    while requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code != 429:
        pass
    requests.post(server.url + "/_sandbox/reset-stats", timeout=5)
    start = fake_time.now  # a window starts here (FakeTime starts on a whole minute)
    rows = [r for p in hook.collection("crm/Accounts", SELECT, "Blocked eq false") for r in p]
    assert len(rows) > 60 * 5  # more pages than one window allows
    s = stats(server)
    assert s["statuses"]["429"] >= 1
    api = [r for r in s["requests"] if r[1].startswith("/api/v1/3000001/")]
    assert api[0][2] == 429  # its first call was refused ...
    assert hook.stats.rate_limit_sleeps >= 2  # ... it waited for the reset, and later paced itself by the headers
    assert s["client_errors"] == {}
    # Every wait ended just after a reset of the 2 s window: the 0.05 s margin plus the spread (rng 0.5: half of
    # RESET_SPREAD_SECONDS), never before it and never a whole window late.
    assert len(fake_time.sleeps) == hook.stats.rate_limit_sleeps
    assert sum(fake_time.sleeps) == pytest.approx(hook.stats.seconds_waited_for_limits)
    woke, now = [], start
    for wait in fake_time.sleeps:
        now += wait
        woke.append(now - start)
    assert woke == pytest.approx([2.0 * (i + 1) + 0.05 + 0.125 for i in range(len(woke))], abs=1e-3)


def test_5xx_and_dropped_connections_are_retried(sandbox_factory, fake_time):
    server = sandbox_factory(size=3000)
    requests.post(server.url + "/_sandbox/faults", json={"error_rate": 0.15, "drop_rate": 0.1, "seed": 3}, timeout=5)
    hook = timed_hook(fake_time, rng=lambda: 0.0)  # every backoff is the lower bound of its step: half the step
    rows = fetch_all(hook)
    assert len(rows) == len(server.state.division.accounts) == 3001  # and the division's own account
    regular = [r for p in hook.collection("crm/Accounts", SELECT, "Blocked eq false") for r in p]  # ~46 pages
    assert len(regular) == sum(1 for a in server.state.division.accounts.values() if not a["Blocked"])
    injected = stats(server)["faults_injected"]
    assert injected["error"] >= 1 and injected["drop"] >= 1
    assert hook.stats.retries == injected["error"] + injected["drop"]
    # One backoff per retry, each half an exponential step of the connection's backoff_seconds (0.05 s), and the
    # first step for most: consecutive faults on one call are rarer.
    half_steps = [0.025 * 2**i for i in range(5)]  # max_attempts 6: at most five waits for one call
    assert len(fake_time.sleeps) == hook.stats.retries and hook.stats.rate_limit_sleeps == 0
    assert all(any(w == pytest.approx(h) for h in half_steps) for w in fake_time.sleeps)
    assert fake_time.sleeps.count(pytest.approx(0.025)) > len(fake_time.sleeps) / 2
    print(f"\nfaults injected {injected}, retries {hook.stats.retries}")


def test_a_caller_who_waits_sets_fewer_attempts_than_the_connections(sandbox_factory, fake_time):
    """The settings page's hooks try twice (PAGE_MAX_ATTEMPTS) where an import's tries the connection's six: a
    failing Exact is said after one backoff, not a minute of them."""
    server = sandbox_factory(size=5)
    requests.post(server.url + "/_sandbox/faults", json={"error_rate": 1.0, "seed": 1}, timeout=5)
    store = MemoryTokenStore()  # one token chain for both hooks, as the page's and the import's share one
    for attempts, hook in (
        (2, timed_hook(fake_time, max_attempts=2, token_store=store)),
        (6, timed_hook(fake_time, token_store=store)),
    ):
        before = stats(server)["calls"].get("crm/Accounts", 0)
        fake_time.sleeps.clear()
        with pytest.raises(ExactTransientError) as err:
            fetch_all(hook, "crm/Accounts")
        assert err.value.status >= 500
        assert stats(server)["calls"]["crm/Accounts"] - before == attempts
        assert len(fake_time.sleeps) == attempts - 1


@pytest.mark.parametrize(
    ("endpoint", "params", "status"),
    [
        ("sync/CRM/Accounts", {"$select": "ID,NoSuchField", "$filter": "Timestamp gt 1L"}, 400),
        ("crm/Accounts", {"$select": "ID"}, 400),  # mandatory filtering
        ("crm/NoSuchThing", {"$select": "ID"}, 404),
    ],
)
def test_client_errors_are_not_retried(sandbox_factory, endpoint, params, status):
    server = sandbox_factory(size=5)
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    with pytest.raises(ExactApiError) as err:
        list(hook.iter_pages(endpoint, params))
    assert err.value.status == status
    assert stats(server)["calls"][endpoint] == 1


def test_401_and_403_are_not_retried(sandbox_factory):
    server = sandbox_factory(size=5)
    store = MemoryTokenStore()
    hook = ExactOnlineHook(token_store=store)
    with store.locked(hook.chain_key) as (_, save):
        from exact_online.token_store import seed_hash

        save(
            TokenRecord(
                seed_hash("sandbox-refresh-token-0"),
                "sandbox-refresh-token-0",
                time.time(),
                access_token="forged",
                access_obtained_at=time.time(),
                access_expires_at=time.time() + 600,
            )
        )
    with pytest.raises(ExactApiError) as err:
        fetch_all(hook)
    assert err.value.status == 401
    assert stats(server)["calls"]["sync/CRM/Accounts"] == 1

    # The connection names a division the user has no access to.
    server = sandbox_factory(size=5, division=999, extra={"division": 3_000_001})
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    with pytest.raises(ExactApiError) as err:
        fetch_all(hook)
    assert err.value.status == 403 and err.value.reason == "NoDivisionAccess"
    assert stats(server)["calls"]["sync/CRM/Accounts"] == 1


def test_daily_budget_stops_cleanly(sandbox_factory):
    server = sandbox_factory(size=5000, daily_limit=2)
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    with pytest.raises(ExactDailyLimitReached) as err:
        fetch_all(hook)
    assert "resets at" in str(err.value)
    assert stats(server)["calls"]["sync/CRM/Accounts"] == 2  # it stopped before a call that would be refused


def test_reused_refresh_token_asks_for_reauthorisation(sandbox_factory):
    server = sandbox_factory(size=5)
    requests.post(server.url + "/_sandbox/faults", json={"lose_next_token_reply": True}, timeout=5)
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    with pytest.raises(ExactReconnectRequired) as err:  # an ExactAuthError: the import fails without retries
        hook.me()
    assert isinstance(err.value, ExactAuthError) and err.value.needs_reauthorisation
    assert str(err.value).startswith("Exact Online refused the connection ('Old refresh token used': ")
    assert str(err.value).endswith("reconnect on the settings page (Exact imports, in Airflow's navigation).")
    assert stats(server)["token_calls"] == {"ok": 1, "old_refresh_token": 1}  # one retry, no loop


def test_no_secret_in_logs_or_errors(sandbox_factory, caplog):
    server = sandbox_factory(size=1500)
    caplog.set_level(logging.DEBUG)
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    rows = fetch_all(hook)
    with pytest.raises(ExactApiError) as err:
        list(hook.iter_pages("sync/CRM/Accounts", {"$select": "Nope", "$filter": "Timestamp gt 1L"}))
    secrets = [
        server.state.config.client_secret,
        hook._access.access_token,
        hook._access.refresh_token,
        "sandbox-refresh-token-0",
    ]
    text = caplog.text + str(err.value) + repr(hook._access) + json.dumps(rows)
    assert len(rows) == 1501  # 1,500 and the division's own account
    for secret in secrets:
        assert secret not in text


def test_division_details_asks_system_divisions_for_this_division_only(sandbox_factory):
    server = sandbox_factory(size=5)
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    details = hook.division_details()
    assert details == {
        "Code": hook.division,
        "Description": "Installatiebedrijf De Sandbox B.V.",
        "Currency": "EUR",
        "DivisionMoveDate": None,
    }
    assert hook.stats.api_calls == 1
    (_, path, status) = stats(server)["requests"][-1]
    assert status == 200 and path.startswith(f"/api/v1/{hook.division}/system/Divisions?")
    assert f"$filter=Code%20eq%20{hook.division}" in path and "DivisionMoveDate" in path
    requests.post(server.url + "/_sandbox/move-division", json={}, timeout=5).raise_for_status()
    assert hook.division_details(("DivisionMoveDate",))["DivisionMoveDate"].startswith("/Date(")
