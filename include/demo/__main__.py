"""`make demo`: import every enabled category from the Exact Online sandbox into the OutSmart Postgres.

1. Starts the sandbox (its own process, on a free loopback port) with seeded Dutch test data.
2. Uses the `outsmart_postgres` connection if one is configured, else starts an embedded PostgreSQL in .demo/.
3. Runs each enabled category's DAG through Airflow (`dag.test()`, the real tasks and connections).
4. Changes some accounts in the sandbox and runs the enabled categories again: an incremental run.
5. Prints, per category and run, the summary from `outsmart.import_log`.

`--companies N` (#21): the sandbox serves N divisions through one consent, and the settings gain companies 2..N,
each with its own division and its own OutSmart database (`outsmart_company<i>` on the same server) and the same
choices as the first; every round imports all of them (one mapped task per company) and the summary is printed
per company.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from include import local_airflow
from include.demo.companies import MAX_COMPANIES

ROOT = local_airflow.ROOT
DEMO_DIR = ROOT / ".demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_sandbox(size: int, seed: int, companies: int = 1) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "include.exact_sandbox",
        "--port",
        str(port),
        "--size",
        str(size),
        "--seed",
        str(seed),
    ]
    proc = subprocess.Popen(
        [*argv, "--companies", str(companies)] if companies > 1 else argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(100):
        try:
            requests.get(url + "/_sandbox/health", timeout=1)
            return proc, url
        except requests.ConnectionError:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise RuntimeError("the sandbox did not start: " + output) from None  # its output is the cause
            time.sleep(0.1)
    raise RuntimeError("the sandbox did not answer within 10 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--settings",
        default=str(ROOT / "include/demo/settings_standard.json"),
        help="the exact_online_import_settings Variable to use (JSON file)",
    )
    parser.add_argument("--size", type=int, default=5000, help="accounts in the sandbox")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--companies",
        type=int,
        default=1,
        choices=range(1, MAX_COMPANIES + 1),
        metavar=f"1..{MAX_COMPANIES}",
        help="companies to import, each its own sandbox division and OutSmart database (default 1)",
    )
    args = parser.parse_args(argv)

    settings_text = Path(args.settings).read_text()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)  # every demo starts from an empty target and a new token chain
    local_airflow.configure(DEMO_DIR / "airflow")
    os.environ.setdefault("EXACT_IMPORT_RETRIES", "0")
    sandbox, url = _start_sandbox(args.size, args.seed, args.companies)
    try:
        return _run(url, settings_text, args)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def _run(url: str, settings_text: str, args) -> int:
    from include.demo.mutations import apply_demo_mutations
    from include.outsmart_import.companies import companies_of
    from include.outsmart_import.settings import parse_settings
    from include.outsmart_import.target_db import ensure_target, stop_embedded

    target = ensure_target(DEMO_DIR / "pgdata")
    settings_text = _with_companies(settings_text, args.companies)
    _use_sandbox_and_settings(url, settings_text)
    settings = parse_settings(settings_text)
    print(f"Exact Online sandbox: {url} ({args.size} accounts, seed {args.seed})")
    where = "embedded PostgreSQL in .demo/pgdata" if target == "embedded" else "connection outsmart_postgres"
    print(f"OutSmart database: {where}")
    if args.companies > 1:
        print(f"Companies: {args.companies}, each its own division and database (outsmart_company2..)")
    print("Preparing Airflow (metadata database in .demo/airflow) ...", flush=True)
    local_airflow.init_db()
    dags = local_airflow.load_dags()

    outcome: dict[tuple[str, int], str] = {}
    print("\nRun 1: first import", flush=True)
    _run_round(dags, settings, 1, outcome)
    # Some changes in Exact between runs: edits, new customers, deletions, a price change, a paid invoice.
    print("Changed in the sandbox: " + apply_demo_mutations(url))
    print("\nRun 2: incremental import (Sync API)", flush=True)
    _run_round(dags, settings, 2, outcome)

    failed = [k for k, v in outcome.items() if "failed" in v]
    for c in companies_of(settings):
        rows, totals, counts = _read_results(_conn_env(c.target_conn_id))
        if args.companies > 1:
            print(f"\n===== Company {c.key} ({c.title}): division {c.division or 'of exact_online_default'} =====")
        _print_summary(rows, outcome)
        print(f"\noutsmart.relations now holds {totals[0]} relations ({totals[1]} soft-deleted).")
        for table, n in counts:
            print(f"outsmart.{table}: {n} rows")
        failed += [r for r in rows if r[1] not in ("success", "dry_run")]
    if target == "embedded":
        stop_embedded(DEMO_DIR / "pgdata")
    return 1 if failed else 0


def _conn_env(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def _with_companies(settings_text: str, count: int) -> str:
    """The settings with companies 2..count (include/demo/companies.py), each database made new on the first
    company's server (same login)."""
    if count < 2:
        return settings_text
    import psycopg

    from include.demo.companies import database_of, with_companies
    from include.outsmart_import.target_db import conninfo_from_airflow_json

    first = json.loads(os.environ[_conn_env("outsmart_postgres")])
    with psycopg.connect(conninfo_from_airflow_json(first), autocommit=True) as admin:
        for i in range(2, count + 1):
            db = database_of(i)
            admin.execute(f"DROP DATABASE IF EXISTS {db}")  # every demo starts from empty targets
            admin.execute(f"CREATE DATABASE {db}")
            os.environ[_conn_env(db)] = json.dumps({**first, "schema": db})
    return json.dumps(with_companies(json.loads(settings_text), count))


