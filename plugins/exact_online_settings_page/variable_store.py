"""The settings Variable `exact_online_import_settings`, read and written through Airflow's ORM session (the
api-server's own request session), validated with the DAGs' model (`include.outsmart_import.settings`). What is
wrong with it is said in the page's language (`lang`; labels.py), by the problems' keys."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from exact_online_settings_page.labels import label, problem
from exact_online_settings_page.request_limits import MAX_BODY_BYTES
from include.outsmart_import.settings import (
    VARIABLE_NAME,
    ImportSettings,
    SettingsError,
    parse_settings,
    settings_problems,
)


def version_of(raw: str | None) -> str:
    """The version the page sends back on Save: a hash of the stored text (not the text: no need to echo it)."""
    if raw is None:
        return "absent"
    return "sha256:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


def read_variable(session, *, for_update: bool = False):
    from airflow.models import Variable
    from sqlalchemy import select

    stmt = select(Variable).where(Variable.key == VARIABLE_NAME)
    if for_update:
        stmt = stmt.with_for_update()
    var = session.scalar(stmt)
    return var, (var.val if var is not None else None)


def settings_view(raw: str | None, lang: str = "en") -> dict:
    """The stored settings as the page edits them (every key explicit), and what is wrong with them.

    A stored Variable that does not validate is shown as stored, as far as the page can show it, with its problems
    (`stored.problems`, each with the key's path): showing the defaults instead made one Save wipe every other
    choice. One that is no JSON object at all (or too large for the page) is shown read-only with the error, and
    Save replaces it only when the request says `"replace": true`."""
    settings, stored = stored_settings(raw, lang)
    shadowed = bool(os.environ.get("AIRFLOW_VAR_" + VARIABLE_NAME.upper()))
    return {
        "settings": settings,
        "stored": stored,
        "stored_error": stored["error"],
        "exists": raw is not None,
        "shadowed_by_environment": shadowed,
        "version": version_of(raw),
    }


def _stored_status(status: str, problems: list[dict] | None = None, error: str | None = None) -> dict:
    return {
        "status": status,  # absent | valid | invalid | unreadable
        "problems": problems or [],
        "error": error,
        "replace_required": status == "unreadable",
    }


def settings_error(exc: SettingsError, lang: str) -> str:
    """Why the stored settings are not valid, in `lang` (the DAGs say the same in English: str(exc))."""
    if exc.key == "invalid":
        found = "; ".join(f"{p['path']}: {problem(p, lang)}" for p in exc.problems)
        return label("problem_invalid", lang, **{**exc.params, "problems": found})
    return label("problem_" + exc.key, lang, **exc.params)


def stored_settings(raw: str | None, lang: str = "en") -> tuple[dict, dict]:
    """(the settings the page shows, the `stored` block of the view) for the Variable's text."""
    defaults = ImportSettings().model_dump(mode="json")
    if raw is None:
        return defaults, _stored_status("absent")
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        # The page could not send it back (413) and loading it is what made the page hang.
        return defaults, _stored_status(
            "unreadable",
            error=label(
                "variable_too_large",
                lang,
                name=repr(VARIABLE_NAME),
                size=len(raw.encode("utf-8")),
                kb=MAX_BODY_BYTES // 1024,
            ),
        )
    try:
        return parse_settings(raw).model_dump(mode="json"), _stored_status("valid")
    except SettingsError as exc:
        error = settings_error(exc, lang)
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        return defaults, _stored_status("unreadable", error=error)
    _, problems = settings_problems(decoded)
    settings, shown_as_default = _as_stored(ImportSettings, defaults, decoded, "", {p["path"] for p in problems})
    return settings, _stored_status("invalid", _noted(problems, shown_as_default, lang), error)


# The top-level keys the page has a field for; a wrong value under any other key (task_retries, ...) could not be
# corrected on the page, so it is shown as its default (and its problem says so).
_PAGE_KEYS = frozenset({"license", "schedule", "timezone", "categories"})
_NULLABLE = frozenset({"schedule"})  # null = only by hand


def _showable(value, default, path: str) -> bool:
    """Can the page's widget hold this wrong stored value, so that the user sees it marked and fixes it there? A
    list of words can (a wrong word is shown and marked); a text where a list belongs cannot."""
    if value is None:
        return path in _NULLABLE
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(x, str) for x in value)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    return type(value) is type(default) or (path in _NULLABLE and isinstance(value, str))


def _has_problem(path: str, problem_paths: set[str]) -> bool:
    return any(p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in problem_paths)


def _leaf(field: FieldInfo, value, default, path: str, problem_paths: set[str]) -> tuple[object, bool]:
    """(what the page shows for one stored value, whether that is the stored value). A value without a problem is
    the model's reading of it ("true" as true, as the DAGs read it); a wrong one is kept where the page can show it
    and be corrected there, else it is the default."""
    if not _has_problem(path, problem_paths):
        # the field's type with its constraints (max_length, ge/le), as the model validates it
        ann: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        adapter: TypeAdapter = TypeAdapter(ann)
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json"), True
        except ValidationError:  # a problem the model found elsewhere than at this path: treat it as one here
            pass
    editable = "." in path or path in _PAGE_KEYS
    if editable and _showable(value, default, path):
        return value, True
    return default, False


