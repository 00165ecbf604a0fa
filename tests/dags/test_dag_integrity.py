"""The DAG file: one DAG per category of the registry, parsed without Variables, connections or network."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from include.outsmart_import.registry import CATEGORIES

EXPECTED = {c.dag_id for c in CATEGORIES.values()}


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    from include.local_airflow import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_one_dag_per_category_without_import_errors(bag):
    assert bag.import_errors == {}
    assert set(bag.dags) == EXPECTED and len(bag.dags) == len(CATEGORIES)
    assert {f"exact_online_import_{name}" for name in CATEGORIES} == EXPECTED  # the DAG id names the category


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
    assert [t.task_id for t in dag.topological_sort()] == ["check_settings", f"import_{category}"]
    assert dag.get_task(f"import_{category}").is_mapped  # one per company (#21)


_PARSE = """
import json, os, socket, sys, time
def refuse(*a, **k):
    raise RuntimeError("network used at parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
from include import local_airflow
local_airflow.configure(__import__('pathlib').Path(sys.argv[1]))
import airflow.sdk
reads = []
real_get = airflow.sdk.Variable.get
def get(key, default=None, **kw):
    reads.append(key)
    if os.environ.get("FAIL_VARIABLE_READ"):
        raise RuntimeError("execution API unreachable")
    return real_get(key, default=default, **kw)
airflow.sdk.Variable.get = staticmethod(get)
if os.environ.get("PARSING_DAG_ID"):  # what a worker does when it starts a task of that DAG
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID
    os.environ[_AIRFLOW_PARSING_CONTEXT_DAG_ID] = os.environ["PARSING_DAG_ID"]
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=str(local_airflow.ROOT / 'dags'))
seconds = round(time.perf_counter() - t, 2)
def _cron(tt):  # a cron OR webhook events (AssetOrTimeSchedule): its cron part
    return getattr(tt, "timetable", tt)
def _assets(tt):
    return sorted(a.uri for a in getattr(getattr(tt, "asset_condition", None), "objects", ()))
dags = {d.dag_id: {"timetable": type(_cron(d.timetable)).__name__, "events": type(d.timetable).__name__,
                   "assets": _assets(d.timetable), "cron": getattr(_cron(d.timetable), "expression", None),
                   "tz": str(getattr(_cron(d.timetable), "timezone", "")), "description": d.description,
                   "retries": d.default_args["retries"], "retry_delay": d.default_args["retry_delay"].total_seconds()}
        for d in bag.dags.values()}
errors = {os.path.basename(k): v for k, v in bag.import_errors.items()}
print(json.dumps({"dags": dags, "errors": errors, "reads": reads, "seconds": seconds,
                  "pandas": "pandas" in sys.modules}))
"""


def parse(tmp_path, settings=None, **env) -> dict:
    """Parse the DAG folder in a fresh interpreter (Airflow reads its config and the DAG file once per process)."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS", "EXACT_IMPORT_RETRIES")
    }
    if settings is not None:
        full_env["AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS"] = (
            settings if isinstance(settings, str) else json.dumps(settings)
        )
    full_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, str(tmp_path)], capture_output=True, text=True, timeout=180, env=full_env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh interpreter per parse
def test_parsing_reads_only_the_settings_variable_and_touches_no_network(tmp_path):
    """Every socket connect raises; the only outside value read is the settings Variable (once per file)."""
    result = parse(tmp_path)
    assert result["errors"] == {}
    assert len(result["dags"]) == len(CATEGORIES)
    assert result["reads"] == ["exact_online_import_settings"] * 2  # the DAG file and the settings check
    assert result["pandas"] is False, "pandas imported at parse time"
    print(f"\nparsed {len(result['dags'])} DAGs in {result['seconds']} s (after importing airflow)")


