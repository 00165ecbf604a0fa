"""The "Exact Online imports" page in a real headless Chromium, inside the real Airflow UI started as
`make airflow` starts it (tests/helpers/deployment.py), logged in through Airflow's own login page.

The tests share the session's deployment and one admin browser and run in file order. Screenshots land in the test's
temporary folder; with UPDATE_SCREENSHOTS=1 they are also copied to docs/settings-page/ (what the README shows).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.browser import chrome, ensure_chromium
from tests.helpers.deployment import ROOT, SETTINGS, Deployment

pytestmark = pytest.mark.browser

PAGE_API = "/exact-online-imports/api"
DOCS = ROOT / "docs" / "settings-page"
# The deployment's settings: the standard categories, but materials off (the test switches it on).
START = {**SETTINGS, "categories": {**SETTINGS["categories"], "materials": {"enabled": False}}}


@pytest.fixture(scope="module")
def deployment(request):
    """The session's deployment (tests/deployment/conftest.py) with this module's settings."""
    ensure_chromium()  # before a minute-long start, if this module is the first to ask: skip early without a browser
    dep = request.getfixturevalue("airflow_stack")
    dep.reuse(START)
    return dep


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshots")
    taken: list[Path] = []

    def shot(driver, name: str) -> None:
        path = folder / f"{name}.png"
        driver.save_screenshot(str(path))
        taken.append(path)

    yield shot
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copy(path, DOCS / path.name)


def wait(driver, what: str, check, timeout: float = 30, every: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # element not there yet, stale after a re-render
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Page:
    """One logged-in browser on the settings page inside the Airflow UI (the page's own iframe)."""

    def __init__(self, deployment: Deployment, user: str):
        from selenium.webdriver.common.by import By

        self.By, self.dep, self.user = By, deployment, user
        self.d = chrome()
        self.d.get(deployment.url + "/plugin/exact-online-imports")
        # not logged in: Airflow's own login page
        wait(self.d, "the login form", lambda: self.d.find_elements(By.NAME, "username"))
        self.d.find_element(By.NAME, "username").send_keys(user)
        self.d.find_element(By.NAME, "password").send_keys(deployment.passwords[user])
        self.d.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        self.enter()

    def enter(self):
        """Into the page's iframe, once its data has loaded."""
        By = self.By
        self.d.switch_to.default_content()
        frame = wait(self.d, "the plugin's iframe", lambda: self.d.find_elements(By.CSS_SELECTOR, "iframe"), 60)[0]
        assert "/exact-online-imports/" in frame.get_attribute("src")
        self.d.switch_to.frame(frame)
        wait(
            self.d, "the page's data", lambda: self.d.find_element(By.ID, "main").get_attribute("aria-busy") == "false"
        )

    def enter_frame_only(self):
        """Into the page's iframe as it is now (its data may not load: the login expired)."""
        self.d.switch_to.default_content()
        self.d.switch_to.frame(self.d.find_element(self.By.CSS_SELECTOR, "iframe"))

    def reload(self):
        self.d.switch_to.default_content()
        self.d.refresh()
        self.enter()

    def q(self, css):
        return self.d.find_element(self.By.CSS_SELECTOR, css)

    def all(self, css):
        return self.d.find_elements(self.By.CSS_SELECTOR, css)

    def show(self, css):
        """Scroll an element to the top of the page, and wait until it stays put there."""
        self.d.execute_script("arguments[0].scrollIntoView({block: 'start'})", self.q(css))
        tops = []

        def settled():
            tops.append(self.d.execute_script("return arguments[0].getBoundingClientRect().top", self.q(css)))
            return len(tops) > 1 and tops[-1] == tops[-2]

        wait(self.d, f"{css} to be scrolled into view", settled, 10, 0.05)

    def fetch(self, method: str, path: str, body: dict | None = None) -> int:
        """A request from the page's own JavaScript context (same origin, the browser's cookie)."""
        return self.d.execute_async_script(
            """
            const [method, url, body, done] = arguments;
            const opts = {method, credentials: 'same-origin', headers: {'Accept': 'application/json'}};
            if (body !== null) { opts.headers['Content-Type'] = 'application/json';
                                 opts.headers['X-Exact-Online-Page'] = '1'; opts.body = JSON.stringify(body); }
            fetch(url, opts).then(r => done(r.status), e => done(String(e)));
        """,
            method,
            "/exact-online-imports/api" + path,
            body,
        )

    def quit(self):
        self.d.quit()


@pytest.fixture(scope="module")
def admin(deployment):
    page = Page(deployment, "admin")
    yield page
    page.quit()


def variable(deployment: Deployment) -> dict:
    return json.loads(deployment.api("GET", "/variables/exact_online_import_settings")["value"])


# ---- the flow -----------------------------------------------------------------------------------------------------
def test_log_in_switch_materials_on_pick_two_item_groups_and_save(deployment, admin, shots):
    from selenium.webdriver.support.ui import Select

    p = admin
    assert "may edit" in p.q("#who").text
    assert not p.q("#enabled-materials").is_selected()
    # Pro categories are locked under the standard licence
    assert p.q("#enabled-sales_orders").get_attribute("disabled") is not None
    assert "needs Exact Online Pro" in p.q("#cat-sales_orders .lock").text
    p.q("#enabled-materials").click()
    select = p.q("#materials-item_groups")
    options = wait(
        p.d, "the division's item groups", lambda: [o for o in select.find_elements(p.By.TAG_NAME, "option")]
    )
    assert len(options) >= 2 and all(" — " in o.text for o in options), [o.text for o in options]
    source = p.q("#materials-item_groups-source").text
    assert "From Exact Online" in source or "From outsmart.categories" in source
    picked = [options[0].get_attribute("value"), options[1].get_attribute("value")]
    for code in picked:
        Select(select).select_by_value(code)
    p.d.execute_script("window.scrollTo(0, 0)")
    p.q("#save").click()
    wait(p.d, "Saved.", lambda: "Saved." in p.q("#save-message").text)
    saved = variable(deployment)  # read back through Airflow's REST API
    assert saved["categories"]["materials"] == {"enabled": True, "item_groups": picked}
    assert saved["categories"]["relations"]["enabled"] is True and saved["schedule"] is None
    p.d.switch_to.default_content()
    shots(p.d, "1-materials-saved")
    p.enter()


def test_an_invalid_value_is_shown_at_its_field_and_nothing_is_written(deployment, admin, shots):
    p = admin
    before = variable(deployment)
    from selenium.webdriver.support.ui import Select

    p.show("main")
    Select(p.q("#sched-mode")).select_by_value("advanced")  # the cron itself, typed by hand
    field = p.q("#schedule")
    field.clear()
    field.send_keys("every hour")
    p.q("#save").click()
    error = wait(p.d, "the schedule's error", lambda: p.q('.field[data-path="schedule"] .error').text)
    assert "'every hour' is not a cron expression" in error
    assert "Nothing was saved" in p.q("#save-message").text
    wait(p.d, "the schedule preview to say so", lambda: "not valid" in p.q("#schedule-next").text)
    assert variable(deployment) == before
    p.d.switch_to.default_content()
    shots(p.d, "2-invalid-schedule")
    p.reload()  # drop the unsaved edit


def test_the_sync_icon_starts_an_import_that_reaches_success_with_its_counts(deployment, admin, shots):
    p = admin
    runs_before = deployment.api("GET", "/dags/exact_online_import_relations/dagRuns")["total_entries"]
    p.show("#cat-relations")
    p.q("#sync-relations").click()
    wait(p.d, "the run to show as queued or running", lambda: p.q("#state-relations").text in ("queued", "running"), 20)
    assert p.q("#sync-relations").get_attribute("disabled") is not None, "no second start while one is active"
    # a second start through the API is refused while the first one is active
    token = deployment.token()
    second = requests.post(
        f"{deployment.url}{PAGE_API}/categories/relations/sync",
        json={},
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "X-Exact-Online-Page": "1"},
    )
    assert second.status_code == 409, second.text
    wait(p.d, "the import to succeed", lambda: p.q("#state-relations").text == "success", 300, 1)
    counts = wait(
        p.d, "the counts", lambda: "fetched" in p.q("#counts-relations").text and p.q("#counts-relations").text
    )
    logged = deployment.outsmart(
        "SELECT status, fetched FROM outsmart.import_log WHERE category = 'relations' ORDER BY id DESC LIMIT 1"
    )[0]
    assert logged[0] == "success" and f"fetched {logged[1]}" in counts
    runs = deployment.api("GET", "/dags/exact_online_import_relations/dagRuns", params={"order_by": "-id"})
    assert runs["total_entries"] == runs_before + 1
    # The sync icon asks Exact now, not the landed copy another category read a moment ago (#13).
    assert runs["dag_runs"][0]["run_type"] == "manual" and runs["dag_runs"][0]["conf"] == {"refresh_streams": True}
    assert p.q("#log-relations").get_attribute("href").endswith("/tasks/import_relations/mapped/0?try_number=1")
    p.d.switch_to.default_content()
    shots(p.d, "3-sync-success")
    p.enter()


