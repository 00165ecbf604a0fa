"""The schedule in office words, and the cron it is stored as (`ImportSettings.schedule`).

The page's picker offers what an office asks for: every N minutes or hours between two whole hours, optionally on
weekdays only; daily at a time; only by hand. Everything else cron can say stays available as "advanced" (the cron
itself). Both directions live here, pure and without Airflow, so that the page (through the API) and the tests use
one conversion:
- `to_cron(picker)`: the picker's choice as cron (None: only by hand);
- `from_cron(schedule)`: a stored schedule back into the picker when it is one of the forms `to_cron` writes (or a
  preset meaning the same), else the "advanced" picker holding the schedule as it is.

"Between 07:00 and 18:00" means runs start from 07:00 and before 18:00: every 15 minutes is 07:00 … 17:45, every
2 hours 07:00, 09:00 … 17:00. The end is exclusive so that "until 18:00" never starts an import at 18:00 sharp.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

MINUTE_STEPS = (5, 10, 15, 30)
HOUR_STEPS = (1, 2, 3, 4, 6, 12)
WEEKDAYS = "1-5"

Mode = Literal["interval", "daily", "manual", "advanced"]
Unit = Literal["minutes", "hours"]

# The presets cron libraries know, as the five fields they stand for (so "@hourly" reads back as "every hour").
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
}


class PickerError(ValueError):
    """A picker choice that makes no schedule; `key` names its message in labels.py (the page shows it in the
    user's language)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Picker:
    mode: Mode = "manual"
    every: int = 1
    unit: Unit = "hours"
    start: int = 0  # first hour runs start (0-23)
    end: int = 24  # runs start before this hour (1-24)
    at: str = "06:00"  # daily: HH:MM
    weekdays_only: bool = False
    cron: str = ""  # advanced: the schedule as it is

    def as_dict(self) -> dict:
        return asdict(self)


def choices() -> dict:
    """What the page's selects offer."""
    return {"minutes": list(MINUTE_STEPS), "hours": list(HOUR_STEPS)}


def _hours_field(start: int, end: int, step: int) -> str:
    every = f"/{step}" if step > 1 else ""
    if (start, end) == (0, 24):
        return "*" + every
    if end - start == 1 and not every:
        return str(start)
    return f"{start}-{end - 1}{every}"


def _check_interval(p: Picker) -> None:
    steps = MINUTE_STEPS if p.unit == "minutes" else HOUR_STEPS
    if p.unit not in ("minutes", "hours") or p.every not in steps:
        raise PickerError(
            "picker_step", f"every {p.every} {p.unit} is not offered (minutes: 5, 10, 15, 30; hours: 1, 2, 3, 4, 6, 12)"
        )
    if not (0 <= p.start < p.end <= 24):
        raise PickerError(
            "picker_range",
            f"the times {p.start:02d}:00–{p.end:02d}:00 are not a range: the start must come before the end",
        )


def _parse_time(at: str) -> tuple[int, int]:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", at.strip())
    if not m:
        raise PickerError("picker_time", f"{at!r} is not a time of day (HH:MM)")
    return int(m[1]), int(m[2])


def to_cron(p: Picker) -> str | None:
    """The cron the picker's choice is stored as; None = only by hand. Raises PickerError for a choice that makes no
    schedule."""
    days = WEEKDAYS if p.weekdays_only else "*"
    if p.mode == "manual":
        return None
    if p.mode == "advanced":
        return p.cron.strip() or None
    if p.mode == "daily":
        hour, minute = _parse_time(p.at)
        return f"{minute} {hour} * * {days}"
    _check_interval(p)
    if p.unit == "minutes":
        return f"*/{p.every} {_hours_field(p.start, p.end, 1)} * * {days}"
    return f"0 {_hours_field(p.start, p.end, p.every)} * * {days}"


_NUM = r"(\d{1,2})"
_HOURS = re.compile(rf"\*|{_NUM}|{_NUM}-{_NUM}")


def _hours_range(field: str) -> tuple[int, int, int] | None:
    """(start, end exclusive, step) of an hour field `to_cron` could write: *, H, A-B, */N, A-B/N."""
    base, _, step_text = field.partition("/")
    step = int(step_text) if step_text.isdigit() else (1 if not step_text else 0)
    m = _HOURS.fullmatch(base)
    if not m or step == 0:
        return None
    if base == "*":
        return 0, 24, step
    if m[1] is not None:
        return (int(m[1]), int(m[1]) + 1, step) if step == 1 and int(m[1]) < 24 else None
    start, last = int(m[2]), int(m[3])
    return (start, last + 1, step) if start <= last < 24 else None


def _interval(minutes: str, hours: str, weekdays_only: bool) -> Picker | None:
    span = _hours_range(hours)
    if span is None:
        return None
    start, end, hour_step = span
    m = re.fullmatch(r"\*/(\d+)", minutes)
    if m and hour_step == 1 and int(m[1]) in MINUTE_STEPS:
        return Picker("interval", int(m[1]), "minutes", start, end, weekdays_only=weekdays_only)
    if minutes == "0" and hour_step in HOUR_STEPS:
        return Picker("interval", hour_step, "hours", start, end, weekdays_only=weekdays_only)
    return None


def from_cron(schedule: str | None) -> Picker:
    """The picker showing a stored schedule: its office words when `to_cron` writes it that way (or a preset means
    the same), else "advanced" with the schedule as it is."""
    if schedule is None or not schedule.strip():
        return Picker("manual")
    advanced = Picker("advanced", cron=schedule)
    fields = PRESETS.get(schedule.strip().lower(), schedule).split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"] or fields[4] not in ("*", WEEKDAYS):
        return advanced
    minutes, hours, weekdays_only = fields[0], fields[1], fields[4] == WEEKDAYS
    if minutes.isdigit() and hours.isdigit() and int(minutes) < 60 and int(hours) < 24:
        # a single hour with "0" minutes is also "every hour from H until H+1"; a time of day is what it means
        return Picker("daily", at=f"{int(hours):02d}:{int(minutes):02d}", weekdays_only=weekdays_only)
    return _interval(minutes, hours, weekdays_only) or advanced


def from_query(params: dict[str, str]) -> Picker:
    """The picker from the page's query parameters (GET /api/schedule-picker); PickerError on a malformed one."""
    mode = params.get("mode", "manual")
    if mode not in ("interval", "daily", "manual", "advanced"):
        raise PickerError("picker_mode", f"unknown schedule kind {mode!r}")
    try:
        every, start, end = (int(params.get(k, d)) for k, d in (("every", "1"), ("start", "0"), ("end", "24")))
    except ValueError as exc:
        raise PickerError("picker_step", f"not a number: {exc}") from exc
    unit = params.get("unit", "hours")
    return Picker(
        mode=mode,  # type: ignore[arg-type]  # checked above
        every=every,
        unit=unit if unit in ("minutes", "hours") else "hours",  # type: ignore[arg-type]
        start=start,
        end=end,
        at=params.get("at", "06:00"),
        weekdays_only=params.get("weekdays_only", "") in ("1", "true"),
        cron=params.get("cron", ""),
    )
