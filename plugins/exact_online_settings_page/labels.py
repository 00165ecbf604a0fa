"""Every word the settings page shows, in English and in Dutch: the one place its translations live.

The page follows the language the user chose in Airflow's UI (page.js, `pageLanguage`); Dutch uses the words of
Exact Online's Dutch screens and knowledge base (administratie, koppeling, vernieuwingstoken) and of Airflow's own
Dutch screens (Beheer → Variabelen, Connecties). Category names and filter labels come from the registry
(`dutch_title`, `Filter.dutch_label`, `DUTCH_CHOICE_LABELS`), not from here.

Two sets of keys: LABELS, the words of the page's scripts (page.js, connection.js), sent inside the page; MESSAGES,
what the server says (refusals, validation problems, the connection's status), made by key in the language the page
asks for (`language_of`, the request's Accept-Language) and never sent whole. A server message may use a LABELS key
too. `{name}` in a text is filled in where it is said. tests/plugins/exact_online_settings_page/test_labels.py checks
that every English text has a Dutch one with the same `{placeholders}`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from include.outsmart_import import problems

if TYPE_CHECKING:
    from include.outsmart_import.registry import Category

LANGUAGES = ("en", "nl")

# key: (English, Dutch)
LABELS: dict[str, tuple[str, str]] = {
    # the page's frame
    "title": ("Exact Online imports", "Exact Online-koppeling"),
    "subtitle": (
        "What is imported from Exact Online into OutSmart, when, and what the last import did.",
        "Wat uit Exact Online in OutSmart wordt geïmporteerd, wanneer, en wat de laatste import deed.",
    ),
    "general": ("General", "Algemeen"),
    "licence": ("Licence", "Licentie"),
    "standard": ("Standard", "Standaard"),
    "pro": ("Pro", "Pro"),
    "logged_in_as": ("Logged in as {name}", "Ingelogd als {name}"),
    "read_only": ("read only", "alleen lezen"),
    "may_edit": ("may edit", "mag wijzigen"),
    "save": ("Save", "Opslaan"),
    "saving": ("Saving …", "Opslaan …"),
    "saved": (
        "Saved. Airflow picks up the new schedule within about 30 seconds.",
        "Opgeslagen. Airflow neemt de nieuwe planning binnen ongeveer 30 seconden over.",
    ),
    "reload": ("Reload", "Opnieuw laden"),
    "replace_stored": (
        "Replace the stored settings (what they hold now is lost)",
        "De opgeslagen instellingen vervangen (wat er nu in staat gaat verloren)",
    ),
    # the schedule picker
    "schedule": ("Schedule", "Planning"),
    "mode_interval": ("Every …", "Elke …"),
    "mode_daily": ("Daily at …", "Dagelijks om …"),
    "mode_manual": ("Only by hand", "Alleen handmatig"),
    "mode_advanced": ("Advanced (cron)", "Geavanceerd (cron)"),
    "every_minutes": ("{n} minutes", "{n} minuten"),
    "every_hour": ("hour", "uur"),
    "every_hours": ("{n} hours", "{n} uur"),
    "between": ("between", "tussen"),
    "and": ("and", "en"),
    "weekdays_only": ("weekdays only (Mon–Fri)", "alleen op werkdagen (ma–vr)"),
    "cron_hint": (
        "Cron or preset: @hourly, 0 6 * * * (06:00), */30 7-18 * * 1-5.",
        "Cron of voorinstelling: @hourly, 0 6 * * * (06:00), */30 7-18 * * 1-5.",
    ),
    "stored_as": ("As cron: {cron}", "Als cron: {cron}"),
    "timezone": ("Time zone of the schedule", "Tijdzone van de planning"),
    "next_runs": ("Next runs it gives (your time, {tz}): {runs}", "Volgende runs (uw tijd, {tz}): {runs}"),
    "no_runs": ("No scheduled runs.", "Geen geplande runs."),
    "manual_only": (
        "Only when started by hand (no schedule).",
        "Alleen als iemand hem handmatig start (geen planning).",
    ),
    "schedule_invalid": ("This schedule is not valid: {why}", "Deze planning is niet geldig: {why}"),
    "picker_step": ("This interval is not offered.", "Deze tussentijd wordt niet aangeboden."),
    "picker_range": (
        "The start time must come before the end time.",
        "De begintijd moet voor de eindtijd liggen.",
    ),
    "picker_time": ("Not a time of day (HH:MM).", "Geen tijdstip (UU:MM)."),
    "picker_mode": ("Unknown kind of schedule.", "Onbekend soort planning."),
    # a category
    "on_off": ("on / off", "aan / uit"),
    "import_category": ("Import {title}", "{title} importeren"),
    "needs_pro": ("needs Exact Online Pro", "vereist Exact Online Pro"),
    "needs_pro_title": ("Switch the licence to Pro to use this category", "Zet de licentie op Pro om dit te gebruiken"),
    "sync_now": ("Import now", "Nu synchroniseren"),
    "sync_now_named": ("Import {title} now", "{title} nu synchroniseren"),
    "full_refresh": ("Full refresh", "Volledig opnieuw inlezen"),
    "full_refresh_title": ("Read everything again from Exact", "Alles opnieuw uit Exact inlezen"),
    "switch_on_first": (" (switch it on and Save first)", " (eerst aanzetten en opslaan)"),
    "confirm_full": (
        "Full refresh of {title}: read everything again from Exact Online and mark what Exact no longer has as "
        "deleted. This takes longer than a normal import.",
        "Volledig opnieuw inlezen van {title}: alles opnieuw uit Exact Online lezen en wat Exact niet meer heeft als "
        "verwijderd markeren. Dit duurt langer dan een gewone import.",
    ),
    "start_full": ("Start full refresh", "Volledig inlezen starten"),
    "cancel": ("Cancel", "Annuleren"),
    "not_started": ("Not started ({status}): {why}", "Niet gestart ({status}): {why}"),
    "unknown_widget": (
        '{label}: this page cannot show a "{widget}" setting.',
        '{label}: deze pagina kan een instelling "{widget}" niet tonen.',
    ),
    "groups_loading": ("Loading the item groups …", "Artikelgroepen laden …"),
    "groups_from": ("From {source}.", "Uit {source}."),
    "groups_hint": (
        "Ctrl/⌘-click selects more than one; none selected = all groups.",
        "Ctrl/⌘-klik kiest er meer; niets gekozen = alle groepen.",
    ),
    "group_unknown": ("(not among the division's item groups)", "(niet bij de artikelgroepen van de administratie)"),
    "last_import": ("Last import {when}:", "Laatste import {when}:"),
    "dry_run": (" (dry run)", " (proefrun)"),
    "no_import_yet": ("No import yet.", "Nog niet geïmporteerd."),
    "import_going_on": ("An import is going on. ", "Er loopt een import. "),
    "next_run": ("Next scheduled run: {when}", "Volgende geplande run: {when}"),
    "none": ("none", "geen"),
    "paused": (" (the DAG is paused in Airflow)", " (de DAG is gepauzeerd in Airflow)"),
    "dag_grid": ("DAG grid", "DAG-overzicht"),
    "last_task_log": ("last task log", "log van de laatste taak"),
    "run": ("Run {id}", "Run {id}"),
    # what a run is doing (Airflow's states) and the counts of an import (the registry's MERGE_COUNTS, and fetched):
    # the page makes the key from the state or count ("state_" / "count_" + its name)
    "state_queued": ("queued", "in wachtrij"),
    "state_running": ("running", "bezig"),
    "state_success": ("success", "geslaagd"),
    "state_failed": ("failed", "mislukt"),
    "count_fetched": ("fetched", "opgehaald"),
    "count_inserted": ("inserted", "nieuw"),
    "count_updated": ("updated", "bijgewerkt"),
    "count_unchanged": ("unchanged", "ongewijzigd"),
    "count_filtered_out": ("filtered out", "weggefilterd"),
    "count_rejected": ("rejected", "geweigerd"),
    "count_deleted": ("deleted", "verwijderd"),
    "counts_explained": (
        "{fetched} = {terms} (a record Exact sent twice in one run counts once); {deleted} = records Exact deleted, "
        "marked deleted in OutSmart (not among the {fetched}).",
        "{fetched} = {terms} (een record dat Exact in één run twee keer stuurde telt één keer); {deleted} = records "
        "die Exact verwijderde, in OutSmart als verwijderd gemarkeerd (niet bij de {fetched}).",
    ),
    # the state of the stored settings, and other warnings
    "stored_invalid": (
        "The stored settings do not validate, so nothing is scheduled. They are shown as stored, each problem marked "
        "in red; correct them and Save.",
        "De opgeslagen instellingen zijn niet geldig, dus er is niets gepland. Ze staan hier zoals opgeslagen, elk "
        "probleem in rood; verbeter ze en klik Opslaan.",
    ),
    "stored_unreadable": (
        "The stored settings cannot be read by this page, so nothing is scheduled: {error} The page shows the "
        "defaults, read-only.",
        "Deze pagina kan de opgeslagen instellingen niet lezen, dus er is niets gepland: {error} De pagina toont de "
        "standaardwaarden, alleen lezen.",
    ),
    "stored_replace_hint": (
        ' To replace the stored settings with these, tick "Replace the stored settings" next to Save.',
        ' Om ze door deze te vervangen: vink "De opgeslagen instellingen vervangen" naast Opslaan aan.',
    ),
    "stored_absent": (
        "The settings Variable does not exist yet; the page shows the defaults.",
        "De Variable met de instellingen bestaat nog niet; de pagina toont de standaardwaarden.",
    ),
    "shadowed": (
        "An environment variable AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS overrides the Variable saved here.",
        "Een omgevingsvariabele AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS gaat voor de Variable die hier wordt "
        "opgeslagen.",
    ),
    "problems": ("Problems: {list}.", "Problemen: {list}."),
    "load_failed": ("Could not load the page ({status}): {why}", "De pagina kon niet worden geladen ({status}): {why}"),
    "not_saved": ("Not saved ({status}): {why}", "Niet opgeslagen ({status}): {why}"),
    "not_saved_elsewhere": (
        "Not saved: the settings changed elsewhere.",
        "Niet opgeslagen: de instellingen zijn elders gewijzigd.",
    ),
    "saved_elsewhere": (
        "Someone saved the settings after you loaded this page (or on the Variables page). Reload before you change "
        "anything here.",
        "Iemand heeft de instellingen opgeslagen nadat u deze pagina opende (of op de pagina Variables). Laad "
        "opnieuw voordat u hier iets wijzigt.",
    ),
    "no_answer": ("Airflow did not answer: {why}", "Airflow antwoordde niet: {why}"),
    # an expired login (the page cannot send the browser to the login page from inside Airflow's frame)
    "login_expired": ("Your Airflow login has expired:", "Uw Airflow-login is verlopen:"),
    "log_in_again": ("log in again", "opnieuw inloggen"),
    "not_saved_login": ("Not saved: your Airflow login has expired.", "Niet opgeslagen: uw Airflow-login is verlopen."),
    # the Exact Online connection (connection.js, index.html)
    "conn_title": ("Exact Online connection", "Koppeling met Exact Online"),
    "conn_not_connected": (
        "Not connected. The imports cannot read Exact Online until a company is connected.",
        "Niet gekoppeld. De imports kunnen Exact Online pas lezen als er een administratie is gekoppeld.",
    ),
    "conn_not_connected_problem": ("Not connected: {problem}", "Niet gekoppeld: {problem}"),
    "conn_connected_as": (
        "Connected as {who} to division {division}",
        "Gekoppeld als {who} aan administratie {division}",
    ),
    "conn_since": (", since {when}.", ", sinds {when}."),
    "conn_unknown_user": (
        "an unknown user (connected before this page recorded it)",
        "een onbekende gebruiker (gekoppeld voordat deze pagina dat bijhield)",
    ),
    "conn_token_life": (
        "Refresh token last used {used}; it expires {expires} if no import uses it before then ({days} days).",
        "Vernieuwingstoken laatst gebruikt {used}; het vervalt {expires} als geen import het voor die tijd gebruikt "
        "(nog {days} dagen).",
    ),
    "conn_stopped": (
        "The imports stopped ({category}, {when}): {error}",
        "De imports zijn gestopt ({category}, {when}): {error}",
    ),
    "conn_connect": ("Connect to Exact Online", "Verbinden met Exact Online"),
    "conn_reconnect": ("Reconnect", "Opnieuw verbinden"),
    "conn_disconnect": ("Disconnect", "Ontkoppelen"),
    "conn_disconnect_confirm": (
        "Disconnect? The stored token chain is discarded and the division cleared: the imports stop until someone "
        "connects again.",
        "Ontkoppelen? De opgeslagen tokens worden weggegooid en de administratie gewist: de imports stoppen totdat "
        "iemand opnieuw verbindt.",
    ),
    "conn_division_to_import": ("Division to import", "Te importeren administratie"),
    "conn_as": (", as", ", zoals"),
    "conn_may_see_them": ("may see them", "ze mag zien"),
    "conn_use_division": ("Use this division", "Deze administratie gebruiken"),
    "conn_redirect_uri": (
        "Redirect URI to register for the app in Exact Online's App Centre:",
        "Redirect-URI om voor de app te registreren in het App Center van Exact Online:",
    ),
    "conn_redirect_uri_why": (
        "(Exact requires a public HTTPS address; it compares the URI character for character).",
        "(Exact vereist een openbaar HTTPS-adres en vergelijkt de URI teken voor teken).",
    ),
    "conn_paste_summary": (
        "Exact Online's redirect did not come back here?",
        "Kwam de doorverwijzing van Exact Online hier niet terug?",
    ),
    # `…` is shown as code (page.js, data-tc)
    "conn_paste_how": (
        "Where Exact's redirect cannot reach this Airflow (no public HTTPS address): register the redirect URI shown "
        '(or any HTTPS address, and put that in the connection\'s extra as `"redirect_uri"`), press Connect, and after '
        "Allow copy the address your browser was sent to from its address bar (it contains `?code=`; the page itself "
        "may not load) and paste it here within 3 minutes:",
        "Waar de doorverwijzing van Exact deze Airflow niet kan bereiken (geen openbaar HTTPS-adres): registreer de "
        "getoonde redirect-URI (of een ander HTTPS-adres, en zet dat in de extra van de connectie als "
        '`"redirect_uri"`), klik op Verbinden, kopieer na Toestaan het adres waarnaar uw browser is gestuurd uit de '
        "adresbalk (het bevat `?code=`; de pagina zelf laadt misschien niet) en plak het hier binnen 3 minuten:",
    ),
    "conn_paste_placeholder": (
        "paste the address your browser was sent to",
        "plak het adres waarnaar uw browser is gestuurd",
    ),
    "conn_paste_send": ("Connect with this address", "Verbinden met dit adres"),
    "conn_unreadable": (
        "The connection could not be read ({status}): {why}",
        "De koppeling kon niet worden gelezen ({status}): {why}",
    ),
    "conn_opening": ("Opening Exact Online's login page…", "De inlogpagina van Exact Online wordt geopend…"),
    "conn_no_reason": ("the server gave no reason", "de server gaf geen reden"),
    "conn_login_expired": (
        "Not done: your Airflow login has expired (log in again at the top of the page).",
        "Niet gedaan: uw Airflow-login is verlopen (log bovenaan de pagina opnieuw in).",
    ),
    # the Exact webhooks section (webhooks.js, #22)
    "wh_title": ("Exact webhooks: changes within a minute", "Exact-webhooks: wijzigingen binnen een minuut"),
    "wh_explain": (
        "Exact announces a change of accounts, contacts, items, sales orders, deliveries, quotations and project "
        "planning at once; the categories that read them then run within about a minute. The schedule stays as the "
        "safety net for announcements that get lost and for what Exact does not announce (addresses, prices, item "
        "groups, employees, …), so it can be much sparser, e.g. every 6 hours. Announcements start at most one "
        "import per stream a minute: a busy division does not read Exact back to back.",
        "Exact meldt een wijziging van relaties, contactpersonen, artikelen, verkooporders, leveringen, offertes en "
        "projectplanning meteen; de categorieën die ze lezen draaien dan binnen ongeveer een minuut. De planning "
        "blijft als vangnet voor meldingen die verloren gaan en voor wat Exact niet meldt (adressen, prijzen, "
        "artikelgroepen, medewerkers, …), en kan dus veel ruimer, bijvoorbeeld elke 6 uur. Meldingen starten "
        "hoogstens één import per gegevensstroom per minuut: een drukke administratie leest Exact niet onafgebroken.",
    ),
    "wh_callback": ("Address Exact sends the announcements to:", "Adres waarheen Exact de meldingen stuurt:"),
    "wh_not_https": (
        "Exact only sends to a public HTTPS address: set Airflow's [api] base_url to this Airflow's public HTTPS "
        "address.",
        "Exact stuurt alleen naar een openbaar HTTPS-adres: zet Airflows [api] base_url op het openbare "
        "HTTPS-adres van deze Airflow.",
    ),
    "wh_debounce": (
        "An announcement after a quiet spell starts its import at once; those in the {seconds} s after it wait and "
        "start one import together ([exact_online] webhook_debounce_seconds).",
        "Een melding na een stille periode start haar import meteen; die in de {seconds} s daarna wachten en starten "
        "samen één import ([exact_online] webhook_debounce_seconds).",
    ),
    "wh_company": ("{company} (division {division})", "{company} (administratie {division})"),
    "wh_exact_error": (
        "Exact cannot be asked for the subscriptions: {error}",
        "Exact kan niet om de abonnementen worden gevraagd: {error}",
    ),
    "wh_no_secret": (
        "The Exact Online connection has no webhook secret: every announcement is refused until it is set (the "
        "app's webhook secret from Exact's App Centre, in the connection's \"Webhook secret\" field).",
        "De Exact Online-connectie heeft geen webhookgeheim: elke melding wordt geweigerd tot het is ingevuld (het "
        'webhookgeheim van de app uit Exacts App Center, in het veld "Webhook secret" van de connectie).',
    ),
    "wh_nothing_needed": (
        "No enabled category on a schedule reads a stream Exact announces: nothing to subscribe.",
        "Geen ingeschakelde, geplande categorie leest een gegevensstroom die Exact meldt: niets om op te abonneren.",
    ),
    "wh_topic": ("Topic", "Onderwerp"),
    "wh_state": ("Subscription", "Abonnement"),
    "wh_streams": ("Streams", "Gegevensstromen"),
    "wh_last_event": ("Last announcement", "Laatste melding"),
    "wh_events_24h": ("In 24 h", "In 24 u"),
    "wh_waiting": ("Waiting", "Wachtend"),
    "wh_state_subscribed": ("subscribed", "geabonneerd"),
    "wh_state_missing": ("missing", "ontbreekt"),
    "wh_state_not_needed": ("subscribed, no longer needed", "geabonneerd, niet meer nodig"),
    "wh_state_elsewhere": ("sent to another address", "naar een ander adres"),
    "wh_state_unknown": ("unknown", "onbekend"),
    "wh_subscribe": ("Subscribe the needed topics", "Abonneren op de benodigde onderwerpen"),
    "wh_subscribed": ("Subscribed: {added}. Unsubscribed: {removed}.", "Geabonneerd: {added}. Opgezegd: {removed}."),
    "wh_unreadable": (
        "The webhook section cannot be read ({status}): {why}",
        "Het webhookdeel kan niet worden gelezen ({status}): {why}",
    ),
}

# What the server says, by key (not sent inside the page: the server says it in the language the page asks for).
MESSAGES: dict[str, tuple[str, str]] = {
    "callback_login_expired": (
        "Your Airflow login has expired, so Exact Online was not connected: log in again and press Connect again.",
        "Uw Airflow-login is verlopen, dus Exact Online is niet gekoppeld: log opnieuw in en klik nogmaals op "
        "Verbinden met Exact Online.",
    ),
    # requests that are refused before they do anything (app.py, request_limits.py)
    "refused_no_page_header": (
        "Refused: this request must come from the settings page (header {header} missing).",
        "Geweigerd: dit verzoek moet van de instellingenpagina komen (header {header} ontbreekt).",
    ),
    "send_json": ("Send JSON (Content-Type: application/json).", "Stuur JSON (Content-Type: application/json)."),
    "refused_cross_site": (
        "Refused: cross-site request (Origin is not this Airflow).",
        "Geweigerd: verzoek van een andere site (de Origin is niet deze Airflow).",
    ),
    "may_not_edit_settings": (
        "Forbidden: you may look at the settings but not change them (editing Variables is not among your rights).",
        "Niet toegestaan: u mag de instellingen bekijken maar niet wijzigen (Variabelen bewerken hoort niet bij uw "
        "rechten).",
    ),
    "may_not_see_page": (
        "{detail}: you may not see the Exact Online imports.",
        "{detail}: u mag de Exact Online-imports niet bekijken.",
    ),
    "no_such_category": ("No import category {name}.", "Er is geen importcategorie {name}."),
    "too_large": (
        "Nothing was saved: the request is larger than the {kb} KB this page accepts. Real settings are a few "
        "kilobytes: choose fewer item groups (at most 1,000; none chosen means every group) and Save again, or change "
        "the Variable exact_online_import_settings in Admin -> Variables.",
        "Niets opgeslagen: het verzoek is groter dan de {kb} KB die deze pagina aanneemt. Echte instellingen zijn een "
        "paar kilobytes: kies minder artikelgroepen (hoogstens 1.000; niets gekozen betekent alle groepen) en sla "
        "opnieuw op, of wijzig de Variable exact_online_import_settings bij Beheer → Variabelen.",
    ),
    # Save (variable_store.py)
    "settings_not_an_object": ("The settings must be a JSON object.", "De instellingen moeten een JSON-object zijn."),
    "must_be_an_object": ("must be a JSON object", "moet een JSON-object zijn"),
    "nothing_saved_fix_red": (
        "Nothing was saved: fix the fields marked in red.",
        "Niets opgeslagen: verbeter de rood gemarkeerde velden.",
    ),
    "changed_elsewhere": (
        "The settings were changed by someone else (or on the Variables page) after this page was loaded. Nothing "
        "was saved: reload the page to see the new settings, then make your change again.",
        "De instellingen zijn door iemand anders gewijzigd (of bij Beheer → Variabelen) nadat deze pagina werd "
        "geladen. Niets opgeslagen: laad de pagina opnieuw om de nieuwe instellingen te zien en breng uw wijziging "
        "daarna opnieuw aan.",
    ),
    "replace_needed": (
        "Nothing was saved: the stored settings cannot be read by this page ({error}). Saving replaces them "
        'entirely; confirm that with "replace" (the page\'s "Replace the stored settings" box), or fix the Variable '
        "in Admin -> Variables.",
        "Niets opgeslagen: deze pagina kan de opgeslagen instellingen niet lezen ({error}). Opslaan vervangt ze "
        'helemaal; bevestig dat met "replace" (het vakje "De opgeslagen instellingen vervangen" op de pagina), of '
        "verbeter de Variable bij Beheer → Variabelen.",
    ),
    "variable_too_large": (
        "Variable {name} is {size} bytes, more than the {kb} KB this page handles (real settings are a few kilobytes).",
        "Variable {name} is {size} bytes, meer dan de {kb} KB die deze pagina aankan (echte instellingen zijn een "
        "paar kilobytes).",
    ),
    "note_left_out": ("; Save leaves it out", "; Opslaan laat dit weg"),
    "note_default_written": (
        "; the page shows the default here, and Save writes it",
        "; de pagina toont hier de standaardwaarde, en Opslaan schrijft die",
    ),
    # a sync (airflow_runs.py)
    "sync_started": ("Import of {title} started.", "Import van {title} gestart."),
    "dag_not_parsed": (
        "{dag_id} is not (yet) known to Airflow: the DAG file has not been parsed.",
        "{dag_id} is (nog) niet bekend bij Airflow: het DAG-bestand is nog niet ingelezen.",
    ),
    "dag_import_errors": (
        "{dag_id} has import errors and cannot be started.",
        "{dag_id} heeft importfouten en kan niet worden gestart.",
    ),
    "settings_invalid_no_import": (
        "The saved settings are invalid, so no import can run: {error}",
        "De opgeslagen instellingen zijn ongeldig, dus er kan geen import draaien: {error}",
    ),
    "switched_off": (
        "{title} is switched off in the saved settings: switch it on and Save first.",
        "{title} staat uit in de opgeslagen instellingen: zet het aan en klik eerst op Opslaan.",
    ),
    "needs_pro_licence": (
        "{title} needs the Exact Online Pro licence.",
        "{title} vereist de licentie Exact Online Pro.",
    ),
    "import_already_active": (
        "An import of {title} is already {state}: wait for it to finish.",
        "Er is al een import van {title} {state}: wacht tot die klaar is.",
    ),
    # what the page reads (outsmart_queries.py, item_groups.py)
    "no_import_has_run": ("No import has run yet.", "Er is nog geen import gedraaid."),
    "outsmart_unreadable": (
        "The OutSmart database could not be read ({error}).",
        "De OutSmart-database kon niet worden gelezen ({error}).",
    ),
    "groups_outsmart_error": ("OutSmart database: {error}", "OutSmart-database: {error}"),
    "groups_cut": (
        "Only the first {limit} item groups (by code) are listed; there are more. Choose among these, or choose "
        "none to import every group.",
        "Alleen de eerste {limit} artikelgroepen (op code) staan in de lijst; er zijn er meer. Kies uit deze, of "
        "kies er geen om alle groepen te importeren.",
    ),
    # connecting Exact Online (app.py, exact_connect.py)
    "may_not_connect": (
        "Forbidden: connecting Exact Online needs the right to edit connections.",
        "Niet toegestaan: voor de koppeling met Exact Online is het recht nodig om connecties te bewerken.",
    ),
    "connection_unusable": (
        "The connection {conn_id} cannot be used: {error}",
        "De connectie {conn_id} is niet bruikbaar: {error}",
    ),
    "set_client_first": (
        "Set the Client ID and the Client secret of connection {conn_id} first.",
        "Vul eerst de Client ID en het Client secret van connectie {conn_id} in.",
    ),
    "not_an_attempt": (
        "This address does not belong to a connect attempt. Press Connect again.",
        "Dit adres hoort niet bij een poging om te verbinden. Klik nogmaals op Verbinden.",
    ),
    "attempt_unknown": (
        "This connect attempt is unknown, was already used, belongs to another user or is older than 10 minutes. "
        "Press Connect again.",
        "Deze poging om te verbinden is onbekend, al gebruikt, van een andere gebruiker of ouder dan 10 minuten. "
        "Klik nogmaals op Verbinden.",
    ),
    "callback_too_long": (
        "This address is too long to come from Exact Online. Press Connect again.",
        "Dit adres is te lang om van Exact Online te komen. Klik nogmaals op Verbinden.",
    ),
    "back_to_page": ("Back to the page", "Terug naar de pagina"),
    "paste_whole_address": (
        "Paste the whole address your browser was sent to after Allow.",
        "Plak het hele adres waarnaar uw browser na Toestaan is gestuurd.",
    ),
    "address_too_long": (
        "The address is longer than {kb} KB: paste only the address.",
        "Het adres is langer dan {kb} KB: plak alleen het adres.",
    ),
    "denied": ("Exact Online was not connected: you chose Deny.", "Exact Online is niet gekoppeld: u koos Weigeren."),
    "not_connected_because": ("Exact Online was not connected: {error}", "Exact Online is niet gekoppeld: {error}"),
    "pick_division": (
        "Connected. Pick the division (administratie) to import.",
        "Verbonden. Kies de administratie die u wilt importeren.",
    ),
    "no_consent_waiting": (
        "No consent is waiting for a division (older than 10 minutes?). Press Connect again.",
        "Er wacht geen toestemming op een keuze van de administratie (ouder dan 10 minuten?). Klik nogmaals op "
        "Verbinden.",
    ),
    "division_not_a_code": (
        "division must be a division code (a positive whole number).",
        "division moet een administratienummer zijn (een positief geheel getal).",
    ),
    "division_not_in_consent": (
        "Division {division} is not one of the divisions this consent gives access to.",
        "Administratie {division} hoort niet bij de administraties waartoe deze toestemming toegang geeft.",
    ),
    "division_not_moved": ("{error}", "De administratie is niet gekoppeld: {error}"),
    "connection_not_in_db": (
        "The connection {conn_id} is not in Admin → Connections (it comes from an environment variable or a secrets "
        "backend), so the page cannot store the division in it: set 'division' there.",
        "De connectie {conn_id} staat niet bij Beheer → Connecties (ze komt uit een omgevingsvariabele of een secrets "
        "backend), dus de pagina kan de administratie er niet in opslaan: zet 'division' daar.",
    ),
    "connected_to_division": (
        "Connected to division {division} ({description}).",
        "Gekoppeld aan administratie {division} ({description}).",
    ),
    "disconnect_needs_confirm": ('Disconnecting needs "confirm": true.', 'Ontkoppelen vraagt om "confirm": true.'),
    "disconnected": (
        "Disconnected: the imports cannot reach Exact Online until you connect again.",
        "Ontkoppeld: de imports kunnen Exact Online pas weer bereiken als u opnieuw verbindt.",
    ),
    "connection_dies": (
        "The connection dies in {days} days unless an import runs before then (Exact ends a refresh token unused "
        "for 30 days); run an import or reconnect.",
        "De koppeling vervalt over {days} dagen als er voor die tijd geen import draait (Exact beëindigt een "
        "vernieuwingstoken dat 30 dagen niet is gebruikt); start een import of verbind opnieuw.",
    ),
}

# What can be wrong with the settings (include/outsmart_import/problems.py): the English is the DAGs' own words,
# so it is taken from there; the Dutch is here, as "problem_" + the problem's key.
_PROBLEMS_IN_DUTCH: dict[str, str] = {
    "unknown_key": "onbekende sleutel (geen instelling van deze import)",
    "one_of": "moet een van deze zijn: {choices}",
    "too_many": "heeft {actual_length} items; er zijn er hoogstens {max_length} toegestaan",
    "text_too_long": "is langer dan {max_length} tekens",
    "at_most": "mag hoogstens {le} zijn",
    "at_least": "moet minstens {ge} zijn",
    "true_or_false": "moet true of false zijn",
    "whole_number": "moet een geheel getal zijn",
    "text": "moet tekst zijn (tussen dubbele aanhalingstekens)",
    "list": 'moet een lijst zijn, bijv. [] of ["a", "b"]',
    "object": "moet een object zijn, bijv. {}",
    "other": "{text}",  # pydantic's own words, in English
    "not_empty": "mag niet leeg zijn",
    "not_a_company_key": "de sleutel van een bedrijf is 1 tot 40 kleine letters, cijfers, '-' of '_', beginnend met "
    "een letter of cijfer",
    "not_a_conn_id": "een connectie-id bestaat uit letters, cijfers, '_', '-' of '.' (hoogstens 250)",
    "not_of_the_form": "heeft niet de vorm {pattern}",
    "reserved_company": "{company} is het eerste bedrijf (het bovenste niveau van de instellingen); kies een andere "
    "sleutel",
    "first_company_database": "{company}: target_conn_id {conn_id} is de database van bedrijf 1",
    "same_database": "{company} en {other} importeren allebei in {conn_id}",
    "same_division": "{company} en {other} importeren allebei administratie {division} van {conn_id}",
    "not_a_time_zone": "{value} is geen IANA-tijdzone zoals 'Europe/Amsterdam' of 'Europe/Brussels'",
    "not_a_cron": "{value} is geen cron-expressie of voorinstelling zoals '@hourly' of '*/30 * * * *'",
    "listed_twice": "{value} staat er twee keer in (opnieuw op positie {position})",
    "empty_code": "artikelgroepcode op positie {position} is leeg",
    "code_too_long": "artikelgroepcode op positie {position} is langer dan {max_length} tekens",
    "not_json": "Variable {name} is geen geldige JSON: {error} op regel {line}, kolom {column}",
    "not_an_object": "Variable {name} moet een JSON-object zijn, geen {type}",
    "invalid": "Variable {name} is ongeldig: {problems}",
}
MESSAGES.update({"problem_" + key: (problems.TEXTS[key], dutch) for key, dutch in _PROBLEMS_IN_DUTCH.items()})


# Several companies (#21; companies.js and the company's state in page.js). Dutch as Exact Online's Dutch screens say:
# a company is a "bedrijf", Exact's division an "administratie".
COMPANY_LABELS: dict[str, tuple[str, str]] = {
    "company": ("Company", "Bedrijf"),
    "company_paused": ("paused", "gepauzeerd"),
    "company_place": (
        "Exact: {conn}, {division} · OutSmart database: {target}",
        "Exact: {conn}, {division} · OutSmart-database: {target}",
    ),
    "company_division": ("division {division}", "administratie {division}"),
    "company_division_of_connection": ("the connection's division", "de administratie van de koppeling"),
    "company_pause": ("Pause", "Pauzeren"),
    "company_resume": ("Resume", "Hervatten"),
    "company_remove": ("Remove", "Verwijderen"),
    "company_add": ("Add a company", "Bedrijf toevoegen"),
    "company_not_changed": ("Not changed ({status}): {why}", "Niet gewijzigd ({status}): {why}"),
    "company_paused_now": (
        "Paused: no import runs for this company until it is resumed; its data stays.",
        "Gepauzeerd: er loopt geen import voor dit bedrijf tot het wordt hervat; de gegevens blijven.",
    ),
    "company_resumed_now": (
        "Resumed: its imports run again on its schedule.",
        "Hervat: de imports lopen weer volgens de planning.",
    ),
    "company_paused_first": (
        " (the company is paused: resume it first)",
        " (het bedrijf is gepauzeerd: eerst hervatten)",
    ),
    "company_remove_confirm": (
        "Remove {title} from the settings? Its imports stop. Nothing is deleted: its database ({target}), its Exact "
        "connection ({conn}) and everything imported stay as they are, and adding it again with the same database "
        "goes on from there.",
        "{title} uit de instellingen verwijderen? De imports stoppen. Er wordt niets gewist: de database ({target}), "
        "de Exact-koppeling ({conn}) en alles wat is geïmporteerd blijven zoals ze zijn; wie het bedrijf weer "
        "toevoegt met dezelfde database, gaat daar verder.",
    ),
    "company_removed": (
        "{title} was removed from the settings. Its database ({target}) and connections stay: delete them in Admin → "
        "Connections and on the database server if they are no longer needed.",
        "{title} is uit de instellingen verwijderd. De database ({target}) en de koppelingen blijven: verwijder ze in "
        "Admin → Connections en op de databaseserver als ze niet meer nodig zijn.",
    ),
    "company_add_title": ("Add a company", "Bedrijf toevoegen"),
    "company_title": ("Name", "Naam"),
    "company_key": ("Key", "Sleutel"),
    "company_key_hint": (
        "1–40 lower-case letters, digits, - or _; names the company in Airflow's grid and its database.",
        "1–40 kleine letters, cijfers, - of _; de naam van het bedrijf in Airflow en van de database.",
    ),
    "company_exact": ("Exact Online", "Exact Online"),
    "company_exact_reuse": ("through the consent of", "via de toestemming van"),
    "company_exact_new": (
        "a new consent (another Exact user), on a connection of its own:",
        "een nieuwe toestemming (een andere Exact-gebruiker), met een eigen koppeling:",
    ),
    "company_connect": ("Connect to Exact Online", "Verbinden met Exact Online"),
    "company_connect_first": (
        "Press Connect to Exact Online first, or choose an existing consent.",
        "Klik eerst op Verbinden met Exact Online, of kies een bestaande toestemming.",
    ),
    "company_opening_exact": ("Opening Exact Online's login page…", "De inlogpagina van Exact Online wordt geopend…"),
    "company_division_pick": ("Division (administratie)", "Administratie"),
    "company_divisions_loading": (
        "Asking Exact Online for the divisions …",
        "Administraties bij Exact Online opvragen …",
    ),
    "company_divisions_cut": (
        "Only the first {limit} divisions are listed.",
        "Alleen de eerste {limit} administraties staan hier.",
    ),
    "company_imported_by": ("imported by {key}", "geïmporteerd door {key}"),
    "company_target": ("OutSmart database", "OutSmart-database"),
    "company_target_new": (
        "a new database on the server of outsmart_postgres:",
        "een nieuwe database op de server van outsmart_postgres:",
    ),
    "company_target_pick": ("an existing connection:", "een bestaande koppeling:"),
    "company_copy": (
        "start with the categories and schedule of {title}",
        "beginnen met de onderdelen en planning van {title}",
    ),
    "company_add_save": ("Add the company", "Bedrijf toevoegen"),
    "company_added": (
        "{title} was added. Its settings are below: change them and Save; ⟳ imports it now.",
        "{title} is toegevoegd. De instellingen staan hieronder: wijzig ze en klik Opslaan; ⟳ importeert nu.",
    ),
}
LABELS.update(COMPANY_LABELS)


# What the server says about companies (#21), in the reader's language.
COMPANY_MESSAGES: dict[str, tuple[str, str]] = {
    "webhooks_settings_invalid": (
        "The settings are invalid: {error}",
        "De instellingen zijn ongeldig: {error}",
    ),
    "webhooks_exact_refused": (
        "Exact refused: {error}",
        "Exact weigerde: {error}",
    ),
    "webhooks_subscribed": (
        "Subscriptions updated.",
        "Abonnementen bijgewerkt.",
    ),
    "company_unknown": (
        "No company {company} in the saved settings (removed meanwhile?): reload the page.",
        "Geen bedrijf {company} in de opgeslagen instellingen (intussen verwijderd?): laad de pagina opnieuw.",
    ),
    "company_paused_sync": (
        "The company {company} is paused: resume it first.",
        "Het bedrijf {company} is gepauzeerd: hervat het eerst.",
    ),
    "note_companies_kept": (
        "; Save keeps the companies as stored: correct this in Admin -> Variables",
        "; Opslaan laat de bedrijven zoals ze zijn opgeslagen: verbeter dit in Admin -> Variables",
    ),
    "division_is_other_consent": (
        "Division {division} is how the consent of connection {conn_id} is known: moving this consent there would "
        "end that one. Pick another division here, or add the company through {conn_id}'s consent.",
        "Administratie {division} is waaronder de toestemming van koppeling {conn_id} bekend is: deze toestemming "
        "daarheen verplaatsen zou die beëindigen. Kies hier een andere administratie, of voeg het bedrijf toe via de "
        "toestemming van {conn_id}.",
    ),
    "company_consent_connected": (
        "Connected as {name}: pick the division (administratie) of the new company.",
        "Verbonden als {name}: kies de administratie van het nieuwe bedrijf.",
    ),
    "consent_refused": ("{conn_id}: {error}", "{conn_id}: {error}"),
    "consent_missing": (
        "The connection {conn_id} has no consent yet (no division, or no token chain): connect it first.",
        "De koppeling {conn_id} heeft nog geen toestemming (geen administratie of geen tokens): verbind haar eerst.",
    ),
    "divisions_not_listed": (
        "Exact Online did not list the divisions of {conn_id}: {error}",
        "Exact Online gaf de administraties van {conn_id} niet: {error}",
    ),
    "company_key_needed": (
        "Give the company's key first (1 to 40 lower-case letters, digits, '-' or '_'): the new connection is named "
        "after it.",
        "Geef eerst de sleutel van het bedrijf (1 tot 40 kleine letters, cijfers, '-' of '_'): de nieuwe koppeling "
        "krijgt die naam.",
    ),
    "connection_has_consent": (
        "The connection {conn_id} exists and has a consent: choose it under 'through the consent of'.",
        "De koppeling {conn_id} bestaat al en heeft een toestemming: kies haar bij 'via de toestemming van'.",
    ),
    "app_connection_missing": (
        "The connection {conn_id} (whose app a new consent uses) is not in Admin → Connections with a Client ID and a "
        "Client secret: set those there first.",
        "De koppeling {conn_id} (waarvan een nieuwe toestemming de app gebruikt) staat niet met Client ID en Client "
        "secret in Admin → Connections: vul die daar eerst in.",
    ),
    "may_not_create_connection": (
        "Forbidden: creating the connection {conn_id} is not among your rights.",
        "Niet toegestaan: u mag de koppeling {conn_id} niet aanmaken.",
    ),
    "companies_variable_too_large": (
        "Variable exact_online_import_settings is {kb} KB, more than the {limit_mb} MB this page handles: remove "
        "companies you no longer import in Admin -> Variables.",
        "Variable exact_online_import_settings is {kb} KB, meer dan de {limit_mb} MB die deze pagina aankan: "
        "verwijder bedrijven die u niet meer importeert in Admin -> Variables.",
    ),
    "companies_stored_invalid": (
        "Nothing was changed: the stored settings do not validate ({error}). Fix them first (the page shows the "
        "problems with only the first company; or Admin -> Variables).",
        "Er is niets gewijzigd: de opgeslagen instellingen zijn niet geldig ({error}). Verbeter ze eerst (de pagina "
        "toont de problemen met alleen het eerste bedrijf; of Admin -> Variables).",
    ),
    "company_changed_elsewhere": (
        "This company's settings were changed by someone else (or on the Variables page) after this page was "
        "loaded. Nothing was saved: reload the page to see them, then make your change again.",
        "De instellingen van dit bedrijf zijn door iemand anders gewijzigd (of op de pagina Variables) nadat deze "
        "pagina werd geladen. Er is niets opgeslagen: laad de pagina opnieuw en breng uw wijziging dan opnieuw aan.",
    ),
    "company_settings_too_large": (
        "Nothing was saved: the settings would be {kb} KB, more than the {limit_mb} MB this page writes (a company "
        "takes about 1.5 KB, plus its chosen item groups). Choose fewer item groups, or remove companies you no "
        "longer import.",
        "Er is niets opgeslagen: de instellingen zouden {kb} KB worden, meer dan de {limit_mb} MB die deze pagina "
        "schrijft (een bedrijf neemt ongeveer 1,5 KB, plus de gekozen artikelgroepen). Kies minder artikelgroepen, "
        "of verwijder bedrijven die u niet meer importeert.",
    ),
    "paused_true_or_false": ('"paused" must be true or false.', '"paused" moet true of false zijn.'),
    "first_company_not_removable": (
        "The first company is the top level of the settings and cannot be removed; pause it instead.",
        "Het eerste bedrijf is het bovenste niveau van de instellingen en kan niet worden verwijderd; pauzeer het.",
    ),
    "company_not_added": (
        "The company was not added: fix the fields marked in red.",
        "Het bedrijf is niet toegevoegd: verbeter de rood gemarkeerde velden.",
    ),
    "company_not_added_because": ("The company was not added: {error}", "Het bedrijf is niet toegevoegd: {error}"),
    "company_key_form": (
        "a company's key is 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or digit (it "
        "names the company in the grid and in its database's name)",
        "de sleutel van een bedrijf is 1 tot 40 kleine letters, cijfers, '-' of '_', beginnend met een letter of "
        "cijfer (de naam van het bedrijf in het overzicht en in de naam van de database)",
    ),
    "company_key_reserved": (
        "'default' is the first company's key; pick another",
        "'default' is de sleutel van het eerste bedrijf; kies een andere",
    ),
    "company_not_an_object": ("the company must be a JSON object", "het bedrijf moet een JSON-object zijn"),
    "company_key_taken": ("there is already a company {company} ({title})", "er is al een bedrijf {company} ({title})"),
    "target_is_first_companys": (
        "{conn_id} is the first company's database",
        "{conn_id} is de database van het eerste bedrijf",
    ),
    "target_is_other_companys": (
        "{conn_id} is {title}'s database ({company})",
        "{conn_id} is de database van {title} ({company})",
    ),
    "division_is_other_companys": (
        "division {division} of {conn_id} is imported by {title} ({company})",
        "administratie {division} van {conn_id} wordt al geïmporteerd door {title} ({company})",
    ),
    "division_is_first_companys": (
        "division {division} is the first company's",
        "administratie {division} is die van het eerste bedrijf",
    ),
    "division_imported_by": (
        "division {division} is imported by {company} already",
        "administratie {division} wordt al geïmporteerd door {company}",
    ),
    "too_many_companies": (
        "The settings hold {max} companies, the most they may; remove one first.",
        "De instellingen hebben {max} bedrijven, het maximum; verwijder er eerst een.",
    ),
    "no_exact_connection": (
        "there is no Exact Online connection {conn_id}",
        "er is geen Exact Online-koppeling {conn_id}",
    ),
    "no_postgres_connection": ("there is no Postgres connection {conn_id}", "er is geen Postgres-koppeling {conn_id}"),
    "division_not_reached": (
        "the consent of {conn_id} does not reach division {division}",
        "de toestemming van {conn_id} geeft geen toegang tot administratie {division}",
    ),
    "may_not_add_company": (
        "Forbidden: adding a company needs the rights to edit the settings Variable and the connections.",
        "Niet toegestaan: een bedrijf toevoegen vraagt het recht om de Variable met instellingen en de koppelingen "
        "te wijzigen.",
    ),
    "remove_needs_confirm": (
        'Removing a company needs "confirm": true.',
        'Een bedrijf verwijderen vraagt "confirm": true.',
    ),
    "company_removed_server": (
        "{title} was removed from the settings: its imports stop. Its database (connection {conn_id}), its Exact "
        "connection and everything imported stay as they are.",
        "{title} is uit de instellingen verwijderd: de imports stoppen. De database (koppeling {conn_id}), de "
        "Exact-koppeling en alles wat is geïmporteerd blijven zoals ze zijn.",
    ),
    "company_added_server": ("{title} was added.", "{title} is toegevoegd."),
    "target_key_needed": (
        "Give the company's key first (1 to 40 lower-case letters, digits, '-' or '_'): its database is named after "
        "it.",
        "Geef eerst de sleutel van het bedrijf (1 tot 40 kleine letters, cijfers, '-' of '_'): de database krijgt die "
        "naam.",
    ),
    "target_server_unreadable": (
        "The connection {conn_id} cannot be read: {error}",
        "De koppeling {conn_id} kan niet worden gelezen: {error}",
    ),
    "target_no_createdb": (
        "The user of {conn_id} may not create databases: create the database {database} on that server (or "
        "anywhere), add a Postgres connection for it in Admin → Connections and pick it.",
        "De gebruiker van {conn_id} mag geen databases maken: maak de database {database} op die server (of elders), "
        "voeg er een Postgres-koppeling voor toe in Admin → Connections en kies die.",
    ),
    "target_not_created": (
        "The database {database} could not be created: {error}",
        "De database {database} kon niet worden gemaakt: {error}",
    ),
    "target_exists": (
        "The connection {conn_id} exists already: pick it under 'an existing connection'.",
        "De koppeling {conn_id} bestaat al: kies haar bij 'een bestaande koppeling'.",
    ),
    "target_made": (
        "Connection {conn_id} to the database {database} (made).",
        "Koppeling {conn_id} met de database {database} (aangemaakt).",
    ),
    "target_reused": (
        "Connection {conn_id} to the database {database} (already there: it is used as it is, with what it holds).",
        "Koppeling {conn_id} met de database {database} (bestond al: ze wordt gebruikt zoals ze is, met wat erin "
        "staat).",
    ),
}
MESSAGES.update(COMPANY_MESSAGES)


_THOUSANDS = {"en": ",", "nl": "."}


def label(key: str, lang: str = "en", **values: object) -> str:
    """One label or server message in one language, its `{placeholders}` filled in (a whole number with the
    language's thousands separator: 1,001 / 1.001; codes are passed as text)."""
    pair = LABELS.get(key) or MESSAGES[key]
    return problems.fill(pair[LANGUAGES.index(lang)], values, _THOUSANDS[lang])


def problem(found: dict, lang: str) -> str:
    """A problem of the settings (settings_problems: its "problem" key and "params") in one language."""
    return label("problem_" + found["problem"], lang, **found["params"])


def category_title(category: Category, lang: str) -> str:
    return category.dutch_title if lang == "nl" else category.title


_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]{1,5}))?\s*$")


def language_of(accept_language: str | None) -> str:
    """The language to answer in, from an Accept-Language header: the one of ours the client prefers most (q),
    English when it names neither. The page sends the language chosen in Airflow's UI (page.js, `call`)."""
    best, best_q = "en", 0.0
    for part in (accept_language or "")[:500].split(",")[:20]:
        m = _LANGUAGE_RANGE.match(part)
        if not m or m[1].lower() not in LANGUAGES:
            continue
        try:
            q = float(m[2]) if m[2] else 1.0
        except ValueError:
            continue
        if q > best_q:
            best, best_q = m[1].lower(), q
    return best


def catalogue() -> dict[str, dict[str, str]]:
    """{language: {key: label}} for the page."""
    return {lang: {key: pair[i] for key, pair in LABELS.items()} for i, lang in enumerate(LANGUAGES)}


def as_script_json() -> str:
    """The catalogue as JSON that is safe inside the page's <script type="application/json"> (no "</")."""
    return json.dumps(catalogue(), ensure_ascii=False).replace("</", "<\\/")
