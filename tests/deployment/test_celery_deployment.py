"""The same deployment on Airflow's CeleryExecutor, as `make airflow AIRFLOW_ARGS="--executor celery --workers 2"`
starts it: a Redis broker, the result backend in the metadata database, two workers of concurrency 1.

A stack of its own (the session's deployment runs the LocalExecutor), started by this module and stopped by its
last test (Ctrl-C): this file sorts before the other deployment files, so it runs before the session's stack is
started. The stack has 20 companies (#21), each its own sandbox division and database.
"""

from __future__ import annotations

import functools
import json
import signal
import socket
import time
from collections import Counter

import psycopg
import pytest

from include.airflow_stack import alive
from include.outsmart_import.registry import STANDARD
from include.outsmart_import.target_db import conninfo_from_airflow_json
from tests.helpers.deployment import SETTINGS, Deployment

FIRST = 3_000_001  # the first company's division; company i has FIRST + i - 1
COMPANIES = 20
SIZE = 60  # accounts per division: 20 divisions, each imported twice (the deployment, and alone to compare)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory):
    dep = Deployment(
        tmp_path_factory.mktemp("celery") / "state",
        SETTINGS,
        executor="celery",
        workers=2,
        companies=COMPANIES,
        sandbox_size=SIZE,
    )
    dep.started_in = dep.start()
    yield dep
    if dep.proc.poll() is None:  # the last test stops it with Ctrl-C; after a failure it is stopped here
        dep.stop()


def _all_tis(dep: Deployment, name: str, run_id: str) -> list[dict]:
    return dep.api("GET", f"/dags/exact_online_import_{name}/dagRuns/{run_id}/taskInstances")["task_instances"]


def test_twenty_companies_six_categories_on_two_workers(celery_stack, figure):
    """A round of the six standard categories for 20 companies, all triggered at once: every company's import
    succeeds, both workers take tasks, no 429 reaches anything, each company's tables equal its division imported
    alone, and each company costs the calls of a one-company round."""
    dep = celery_stack
    assert "executor: CeleryExecutor, 2 workers of concurrency 1" in "".join(dep.output)
    workers = dep.ready["workers"]
    assert len(set(workers)) == 2 and {"redis", "worker1", "worker2"} <= set(dep.ready["pids"])
    names = [c.name for c in STANDARD]
    started = time.monotonic()
    runs = {name: dep.trigger(name) for name in names}
    ends = {name: dep.wait_run(name, run_id, timeout=900) for name, run_id in runs.items()}
    ran_in = time.monotonic() - started
    assert {n: r["state"] for n, r in ends.items()} == dict.fromkeys(names, "success"), {
        n: {k: v for k, v in dep.task_states(n, r).items() if v != "success"} for n, r in runs.items()
    }
    tis = [ti for name, run_id in runs.items() for ti in _all_tis(dep, name, run_id)]
    assert len(tis) == len(names) * (1 + COMPANIES)
    hosts = Counter(ti["hostname"] for ti in tis)
    assert set(hosts) == set(workers), f"both workers take tasks: {dict(hosts)}"
    stats = dep.sandbox("stats")
    assert stats["statuses"].get("429", 0) == 0, stats["statuses"]
    calls = {int(d): n for d, n in stats["division_calls"].items()}
    assert sorted(calls) == [FIRST + i for i in range(COMPANIES)]
    print(f"\n{COMPANIES} companies x {len(names)} categories on 2 workers: {ran_in:.0f} s, {dict(hosts)}")
    _every_task_succeeded_in_the_result_backend(dep, len(tis))
    _each_company_equals_its_division_alone(dep, names)
    alone = {int(d): n - calls[int(d)] for d, n in dep.sandbox("stats")["division_calls"].items()}
    assert calls == alone, "a company's round costs what its division costs alone"
    figure(
        f"CeleryExecutor, 2 workers, {COMPANIES} companies x {len(names)} categories: ready in {dep.started_in:.0f} s; "
        f"the round took {ran_in:.0f} s, {len(tis)} task instances split {dict(sorted(hosts.items()))}; no 429; "
        f"API calls per company {sorted(set(calls.values()))} (alone: {sorted(set(alone.values()))})"
    )


