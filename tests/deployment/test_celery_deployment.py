"""The same deployment on Airflow's CeleryExecutor, as `make airflow AIRFLOW_ARGS="--executor celery --workers 2"`
starts it: a Redis broker, the result backend in the metadata database, two workers of concurrency 1.

A stack of its own (the session's deployment runs the LocalExecutor), started and stopped by the one test here:
this file sorts before the other deployment files, so it runs before the session's stack is started.
"""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter

import psycopg

from include.airflow_stack import alive
from include.outsmart_import.target_db import conninfo_from_airflow_json
from tests.helpers.deployment import SETTINGS, Deployment

AT_ONCE = ("relations", "hour_types", "categories")


def test_imports_triggered_at_once_run_on_both_workers_and_ctrl_c_stops_everything(tmp_path_factory, figure):
    dep = Deployment(tmp_path_factory.mktemp("celery") / "state", SETTINGS, executor="celery", workers=2)
    started_in = dep.start()
    try:
        assert "executor: CeleryExecutor, 2 workers of concurrency 1" in "".join(dep.output)
        workers = dep.ready["workers"]
        assert len(set(workers)) == 2 and {"redis", "worker1", "worker2"} <= set(dep.ready["pids"])

        started = time.monotonic()
        runs = {name: dep.trigger(name) for name in AT_ONCE}
        ends = {name: dep.wait_run(name, run_id, timeout=600) for name, run_id in runs.items()}
        ran_in = time.monotonic() - started
        assert {name: r["state"] for name, r in ends.items()} == dict.fromkeys(AT_ONCE, "success"), {
            name: dep.task_states(name, run_id) for name, run_id in runs.items()
        }
        tis = [ti for name, run_id in runs.items() for ti in dep.task_instances(name, run_id).values()]
        hosts = Counter(ti["hostname"] for ti in tis)
        assert set(hosts) == set(workers), f"both workers take tasks: {dict(hosts)}"
        imported = dep.outsmart(
            "SELECT category FROM outsmart.import_log WHERE status = 'success' AND run_id = ANY(%s)",
            (list(runs.values()),),
        )
        assert sorted(r[0] for r in imported) == sorted(AT_ONCE)
        assert dep.outsmart("SELECT count(*) FROM outsmart.relations")[0][0] > 0
        # each task's Celery outcome is in the result backend, Celery's table in Airflow's database: one success per
        # task instance, and a failure for a try that failed (the last lands a moment after its task instance: the
        # task reports to the execution API before its worker is done)
        metadata = conninfo_from_airflow_json({**dep.ready["outsmart"], "schema": "airflow"})
        seen: list[dict] = []

        def all_succeeded() -> bool:
            with psycopg.connect(metadata) as conn:
                seen.append(
                    dict(conn.execute("SELECT status, count(*) FROM celery_taskmeta GROUP BY status").fetchall())
                )
            return seen[-1].get("SUCCESS") == len(tis) and set(seen[-1]) <= {"SUCCESS", "FAILURE"}

        try:
            dep.wait_for(f"{len(tis)} successes in the result backend", all_succeeded, timeout=120)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: celery_taskmeta has {seen[-1]}") from None
    except BaseException:
        if dep.proc.poll() is None:
            dep.stop()
        raise

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
    figure(
        f"CeleryExecutor, 2 workers: ready in {started_in:.0f} s; {len(AT_ONCE)} imports triggered at once all "
        f"succeeded in {ran_in:.0f} s, {len(tis)} task instances split {dict(sorted(hosts.items()))}; "
        f"Ctrl-C stopped every process (Redis and workers too) in {stopped_in:.0f} s"
    )
