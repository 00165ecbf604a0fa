"""Which categories the settings schedule (pure: no Airflow)."""

from __future__ import annotations

import pytest

from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.scheduling import read_settings, schedule_for

PRO = [c for c in CATEGORIES.values() if c.pro]
STANDARD = [c for c in CATEGORIES.values() if not c.pro]


def test_only_enabled_categories_get_the_settings_cron_and_time_zone():
    parsed = read_settings(
        {
            "schedule": "30 5 * * 1-5",
            "timezone": "Europe/Brussels",
            "categories": {
                "relations": {"enabled": True},
                "materials": {"enabled": True},
                "employees": {"enabled": False},
            },
        }
    )
    scheduled = {c.name: schedule_for(c, parsed) for c in CATEGORIES.values()}
    assert {n for n, s in scheduled.items() if s.crons} == {"relations", "materials"}
    assert (scheduled["relations"].crons, scheduled["relations"].timezone) == (("30 5 * * 1-5",), "Europe/Brussels")
    assert scheduled["employees"].why == "not scheduled: disabled in the settings"


@pytest.mark.parametrize("category", PRO, ids=lambda c: c.name)
def test_pro_categories_need_the_licence_to_be_scheduled(category):
    enabled = {"categories": {category.name: {"enabled": True}}}
    assert schedule_for(category, read_settings({**enabled, "license": "standard"})).crons == ()
    assert "Pro licence" in schedule_for(category, read_settings({**enabled, "license": "standard"})).why
    assert schedule_for(category, read_settings({**enabled, "license": "pro"})).crons == ("@hourly",)
    # a disabled Pro category is just disabled, whatever the licence
    assert "disabled" in schedule_for(category, read_settings({"license": "standard"})).why


def test_null_schedule_means_only_by_hand():
    parsed = read_settings({"schedule": None})
    assert schedule_for(CATEGORIES["relations"], parsed).crons == ()
    assert "only by hand" in schedule_for(CATEGORIES["relations"], parsed).why


def test_invalid_settings_schedule_nothing_and_say_why():
    parsed = read_settings('{"timezone": "Mars/Olympus", "categories": {"relations": {"enabled": true}}}')
    assert parsed.settings is None and "timezone" in parsed.error
    for category in CATEGORIES.values():
        s = schedule_for(category, parsed)
        assert s.crons == () and "the settings are invalid" in s.why and "Mars/Olympus" in s.why


def test_missing_variable_means_the_defaults():
    parsed = read_settings(None)
    assert [c.name for c in CATEGORIES.values() if schedule_for(c, parsed).crons] == ["relations"]


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"task_retries": -1}, "task_retries"),
        ({"task_retries": 11}, "task_retries"),
        ({"retry_delay_seconds": 0}, "retry_delay_seconds"),
        ({"timezone": ""}, "timezone"),
    ],
)
def test_retry_and_timezone_settings_are_validated(bad, key):
    parsed = read_settings(bad)
    assert parsed.settings is None and parsed.error.split("invalid: ")[1].startswith(key)
