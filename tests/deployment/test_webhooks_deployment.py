"""Exact webhooks under `make airflow` (#22): the sandbox sends signed events to the receiver in the real api-server,
the relay turns them into asset events, and the scheduler runs the category on `AssetOrTimeSchedule(cron, assets)`.

The safety net is every 6 hours here, so every import that follows a change within a minute was started by an event.
Shares the session's deployment (Deployment.reuse; its debounce is 20 s, FAST). The module's tests run in order and
build on each other. Written for a loaded machine: REST calls get the deployment's long read timeout, waits poll with
a deadline (never a fixed sleep), and runs are counted with one call (`total_entries`), not by listing them.
`WEBHOOK_LATENCY_CHANGES=20` measures the README's median and worst of 20 changes (default 4, to keep `make test` lean).
"""

from __future__ import annotations

import math
import os
import statistics
import time
import uuid

import pytest
import requests

from tests.helpers.deployment import FAST, SETTINGS, Deployment, processes_of

SAFETY_NET = "0 */6 * * *"
WEBHOOKS = {**SETTINGS, "schedule": SAFETY_NET, "categories": {"relations": {"enabled": True}}}
PAGE = "/exact-online-imports"
DAG_RUNS = "/dags/exact_online_import_relations/dagRuns"
LATENCY_LIMIT = 60.0
DEBOUNCE_IN_TESTS = float(FAST["AIRFLOW__EXACT_ONLINE__WEBHOOK_DEBOUNCE_SECONDS"])
CHANGES = int(os.environ.get("WEBHOOK_LATENCY_CHANGES", "4"))
ACCOUNTS_NEEDED = CHANGES + 3  # the latency test's, then a forged, a lost and a restart's change


@pytest.fixture(scope="module")
def deployment(airflow_stack: Deployment):
    airflow_stack.reuse(WEBHOOKS)
    # Enabling the category starts its most recent 6-hourly fire at once (catchup=False): let it finish first.
    airflow_stack.wait_for("no run of relations active", lambda: run_count(airflow_stack, active=True) == 0, 600, 3)
    # The tests change relations that are already in OutSmart: import them first unless an earlier run did.
    if len(some_accounts(airflow_stack, ACCOUNTS_NEEDED)) < ACCOUNTS_NEEDED:
        first = airflow_stack.trigger("relations")
        assert airflow_stack.wait_run("relations", first, timeout=600)["state"] == "success"
    airflow_stack.sandbox(
        "webhooks", {"delay_seconds": 1.0, "loss_rate": 0, "duplicate_rate": 0, "wrong_secret": False}
    )
    answer = page_post(airflow_stack, "/api/webhooks/subscriptions", {"company": "default"})
    assert answer.status_code == 200, answer.text
    view = page_get(airflow_stack, "/api/webhooks")
    (company,) = view["companies"]
    assert {t["topic"]: t["state"] for t in company["topics"]} == {"Accounts": "subscribed", "Contacts": "subscribed"}
    assert company["secret_set"] is True and "secret" not in str(view).replace("secret_set", "")
    airflow_stack.wait_for(
        "Exact's validation POSTs answered",
        lambda: airflow_stack.sandbox("webhooks")["stats"].get("validation_200", 0) >= 2,
        timeout=120,
    )
    return airflow_stack


def page_get(dep: Deployment, path: str) -> dict:
    r = requests.get(
        dep.url + PAGE + path, headers={"Authorization": f"Bearer {dep.token()}"}, timeout=dep.rest_timeout
    )
    r.raise_for_status()
    return r.json()


def page_post(dep: Deployment, path: str, body: dict):
    headers = {"Authorization": f"Bearer {dep.token()}", "X-Exact-Online-Page": "1"}
    return requests.post(dep.url + PAGE + path, json=body, headers=headers, timeout=dep.rest_timeout)


def run_count(dep: Deployment, run_type: str | None = None, active: bool = False) -> int:
    """How many runs of relations (of a run type; only queued or running ones), from one call's `total_entries`."""
    params: dict = {"limit": 1}
    if run_type:
        params["run_type"] = run_type
    if active:
        params["state"] = ["queued", "running"]
    return dep.api("GET", DAG_RUNS, params=params)["total_entries"]


def asset_runs(dep: Deployment) -> int:
    return run_count(dep, "asset_triggered")


