"""Which categories Airflow schedules, and when: derived from the settings Variable when the DAG file is parsed.

Why at parse time: a DAG's schedule is what the scheduler, the DAG list ("Schedule", "Next Run") and the grid
know. Deciding "enabled?" inside a run meant every DAG had to wake on a fixed tick and skip: 96 runs a day per
DAG, a grid of skipped columns and run ids that did not match the import they did. With the schedule derived
from the Variable, the dag-processor (which re-parses every `min_file_process_interval`, 30 s by default)
turns a saved Variable into each category's real schedule: an enabled, licensed category runs on the
settings' cron in the settings' time zone; a disabled, unlicensed or unreadable one has no schedule at all.
Airflow's own guidance is to keep top-level Variable reads cheap; this is one read per parse, measured at
30-75 ms in the dag-processor.

No Airflow import here: the DAG file turns a `CategorySchedule` into a timetable.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.outsmart_import.registry import Category
from include.outsmart_import.settings import ImportSettings, SettingsError, parse_settings


@dataclass(frozen=True)
class CategorySchedule:
    """`cron` None means: Airflow does not schedule this category (manual runs still work)."""

    cron: str | None
    timezone: str
    why: str


@dataclass(frozen=True)
class ParsedSettings:
    """The Variable as the parser saw it: valid settings, or the reason it could not use them."""

    settings: ImportSettings | None
    error: str | None = None


def read_settings(raw: str | dict | None) -> ParsedSettings:
    """Validate the raw Variable; never raises (a broken Variable must not break the DAG file)."""
    try:
        return ParsedSettings(parse_settings(raw))
    except SettingsError as exc:
        return ParsedSettings(None, str(exc))


def schedule_for(category: Category, parsed: ParsedSettings) -> CategorySchedule:
    """One setting decides whether a category is scheduled: `categories.<name>.enabled` (and, for Pro
    categories, the licence that makes them available at all)."""
    if parsed.settings is None:
        # Never guess a schedule from settings we cannot read: stop scheduling until they are fixed.
        return CategorySchedule(None, "UTC", f"not scheduled: the settings are invalid ({parsed.error})")
    settings = parsed.settings
    tz = settings.timezone
    if not settings.category(category.name).enabled:
        return CategorySchedule(None, tz, "not scheduled: disabled in the settings")
    if category.pro and settings.license != "pro":
        return CategorySchedule(None, tz, "not scheduled: needs the Exact Online Pro licence")
    if not category.implemented:
        return CategorySchedule(None, tz, "not scheduled: not implemented yet")
    if settings.schedule is None:
        return CategorySchedule(None, tz, "not scheduled: the settings say \"schedule\": null (only by hand)")
    return CategorySchedule(settings.schedule, tz, f"scheduled {settings.schedule} ({tz})")