def test_full_refresh_is_a_second_confirmed_action(deployment, admin):
    p = admin
    total = lambda: deployment.api("GET", "/dags/exact_online_import_relations/dagRuns")["total_entries"]  # noqa: E731
    before = total()
    p.show("#cat-relations")
    p.q("#full-relations").click()
    assert "read everything again" in wait(
        p.d, "the confirmation", lambda: p.q("#confirm-relations").is_displayed() and p.q("#confirm-relations").text
    )
    p.q("#cancel-full-relations").click()
    wait(p.d, "the confirmation to close", lambda: not p.q("#confirm-relations").is_displayed())
    time.sleep(1)  # on purpose: a run wrongly started by the cancel gets a second to show up
    assert total() == before, "cancelled: nothing started"
    p.q("#full-relations").click()
    wait(p.d, "the confirmation", lambda: p.q("#confirm-full-relations").is_displayed())
    p.q("#confirm-full-relations").click()
    wait(p.d, "a full-refresh run", lambda: total() == before + 1, 20)
    run = deployment.api("GET", "/dags/exact_online_import_relations/dagRuns", params={"order_by": "-id"})["dag_runs"][
        0
    ]
    assert run["conf"] == {"refresh_streams": True, "full_refresh": True}
    assert deployment.wait_run("relations", run["dag_run_id"])["state"] == "success"


