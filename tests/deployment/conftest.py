"""The deployment tier: the real Airflow components started exactly as `make airflow` starts them (the same
launcher), driven only through the REST API, as an office user or a data engineer would.

Start-up costs about a minute on 2 cores, so the session starts one deployment and every module reuses it: the
module's `deployment` fixture first brings it back to a fresh start's state with that module's settings
(Deployment.reuse). A test that needs a fresh Airflow restarts it itself, as the restart test does.
Under xdist all deployment tests run on one worker (tests/conftest.py), so there is one deployment per run.
"""

from __future__ import annotations

import pytest

from tests.helpers.deployment import SETTINGS, Deployment


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("deployment") / "state", SETTINGS)
    seconds = dep.start()
    print(f"\nmake airflow ready in {seconds:.0f} s")
    dep.remember_as_made()
    yield dep
    if dep.proc and dep.proc.poll() is None:
        dep.stop()
        left = dep.leftovers()
        assert not left, "still running after SIGTERM:\n" + "\n".join(left)


@pytest.fixture(scope="module")
def deployment(airflow_stack):
    """The session's deployment with the standard settings (SETTINGS), as a fresh start has them."""
    airflow_stack.reuse(SETTINGS)
    return airflow_stack
