"""The next runs a schedule gives, for the settings page's preview while the user types."""

from __future__ import annotations

import datetime as dt

from exact_online_settings_page.labels import label, problem
from include.outsmart_import.settings import ImportSettings, settings_problems


def schedule_preview(schedule: str | None, timezone: str, lang: str = "en", count: int = 3) -> dict:
    """The next fires of a schedule (UTC ISO; the page shows them in the browser's time zone); what is wrong with
    it in `lang`."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    if schedule is None or schedule == "":
        return {"next": [], "message": label("manual_only", lang)}
    try:
        settings = ImportSettings(schedule=schedule, timezone=timezone)
    except Exception as exc:
        _, problems = settings_problems({"schedule": schedule, "timezone": timezone})
        errors = [{"path": p["path"], "message": problem(p, lang)} for p in problems]
        return {"next": [], "errors": errors or [{"path": "schedule", "message": str(exc)}]}
    now = dt.datetime.now(ZoneInfo(settings.timezone))
    it = croniter(settings.schedule, now)
    fires = [it.get_next(dt.datetime).astimezone(dt.UTC).isoformat() for _ in range(count)]
    return {"next": fires}
