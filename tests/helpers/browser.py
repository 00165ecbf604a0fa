"""A real headless Chromium for the browser tests: the Debian archive's `chromium` and `chromium-driver`, driven
through Selenium. On a fresh machine (CI: a fresh clone, as root) the two packages are installed with apt-get;
the tests are skipped, saying why, only where that is impossible (not root, no apt-get, archive unreachable).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = ("chromium", "chromium-driver")


def _found() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def ensure_chromium() -> tuple[str, str]:
    """(browser, chromedriver) paths; installs them from the Debian archive if they are missing."""
    found = _found()
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.skip(
            "headless Chromium is not installed and there is no apt-get to install it "
            f"(install {' and '.join(PACKAGES)} from the Debian archive)"
        )
    if os.geteuid() != 0:
        pytest.skip(
            f"headless Chromium is not installed and apt-get needs root: run `apt-get install -y "
            f"{' '.join(PACKAGES)}` as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            pytest.skip(
                f"could not install {' '.join(PACKAGES)} with `{' '.join(argv)}` (exit {done.returncode}): "
                + (done.stderr or done.stdout).strip()[-500:]
            )
    found = _found()
    if not found:
        pytest.skip(f"apt-get installed {' '.join(PACKAGES)} but chromium/chromedriver are not on PATH")
    return found


def chrome(width: int = 1366, height: int = 800):
    """A new headless Chromium session at a laptop's window size."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=en-GB",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)
