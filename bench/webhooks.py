"""Polling alone against webhooks + sparse polling (#22): Exact API calls a day for one company, at a freshness target.

Measured: the calls of one read of each stream, as the import reads it (the hook against the sandbox, counted by the
sandbox): an incremental read when nothing changed, after a few changes and after 1,500 (a second page), and a full
read of the streams without a sync endpoint. From those, per category, the calls of one run.

Computed, for a quiet and a busy division (changes a day per webhook topic, over the office hours):
- polling alone: every category every `target` minutes (288 runs a day at 5 minutes), whatever changed;
- webhooks + sparse polling: every category on the safety net (every 6 hours), plus one run per burst of events of
  its topics. Without a debounce the relay fires at once and a run takes RUN_SECONDS (measured under `make airflow`),
  so the events of one run's duration become one run; with the relay's debounce (at most one asset event per Asset
  per DEBOUNCE seconds, plugins/exact_online_webhooks/relay.py) the events of one debounce interval become one run:
  runs = the windows of max(RUN_SECONDS, debounce) that hold at least one event (Poisson);
- webhooks + polling for the rest: as above, but a category with a stream Exact announces no change of (addresses,
  sales item prices, and the categories without any topic) keeps the `target` polling, so that every stream meets
  the same freshness target. This is the column at equal freshness.
"""

from __future__ import annotations

import math

from include.outsmart_import.catalogue import DELETED, all_streams, streams_of
from include.outsmart_import.registry import CATEGORIES

DAILY_BUDGET = 5000
RUN_SECONDS = 30.0  # one asset-triggered run of a category, start to finish, under make airflow on 2 cores
DEBOUNCES = (0.0, 60.0, 300.0)  # the relay's debounce compared: none, the default, the freshness target
OFFICE_HOURS = 10
SAFETY_NET_HOURS = 6
# Changes a day per topic. Quiet: a small installer. Busy: a wholesaler with a sales office.
PROFILES = {
    "quiet": {"Accounts": 10, "Contacts": 5, "Items": 5, "SalesOrders": 10, "GoodsDeliveries": 5, "Quotations": 5,
              "ProjectPlanning": 10},
    "busy": {"Accounts": 300, "Contacts": 200, "Items": 300, "SalesOrders": 1500, "GoodsDeliveries": 600,
             "Quotations": 400, "ProjectPlanning": 500},
}  # fmt: skip


def measure_reads(size: int = 2000) -> dict[str, dict]:
    """Per stream: calls of an incremental read with no change, with 5 changes and with 1,500; a full read's calls."""
    import requests

    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import MemoryTokenStore
    from include.exact_sandbox.server import SandboxConfig, start_sandbox
    from tests.helpers.sandbox import stop_sandbox

    server = start_sandbox(SandboxConfig(size=size, minutely_limit=100000, daily_limit=1000000))
    import json
    import os

    c = server.state.config
    os.environ["AIRFLOW_CONN_EXACT_ONLINE_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": server.url, "login": c.client_id, "password": c.client_secret,
         "extra": {"division": c.division, "refresh_token": c.initial_refresh_token}}
    )  # fmt: skip
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    out: dict[str, dict] = {}
    try:
        for stream in all_streams().values():
            out[stream.name] = _measure_stream(hook, stream)
        # a second page: 1,500 changes on the accounts
        ids = [
            r["ID"]
            for r in requests.post(server.url + "/_sandbox/records", json={"entity": "accounts"}).json()["records"]
        ]
        high = max(int(r.get("Timestamp", 0)) for page in hook.sync("sync/CRM/Accounts", ["ID"], 0) for r in page)
        requests.post(server.url + "/_sandbox/mutate",
                      json={"entity": "accounts", "op": "update", "records": [{"ID": i} for i in ids[:1500]]},
                      timeout=60)  # fmt: skip
        before = hook.stats.api_calls
        list(hook.sync("sync/CRM/Accounts", ["ID"], high))
        out["sync/CRM/Accounts"]["changed_1500"] = hook.stats.api_calls - before
    finally:
        stop_sandbox(server)
    return out


