"""Run DAGs with dag.test() in their own process: `python dag_runner.py AIRFLOW_HOME DAG_ID[,DAG_ID...] [START_LINE]`.

The connections and the settings Variable come from the environment (AIRFLOW_CONN_*, AIRFLOW_VAR_*), as in the
tests. Each process has its own metadata DB (SQLite cannot take many writers); the target Postgres, the token
chain and the rate budget are shared, as they are between Airflow workers. With START_LINE (a `StartLine` folder)
the process reports ready once its DAGs are parsed and runs them when the test releases all processes at once.
Prints one JSON line.
"""

import json
import sys
from pathlib import Path

from waiting import StartLine  # tests/helpers, this script's folder

from include import local_airflow
from tests.helpers.e2e import task_states

home, dag_id = Path(sys.argv[1]), sys.argv[2]
start_line = sys.argv[3] if len(sys.argv) > 3 else None
local_airflow.configure(home)
if not (home / "airflow.db").exists():  # the caller may hand over a ready metadata DB
    local_airflow.init_db()
dags = local_airflow.load_dags()
if start_line:
    StartLine.ready_then_wait(start_line)
result = {}
for one in dag_id.split(","):
    dr = dags[one].test()
    result[one] = {"state": str(dr.state), "tasks": {k: str(v) for k, v in task_states(dr).items()}}
if "," in dag_id:
    print("DAG_RUNNER_RESULT " + json.dumps(result), flush=True)
else:
    print("DAG_RUNNER_RESULT " + json.dumps({"dag_id": dag_id, **result[dag_id]}), flush=True)
