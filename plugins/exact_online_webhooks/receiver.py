"""The receiver of Exact's webhook deliveries: `POST /exact-online-webhooks/events` (the subscriptions' CallbackURL).

What it answers (beyond.md §1.3-1.5; Exact sends no credentials, so Airflow's auth does not apply):
- an empty POST (Exact validating the URL after a subscription): 200, nothing recorded;
- a body over MAX_EVENT_BYTES: 413; not Exact's envelope: 400; a Division no company of the settings has: 403;
  no webhook secret for it, or a HashCode that is not the HMAC of the Content under it: 401. Nothing is recorded
  and nothing starts. Refusals are logged with their reason only (never the body or the secret);
- a signed event of a topic no category reads: 202, not recorded;
- a signed event: written to the inbox and committed (a duplicate is one row), then 200. Only then is Exact told,
  so an event answered 2xx is never lost; the relay turns it into asset events (relay.py).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from exact_online.webhooks import MAX_EVENT_BYTES, WebhookRefused, parse_content, signed_content, verify
from exact_online_webhooks.directory import Directory
from exact_online_webhooks.relay import Relay
from include.outsmart_import.companies import STATE_CONN_ID
from include.outsmart_import.target_db import connector
from include.outsmart_import.webhook_assets import topic_streams
from include.outsmart_import.webhook_inbox import record_event

log = logging.getLogger(__name__)

EVENTS_PATH = "/events"

app = FastAPI(title="Exact Online webhooks", docs_url=None, redoc_url=None, openapi_url=None)
DIRECTORY = Directory()
INBOX_CONNECT = connector(STATE_CONN_ID)
RELAY = Relay(INBOX_CONNECT)
TOPICS = frozenset(topic_streams())


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    """The body, read no further than MAX_EVENT_BYTES (a declared or streamed larger one is refused unread)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise _TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise _TooLarge()
    return bytes(body)


def _answer(status: int, detail: str, **more) -> JSONResponse:
    return JSONResponse({"detail": detail, **more}, status, headers={"Cache-Control": "no-store"})


@app.post(EVENTS_PATH)
async def receive(request: Request):
    try:
        raw = await _body(request)
    except _TooLarge:
        log.warning("Exact webhook refused: body over %d bytes", MAX_EVENT_BYTES)
        return _answer(413, f"The body is over {MAX_EVENT_BYTES} bytes: not an Exact event.")
    if not raw.strip():
        RELAY.poke()  # after a restart the first delivery also sweeps what a crash left unrelayed
        return Response(status_code=200)  # Exact validating the callback URL
    return await run_in_threadpool(accept, raw)


def accept(raw: bytes) -> JSONResponse:
    """Check the delivery, keep it in the inbox, and only then say 2xx."""
    try:
        content, hash_code = signed_content(raw)
        event = parse_content(content)
        receiver = DIRECTORY.receiver_of(event.division)
        if receiver is None:
            raise WebhookRefused(f"Division {event.division} is no company's in the import settings.", 403)
        verify(content, hash_code, receiver.secret)
    except WebhookRefused as exc:
        log.warning("Exact webhook refused (%d): %s", exc.status, exc.reason)
        return _answer(exc.status, exc.reason)
    if event.topic not in TOPICS:
        return _answer(202, f"Topic {event.topic!r} is read by no category; ignored.", recorded=False)
    new = record_event(
        INBOX_CONNECT, receiver.company, event.division, event.topic, event.action, event.key, event.created_on
    )
    RELAY.poke()
    return _answer(200, "recorded" if new else "duplicate: already recorded", recorded=new)
