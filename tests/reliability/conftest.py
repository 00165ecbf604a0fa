from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dags():
    from include import local_airflow

    local_airflow.init_db()
    return local_airflow.load_dags()
