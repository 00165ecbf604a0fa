"""An Exact Online sandbox: a local HTTP server that speaks Exact's REST protocol (see server.py)."""

from include.exact_sandbox.divisions import DivisionSpec
from include.exact_sandbox.server import SandboxConfig, SandboxServer, start_sandbox

__all__ = ["DivisionSpec", "SandboxConfig", "SandboxServer", "start_sandbox"]
