"""`make airflow --executor celery`: the command lines, environments and checks the launcher makes for the
CeleryExecutor, and the order it stops things in (the real stack: tests/deployment/test_celery_deployment.py)."""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from include.airflow_stack import Stack, StackError, StackOptions, __main__, airflow_env, alive, celery_executor
from include.airflow_stack.celery_executor import (
    WORKER_NAME_VARIABLE,
    redis_argv,
    worker_argv,
    worker_env,
    worker_name,
    worker_ready,
)

SECRET = {
    "jwt_secret": "j" * 64,
    "fernet_key": "f",
    "api_secret_key": "k" * 32,
    "passwords": {"admin": "pw", "viewer": "pw2"},
}
METADATA = "postgresql+psycopg2://postgres@/airflow?host=/tmp/x&port=5432"


def test_celery_env_points_every_component_at_redis_and_the_metadata_database(tmp_path):
    options = StackOptions(state_dir=tmp_path, port=8099, executor="celery", redis_port=16379)
    env = airflow_env(options, METADATA, SECRET)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:16379/0"
    # Celery's database result backend, in Airflow's own database, over the same Unix socket
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@/airflow?host=/tmp/x&port=5432"
    # the workers' tasks reach the api-server's execution API as the LocalExecutor's do
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8099/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRET["jwt_secret"]
    assert env["AIRFLOW__API__SECRET_KEY"] == SECRET["api_secret_key"]
    module, _, function = env["AIRFLOW__CORE__HOSTNAME_CALLABLE"].rpartition(".")
    assert getattr(importlib.import_module(module), function) is celery_executor.task_hostname


def test_the_local_executor_environment_has_no_celery_in_it(tmp_path):
    env = airflow_env(StackOptions(state_dir=tmp_path, port=8099), METADATA, SECRET)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert not [k for k in env if "CELERY" in k]
    assert "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in env and "AIRFLOW__API__SECRET_KEY" not in env


def test_each_worker_has_its_own_name_concurrency_and_no_log_server(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "box")
    names = [worker_name(n) for n in (1, 2)]
    assert names == ["worker1@box", "worker2@box"]
    argv = worker_argv("/venv/bin/airflow", names[1], 3)
    assert argv[:3] == ["/venv/bin/airflow", "celery", "worker"]
    assert argv[argv.index("--celery-hostname") + 1] == "worker2@box"
    assert argv[argv.index("--concurrency") + 1] == "3"
    assert "--skip-serve-logs" in argv  # two log servers on one machine would both want port 8793
    env = worker_env({"AIRFLOW_HOME": "/h"}, names[1])
    assert env == {"AIRFLOW_HOME": "/h", WORKER_NAME_VARIABLE: "worker2@box"}


def test_a_task_instance_hostname_names_its_worker(monkeypatch):
    monkeypatch.setenv(WORKER_NAME_VARIABLE, "worker2@box")
    assert celery_executor.task_hostname() == "worker2@box"
    monkeypatch.delenv(WORKER_NAME_VARIABLE)
    from airflow.utils.net import getfqdn

    assert celery_executor.task_hostname() == getfqdn()  # elsewhere: Airflow's default


def test_redis_listens_on_loopback_only_and_keeps_nothing(tmp_path):
    argv = redis_argv("/usr/bin/redis-server", 16379, tmp_path / "redis")
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--bind"] == "127.0.0.1" and flags["--port"] == "16379"
    assert flags["--dir"] == str(tmp_path / "redis")
    assert flags["--save"] == "" and flags["--appendonly"] == "no" and flags["--daemonize"] == "no"
    assert flags["--set-proc-title"] == "no"  # its command line still names the state dir (processes_of)


def test_a_worker_is_ready_only_by_what_this_start_wrote(tmp_path):
    log = tmp_path / "worker1.log"
    log.write_text("[info] worker1@box ready.\n")  # an earlier start
    start = log.stat().st_size
    assert not worker_ready(log, "worker1@box", start)
    with log.open("a") as f:
        f.write("[info] mingle: all alone\n[info] worker1@box ready.  [celery.apps.worker]\n")
    assert worker_ready(log, "worker1@box", start)
    assert not worker_ready(tmp_path / "missing.log", "worker1@box")


