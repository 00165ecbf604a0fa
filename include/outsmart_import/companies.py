"""The companies one deployment imports: each an Exact division, an OutSmart database and its own choices (#21).

The settings Variable's top level is the first company, `default`: the Exact Online connection
`exact_online_default` (its division in the connection's extra) into the database of `outsmart_postgres`. That is
exactly what a Variable written before there were several companies meant, so such a Variable and the database it
filled are company `default` as they are: no re-import, no rewrite. Further companies are under `companies`.

What is per company, and why it is keyed that way:
- its OutSmart database (`target_conn_id`) holds its tables and everything the import keeps about it: the landed
  copy of its Exact data, the stream watermarks and marks, the import log, the rejects, the resyncs. One database
  per company keys all of it by company without a company column in any statement, and a company removed from
  the settings leaves its database untouched;
- its division's call budget (Exact counts per app per division) and the token chain of its consent (per Exact
  user: shared by every division that consent reaches) live in the deployment's own database, the one of
  `outsmart_postgres` (STATE_CONN_ID), because companies that share a consent must share one chain.

No Airflow, pandas or database import here: the DAG file reads this at parse time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from include.outsmart_import.settings import (
    DEFAULT_COMPANY,
    DEFAULT_EXACT_CONN_ID,
    DEFAULT_TARGET_CONN_ID,
    CompanySettings,
    ImportSettings,
)

# Where the token chains, the call budgets and the connect attempts live: shared by every company.
STATE_CONN_ID = DEFAULT_TARGET_CONN_ID


@dataclass(frozen=True)
class Company:
    """One company as a run needs it. `division` None: the division in the Exact connection's extra (the first
    company, as before there were several)."""

    key: str
    title: str
    exact_conn_id: str
    division: int | None
    target_conn_id: str
    settings: ImportSettings  # the deployment's settings with this company's choices

    @property
    def paused(self) -> bool:
        return self.settings.paused


def companies_of(settings: ImportSettings) -> list[Company]:
    """Every company of the settings, the first (`default`) first, then the others by key."""
    first = Company(
        DEFAULT_COMPANY,
        "Company 1",
        DEFAULT_EXACT_CONN_ID,
        None,
        DEFAULT_TARGET_CONN_ID,
        settings.model_copy(update={"companies": {}}),
    )
    return [first, *(_company(key, c, settings) for key, c in sorted(settings.companies.items()))]


def _company(key: str, c: CompanySettings, settings: ImportSettings) -> Company:
    own = {"license": c.license, "schedule": c.schedule, "paused": c.paused, "categories": c.categories}
    return Company(
        key,
        c.title,
        c.exact_conn_id,
        c.division,
        c.target_conn_id,
        settings.model_copy(update={**own, "companies": {}}),
    )


def company(settings: ImportSettings, key: str) -> Company:
    """The company `key`; CompanyNotFound names the ones there are."""
    for c in companies_of(settings):
        if c.key == key:
            return c
    known = ", ".join(c.key for c in companies_of(settings))
    raise CompanyNotFound(f"No company {key!r} in the settings (there are: {known}).")


class CompanyNotFound(LookupError):
    """A run or a request named a company the settings do not have (removed meanwhile, or mistyped)."""


def due_at(cron: str | None, fire: dt.datetime, timezone: str) -> bool:
    """Whether `cron` (in `timezone`) fires at `fire`: which companies a scheduled run of the union of their crons
    is for. A minute's precision, as cron's."""
    if cron is None:
        return False
    from zoneinfo import ZoneInfo

    from croniter import croniter

    local = fire.astimezone(ZoneInfo(timezone)).replace(second=0, microsecond=0)
    return bool(croniter.match(cron, local))
