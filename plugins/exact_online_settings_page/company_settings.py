"""The companies of the settings Variable as the page edits them (#21): one company's block at a time.

Why per company and not the whole Variable: with several companies, two people may edit two companies at once, and
a Save of the whole Variable would either refuse the second (stale) or, without the check, undo the first. Each
company's Save therefore sends only that company's block (`license`, `schedule`, `paused`, `categories`; the shared
`timezone` too) with that block's *version* (a hash of the block and of the shared fields as stored, not of the
whole Variable): the server re-reads the Variable under its row lock, refuses a stale block (409), and writes the
Variable with only that block changed. Another company's Save in between changes neither this version nor this
block. The first company (`default`) is the top level of the Variable, as before there were several.

Limits: a company's block with every category explicit is about 1.5 KB (plus its chosen item groups), so the
2 MB this page reads and writes (MAX_VARIABLE_BYTES) holds the model's 1,000 companies with room for item groups;
a change that would make the Variable larger is refused with a message that says so, nothing written. Each request
body is bounded at 256 KB (request_limits.py), far above one company's block.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from exact_online_settings_page.labels import label, problem
from exact_online_settings_page.variable_store import SaveRefused, read_variable, write_variable
from include.outsmart_import.settings import (
    COMPANY_KEY,
    DEFAULT_COMPANY,
    DEFAULT_EXACT_CONN_ID,
    DEFAULT_TARGET_CONN_ID,
    MAX_COMPANIES,
    ImportSettings,
    SettingsError,
    parse_settings,
    settings_problems,
)

MAX_VARIABLE_BYTES = 2 * 1024 * 1024
_MB = MAX_VARIABLE_BYTES // 1024 // 1024
# What a company chooses for itself (CompanyChoices), and what every company shares (the rest of the top level).
CHOICES = ("license", "schedule", "paused", "categories")
SHARED = ("timezone", "task_retries", "retry_delay_seconds", "reuse_window_seconds")
# What places a company (set when it is added; its title may change on its Save).
PLACE = ("title", "exact_conn_id", "division", "target_conn_id")
FIRST_COMPANY_TITLE = "Company 1"


# ---- reading ------------------------------------------------------------------------------------------------------
def valid_settings(raw: str | None, lang: str = "en") -> ImportSettings:
    """The stored settings if they validate; else 409 saying what to fix first (a company's Save cannot write a
    Variable whose other parts are wrong, and must not guess them)."""
    if raw is not None and len(raw.encode("utf-8")) > MAX_VARIABLE_BYTES:
        size = len(raw.encode("utf-8")) // 1024
        raise SaveRefused(409, label("companies_variable_too_large", lang, kb=size, limit_mb=_MB))
    try:
        return parse_settings(raw)
    except SettingsError as exc:
        raise SaveRefused(409, label("companies_stored_invalid", lang, error=str(exc))) from None


def block_of(settings: ImportSettings, key: str, lang: str = "en") -> dict:
    """The company's own choices as stored (every key explicit)."""
    if key == DEFAULT_COMPANY:
        return {k: v for k, v in settings.model_dump(mode="json").items() if k in CHOICES}
    found = settings.companies.get(key)
    if found is None:
        raise SaveRefused(404, label("company_unknown", lang, company=key))
    return {k: v for k, v in found.model_dump(mode="json").items() if k in CHOICES}


def place_of(settings: ImportSettings, key: str, first_title: str | None = None) -> dict:
    """Where the company's data comes from and goes to. The first company's division is its connection's."""
    if key == DEFAULT_COMPANY:
        return {
            "title": first_title or FIRST_COMPANY_TITLE,
            "exact_conn_id": DEFAULT_EXACT_CONN_ID,
            "division": None,
            "target_conn_id": DEFAULT_TARGET_CONN_ID,
        }
    c = settings.companies[key]
    return {
        "title": c.title,
        "exact_conn_id": c.exact_conn_id,
        "division": c.division,
        "target_conn_id": c.target_conn_id,
    }


