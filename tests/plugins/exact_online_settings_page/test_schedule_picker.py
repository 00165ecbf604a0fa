"""The schedule picker's conversion (plugins/exact_online_settings_page/schedule_picker.py): office words <-> cron.

VECTORS are the forms the picker writes: each picker gives its cron, and the cron reads back as the same picker.
"""

from __future__ import annotations

import pytest

from exact_online_settings_page.schedule_picker import Picker, PickerError, from_cron, from_query, to_cron

VECTORS = [
    (Picker("interval", 15, "minutes", 7, 18, weekdays_only=True), "*/15 7-17 * * 1-5"),
    (Picker("interval", 5, "minutes", 0, 24), "*/5 * * * *"),
    (Picker("interval", 30, "minutes", 6, 7), "*/30 6 * * *"),
    (Picker("interval", 1, "hours", 7, 18), "0 7-17 * * *"),
    (Picker("interval", 2, "hours", 7, 18, weekdays_only=True), "0 7-17/2 * * 1-5"),
    (Picker("interval", 6, "hours", 0, 24), "0 */6 * * *"),
    (Picker("interval", 1, "hours", 0, 24, weekdays_only=True), "0 * * * 1-5"),
    (Picker("daily", at="06:30"), "30 6 * * *"),
    (Picker("daily", at="18:00", weekdays_only=True), "0 18 * * 1-5"),
    (Picker("manual"), None),
]


@pytest.mark.parametrize(("picker", "cron"), VECTORS, ids=[str(c) for _, c in VECTORS])
def test_each_picker_choice_is_its_cron_and_reads_back(picker, cron):
    assert to_cron(picker) == cron
    assert from_cron(cron) == picker


@pytest.mark.parametrize(
    ("cron", "picker"),
    [
        ("@hourly", Picker("interval", 1, "hours", 0, 24)),
        ("@daily", Picker("daily", at="00:00")),
        ("0 7-16/2 * * *", Picker("interval", 2, "hours", 7, 17)),  # 7, 9 … 15: the same runs as until 17:00
        ("", Picker("manual")),
    ],
)
def test_presets_and_equivalent_forms_read_as_office_words(cron, picker):
    assert from_cron(cron) == picker


@pytest.mark.parametrize(
    "cron",
    [
        "*/20 7-17 * * *",
        "15 */2 * * *",
        "0 6 1 * *",
        "0 6 * * 1,3",
        "*/15 7-17 * * 0-6",
        "@weekly",
        "0 0 * * * *",
        "*/15 17-7 * * *",
        "0 7-17/5 * * *",
        "not a cron",
    ],
)
def test_everything_else_stays_advanced_as_it_is(cron):
    assert from_cron(cron) == Picker("advanced", cron=cron)
    assert to_cron(from_cron(cron)) == cron


@pytest.mark.parametrize(
    ("picker", "key"),
    [
        (Picker("interval", 20, "minutes", 7, 18), "picker_step"),
        (Picker("interval", 5, "hours", 7, 18), "picker_step"),
        (Picker("interval", 15, "minutes", 18, 7), "picker_range"),
        (Picker("interval", 15, "minutes", 7, 7), "picker_range"),
        (Picker("interval", 15, "minutes", 7, 25), "picker_range"),
        (Picker("daily", at="25:00"), "picker_time"),
    ],
)
def test_a_choice_that_makes_no_schedule_is_refused_with_its_label_key(picker, key):
    with pytest.raises(PickerError) as err:
        to_cron(picker)
    assert err.value.key == key


def test_the_pages_query_parameters():
    q = {"mode": "interval", "every": "15", "unit": "minutes", "start": "7", "end": "18", "weekdays_only": "true"}
    assert to_cron(from_query(q)) == "*/15 7-17 * * 1-5"
    assert from_query({"mode": "advanced", "cron": "0 6 1 * *"}).cron == "0 6 1 * *"
    with pytest.raises(PickerError):
        from_query({"mode": "weekly"})
    with pytest.raises(PickerError):
        from_query({"mode": "interval", "every": "x"})
