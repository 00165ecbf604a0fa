"""Every word the settings page shows itself, in English and in Dutch: the one place its translations live.

The page follows the language the user chose in Airflow's UI (page.js, `pageLanguage`); Dutch uses the words of
Exact Online's Dutch screens and knowledge base. Category names and filter labels come from the registry
(`dutch_title`, `Filter.dutch_label`, `DUTCH_CHOICE_LABELS`), not from here. `{name}` in a label is filled in by the
page. tests/plugins/exact_online_settings_page/test_labels.py checks that every English label has a Dutch one with
the same `{placeholders}`.
"""

from __future__ import annotations

import json

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
}

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


def label(key: str, lang: str = "en", **values: str) -> str:
    """One label in one language, its `{placeholders}` filled in."""
    text = LABELS[key][LANGUAGES.index(lang)]
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def catalogue() -> dict[str, dict[str, str]]:
    """{language: {key: label}} for the page."""
    return {lang: {key: pair[i] for key, pair in LABELS.items()} for i, lang in enumerate(LANGUAGES)}


def as_script_json() -> str:
    """The catalogue as JSON that is safe inside the page's <script type="application/json"> (no "</")."""
    return json.dumps(catalogue(), ensure_ascii=False).replace("</", "<\\/")
