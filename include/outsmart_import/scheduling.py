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


class CategoryNotEnabled(Exception):
    """The category is switched off in the settings: the run has nothing to do."""


class LicenseRequired(Exception):
    """A Pro category was asked for without a Pro licence in the settings."""


def check_runnable(category: Category, settings: ImportSettings) -> None:
    """Raise if this category must not run with these settings (checked before any API call).

    `enabled` is asked first: a switched-off category is simply off, whatever the licence (it used to fail as
    "needs Pro" while disabled, turning eight idle DAGs red)."""
    if not settings.category(category.name).enabled:
        raise CategoryNotEnabled(
            f"Category '{category.name}' is disabled in the Variable 'exact_online_import_settings' "
            f"(categories.{category.name}.enabled = false); nothing to import."
        )
    if category.pro and settings.license != "pro":
        raise LicenseRequired(
            f'Category \'{category.name}\' needs Exact Online Pro: set "license": "pro" in the Variable '
            f"'exact_online_import_settings' (current licence: '{settings.license}')."
        )


def schedule_for(category: Category, parsed: ParsedSettings) -> CategorySchedule:
    """Scheduled exactly when a run would be allowed (`check_runnable`: enabled, then licensed) and
    the settings have a schedule."""
    if parsed.settings is None:
        # Never guess a schedule from settings we cannot read: stop scheduling until they are fixed.
        return CategorySchedule(None, "UTC", f"not scheduled: the settings are invalid ({parsed.error})")
    settings = parsed.settings
    tz = settings.timezone
    try:
        check_runnable(category, settings)
    except CategoryNotEnabled:
        return CategorySchedule(None, tz, "not scheduled: disabled in the settings")
    except LicenseRequired:
        return CategorySchedule(None, tz, "not scheduled: needs the Exact Online Pro licence")
    if settings.schedule is None:
        return CategorySchedule(None, tz, 'not scheduled: the settings say "schedule": null (only by hand)')
    return CategorySchedule(settings.schedule, tz, f"scheduled {settings.schedule} ({tz})")
