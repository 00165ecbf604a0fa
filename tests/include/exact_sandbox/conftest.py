"""The sandbox's own tests speak to it over HTTP, as the hook does."""

from __future__ import annotations

import pytest


@pytest.fixture
def sandbox(sandbox_factory):
    """Start sandboxes (stopped after the test): `sandbox(**config)` takes SandboxConfig's fields."""
    return sandbox_factory
