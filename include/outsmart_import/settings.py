"""The `exact_online_import_settings` Variable: one JSON document that drives every import.

Validated with pydantic; every mistake is reported with the path of the key that is wrong, in plain words, e.g.
`categories.relations.relation_types[1]: must be one of customer, prospect, suspect, none, supplier`.
Unknown keys are errors too (a misspelt "include_blocked" must not be silently ignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, create_model, field_validator

# The per-category models live beside the registry; re-exported here, where the Variable is described.
from include.outsmart_import.filters import (  # noqa: F401
    CategorySettings,
    EmployeesSettings,
    ItemGroupSettings,
    PaymentTransactionsSettings,
    PriceAgreementsSettings,
    QuotationsSettings,
    QuotationStatus,
    RelationsSettings,
    RelationType,
    SalesOrdersSettings,
    SalesOrderStatus,
    Strict,
)
from include.outsmart_import.registry import CATEGORIES

VARIABLE_NAME = "exact_online_import_settings"


class SettingsError(ValueError):
    """The settings Variable is not valid; the message names the offending key."""


# One field per registry category, its model and default from the registry entry: a category added to the registry
# is a key of the Variable at once, and an unknown key is an error naming it.
_CATEGORY_FIELDS: dict[str, Any] = {
    name: (cat.settings, Field(default_factory=cat.default_settings)) for name, cat in CATEGORIES.items()
}
CategoriesSettings = create_model("CategoriesSettings", __base__=Strict, **_CATEGORY_FIELDS)


# A company's key in `companies` (and in the grid's map index, the sync icon's request, the logs): short, stable,
# safe in a URL and a task log file name.
COMPANY_KEY = r"^[a-z0-9][a-z0-9_-]{0,39}$"
DEFAULT_COMPANY = "default"
DEFAULT_EXACT_CONN_ID = "exact_online_default"
DEFAULT_TARGET_CONN_ID = "outsmart_postgres"
CompanyKey = Annotated[str, StringConstraints(pattern=COMPANY_KEY)]
MAX_COMPANIES = 1000
# Airflow's own limit on a connection id is 250 characters; ours follow its usual spelling.
CONN_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"


class CompanyChoices(Strict):
    """What each company chooses for itself: which categories, with which filters, on which licence and schedule.

    The top level of the Variable holds these for the first company (`default`): a Variable written before there
    were several companies is exactly one company's settings, and stays valid as it is."""

    license: Literal["standard", "pro"] = "standard"
    # When the enabled imports run: a cron expression or preset (@hourly, @daily, ...); null = only by hand.
    # Read by the dag-processor: saving the Variable changes each enabled category's DAG schedule.
    schedule: str | None = "@hourly"
    # A paused company is left out of every run, scheduled or by hand; its data and its imports' history stay.
    paused: bool = False
    # A model built from the registry above: mypy cannot see its fields, pydantic validates them.
    categories: CategoriesSettings = Field(default_factory=CategoriesSettings)  # type: ignore[valid-type]

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a cron expression or preset such as '@hourly' or '*/30 * * * *'")
        return v

    def category(self, name: str) -> CategorySettings:
        return getattr(self.categories, name)


class CompanySettings(CompanyChoices):
    """One more company: an Exact division reached through an Exact Online connection (its app and consent), an
    OutSmart database of its own (a Postgres connection), and its own choices."""

    title: str = Field(min_length=1, max_length=100)
    # The Exact Online connection whose consent reaches the division: several companies may share one (one
    # accountant's login reaches many divisions; they then share its token chain).
    exact_conn_id: str = Field(default="exact_online_default", pattern=CONN_ID_PATTERN)
    division: int = Field(ge=1, le=2**31 - 1)
    # The company's own OutSmart database: its tables, the landed copy of its Exact data and its import log.
    target_conn_id: str = Field(pattern=CONN_ID_PATTERN)


class ImportSettings(CompanyChoices):
    """The whole Variable: the first company's choices at the top level, what every company shares (the clock,
    retries, the reuse window), and the other companies under `companies`."""

    # The schedule's clock: "0 6 * * *" means 06:00 in the office, through summer time too. One for every company:
    # the DAGs' timetable is one union of the companies' crons, which Airflow evaluates in one time zone.
    timezone: str = "Europe/Amsterdam"
    # Task retries for failures that can pass (Exact 5xx bursts, a dropped network, a restarting worker).
    # Read at parse time like the schedule, so every component agrees and a change needs no restart.
    task_retries: int = Field(default=2, ge=0, le=10)
    retry_delay_seconds: int = Field(default=120, ge=1, le=3600)
    # Categories share Exact streams (materials and hour types both read the items): a stream read from Exact this
    # many seconds ago or less is taken as it landed instead of asked again. Keep it below the schedule's
    # interval, so that each scheduled round asks Exact once per stream; 0 asks Exact on every run.
    reuse_window_seconds: int = Field(default=300, ge=0, le=3600)
    # Companies besides the first (`default`), by key; each with its own division, database and choices.
    companies: dict[CompanyKey, CompanySettings] = Field(default_factory=dict, max_length=MAX_COMPANIES)

    @field_validator("companies")
    @classmethod
    def _distinct_companies(cls, v: dict[str, CompanySettings]) -> dict[str, CompanySettings]:
        _check_distinct(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not an IANA time zone such as 'Europe/Amsterdam' or 'Europe/Brussels'"
            ) from None
        return v


