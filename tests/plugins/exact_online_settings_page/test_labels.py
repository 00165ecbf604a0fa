"""The settings page's words in English and Dutch (labels.py, and the registry's names of categories, filters and
choices): every English label and server message has a Dutch one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exact_online_settings_page import labels
from exact_online_settings_page.category_catalog import catalog
from include.outsmart_import import problems
from include.outsmart_import.registry import CATEGORIES, CHOICE_LABELS, DUTCH_CHOICE_LABELS, MERGE_COUNTS

PLUGIN = Path(labels.__file__).parent

PLACEHOLDER = re.compile(r"\{(\w+)\}")

# The names the office knows from Exact Online's Dutch screens and knowledge base.
KB_NAMES = {
    "relations": "Relaties",
    "materials": "Materialen",
    "hour_types": "Uursoorten",
    "categories": "Categorieën (artikelgroepen)",
    "employees": "Medewerkers",
    "payment_transactions": "Betalingstransacties",
    "warehouses": "Magazijnen",
    "price_agreements": "Prijsafspraken",
    "sales_orders": "Verkooporders",
    "shop_orders": "Productieorders",
    "goods_deliveries": "Leveringen",
    "quotations": "Offertes",
    "project_planning": "Projectplanning",
    "assembly_orders": "Assemblageorders",
}


def test_every_english_label_has_a_dutch_one_with_the_same_placeholders():
    assert set(labels.LABELS).isdisjoint(labels.MESSAGES)
    for key, (english, dutch) in {**labels.LABELS, **labels.MESSAGES}.items():
        assert english.strip() and dutch.strip(), key
        assert set(PLACEHOLDER.findall(english)) == set(PLACEHOLDER.findall(dutch)), key
    # every problem the settings can have (the DAGs' English words) is said in Dutch on the page
    assert {k for k in labels.MESSAGES if k.startswith("problem_")} == {"problem_" + k for k in problems.TEXTS}
    page = labels.catalogue()
    assert set(page["en"]) == set(page["nl"]) == set(labels.LABELS)
    assert page["nl"]["save"] == "Opslaan" and page["nl"]["sync_now"] == "Nu synchroniseren"


def test_the_labels_are_safe_inside_the_pages_script_tag():
    text = labels.as_script_json()
    assert "</" not in text and json.loads(text) == labels.catalogue()


def test_every_category_filter_and_choice_has_its_dutch_name():
    assert {name: c.dutch_title for name, c in CATEGORIES.items()} == KB_NAMES
    assert set(DUTCH_CHOICE_LABELS) == set(CHOICE_LABELS)
    for c in catalog()["categories"]:
        for f in c["filters"]:
            assert f["dutch_label"] and f["dutch_label"] != f["label"], (c["name"], f["key"])
            for choice in f["choices"]:
                assert choice["value"] in DUTCH_CHOICE_LABELS, (c["name"], f["key"], choice["value"])


def test_every_label_key_the_page_uses_exists():
    static = PLUGIN / "static"
    js = "".join((static / name).read_text() for name in ("page.js", "connection.js", "webhooks.js", "companies.js"))
    html = (static / "index.html").read_text()
    used = set(re.findall(r"""\bt\("(\w+)\"""", js)) | set(re.findall(r'data-t(?:c|-placeholder)?="(\w+)"', html))
    used |= {"picker_step", "picker_range", "picker_time", "picker_mode"}  # keys the API answers (schedule_picker.py)
    # keys made from a name: a run's state, an import's counts (page.js, labelOf; category_catalog.counts_explained)
    used |= {f"state_{s}" for s in ("queued", "running", "success", "failed")} | {"counts_explained"}
    used |= {f"count_{k}" for k in ("fetched", *MERGE_COUNTS)}
    used |= {f"wh_state_{s}" for s in ("subscribed", "missing", "not_needed", "elsewhere", "unknown")}  # webhooks.js
    assert used - set(labels.LABELS) == set()
    assert set(labels.LABELS) - used - server_keys_used() == set(), "labels no page uses"


def server_keys_used() -> set[str]:
    """The keys the server's modules say something by (label("…"), a refusal's or an attempt's key)."""
    code = "\n".join(p.read_text() for p in PLUGIN.glob("*.py") if p.name != "labels.py")
    # a whole key (not the prefix of one: "state_" + …) as the first argument, or an attempt's stored key
    said = r"""(?:\blabel\(|ConnectRefused\(|_finish\(\s*state,\s*"\w+",|message_key = )\s*["'](\w+)["']\s*[,)]"""
    return set(re.findall(said, code))


def test_every_message_key_the_server_uses_exists():
    used = server_keys_used()
    assert {"denied", "pick_division", "connected_to_division", "may_not_connect", "saved"} <= used  # the scan works
    assert used - set(labels.LABELS) - set(labels.MESSAGES) == set()
    problem_keys = {k for k in labels.MESSAGES if k.startswith("problem_")}  # said through labels.problem
    assert set(labels.MESSAGES) - used - problem_keys == set(), "server messages nobody says"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("nl", "nl"),  # what the page sends
        ("en", "en"),
        ("nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7", "nl"),  # a Dutch browser's own (the callback without an attempt)
        ("en-US,en;q=0.9,nl;q=0.8", "en"),
        ("de-DE,de;q=0.9,nl;q=0.5", "nl"),  # the one of ours it prefers
        ("de-DE,fr", "en"),
        ("", "en"),
        (None, "en"),
        ("nl;q=bogus,en;q=0.1", "en"),
    ],
)
def test_the_language_to_answer_in_is_the_accept_language_header(header, language):
    assert labels.language_of(header) == language


def test_numbers_in_a_message_follow_the_language():
    assert labels.label("groups_cut", "en", limit=2000).startswith("Only the first 2,000 item groups")
    assert labels.label("groups_cut", "nl", limit=2000).startswith("Alleen de eerste 2.000 artikelgroepen")
    # a code is not a number to group: passed as text; a value with braces is not filled in again
    assert labels.label("connected_to_division", "nl", division="3000001", description="{division}") == (
        "Gekoppeld aan administratie 3000001 ({division})."
    )


def test_the_counts_line_in_both_languages_names_every_count():
    shown = catalog()
    assert shown["counts_explained"].startswith("fetched = inserted + updated + unchanged + filtered out + rejected")
    dutch = shown["dutch_counts_explained"]
    assert dutch.startswith("opgehaald = nieuw + bijgewerkt + ongewijzigd + weggefilterd + geweigerd")
    assert "verwijderd =" in dutch