def _measure_stream(hook, stream) -> dict:
    before = hook.stats.api_calls
    if stream.mode == "full":
        list(hook.collection(stream.name, list(stream.select)))
        return {"mode": "full", "read": hook.stats.api_calls - before}
    if stream.mode == "deleted":
        list(hook.deleted(None, 0))
        first = hook.stats.api_calls - before
        return {"mode": "deleted", "read": 1, "initial": first}
    rows = [r for page in hook.sync(stream.name, list(stream.select), 0) for r in page]
    initial = hook.stats.api_calls - before
    high = max((int(r.get("Timestamp") or 0) for r in rows), default=0)
    before = hook.stats.api_calls
    list(hook.sync(stream.name, list(stream.select), high))
    return {"mode": "sync", "read": hook.stats.api_calls - before, "initial": initial, "topic": stream.webhook_topic}


def category_calls(reads: dict[str, dict]) -> dict[str, dict]:
    """Per category: the calls of one run (its streams' reads), its topics, whether Exact announces all of it."""
    out = {}
    for name, category in CATEGORIES.items():
        streams = streams_of(category)
        calls = sum(reads[s.name]["read"] for s in streams)
        own = [s for s in streams if s.name != DELETED]
        topics = sorted({s.webhook_topic for s in own if s.webhook_topic})
        out[name] = {"calls": calls, "topics": topics, "covered": all(s.webhook_topic for s in own)}
    return out


def _runs_from_events(events_a_day: float, debounce: float) -> float:
    """Asset-triggered runs a day: the windows (a run's duration, or the debounce if longer) of the office hours
    holding at least one event."""
    windows = OFFICE_HOURS * 3600 / max(RUN_SECONDS, debounce)
    return windows * (1 - math.exp(-events_a_day / windows)) if events_a_day else 0.0


def _round(reads: dict[str, dict], names: list[str]) -> int:
    """The calls of a round of these categories: each stream read once (the landing's reuse window, #13)."""
    streams = {s.name for n in names for s in streams_of(CATEGORIES[n])}
    return sum(reads[s]["read"] for s in streams)


def model(reads: dict[str, dict], cats: dict[str, dict], profile: dict[str, int], target_minutes: int) -> dict:
    polls = 24 * 60 / target_minutes
    sparse = 24 / SAFETY_NET_HOURS
    every = _round(reads, list(cats))
    uncovered = _round(reads, [n for n, c in cats.items() if not c["covered"]])
    out: dict = {"round_calls": every, "polling": round(polls * every), "budget": DAILY_BUDGET, "debounce": {}}
    for debounce in DEBOUNCES:
        # an event-started run asks Exact again even if another category read the stream moments ago
        triggered = sum(
            _runs_from_events(sum(profile.get(t, 0) for t in c["topics"]), debounce) * c["calls"] for c in cats.values()
        )
        out["debounce"][f"{debounce:g}"] = {
            "webhooks_sparse": round(sparse * every + triggered),
            "webhooks_equal_freshness": round(sparse * every + polls * uncovered + triggered),
        }
    return out


def run_webhooks_benchmark(size: int = 2000, target_minutes: int = 5) -> dict:
    reads = measure_reads(size)
    cats = category_calls(reads)
    return {
        "reads": reads,
        "categories": cats,
        "target_minutes": target_minutes,
        "per_day": {name: model(reads, cats, profile, target_minutes) for name, profile in PROFILES.items()},
    }


def print_webhooks(result: dict) -> None:
    t = result["target_minutes"]
    print(f"\nWebhooks (#22): Exact calls a day for one company, all 14 categories, changes visible within {t} min")
    print("  measured calls per run: " + ", ".join(f"{n} {c['calls']}" for n, c in result["categories"].items()))
    accounts = result["reads"]["sync/CRM/Accounts"]
    print(
        f"  accounts: {accounts['read']} call with nothing changed, {accounts.get('changed_1500')} after 1,500 changes"
    )
    poll = "polling every " + str(t) + " min"
    print(f"  {'division':<8} {'debounce':>9} {poll:>22} {'webhooks + 6-hourly':>20} {'webhooks, equal freshness':>26}")
    for name, r in result["per_day"].items():
        for debounce, w in r["debounce"].items():
            print(f"  {name:<8} {debounce + ' s':>9} {r['polling']:>22,} {w['webhooks_sparse']:>20,}"
                  f" {w['webhooks_equal_freshness']:>26,}   (Exact's budget: {r['budget']:,} a day)")  # fmt: skip


if __name__ == "__main__":
    print_webhooks(run_webhooks_benchmark())
