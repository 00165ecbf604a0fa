"""`make bench` (not part of `make test`): measure, side by side on this machine, and print ratios.

1. Load: our merge loader vs raw COPY into the empty target (the limit) vs Airflow's PostgresHook.insert_rows
   (replace=True) vs pandas to_sql into a staging table + merge; initial load and a re-load with 1 % changed rows
   (rows rewritten counted from xmin). Every method's table is compared with the expected one.
2. End to end: a full relations import from the sandbox (no added latency) through hook, transform and loader:
   rows/s, API calls, peak memory (in a child process); then an incremental run after 1 % changed.
3. Parse: time to parse the DAG file.
4. Streams (#13, bench/streams.py): the API calls of a round of all 14 categories with the demo-pro sandbox, this
   tree against the tree before the landing (a git worktree of `--before`), side by side; what a filter change
   costs; what landing costs locally per 1,000 rows.

6. Companies (#21, bench/companies.py): a round's wall time, scheduler and worker CPU and peak memory for 1, 10 and
   50 companies, on the LocalExecutor and on Celery with 1 and 2 workers, and the calls per company.

Options: `--sizes 10000,100000` (load), `--e2e 100000,1000000` (accounts; 0 skips), `--no-streams` (skips 4),
`--streams-parts rounds,filters,landing`, `--before ae96de6` ('' skips the before tree), `--landing 10000,100000`,
`--companies 1,10,50` ('' skips 6), `--companies-executors local,celery1,celery2`, `--companies-size 100`,
`--out bench/results/bench.json`.
`--out bench/results/bench.json`, `--no-webhooks` (skips 5).
5. Webhooks (#22, bench/webhooks.py): Exact calls a day for one company at a 5-minute freshness target, polling alone
   against webhooks + 6-hourly polling, for a quiet and a busy division, from the measured calls per read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--e2e", default="100000", help="accounts for the end-to-end run(s), comma-separated; 0 skips")
    parser.add_argument("--streams", action=argparse.BooleanOptionalAction, default=True, help="run bench/streams.py")
    parser.add_argument("--streams-parts", default="rounds,filters,landing")
    parser.add_argument("--before", default="ae96de6", help="the commit to compare the rounds with ('' skips it)")
    parser.add_argument("--landing", default="10000,100000", help="synthetic accounts to land, comma-separated")
    parser.add_argument("--companies", default="1,10,50", help="companies per round for part 6 ('' skips it)")
    parser.add_argument("--companies-executors", default="local,celery1,celery2")
    parser.add_argument("--companies-size", type=int, default=100, help="accounts per company's division")
    parser.add_argument("--webhooks", action=argparse.BooleanOptionalAction, default=True, help="bench/webhooks.py")
    parser.add_argument("--out", default=str(ROOT / "bench/results/bench.json"))
    args = parser.parse_args(argv)

    from include import local_airflow

    work = Path(tempfile.mkdtemp(prefix="outsmart-bench-"))
    local_airflow.configure(work / "airflow")
    from include.outsmart_import.target_db import start_embedded, stop_embedded

    conn = start_embedded(work / "pgdata")
    os.environ["AIRFLOW_CONN_OUTSMART_POSTGRES"] = json.dumps(conn)
    results: dict = {"machine": {"cpus": os.cpu_count()}, "load": [], "e2e": None, "parse": None, "streams": None}
    try:
        from bench.load import run_load_benchmark

        for n in [int(x) for x in args.sizes.split(",") if x]:
            results["load"].extend(run_load_benchmark(conn, n))
        e2e_sizes = [int(x) for x in args.e2e.split(",") if x and int(x)]
        if e2e_sizes:
            from bench.end_to_end import run_e2e

            results["e2e"] = [run_e2e(conn, n, work) for n in e2e_sizes]
        results["parse"] = _parse_time(work)
        if args.streams:
            from bench.streams import run_streams_benchmark

            results["streams"] = run_streams_benchmark(
                conn,
                work,
                parts=tuple(p for p in args.streams_parts.split(",") if p),
                before=args.before,
                landing_sizes=tuple(int(x) for x in args.landing.split(",") if x and int(x)),
            )
        sizes = tuple(int(x) for x in args.companies.split(",") if x)
        if sizes:
            from bench.companies import run_companies_benchmark

            executors = tuple(x for x in args.companies_executors.split(",") if x)
            results["companies"] = run_companies_benchmark(sizes, executors, args.companies_size)
        if args.webhooks:
            from bench.webhooks import run_webhooks_benchmark

            results["webhooks"] = run_webhooks_benchmark()
    finally:
        stop_embedded(work / "pgdata")
    _print(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {out}")
    return 0


def _parse_time(work: Path) -> dict:
    code = (
        "import time, sys; t0 = time.perf_counter(); from include import local_airflow; from pathlib import Path; "
        f"local_airflow.configure(Path({str(work / 'parse')!r})); import airflow; t1 = time.perf_counter(); "
        "from airflow.dag_processing.dagbag import DagBag; t2 = time.perf_counter(); "
        "bag = DagBag(dag_folder=str(local_airflow.ROOT / 'dags')); t3 = time.perf_counter(); "
        "print(len(bag.dags), round(t1 - t0, 2), round(t3 - t2, 3))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    dags, airflow_import, parse = out.stdout.strip().splitlines()[-1].split()
    return {"dags": int(dags), "import_airflow_s": float(airflow_import), "parse_dag_file_s": float(parse)}


def _print(results: dict) -> None:
    print("\nLoad (seconds; ratio to raw COPY into the empty target; rows rewritten on the 1 % re-load)")
    head = (
        f"{'rows':>9}  {'method':<36} {'runs':>4} {'initial s':>9} {'x COPY':>7} {'reload s':>9} "
        f"{'rewritten':>10}  correct"
    )
    print(head + "\n" + "-" * len(head))
    for r in results["load"]:
        print(
            f"{r['rows']:>9}  {r['method']:<36} {r['runs']:>4} {r['initial_s']:>9.2f} {r['initial_ratio']:>7.2f} "
            f"{(r['reload_s'] if r['reload_s'] is not None else float('nan')):>9.2f} "
            f"{(r['rewritten'] if r['rewritten'] is not None else '-'):>10}  {r['correct']}"
        )
    print(
        "\nOurs against the others (initial / 1 % re-load; targets: <= 1.15x raw COPY, >= 4x faster than "
        "insert_rows, >= 10x faster than to_sql)"
    )
    for n in sorted({r["rows"] for r in results["load"]}):
        by = {r["method"].split(":")[0].split(" ")[0]: r for r in results["load"] if r["rows"] == n}
        ours, raw, ins, sql = by["ours"], by["raw"], by["Airflow"], by["pandas"]
        print(
            f"{n:>9}  ours = {ours['initial_s'] / raw['initial_s']:.2f}x raw COPY;  "
            f"insert_rows / ours = {ins['initial_s'] / ours['initial_s']:.1f}x / "
            f"{ins['reload_s'] / ours['reload_s']:.1f}x;  "
            f"to_sql / ours = {sql['initial_s'] / ours['initial_s']:.1f}x / {sql['reload_s'] / ours['reload_s']:.1f}x"
        )
    if results["e2e"]:
        print("\nEnd to end (relations from the sandbox, zero added latency)")
        for run in results["e2e"]:
            for k, v in run.items():
                print(f"  {k}: {v}")
        if len(results["e2e"]) > 1:
            peaks = [r["full"]["peak_rss_mb"] for r in results["e2e"]]
            print(f"  peak memory, largest vs smallest run: {peaks[-1] / peaks[0]:.2f}x (target <= 1.5x)")
    if results["parse"]:
        print(f"\nParse: {results['parse']}")
    _print_later_parts(results)


def _print_later_parts(results: dict) -> None:
    """Parts 4-6, each printed by its own module."""
    from bench.companies import print_companies
    from bench.streams import print_streams
    from bench.webhooks import print_webhooks

    for key, show in (("streams", print_streams), ("webhooks", print_webhooks), ("companies", print_companies)):
        if results.get(key):
            show(results[key])


if __name__ == "__main__":
    raise SystemExit(main())