def _check_distinct(companies: dict[str, CompanySettings]) -> None:
    """Two companies never share an OutSmart database (their imports would overwrite each other's rows) nor a
    division of one connection (they would be the same company twice). Raises ValueError naming both."""
    if DEFAULT_COMPANY in companies:
        raise ValueError(f"{DEFAULT_COMPANY!r} is the first company (the top level of the settings); pick another key")
    targets: dict[str, str] = {}
    divisions: dict[tuple[str, int], str] = {}
    for key, c in sorted(companies.items()):
        if c.target_conn_id == DEFAULT_TARGET_CONN_ID:
            raise ValueError(f"{key}: target_conn_id {c.target_conn_id!r} is the database of company 1")
        if c.target_conn_id in targets:
            raise ValueError(f"{key} and {targets[c.target_conn_id]} both import into {c.target_conn_id!r}")
        if (c.exact_conn_id, c.division) in divisions:
            other = divisions[(c.exact_conn_id, c.division)]
            raise ValueError(f"{key} and {other} both import division {c.division} of {c.exact_conn_id!r}")
        targets[c.target_conn_id] = key
        divisions[(c.exact_conn_id, c.division)] = key


def _path(loc: tuple) -> str:
    """`categories.relations.relation_types[0]`; a key that is not a plain name is quoted: `categories["a.b"]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).isidentifier():
            out += ("." if out else "") + str(part)
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out or "(top level)"


def _choices(ctx: dict) -> str:
    """pydantic's "'customer', 'prospect' or 'supplier'" as "customer, prospect, supplier"."""
    return ", ".join(re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", ""))))


# pydantic's messages are written for programmers ("Value error, ...", "Input should be a valid list"); the office
# reads them on the settings page and in the DAG import error, so each error type a Variable can have gets plain words.
_PLAIN: dict[str, Callable[[dict], str]] = {
    "extra_forbidden": lambda ctx: "unknown key (not a setting of this import)",
    "literal_error": lambda ctx: f"must be one of {_choices(ctx)}",
    "too_long": lambda ctx: f"has {ctx['actual_length']:,} entries; at most {ctx['max_length']:,} are allowed",
    "string_too_long": lambda ctx: f"is longer than {ctx['max_length']:,} characters",
    "string_too_short": lambda ctx: "must not be empty",
    "string_pattern_mismatch": lambda ctx: _PATTERN_WORDS.get(str(ctx.get("pattern")), "is not of the allowed form"),
    "less_than_equal": lambda ctx: f"must be at most {ctx['le']}",
    "greater_than_equal": lambda ctx: f"must be at least {ctx['ge']}",
    "bool_type": lambda ctx: "must be true or false",
    "bool_parsing": lambda ctx: "must be true or false",
    "int_type": lambda ctx: "must be a whole number",
    "int_parsing": lambda ctx: "must be a whole number",
    "int_from_float": lambda ctx: "must be a whole number",
    "string_type": lambda ctx: "must be text (in double quotes)",
    "list_type": lambda ctx: 'must be a list, e.g. [] or ["a", "b"]',
    "model_type": lambda ctx: "must be an object, e.g. {}",
    "dict_type": lambda ctx: "must be an object, e.g. {}",
}


_PATTERN_WORDS: dict[str, str] = {
    COMPANY_KEY: "a company's key is 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or digit",
    CONN_ID_PATTERN: "a connection id is letters, digits, '_', '-' or '.' (at most 250)",
}


def plain_message(err: dict) -> str:
    """One pydantic error in plain words: a known type by the table above; our own validators' messages without
    pydantic's "Value error, " prefix; anything else with "Input should be" said as "must be"."""
    plain = _PLAIN.get(err["type"])
    if plain is not None:
        try:
            return plain(err.get("ctx") or {})
        except (KeyError, ValueError):  # a pydantic version with other context: its own words are still right
            pass
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg.replace("Input should be", "must be", 1)


def settings_problems(raw: dict) -> tuple[ImportSettings | None, list[dict]]:
    """Validate an already-decoded Variable: (settings, []) or (None, [{"path": ..., "message": ...}, ...]).

    The one validation: `parse_settings` (the DAGs) and the settings page (field-level messages) both use it."""
    try:
        return ImportSettings.model_validate(raw), []
    except ValidationError as exc:
        return None, [{"path": _path(err["loc"]), "message": plain_message(dict(err))} for err in exc.errors()]


def parse_settings(raw: str | dict | None) -> ImportSettings:
    """Validate the Variable's value. Raises SettingsError naming every offending key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ImportSettings()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"Variable {VARIABLE_NAME!r} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    if not isinstance(raw, dict):
        raise SettingsError(f"Variable {VARIABLE_NAME!r} must be a JSON object, not {type(raw).__name__}")
    settings, problems = settings_problems(raw)
    if problems or settings is None:
        raise SettingsError(
            f"Variable {VARIABLE_NAME!r} is invalid: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        )
    return settings