def _as_stored(model: type[BaseModel], default: dict, stored, path: str, problem_paths: set[str]):
    """Every key of `model` (with `default`, the model's defaults, where the Variable has none), holding the stored
    value wherever the page can show it; and the paths shown as the default instead. Keys the model does not have
    are left out (the problems name them)."""
    if not isinstance(stored, dict):
        return dict(default), [path]
    out: dict = {}
    replaced: list[str] = []
    for key, field in model.model_fields.items():
        sub = f"{path}.{key}" if path else key
        if key not in stored:
            out[key] = default[key]  # absent: the model takes the default too
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out[key], more = _as_stored(field.annotation, default[key], stored[key], sub, problem_paths)
            replaced += more
        else:
            out[key], kept = _leaf(field, stored[key], default[key], sub, problem_paths)
            replaced += [] if kept else [sub]
    return out, replaced


def _noted(problems: list[dict], shown_as_default: list[str], lang: str) -> list[dict]:
    """The problems in `lang`, each saying what Save will do about it when that is not plain from the form."""
    defaulted = set(shown_as_default)
    out = []
    for p in problems:
        message = problem(p, lang)
        if p["path"] == "companies" or p["path"].startswith(("companies.", "companies[")):
            message += label("note_companies_kept", lang)  # #21: Save keeps them as stored
        elif p["problem"] == "unknown_key":
            message += label("note_left_out", lang)
        elif any(_has_problem(d, {p["path"]}) for d in defaulted):
            message += label("note_default_written", lang)
        out.append({"path": p["path"], "message": message})
    return out


class SaveRefused(Exception):
    def __init__(self, status: int, detail):
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def _validated(submitted, lang: str) -> ImportSettings:
    if not isinstance(submitted, dict):
        raise SaveRefused(
            422,
            {
                "message": label("settings_not_an_object", lang),
                "errors": [{"path": "(top level)", "message": label("must_be_an_object", lang)}],
            },
        )
    settings, problems = settings_problems(submitted)
    if settings is None:  # invalid: the problems say why, each at its field
        errors = [{"path": p["path"], "message": problem(p, lang)} for p in problems]
        raise SaveRefused(422, {"message": label("nothing_saved_fix_red", lang), "errors": errors})
    return settings


def _check_current(current: str | None, expected_version: str, replace: bool, lang: str) -> None:
    """Refuse a stale page (409), and a Save over a Variable the page could not read unless it says `replace`: that
    Save loses whatever the Variable held, so it must be the user's explicit choice, not a side effect."""
    if version_of(current) != expected_version:
        raise SaveRefused(
            409,
            {
                "message": label("changed_elsewhere", lang),
                "current_version": version_of(current),
            },
        )
    _, stored = stored_settings(current, lang)
    if stored["replace_required"] and not replace:
        raise SaveRefused(
            409,
            {
                "message": label("replace_needed", lang, error=stored["error"]),
                "replace_required": True,
            },
        )


def save_settings(session, submitted, expected_version: str, *, replace: bool = False, lang: str = "en") -> dict:
    """Validate with the DAGs' model; refuse a stale page (409) and an unconfirmed replacement of an unreadable
    Variable (409); write the whole Variable in one statement."""
    _validated(_without_companies(submitted), lang)  # the user's own fields first: 422 before any lock
    # The row lock makes compare-and-write atomic against another Save through this page; the REST API and the
    # Variables page write without it, but a write of theirs that lands first changes the hash and is caught here.
    var, current = read_variable(session, for_update=True)
    _check_current(current, expected_version, replace, lang)
    settings = _validated(_with_stored_companies(submitted, current), lang)
    text = json.dumps(settings.model_dump(mode="json"), indent=2)
    write_variable(session, var, text)
    return {"version": version_of(text), "settings": settings.model_dump(mode="json")}


def _without_companies(submitted):
    return {k: v for k, v in submitted.items() if k != "companies"} if isinstance(submitted, dict) else submitted


def _with_stored_companies(submitted, current: str | None):
    """The page's Save of the first company and the shared fields never changes the other companies (#21): they are
    taken as stored, whatever the request holds. A company is added, changed or removed only through
    /api/companies (company_settings.py), so that this Save cannot undo another user's change to another company,
    nor drop the companies of a stored Variable the page could only show in part."""
    if not isinstance(submitted, dict):
        return submitted
    try:
        stored = json.loads(current) if current else {}
    except json.JSONDecodeError:
        stored = {}
    out = _without_companies(submitted)
    if isinstance(stored, dict) and "companies" in stored:
        out["companies"] = stored["companies"]
    return out


def write_variable(session, var, text: str) -> None:
    """Write the Variable's text (a new row if there is none) and drop this process's cached copy."""
    from airflow.models import Variable

    if var is None:
        session.add(
            Variable(
                key=VARIABLE_NAME,
                val=text,
                description="Exact Online imports: which categories, their filters, licence, schedule",
            )
        )
    else:
        var.set_val(text)
    session.flush()
    try:
        from airflow.sdk import SecretCache

        SecretCache.invalidate_variable(VARIABLE_NAME)
    except Exception:  # the cache is optional
        pass
