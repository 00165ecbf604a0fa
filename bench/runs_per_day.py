"""Runs and task instances a day, before and after the schedule followed the settings, measured side by side.

`python -m bench.runs_per_day --fires 3` starts the real Airflow twice with the same launcher as `make airflow`
(the same settings: the six standard categories enabled), lets each run for a few scheduler fires with one
minute standing for one tick, and counts what the scheduler made through the REST API:
- before: the DAG file of commit BEFORE_COMMIT, where every one of the 14 DAGs woke on a tick
  (`EXACT_IMPORT_TICK`, 15 minutes in production, here every minute) and its first task decided whether the
  import was due;
- now: the DAG file of the working tree, where each enabled category's schedule is the settings' cron (here
  every minute, standing for @hourly).
A day is then 96 ticks before and 24 fires now (the settings' @hourly).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.deployment import SETTINGS, Deployment

ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "eceae6f"  # the last commit with the 15-minute tick


def measure(label: str, fires: int, dags_folder: Path | None, env: dict[str, str], settings: dict) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"runs-per-day-{label}-"))
    dep = Deployment(work / "state", settings)
    for key, value in {**env, **({"AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder)} if dags_folder else {})}.items():
        dep.argv += ["--env", f"{key}={value}"]
    dep.start()
    try:
        t0 = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        end = t0 + dt.timedelta(minutes=fires)
        time.sleep(max((end - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0) + 5)
        dep.set_settings({**settings, "schedule": None})  # "now" stops scheduling; "before" keeps ticking
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            busy = dep.api("GET", "/dags/~/dagRuns", params={"state": ["queued", "running"], "limit": 1})
            if busy["total_entries"] == 0:
                break
            time.sleep(5)
        runs = [r for r in dep.api("GET", "/dags/~/dagRuns", params={"limit": 1000, "run_type": "scheduled"})["dag_runs"]
                if t0 <= dt.datetime.fromisoformat(r["logical_date"].replace("Z", "+00:00")) < end]
        tis = []
        for r in runs:
            tis += dep.api("GET", f"/dags/{r['dag_id']}/dagRuns/{r['dag_run_id']}/taskInstances")["task_instances"]
        durations = [ti["duration"] for ti in tis if ti.get("duration")]
        return {
            "label": label, "fires": fires, "runs": len(runs), "task_instances": len(tis),
            "failed_runs": sum(r["state"] == "failed" for r in runs),
            "imports": sum(ti["task_id"].startswith("import_") and ti["state"] == "success" for ti in tis),
            "skipped_task_instances": sum(ti["state"] == "skipped" for ti in tis),
            "task_seconds": round(sum(durations), 1),
        }
    finally:
        dep.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runs_per_day", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fires", type=int, default=3, help="scheduler fires (minutes) to count per variant")
    parser.add_argument("--out", default=str(ROOT / "bench/results/runs_per_day.json"))
    args = parser.parse_args(argv)
    settings = {**SETTINGS, "schedule": "@hourly"}
    before_dags = Path(tempfile.mkdtemp(prefix="dags-before-"))
    (before_dags / "exact_online_import.py").write_text(subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:dags/exact_online_import.py"], cwd=ROOT, check=True, capture_output=True,
        text=True).stdout)
    before = measure("before", args.fires, before_dags, {"EXACT_IMPORT_TICK": "* * * * *"}, settings)
    now = measure("now", args.fires, None, {}, {**settings, "schedule": "* * * * *"})
    rows = []
    for m, per_day in ((before, 96), (now, 24)):
        scale = per_day / m["fires"]
        rows.append({**m, "runs_a_day": round(m["runs"] * scale), "task_instances_a_day": round(m["task_instances"] * scale),
                     "failed_runs_a_day": round(m["failed_runs"] * scale),
                     "task_seconds_a_day": round(m["task_seconds"] * scale)})
    # Imports are not scaled: before, the first tick imports everything and later ticks skip until due.
    print(f"\n{'':8} {'fires':>5} {'runs':>5} {'TIs':>5} {'failed':>6} {'imports':>7} | a day: {'runs':>6} "
          f"{'TIs':>6} {'failed':>6} {'task s':>7}")
    for r in rows:
        print(f"{r['label']:8} {r['fires']:>5} {r['runs']:>5} {r['task_instances']:>5} {r['failed_runs']:>6} "
              f"{r['imports']:>7} | {r['runs_a_day']:>12,} {r['task_instances_a_day']:>6,} {r['failed_runs_a_day']:>6,} "
              f"{r['task_seconds_a_day']:>7,}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
