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


def _message(raw: dict) -> str:
    with pytest.raises(SettingsError) as err:
        parse_settings(json.dumps(raw))
    return str(err.value)


def test_messages_are_plain_words_without_pydantics_prefixes():
    """The DAG import error and the settings page read these: no "Value error, ", no "Input should be"."""
    message = _message(
        {
            "license": "gold",
            "task_retries": 99,
            "categories": {
                "relations": {"relation_types": ["friend"], "enabled": "often"},
                "materials": {"item_groups": ["  "]},
                "hour_types": {"item_groups": "MAT"},
            },
        }
    )
    assert "categories.relations.relation_types[0]: must be one of customer, prospect, suspect, none, supplier" in (
        message
    )
    assert "license: must be one of standard, pro" in message
    assert "task_retries: must be at most 10" in message
    assert "categories.relations.enabled: must be true or false" in message
    assert "categories.materials.item_groups: item group code at position 0 is empty" in message
    assert "categories.hour_types.item_groups: must be a list" in message
    assert "Value error" not in message and "Input should be" not in message


def test_lists_are_bounded_and_the_message_names_the_key_and_the_limit():
    from include.outsmart_import.filters import MAX_ITEM_GROUP_CODE, MAX_ITEM_GROUPS

    too_many = [f"G{i}" for i in range(MAX_ITEM_GROUPS + 1)]
    assert "categories.materials.item_groups: has 1,001 entries; at most 1,000 are allowed" in _message(
        {"categories": {"materials": {"item_groups": too_many}}}
    )
    parse_settings(json.dumps({"categories": {"materials": {"item_groups": too_many[:MAX_ITEM_GROUPS]}}}))
    long_code = "X" * (MAX_ITEM_GROUP_CODE + 1)
    assert f"position 0 is longer than {MAX_ITEM_GROUP_CODE} characters" in _message(
        {"categories": {"hour_types": {"item_groups": [long_code]}}}
    )
    # A list of choices names each choice once, so it is no longer than its choices.
    assert "categories.relations.relation_types: has 6 entries; at most 5 are allowed" in _message(
        {"categories": {"relations": {"relation_types": ["customer"] * 6}}}
    )
    assert "'customer' is listed twice" in _message(
        {"categories": {"relations": {"relation_types": ["customer", "customer"]}}}
    )
    assert "categories.sales_orders.statuses: has 300,000 entries; at most 4 are allowed" in _message(
        {"categories": {"sales_orders": {"statuses": ["open"] * 300_000}}}
    )
