"""The settings Variable `exact_online_import_settings`, read and written through Airflow's ORM session (the
api-server's own request session), validated with the DAGs' model (`include.outsmart_import.settings`)."""

from __future__ import annotations

import hashlib
import json
import os

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


def settings_view(raw: str | None) -> dict:
    """The stored settings as the page edits them (every key explicit), or the reason they cannot be used."""
    try:
        settings = parse_settings(raw)
        error = None
    except SettingsError as exc:
        settings, error = ImportSettings(), str(exc)
    shadowed = bool(os.environ.get("AIRFLOW_VAR_" + VARIABLE_NAME.upper()))
    return {
        "settings": settings.model_dump(mode="json"),
        "stored_error": error,
        "exists": raw is not None,
        "shadowed_by_environment": shadowed,
        "version": version_of(raw),
    }


class SaveRefused(Exception):
    def __init__(self, status: int, detail):
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def _validated(submitted) -> ImportSettings:
    if not isinstance(submitted, dict):
        raise SaveRefused(
            422,
            {
                "message": "The settings must be a JSON object.",
                "errors": [{"path": "(top level)", "message": "must be a JSON object"}],
            },
        )
    settings, problems = settings_problems(submitted)
    if settings is None:  # invalid: the problems say why
        raise SaveRefused(422, {"message": "Nothing was saved: fix the fields marked in red.", "errors": problems})
    return settings


def save_settings(session, submitted, expected_version: str) -> dict:
    """Validate with the DAGs' model; refuse a stale page (409); write the whole Variable in one statement."""
    from airflow.models import Variable

    settings = _validated(submitted)
    # The row lock makes compare-and-write atomic against another Save through this page; the REST API and the
    # Variables page write without it, but a write of theirs that lands first changes the hash and is caught here.
    var, current = read_variable(session, for_update=True)
    if version_of(current) != expected_version:
        raise SaveRefused(
            409,
            {
                "message": "The settings were changed by someone else (or on the Variables page) "
                "after this page was loaded. Nothing was saved: reload the page to see "
                "the new settings, then make your change again.",
                "current_version": version_of(current),
            },
        )
    text = json.dumps(settings.model_dump(mode="json"), indent=2)
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
    return {"version": version_of(text), "settings": settings.model_dump(mode="json")}
