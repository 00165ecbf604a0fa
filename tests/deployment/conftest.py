"""The deployment tier: the real Airflow components started exactly as `make airflow` starts them (the same
launcher), driven only through the REST API, as an office user or a data engineer would. One deployment per
module: start-up costs about a minute on 2 cores.
"""

from __future__ import annotations

import pytest

from tests.helpers.deployment import SETTINGS, Deployment, processes_of


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, request):
    dep = Deployment(tmp_path_factory.mktemp("deployment") / "state", SETTINGS)
    seconds = dep.start()
    print(f"\nmake airflow ready in {seconds:.0f} s")
    yield dep
    if dep.proc and dep.proc.poll() is None:
        dep.stop()
        left = processes_of(dep.state_dir)
        assert not left, "still running after SIGTERM:\n" + "\n".join(left)
