"""Part 6 of `make bench` (#21): what a round costs as companies are added, on each executor, side by side.

For each executor set-up (LocalExecutor; CeleryExecutor with 1 and with 2 workers, concurrency 2) and each number of
companies (1, 10, 50 by default), the real deployment is started as `make airflow --companies N` starts it (the
same launcher, tests/helpers/deployment.py), the six standard categories are triggered at once for every company,
and measured:
- the round's wall time (first trigger to the last run's end);
- CPU seconds (user + system) of the scheduler and of the workers during the round, each with every process it
  started (the LocalExecutor's task processes are the scheduler's children; Celery's are the workers');
- the peak resident memory of each, sampled every half second;
- Exact API calls per company (the sandbox's count per division): unchanged from one company means no company
  pays for another.
Options: `--companies 1,10,50`, `--companies-executors local,celery1,celery2`, `--companies-size 100` (accounts per
division).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

EXECUTORS = {"local": ("local", 0), "celery1": ("celery", 1), "celery2": ("celery", 2)}


class _Sampler:
    """CPU and peak RSS of process trees, by role, while a round runs.

    A tree's CPU at a moment is the sum over its live processes of their own time plus their reaped children's
    (`children_user`/`children_system`): a task process that has ended is in its parent's children's time, and only
    there. (Keeping its last own sample as well counted it twice: the first run of this bench showed a LocalExecutor
    scheduler with more CPU seconds than the 2 cores have.) The round's CPU is the difference of two such sums."""

    def __init__(self, roots: dict[str, int]):
        import psutil

        self.psutil = psutil
        self.roots = roots
        self.peak_mb = dict.fromkeys(roots, 0.0)
        self.cpu_now = dict.fromkeys(roots, 0.0)
        self.stop = threading.Event()

    def _tree(self, pid: int) -> list:
        try:
            root = self.psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except self.psutil.Error:
            return []

    def sample(self) -> None:
        for role, pid in self.roots.items():
            rss = cpu = 0.0
            for p in self._tree(pid):
                try:
                    t = p.cpu_times()
                    rss += p.memory_info().rss / 2**20
                    cpu += t.user + t.system + t.children_user + t.children_system
                except self.psutil.Error:
                    continue
            self.peak_mb[role] = max(self.peak_mb[role], rss)
            self.cpu_now[role] = cpu

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    def cpu(self) -> dict[str, float]:
        return dict(self.cpu_now)


def _one(executor: str, workers: int, companies: int, size: int, work: Path) -> dict:
    from include.outsmart_import.registry import STANDARD
    from tests.helpers.deployment import SETTINGS, Deployment

    home = work / f"{executor}{workers}-{companies}"
    home.mkdir(parents=True)
    dep = Deployment(
        home / "state",
        SETTINGS,
        executor=executor,
        workers=max(workers, 1),
        concurrency=2,
        companies=companies,
        sandbox_size=size,
    )
    dep.start(timeout=900)
    try:
        pids = dep.ready["pids"]
        roles = {"scheduler": pids["scheduler"], **{k: v for k, v in pids.items() if k.startswith("worker")}}
        sampler = _Sampler(roles)
        sampler.sample()
        before = sampler.cpu()
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        started = time.monotonic()
        runs = {c.name: dep.trigger(c.name) for c in STANDARD}
        states = {name: dep.wait_run(name, run_id, timeout=3600)["state"] for name, run_id in runs.items()}
        wall = time.monotonic() - started
        sampler.stop.set()
        thread.join()
        sampler.sample()
        after = sampler.cpu()
        calls = dep.sandbox("stats")["division_calls"]
    finally:
        dep.stop()
    workers_cpu = sum(v - before[k] for k, v in after.items() if k.startswith("worker"))
    return {
        "executor": f"{executor}" + (f" {workers} worker{'s' if workers > 1 else ''}" if executor == "celery" else ""),
        "companies": companies,
        "all_succeeded": set(states.values()) == {"success"},
        "round_s": round(wall, 1),
        "scheduler_cpu_s": round(after["scheduler"] - before["scheduler"], 1),
        "workers_cpu_s": round(workers_cpu, 1),
        "scheduler_peak_mb": round(sampler.peak_mb["scheduler"]),
        "workers_peak_mb": round(sum(v for k, v in sampler.peak_mb.items() if k.startswith("worker"))),
        "calls_per_company": sorted(set(calls.values())),
        "load_1m": round(os.getloadavg()[0], 1),  # at the round's end: what else the machine was doing
    }


def run_companies_benchmark(sizes: tuple[int, ...], executors: tuple[str, ...], size: int) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix="outsmart-bench-companies-"))
    rows = []
    try:
        # sizes outer: an interrupted run still has every executor side by side for the sizes it finished
        for n in sizes:
            for name in executors:
                executor, workers = EXECUTORS[name]
                print(f"companies: {name}, {n} companies ...", flush=True)
                rows.append(_one(executor, workers, n, size, work))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def print_companies(rows: list[dict]) -> None:
    print("\nCompanies (#21): a round of the six standard categories for every company, triggered at once")
    head = (
        f"{'executor':<18} {'companies':>9} {'ok':>3} {'round s':>8} {'s/company':>9} {'sched CPU s':>11} "
        f"{'workers CPU s':>13} {'sched MB':>8} {'workers MB':>10} {'load':>5}  calls/company"
    )
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(
            f"{r['executor']:<18} {r['companies']:>9} {'yes' if r['all_succeeded'] else 'NO':>3} {r['round_s']:>8} "
            f"{r['round_s'] / r['companies']:>9.1f} {r['scheduler_cpu_s']:>11} {r['workers_cpu_s']:>13} "
            f"{r['scheduler_peak_mb']:>8} {r['workers_peak_mb']:>10} {r.get('load_1m', ''):>5}  "
            f"{r['calls_per_company']}"
        )
