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

import datetime as dt
from dataclasses import dataclass

from include.outsmart_import.companies import DEFAULT_COMPANY, Company, companies_of, due_at
from include.outsmart_import.registry import Category
from include.outsmart_import.settings import ImportSettings, SettingsError, parse_settings
from include.outsmart_import.webhook_assets import category_assets


@dataclass(frozen=True)
class CategorySchedule:
    """`crons` empty means: Airflow does not schedule this category (manual runs still work). Several: the union
    of the companies' crons; each fire imports the companies whose cron it is (`companies_for_run`)."""

    crons: tuple[str, ...]
    timezone: str
    why: str
    # The Assets (webhook_assets.asset_uri) whose events also start a run: the category's streams with an Exact
    # webhook topic, for each company it runs for on a cron. The cron stays: the safety net for lost events and for
    # the streams without a topic.
    assets: tuple[str, ...] = ()


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


class CompanyPaused(Exception):
    """The company is paused in the settings: none of its imports run."""


def check_runnable(category: Category, settings: ImportSettings, company: str = DEFAULT_COMPANY) -> None:
    """Raise if this category must not run for this company with these settings (the company's own choices; see
    companies.companies_of), before any API call.

    `enabled` is asked first: a switched-off category is simply off, whatever the licence (it used to fail as
    "needs Pro" while disabled, turning eight idle DAGs red)."""
    where = "" if company == DEFAULT_COMPANY else f"companies.{company}."
    if settings.paused:
        raise CompanyPaused(f"Company {company!r} is paused in the settings ({where}paused = true); nothing to import.")
    if not settings.category(category.name).enabled:
        raise CategoryNotEnabled(
            f"Category '{category.name}' is disabled in the Variable 'exact_online_import_settings' "
            f"({where}categories.{category.name}.enabled = false); nothing to import."
        )
    if category.pro and settings.license != "pro":
        raise LicenseRequired(
            f'Category \'{category.name}\' needs Exact Online Pro: set "license": "pro" in the Variable '
            f"'exact_online_import_settings' ({where}license; current licence: '{settings.license}')."
        )


def why_not_runnable(category: Category, company: Company) -> str | None:
    """None if the category may run for the company; else why not, in a few words (the page says it)."""
    return _runnable(category, company)


def _runnable(category: Category, company: Company) -> str | None:
    """None if the category may run for the company; else why not, in a few words."""
    try:
        check_runnable(category, company.settings, company.key)
    except CompanyPaused:
        return "paused"
    except CategoryNotEnabled:
        return "disabled in the settings"
    except LicenseRequired:
        return "needs the Exact Online Pro licence"
    return None


def schedule_for(category: Category, parsed: ParsedSettings) -> CategorySchedule:
    """Scheduled exactly when a run would be allowed for some company (`check_runnable`: not paused, enabled,
    licensed) that has a schedule: on the union of those companies' crons."""
    if parsed.settings is None:
        # Never guess a schedule from settings we cannot read: stop scheduling until they are fixed.
        return CategorySchedule((), "UTC", f"not scheduled: the settings are invalid ({parsed.error})")
    settings = parsed.settings
    tz = settings.timezone
    companies = companies_of(settings)
    reasons = [_runnable(category, c) for c in companies]
    runnable = [c for c, why in zip(companies, reasons, strict=True) if why is None]
    if not runnable:
        return CategorySchedule((), tz, "not scheduled: " + _why_not(reasons, len(companies)))
    by_cron: dict[str, list[str]] = {}
    for c in runnable:
        if c.settings.schedule is not None:
            by_cron.setdefault(c.settings.schedule, []).append(c.key)
    if not by_cron:
        return CategorySchedule((), tz, 'not scheduled: the settings say "schedule": null (only by hand)')
    assets = category_assets(category, [key for keys in by_cron.values() for key in keys])
    on_events = " or on an Exact webhook event" if assets else ""
    if len(companies) == 1:
        return CategorySchedule(tuple(by_cron), tz, f"scheduled {next(iter(by_cron))} ({tz}){on_events}", assets)
    parts = [f"{cron} ({len(keys)} {'company' if len(keys) == 1 else 'companies'})" for cron, keys in by_cron.items()]
    return CategorySchedule(tuple(by_cron), tz, f"scheduled {'; '.join(parts)} ({tz}){on_events}", assets)


def _why_not(reasons: list[str | None], count: int) -> str:
    if count == 1:
        return str(reasons[0])
    kinds = sorted({str(r) for r in reasons})
    return "for no company (" + ", ".join(kinds) + ")"


def companies_for_run(
    category: Category,
    settings: ImportSettings,
    fire: dt.datetime | None,
    asked: str | None,
    changed: frozenset[str] | None = None,
) -> tuple[list[Company], str]:
    """The companies one run imports, and if none, why. A scheduled run (`fire` = its time): the runnable
    companies whose cron it is. A run started by webhook events (`changed`: the companies the events are of): those
    of them that are runnable. A manual run: the company asked for, else every runnable company."""
    if changed is not None:
        chosen = [c for c in companies_of(settings) if c.key in changed and _runnable(category, c) is None]
        none = f"No company of these Exact events ({', '.join(sorted(changed))}) imports {category.name} now."
        return chosen, "" if chosen else none
    companies = companies_of(settings)
    if asked:
        chosen = [c for c in companies if c.key == asked]
        if not chosen:
            return [], f"No company {asked!r} in the settings (there are: {', '.join(c.key for c in companies)})."
        why = _runnable(category, chosen[0])
        if why is not None:
            check_runnable(category, chosen[0].settings, chosen[0].key)  # raises the full sentence
        return chosen, ""
    runnable = [c for c in companies if _runnable(category, c) is None]
    if fire is not None:
        runnable = [c for c in runnable if due_at(c.settings.schedule, fire, settings.timezone)]
        if not runnable:
            return [], f"No company's schedule fires at {fire.isoformat()} for {category.name}."
    if not runnable:
        if len(companies) == 1:
            check_runnable(category, companies[0].settings, companies[0].key)  # raises the full sentence
        return [], f"{category.name} is disabled, unlicensed or paused for every company; nothing to import."
    return runnable, ""
