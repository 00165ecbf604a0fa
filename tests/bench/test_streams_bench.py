"""The streams benchmark's own checks (not its figures): a round is counted the same by the sandbox and by the
import log, the child runs this tree's code, shared streams are read once, a filter change is compared with a
fresh import, and the landing measurement lands what it says."""

from __future__ import annotations

from bench import streams


def test_rounds_are_counted_by_the_sandbox_and_the_import_log(pg_server, tmp_path):
    result = streams.run_rounds(streams.ROOT, pg_server, tmp_path, label="test", size=200)
    rounds = result["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    for r in rounds:
        assert r["categories"] == 14 and r["failed"] == []
        assert r["sandbox_calls"] == r["log_calls"] == sum(run["api_calls"] for run in r["runs"])
    # 19 streams (16 endpoints of the categories, a relation's addresses and contacts, and sync/Deleted), each read
    # once a round; on a small division one page each.
    assert rounds[2]["calls_by_endpoint"] == dict.fromkeys(rounds[2]["calls_by_endpoint"], 1)
    assert len(rounds[2]["calls_by_endpoint"]) == 19
    runs = {run["category"]: run for run in rounds[1]["runs"]}
    assert runs["hour_types"]["reads"] == [] and runs["hour_types"]["api_calls"] == 0  # materials read the items
    assert runs["relations"]["derive"] == "incremental"
    assert [r["derive"] for r in rounds[0]["runs"]] == ["full: first run"] * 14
    compare = streams.compare_rounds(None, result)
    assert [r["after"] for r in compare["rounds"]] == [r["sandbox_calls"] for r in rounds]
    hourly = next(d for d in compare["per_day"] if d["round"] == "incremental round" and d["schedule"] == "hourly")
    assert hourly["calls_per_day"] == rounds[1]["sandbox_calls"] * 24


def test_the_landing_measurement_lands_reads_back_and_relands(pg_server):
    # run_landing asserts what each step landed (all, all read back, the 1 % changed, the other 1 % changed).
    out = streams.run_landing(pg_server, 2000, repeat=1)
    assert out["rows"] == 2000 and out["land_s_per_1000"] > 0 and out["derive_s_per_1000"] > 0


def test_filter_verdict_compares_each_change_with_the_unchanged_run():
    steps = [
        {"category": "relations", "step": s, "api_calls": c, "derive": d, "equals_fresh_import": True}
        for s, c, d in [("unchanged", 2, "incremental"), ("widened", 2, "full: settings changed"), ("narrowed", 3, "x")]
    ]
    verdict = streams.filter_verdict(steps)
    assert verdict[0].startswith("relations widened: 2 calls vs 2 unchanged (met)")
    assert "(MISSED)" in verdict[1]
