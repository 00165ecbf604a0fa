"""What `make airflow --executor celery` adds to the stack: a Redis broker, the result backend in the metadata
database and N `airflow celery worker` processes.

Airflow's CeleryExecutor in the scheduler puts each task on the broker (Redis); any worker takes it, runs it as
the LocalExecutor would (the task talks only to the api-server's execution API) and writes the outcome to the
result backend, where the scheduler reads it. Only command lines and environments are made here; Stack starts,
watches and stops the processes like every other component.

Kept free of Airflow and Celery imports at the top: every task process of a worker imports `task_hostname`.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
# The Celery name of the worker a task runs on, for `task_hostname` (set in each worker's environment only).
WORKER_NAME_VARIABLE = "AIRFLOW_STACK_WORKER_NAME"
REDIS_PACKAGE = "redis-server"  # the Debian archive's package, and its program


def redis_server() -> str | None:
    """The `redis-server` program, or None where it is not installed."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)), None
    )


def redis_missing_message() -> str:
    return (
        f"--executor celery needs a Redis broker, and `redis-server` is not installed. Install it from the Debian "
        f"archive: `sudo apt-get update && sudo apt-get install -y {REDIS_PACKAGE}` (or the same without sudo as "
        "root), then start again. Nothing else is needed: `make airflow` starts and stops its own Redis."
    )


def redis_argv(program: str, port: int, data_dir: Path) -> list[str]:
    """Redis on 127.0.0.1:`port`, its working folder in the state dir, and nothing kept on disk: the broker holds
    only queued task messages, which the scheduler sends again for tasks still queued after a restart."""
    return [
        program,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--protected-mode",
        "yes",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",  # stdout: the launcher's log file for it
        # Keep the command line and the environment as started: Redis's own process title overwrites both, and then
        # nothing on the machine tells which deployment a redis-server belongs to (tests look for leftovers so).
        "--set-proc-title",
        "no",
    ]


def broker_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def result_backend_url(metadata_url: str) -> str:
    """Celery's database result backend in Airflow's own metadata database (Airflow's docs ask for a database
    backend): `db+` and the same SQLAlchemy URL, host and port included (a Unix socket for the embedded one)."""
    scheme, rest = metadata_url.split("://", 1)
    return f"db+{scheme.split('+', 1)[0]}://{rest}"


def celery_env(redis_port: int, metadata_url: str, api_secret_key: str) -> dict[str, str]:
    """What every component needs on top of the common environment when the executor is Celery."""
    return {
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS["celery"],
        "AIRFLOW__CELERY__BROKER_URL": broker_url(redis_port),
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend_url(metadata_url),
        # A message a worker took and never acknowledged (the worker died) goes back to the queue after this long;
        # Airflow's own default, set here so that every worker logs no warning about it.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
        # The api-server fetches a running task's log from its worker's log server with a token signed with this
        # key: one value for the whole deployment, also for workers on other machines (README).
        "AIRFLOW__API__SECRET_KEY": api_secret_key,
        # A task instance's `hostname` names the worker that ran it (see task_hostname).
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.task_hostname",
    }


def worker_name(number: int) -> str:
    """worker1@host, worker2@host, ...: Celery's node name, unique per worker (Airflow refuses a second worker
    with a name that is already running)."""
    return f"worker{number}@{socket.gethostname()}"


def worker_argv(airflow: str, name: str, concurrency: int) -> list[str]:
    """One `airflow celery worker`. --skip-serve-logs: the workers of `make airflow` write their task logs into
    the state dir, where the api-server reads them itself; N log servers on one machine would all want port
    8793."""
    return [
        airflow,
        "celery",
        "worker",
        "--celery-hostname",
        name,
        "--concurrency",
        str(concurrency),
        "--skip-serve-logs",
    ]


def worker_env(env: dict[str, str], name: str) -> dict[str, str]:
    return {**env, WORKER_NAME_VARIABLE: name}


def worker_ready(log_file: Path, name: str, start: int = 0) -> bool:
    """True once the worker's log, from byte `start` on (what this start wrote), says Celery's "<name> ready."
    (it is connected to the broker and takes tasks)."""
    try:
        with open(log_file, "rb") as f:
            f.seek(start)
            return f"{name} ready.".encode() in f.read()
    except OSError:
        return False


def task_hostname() -> str:
    """Airflow's [core] hostname_callable on a `make airflow` worker: the worker's Celery name (worker1@host), so
    that the UI and the REST API tell which of the machine's workers ran a task instance; in the other components
    Airflow's default."""
    name = os.environ.get(WORKER_NAME_VARIABLE)
    if name:
        return name
    from airflow.utils.net import getfqdn

    return getfqdn()