def test_a_stale_page_cannot_overwrite_a_newer_variable(deployment, admin, shots):
    p = admin
    p.reload()
    newer = variable(deployment)
    newer["categories"]["payment_transactions"]["only_open"] = True
    deployment.set_settings(newer)  # someone else saves (here: through the REST API, as the Variables page does)
    p.show("#cat-employees")
    p.q("#enabled-employees").click()
    p.q("#save").click()
    wait(p.d, "the refusal", lambda: "changed elsewhere" in p.q("#save-message").text)
    assert "changed by someone else" in p.q("#banner").text and p.all("#reload")
    assert variable(deployment) == newer
    p.d.execute_script("window.scrollTo(0, 0)")
    p.d.switch_to.default_content()
    shots(p.d, "5-stale-page-refused")
    p.enter()


def test_a_viewer_sees_the_page_read_only_and_can_neither_save_nor_sync(deployment, shots):
    before = variable(deployment)
    v = Page(deployment, "viewer")
    try:
        assert v.all("#read-only") and "read only" in v.q("#who").text
        assert not v.q("#save").is_displayed()
        assert v.q("#enabled-materials").get_attribute("disabled") is not None
        assert v.q("#materials-item_groups").get_attribute("disabled") is not None
        assert not v.all("#sync-relations") and not v.all("#full-relations")
        assert "Last import" in v.q("#counts-relations").text  # but sees what the imports did
        # the page's API refuses the viewer, with the browser's own session cookie
        state = requests.get(
            f"{deployment.url}{PAGE_API}/state",
            timeout=30,
            headers={"Authorization": f"Bearer {deployment.token('viewer')}"},
        ).json()
        assert v.fetch("PUT", "/settings", {"settings": state["settings"], "version": state["version"]}) == 403
        assert v.fetch("POST", "/categories/relations/sync", {}) == 403
        # connecting Exact Online needs the right to edit connections: no section, and its API refuses
        assert not v.q("#connection").is_displayed()
        assert v.fetch("GET", "/connection") == 403 and v.fetch("POST", "/connect", {}) == 403
        v.d.execute_script("window.scrollTo(0, 0)")
        v.d.switch_to.default_content()
        shots(v.d, "4-viewer-read-only")
    finally:
        v.quit()
    assert variable(deployment) == before
    runs = deployment.api("GET", "/dags/exact_online_import_relations/dagRuns", params={"state": ["queued", "running"]})
    assert runs["total_entries"] == 0


