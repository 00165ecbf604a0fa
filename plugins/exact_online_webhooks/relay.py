"""From the inbox to Airflow: each unrelayed event becomes an asset event on its company's streams' Assets.

Why here, in the api-server, and in-process (README "Exact webhooks"): the receiver already runs in the api-server,
which holds Airflow's metadata database; `asset_manager.register_asset_change` is the call Airflow's own
`POST /api/v2/assets/events` makes (with `source_is_api=True`), without a service account's password kept here to
call our own server. An AssetWatcher in the triggerer was the other candidate: it would poll the inbox per Asset, and
its event is committed by the triggerer after the trigger yields, so a row could not be marked relayed only after
Airflow had committed it.

Order, for crash safety: claim the unrelayed rows (locked), register the asset events and commit them in Airflow's
database, then mark the rows relayed and commit. A crash before Airflow's commit leaves them unrelayed (the next
relay takes them); one between the two commits relays them once more (an extra incremental run, harmless).

Coalescing: one asset event per Asset per relay pass, whatever number of inbox rows it covers (the count and some
keys in its extra). A thousand events in a burst are a handful of asset events, and Airflow's asset-triggered run
consumes every event since the previous one: a handful of events become one or two runs.

Debounce: at most one relay of a company's topic (so one asset event per Asset: a stream has one topic) per
`[exact_online] webhook_debounce_seconds` (default DEBOUNCE_SECONDS). The first event after a quiet interval is
relayed at once; events within the interval wait for its end and then go as one. Without it a busy division, with an
event every few seconds, would start a run (and its Exact calls) as soon as the previous one ended, and cost more
than polling; with it a stream is read at most once per interval on account of events (bench/webhooks.py). The
time of the last relay is read from the inbox, so the debounce holds across api-server workers and restarts.

The relay runs on one thread of the api-server: woken by each accepted event, when a held topic's interval ends,
and every SWEEP_SECONDS anyway (the sweep of rows a crash left unrelayed, e.g. after a restart).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from include.outsmart_import.webhook_assets import asset_uri, topic_streams
from include.outsmart_import.webhook_inbox import InboxEvent, claim_unrelayed, held_back, mark_relayed, open_inbox

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0
DEBOUNCE_SECONDS = 60.0
MAX_DEBOUNCE_SECONDS = 3600.0
KEYS_IN_EXTRA = 20

Register = Callable[[dict[str, dict]], int]


def asset_events_of(rows: list[InboxEvent], streams_of_topic: dict[str, tuple[str, ...]]) -> dict[str, dict]:
    """Per Asset URI, the extra of its one asset event: company, stream, topic, how many events, some keys."""
    out: dict[str, dict] = {}
    for row in rows:
        for stream in streams_of_topic.get(row.topic, ()):
            extra = out.setdefault(
                asset_uri(row.company, stream),
                {"source": "exact_webhook", "company": row.company, "stream": stream, "topic": row.topic,
                 "events": 0, "keys": []},
            )  # fmt: skip
            extra["events"] += 1
            if len(extra["keys"]) < KEYS_IN_EXTRA:
                extra["keys"].append(row.record_key)
            extra["last_event_created_on"] = max(extra.get("last_event_created_on", ""), row.event_created_on)
    return out


def register_in_airflow(events: dict[str, dict]) -> int:
    """Record the asset events in Airflow's database (committed on return); how many Assets exist to take them. An
    Asset no DAG has declared (its category is off, or not parsed yet) takes none: the cron reads that change."""
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        models = session.scalars(select(AssetModel).where(AssetModel.uri.in_(list(events)))).all()
        for model in models:
            asset_manager.register_asset_change(
                asset=model, extra=events[model.uri], source_is_api=True, session=session
            )
    return len(models)


@dataclass(frozen=True)
class RelayPass:
    relayed: int  # inbox rows relayed in this pass
    wait: float | None  # seconds until the first held-back topic may be relayed; None: nothing held back


def relay_pass(
    connect: Callable[[], Any], register: Register = register_in_airflow, limit: int = 5000, debounce: float = 0.0
) -> RelayPass:
    """One pass: the unrelayed events (at most `limit`) of the topics not relayed within `debounce` seconds into
    asset events; the events of the others stay unrelayed until their interval ends."""
    conn = open_inbox(connect)
    try:
        claimed = claim_unrelayed(conn, limit)
        held = held_back(conn, debounce) if claimed else {}
        rows = [r for r in claimed if (r.company, r.topic) not in held]
        wait = min((held[(r.company, r.topic)] for r in claimed if (r.company, r.topic) in held), default=None)
        if not rows:
            conn.rollback()
            return RelayPass(0, wait)
        events = asset_events_of(rows, topic_streams())
        if events:
            register(events)
        mark_relayed(conn, [r.id for r in rows])
        conn.commit()
        log.info("Exact webhooks: relayed %d events as %d asset events", len(rows), len(events))
        return RelayPass(len(rows), wait)
    except Exception:
        conn.rollback()
        raise
    finally:
        conn.close()


def relay_once(
    connect: Callable[[], Any], register: Register = register_in_airflow, limit: int = 5000, debounce: float = 0.0
) -> int:
    """One pass (relay_pass); how many inbox rows it relayed."""
    return relay_pass(connect, register, limit, debounce).relayed


def configured_debounce() -> float:
    """`[exact_online] webhook_debounce_seconds` (AIRFLOW__EXACT_ONLINE__WEBHOOK_DEBOUNCE_SECONDS), 0 to 3600; a
    value out of range or not a number is logged with what to do and the default is used (the relay must run)."""
    from airflow.configuration import conf

    raw = conf.get("exact_online", "webhook_debounce_seconds", fallback=str(DEBOUNCE_SECONDS))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_DEBOUNCE_SECONDS:
        log.error(
            "Exact webhooks: [exact_online] webhook_debounce_seconds = %r is not a number of seconds from 0 to %g; "
            "using %g. Set it to e.g. 60 (at most one relay per stream a minute).",
            raw, MAX_DEBOUNCE_SECONDS, DEBOUNCE_SECONDS,
        )  # fmt: skip
        return DEBOUNCE_SECONDS
    return value


class Relay:
    """The api-server's relay thread: started on the receiver's first request, woken by each accepted event."""

    def __init__(
        self, connect: Callable[[], Any], register: Register = register_in_airflow, debounce: float | None = None
    ):
        self._connect, self._register = connect, register
        self._debounce = debounce  # None: the configured one, read when the thread starts
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="exact-webhook-relay", daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        debounce = configured_debounce() if self._debounce is None else self._debounce
        wait = SWEEP_SECONDS
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            wait = SWEEP_SECONDS
            try:
                while True:
                    done = relay_pass(self._connect, self._register, debounce=debounce)
                    if done.wait is not None:  # wake when the first held-back topic's interval ends
                        wait = min(SWEEP_SECONDS, max(done.wait, 0.2) + 0.1)
                    if done.relayed == 0:
                        break
            except Exception as exc:  # the database or Airflow hiccupped: the rows stay; the next pass retries
                log.warning("Exact webhooks: relay failed (%s); retrying in %.0f s", type(exc).__name__, SWEEP_SECONDS)
