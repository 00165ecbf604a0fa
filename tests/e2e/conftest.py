from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dags():
    """The real DAG files, parsed by Airflow, with a fresh metadata database for dag.test()."""
    from include import local_airflow

    local_airflow.init_db()
    return local_airflow.load_dags()