def test_anonymous_requests_to_the_pages_api_are_refused(deployment):
    assert requests.get(f"{deployment.url}{PAGE_API}/state", timeout=30).status_code == 401
    assert (
        requests.put(
            f"{deployment.url}{PAGE_API}/settings",
            json={"settings": {}, "version": "x"},
            timeout=30,
            headers={"X-Exact-Online-Page": "1"},
        ).status_code
        == 401
    )
    assert (
        requests.post(
            f"{deployment.url}{PAGE_API}/categories/relations/sync",
            json={},
            timeout=30,
            headers={"X-Exact-Online-Page": "1"},
        ).status_code
        == 401
    )
    page = requests.get(f"{deployment.url}/exact-online-imports/", timeout=30, allow_redirects=False)
    assert page.status_code == 307 and "/auth/login" in page.headers["location"]


def test_no_secret_in_the_page_or_its_answers(deployment, admin):
    secrets = json.loads((deployment.state_dir / "secrets.json").read_text())
    conn = deployment.api("GET", "/connections/exact_online_default")
    from include.exact_sandbox.server import SandboxConfig

    c = SandboxConfig()
    token = deployment.token()
    answers = [
        requests.get(
            f"{deployment.url}{PAGE_API}/{path}", timeout=60, headers={"Authorization": f"Bearer {token}"}
        ).text
        for path in ("state", "status", "item-groups")
    ]
    admin.reload()
    answers.append(admin.d.page_source)
    # the rotated tokens the imports hold in the OutSmart database, too
    chain = deployment.outsmart("SELECT to_regclass('exact_online.oauth_token_chain') IS NOT NULL")[0][
        0
    ] and deployment.outsmart("SELECT refresh_token, access_token FROM exact_online.oauth_token_chain")
    tokens = [t for row in (chain or []) for t in row if t]
    for text in answers:
        for secret in (
            c.client_secret,
            c.initial_refresh_token,
            secrets["jwt_secret"],
            secrets["fernet_key"],
            *secrets["passwords"].values(),
            *tokens,
        ):
            assert secret not in text
    assert conn["conn_type"] == "exact_online"  # the connection make airflow made: the one whose secrets these are


# ---- connecting Exact Online (#20) ----------------------------------------------------------------------------------
CALLBACK = "/exact-online-imports/oauth/callback"
UNREACHABLE = "https://outsmart.invalid/exact/callback"  # .invalid never resolves (RFC 2606)


def at_exact(p: Page, action: str = "allow", shot=None) -> str:
    """Press Connect (or Reconnect): the top window goes to Exact's (the sandbox's) login and consent page; log in and
    choose `action`. Returns the attempt's state, from the address Exact was opened on."""
    from urllib.parse import parse_qs, urlsplit

    p.show("#connection")
    p.q("#connect").click()
    p.d.switch_to.default_content()
    wait(p.d, "Exact's login page in the top window", lambda: p.d.current_url.startswith(p.dep.sandbox_url))
    state = parse_qs(urlsplit(p.d.current_url).query)["state"][0]
    p.d.find_element(p.By.NAME, "username").send_keys("sandbox@example.nl")
    p.d.find_element(p.By.NAME, "password").send_keys("sandbox")
    if shot:
        shot(p.d, "10-exact-login-and-consent")
    p.d.find_element(p.By.CSS_SELECTOR, f"button[value={action}]").click()
    return state


def back_in_the_page(p: Page) -> None:
    wait(p.d, "back in the Airflow UI", lambda: p.d.current_url.startswith(p.dep.url + "/plugin/"))
    p.enter()


def pick_the_division(p: Page, shot=None) -> int:
    """The picker after the consent: the sandbox's division (and its practice division) → connected."""
    from selenium.webdriver.support.ui import Select

    from include.exact_sandbox.server import SandboxConfig

    wait(p.d, "the division picker", lambda: p.q("#conn-picker").is_displayed())
    division = SandboxConfig().division
    options = [o.get_attribute("value") for o in Select(p.q("#division")).options]
    assert options[0] == str(division) and len(options) == 2  # the sandbox's division and its practice division
    Select(p.q("#division")).select_by_value(str(division))
    p.show("#connection")  # the section is the page's last: clear of the fixed save bar
    if shot:
        p.d.switch_to.default_content()
        shot(p.d, "11-division-picker")
        p.enter()
    p.q("#pick").click()
    wait(p.d, "connected", lambda: "Connected to division" in p.q("#conn-message").text)
    return division


