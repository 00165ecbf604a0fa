"""Several companies in one settings Variable (#21): what each is, which runs they are in, and the fair order."""

from __future__ import annotations

import datetime as dt

import pytest

from include.outsmart_import.companies import companies_of, company, due_at
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.scheduling import (
    CompanyPaused,
    companies_for_run,
    read_settings,
    schedule_for,
)
from include.outsmart_import.settings import SettingsError, parse_settings, settings_problems

RELATIONS = CATEGORIES["relations"]
ON = {"relations": {"enabled": True}}
OFF = {"relations": {"enabled": False}}  # on by default


def two_more(**acme) -> dict:
    return {
        "schedule": "@hourly",
        "categories": ON,
        "companies": {
            "acme": {"title": "Acme BV", "division": 11, "target_conn_id": "outsmart_acme", "categories": ON, **acme},
            "beta": {
                "title": "Beta",
                "division": 12,
                "target_conn_id": "outsmart_beta",
                "schedule": "*/15 * * * *",
                "categories": OFF,
            },
        },
    }


def test_a_variable_from_before_companies_is_company_default_on_the_same_connections():
    (only,) = companies_of(parse_settings({"schedule": "0 6 * * *", "categories": ON}))
    assert (only.key, only.exact_conn_id, only.division, only.target_conn_id) == (
        "default",
        "exact_online_default",
        None,  # the connection's own division, as before
        "outsmart_postgres",
    )
    assert only.settings.schedule == "0 6 * * *" and only.settings.category("relations").enabled


def test_each_company_has_its_own_choices_and_shares_the_clock_and_retries():
    settings = parse_settings({**two_more(), "timezone": "Europe/Brussels", "task_retries": 4})
    acme, beta = company(settings, "acme"), company(settings, "beta")
    assert (acme.division, acme.target_conn_id, acme.settings.schedule) == (11, "outsmart_acme", "@hourly")
    assert beta.settings.schedule == "*/15 * * * *" and not beta.settings.category("relations").enabled
    assert acme.settings.timezone == beta.settings.timezone == "Europe/Brussels"
    assert acme.settings.task_retries == 4 and acme.settings.companies == {}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"beta": {"title": "B", "division": 11, "target_conn_id": "outsmart_b2"}}, "both import division 11"),
        ({"beta": {"title": "B", "division": 13, "target_conn_id": "outsmart_acme"}}, "both import into"),
        ({"beta": {"title": "B", "division": 13, "target_conn_id": "outsmart_postgres"}}, "database of company 1"),
        ({"default": {"title": "B", "division": 13, "target_conn_id": "outsmart_x"}}, "is the first company"),
        ({"Beta Co": {"title": "B", "division": 13, "target_conn_id": "outsmart_x"}}, "lower-case letters"),
        ({"beta": {"title": "", "division": 13, "target_conn_id": "outsmart_x"}}, "must not be empty"),
        ({"beta": {"title": "B", "division": 0, "target_conn_id": "outsmart_x"}}, "must be at least 1"),
    ],
)
def test_companies_that_would_overwrite_each_other_or_are_misspelt_are_refused(change, words):
    raw = two_more()
    raw["companies"] = {"acme": raw["companies"]["acme"], **change}
    settings, problems = settings_problems(raw)
    assert settings is None and any(words in p["message"] for p in problems), problems
    with pytest.raises(SettingsError, match="companies"):
        parse_settings(raw)


def test_the_schedule_is_the_union_of_the_companies_crons():
    s = schedule_for(RELATIONS, read_settings(two_more(schedule="0 6 * * *")))
    assert s.crons == ("@hourly", "0 6 * * *")  # beta has relations off: its cron is not in it
    assert "2 companies" not in s.why and "0 6 * * * (1 company)" in s.why


def test_a_scheduled_fire_imports_the_companies_whose_cron_it_is():
    settings = parse_settings(two_more(schedule="30 * * * *"))
    at = lambda h, m: dt.datetime(2026, 3, 2, h, m, tzinfo=dt.UTC)  # noqa: E731
    assert [c.key for c in companies_for_run(RELATIONS, settings, at(9, 0), None)[0]] == ["default"]
    assert [c.key for c in companies_for_run(RELATIONS, settings, at(9, 30), None)[0]] == ["acme"]
    chosen, why = companies_for_run(RELATIONS, settings, at(9, 15), None)
    assert chosen == [] and "No company's schedule fires" in why


def test_a_manual_run_takes_the_company_asked_for_or_every_company_with_the_category_on():
    settings = parse_settings(two_more())
    assert [c.key for c in companies_for_run(RELATIONS, settings, None, None)[0]] == ["default", "acme"]
    assert [c.key for c in companies_for_run(RELATIONS, settings, None, "acme")[0]] == ["acme"]
    chosen, why = companies_for_run(RELATIONS, settings, None, "gamma")
    assert chosen == [] and "No company 'gamma'" in why and "default, acme, beta" in why


def test_a_paused_company_is_in_no_run_and_says_so_when_asked_for():
    settings = parse_settings(two_more(paused=True))
    assert [c.key for c in companies_for_run(RELATIONS, settings, None, None)[0]] == ["default"]
    with pytest.raises(CompanyPaused, match="companies.acme.paused"):
        companies_for_run(RELATIONS, settings, None, "acme")


def test_due_at_reads_the_cron_in_the_settings_time_zone():
    winter_six = dt.datetime(2026, 1, 5, 5, 0, tzinfo=dt.UTC)  # 06:00 in Amsterdam
    assert due_at("0 6 * * *", winter_six, "Europe/Amsterdam")
    assert not due_at("0 6 * * *", winter_six, "UTC")
    assert not due_at(None, winter_six, "UTC")


def test_the_company_whose_turn_is_oldest_goes_first(target_db):
    from include.outsmart_import.company_turns import fair_order, take_turn

    keys = ["default", "acme", "beta", "gamma"]
    assert fair_order(target_db.connect, "relations", keys) == keys  # none started yet: as given
    take_turn(target_db.connect, "relations", "default")
    take_turn(target_db.connect, "relations", "acme")
    take_turn(target_db.connect, "materials", "beta")  # another category's turn does not count
    assert fair_order(target_db.connect, "relations", keys) == ["beta", "gamma", "default", "acme"]
    take_turn(target_db.connect, "relations", "default")
    assert fair_order(target_db.connect, "relations", keys) == ["beta", "gamma", "acme", "default"]