def settled(dep: Deployment) -> bool:
    """Every event delivered and relayed, no asset event waiting for a run, no run queued or running."""
    return (
        dep.sandbox("webhooks")["pending"] == 0
        and dep.outsmart("SELECT count(*) FROM exact_online.webhook_inbox WHERE relayed_at IS NULL")[0][0] == 0
        and dep.api("GET", "/dags/exact_online_import_relations/assets/queuedEvents")["total_entries"] == 0
        and run_count(dep, active=True) == 0
    )


def events_answered(dep: Deployment) -> int:
    return dep.sandbox("webhooks")["stats"].get("event_200", 0)


def some_accounts(dep: Deployment, count: int) -> list[str]:
    """Accounts already imported (the relations' filter takes them), as the sandbox spells their IDs."""
    if not dep.outsmart("SELECT to_regclass('outsmart.relations') IS NOT NULL")[0][0]:
        return []  # no import of relations yet in this deployment
    imported = {r[0].lower() for r in dep.outsmart("SELECT exact_id::text FROM outsmart.relations")}
    rows = dep.sandbox("records", {"entity": "accounts", "every": 3, "fields": ["ID"]})["records"]
    return [r["ID"] for r in rows if r["ID"].lower() in imported][:count]


def rename(dep: Deployment, account_id: str) -> str:
    name = f"Webhook {uuid.uuid4().hex[:8]}"
    dep.sandbox("mutate", {"entity": "accounts", "op": "update", "records": [{"ID": account_id, "Name": name}]})
    return name


def name_in_outsmart(dep: Deployment, account_id: str) -> str | None:
    rows = dep.outsmart("SELECT name FROM outsmart.relations WHERE exact_id::text = %s", (account_id.lower(),))
    return rows[0][0] if rows else None


def inbox_mark(dep: Deployment) -> int:
    """The inbox's last row id: what arrives later has a higher one (the shared deployment keeps earlier events)."""
    return dep.outsmart("SELECT coalesce(max(id), 0) FROM exact_online.webhook_inbox")[0][0]


def inbox_rows(dep: Deployment, key: str, after: int) -> int:
    return dep.outsmart(
        "SELECT count(*) FROM exact_online.webhook_inbox WHERE record_key = %s AND id > %s", (key.lower(), after)
    )[0][0]


def test_a_change_reaches_outsmart_within_a_minute_and_a_duplicate_changes_nothing(deployment, figure):
    accounts = some_accounts(deployment, CHANGES)
    latencies = []
    for i, account_id in enumerate(accounts):
        duplicate = i == len(accounts) - 1  # the last change's event is delivered twice
        deployment.sandbox("webhooks", {"duplicate_rate": 1.0 if duplicate else 0.0})
        before, answered, mark = asset_runs(deployment), events_answered(deployment), inbox_mark(deployment)
        started = time.monotonic()
        name = rename(deployment, account_id)
        deployment.wait_for(
            f"{name} in OutSmart", lambda a=account_id, n=name: name_in_outsmart(deployment, a) == n, 240, every=0.5
        )
        latencies.append(time.monotonic() - started)
        if duplicate:  # both copies answered 200: one inbox row
            deployment.wait_for("both copies delivered", lambda a=answered: events_answered(deployment) >= a + 2, 60)
            assert inbox_rows(deployment, account_id, mark) == 1
        deployment.wait_for("the run to finish and nothing waiting", lambda: settled(deployment), 300, every=2)
        assert asset_runs(deployment) == before + 1  # started by the event (not the 6-hourly cron); the copy: none
    deployment.sandbox("webhooks", {"duplicate_rate": 0.0})
    figure(
        f"webhooks: a change in the sandbox in OutSmart after median {statistics.median(latencies):.1f} s, "
        f"worst {max(latencies):.1f} s ({len(latencies)} changes, safety net {SAFETY_NET}): "
        + ", ".join(f"{s:.0f}" for s in latencies)
    )
    assert max(latencies) <= LATENCY_LIMIT


def test_a_burst_of_1000_events_is_a_few_runs(deployment, figure):
    before, answered = asset_runs(deployment), events_answered(deployment)
    started = time.monotonic()
    queued = deployment.sandbox("webhook-burst", {"entity": "accounts", "count": 1000})["queued"]
    assert queued == 1000
    deployment.wait_for("the burst answered", lambda: events_answered(deployment) >= answered + 1000, 300, every=2)
    delivered = time.monotonic() - started
    deployment.wait_for("the burst relayed and run", lambda: settled(deployment), 600, every=3)
    runs = asset_runs(deployment) - before
    figure(f"webhooks: 1,000 events in a burst (delivered in {delivered:.0f} s) -> {runs} asset-triggered runs")
    # a relay at the first event, then at most one per debounce interval while the burst arrives (runs coalesce
    # further: max_active_runs 1); a few runs, not 1,000
    assert 1 <= runs <= min(6, 1 + math.ceil(delivered / DEBOUNCE_IN_TESTS))