def api_server_log(deployment: Deployment) -> str:
    return (deployment.state_dir / "logs" / "api-server.log").read_text(errors="replace")


def exact_extra(deployment: Deployment) -> dict:
    return json.loads(deployment.api("GET", "/connections/exact_online_default")["extra"] or "{}")


def set_exact_extra(deployment: Deployment, extra: dict) -> None:
    conn = {"connection_id": "exact_online_default", "conn_type": "exact_online", "extra": json.dumps(extra)}
    deployment.api("PATCH", "/connections/exact_online_default", params={"update_mask": "extra"}, json=conn)


def stored_chains(deployment: Deployment) -> list[tuple]:
    return deployment.outsmart("SELECT * FROM exact_online.oauth_token_chain ORDER BY 1")


def test_connect_logs_in_at_exact_allows_and_picks_the_division(deployment, admin, shots):
    """Connect → the top window on Exact's (the sandbox's) login and consent page → Allow → back through the callback
    into the page inside the UI → the division picker → connected; an import then runs on the new chain. Neither the
    code nor the state of the callback's address reaches the api-server's log (its access line shows ***)."""
    p = admin
    p.reload()
    wait(p.d, "the connection section", lambda: p.q("#connection").is_displayed())
    uri = wait(p.d, "the redirect URI", lambda: p.q("#redirect-uri").text)
    assert uri == deployment.url + CALLBACK
    deployment.sandbox("config", {"redirect_uri": uri})  # registered for the app, as in Exact's App Centre
    state = at_exact(p, shot=shots)
    back_in_the_page(p)
    division = pick_the_division(p, shot=shots)
    status = wait(p.d, "the status", lambda: "Connected as Sandbox Gebruiker" in p.q("#conn-status").text)
    assert status and p.q("#connect").text == "Reconnect"
    p.show("#connection")
    p.d.switch_to.default_content()
    shots(p.d, "9-connected")
    p.enter()
    extra = exact_extra(deployment)
    assert extra["division"] == division and "refresh_token" not in extra
    assert extra["connected_as"]["user_name"] == "sandbox@example.nl"
    chains = deployment.sandbox("token-chains")["chains"]
    assert [c["user"] for c in chains] == ["sandbox@example.nl", "sandbox@example.nl"]  # preconfigured + consent
    # The callback's access line is there, without the code (the sandbox's all start so, as Exact's) or the state.
    log = api_server_log(deployment)
    assert any(CALLBACK in line and "code=***&state=***" in line for line in log.splitlines())
    assert "stampNL001." not in log and state not in log
    run_id = deployment.trigger("relations")
    assert deployment.wait_run("relations", run_id)["state"] == "success"
    stored = deployment.outsmart("SELECT refresh_token FROM exact_online.oauth_token_chain")
    assert [row[0] for row in stored] == [deployment.sandbox("token-chains")["chains"][1]["refresh_token"]]


def test_deny_at_exact_says_so_and_stores_nothing(deployment, admin, shots):
    p = admin
    p.reload()
    extra, chains, consents = exact_extra(deployment), stored_chains(deployment), deployment.sandbox("token-chains")
    state = at_exact(p, "deny")
    back_in_the_page(p)
    message = wait(p.d, "the message", lambda: p.q("#conn-message").text)
    assert message == "Exact Online was not connected: you chose Deny."
    assert "bad" in p.q("#conn-message").get_attribute("class") and not p.q("#conn-picker").is_displayed()
    assert "Connected as Sandbox Gebruiker" in p.q("#conn-status").text  # still the connection it had
    assert exact_extra(deployment) == extra and stored_chains(deployment) == chains
    assert deployment.sandbox("token-chains") == consents
    assert state not in api_server_log(deployment)
    p.show("#connection")
    p.d.switch_to.default_content()
    shots(p.d, "12-consent-denied")
    p.enter()


