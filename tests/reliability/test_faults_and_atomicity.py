"""Reliability: injected faults, killed runs, repeated IDs, concurrent changes, recodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

import psycopg

from include.outsmart_import.registry import CATEGORIES
from tests.helpers.e2e import all_enabled, dag_runner, mutate, reset_stats, run_dag, sandbox_stats, set_faults
from tests.helpers.waiting import wait_until


def tables() -> list[str]:
    out = []
    for c in CATEGORIES.values():
        out.append(c.table.name)
        out += [d.table.name for d in c.dependents]
    return out


def dump(conninfo: str, table: str) -> dict:
    """Every row of a target table, keyed by Exact ID, without the columns that record when it was written."""
    with psycopg.connect(conninfo) as conn:
        cur = conn.execute(f"SELECT * FROM outsmart.{table}")
        cols = [d.name for d in cur.description]
        keep = [i for i, c in enumerate(cols) if c not in ("id", "imported_at")]
        rows = {}
        for r in cur.fetchall():
            rec = {cols[i]: r[i] for i in keep}
            rec["deleted"] = rec.pop("deleted_at") is not None
            rows[str(rec["exact_id"])] = rec
        return rows


def test_faults_leave_the_target_equal_to_a_clean_run(
    dags, sandbox_factory, pg_server, target_db, settings_var, monkeypatch, figure
):
    """Every category with 10 % 5xx, 6 % dropped connections and 6 % slow replies, against the same import
    without faults: every row of every table must be the same."""
    settings_var(all_enabled())
    clean = sandbox_factory(size=500, seed=51)
    for name in CATEGORIES:
        run_dag(dags, name)
    clean_conninfo = target_db.conninfo
    # A second, empty database and a second sandbox with the same seed (the same records), now with faults.
    name_b = "faulty_" + str(os.getpid())
    with psycopg.connect(
        clean_conninfo.replace(f"dbname={target_db.airflow_json['schema']}", "dbname=postgres"), autocommit=True
    ) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name_b}")
        admin.execute(f"CREATE DATABASE {name_b}")
    monkeypatch.setenv("AIRFLOW_CONN_OUTSMART_POSTGRES", json.dumps({**target_db.airflow_json, "schema": name_b}))
    faulty = sandbox_factory(size=500, seed=51)
    set_faults(faulty, error_rate=0.10, drop_rate=0.06, slow_rate=0.06, slow_seconds=0.3, seed=11)
    for name in CATEGORIES:
        run_dag(dags, name)
    faulty_conninfo = clean_conninfo.replace(f"dbname={target_db.airflow_json['schema']}", f"dbname={name_b}")
    compared = 0
    for table in tables():
        a, b = dump(clean_conninfo, table), dump(faulty_conninfo, table)
        assert a == b, table
        compared += len(a)
    s = sandbox_stats(faulty)
    calls = sum(s["calls"].values())
    injected = s["faults_injected"]
    figure(
        f"{sum(injected.values())} faults injected in {calls} API calls ({injected}); {compared} rows in "
        f"{len(tables())} tables compared, all equal; 4xx: {s['client_errors'] or 'none'}"
    )
    assert sum(injected.values()) >= 0.1 * calls
    assert s["client_errors"] == {}  # nothing was refused, so nothing counted towards the 10-errors-per-hour block
    assert sandbox_stats(clean)["client_errors"] == {}


def test_killed_run_leaves_target_and_watermark_as_before(sandbox_factory, target_db, settings_var, tmp_path, figure):
    server = sandbox_factory(size=3000, seed=52)
    settings_var({"categories": {"relations": {"enabled": True}}})
    run = dag_runner(tmp_path / "home", "exact_online_import_relations")
    out = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert '"state": "success"' in out.stdout, out.stderr[-2000:]
    before = target_db.query("SELECT code, name, xmin::text FROM outsmart.relations ORDER BY code")
    state_before = target_db.query("SELECT category, stream, landed_seq FROM outsmart.import_state ORDER BY 1, 2")
    accounts = list(server.state.division.accounts.values())
    mutate(
        server, entity="accounts", op="update", records=[{"ID": a["ID"], "Name": a["Name"] + " (v2)"} for a in accounts]
    )
    # Slow replies keep the run inside its load transaction long enough to be killed there. The call count starts
    # again at 0: with run 1's calls counted, any transaction open early in run 2 (the schema check, a token
    # refresh) could pass for the load's, and once the run was killed before its import log row existed.
    set_faults(server, latency_seconds=1.0)
    reset_stats(server)
    proc = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(
            lambda: (
                sandbox_stats(server)["calls"].get("sync/CRM/Accounts", 0) >= 2
                and target_db.scalar(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND state = 'idle in transaction'"
                )
            ),
            120,
            "the run to be inside its load transaction",
            every=0.2,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # Postgres ends the killed run's sessions, rolling back its transaction, once it sees their sockets closed.
    wait_until(
        lambda: target_db.scalar(
            "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ),
        30,
        "the killed run's sessions to end",
    )
    assert target_db.query("SELECT code, name, xmin::text FROM outsmart.relations ORDER BY code") == before
    assert (
        target_db.query("SELECT category, stream, landed_seq FROM outsmart.import_state ORDER BY 1, 2") == state_before
    )
    set_faults(server, latency_seconds=0.0)
    out = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert '"state": "success"' in out.stdout, out.stderr[-2000:]
    statuses = [r[0] for r in target_db.query("SELECT status FROM outsmart.import_log ORDER BY id")]
    renamed = target_db.scalar("SELECT count(*) FROM outsmart.relations WHERE name LIKE '%% (v2)'")
    figure(
        f"SIGKILL during the load: target ({len(before)} rows) and watermark unchanged; import log {statuses}; "
        f"the retry updated {renamed} rows"
    )
    assert statuses == ["success", "abandoned", "success"]
    assert renamed == len(before)


def test_repeated_ids_keep_the_newest_and_changes_during_a_run_are_not_lost(
    dags, sandbox_factory, target_db, settings_var, figure
):
    server = sandbox_factory(size=3500, seed=53)
    settings_var(
        {
            "categories": {
                "relations": {
                    "enabled": True,
                    "relation_types": ["customer", "prospect", "suspect", "none"],
                    "include_inactive": True,
                    "include_blocked": True,
                }
            }
        }
    )
    set_faults(server, repeat_stale_ids=True, latency_seconds=0.3)
    accounts = sorted(server.state.division.accounts.values(), key=lambda a: a["Timestamp"])
    early, late = accounts[10], accounts[-10]  # on the first page and on the last

    failed = []

    def change_during_the_run():
        try:
            wait_until(
                lambda: sandbox_stats(server)["calls"].get("sync/CRM/Accounts", 0) >= 1,
                300,
                "the run to read its first page",
                every=0.05,
            )
            # Edited after the first page was read: the edit moves it to a later Timestamp (a later page or run).
            mutate(
                server,
                entity="accounts",
                op="update",
                records=[
                    {"ID": early["ID"], "Name": "Gewijzigd tijdens de run"},
                    {"ID": late["ID"], "Name": "Ook gewijzigd"},
                ],
            )
        except Exception as exc:  # re-raised in the test, after the run
            failed.append(exc)

    t = threading.Thread(target=change_during_the_run)
    t.start()
    run_dag(dags, "relations")
    t.join()
    if failed:
        raise failed[0]
    set_faults(server, repeat_stale_ids=False, latency_seconds=0)
    run_dag(dags, "relations")
    assert target_db.scalar("SELECT count(*) FROM outsmart.relations WHERE name = 'STALE COPY'") == 0
    names = dict(target_db.query("SELECT exact_id::text, name FROM outsmart.relations"))
    # Every account but the division's own (Type 'D'), which is never a relation (#14 item 5).
    source = {a["ID"]: a["Name"] for a in server.state.division.accounts.values() if a["Type"] != "D"}
    figure(
        f"{len(source)} accounts, stale repeats on every page, 2 edits during the run: "
        f"{sum(names[i] == n for i, n in source.items())} of {len(source)} rows equal to Exact after the next run"
    )
    assert names == source


def test_recode_updates_in_place_or_rejects(dags, sandbox_factory, target_db, settings_var, figure):
    server = sandbox_factory(size=300, seed=54)
    settings_var(
        {
            "categories": {
                "relations": {
                    "enabled": True,
                    "relation_types": ["customer", "prospect", "suspect", "none"],
                    "include_inactive": True,
                    "include_blocked": True,
                }
            }
        }
    )
    run_dag(dags, "relations")
    a, b, c = list(server.state.division.accounts.values())[:3]
    old_code = a["Code"].strip()
    mutate(
        server,
        entity="accounts",
        op="update",
        records=[{"ID": a["ID"], "Code": f"{'777777':>18}"}, {"ID": b["ID"], "Code": c["Code"]}],
    )
    run_dag(dags, "relations")
    rows = target_db.query("SELECT code FROM outsmart.relations WHERE exact_id = %s", (a["ID"],))
    reject = target_db.query("SELECT record_key, reason FROM outsmart.import_rejects")
    figure(f"recoded {old_code} -> 777777 in place (no duplicate); taken code: {reject}")
    assert rows == [("777777",)] and target_db.scalar("SELECT count(*) FROM outsmart.relations") == 300
    assert len(reject) == 1 and reject[0][0] == c["Code"].strip() and "already used" in reject[0][1]
