"""Adding a second company on the settings page (#21), in a real headless Chromium inside the real Airflow UI (the
session's deployment, as test_settings_page_browser.py): "Add a company" through the consent of
`exact_online_default`, its division picked from what Exact lists, a new database made for it, added, one of its
settings saved (the first company's unchanged), its sync started with its key and imported into its own database,
and removed again (its database stays).

The deployment's sandbox serves one division; for this test it serves two (its `companies` config, put back at the
end), which the first company's consent reaches both: the list then holds company 1's division (not pickable), the
second (picked) and the licence's practice division (listed by Exact, never served).
"""

from __future__ import annotations

import json

import psycopg
import pytest

from include.outsmart_import.target_db import conninfo_from_airflow_json
from tests.deployment.test_settings_page_browser import DOCS, Page, wait
from tests.helpers.browser import ensure_chromium
from tests.helpers.deployment import SETTINGS

pytestmark = pytest.mark.browser

TITLE = "Tweede Bedrijf"
KEY = "tweede-bedrijf"


@pytest.fixture(scope="module")
def deployment(request):
    ensure_chromium()
    dep = request.getfixturevalue("airflow_stack")
    dep.reuse(SETTINGS)
    return dep


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    import os
    import shutil

    folder = tmp_path_factory.mktemp("screenshots")
    taken = []

    def shot(page: Page, name: str) -> None:
        page.d.switch_to.default_content()
        path = folder / f"{name}.png"
        page.d.save_screenshot(str(path))
        taken.append(path)
        page.enter_frame_only()

    yield shot
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copy(path, DOCS / path.name)


def variable(deployment) -> dict:
    return json.loads(deployment.api("GET", "/variables/exact_online_import_settings")["value"])


def in_database(deployment, database: str, sql: str) -> list[tuple]:
    with psycopg.connect(conninfo_from_airflow_json({**deployment.ready["outsmart"], "schema": database})) as conn:
        return conn.execute(sql).fetchall()


def listed_divisions(p: Page) -> list:
    """The division picker's options; a refusal (shown at the field) as the reason they are not there."""
    from selenium.webdriver.support.ui import Select

    refused = p.q('#company-form .field[data-co="division"] .error').text
    assert not refused, f"the divisions were not listed: {refused}"
    return Select(p.q("#co-division")).options