def test_without_redis_server_the_launcher_says_what_to_install_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(celery_executor, "redis_server", lambda: None)
    stack = Stack(StackOptions(state_dir=tmp_path / "state", executor="celery"))
    with pytest.raises(StackError, match=r"apt-get install -y redis-server"):
        stack.start()
    assert not (tmp_path / "state").exists() and not stack.procs


def test_a_busy_broker_port_and_impossible_numbers_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(celery_executor, "redis_server", lambda: "/usr/bin/redis-server")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} .* --redis-port"):
            Stack(StackOptions(state_dir=tmp_path, executor="celery", redis_port=port)).start()
    with pytest.raises(StackError, match="--workers must be 0 or more"):
        Stack(StackOptions(state_dir=tmp_path, executor="celery", workers=-1)).start()
    with pytest.raises(StackError, match="--worker-concurrency 1 or more"):
        Stack(StackOptions(state_dir=tmp_path, executor="celery", worker_concurrency=0)).start()


def test_the_command_line(capsys):
    args = __main__._parser().parse_args(
        ["--executor", "celery", "--workers", "3", "--worker-concurrency", "4", "--redis-port", "16379"]
    )
    options = __main__._options(args)
    assert (options.executor, options.workers, options.worker_concurrency, options.redis_port) == (
        "celery",
        3,
        4,
        16379,
    )
    default = __main__._options(__main__._parser().parse_args([]))
    assert (default.executor, default.workers, default.redis_port) == ("local", 2, 6379)
    with pytest.raises(SystemExit):
        __main__.main(["--workers", "3"])
    assert "--workers: only with --executor celery" in capsys.readouterr().err


def test_the_banner_says_which_executor_and_how_many_workers(tmp_path, capsys):
    stack = SimpleNamespace(
        options=StackOptions(state_dir=tmp_path, port=8099, executor="celery", workers=2, redis_port=16379),
        passwords={"admin": "pw", "viewer": "pw2"},
        outsmart=True,
        log_dir=tmp_path / "logs",
        worker_names=["worker1@box", "worker2@box"],
    )
    __main__._banner(stack)  # type: ignore[arg-type]
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("executor:"))
    assert "CeleryExecutor, 2 workers of concurrency 2 (worker1@box, worker2@box)" in line
    assert "redis://127.0.0.1:16379/0" in line


# A stand-in component: notes when SIGTERM reaches it in a file the test reads, and exits a little later.
_COMPONENT = """
import signal, sys, time
name, notes = sys.argv[1], sys.argv[2]
def stop(*_):
    with open(notes, "a") as f:
        f.write(name + "\\n")
    time.sleep(0.3)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
with open(notes, "a") as f:
    f.write("up " + name + "\\n")
time.sleep(60)
"""


def test_stop_ends_the_workers_first_and_redis_last(tmp_path):
    notes = tmp_path / "notes"
    stack = Stack(StackOptions(state_dir=tmp_path))
    names = ["sandbox", "redis", "api-server", "scheduler", "worker1", "worker2"]
    for name in names:
        stack.procs[name] = subprocess.Popen(
            [sys.executable, "-c", _COMPONENT, name, str(notes)], start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not notes.exists() or notes.read_text().count("up ") < len(names)):
        time.sleep(0.05)
    pids = [p.pid for p in stack.procs.values()]
    stack.stop(grace=10)
    order = [line for line in notes.read_text().splitlines() if not line.startswith("up ")]
    assert set(order[:2]) == {"worker1", "worker2"}
    assert set(order[2:5]) == {"sandbox", "api-server", "scheduler"}
    assert order[5:] == ["redis"]
    assert not [pid for pid in pids if alive(pid)]


def test_a_state_dir_from_before_keeps_its_secrets_and_gets_the_api_secret_key(tmp_path):
    from include.airflow_stack import _secrets

    old = {"jwt_secret": "j" * 64, "fernet_key": "f", "passwords": {"admin": "pw", "viewer": "pw2"}}
    (tmp_path / "secrets.json").write_text(json.dumps(old))
    values = _secrets(tmp_path)
    assert {k: values[k] for k in old} == old and len(values["api_secret_key"]) >= 32
    assert _secrets(tmp_path) == values  # made once
    assert oct((tmp_path / "secrets.json").stat().st_mode)[-3:] == "600"
