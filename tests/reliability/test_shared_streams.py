"""Reliability: two categories that share Exact streams, started at the same moment in processes of their own,
read each page once between them, and both end correct (issue #13)."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.e2e.test_standard_categories import expected_items, standard_price
from tests.helpers.e2e import run_dags_in_processes, sandbox_stats, set_faults


def test_two_categories_sharing_streams_started_at_once_read_each_page_once(
    sandbox_factory, target_db, settings_var, tmp_path, figure
):
    server = sandbox_factory(size=5000, seed=61)
    # Slow replies: the first category is still reading the items when the second one asks for them.
    set_faults(server, latency_seconds=0.3)
    settings_var({"categories": {"materials": {"enabled": True}, "hour_types": {"enabled": True}}})
    results, _ = run_dags_in_processes(
        tmp_path, ["exact_online_import_materials", "exact_online_import_hour_types"], timeout=900
    )
    assert {d: r["state"] for d, r in results.items()} == {
        "exact_online_import_materials": "success",
        "exact_online_import_hour_types": "success",
    }
    div = server.state.division
    pages = {
        "sync/Logistics/Items": -(-len(div.items) // 1000),
        "sync/Logistics/SalesItemPrices": -(-len(div.sales_item_prices) // 1000),
        "sync/Deleted": 1,
    }
    calls = sandbox_stats(server)["calls"]
    assert {k: calls.get(k, 0) for k in pages} == pages, calls
    assert pages["sync/Logistics/Items"] > 1 and pages["sync/Logistics/SalesItemPrices"] > 1
    # Who read which stream: per stream, one of the two read it and the other took what had landed.
    logs = dict(target_db.query("SELECT category, streams::text FROM outsmart.import_log WHERE status = 'success'"))
    actions: dict[str, list[str]] = {}
    for category in ("materials", "hour_types"):
        for s in json.loads(logs[category]):
            actions.setdefault(s["stream"], []).append(s["action"])
    assert {s: sorted(a) for s, a in actions.items()} == {s: ["full_read", "reused"] for s in pages}
    # Both correct: every material and every hour type, each with its standard sales price.
    for table, time_items in (("materials", False), ("hour_types", True)):
        expected = expected_items(server, time_items=time_items, groups=[])
        got = dict(target_db.query(f"SELECT code, sales_price FROM outsmart.{table} WHERE deleted_at IS NULL"))
        assert set(got) == set(expected)
        assert all(got[code] == standard_price(server, item["ID"]) for code, item in expected.items())
        assert any(isinstance(v, Decimal) for v in got.values())
    figure(
        f"materials + hour types at once: {sum(calls.get(k, 0) for k in pages)} calls for {sum(pages.values())} "
        f"pages ({pages}); stream actions {actions}"
    )