def test_a_forged_and_a_lost_event_start_nothing_and_the_safety_net_reads_both(deployment):
    forged_id, lost_id = some_accounts(deployment, ACCOUNTS_NEEDED)[CHANGES : CHANGES + 2]
    before, scheduled = asset_runs(deployment), run_count(deployment, "scheduled")
    stats = deployment.sandbox("webhooks")["stats"]
    refused, lost, mark = stats.get("event_401", 0), stats.get("lost", 0), inbox_mark(deployment)
    deployment.sandbox("webhooks", {"wrong_secret": True})
    forged_name = rename(deployment, forged_id)
    deployment.wait_for(
        "the forged event refused",
        lambda: deployment.sandbox("webhooks")["stats"].get("event_401", 0) > refused,
        60,
        every=0.5,
    )
    deployment.sandbox("webhooks", {"wrong_secret": False, "loss_rate": 1.0})
    lost_name = rename(deployment, lost_id)
    assert deployment.sandbox("webhooks")["stats"].get("lost", 0) == lost + 1  # dropped by "Exact", never sent
    deployment.sandbox("webhooks", {"loss_rate": 0.0})
    assert inbox_rows(deployment, forged_id, mark) == 0 and inbox_rows(deployment, lost_id, mark) == 0
    assert settled(deployment) and asset_runs(deployment) == before
    assert name_in_outsmart(deployment, forged_id) != forged_name
    assert name_in_outsmart(deployment, lost_id) != lost_name
    # The safety net: the next cron fire (every minute for this once, instead of waiting 6 hours) reads both.
    deployment.set_settings({**WEBHOOKS, "schedule": "* * * * *"})
    try:
        deployment.wait_for(
            "the safety net to read both changes",
            lambda: (
                (name_in_outsmart(deployment, forged_id), name_in_outsmart(deployment, lost_id))
                == (forged_name, lost_name)
            ),
            300,
            every=3,
        )
    finally:
        deployment.set_settings(WEBHOOKS)
    assert run_count(deployment, "scheduled") > scheduled, "read by a scheduled run"
    assert asset_runs(deployment) == before  # the refused and the lost event started nothing
    deployment.wait_for(
        "the schedule back to 6-hourly", lambda: "0 */6" in deployment.dag("relations")["description"], 300, 3
    )
    deployment.wait_for("the runs to finish", lambda: run_count(deployment, active=True) == 0, 300, 3)


def test_events_in_the_inbox_survive_a_restart(deployment):
    """The receiver committed an event and Airflow went down before the relay turned it into an asset event: after
    the restart the relay's start-up sweep takes it, and the change reaches OutSmart with no further delivery."""
    account_id = some_accounts(deployment, ACCOUNTS_NEEDED)[CHANGES + 2]
    before = asset_runs(deployment)
    deployment.sandbox("webhooks", {"loss_rate": 1.0})  # Exact's delivery is the inbox row written below
    name = rename(deployment, account_id)
    deployment.sandbox("webhooks", {"loss_rate": 0.0})
    # What the receiver commits before its 2xx; the relay thread sweeps every 30 s, so the stop comes first.
    ((row_id,),) = deployment.outsmart(
        "INSERT INTO exact_online.webhook_inbox (company, division, topic, action, record_key, event_created_on) "
        "VALUES ('default', 3000001, 'Accounts', 'Update', %s, '2026-12-07T10:00:00.000') RETURNING id",
        (account_id.lower(),),
    )
    deployment.stop()
    # the launcher has exited; its PostgreSQL may still be writing its shutdown checkpoint on a loaded machine
    deployment.wait_for("the stopped deployment's processes gone", lambda: not processes_of(deployment.state_dir), 180)
    deployment.start()
    deployment.wait_for("the change in OutSmart", lambda: name_in_outsmart(deployment, account_id) == name, 300, 3)
    relayed = deployment.outsmart(
        "SELECT relayed_at IS NOT NULL FROM exact_online.webhook_inbox WHERE id = %s", (row_id,)
    )
    assert relayed == [(True,)]
    assert asset_runs(deployment) == before + 1
    deployment.wait_for("the run to finish", lambda: run_count(deployment, active=True) == 0, 300, 3)
