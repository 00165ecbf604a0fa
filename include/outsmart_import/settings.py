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

from include.outsmart_import import problems

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
    """The settings Variable is not valid; the message names the offending key. `key` and `params` say it as a
    problem (problems.py), and `problems` are the values that are wrong, so the settings page can say it in the
    office's language."""

    def __init__(self, key: str, found: list[dict] | None = None, **params: object):
        super().__init__(problems.english(key, params))
        self.key, self.params, self.problems = key, params, found or []


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
            raise problems.problem("not_a_cron", value=repr(v))
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
            raise problems.problem("not_a_time_zone", value=repr(v)) from None
        return v


def _check_distinct(companies: dict[str, CompanySettings]) -> None:
    """Two companies never share an OutSmart database (their imports would overwrite each other's rows) nor a
    division of one connection (they would be the same company twice). Raises the problem, naming both."""
    if DEFAULT_COMPANY in companies:
        raise problems.problem("reserved_company", company=repr(DEFAULT_COMPANY))
    targets: dict[str, str] = {}
    divisions: dict[tuple[str, int], str] = {}
    for key, c in sorted(companies.items()):
        conn_id = repr(c.target_conn_id)
        if c.target_conn_id == DEFAULT_TARGET_CONN_ID:
            raise problems.problem("first_company_database", company=key, conn_id=conn_id)
        if c.target_conn_id in targets:
            raise problems.problem("same_database", company=key, other=targets[c.target_conn_id], conn_id=conn_id)
        if (c.exact_conn_id, c.division) in divisions:
            other = divisions[(c.exact_conn_id, c.division)]
            division, exact = str(c.division), repr(c.exact_conn_id)
            raise problems.problem("same_division", company=key, other=other, division=division, conn_id=exact)
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
# reads them on the settings page and in the DAG import error, so each error type a Variable can have is a problem
# of ours (problems.py: plain words, and a key the page says in the office's language) with its params.
_PYDANTIC: dict[str, tuple[str, Callable[[dict], dict]]] = {
    "extra_forbidden": ("unknown_key", lambda ctx: {}),
    "literal_error": ("one_of", lambda ctx: {"choices": _choices(ctx)}),
    "too_long": ("too_many", lambda ctx: {"actual_length": ctx["actual_length"], "max_length": ctx["max_length"]}),
    "string_too_long": ("text_too_long", lambda ctx: {"max_length": ctx["max_length"]}),
    "string_too_short": ("not_empty", lambda ctx: {}),
    "string_pattern_mismatch": ("not_of_the_form", lambda ctx: {"pattern": ctx["pattern"]}),
    "less_than_equal": ("at_most", lambda ctx: {"le": ctx["le"]}),
    "greater_than_equal": ("at_least", lambda ctx: {"ge": ctx["ge"]}),
    "bool_type": ("true_or_false", lambda ctx: {}),
    "bool_parsing": ("true_or_false", lambda ctx: {}),
    "int_type": ("whole_number", lambda ctx: {}),
    "int_parsing": ("whole_number", lambda ctx: {}),
    "int_from_float": ("whole_number", lambda ctx: {}),
    "string_type": ("text", lambda ctx: {}),
    "list_type": ("list", lambda ctx: {}),
    "model_type": ("object", lambda ctx: {}),
    "dict_type": ("object", lambda ctx: {}),
}


# The patterns of ours, said in words instead of as the pattern.
_PATTERN_PROBLEMS = {COMPANY_KEY: "not_a_company_key", CONN_ID_PATTERN: "not_a_conn_id"}


def problem_of(err: dict) -> tuple[str, dict]:
    """One pydantic error as (problem key, params): a known type by the table above; our own validators' problems
    as they were raised (problems.problem); anything else as pydantic's words, with "Input should be" said as
    "must be" and without pydantic's "Value error, " prefix."""
    known = _PYDANTIC.get(err["type"])
    pattern = str((err.get("ctx") or {}).get("pattern"))
    if err["type"] == "string_pattern_mismatch" and pattern in _PATTERN_PROBLEMS:
        return _PATTERN_PROBLEMS[pattern], {}
    if known is not None:
        try:
            return known[0], known[1](err.get("ctx") or {})
        except (KeyError, ValueError):  # a pydantic version with other context: its own words are still right
            pass
    if err["type"] in problems.TEXTS:
        return err["type"], dict(err.get("ctx") or {})
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return "other", {"text": msg.replace("Input should be", "must be", 1)}


def plain_message(err: dict) -> str:
    """One pydantic error in plain (English) words."""
    return problems.english(*problem_of(err))


def settings_problems(raw: dict) -> tuple[ImportSettings | None, list[dict]]:
    """Validate an already-decoded Variable: (settings, []) or (None, [{"path", "message", "problem", "params"},
    ...]): the message in English, the problem's key and params for the settings page's language.

    The one validation: `parse_settings` (the DAGs) and the settings page (field-level messages) both use it."""
    try:
        return ImportSettings.model_validate(raw), []
    except ValidationError as exc:
        found = []
        for err in exc.errors():
            key, params = problem_of(dict(err))
            found.append(
                {"path": _path(err["loc"]), "message": problems.english(key, params), "problem": key, "params": params}
            )
        return None, found


def parse_settings(raw: str | dict | None) -> ImportSettings:
    """Validate the Variable's value. Raises SettingsError naming every offending key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ImportSettings()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                "not_json",
                name=repr(VARIABLE_NAME),
                error=exc.msg,
                line=str(exc.lineno),
                column=str(exc.colno),
            ) from None
    if not isinstance(raw, dict):
        raise SettingsError("not_an_object", name=repr(VARIABLE_NAME), type=type(raw).__name__)
    settings, found = settings_problems(raw)
    if found or settings is None:
        raise SettingsError(
            "invalid",
            found,
            name=repr(VARIABLE_NAME),
            problems="; ".join(f"{p['path']}: {p['message']}" for p in found),
        )
    return settings
