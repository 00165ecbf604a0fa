"""A `make airflow` deployment for tests: the real launcher as a subprocess, and a REST client for it.

The launcher gets shorter parse and heartbeat intervals through its `--env` option, so that a settings change
or a killed task shows in seconds instead of the production 30 s / 5 minutes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import requests

from include.airflow_stack import alive
from include.outsmart_import.registry import STANDARD
from tests.helpers.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

# What the standard demo settings enable, but scheduled by hand only: each test sets the schedule it needs.
SETTINGS = {
    "license": "standard",
    "schedule": None,
    "task_retries": 2,
    "retry_delay_seconds": 3,
    "categories": {c.name: {"enabled": True} for c in STANDARD},
}
FAST = {
    # the dag-processor re-reads the settings every 5 s instead of 30 s
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    # a task whose process died is noticed after 20 s instead of 5 minutes
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # Exact webhooks (#22): a company's topic is relayed at most every 20 s instead of 60 s, so that changes made
    # one after another in a test are each relayed at once (the debounce itself: the burst test and a unit test)
    "AIRFLOW__EXACT_ONLINE__WEBHOOK_DEBOUNCE_SECONDS": "20",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict:
    """The test session's Airflow settings (SQLite, a temp AIRFLOW_HOME) must not reach the deployment."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EXACT_IMPORT")) and k != "PYTHONPATH"}


