"""Reliability: the token chain under concurrency, lost token replies, expiry warnings, shared rate limits."""

from __future__ import annotations

import json
import sys
import time

import pytest
import requests

from exact_online.exceptions import ExactAuthError
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import PostgresTokenStore
from include.outsmart_import.registry import CATEGORIES
from tests.helpers.e2e import (
    HELPERS,
    all_enabled,
    mutate,
    run_dag,
    run_dags_in_processes,
    sandbox_stats,
    set_config,
    set_faults,
)
from tests.helpers.waiting import StartLine, wait_until


def test_token_chain_eight_processes_hundred_attempts(sandbox_factory, target_db, tmp_path, figure):
    # Exact's rules scaled down: access tokens live 1.5 s, a new one no sooner than 1.0 s after the last.
    server = sandbox_factory(
        size=5,
        access_token_lifetime=1.5,
        min_token_interval=1.0,
        extra={"token_refresh_margin": 0.3, "token_min_interval": 1.0},
    )
    processes, rounds = 8, 13
    line = StartLine(tmp_path / "start")  # every process imports airflow first, then all start together
    for i in range(processes):
        line.start(
            f"worker{i}",
            [
                sys.executable,
                str(HELPERS / "token_worker.py"),
                target_db.conninfo,
                str(line.folder),
                str(rounds),
                "0.25",
            ],
        )
    line.release(timeout=240)
    results = []
    for name in line.procs:
        code, out, err = line.finish(name, timeout=240)
        assert code == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    token_calls = sandbox_stats(server)["token_calls"]
    attempts = processes * rounds
    errors = [e for r in results for e in r["errors"]]
    figure(
        f"{processes} processes, {attempts} token attempts, {sum(r['calls'] for r in results)} API calls; "
        f"token endpoint: {token_calls}"
    )
    assert attempts >= 100 and errors == []
    assert token_calls.get("old_refresh_token", 0) == 0 and token_calls.get("too_early", 0) == 0
    assert token_calls["ok"] >= 3
    # The chain is still valid: a new process can refresh from what is stored.
    stored = PostgresTokenStore.from_conninfo(target_db.conninfo).peek(f"sandbox-client/{server.state.config.division}")
    chain = requests.get(server.url + "/_sandbox/token-chain", timeout=5).json()
    assert stored.refresh_token == chain["refresh_token"]
    # Wait out the stored access token on purpose (its lifetime in the sandbox; the hook only sees it rounded down
    # to whole seconds): then a new hook has to refresh from the stored chain.
    expires = server.state.access_tokens[stored.access_token]
    wait_until(lambda: time.time() > expires, 10, "the stored access token to expire", every=0.05)
    hook = ExactOnlineHook(token_store=PostgresTokenStore.from_conninfo(target_db.conninfo))
    hook.me()
    assert sandbox_stats(server)["token_calls"]["ok"] == token_calls["ok"] + 1


def test_lost_token_reply_asks_for_reauthorisation_without_a_loop(sandbox_factory, target_db, figure):
    server = sandbox_factory(size=5)
    set_faults(server, lose_next_token_reply=True)
    hook = ExactOnlineHook(token_store=PostgresTokenStore.from_conninfo(target_db.conninfo))
    with pytest.raises(ExactAuthError) as err:
        hook.me()
    calls = sandbox_stats(server)["token_calls"]
    figure(f"token reply dropped after rotation; token endpoint saw {calls}; error: {str(err.value)[:90]}...")
    assert err.value.needs_reauthorisation and "reconnect on the settings page" in str(err.value)
    assert calls == {"ok": 1, "old_refresh_token": 1}


def test_refresh_token_near_expiry_is_reported_in_the_import_log(
    dags, sandbox_factory, target_db, settings_var, figure
):
    sandbox_factory(size=50)
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations")
    # Pretend the last refresh was 26 days ago (Exact: an unused refresh token dies after 30 days).
    target_db.query(
        "UPDATE exact_online.oauth_token_chain SET refresh_obtained_at = refresh_obtained_at - 26 * 86400 RETURNING 1"
    )
    run_dag(dags, "relations")
    note = target_db.scalar("SELECT notes FROM outsmart.import_log ORDER BY id DESC LIMIT 1")
    figure(f"import log note: {note}")
    assert note and "refresh token expires in 4." in note and "re-authorised" in note