@pytest.mark.slow  # a fresh interpreter per parse
def test_schedule_follows_the_settings(tmp_path):
    """Enabled and licensed: the settings' cron in their time zone. Disabled, unlicensed: no schedule at all."""
    result = parse(
        tmp_path,
        {
            "license": "standard",
            "schedule": "0 6 * * 1-5",
            "timezone": "Europe/Brussels",
            "task_retries": 4,
            "retry_delay_seconds": 30,
            "categories": {
                "relations": {"enabled": True},
                "materials": {"enabled": True},
                "sales_orders": {"enabled": True},
            },
        },
    )
    dags = result["dags"]
    scheduled = {d for d, v in dags.items() if v["timetable"] == "CronTriggerTimetable"}
    assert scheduled == {"exact_online_import_relations", "exact_online_import_materials"}
    for d in scheduled:
        assert (dags[d]["cron"], dags[d]["tz"]) == ("0 6 * * 1-5", "Europe/Brussels")
        assert "scheduled 0 6 * * 1-5 (Europe/Brussels) or on an Exact webhook event" in dags[d]["description"]
        assert dags[d]["events"] == "AssetOrTimeSchedule"
    # The cron OR an event on one of the category's streams that Exact announces (#22): relations read the accounts
    # and the contacts (topics Accounts, Contacts); the addresses have no topic, so only the cron reads them.
    assert dags["exact_online_import_relations"]["assets"] == [
        "exact-online://default/sync/CRM/Accounts",
        "exact-online://default/sync/CRM/Contacts",
    ]
    assert dags["exact_online_import_materials"]["assets"] == ["exact-online://default/sync/Logistics/Items"]
    assert dags["exact_online_import_sales_orders"]["timetable"] == "NullTimetable"
    assert "needs the Exact Online Pro licence" in dags["exact_online_import_sales_orders"]["description"]
    assert "disabled in the settings" in dags["exact_online_import_employees"]["description"]
    assert {(v["retries"], v["retry_delay"]) for v in dags.values()} == {(4, 30.0)}

    pro = parse(tmp_path, {"license": "pro", "schedule": None, "categories": {"sales_orders": {"enabled": True}}})
    assert {v["timetable"] for v in pro["dags"].values()} == {"NullTimetable"}
    assert "only by hand" in pro["dags"]["exact_online_import_sales_orders"]["description"]


@pytest.mark.slow  # a fresh interpreter per parse
def test_invalid_settings_schedule_nothing_and_show_one_import_error(tmp_path):
    result = parse(tmp_path, {"categories": {"relations": {"enabled": True, "inlcude_blocked": True}}})
    assert set(result["dags"]) == EXPECTED, "the import DAGs stay while the settings are broken"
    assert {v["timetable"] for v in result["dags"].values()} == {"NullTimetable"}
    assert list(result["errors"]) == ["exact_online_import_settings_check.py"]
    assert (
        "categories.relations.inlcude_blocked: unknown key" in result["errors"]["exact_online_import_settings_check.py"]
    )
    assert "the settings are invalid" in result["dags"]["exact_online_import_relations"]["description"]


@pytest.mark.slow  # a fresh interpreter per parse
def test_unreadable_variable_keeps_the_last_dags_but_never_blocks_a_starting_task(tmp_path):
    # dag-processor: a failed read is an import error of the DAG file, so Airflow keeps the DAGs it last parsed
    # (with their schedules) instead of unscheduling all of them because of a hiccup.
    result = parse(tmp_path, FAIL_VARIABLE_READ="1")
    assert (
        "exact_online_import.py" in result["errors"]
        and "execution API unreachable" in result["errors"]["exact_online_import.py"]
    )
    # worker starting a task of one DAG: only that DAG is built, and it is built even when the read fails.
    worker = parse(tmp_path, FAIL_VARIABLE_READ="1", PARSING_DAG_ID="exact_online_import_materials")
    assert list(worker["dags"]) == ["exact_online_import_materials"] and worker["errors"] == {}
