"""A real headless Chromium for the browser tests: the Debian archive's `chromium` and `chromium-driver`, driven
through Selenium, installed with apt-get where missing (tests/helpers/debian.py).
"""

from __future__ import annotations

import shutil

from tests.helpers.debian import ensure_programs

PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium() -> tuple[str, str]:
    """(browser, chromedriver) paths; installs them from the Debian archive if they are missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    browser, driver = ensure_programs(PACKAGES, ("chromium", "chromedriver"))
    return browser, driver


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
