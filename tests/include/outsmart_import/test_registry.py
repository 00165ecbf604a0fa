"""The registry is the one declaration: what is derived from it (the `$select`, the settings keys) is checked here
against what Exact really has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.outsmart_import.registry import CATEGORIES, PRICE_SOURCE, Column, Source, TableSpec, text
from include.outsmart_import.settings import ImportSettings

# Exact's own metadata for every endpoint the sandbox serves (a field Exact does not have is a 400 in production).
EXACT_FIELDS = json.loads(
    (Path(__file__).resolve().parents[3] / "include/exact_sandbox/exact_fields.json").read_text()
)["endpoints"]
STREAMS = (
    [(c.name, c.source) for c in CATEGORIES.values()]
    + [(f"{c.name} {d.table.name}", d.source) for c in CATEGORIES.values() for d in c.dependents]
    + [("standard sales price", PRICE_SOURCE)]
)


@pytest.mark.parametrize("label,source", STREAMS, ids=[s[0] for s in STREAMS])
def test_every_selected_field_exists_in_exact(label, source):
    known = EXACT_FIELDS[source.endpoint]
    assert source.select, label
    assert [f for f in source.select if f not in known] == [], label
    assert len(set(source.select)) == len(source.select)


def test_select_is_derived_from_the_columns():
    table = TableSpec("t", (text("name", "Name"), Column("is_x", "boolean"), text("mail", ("Email", "Email2"))))
    src = Source("sync/CRM/Accounts", "sync", rule_fields=("Status",)).bound_to(table)
    assert src.select == ("ID", "Name", "Email", "Email2", "Status", "Timestamp")
    assert Source("inventory/Warehouses", "full").bound_to(table).select == ("ID", "Name", "Email", "Email2")
    # A stream that feeds no table directly keeps the fields it was given.
    assert Source("x", "full", ("ID", "Code")).bound_to(table).select == ("ID", "Code")


def test_each_table_declares_each_column_once_with_its_keys():
    for cat in CATEGORIES.values():
        for spec in [cat.table, *(d.table for d in cat.dependents)]:
            names = spec.column_names
            assert len(names) == len(set(names)), spec.name
            assert {spec.merge_key, spec.identity, "exact_timestamp"} <= set(names), spec.name
            for lookup in spec.lookups:
                assert {lookup.column, lookup.via} <= set(names), spec.name


def test_settings_have_one_key_per_category_with_the_registry_defaults():
    settings = ImportSettings()
    assert set(type(settings.categories).model_fields) == set(CATEGORIES)
    for name, cat in CATEGORIES.items():
        assert settings.category(name) == cat.default_settings(), name
    assert [n for n, c in CATEGORIES.items() if settings.category(n).enabled] == ["relations"]
