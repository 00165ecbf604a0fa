"""Run DAGs with dag.test() in their own process: `python dag_runner.py AIRFLOW_HOME DAG_ID[,DAG_ID...] [START_AT]`.

The connections and the settings Variable come from the environment (AIRFLOW_CONN_*, AIRFLOW_VAR_*), as in the
tests. Each process has its own metadata DB (SQLite cannot take many writers); the target Postgres, the token
chain and the rate budget are shared, as they are between Airflow workers. Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

from include import local_airflow

home, dag_id = Path(sys.argv[1]), sys.argv[2]
start_at = float(sys.argv[3]) if len(sys.argv) > 3 else 0
local_airflow.configure(home)
if not (home / "airflow.db").exists():  # the caller may hand over a ready metadata DB
    local_airflow.init_db()
dags = local_airflow.load_dags()
time.sleep(max(start_at - time.time(), 0))
result = {}
for one in dag_id.split(","):
    dr = dags[one].test()
    result[one] = {"state": str(dr.state), "tasks": {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}}
if "," in dag_id:
    print("DAG_RUNNER_RESULT " + json.dumps(result), flush=True)
else:
    print("DAG_RUNNER_RESULT " + json.dumps({"dag_id": dag_id, **result[dag_id]}), flush=True)