def company_version(settings: ImportSettings, key: str) -> str:
    """The version a company's Save sends back: its block, its place and the shared fields, as stored."""
    shared = {k: v for k, v in settings.model_dump(mode="json").items() if k in SHARED}
    place = place_of(settings, key) if key != DEFAULT_COMPANY else {}
    text = json.dumps({"key": key, "block": block_of(settings, key), "place": place, "shared": shared}, sort_keys=True)
    return "company:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def company_list(settings: ImportSettings, first_title: str | None = None) -> list[dict]:
    """The selector's entries: the first company, then the others by title."""
    others = sorted(settings.companies, key=lambda k: (settings.companies[k].title.lower(), k))
    return [
        {"key": key, **place_of(settings, key, first_title), "paused": block_of(settings, key)["paused"]}
        for key in [DEFAULT_COMPANY, *others]
    ]


def company_settings_view(settings: ImportSettings, key: str) -> dict:
    """The settings as the page edits them for one company: its block and the shared fields (no `companies`)."""
    shared = {k: v for k, v in settings.model_dump(mode="json").items() if k in SHARED}
    return {**block_of(settings, key), **shared}


# ---- writing ------------------------------------------------------------------------------------------------------
def _locked(session, lang: str) -> tuple[Any, dict, ImportSettings]:
    """(the Variable's row, its decoded value, its validated settings), under the row lock."""
    var, raw = read_variable(session, for_update=True)
    settings = valid_settings(raw, lang)
    decoded = json.loads(raw) if raw else {}
    return var, decoded, settings


def _check_version(settings: ImportSettings, key: str, expected: str, lang: str) -> None:
    if company_version(settings, key) != expected:
        raise SaveRefused(
            409,
            {"message": label("company_changed_elsewhere", lang), "current_version": company_version(settings, key)},
        )


def _validated(candidate: dict, key: str, lang: str = "en") -> ImportSettings:
    """The whole Variable with the change, validated; problems at the company's own fields (paths without
    `companies.<key>.`), so that the page marks them where the user typed."""
    settings, problems = settings_problems(candidate)
    if settings is not None:
        return settings
    # settings._path writes a key that is not a plain name in brackets: companies["acme-bv"].title
    prefixes = (f"companies.{key}.", f"companies[{json.dumps(key, ensure_ascii=False)}].")
    own = [{"path": _without_prefix(p["path"], prefixes), "message": problem(p, lang)} for p in problems]
    raise SaveRefused(422, {"message": label("nothing_saved_fix_red", lang), "errors": own})