def test_an_airflow_exact_cannot_reach_connects_with_the_pasted_address(deployment, admin, shots):
    """The redirect URI registered at Exact is an HTTPS address the browser cannot open (this Airflow is not reachable
    so): after Allow the browser shows its error page; the address in its address bar, pasted into the page, connects.
    """
    from urllib.parse import parse_qs, quote, urlsplit

    p = admin
    set_exact_extra(deployment, {**exact_extra(deployment), "redirect_uri": UNREACHABLE})
    deployment.sandbox("config", {"redirect_uri": UNREACHABLE})
    try:
        p.reload()
        assert wait(p.d, "the redirect URI", lambda: p.q("#redirect-uri").text) == UNREACHABLE
        consents = len(deployment.sandbox("token-chains")["chains"])
        at_exact(p)
        wait(p.d, "Chromium's error page on the address", lambda: p.d.current_url.startswith(UNREACHABLE + "?"))
        address = p.d.current_url  # what the user copies from the address bar
        p.d.get(deployment.url + "/plugin/exact-online-imports")
        p.enter()
        p.show("#connection")
        p.q("details.paste summary").click()  # "Exact Online's redirect did not come back here?"
        p.q("#paste-address").send_keys(address)
        p.show("#connection")
        p.d.switch_to.default_content()
        shots(p.d, "13-pasted-address")
        p.enter()
        p.q("#paste-send").click()
        pick_the_division(p)
        chains = deployment.sandbox("token-chains")["chains"]
        assert len(chains) == consents + 1
        assert [row[0] for row in deployment.outsmart("SELECT refresh_token FROM exact_online.oauth_token_chain")] == [
            chains[-1]["refresh_token"]
        ]
        query = parse_qs(urlsplit(address).query)
        log = api_server_log(deployment)
        for secret in (query["code"][0], quote(query["code"][0], safe=""), query["state"][0]):
            assert secret not in log
    finally:
        extra = exact_extra(deployment)
        extra.pop("redirect_uri", None)
        set_exact_extra(deployment, extra)
        deployment.sandbox("config", {"redirect_uri": deployment.url + CALLBACK})


def test_a_chain_exact_refuses_fails_the_import_once_shows_on_the_page_and_a_reconnect_mends_it(
    deployment, admin, shots
):
    """31 days without an import: Exact refuses the refresh token. The import fails at once, without the retries the
    settings allow (only a person can mend it), the page shows why, Reconnect mends it."""
    p = admin
    month = 31 * 86400
    deployment.sandbox("age-oauth", {"seconds": month})  # as if 31 days had passed, at Exact ...
    aged = deployment.outsmart(  # ... and for the stored chain
        "UPDATE exact_online.oauth_token_chain SET refresh_obtained_at = refresh_obtained_at - %s, "
        "access_obtained_at = access_obtained_at - %s, access_expires_at = access_expires_at - %s RETURNING 1",
        (month, month, month),
    )
    assert len(aged) == 1
    run_id = deployment.trigger("relations")
    assert deployment.wait_run("relations", run_id)["state"] == "failed"
    task = deployment.task_instances("relations", run_id)["import_relations"]
    assert task["state"] == "failed" and task["try_number"] == 1, task  # task_retries is 2: none was spent
    logged = json.dumps(deployment.task_log("relations", run_id, "import_relations"))
    assert "the refresh token has expired" in logged and "reconnect on the settings page" in logged
    p.reload()
    p.show("#connection")
    refusal = wait(p.d, "the refusal", lambda: p.q("#conn-refusal").text)
    assert refusal.startswith("The imports stopped (relations, ") and "reconnect on the settings page" in refusal
    assert "): Exact Online refused the connection (the refresh token has expired" in refusal
    p.d.switch_to.default_content()
    shots(p.d, "14-reconnect-needed")
    p.enter()
    at_exact(p)
    back_in_the_page(p)
    pick_the_division(p)
    assert not p.all("#conn-refusal")
    run_id = deployment.trigger("relations")
    assert deployment.wait_run("relations", run_id)["state"] == "success"
    p.reload()
    assert "Connected as Sandbox Gebruiker" in p.q("#conn-status").text and not p.all("#conn-refusal")


