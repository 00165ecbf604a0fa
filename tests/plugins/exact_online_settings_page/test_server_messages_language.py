"""What the settings page's server says comes in the language the page asks for (Accept-Language: the language chosen
in Airflow's UI; page.js sends it on every call): Dutch when asked, the English words as before otherwise. Each kind
of message: a validation problem at its field (and a stored one), a refused stale Save, a refused request, a sync
refusal, a connect refusal, a connect attempt's outcome (stored as a key, said in the reader's language), the division
pick, the connection's warning, and the callback page (no page script: the language the attempt was started in).

The same api-server app, OutSmart database and sandbox as test_settings_page_api.py and test_connect_page.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlsplit

from tests.plugins.exact_online.test_oauth import browser_consent
from tests.plugins.exact_online_settings_page.test_connect_page import CALLBACK, DIV, later_hook
from tests.plugins.exact_online_settings_page.test_settings_page_api import (
    PAGE,
    PREFIX,
    auth,
    put,
    set_variable,
    state,
    token,
)

NL = {"Accept-Language": "nl"}
EN = {"Accept-Language": "en"}
NOT_A_CRON = "'elk uur' is not a cron expression or preset such as '@hourly' or '*/30 * * * *'"
NIET_EEN_CRON = "'elk uur' is geen cron-expressie of voorinstelling zoals '@hourly' of '*/30 * * * *'"


def post(client, path, body, lang: dict):
    return client.post(PREFIX + path, json=body, headers={**auth("admin"), **PAGE, **lang})


def said_at_fields(r) -> tuple[str, dict]:
    assert r.status_code == 422, r.text
    return r.json()["detail"]["message"], {e["path"]: e["message"] for e in r.json()["detail"]["errors"]}


def stored_problems(client, lang: dict) -> dict:
    r = client.get(PREFIX + "/api/state", headers={**auth("admin"), **lang})
    return {p["path"]: p["message"] for p in r.json()["stored"]["problems"]}


def test_a_validation_problem_is_said_at_its_field_in_dutch_when_asked(client):
    version = state(client)["version"]
    wrong = {"schedule": "elk uur", "categories": {"materials": {"enabled": True, "item_groups": ["MAT", "  "]}}}
    groups = "categories.materials.item_groups"
    assert said_at_fields(put(client, wrong, version, headers=NL)) == (
        "Niets opgeslagen: verbeter de rood gemarkeerde velden.",
        {"schedule": NIET_EEN_CRON, groups: "artikelgroepcode op positie 1 is leeg"},
    )
    english = (
        "Nothing was saved: fix the fields marked in red.",
        {"schedule": NOT_A_CRON, groups: "item group code at position 1 is empty"},
    )
    assert said_at_fields(put(client, wrong, version, headers=EN)) == english
    assert said_at_fields(put(client, wrong, version)) == english  # without a language: English, as before
    # A stored Variable's problems (the page marks them at their fields when it loads), with what Save does.
    set_variable(json.dumps({"license": "gold", "surprise": 1}))
    assert stored_problems(client, NL) == {
        "license": "moet een van deze zijn: standard, pro",
        "surprise": "onbekende sleutel (geen instelling van deze import); Opslaan laat dit weg",
    }
    assert stored_problems(client, EN) == {
        "license": "must be one of standard, pro",
        "surprise": "unknown key (not a setting of this import); Save leaves it out",
    }
    preview = client.get(PREFIX + "/api/schedule-preview?schedule=elk+uur", headers={**auth("admin"), **NL}).json()
    assert preview["errors"] == [{"path": "schedule", "message": NIET_EEN_CRON}]


def test_a_stale_or_unconfirmed_save_is_refused_in_dutch_when_asked(client):
    version = state(client)["version"]
    set_variable(json.dumps({"schedule": "@daily"}))  # someone saved meanwhile
    dutch = put(client, {}, version, headers=NL)
    assert dutch.status_code == 409 and dutch.json()["detail"]["message"].startswith(
        "De instellingen zijn door iemand anders gewijzigd (of bij Beheer → Variabelen) nadat deze pagina werd geladen."
    )
    english = put(client, {}, version, headers=EN)
    assert english.status_code == 409 and english.json()["detail"]["message"].startswith(
        "The settings were changed by someone else (or on the Variables page) after this page was loaded."
    )
    set_variable("{license: pro}")  # not JSON: Save must say "replace"; why is said in the language too
    version = state(client)["version"]
    dutch = put(client, {}, version, headers=NL).json()["detail"]["message"]
    assert dutch.startswith(
        "Niets opgeslagen: deze pagina kan de opgeslagen instellingen niet lezen (Variable "
        "'exact_online_import_settings' is geen geldige JSON: Expecting property name enclosed in double quotes op "
        "regel 1, kolom 2)."
    )
    english = put(client, {}, version, headers=EN).json()["detail"]["message"]
    assert english.startswith(
        "Nothing was saved: the stored settings cannot be read by this page (Variable "
        "'exact_online_import_settings' is not valid JSON: Expecting property name enclosed in double quotes at "
        "line 1, column 2)."
    )


def test_refused_requests_and_sync_refusals_in_dutch_when_asked(client):
    def sync(name, lang):
        return client.post(PREFIX + f"/api/categories/{name}/sync", json={}, headers={**auth("admin"), **PAGE, **lang})

    assert sync("nope", NL).json()["detail"] == "Er is geen importcategorie 'nope'."
    assert sync("nope", EN).json()["detail"] == "No import category 'nope'."
    off = sync("materials", NL)  # switched off in the saved settings
    assert off.status_code == 409
    assert (
        off.json()["detail"]
        == "Materialen staat uit in de opgeslagen instellingen: zet het aan en klik eerst op Opslaan."
    )
    assert sync("materials", EN).json()["detail"] == (
        "Materials (Exact items that are not time items) is switched off in the saved settings: switch it on and "
        "Save first."
    )
    started = sync("relations", NL)
    assert started.status_code == 201 and started.json()["message"] == "Import van Relaties gestart."
    again = sync("relations", NL).json()["detail"]
    assert again == "Er is al een import van Relaties in wachtrij: wacht tot die klaar is."
    again = sync("relations", EN).json()["detail"]
    assert again == "An import of Relations (Exact accounts) is already queued: wait for it to finish."
    version = state(client)["version"]
    not_json = client.put(
        PREFIX + "/api/settings",
        content=json.dumps({"settings": {}, "version": version}),
        headers={**auth("admin"), **PAGE, **NL, "Content-Type": "text/plain"},
    )
    assert not_json.status_code == 415 and not_json.json()["detail"] == "Stuur JSON (Content-Type: application/json)."
    client.cookies.set("_token", token("admin"))  # the UI's cookie, from another site
    try:
        cross = client.put(PREFIX + "/api/settings", json={}, headers={**PAGE, **NL, "Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert cross.json()["detail"] == "Geweigerd: verzoek van een andere site (de Origin is niet deze Airflow)."
    finally:
        client.cookies.clear()


def start(client, lang: dict) -> str:
    r = post(client, "/api/connect", {}, lang)
    assert r.status_code == 200, r.text
    return r.json()["authorize_url"]


def come_back(client, address: str, lang: dict):
    """The browser follows Exact's redirect to the callback: a top-level load, the browser's own Accept-Language."""
    assert address.startswith(CALLBACK)
    query = urlsplit(address).query
    return client.get(PREFIX + "/oauth/callback?" + query, headers={**auth("admin"), **lang}, follow_redirects=False)


def attempt(client, lang: dict) -> dict:
    return client.get(PREFIX + "/api/connection", headers={**auth("admin"), **lang}).json()["attempt"]


def test_a_connect_refusal_and_the_attempts_outcome_in_the_readers_language(client, sandbox, target_db):
    assert post(client, "/api/connect/paste", {"address": " "}, NL).json()["detail"] == (
        "Plak het hele adres waarnaar uw browser na Toestaan is gestuurd."
    )
    assert post(client, "/api/connect/paste", {"address": " "}, EN).json()["detail"] == (
        "Paste the whole address your browser was sent to after Allow."
    )
    denied = browser_consent(start(client, NL), action="deny")  # started on the Dutch page
    assert come_back(client, denied, EN).status_code == 303
    # Stored as a key, said in the language of whoever reads it.
    assert attempt(client, NL)["message"] == "Exact Online is niet gekoppeld: u koos Weigeren."
    assert attempt(client, EN)["message"] == "Exact Online was not connected: you chose Deny."
    with target_db.connect() as conn:
        row = conn.execute("SELECT outcome, message_key, message_params, language FROM exact_online.connect_attempt")
        assert row.fetchall() == [("denied", "denied", {}, "nl")]
    # The callback page (no page script) speaks the language the attempt was started in, not the browser's.
    again = come_back(client, denied, EN)
    assert again.status_code == 400 and "<html lang='nl'>" in again.text
    assert "Deze poging om te verbinden is onbekend, al gebruikt, van een andere gebruiker" in again.text
    assert "Terug naar de pagina" in again.text
    address = browser_consent(start(client, EN))  # started on the English page
    assert come_back(client, address, NL).status_code == 303
    again = come_back(client, address, NL)
    assert again.status_code == 400 and "<html lang='en'>" in again.text
    assert "This connect attempt is unknown, was already used, belongs to another user" in again.text
    assert "Back to the page" in again.text
    # Without an attempt (a forged state): the browser's own language.
    forged = client.get(PREFIX + "/oauth/callback?code=x&state=nobodys", headers={**auth("admin"), **NL})
    assert forged.status_code == 400 and "Klik nogmaals op Verbinden" in forged.text


def test_the_division_pick_and_the_connections_warning_in_dutch_when_asked(client, sandbox):
    assert come_back(client, browser_consent(start(client, NL)), NL).status_code == 303
    assert attempt(client, NL)["message"] == "Verbonden. Kies de administratie die u wilt importeren."
    assert post(client, "/api/connect/division", {"division": "x"}, NL).json()["detail"] == (
        "division moet een administratienummer zijn (een positief geheel getal)."
    )
    assert post(client, "/api/connect/division", {"division": 123}, NL).json()["detail"] == (
        "Administratie 123 hoort niet bij de administraties waartoe deze toestemming toegang geeft."
    )
    r = post(client, "/api/connect/division", {"division": DIV}, NL)
    assert r.status_code == 200
    assert r.json()["message"] == f"Gekoppeld aan administratie {DIV} (Installatiebedrijf De Sandbox B.V.)."
    assert attempt(client, EN)["message"] == f"Connected to division {DIV} (Installatiebedrijf De Sandbox B.V.)."
    hook = later_hook(0)
    key = f"{sandbox.state.config.client_id}/{DIV}"
    with hook.token_store.locked(key) as (record, save):  # last used 24 days ago: 6 days left
        save(replace(record, refresh_obtained_at=record.refresh_obtained_at - 24 * 86400))
    status = client.get(PREFIX + "/api/connection", headers={**auth("admin"), **NL}).json()
    assert status["warning"] == (
        "De koppeling vervalt over 6 dagen als er voor die tijd geen import draait (Exact beëindigt een "
        "vernieuwingstoken dat 30 dagen niet is gebruikt); start een import of verbind opnieuw."
    )
    assert post(client, "/api/disconnect", {"confirm": True}, NL).json()["message"] == (
        "Ontkoppeld: de imports kunnen Exact Online pas weer bereiken als u opnieuw verbindt."
    )


def test_an_attempts_table_from_before_gets_the_key_columns(target_db):
    """#20's first table kept an attempt's outcome as English words; its rows stay, the key columns join it."""
    from exact_online_settings_page import exact_connect

    with target_db.connect() as conn:
        conn.execute(
            "CREATE SCHEMA exact_online; CREATE TABLE exact_online.connect_attempt (state_hash text PRIMARY KEY, "
            "user_name text NOT NULL, created_at double precision NOT NULL, expires_at double precision NOT NULL, "
            "used_at double precision, outcome text, message text, chain_division bigint, connected_user jsonb, "
            "divisions jsonb)"
        )
        conn.execute("INSERT INTO exact_online.connect_attempt VALUES ('h', 'admin', 0, 1, NULL, 'denied', 'Old.')")
        conn.commit()
    assert exact_connect.attempt_language("some state") is None  # the first statement brings the table up to date
    columns = target_db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'exact_online' "
        "AND table_name = 'connect_attempt'"
    )
    assert {"message_key", "message_params", "language", "message"} <= {c for (c,) in columns}
    assert target_db.query("SELECT state_hash, message FROM exact_online.connect_attempt") == [("h", "Old.")]


def test_the_webhook_sections_answers_in_dutch_when_asked(client):
    """#22's section answers by key too: an unknown company's subscription request, in each language."""
    nl = post(client, "/api/webhooks/subscriptions", {"company": "bestaat_niet"}, NL)
    assert nl.status_code == 404
    assert nl.json()["detail"] == (
        "Geen bedrijf bestaat_niet in de opgeslagen instellingen (intussen verwijderd?): laad de pagina opnieuw."
    )
    en = post(client, "/api/webhooks/subscriptions", {"company": "bestaat_niet"}, EN)
    assert en.json()["detail"] == "No company bestaat_niet in the saved settings (removed meanwhile?): reload the page."
