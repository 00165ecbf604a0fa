"""The settings page's words in English and Dutch (labels.py, and the registry's names of categories, filters and
choices): every English label has a Dutch one."""

from __future__ import annotations

import json
import re

from exact_online_settings_page import labels
from exact_online_settings_page.category_catalog import catalog
from include.outsmart_import.registry import CATEGORIES, CHOICE_LABELS, DUTCH_CHOICE_LABELS, MERGE_COUNTS

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
    for key, (english, dutch) in labels.LABELS.items():
        assert english.strip() and dutch.strip(), key
        assert set(PLACEHOLDER.findall(english)) == set(PLACEHOLDER.findall(dutch)), key
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
    from pathlib import Path

    static = Path(labels.__file__).parent / "static"
    js = (static / "page.js").read_text() + (static / "companies.js").read_text()
    html = (static / "index.html").read_text()
    used = set(re.findall(r"""\bt\("(\w+)\"""", js)) | set(re.findall(r'data-t="(\w+)"', html))
    used |= {"picker_step", "picker_range", "picker_time", "picker_mode"}  # keys the API answers (schedule_picker.py)
    # keys made from a name: a run's state, an import's counts (page.js, labelOf; category_catalog.counts_explained)
    used |= {f"state_{s}" for s in ("queued", "running", "success", "failed")} | {"counts_explained"}
    used |= {f"count_{k}" for k in ("fetched", *MERGE_COUNTS)}
    assert used - set(labels.LABELS) == set()
    assert set(labels.LABELS) - used == set(), "labels no page uses"


def test_the_counts_line_in_both_languages_names_every_count():
    shown = catalog()
    assert shown["counts_explained"].startswith("fetched = inserted + updated + unchanged + filtered out + rejected")
    dutch = shown["dutch_counts_explained"]
    assert dutch.startswith("opgehaald = nieuw + bijgewerkt + ongewijzigd + weggefilterd + geweigerd")
    assert "verwijderd =" in dutch
