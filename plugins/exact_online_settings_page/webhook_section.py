"""The page's "Exact webhooks" section (#22): per company the topics its categories need, their subscriptions in
Exact and their state, the last event per stream; and subscribing/unsubscribing.

- `GET /api/webhooks`: per company: the topics needed (the runnable categories' streams with a topic), Exact's
  subscriptions of this app in its division (one API call per company; an unreachable company says why), per
  topic the last event received and the events of the last 24 h (the inbox), the callback URL, and the relay's
  debounce (how long announcements of one stream are gathered before they start an import).
- `POST /api/webhooks/subscriptions` `{"company": key}`: subscribe the needed topics that are not, delete our own
  subscriptions (callback URL ours) of topics no longer needed. A subscription of a topic to another address
  (another deployment of the same Exact app) is shown and left alone: Exact allows one per topic and division.

The callback URL is `[api] base_url` + /exact-online-webhooks/events: public HTTPS, like the OAuth redirect URI
(Exact requires HTTPS and the redirect URI's domain). The webhook secret is never part of an answer.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, whose Depends(...) name functions
# this module gets from app.py at register() time; they must be evaluated where the routes are defined.
import logging
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.db.common import SessionDep
from fastapi import Body, Depends, Request

log = logging.getLogger(__name__)

RECEIVER_PATH = "/exact-online-webhooks/events"


def callback_url(base_url: str | None, request_origin: str) -> str:
    return (base_url or request_origin).rstrip("/") + RECEIVER_PATH


def needed_topics(company) -> list[str]:
    """The topics of the categories that run for this company (enabled, licensed, not paused, on a schedule)."""
    from include.outsmart_import.registry import CATEGORIES
    from include.outsmart_import.scheduling import why_not_runnable
    from include.outsmart_import.webhook_assets import topics_of

    if company.settings.schedule is None:
        return []  # imports only by hand: an event would start nothing
    runnable = [c for c in CATEGORIES.values() if why_not_runnable(c, company) is None]
    return sorted({t for c in runnable for t in topics_of(c)})


def _hook(company):
    from exact_online_settings_page.exact_connection import page_hook

    return page_hook(company.exact_conn_id, division=company.division)


def _topic_states(needed: list[str], subscriptions: list[dict], url: str) -> list[dict]:
    by_topic = {str(s.get("Topic")): s for s in subscriptions}
    out = []
    for topic in sorted(set(needed) | set(by_topic)):
        sub = by_topic.get(topic)
        if sub is None:
            state = "missing"
        elif sub.get("CallbackURL") != url:
            state = "elsewhere"
        else:
            state = "subscribed" if topic in needed else "not_needed"
        out.append(
            {"topic": topic, "needed": topic in needed, "state": state, "callback": (sub or {}).get("CallbackURL")}
        )
    return out


def company_view(company, url: str, inbox: list[dict]) -> dict[str, Any]:
    """One company's part of the section (Exact asked once for its subscriptions)."""
    from include.outsmart_import.webhook_assets import topic_streams

    needed = needed_topics(company)
    view: dict[str, Any] = {"company": company.key, "title": company.title, "needed": needed, "error": None}
    try:
        hook = _hook(company)
        view["division"] = hook.division
        view["secret_set"] = bool(hook.webhook_secret)
        view["topics"] = _topic_states(needed, hook.webhook_subscriptions(), url)
    except Exception as exc:  # not connected, no division, Exact unreachable: say so, show the rest
        from exact_online_settings_page.secret_scrub import scrub

        view["error"] = scrub(f"{type(exc).__name__}: {exc}")[:300]
        view["topics"] = [{"topic": t, "needed": True, "state": "unknown", "callback": None} for t in needed]
    events = {row["topic"]: row for row in inbox if row["company"] == company.key}
    streams = topic_streams()
    for topic in view["topics"]:
        row = events.get(topic["topic"], {})
        topic["streams"] = list(streams.get(topic["topic"], ()))
        topic["last_event_at"] = row["last_received_at"].isoformat() if row.get("last_received_at") else None
        topic["events_24h"] = row.get("events_24h", 0)
        topic["unrelayed"] = row.get("unrelayed", 0)
    return view


