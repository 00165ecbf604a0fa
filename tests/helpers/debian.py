"""Programs from the Debian archive that some tests need (headless Chromium, Redis): found on PATH, or installed
with apt-get where they are missing. On a fresh machine (CI: a fresh clone, as root) they are installed; the tests
are skipped, saying why, only where that is impossible (not root, no apt-get, archive unreachable).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _found(programs: tuple[str, ...]) -> list[str] | None:
    paths = [shutil.which(p) for p in programs]
    return [p for p in paths if p] if all(paths) else None


def ensure_programs(packages: tuple[str, ...], programs: tuple[str, ...]) -> list[str]:
    """The paths of `programs`; installs `packages` from the Debian archive first if any is missing."""
    found = _found(programs)
    if found:
        return found
    wanted = " ".join(packages)
    if not shutil.which("apt-get"):
        pytest.skip(f"{wanted} not installed and there is no apt-get to install it (install {wanted})")
    if os.geteuid() != 0:
        pytest.skip(f"{wanted} not installed and apt-get needs root: run `apt-get install -y {wanted}` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            pytest.skip(
                f"could not install {wanted} with `{' '.join(argv)}` (exit {done.returncode}): "
                + (done.stderr or done.stdout).strip()[-500:]
            )
    found = _found(programs)
    if not found:
        pytest.skip(f"apt-get installed {wanted} but {' / '.join(programs)} are not on PATH")
    return found
