"""Exact webhooks under `make airflow` (#22): the sandbox sends signed events to the receiver in the real api-server,
the relay turns them into asset events, and the scheduler runs the category on `AssetOrTimeSchedule(cron, assets)`.

The safety net is every 6 hours here, so every import that follows a change within a minute was started by an event.
Shares the session's deployment (Deployment.reuse). The module's tests run in order and build on each other.
"""

from __future__ import annotations

import statistics
import time
import uuid

import pytest
import requests

from tests.helpers.deployment import SETTINGS, Deployment

SAFETY_NET = "0 */6 * * *"
WEBHOOKS = {**SETTINGS, "schedule": SAFETY_NET, "categories": {"relations": {"enabled": True}}}
PAGE = "/exact-online-imports"
LATENCY_LIMIT = 60.0


@pytest.fixture(scope="module")
def deployment(airflow_stack: Deployment):
    airflow_stack.reuse(WEBHOOKS)
    # Enabling the category starts its most recent 6-hourly fire at once (catchup=False): let it finish first.
    airflow_stack.wait_for("no run of relations active", lambda: not active_runs(airflow_stack), timeout=300)
    # The tests change relations that are already in OutSmart: import them first (a manual run).
    first = airflow_stack.trigger("relations")
    assert airflow_stack.wait_run("relations", first)["state"] == "success"
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
        timeout=30,
    )
    return airflow_stack


def page_get(dep: Deployment, path: str) -> dict:
    r = requests.get(dep.url + PAGE + path, headers={"Authorization": f"Bearer {dep.token()}"}, timeout=60)
    r.raise_for_status()
    return r.json()


def page_post(dep: Deployment, path: str, body: dict):
    headers = {"Authorization": f"Bearer {dep.token()}", "X-Exact-Online-Page": "1"}
    return requests.post(dep.url + PAGE + path, json=body, headers=headers, timeout=60)


def active_runs(dep: Deployment) -> list:
    runs = dep.api("GET", "/dags/exact_online_import_relations/dagRuns", params={"state": ["queued", "running"]})
    return runs["dag_runs"]


def asset_runs(dep: Deployment) -> list[dict]:
    """The runs Exact's events started (filtered here: the REST filter `run_type=asset_triggered` returned none)."""
    runs = dep.api("GET", "/dags/exact_online_import_relations/dagRuns", params={"limit": 1000})["dag_runs"]
    return [r for r in runs if r["run_type"] == "asset_triggered" or r["dag_run_id"].startswith("asset_triggered__")]


def some_accounts(dep: Deployment, count: int) -> list[str]:
    """Accounts already imported (the relations' filter takes them), as the sandbox spells their IDs."""
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


def inbox_rows(dep: Deployment, key: str) -> int:
    return dep.outsmart("SELECT count(*) FROM exact_online.webhook_inbox WHERE record_key = %s", (key.lower(),))[0][0]


def test_a_change_reaches_outsmart_within_a_minute_and_a_duplicate_changes_nothing(deployment, figure):
    accounts = some_accounts(deployment, 4)
    latencies = []
    for i, account_id in enumerate(accounts):
        duplicate = i == len(accounts) - 1  # the last change's event is delivered twice
        deployment.sandbox("webhooks", {"duplicate_rate": 1.0 if duplicate else 0.0})
        before = len(asset_runs(deployment))
        started = time.monotonic()
        name = rename(deployment, account_id)
        deployment.wait_for(
            f"{name} in OutSmart", lambda a=account_id, n=name: name_in_outsmart(deployment, a) == n, 120, every=0.5
        )
        latencies.append(time.monotonic() - started)
        deployment.wait_for("the run to finish", lambda: not active_runs(deployment), 120, every=1)
        assert len(asset_runs(deployment)) >= before + 1  # started by the event, not by the 6-hourly cron
        if duplicate:
            time.sleep(3)  # the copy arrived; it is one inbox row and starts no second run
            assert inbox_rows(deployment, account_id) == 1
            assert not active_runs(deployment)
            assert len(asset_runs(deployment)) == before + 1
    deployment.sandbox("webhooks", {"duplicate_rate": 0.0})
    figure(
        f"webhooks: a change in the sandbox in OutSmart after median {statistics.median(latencies):.1f} s, "
        f"worst {max(latencies):.1f} s ({len(latencies)} changes, safety net {SAFETY_NET})"
    )
    assert max(latencies) <= LATENCY_LIMIT


