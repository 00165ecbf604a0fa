"""The DAG file: 14 DAGs from the registry, parsed without Variables, connections or network."""

from __future__ import annotations

import subprocess
import sys

import pytest

from include.outsmart_import.registry import CATEGORIES

EXPECTED = {f"exact_online_import_{c}" for c in [
    "relations", "materials", "hour_types", "categories", "employees", "payment_transactions", "warehouses",
    "price_agreements", "sales_orders", "shop_orders", "goods_deliveries", "quotations", "project_planning",
    "assembly_orders"]}


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    from include.local_airflow import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_fourteen_dags_without_import_errors(bag):
    assert bag.import_errors == {}
    assert set(bag.dags) == EXPECTED == {c.dag_id for c in CATEGORIES.values()}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_policy(bag, dag_id):
    dag = bag.dags[dag_id]
    category = dag_id.removeprefix("exact_online_import_")
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert set(dag.params) >= {"full_refresh", "dry_run"}
    assert dag.params["full_refresh"] is False and dag.params["dry_run"] is False
    assert dag.doc_md and "exact-online" in dag.tags
    assert ("pro" in dag.tags) is CATEGORIES[category].pro
    exact_tasks = [t for t in dag.tasks if t.task_id.startswith("import_")]
    assert [t.task_id for t in exact_tasks] == [f"import_{category}"]
    assert all(t.pool == "exact_api" for t in exact_tasks)
    # Only the import task talks to Exact; the others must not take a slot of the shared pool.
    assert all(t.pool != "exact_api" for t in dag.tasks if t not in exact_tasks)
    assert [t.task_id for t in dag.topological_sort()] == ["check_settings", "migrate_target_schema", f"import_{category}"]


def test_parsing_touches_no_network_or_variable(tmp_path):
    """Parse the DAG file in a fresh interpreter where every socket connect and Variable.get raises."""
    code = f"""
import socket, sys, time
def refuse(*a, **k):
    raise RuntimeError("network used at parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
from include import local_airflow
local_airflow.configure(__import__('pathlib').Path({str(tmp_path)!r}))
import airflow.sdk
def no_var(*a, **k):
    raise RuntimeError("Variable read at parse time")
airflow.sdk.Variable.get = staticmethod(no_var)
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=str(local_airflow.ROOT / 'dags'))
print(len(bag.dags), bag.import_errors, round(time.perf_counter() - t, 2))
assert not bag.import_errors, bag.import_errors
assert 'pandas' not in sys.modules, 'pandas imported at parse time'
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    n, _, seconds = out.stdout.strip().splitlines()[-1].partition(" {} ")
    assert n == "14"
    print(f"\nparsed 14 DAGs in {seconds} s (after importing airflow)")
