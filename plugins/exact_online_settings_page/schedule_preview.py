"""The next runs a schedule gives, for the settings page's preview while the user types."""

from __future__ import annotations

import datetime as dt

from include.outsmart_import.settings import ImportSettings, settings_problems


def schedule_preview(schedule: str | None, timezone: str, count: int = 3) -> dict:
    """The next fires of a schedule (UTC ISO; the page shows them in the browser's time zone)."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    if schedule is None or schedule == "":
        return {"next": [], "message": "Only when started by hand (no schedule)."}
    try:
        settings = ImportSettings(schedule=schedule, timezone=timezone)
    except Exception as exc:
        _, problems = settings_problems({"schedule": schedule, "timezone": timezone})
        return {"next": [], "errors": problems or [{"path": "schedule", "message": str(exc)}]}
    now = dt.datetime.now(ZoneInfo(settings.timezone))
    it = croniter(settings.schedule, now)
    fires = [it.get_next(dt.datetime).astimezone(dt.UTC).isoformat() for _ in range(count)]
    return {"next": fires}
