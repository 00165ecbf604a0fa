"""Shared fixtures: a private Airflow home, one embedded PostgreSQL per session (a fresh database per test that
needs one), and Exact Online sandboxes on loopback ports.

Airflow reads its configuration when first imported, so the environment is set in `pytest_configure`, before
any test module imports airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="outsmart-tests-"))


# ---- tiers: a test's tier follows from the folder it lives in ---------------------------------------------------
# `make test-fast` (the edit loop) leaves these tiers out, and single tests marked `slow`; `make test` runs all.
TIER_OF_FOLDER = {"e2e": "e2e", "reliability": "reliability", "deployment": "deployment", "bench": "bench"}


# ---- xdist (`make test` runs `-n 2 --dist loadfile`): which tests must share a worker -----------------------------
# A file's tests share one worker, so that its module fixtures (an Airflow api-server app, a DAG bag, a provider
# probe) are built once, and tests that read what an earlier test of the file left (a report over the cases
# generated before it) see it. Every deployment test of the shared stack shares one worker too, and with it the one
# Airflow stack of that worker's session (tests/deployment/conftest.py); OWN_STACK below are apart.
# (Not `--dist loadgroup`: with pytest 9 xdist 3.8 can no longer add the group to the node id, so it ignores it.)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).resolve().parent
    for item in items:
        try:
            folder = Path(item.path).resolve().relative_to(tests).parts[0]
        except ValueError:  # not under tests/
            continue
        if folder in TIER_OF_FOLDER:
            item.add_marker(TIER_OF_FOLDER[folder])
    if getattr(config, "workerinput", None) is not None:  # an xdist worker: the scheduler hands out units in this order
        items.sort(key=_handout_rank)


# Longest units first, so that no worker starts a long one near the end while the other idles: the deployment tests
# (one unit, ~12 minutes), then the reliability and e2e files (minutes each); the many short files fill up the end.
HANDOUT_ORDER = ("deployment", "reliability", "e2e", "bench")


def _handout_rank(item) -> int:
    return next((i for i, tier in enumerate(HANDOUT_ORDER) if item.get_closest_marker(tier)), len(HANDOUT_ORDER))


# Deployment files that start a deployment of their own (not the session's shared one): each is a unit of its own, so
# the other worker can take it while the shared stack's unit runs. The 20-company Celery round (~8 minutes) in the
# shared unit made that unit alone longer than the rest of the suite, and `make test` 20 min 43 s.
OWN_STACK = frozenset({"tests/deployment/test_celery_deployment.py"})


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown to pytest without the plugin
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class DeploymentTogether(LoadFileScheduling):
        """A work unit per file, except one unit for the files of tests/deployment that share the session's stack."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path.startswith("tests/deployment/") and path not in OWN_STACK:
                return "tests/deployment/"
            return super()._split_scope(nodeid)

    return DeploymentTogether(config, log)


def pytest_configure(config):
    from include import local_airflow

    local_airflow.configure(_SESSION_DIR / "airflow")
    os.environ["EXACT_IMPORT_RETRIES"] = "0"
    os.environ.pop("AIRFLOW_CONN_OUTSMART_POSTGRES", None)
    os.environ.pop("AIRFLOW_CONN_EXACT_ONLINE_DEFAULT", None)
    os.environ.pop("AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS", None)


def pytest_unconfigure(config):
    """The session's folder (its embedded PostgreSQL, its Airflow home) goes with the session: left behind, each run
    kept 50 MB to 2 GB in the temporary folder, and a day of runs filled this machine's disk."""
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """An embedded PostgreSQL for the whole session; yields its Airflow connection JSON (as a dict)."""
    import psycopg

    from include.outsmart_import.target_db import conninfo_from_airflow_json, start_embedded, stop_embedded

    data_dir = _SESSION_DIR / "pgdata"
    conn = start_embedded(data_dir)
    # A throw-away cluster: no fsync, so that commits, CREATE DATABASE and the shutdown checkpoint do not wait for
    # a disk that the other processes on this machine keep busy.
    with psycopg.connect(conninfo_from_airflow_json(conn), autocommit=True) as admin:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            admin.execute(f"ALTER SYSTEM SET {setting} = off")
        admin.execute("SELECT pg_reload_conf()")
    yield conn
    stop_embedded(data_dir)


@pytest.fixture(scope="session")
def dags():
    """The real DAG files, parsed by Airflow, with a fresh metadata database for dag.test() (e2e, reliability)."""
    from include import local_airflow

    local_airflow.init_db()
    return local_airflow.load_dags()


@pytest.fixture
def target_db(pg_server, monkeypatch):
    """A fresh, empty database on the session server, published as the `outsmart_postgres` connection."""
    import psycopg

    from include.outsmart_import.target_db import conninfo_from_airflow_json

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(conninfo_from_airflow_json(pg_server), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    conn = {**pg_server, "schema": name}
    monkeypatch.setenv("AIRFLOW_CONN_OUTSMART_POSTGRES", json.dumps(conn))
    yield TargetDb(conninfo_from_airflow_json(conn), conn)


class TargetDb:
    def __init__(self, conninfo: str, airflow_json: dict):
        self.conninfo = conninfo
        self.airflow_json = airflow_json

    def connect(self):
        import psycopg

        return psycopg.connect(self.conninfo)

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params=None):
        return self.query(sql, params)[0][0]


@pytest.fixture
def sandbox_factory(monkeypatch):
    """Start sandboxes (stopped after the test); the last one started is the `exact_online_default` connection."""
    from include.exact_sandbox import SandboxConfig, start_sandbox

    servers = []

    def start(extra: dict | None = None, **config):
        server = start_sandbox(SandboxConfig(**config))
        servers.append(server)
        c = server.state.config
        monkeypatch.setenv(
            "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": server.url,
                    "login": c.client_id,
                    "password": c.client_secret,
                    "extra": {
                        "division": c.division,
                        "refresh_token": c.initial_refresh_token,
                        "backoff_seconds": 0.05,
                        **(extra or {}),
                    },
                }
            ),
        )
        return server

    yield start
    from tests.helpers.sandbox import stop_sandbox

    for s in servers:
        stop_sandbox(s)
    # Exact blocks an app after 10 errors (400/401/403/404) per endpoint per hour: no test may get near that.
    for s in servers:
        for endpoint, by_status in s.state.stats.client_errors.items():
            assert sum(by_status.values()) < 10, f"{endpoint}: {dict(by_status)} client errors in one test"


@pytest.fixture
def settings_var(monkeypatch):
    """Set the `exact_online_import_settings` Variable (as Airflow's env-var backend does)."""

    def set_settings(value):
        monkeypatch.setenv(
            "AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS", value if isinstance(value, str) else json.dumps(value)
        )

    return set_settings


# ---- figures: tests that measure something report it in the run's summary --------------------------------------
# A figure travels as a user property of the test's report: under xdist the test runs in a worker, and only its
# reports reach the process that prints the summary.
_FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def figure(request):
    """`figure("8 processes, 104 refresh attempts, 0 errors")`: printed at the end of the test run."""

    def record(text: str) -> None:
        request.node.user_properties.append(("figure", text))
        print(f"\nFIGURE {request.node.name}: {text}")

    return record


def pytest_runtest_logreport(report):
    if report.when == "teardown":  # the last report of a test, with every property it recorded
        _FIGURES.extend((report.nodeid, value) for key, value in report.user_properties if key == "figure")


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("figures")
        for node, text in _FIGURES:
            terminalreporter.write_line(f"{node.split('::')[-1]}: {text}")
