"""What the end-to-end and reliability tests share: run a DAG with dag.test() (in this process or in its own),
read the import log and the target tables, and drive the sandbox's test API. The session's `dags` fixture (the
real DAG files, parsed by Airflow) is in tests/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from include.outsmart_import.registry import CATEGORIES, MERGE_COUNTS
from tests.helpers.waiting import StartLine

HELPERS = Path(__file__).resolve().parent
# "today" as the import sees it: the date on the Amsterdam wall clock (transforms.AMSTERDAM). Not a fixed UTC+1:
# in summer time that gives yesterday's date from 22:00 to 23:00 UTC, while the import already counts the next day.
TODAY = dt.datetime.now(ZoneInfo("Europe/Amsterdam")).date()
LOG_COLUMNS = (
    "status",
    "fetched",
    *MERGE_COUNTS,
    "api_calls",
    "watermark_before",
    "watermark_after",
    "error",
)


def all_enabled(license: str = "pro") -> dict:
    """Settings with every category of the registry enabled."""
    return {"license": license, "categories": {name: {"enabled": True} for name in CATEGORIES}}


# ---- running DAGs ---------------------------------------------------------------------------------------------
def run_dag(dags, name: str, expect: str | None = "success", **conf):
    """Run the import DAG of category `name` with dag.test(); assert its state (unless `expect` is None) and
    return (dag run, {task_id: state}).

    Every param is passed, the DAG's defaults for those not given: dag.test() runs the tasks in this process, and
    a run's conf stays in the tasks' params (Airflow 3.3), so a `dry_run=True` would carry over into the next run
    of the same session-wide DAG object."""
    dag = dags[CATEGORIES[name].dag_id]
    dr = dag.test(run_conf={**dict(dag.params), **conf})
    states = task_states(dr)
    if expect is not None:
        assert dr.state == expect, states
    return dr, states


def task_states(dr) -> dict:
    """{task_id: state}, and for the tasks mapped over companies also {"task_id[company]": state}: the plain task id
    holds the first company's (the only one in a one-company deployment)."""
    states: dict = {}
    for ti in sorted(dr.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        states.setdefault(ti.task_id, ti.state)
        if ti.map_index >= 0:
            states[f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"] = ti.state
    return states


def dag_runner(home: Path, *dag_ids: str, start_line: StartLine | None = None) -> list[str]:
    """The command line that runs DAGs in a process of their own (tests/helpers/dag_runner.py)."""
    return [
        sys.executable,
        str(HELPERS / "dag_runner.py"),
        str(home),
        ",".join(dag_ids),
        *([str(start_line.folder)] if start_line else []),
    ]


def runner_result(stdout: str) -> dict:
    """The JSON line dag_runner.py prints."""
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("DAG_RUNNER_RESULT "))[18:])


def run_dags_in_processes(
    tmp_path: Path, dag_ids: list[str], ready_timeout: float = 600, timeout: float = 600
) -> tuple[dict, float]:
    """Each DAG in its own process, all released at the same moment once every one has parsed its DAGs.

    One metadata DB, initialised once and copied, so that the processes spend their start-up importing Airflow
    only. Returns ({dag_id: result}, seconds until all were ready); each process's output is kept in
    tmp_path/<dag_id>.out."""
    template = tmp_path / "template"
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from include import local_airflow; from pathlib import Path; "
            f"local_airflow.configure(Path({str(template)!r})); local_airflow.init_db()",
        ],
        check=True,
        timeout=120,
    )
    for d in dag_ids:
        (tmp_path / d).mkdir()
        shutil.copy(template / "airflow.db", tmp_path / d / "airflow.db")
    line = StartLine(tmp_path / "start")
    for d in dag_ids:
        line.start(d, dag_runner(tmp_path / d, d, start_line=line))
    ready_after = line.release(timeout=ready_timeout)
    results = {}
    for d in dag_ids:
        code, out, err = line.finish(d, timeout=timeout)
        (tmp_path / f"{d}.out").write_text(out + "\n" + err)
        assert code == 0, err[-3000:]
        results[d] = runner_result(out)
    return results, ready_after


