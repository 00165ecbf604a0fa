"""The import categories as the settings page shows them: titles, the Pro mark and each filter's widget, label,
choices and default, all from the registry (`include.outsmart_import.registry`), so that a category added there is
on the page with its switch and filters without a line here or in page.js.

The registry is read on each call (`registry.CATEGORIES`, not a copy taken at import), so the page always shows the
registry the process runs with.
"""

from __future__ import annotations

from include.outsmart_import import registry
from include.outsmart_import.registry import DUTCH_CHOICE_LABELS, MERGE_COUNTS, Category, FilterWidget


def _filter_view(f: FilterWidget) -> dict:
    # English and Dutch side by side: the page picks the user's language (labels.py has the page's own words).
    return {
        "key": f.key,
        "widget": f.widget,
        "label": f.label,
        "dutch_label": f.dutch_label or f.label,
        "default": f.default,
        "choices": [
            {"value": value, "label": label, "dutch_label": DUTCH_CHOICE_LABELS.get(value, label)}
            for value, label in f.choices
        ],
    }


def category_view(category: Category) -> dict:
    return {
        "name": category.name,
        "title": category.short_title or category.title,
        "long_title": category.title,
        "dutch": category.dutch_title,
        "pro": category.pro,
        "dag_id": category.dag_id,
        "filters": [_filter_view(f) for f in registry.filter_widgets(category)],
    }


# `deleted` counts rows OutSmart marks deleted because Exact deleted them (sync/Deleted, or a full refresh not finding
# them): they are not among the records fetched. Every other count is what became of a fetched record.
_NOT_FETCHED = ("deleted",)


def counts_explained(lang: str = "en") -> str:
    """The line under the last import's counts that accounts for every fetched record (MERGE_COUNTS decides the
    terms, so a count added to the merge is in the sum too), in English or Dutch (labels.py's words)."""
    from exact_online_settings_page.labels import label

    terms = " + ".join(label(f"count_{k}", lang) for k in MERGE_COUNTS if k not in _NOT_FETCHED)
    return label(
        "counts_explained",
        lang,
        terms=terms,
        fetched=label("count_fetched", lang),
        deleted=label("count_deleted", lang),
    )


def catalog() -> dict:
    """GET /api/categories: every category in the registry's order, the counts an import reports and how they add
    up."""
    return {
        "categories": [category_view(c) for c in registry.CATEGORIES.values()],
        "counts": list(MERGE_COUNTS),
        "counts_explained": counts_explained(),
        "dutch_counts_explained": counts_explained("nl"),
    }


def item_group_settings(settings: dict) -> list[str]:
    """Every item-group code chosen in any category's item-group filter (the page lists them even when the
    division no longer has them)."""
    chosen: set[str] = set()
    for category in registry.CATEGORIES.values():
        for f in registry.filter_widgets(category):
            if f.widget == "item_groups":
                chosen.update(settings["categories"][category.name][f.key])
    return sorted(chosen)
