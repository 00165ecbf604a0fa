"""Which company an Exact division is, and the webhook secret its events are signed with.

The companies come from the settings Variable (include/outsmart_import/companies.py); each company's division and
webhook secret from its Exact connection (the hook reads the extra, as the imports do). Read again at most every
TTL_SECONDS: a burst of a thousand events reads them once, and a company added on the page is known within seconds.
The secret stays in this process's memory; it is never logged or answered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

TTL_SECONDS = 10.0


@dataclass(frozen=True)
class Receiver:
    """A company's side of the webhooks: its key, its division, and its connection's webhook secret."""

    company: str
    division: int
    exact_conn_id: str
    secret: str = ""

    def __repr__(self) -> str:  # never the secret
        return f"Receiver({self.company!r}, division={self.division}, secret={'set' if self.secret else 'none'})"


def read_receivers() -> list[Receiver]:
    """Every company of the settings whose Exact connection names a division (one without is skipped: it cannot
    receive events until it is connected)."""
    from airflow.utils.session import create_session

    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online_settings_page.variable_store import read_variable
    from include.outsmart_import.companies import companies_of
    from include.outsmart_import.settings import SettingsError, parse_settings

    with create_session() as session:
        raw = read_variable(session)[1]
    try:
        settings = parse_settings(raw)
    except SettingsError:
        log.warning("Exact webhooks: the settings Variable is invalid; no company receives events until it is fixed.")
        return []
    out = []
    for company in companies_of(settings):
        try:
            hook = ExactOnlineHook(company.exact_conn_id, division=company.division)
            out.append(Receiver(company.key, hook.division, company.exact_conn_id, hook.webhook_secret))
        except Exception as exc:  # no connection, no division: that company cannot receive events yet
            log.info("Exact webhooks: company %s cannot receive events (%s)", company.key, type(exc).__name__)
    return out


class Directory:
    """The receivers by division, re-read after TTL_SECONDS."""

    def __init__(
        self, read: Callable[[], list[Receiver]] = read_receivers, clock: Callable[[], float] = time.monotonic
    ):
        self._read, self._clock = read, clock
        self._lock = threading.Lock()
        self._by_division: dict[int, Receiver] = {}
        self._read_at: float | None = None

    def receiver_of(self, division: int) -> Receiver | None:
        with self._lock:
            if self._read_at is None or self._clock() - self._read_at > TTL_SECONDS:
                self._by_division = {}
                for r in self._read():
                    self._by_division.setdefault(r.division, r)  # two companies on one division: the first
                self._read_at = self._clock()
            return self._by_division.get(division)

    def forget(self) -> None:
        """Read the companies again on the next event (after a change on the settings page)."""
        with self._lock:
            self._read_at = None