# ---- the import log and the target tables ---------------------------------------------------------------------
def log_rows(db, category: str | None = None) -> list[dict]:
    """Rows of outsmart.import_log (of one category), oldest first."""
    where, params = ("WHERE category = %s", (category,)) if category else ("", None)
    return [
        dict(zip(LOG_COLUMNS, r, strict=True))
        for r in db.query(f"SELECT {', '.join(LOG_COLUMNS)} FROM outsmart.import_log {where} ORDER BY id", params)
    ]


def last_log(db, category: str | None = None) -> dict:
    return log_rows(db, category)[-1]


def ids(db, table: str) -> set[str]:
    """Exact IDs of the rows of a target table that are not deleted."""
    return {r[0] for r in db.query(f"SELECT exact_id::text FROM outsmart.{table} WHERE deleted_at IS NULL")}


def row_versions(db, table: str) -> dict[str, str]:
    """{exact_id: xmin}: a row whose xmin is unchanged was not rewritten."""
    return dict(db.query(f"SELECT exact_id::text, xmin::text FROM outsmart.{table}"))


def snapshot(db, *tables: str) -> list[list[tuple]]:
    """Every row's ID, row version and deletion of the tables: equal snapshots mean nothing was written."""
    return [
        db.query(f"SELECT exact_id::text, xmin::text, deleted_at FROM outsmart.{t} ORDER BY exact_id") for t in tables
    ]


# ---- the sandbox's test API -----------------------------------------------------------------------------------
def sandbox_stats(server) -> dict:
    return requests.get(server.url + "/_sandbox/stats", timeout=5).json()


def reset_stats(server) -> None:
    requests.post(server.url + "/_sandbox/reset-stats", timeout=5).raise_for_status()


def mutate(server, **body) -> None:
    """Change the sandbox's records as a user in Exact would: entity=..., op="update"/"add"/"delete", ..."""
    requests.post(server.url + "/_sandbox/mutate", json=body, timeout=60).raise_for_status()


def set_faults(server, **faults) -> None:
    requests.post(server.url + "/_sandbox/faults", json=faults, timeout=5).raise_for_status()


def set_config(server, **config) -> None:
    """Change the sandbox's Exact rules (limits, token lifetimes, ...) while it runs."""
    requests.post(server.url + "/_sandbox/config", json=config, timeout=5).raise_for_status()


# ---- comparing whole imports ----------------------------------------------------------------------------------
def target_tables() -> list[str]:
    """Every target table of the registry (headers, lines and related tables)."""
    return [t.name for c in CATEGORIES.values() for t in (c.table, *(d.table for d in c.dependents))]


def dump_table(conninfo: str, table: str) -> dict:
    """Every row of a target table, keyed by Exact ID, without the columns that record when it was written."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        cur = conn.execute(f"SELECT * FROM outsmart.{table}")
        cols = [d.name for d in cur.description]
        rows = {}
        for r in cur.fetchall():
            rec = {c: v for c, v in zip(cols, r, strict=True) if c not in ("id", "imported_at")}
            rec["deleted"] = rec.pop("deleted_at") is not None
            rows[str(rec["exact_id"])] = rec
        return rows


def second_database(target_db, monkeypatch, name: str) -> str:
    """A second, empty database on the same server, published as `outsmart_postgres` from now on; its conninfo."""
    import psycopg

    current = f"dbname={target_db.airflow_json['schema']}"
    with psycopg.connect(target_db.conninfo.replace(current, "dbname=postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    monkeypatch.setenv("AIRFLOW_CONN_OUTSMART_POSTGRES", json.dumps({**target_db.airflow_json, "schema": name}))
    return target_db.conninfo.replace(current, f"dbname={name}")