# ---- the links out of Airflow's frame, the schedule picker, Dutch, an expired login --------------------------------
def test_the_dag_grid_link_opens_the_grid_in_airflow_from_inside_the_frame(deployment, admin):
    """Airflow's iframe sandbox refuses target="_top" and new tabs: the link goes through the Airflow UI's document."""
    p = admin
    p.reload()
    p.show("#cat-relations")
    p.q("#grid-relations").click()
    p.d.switch_to.default_content()
    wait(
        p.d,
        "the DAG's page in the Airflow UI",
        lambda: "/dags/exact_online_import_relations" in p.d.current_url and "/plugin/" not in p.d.current_url,
    )
    assert not p.all("iframe[title='Exact imports']")
    p.d.get(deployment.url + "/plugin/exact-online-imports")
    p.enter()
    p.show("#cat-relations")
    log = p.q("#log-relations").get_attribute("href")
    p.q("#log-relations").click()
    p.d.switch_to.default_content()
    assert "/tasks/import_relations" in log
    wait(p.d, "the task log in the Airflow UI", lambda: p.d.current_url.startswith(log.split("?")[0]))
    # opened directly, without Airflow's frame around it, they are plain links
    p.d.get(deployment.url + "/exact-online-imports/")
    wait(p.d, "the page's data", lambda: p.q("#main").get_attribute("aria-busy") == "false")
    p.q("#grid-relations").click()
    wait(p.d, "the DAG's page", lambda: "/dags/exact_online_import_relations" in p.d.current_url)
    p.d.get(deployment.url + "/plugin/exact-online-imports")
    p.enter()


def test_the_webhooks_section_shows_each_company_and_its_callback_address(deployment, admin):
    """#22's section: the callback address, a company's header, and (only by hand here) that no topic is needed; a
    topic subscribed by another module's test on the shared deployment is listed with its state in words."""
    p = admin
    p.reload()
    wait(p.d, "the webhooks section", lambda: p.q("#webhooks").is_displayed() and p.all("#wh-companies .wh-company"))
    assert p.q("#wh-callback").text.endswith("/exact-online-webhooks/events")
    assert p.q("#wh-not-https").is_displayed()  # the test's Airflow is plain HTTP: Exact would not send to it
    # the relay's debounce, as the deployment configured it ([exact_online] webhook_debounce_seconds = 20)
    assert "those in the 20 s after it wait and start one import together" in p.q("#wh-debounce").text
    (company,) = p.all("#wh-companies .wh-company")
    assert company.get_attribute("data-company") == "default" and "(division " in company.text
    assert "nothing to subscribe" in company.text  # schedule: only by hand, so an event would start nothing
    states = {"subscribed", "missing", "subscribed, no longer needed", "sent to another address", "unknown"}
    for row in company.find_elements(p.By.CSS_SELECTOR, "tbody tr"):
        assert row.find_elements(p.By.TAG_NAME, "td")[1].text in states, row.text
    assert "Subscribe the needed topics" in company.text


def test_the_page_speaks_the_language_chosen_in_airflows_ui(deployment, admin, shots):
    p = admin
    p.d.switch_to.default_content()
    p.d.execute_script("localStorage.setItem('i18nextLng', 'nl')")  # what Airflow's language menu stores
    p.reload()
    try:
        assert p.q("#save").text == "Opslaan"
        assert p.q("h1").text == "Exact Online-koppeling"
        assert p.q("#webhooks h2").text == "Exact-webhooks: wijzigingen binnen een minuut"
        titles = [h.text for h in p.all(".cat h3")]
        for name in ("Relaties", "Materialen", "Uursoorten", "Categorieën (artikelgroepen)", "Betalingstransacties"):
            assert name in titles, titles
        assert p.q("#sync-relations").get_attribute("title").startswith("Nu synchroniseren")
        assert "Relatiesoorten" in p.q('.field[data-path="categories.relations.relation_types"]').text
        assert p.q("#grid-relations").text == "DAG-overzicht"
        p.d.execute_script("window.scrollTo(0, 0)")
        p.d.switch_to.default_content()
        shots(p.d, "7-dutch")
        # The connection section's words (connection.js), and what the server says: an invalid value after Save.
        from selenium.webdriver.support.ui import Select

        p.enter_frame_only()
        wait(p.d, "the connection section", lambda: p.q("#connection").is_displayed())
        assert p.q("#connection h2").text == "Koppeling met Exact Online"
        connected = p.q("#disconnect").is_displayed()
        assert p.q("#connect").text == ("Opnieuw verbinden" if connected else "Verbinden met Exact Online")
        p.show("main")
        Select(p.q("#sched-mode")).select_by_value("advanced")
        p.q("#schedule").clear()
        p.q("#schedule").send_keys("elk uur")
        p.q("#save").click()
        error = wait(p.d, "the schedule's error", lambda: p.q('.field[data-path="schedule"] .error').text)
        assert error.startswith("'elk uur' is geen cron-expressie of voorinstelling")
        assert p.q("#save-message").text == "Niets opgeslagen: verbeter de rood gemarkeerde velden."
    finally:
        p.d.switch_to.default_content()
        p.d.execute_script("localStorage.setItem('i18nextLng', 'en')")
        p.reload()
    assert p.q("#save").text == "Save"


