"""End-to-end benchmark: a relations import of N accounts from the sandbox, then an incremental run after 1 %."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
from include import local_airflow
from pathlib import Path
local_airflow.configure(Path(sys.argv[1]))
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import PostgresTokenStore
from include.outsmart_import.runner import run_category
from include.outsmart_import.settings import parse_settings
from include.outsmart_import.target_db import connector
def peak_rss_mb():
    # VmHWM: this process's own peak. (getrusage's ru_maxrss survives exec on Linux: it would report the parent's
    # peak at fork time, i.e. the benchmark's DataFrames, not this import.)
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    return round(int(line.split()[1]) / 1024, 1)
settings = parse_settings({"categories": {"relations": {
    "enabled": True, "include_inactive": True, "include_blocked": True,
    "relation_types": ["customer", "prospect", "suspect", "none", "supplier"],
}}})
hook = ExactOnlineHook(token_store=PostgresTokenStore(connector()))
t = time.perf_counter()
s = run_category("relations", settings, hook, connector())
wall = time.perf_counter() - t
print("RESULT " + json.dumps({
    "wall_s": round(wall, 2), "fetched": s.fetched, "inserted": s.inserted, "updated": s.updated,
    "api_calls": s.api_calls, "http_s": round(hook.stats.http_seconds, 2), "peak_rss_mb": peak_rss_mb(),
}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(home: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(home)], capture_output=True, text=True, timeout=3600, cwd=ROOT
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(line[7:])


def run_e2e(server_conn: dict, n: int, work: Path) -> dict:
    import psycopg

    from include.outsmart_import.target_db import conninfo_from_airflow_json

    with psycopg.connect(conninfo_from_airflow_json(server_conn), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS bench_e2e")
        c.execute("CREATE DATABASE bench_e2e")
    os.environ["AIRFLOW_CONN_OUTSMART_POSTGRES"] = json.dumps({**server_conn, "schema": "bench_e2e"})
    port = _free_port()
    t = time.perf_counter()
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.exact_sandbox",
            "--port",
            str(port),
            "--size",
            str(n),
            "--minutely-limit",
            "100000",
            "--daily-limit",
            "1000000",
            "--accounts-only",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            requests.get(url + "/_sandbox/health", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.5)
    generated = time.perf_counter() - t
    os.environ["AIRFLOW_CONN_EXACT_ONLINE_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": url,
            "login": "sandbox-client",
            "password": "sandbox-secret",
            "extra": {"division": 3000001, "refresh_token": "sandbox-refresh-token-0"},
        }
    )
    try:
        full = _child(work / f"e2e-full-{n}")
        # 1 % of the accounts change (every 100th gets a new name and rowversion).
        accounts = requests.post(
            url + "/_sandbox/records", json={"entity": "accounts", "every": 100, "fields": ["ID", "Name"]}, timeout=300
        ).json()["records"]
        requests.post(
            url + "/_sandbox/mutate",
            json={
                "entity": "accounts",
                "op": "update",
                "records": [{"ID": a["ID"], "Name": a["Name"] + " *"} for a in accounts],
            },
            timeout=300,
        ).raise_for_status()
        incremental = _child(work / f"e2e-incr-{n}")
    finally:
        sandbox.terminate()
    pages = -(-n // 1000)
    return {
        "accounts": n,
        "sandbox_generation_s": round(generated, 1),
        "full": full,
        "full_rows_per_s": round(full["fetched"] / full["wall_s"]),
        "full_api_calls_target": f"<= {pages + 3}",
        "seconds_per_1000_row_page_outside_http": round((full["wall_s"] - full["http_s"]) / pages, 3),
        "incremental": incremental,
        "incremental_vs_full": f"{incremental['api_calls']} vs {full['api_calls']} calls, "
        f"{incremental['wall_s']} vs {full['wall_s']} s",
    }