def test_add_a_company_through_the_first_consent_save_its_settings_and_start_its_sync(deployment, shots):
    from selenium.webdriver.support.ui import Select

    from include.exact_sandbox.server import SandboxConfig

    division = SandboxConfig().division
    second, practice = division + 1, division + 2
    deployment.sandbox("config", {"companies": 2})  # the consent reaches a second division, served
    p = Page(deployment, "admin")
    try:
        # one company: the page as before, and only the button to add one
        assert p.all("#company-add") and not p.all("#company")
        p.q("#company-add").click()
        p.q("#co-title").send_keys(TITLE)
        assert p.q("#co-key").get_attribute("value") == KEY  # from the name, until typed
        options = wait(p.d, "the consent's divisions", lambda: listed_divisions(p), 60)
        shown = {o.get_attribute("value"): o for o in options}
        assert set(shown) == {str(division), str(second), str(practice)}
        assert shown[str(division)].get_attribute("disabled") is not None  # company 1's
        assert "imported by default" in shown[str(division)].text
        assert "Oefenadministratie" in shown[str(practice)].text
        assert Select(p.q("#co-division")).first_selected_option.get_attribute("value") == str(second)
        assert p.q("#co-target-new").is_selected() and p.q("#co-target-name").text == f"outsmart_{KEY}"
        p.show("#company-form")
        shots(p, "15-add-a-company")
        p.q("#co-save").click()
        wait(
            p.d,
            "the new company selected",
            lambda: p.all("#company") and p.q("#company").get_attribute("value") == KEY,
            60,
        )
        assert TITLE in p.q("#company-msg").text and "was added" in p.q("#company-msg").text

        saved = variable(deployment)["companies"][KEY]
        assert (saved["title"], saved["exact_conn_id"], saved["division"], saved["target_conn_id"]) == (
            TITLE,
            "exact_online_default",
            second,
            f"outsmart_{KEY}",
        )
        assert deployment.outsmart("SELECT 1 FROM pg_database WHERE datname = %s", (f"outsmart_{KEY}",))
        conn = deployment.api("GET", f"/connections/outsmart_{KEY}")
        assert conn["conn_type"] == "postgres" and conn["schema"] == f"outsmart_{KEY}"

        # its own Save: only its block changes
        wait(p.d, "its categories", lambda: p.q("#enabled-employees").is_selected())
        p.show("#cat-employees")
        p.q("#enabled-employees").click()
        p.q("#save").click()
        wait(p.d, "Saved.", lambda: "Saved." in p.q("#save-message").text)
        after = variable(deployment)
        assert after["companies"][KEY]["categories"]["employees"]["enabled"] is False
        assert after["categories"]["employees"]["enabled"] is True

        # its sync: a run of this company alone
        p.show("#cat-relations")
        p.q("#sync-relations").click()
        wait(p.d, "the import to succeed", lambda: p.q("#state-relations").text == "success", 300, 1)
        run = deployment.api("GET", "/dags/exact_online_import_relations/dagRuns", params={"order_by": "-id"})[
            "dag_runs"
        ][0]
        assert run["conf"] == {"refresh_streams": True, "company": KEY}
        states = deployment.task_states("relations", run["dag_run_id"])
        # one mapped import, named by this company (the grid's map index)
        assert states == {
            "check_settings": "success",
            "import_relations": "success",
            f"import_relations[{KEY}]": "success",
        }
        # imported into its own database, from its own division
        logged = in_database(deployment, f"outsmart_{KEY}", "SELECT status, run_id, fetched FROM outsmart.import_log")
        assert [(row[0], row[1]) for row in logged] == [("success", run["dag_run_id"])] and logged[0][2] > 0, logged
        rows = in_database(deployment, f"outsmart_{KEY}", "SELECT count(*) FROM outsmart.relations")[0][0]
        assert rows > 0
        counts = wait(p.d, "its counts", lambda: f"fetched {logged[0][2]}" in p.q("#counts-relations").text)
        assert counts
        p.d.execute_script("window.scrollTo(0, 0)")  # the selector, then its relations with the run's state
        shots(p, "16-company-sync")

        # company 1's page shows its own last import, from its own database, not this one
        has_log = deployment.outsmart("SELECT to_regclass('outsmart.import_log') IS NOT NULL")[0][0]
        first = deployment.outsmart("SELECT run_id FROM outsmart.import_log") if has_log else []
        assert run["dag_run_id"] not in {r[0] for r in first}  # (no log at all: company 1 never imported here)
        Select(p.q("#company")).select_by_value("default")
        wait(p.d, "company 1 shown", lambda: "outsmart_postgres" in p.q("#company-place").text)
        assert not p.all("#log-relations") or run["dag_run_id"] not in p.q("#log-relations").get_attribute("href")

        # removed again: confirmed, its database stays
        Select(p.q("#company")).select_by_value(KEY)
        wait(p.d, "the company shown", lambda: p.all("#company-remove"))
        p.q("#company-remove").click()
        assert "Nothing is deleted" in p.q("#company-remove-confirm").text
        p.q("#company-remove-yes").click()
        wait(p.d, "removed", lambda: "was removed" in p.q("#company-msg").text)
        assert KEY not in variable(deployment)["companies"] and not p.all("#company")
        assert deployment.outsmart("SELECT 1 FROM pg_database WHERE datname = %s", (f"outsmart_{KEY}",))
    finally:
        p.quit()
        deployment.sandbox("config", {"companies": 1})
        settings = variable(deployment)
        if KEY in settings.get("companies", {}):  # a failure above: the next module starts without it
            deployment.set_settings({**settings, "companies": {}})