class Deployment:
    """A `make airflow` launcher process and a REST client for the Airflow it started."""

    def __init__(
        self,
        state_dir: Path,
        settings: dict,
        executor: str = "local",
        workers: int = 2,
        concurrency: int = 1,
        companies: int = 1,
        sandbox_size: int = 300,
    ):
        """executor "celery": the CeleryExecutor with `workers` workers of `concurrency` each, and a Redis broker on a
        free port (the Debian archive's redis-server, installed with apt-get where missing)."""
        self.state_dir = state_dir
        self.executor = executor
        # A REST call's read timeout: on a loaded 2-core machine (other sessions' tests) Airflow's api-server has
        # answered after more than 60 s; a test waits for a slow answer rather than fail on it.
        self.rest_timeout = 180.0
        self.port, self.sandbox_port = free_port(), free_port()
        settings_file = state_dir.parent / f"{state_dir.name}-settings.json"
        settings_file.write_text(json.dumps(settings))
        self.argv = [
            sys.executable,
            "-m",
            "include.airflow_stack",
            "--state-dir",
            str(state_dir),
            "--port",
            str(self.port),
            "--sandbox-port",
            str(self.sandbox_port),
            "--sandbox-size",
            str(sandbox_size),
            "--companies",
            str(companies),
            "--settings",
            str(settings_file),
            *[a for k, v in FAST.items() for a in ("--env", f"{k}={v}")],
        ]
        if executor == "celery":
            from tests.helpers.debian import ensure_programs

            ensure_programs(("redis-server",), ("redis-server",))
            self.redis_port = free_port()
            self.argv += ["--executor", "celery", "--workers", str(workers), "--worker-concurrency", str(concurrency)]
            self.argv += ["--redis-port", str(self.redis_port)]
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self._token: tuple[str, float] | None = None
        self.made_connection: dict = {}

    # ---- the launcher -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 420) -> float:
        """Start the launcher and wait until it prints READY (or exits, or `timeout` passes: then stop it)."""
        started = time.monotonic()
        proc = self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()

        def drain():  # reads the launcher's output all along, so that it never blocks on a full pipe
            for line in proc.stdout:
                self.output.append(line)
                if line.startswith("READY "):
                    ready.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()

        def up() -> bool:
            if ready.is_set():
                return True
            if proc.poll() is not None:
                reader.join(5)
                if not ready.is_set():
                    raise AssertionError("make airflow exited before it was ready:\n" + "".join(self.output[-60:]))
            return ready.is_set()

        try:
            wait_until(up, timeout, "make airflow to print READY", every=0.2)
        except AssertionError:
            if proc.poll() is not None:
                raise
            self._stop_half_started(proc)
            raise AssertionError(
                f"make airflow did not get ready in {timeout:g} s:\n" + "".join(self.output[-40:])
            ) from None
        self.ready = json.loads((self.state_dir / "ready.json").read_text())
        self.passwords = {u: v["password"] for u, v in self.ready["users"].items()}
        self._token = None
        return time.monotonic() - started

    @staticmethod
    def _stop_half_started(proc: subprocess.Popen) -> None:
        """Timed out: leave no half-started Airflow behind."""
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    def stop(self, sig=signal.SIGTERM, timeout: float = 90) -> dict[str, int]:
        """Signal the launcher as Ctrl-C or a service manager would; return the pids it had started."""
        pids = dict(self.ready["pids"])
        self.stop_began = _ticks_since_boot()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        return pids

    def leftovers(self) -> list[str]:
        """What of this deployment still runs (after stop(): nothing, or the launcher failed to stop it)."""
        return processes_of(self.state_dir, self.ready["pids"].values(), getattr(self, "stop_began", None))

    # ---- one deployment for several test modules --------------------------------------------------------------
    def remember_as_made(self) -> None:
        """Note the connection as `make airflow` made it, for reuse() to put back."""
        self.made_connection = self.api("GET", "/connections/exact_online_default")

    def reuse(self, settings: dict) -> None:
        """Bring a deployment that earlier tests used back to what a fresh start with `settings` shows to a test:
        running, no sandbox faults, the connection as made, `settings` saved and parsed, no run still going.
        What earlier tests imported (runs, the OutSmart tables, the import log) stays: tests count from before."""
        from dataclasses import asdict

        from include.exact_sandbox.server import Faults

        if self.proc is None or self.proc.poll() is not None:  # a test stopped it and could not start it again
            self.start()
        self.sandbox("faults", asdict(Faults()))
        made = self.made_connection
        self.api(
            "PATCH",
            "/connections/exact_online_default",
            params={"update_mask": "extra"},
            json={"connection_id": "exact_online_default", "conn_type": made["conn_type"], "extra": self._made_extra()},
        )
        self.set_settings(settings)
        enabled = {name: bool(c.get("enabled")) for name, c in settings["categories"].items()}

        def parsed() -> bool:
            """The dag-processor has read the settings: a DAG's description names a disabled one, and its schedule
            is the settings' ("Asset or …" for a category with webhook topics; None when off or only by hand). The
            description alone is not enough when the previous settings differ only in the schedule: an event then
            relayed before the parse that puts the Asset schedule in place queued no run (seen once in CI)."""
            for name, on in enabled.items():
                dag = self.dag(name)
                schedule = (dag["timetable_summary"] or "").removeprefix("Asset or ")
                if ("disabled" in dag["description"]) == on or schedule != (
                    (settings.get("schedule") if on else None) or ""
                ):
                    return False
            return True

        self.wait_for("the settings to be parsed", parsed, timeout=300)
        self.wait_for(
            "no run still queued or running",
            lambda: (
                self.api("GET", "/dags/~/dagRuns", params={"state": ["queued", "running"], "limit": 1})["total_entries"]
                == 0
            ),
            timeout=600,
        )

    def _made_extra(self) -> str:
        """The connection's extra as made, for PATCH. Its secrets read "***", and on PATCH Airflow keeps the stored
        value of each. A connect-flow test (test_settings_page_browser) removes the "First refresh token" once a
        consent is stored: then "***" would be stored as the token itself, the hook would restart its chain from it,
        and Exact would refuse every later test ("invalid or empty chainId"). So a secret the connection no longer
        has stays out, and the chain the consent stored stays the deployment's."""
        made = json.loads(self.made_connection["extra"] or "{}")
        now = json.loads(self.api("GET", "/connections/exact_online_default")["extra"] or "{}")
        return json.dumps({k: v for k, v in made.items() if not (v == "***" and k not in now)})

    # ---- REST -------------------------------------------------------------------------------------------------
    def token(self, user="admin") -> str:
        if user != "admin":
            return self._login(user)
        if self._token is None or self._token[1] < time.monotonic():
            self._token = (self._login("admin"), time.monotonic() + 600)
        return self._token[0]

    def _login(self, user) -> str:
        r = requests.post(
            self.url + "/auth/token",
            json={"username": user, "password": self.passwords[user]},
            timeout=self.rest_timeout,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def api(self, method: str, path: str, user="admin", expect=(200,), **kw):
        r = requests.request(
            method,
            self.url + "/api/v2" + path,
            timeout=self.rest_timeout,
            headers={"Authorization": f"Bearer {self.token(user)}"},
            **kw,
        )
        assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    def set_settings(self, settings: dict | str) -> None:
        value = settings if isinstance(settings, str) else json.dumps(settings)
        self.api(
            "PATCH",
            "/variables/exact_online_import_settings",
            json={"key": "exact_online_import_settings", "value": value},
        )

    def trigger(self, category: str, **conf) -> str:
        run = self.api(
            "POST", f"/dags/exact_online_import_{category}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        return run["dag_run_id"]

    def wait_run(self, category: str, run_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/exact_online_import_{category}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        raise AssertionError(
            f"{category} {run_id} still {run['state']} after {timeout} s: {self.task_states(category, run_id)}"
        )

    def task_instances(self, category: str, run_id: str) -> dict[str, dict]:
        """{task_id: task instance}; the tasks mapped over companies also as "task_id[company]" (the plain id holds
        the first company's, the only one in a one-company deployment)."""
        tis = self.api("GET", f"/dags/exact_online_import_{category}/dagRuns/{run_id}/taskInstances")
        out: dict[str, dict] = {}
        for ti in sorted(tis["task_instances"], key=lambda t: (t["task_id"], t.get("map_index", -1))):
            out.setdefault(ti["task_id"], ti)
            if ti.get("map_index", -1) >= 0:
                out[f"{ti['task_id']}[{ti.get('rendered_map_index') or ti['map_index']}]"] = ti
        return out

    def task_states(self, category: str, run_id: str) -> dict[str, str]:
        return {t: ti["state"] for t, ti in self.task_instances(category, run_id).items()}

    def task_log(self, category: str, run_id: str, task_id: str, try_number: int = 1, map_index: int | None = None):
        """The task's log lines; a task mapped over companies: the first company's unless `map_index` says."""
        if map_index is None:
            map_index = -1 if task_id == "check_settings" else 0
        r = requests.get(
            f"{self.url}/api/v2/dags/exact_online_import_{category}/dagRuns/{run_id}/taskInstances/"
            f"{task_id}/logs/{try_number}",
            params={"map_index": map_index},
            timeout=30,
            headers={"Authorization": f"Bearer {self.token()}", "Accept": "application/json"},
        )
        r.raise_for_status()
        return r.json()["content"]

    def dag(self, category: str) -> dict:
        return self.api("GET", f"/dags/exact_online_import_{category}")

    def wait_for(self, what: str, check, timeout: float = 120, every: float = 2):
        return wait_until(check, timeout, what, every)

    # ---- the OutSmart database and the sandbox ----------------------------------------------------------------
    def outsmart(self, sql: str, params=None) -> list[tuple]:
        import psycopg

        from include.outsmart_import.target_db import conninfo_from_airflow_json

        with psycopg.connect(conninfo_from_airflow_json(self.ready["outsmart"])) as conn:
            return conn.execute(sql, params).fetchall()

    def sandbox(self, what: str, body: dict | None = None) -> dict:
        r = (
            requests.post(f"{self.sandbox_url}/_sandbox/{what}", json=body, timeout=30)
            if body is not None
            else requests.get(f"{self.sandbox_url}/_sandbox/{what}", timeout=30)
        )
        r.raise_for_status()
        return r.json()


def _ticks_since_boot() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK")


def processes_of(state_dir: Path, components: Iterable[int] = (), started_before: float | None = None) -> list[str]:
    """Every live process whose environment belongs to this deployment (components, task processes, the
    sandbox), whose command line names its folder (the embedded PostgreSQL, Redis), or that is in the session or
    process group of one of its `components` (their pids: each starts a session of its own). The last catches
    the processes that rewrite their title, which overwrites the environment too: the api-server, the Celery
    workers and their pool processes. `started_before` (clock ticks since boot, as /proc/PID/stat counts): a
    component's pid that another process got again after the stop does not make that process ours."""
    marks = (f"AIRFLOW_HOME={state_dir / 'home'}".encode(), str(state_dir).encode())
    groups = set(components)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            pgrp, session, started = int(fields[2]), int(fields[3]), int(fields[19])
        except (OSError, ValueError, IndexError):
            continue
        in_group = bool({pgrp, session} & groups) and (started_before is None or started < started_before)
        ours = marks[0] in environ.split(b"\0") or marks[1] in cmdline or in_group
        if ours and alive(int(entry)):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")[:120]
            found.append(f"{entry}: {command}")
    return found