def _without_prefix(path: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _write(session, var, settings: ImportSettings, lang: str) -> str:
    text = json.dumps(settings.model_dump(mode="json"), indent=2)
    size = len(text.encode("utf-8"))
    if size > MAX_VARIABLE_BYTES:
        raise SaveRefused(413, label("company_settings_too_large", lang, kb=size // 1024, limit_mb=_MB))
    write_variable(session, var, text)
    return text


def _submitted_block(submitted: Any, lang: str) -> dict:
    if not isinstance(submitted, dict):
        raise SaveRefused(
            422,
            {
                "message": label("settings_not_an_object", lang),
                "errors": [{"path": "(top level)", "message": label("must_be_an_object", lang)}],
            },
        )
    return submitted


def save_company(session, key: str, submitted: Any, version: str, lang: str = "en") -> dict:
    """Replace one company's choices (and the shared time zone, if sent); every other company stays as stored."""
    submitted = _submitted_block(submitted, lang)
    var, decoded, settings = _locked(session, lang)
    block_of(settings, key, lang)  # 404 for a company removed meanwhile
    _check_version(settings, key, version, lang)
    choices = {k: submitted[k] for k in CHOICES if k in submitted}
    shared = {"timezone": submitted["timezone"]} if "timezone" in submitted else {}
    if key == DEFAULT_COMPANY:
        candidate = {**decoded, **choices, **shared}
    else:
        title = {"title": submitted["title"]} if "title" in submitted else {}
        companies = dict(decoded.get("companies") or {})
        companies[key] = {**companies[key], **choices, **title}
        candidate = {**decoded, **shared, "companies": companies}
    saved = _validated(candidate, key, lang)
    _write(session, var, saved, lang)
    return {"version": company_version(saved, key), "settings": company_settings_view(saved, key)}


def set_paused(session, key: str, paused: Any, version: str, lang: str = "en") -> dict:
    """Pause or resume one company: only its `paused` changes."""
    if not isinstance(paused, bool):
        raise SaveRefused(422, {"message": label("paused_true_or_false", lang), "errors": []})
    var, decoded, settings = _locked(session, lang)
    block_of(settings, key, lang)
    _check_version(settings, key, version, lang)
    if key == DEFAULT_COMPANY:
        candidate = {**decoded, "paused": paused}
    else:
        companies = dict(decoded.get("companies") or {})
        companies[key] = {**companies[key], "paused": paused}
        candidate = {**decoded, "companies": companies}
    saved = _validated(candidate, key, lang)
    _write(session, var, saved, lang)
    return {"version": company_version(saved, key), "paused": paused}


def remove_company(session, key: str, version: str, lang: str = "en") -> dict:
    """Take a company out of the settings. Its database, its connections and its token chain stay: removing it
    from the settings stops its imports and deletes nothing."""
    if key == DEFAULT_COMPANY:
        raise SaveRefused(400, label("first_company_not_removable", lang))
    var, decoded, settings = _locked(session, lang)
    gone = settings.companies.get(key)
    if gone is None:
        raise SaveRefused(404, label("company_unknown", lang, company=key))
    _check_version(settings, key, version, lang)
    companies = {k: v for k, v in (decoded.get("companies") or {}).items() if k != key}
    saved = _validated({**decoded, "companies": companies}, key, lang)
    _write(session, var, saved, lang)
    return {"removed": key, "title": gone.title, "target_conn_id": gone.target_conn_id}


def add_company(session, key: Any, company: Any, first_division: int | None, lang: str = "en") -> dict:
    """Add a company: its key, title, Exact connection and division, target connection and choices. Refused
    (422, at the field) when the key is taken or malformed, or the division or database is another company's:
    `first_division` is the first company's (its connection's), which the model cannot know."""
    errors = _new_company_problems(key, company, lang)
    if errors:
        raise SaveRefused(422, {"message": label("company_not_added", lang), "errors": errors})
    var, decoded, settings = _locked(session, lang)
    errors = _clashes(settings, str(key), company, first_division, lang)
    if errors:
        raise SaveRefused(422, {"message": label("company_not_added", lang), "errors": errors})
    if len(settings.companies) + 1 > MAX_COMPANIES:
        raise SaveRefused(422, label("too_many_companies", lang, max=MAX_COMPANIES))
    companies = {**(decoded.get("companies") or {}), str(key): company}
    saved = _validated({**decoded, "companies": companies}, str(key), lang)
    _write(session, var, saved, lang)
    return {"key": key, "version": company_version(saved, str(key)), "title": saved.companies[str(key)].title}


def _new_company_problems(key: Any, company: Any, lang: str) -> list[dict]:
    import re

    errors = []
    if not isinstance(key, str) or not re.fullmatch(COMPANY_KEY.strip("^$"), key):
        errors.append({"path": "key", "message": label("company_key_form", lang)})
    elif key == DEFAULT_COMPANY:
        errors.append({"path": "key", "message": label("company_key_reserved", lang)})
    if not isinstance(company, dict):
        errors.append({"path": "(top level)", "message": label("company_not_an_object", lang)})
    return errors


def _clashes(settings: ImportSettings, key: str, company: dict, first_division: int | None, lang: str) -> list[dict]:
    """What the new company would share with another (the model says so too, but about `companies`, not the
    field the user chose)."""
    errors = []
    if key in settings.companies:
        title = settings.companies[key].title
        errors.append({"path": "key", "message": label("company_key_taken", lang, company=key, title=title)})
    target, conn, division = company.get("target_conn_id"), company.get("exact_conn_id"), company.get("division")
    if target == DEFAULT_TARGET_CONN_ID:
        errors.append({"path": "target_conn_id", "message": label("target_is_first_companys", lang, conn_id=target)})
    for other_key, other in settings.companies.items():
        said = {"company": other_key, "title": other.title}
        if other.target_conn_id == target:
            message = label("target_is_other_companys", lang, conn_id=target, **said)
            errors.append({"path": "target_conn_id", "message": message})
        if (other.exact_conn_id, other.division) == (conn, division):
            message = label("division_is_other_companys", lang, division=str(division), conn_id=conn, **said)
            errors.append({"path": "division", "message": message})
    if conn == DEFAULT_EXACT_CONN_ID and first_division is not None and division == first_division:
        message = label("division_is_first_companys", lang, division=str(division))
        errors.append({"path": "division", "message": message})
    return errors