def sync_subscriptions(company, url: str) -> dict[str, list[str]]:
    """Subscribe what is needed and missing; delete our own subscriptions of topics no longer needed."""
    hook = _hook(company)
    needed = needed_topics(company)
    current = hook.webhook_subscriptions()
    have = {s.get("Topic") for s in current}
    added = [t for t in needed if t not in have]
    removed = [s for s in current if s.get("Topic") not in needed and s.get("CallbackURL") == url]
    for topic in added:
        hook.subscribe_webhook(topic, url)
    for sub in removed:
        hook.unsubscribe_webhook(str(sub.get("ID")))
    log.info(
        "Exact webhooks of %s: subscribed %s, unsubscribed %s", company.key, added, [s.get("Topic") for s in removed]
    )
    return {"subscribed": added, "unsubscribed": [str(s.get("Topic")) for s in removed]}


def overview(settings, url: str) -> dict[str, Any]:
    # The relay runs in this api-server (exact_online_webhooks): its debounce is this process's configuration.
    from exact_online_webhooks.relay import configured_debounce

    from include.outsmart_import.companies import STATE_CONN_ID, companies_of
    from include.outsmart_import.target_db import connector
    from include.outsmart_import.webhook_inbox import topic_overview

    try:
        inbox = topic_overview(connector(STATE_CONN_ID))
    except Exception as exc:
        log.warning("Exact webhooks: the inbox cannot be read (%s)", type(exc).__name__)
        inbox = []
    return {
        "callback_url": url,
        "https": url.startswith("https://"),
        "debounce_seconds": configured_debounce(),
        "companies": [company_view(c, url, inbox) for c in companies_of(settings)],
    }


def register(app, can_read, connection_editor, no_store, base_url_of) -> None:
    """Add the section's routes to the page's app (auth: read as the page; change as connecting Exact). Answers are
    in the page's language (labels.py), as the page's other routes answer."""
    from exact_online_settings_page.app import lang_of
    from exact_online_settings_page.labels import label
    from exact_online_settings_page.variable_store import read_variable
    from include.outsmart_import.companies import CompanyNotFound, company
    from include.outsmart_import.settings import SettingsError, parse_settings

    def settings_of(session):
        try:
            return parse_settings(read_variable(session)[1])
        except SettingsError as exc:
            return exc

    def invalid(exc: SettingsError, request: Request):
        return no_store({"detail": label("webhooks_settings_invalid", lang_of(request), error=str(exc))}, 409)

    @app.get("/api/webhooks")
    def webhooks(request: Request, session: SessionDep, user: Annotated[BaseUser, Depends(can_read)]):
        settings = settings_of(session)
        if isinstance(settings, SettingsError):
            return invalid(settings, request)
        return no_store(overview(settings, callback_url(*base_url_of(request))))

    @app.post("/api/webhooks/subscriptions")
    def subscribe(request: Request, session: SessionDep, user: Annotated[BaseUser, Depends(connection_editor)],
                  body: Annotated[dict, Body()]):  # fmt: skip
        settings = settings_of(session)
        if isinstance(settings, SettingsError):
            return invalid(settings, request)
        key = str(body.get("company") or "default")[:40]
        try:
            chosen = company(settings, key)
            done = sync_subscriptions(chosen, callback_url(*base_url_of(request)))
        except CompanyNotFound:
            return no_store({"detail": label("company_unknown", lang_of(request), company=key)}, 404)
        except Exception as exc:
            from exact_online_settings_page.secret_scrub import scrub

            refused = label("webhooks_exact_refused", lang_of(request), error=scrub(str(exc))[:400])
            return no_store({"detail": refused}, 502)
        return no_store({**done, "message": label("webhooks_subscribed", lang_of(request))})