def test_every_dag_at_once_shares_one_budget(sandbox_factory, target_db, settings_var, tmp_path, figure):
    """Every import DAG, each in its own process, started at the same moment against a small minutely budget."""
    server = sandbox_factory(size=400, minutely_limit=4, minute_seconds=2.0)
    settings_var(all_enabled())
    started = time.time()
    results, ready_after = run_dags_in_processes(tmp_path, [c.dag_id for c in CATEGORIES.values()])
    s = sandbox_stats(server)
    api_calls = sum(s["calls"].values())
    figure(
        f"{len(results)} DAG processes at once (all ready after {ready_after:.0f} s), {api_calls} API calls in "
        f"{time.time() - started - ready_after:.0f} s with 4 calls per 2 s window; "
        f"429s met: {s['statuses'].get('429', 0)}; 4xx: {s['client_errors']}"
    )
    failed = {d: r for d, r in results.items() if r["state"] != "success"}
    assert not failed, (
        failed,
        target_db.query("SELECT category, status, error FROM outsmart.import_log WHERE status <> 'success'"),
        [(tmp_path / f"{d}.out").read_text()[-1500:] for d in failed],
    )
    assert s["client_errors"] == {}  # no 400/401/403/404 at all
    statuses = target_db.query("SELECT status, count(*) FROM outsmart.import_log GROUP BY status")
    assert statuses == [("success", len(CATEGORIES))]
    # The shared budget kept every window within Exact's limit: the sandbox refused (429) at most a handful of
    # calls that raced for a window's last slot, and each was waited out, never a failed task.
    assert s["statuses"].get("429", 0) <= len(CATEGORIES)


# The relations' mark on their own stream: the highest landed_seq they have derived.
MARK = "SELECT landed_seq FROM outsmart.import_state WHERE category='relations' AND stream='sync/CRM/Accounts'"


def test_daily_budget_stops_cleanly_and_resumes_next_day(dags, sandbox_factory, target_db, settings_var, figure):
    server = sandbox_factory(size=2500, seed=7, daily_limit=10_000, day_seconds=15.0)
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations")
    watermark = target_db.scalar(MARK)
    snapshot = target_db.query("SELECT code, name, xmin::text FROM outsmart.relations ORDER BY code")
    accounts = list(server.state.division.accounts.values())
    mutate(
        server, entity="accounts", op="update", records=[{"ID": a["ID"], "Name": a["Name"] + " *"} for a in accounts]
    )
    # The "day" is 15 s here: start the second run early in a day, so that the day does not end during it.
    day_end = server.state._windows(time.time())[1]
    if day_end - time.time() < 10:
        time.sleep(day_end - time.time() + 0.1)  # waits out the sandbox's "day" on purpose
        requests.get(server.url + "/api/v1/current/Me", timeout=5)
    server.state.take_call()  # open today's window in the sandbox
    used = server.state.day_window[1]
    set_config(server, daily_limit=used + 1)  # one call left today
    _, states = run_dag(dags, "relations", expect=None)
    log = target_db.query("SELECT status, watermark_after, error FROM outsmart.import_log ORDER BY id DESC LIMIT 1")[0]
    assert states["import_relations"] == "skipped"  # a clean stop, not a failure
    assert log[0] == "stopped_daily_limit" and "daily Exact Online API budget" in log[2]
    assert target_db.query("SELECT code, name, xmin::text FROM outsmart.relations ORDER BY code") == snapshot
    assert target_db.scalar(MARK) == watermark
    # The next "day" (15 s here) the run resumes from the watermark it had.
    reset_ms = server.state.day_window[0] * 1000
    time.sleep(max(reset_ms / 1000 - time.time(), 0) + 0.2)  # waiting out the day IS the test: the budget resets
    set_config(server, daily_limit=10_000)
    run_dag(dags, "relations")
    row = target_db.query(
        "SELECT status, watermark_before, fetched, updated FROM outsmart.import_log ORDER BY id DESC LIMIT 1"
    )[0]
    figure(f"daily budget spent after 1 call: status {log[0]}, target and watermark unchanged; next day: {row}")
    assert row[0] == "success" and row[1] == watermark and row[2] == len(accounts) == 2501  # and the own account
    assert target_db.scalar("SELECT count(*) FROM outsmart.relations WHERE name LIKE '%% *'") == len(snapshot)