def _use_sandbox_and_settings(url: str, settings_text: str) -> None:
    """Publish the sandbox as the `exact_online_default` connection and the settings as the Variable, the way
    Airflow reads them from the environment."""
    from include.exact_sandbox.server import SandboxConfig

    cfg = SandboxConfig()
    os.environ["AIRFLOW_CONN_EXACT_ONLINE_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": url,
            "login": cfg.client_id,
            "password": cfg.client_secret,
            "extra": {"division": cfg.division, "refresh_token": cfg.initial_refresh_token},
        }
    )
    os.environ["AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS"] = settings_text


def _run_round(dags, settings, round_no: int, outcome: dict[tuple[str, int], str]) -> None:
    """Run every category's DAG that the settings allow for some company (each run imports all of them); note in
    `outcome` how it ended, or why it did not run."""
    from include.outsmart_import.registry import CATEGORIES
    from include.outsmart_import.scheduling import companies_for_run

    for name, category in CATEGORIES.items():
        try:
            chosen, why = companies_for_run(category, settings, None, None)
        except Exception as exc:  # disabled or not licensed: shown in the summary, not run
            chosen, why = [], f"{type(exc).__name__}: {exc}"
        if not chosen:
            outcome[(name, round_no)] = why
            continue
        started = time.perf_counter()
        dr = dags[category.dag_id].test()
        outcome[(name, round_no)] = f"DAG run {dr.state} in {time.perf_counter() - started:.1f} s"


def _read_results(conn_env: str) -> tuple[list, tuple, list[tuple[str, int]]]:
    """From a company's OutSmart database: the import log's rows, the relations (total, soft-deleted) and every
    other table's row count."""
    import psycopg

    from include.outsmart_import.registry import CATEGORIES
    from include.outsmart_import.target_db import conninfo_from_airflow_json

    conn_json = json.loads(os.environ[conn_env])
    with psycopg.connect(conninfo_from_airflow_json(conn_json)) as conn:
        rows = conn.execute(
            "SELECT category, status, fetched, inserted, updated, unchanged, filtered_out, rejected, deleted, "
            "api_calls, round(extract(epoch FROM ended_at - started_at)::numeric, 2), error, streams, derive "
            "FROM outsmart.import_log ORDER BY category, id"
        ).fetchall()
        totals = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM outsmart.relations"
        ).fetchone()
        # Every other table, with the relations' addresses and contact persons and the orders' lines.
        tables = [t for c in CATEGORIES.values() for t in (c.table, *(d.table for d in c.dependents))]
        counts = [
            (t.name, conn.execute(f"SELECT count(*) FROM outsmart.{t.name}").fetchone()[0])
            for t in tables
            if t.name != "relations" and conn.execute("SELECT to_regclass(%s)", (f"outsmart.{t.name}",)).fetchone()[0]
        ]
    return rows, totals, counts


def _print_summary(rows, outcome) -> None:
    head = (
        "category",
        "run",
        "status",
        "fetched",
        "inserted",
        "updated",
        "unchanged",
        "filtered",
        "rejected",
        "deleted",
        "api calls",
        "seconds",
        "streams read/reused",
        "derive",
    )
    table = []
    by_cat: dict[str, list] = {}
    for r in rows:
        by_cat.setdefault(r[0], []).append(r)
    from include.outsmart_import.registry import CATEGORIES

    for name in CATEGORIES:
        logged = by_cat.get(name, [])
        for i, r in enumerate(logged, 1):
            streams = r[12] or []
            read = sum(1 for s in streams if s["action"] != "reused")
            table.append((name, str(i), r[1], *(str(v) for v in r[2:11]), f"{read}/{len(streams) - read}", r[13] or ""))
        if not logged:
            reason = outcome.get((name, 1), "")
            table.append(
                (
                    name,
                    "-",
                    reason.split(":")[0]
                    .replace("CategoryNotEnabled", "disabled")
                    .replace("LicenseRequired", "needs Pro"),
                    *([""] * 11),
                )
            )
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print("\nImport summary (outsmart.import_log)\n" + line + "\n" + "-" * len(line))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))
    # The Exact budget a round spends: categories share streams, so a stream read once serves the others.
    for round_no in (1, 2):
        runs = [logged[round_no - 1] for logged in by_cat.values() if len(logged) >= round_no]
        reads = [s for r in runs for s in (r[12] or []) if s["action"] != "reused"]
        print(
            f"Run {round_no}: {sum(r[9] or 0 for r in runs)} Exact API calls for {len(runs)} categories "
            f"({len(reads)} stream reads: {', '.join(sorted(s['stream'] for s in reads))})"
        )
    errors = [r for r in rows if r[11]]
    for r in errors:
        print(f"\n{r[0]}: {r[11]}")


if __name__ == "__main__":
    raise SystemExit(main())