def _every_task_succeeded_in_the_result_backend(dep: Deployment, count: int) -> None:
    """Each task's Celery outcome is in the result backend, Celery's table in Airflow's database: one success per
    task instance (the last lands a moment after its task instance: the task reports to the execution API before
    its worker is done)."""
    metadata = conninfo_from_airflow_json({**dep.ready["outsmart"], "schema": "airflow"})
    seen: list[dict] = []

    def all_succeeded() -> bool:
        with psycopg.connect(metadata) as conn:
            seen.append(dict(conn.execute("SELECT status, count(*) FROM celery_taskmeta GROUP BY status").fetchall()))
        return seen[-1].get("SUCCESS") == count and set(seen[-1]) <= {"SUCCESS", "FAILURE"}

    try:
        dep.wait_for(f"{count} successes in the result backend", all_succeeded, timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: celery_taskmeta has {seen[-1]}") from None


def _each_company_equals_its_division_alone(dep: Deployment, names: list[str]) -> None:
    """Each division imported by the same runner into a fresh database of its own, as the one-company version would
    (on the deployment's token chain, kept where the DAGs keep it); its tables equal the company's."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import PostgresTokenStore
    from include.outsmart_import.runner import run_category
    from include.outsmart_import.settings import parse_settings

    server = dep.ready["outsmart"]
    state = conninfo_from_airflow_json(server)
    settings = parse_settings(SETTINGS)
    for i in range(1, COMPANIES + 1):
        fresh = f"alone_{i}"
        with psycopg.connect(conninfo_from_airflow_json({**server, "schema": "postgres"}), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {fresh}")
            admin.execute(f"CREATE DATABASE {fresh}")
        alone = conninfo_from_airflow_json({**server, "schema": fresh})
        hook = ExactOnlineHook(division=FIRST + i - 1, token_store=PostgresTokenStore(lambda: psycopg.connect(state)))
        hook._conn = _exact_connection(dep)
        for name in names:
            connect = functools.partial(psycopg.connect, alone)
            assert run_category(name, settings, hook, connect).status == "success"
        mine = conninfo_from_airflow_json({**server, "schema": "outsmart" if i == 1 else f"outsmart_company{i}"})
        assert _user_rows(mine) == _user_rows(alone), f"company {i}"


def _exact_connection(dep: Deployment):
    """exact_online_default as the launcher made it (the REST API would mask its refresh token)."""
    from airflow.models.connection import Connection

    from include.exact_sandbox.server import SandboxConfig

    c = SandboxConfig()
    return Connection(
        conn_id="exact_online_default",
        conn_type="http",
        host=dep.sandbox_url,
        login=c.client_id,
        password=c.client_secret,
        extra=json.dumps({"division": c.division, "refresh_token": c.initial_refresh_token}),
    )


def _user_rows(conninfo: str) -> dict:
    """Every OutSmart table of the registry, its declared columns and whether a row is deleted: what a user sees."""
    from include.outsmart_import.database import column_list
    from include.outsmart_import.registry import CATEGORIES

    specs = [t for c in CATEGORIES.values() for t in (c.table, *(d.table for d in c.dependents))]
    out = {}
    with psycopg.connect(conninfo) as conn:
        for spec in specs:
            if conn.execute("SELECT to_regclass(%s)", (f"outsmart.{spec.name}",)).fetchone()[0]:
                sql = f"SELECT {column_list(spec.column_names)}, deleted_at IS NULL FROM outsmart.{spec.name}"
                out[spec.name] = sorted(conn.execute(sql).fetchall(), key=repr)
    return out


def test_a_company_whose_consent_is_broken_fails_alone(celery_stack):
    """Company 20 reaches its division through a consent of its own, which Exact no longer accepts: its import fails
    with the reconnect message at its first try; the 19 others succeed in the same run."""
    dep = celery_stack
    extra = json.loads(dep.api("GET", "/connections/exact_online_default")["extra"])
    dep.api(
        "POST",
        "/connections",
        json={
            "connection_id": "exact_online_broken",
            "conn_type": "http",
            "host": dep.sandbox_url,
            "login": "sandbox-client",
            "password": "sandbox-secret",
            "extra": json.dumps({**extra, "division": FIRST + COMPANIES - 1, "refresh_token": "withdrawn-consent"}),
        },
        expect=(200, 201),
    )
    variable = json.loads(dep.api("GET", "/variables/exact_online_import_settings")["value"])
    variable["companies"][f"company{COMPANIES}"]["exact_conn_id"] = "exact_online_broken"
    dep.set_settings(variable)
    run_id = dep.trigger("relations", refresh_streams=True)
    assert dep.wait_run("relations", run_id, timeout=600)["state"] == "failed"
    tis = {ti["rendered_map_index"]: ti for ti in _all_tis(dep, "relations", run_id) if ti["map_index"] >= 0}
    broken = tis.pop(f"company{COMPANIES}")
    assert broken["state"] == "failed" and broken["try_number"] == 1
    assert {ti["state"] for ti in tis.values()} == {"success"} and len(tis) == COMPANIES - 1
    lines = dep.task_log("relations", run_id, "import_relations", 1, broken["map_index"])
    log = json.dumps(lines)  # the exception's text is in the failure's structured fields, not its "event"
    assert "reconnect on the settings page" in log


def test_ctrl_c_stops_everything(celery_stack, figure):
    dep, workers = celery_stack, celery_stack.ready["workers"]
    running = "\n".join(dep.leftovers())  # the check below sees the broker and the workers' processes
    assert "redis-server" in running and all(f"celeryd: {name}:MainProcess" in running for name in workers), running
    stopping = time.monotonic()
    pids = dep.stop(signal.SIGINT)  # Ctrl-C
    stopped_in = time.monotonic() - stopping
    assert dep.proc.returncode == 0
    left = dep.leftovers()
    assert not left, "still running after Ctrl-C:\n" + "\n".join(left)
    assert not [name for name, pid in pids.items() if alive(pid)]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", dep.redis_port)) != 0, "Redis still listens"
    for number, name in enumerate(workers, start=1):
        assert f"{name} ready." in (dep.state_dir / "logs" / f"worker{number}.log").read_text()
    figure(f"CeleryExecutor: Ctrl-C stopped every process (Redis and workers too) in {stopped_in:.0f} s")
