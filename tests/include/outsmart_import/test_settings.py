"""The settings Variable: defaults, every category, and errors that name the offending key."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.settings import ImportSettings, SettingsError, parse_settings


def test_defaults_cover_every_category():
    s = parse_settings(None)
    assert s.license == "standard" and s.schedule == "@hourly"
    for name in CATEGORIES:
        assert hasattr(s.categories, name), name
    assert s.categories.relations.enabled is True
    assert s.categories.relations.relation_types == ["customer"]
    assert s.categories.materials.enabled is False


def test_full_example_validates():
    s = parse_settings(
        json.dumps(
            {
                "license": "pro",
                "schedule": "*/30 * * * *",
                "categories": {
                    "relations": {
                        "enabled": True,
                        "relation_types": ["customer", "supplier"],
                        "include_inactive": True,
                        "include_blocked": False,
                    },
                    "materials": {"enabled": True, "item_groups": ["MAT", "ONDERDELEN"]},
                    "hour_types": {"enabled": True, "item_groups": ["UREN"]},
                    "employees": {"enabled": True, "include_inactive": True},
                    "payment_transactions": {"enabled": True, "only_open": True},
                    "sales_orders": {"enabled": True, "statuses": ["open", "partial"]},
                    "price_agreements": {"enabled": True, "only_current": True},
                },
            }
        )
    )
    assert s.license == "pro"
    assert s.categories.materials.item_groups == ["MAT", "ONDERDELEN"]


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ('{"license": "gold"}', "license"),
        ('{"categories": {"relations": {"relation_types": ["klant"]}}}', "categories.relations.relation_types[0]"),
        ('{"categories": {"relations": {"include_blockd": true}}}', "categories.relations.include_blockd"),
        ('{"categories": {"materials": {"item_groups": "MAT"}}}', "categories.materials.item_groups"),
        ('{"categories": {"materials": {"item_groups": ["  "]}}}', "categories.materials.item_groups"),
        ('{"categories": {"widgets": {}}}', "categories.widgets"),
        ('{"schedule": "every hour"}', "schedule"),
        ('{"categories": {"relations": {"enabled": "often"}}}', "categories.relations.enabled"),
    ],
)
def test_errors_name_the_key(raw, names):
    with pytest.raises(SettingsError) as err:
        parse_settings(raw)
    assert names in str(err.value)


def test_not_json_and_not_an_object():
    with pytest.raises(SettingsError, match="not valid JSON: .* line 1, column"):
        parse_settings("{license: pro}")
    with pytest.raises(SettingsError, match="must be a JSON object"):
        parse_settings("[1, 2]")


def test_settings_are_immutable():
    s = ImportSettings()
    with pytest.raises(ValidationError, match="frozen"):
        s.license = "pro"  # type: ignore[misc]
