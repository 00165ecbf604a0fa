"""What can be wrong with the settings Variable, by key, in English words with `{placeholders}`.

A problem is a key and its params, not a finished sentence, because two readers say it: the DAGs (an invalid
Variable's import error, `check_settings`) in these English words, and the settings page in the office's language
(its `labels.py` takes the English from here and keeps the Dutch beside it, by the same key). So a validator raises
`problem(key, ...)` rather than a ValueError with a sentence in it.
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

TEXTS: dict[str, str] = {
    # one value of the Variable (pydantic's error types, in plain words: settings._PYDANTIC)
    "unknown_key": "unknown key (not a setting of this import)",
    "one_of": "must be one of {choices}",
    "too_many": "has {actual_length} entries; at most {max_length} are allowed",
    "text_too_long": "is longer than {max_length} characters",
    "at_most": "must be at most {le}",
    "at_least": "must be at least {ge}",
    "true_or_false": "must be true or false",
    "whole_number": "must be a whole number",
    "text": "must be text (in double quotes)",
    "list": 'must be a list, e.g. [] or ["a", "b"]',
    "object": "must be an object, e.g. {}",
    "other": "{text}",  # an error type without words of ours: pydantic's own message
    "not_empty": "must not be empty",
    "not_a_company_key": "a company's key is 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter "
    "or digit",
    "not_a_conn_id": "a connection id is letters, digits, '_', '-' or '.' (at most 250)",
    "not_of_the_form": "does not have the form {pattern}",
    # our validators (settings.py, filters.py)
    "not_a_time_zone": "{value} is not an IANA time zone such as 'Europe/Amsterdam' or 'Europe/Brussels'",
    "not_a_cron": "{value} is not a cron expression or preset such as '@hourly' or '*/30 * * * *'",
    "listed_twice": "{value} is listed twice (again at position {position})",
    "empty_code": "item group code at position {position} is empty",
    "code_too_long": "item group code at position {position} is longer than {max_length} characters",
    # companies (settings._check_distinct, #21)
    "reserved_company": "{company} is the first company (the top level of the settings); pick another key",
    "first_company_database": "{company}: target_conn_id {conn_id} is the database of company 1",
    "same_database": "{company} and {other} both import into {conn_id}",
    "same_division": "{company} and {other} both import division {division} of {conn_id}",
    # the Variable as a whole (SettingsError)
    "not_json": "Variable {name} is not valid JSON: {error} at line {line}, column {column}",
    "not_an_object": "Variable {name} must be a JSON object, not {type}",
    "invalid": "Variable {name} is invalid: {problems}",
}

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, params: dict, thousands: str = ",") -> str:
    """The template with its `{placeholders}` filled in one pass (a value holding "{x}" stays as it is). A whole
    number is a count or a limit and gets the language's thousands separator (1,001); codes and positions are
    passed as text."""

    def value(match: re.Match) -> str:
        if match[1] not in params:
            return match[0]
        v = params[match[1]]
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}".replace(",", thousands)
        return str(v)

    return PLACEHOLDER.sub(value, template)


def english(key: str, params: dict) -> str:
    return fill(TEXTS[key], params)


def problem(key: str, **params: object) -> PydanticCustomError:
    """The error a validator raises: pydantic reports `key` as the error's type and `params` as its context."""
    return PydanticCustomError(key, TEXTS[key], params)