def test_a_burst_of_1000_events_is_a_few_runs(deployment, figure):
    before = len(asset_runs(deployment))
    queued = deployment.sandbox("webhook-burst", {"entity": "accounts", "count": 1000})["queued"]
    assert queued == 1000
    deployment.wait_for("the burst delivered", lambda: deployment.sandbox("webhooks")["pending"] == 0, 180, every=1)
    deployment.wait_for(
        "the burst relayed",
        lambda: (
            deployment.outsmart("SELECT count(*) FROM exact_online.webhook_inbox WHERE relayed_at IS NULL")[0][0] == 0
        ),
        60,
    )
    time.sleep(5)  # the scheduler's next loop has queued its run
    deployment.wait_for("the runs to finish", lambda: not active_runs(deployment), 300, every=2)
    runs = len(asset_runs(deployment)) - before
    figure(f"webhooks: 1,000 events in a burst -> {runs} asset-triggered runs")
    assert 1 <= runs <= 3


def test_a_forged_and_a_lost_event_start_nothing_and_the_safety_net_reads_both(deployment):
    forged_id, lost_id = some_accounts(deployment, 6)[4:6]
    before = len(asset_runs(deployment))
    refused = deployment.sandbox("webhooks")["stats"].get("event_401", 0)
    deployment.sandbox("webhooks", {"wrong_secret": True})
    forged_name = rename(deployment, forged_id)
    deployment.wait_for(
        "the forged event refused",
        lambda: deployment.sandbox("webhooks")["stats"].get("event_401", 0) > refused,
        30,
        every=0.5,
    )
    deployment.sandbox("webhooks", {"wrong_secret": False, "loss_rate": 1.0})
    lost_name = rename(deployment, lost_id)
    time.sleep(10)
    deployment.sandbox("webhooks", {"loss_rate": 0.0})
    assert inbox_rows(deployment, forged_id) == 0
    assert len(asset_runs(deployment)) == before and not active_runs(deployment)
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
            180,
        )
    finally:
        deployment.set_settings(WEBHOOKS)
    scheduled = deployment.api(
        "GET", "/dags/exact_online_import_relations/dagRuns", params={"run_type": "scheduled", "limit": 1000}
    )["dag_runs"]
    assert scheduled, "read by a scheduled run"
    deployment.wait_for("the schedule back to 6-hourly", lambda: "0 */6" in deployment.dag("relations")["description"])
    deployment.wait_for("the runs to finish", lambda: not active_runs(deployment), 120)


def test_events_in_the_inbox_survive_a_restart(deployment):
    """The receiver committed an event and Airflow went down before the relay turned it into an asset event: after
    the restart the relay's start-up sweep takes it, and the change reaches OutSmart with no further delivery."""
    (account_id,) = some_accounts(deployment, 7)[6:7]
    deployment.sandbox("webhooks", {"loss_rate": 1.0})  # Exact's delivery is the inbox row written below
    name = rename(deployment, account_id)
    deployment.sandbox("webhooks", {"loss_rate": 0.0})
    # What the receiver commits before its 2xx; the relay thread sweeps every 30 s, so the stop comes first.
    deployment.outsmart(
        "INSERT INTO exact_online.webhook_inbox (company, division, topic, action, record_key, event_created_on) "
        "VALUES ('default', 3000001, 'Accounts', 'Update', %s, '2026-12-07T10:00:00.000') RETURNING id",
        (account_id.lower(),),
    )
    deployment.stop()
    deployment.start()
    deployment.wait_for("the change in OutSmart", lambda: name_in_outsmart(deployment, account_id) == name, 120)
    relayed = deployment.outsmart(
        "SELECT relayed_at IS NOT NULL FROM exact_online.webhook_inbox WHERE record_key = %s", (account_id.lower(),)
    )
    assert relayed == [(True,)]