def test_an_expired_login_says_so_with_a_link_to_the_login_page(deployment, admin, shots):
    """Save used to stay on "Saving …": the 401's redirect to the login page was refused inside the frame."""
    p = admin
    p.show("#cat-employees")
    p.q("#enabled-employees").click()
    p.d.delete_cookie("_token")  # what the UI's login holds; expired, the page's API answers 401 as without it
    p.show("#connection")
    p.q("#connect").click()  # the connection section's requests go through page.js's `call` too
    wait(p.d, "the banner", lambda: "log in again" in p.q("#banner").text)
    assert "login has expired" in p.q("#conn-message").text
    p.q("#save").click()
    wait(p.d, "the message", lambda: "login has expired" in p.q("#save-message").text)
    assert "Your Airflow login has expired: log in again." in p.q("#banner").text
    p.d.execute_script("window.scrollTo(0, 0)")
    p.d.switch_to.default_content()
    shots(p.d, "8-login-expired")
    p.enter_frame_only()
    p.q("#log-in-again").click()
    p.d.switch_to.default_content()
    wait(p.d, "Airflow's login page, in the whole window", lambda: p.d.find_elements(p.By.NAME, "username"))
    assert "/auth/login" in p.d.current_url
    p.d.find_element(p.By.NAME, "username").send_keys("admin")
    p.d.find_element(p.By.NAME, "password").send_keys(deployment.passwords["admin"])
    p.d.find_element(p.By.XPATH, "//button[normalize-space()='Sign in']").click()
    p.enter()  # back on the page, in Airflow's frame
    assert "may edit" in p.q("#who").text


def test_the_schedule_picker_stores_office_words_as_cron_and_reads_them_back(deployment, admin, shots):
    """Last: the saved schedule starts scheduled runs of every DAG (Airflow runs the latest slot at once), which would
    disturb the tests that count runs or show states."""
    from selenium.webdriver.support.ui import Select

    p = admin
    p.show("main")
    Select(p.q("#sched-mode")).select_by_value("interval")
    # the interval's fields show once the server has converted the choice (slow on a busy machine)
    wait(p.d, "the interval's fields", lambda: p.q("#sched-every").is_displayed())
    Select(p.q("#sched-every")).select_by_value("minutes:15")
    Select(p.q("#sched-start")).select_by_value("7")
    Select(p.q("#sched-end")).select_by_value("18")
    if not p.q("#sched-weekdays").is_selected():
        p.q("#sched-weekdays").click()
    wait(p.d, "the cron under the picker", lambda: "*/15 7-17 * * 1-5" in p.q("#sched-hint").text)
    assert "Next runs" in p.q("#schedule-next").text
    p.q("#save").click()
    wait(p.d, "Saved.", lambda: "Saved." in p.q("#save-message").text)
    assert variable(deployment)["schedule"] == "*/15 7-17 * * 1-5"
    wait(p.d, "the saved schedule's next runs", lambda: "Next runs" in p.q("#schedule-next").text)
    p.d.switch_to.default_content()
    shots(p.d, "6-schedule-picker")
    p.reload()
    assert Select(p.q("#sched-mode")).first_selected_option.get_attribute("value") == "interval"
    assert Select(p.q("#sched-start")).first_selected_option.text == "07:00"
    assert Select(p.q("#sched-end")).first_selected_option.text == "18:00"
    assert p.q("#sched-weekdays").is_selected()
    # back to "only by hand", so that the scheduler starts nothing while the other tests count runs
    Select(p.q("#sched-mode")).select_by_value("manual")
    wait(p.d, "the preview to say so", lambda: "by hand" in p.q("#schedule-next").text)
    p.q("#save").click()
    wait(p.d, "Saved.", lambda: "Saved." in p.q("#save-message").text)
    assert variable(deployment)["schedule"] is None
