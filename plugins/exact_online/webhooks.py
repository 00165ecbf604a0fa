"""Exact Online's webhook messages: what a delivery looks like and how its signature is checked (beyond.md §1.3-1.5).

A subscription's callback first gets an empty POST (Exact validates the URL; answer 2xx). Every event after that is
`{"Content": {"Topic", "ClientId", "Division", "Action", "Key", "ExactOnlineEndpoint", "EventCreatedOn"},
"HashCode": "…"}`, where HashCode is the upper-case hex HMAC-SHA256 of the raw text of the Content object as Exact
sent it (the bytes between `{"Content":` and `,"HashCode":"`), keyed with the app's *webhook secret* (not the
client secret). Sources: picqer/exact-php-client `Webhook/Authenticatable.php`; hookdeck/webhook-skills PR #152
(live-tested: lower-case hex and base64 fail). The raw text, not a re-serialisation: Exact's spacing is not ours.

This module knows Exact, nothing of OutSmart; it never logs and never puts the secret or the body in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass

SUBSCRIPTIONS_ENDPOINT = "webhooks/WebhookSubscriptions"
# A real event is about 400 bytes; anything far bigger is not Exact's.
MAX_EVENT_BYTES = 4096
_ENVELOPE = re.compile(rb'^\{"Content":(\{.*\}),"HashCode":"([0-9A-Fa-f]{64})"\}$', re.S)
_FIELD_LIMIT = 200


class WebhookRefused(ValueError):
    """A delivery that is not a valid, signed Exact event. `reason` is safe to log and to answer with: it never
    holds the body or the secret."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class WebhookEvent:
    """One Exact event: which record (Key) of which topic changed how, in which division, when (Exact's clock)."""

    topic: str
    division: int
    action: str  # Create, Update, Delete
    key: str
    created_on: str  # EventCreatedOn as Exact wrote it (its clock, no zone)
    endpoint: str  # ExactOnlineEndpoint: the GET URL of the record


def sign(content: bytes, secret: str) -> str:
    """HashCode of a Content text: upper-case hex HMAC-SHA256 keyed with the webhook secret."""
    return hmac.new(secret.encode("utf-8"), content, hashlib.sha256).hexdigest().upper()


def signed_content(raw: bytes) -> tuple[bytes, str]:
    """(the Content text as sent, its HashCode) of a delivery; WebhookRefused if it is not Exact's envelope."""
    if len(raw) > MAX_EVENT_BYTES:
        raise WebhookRefused(f"The body is over {MAX_EVENT_BYTES} bytes: not an Exact event.", 413)
    match = _ENVELOPE.match(raw.strip())
    if match is None:
        raise WebhookRefused('Not an Exact event: expected {"Content": {...}, "HashCode": "<64 hex>"}.', 400)
    return match.group(1), match.group(2).decode("ascii")


def parse_content(content: bytes) -> WebhookEvent:
    """The event in a Content text (before its signature is checked: its Division says whose secret to use)."""
    try:
        body = json.loads(content)
    except ValueError:
        raise WebhookRefused("The Content of the event is not JSON.", 400) from None
    if not isinstance(body, dict):
        raise WebhookRefused("The Content of the event is not an object.", 400)
    division = body.get("Division")
    if isinstance(division, bool) or not isinstance(division, int) or division <= 0:
        raise WebhookRefused("The event has no valid Division.", 400)
    fields: dict[str, str] = {}
    for name in ("Topic", "Action", "Key", "EventCreatedOn"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > _FIELD_LIMIT:
            raise WebhookRefused(f"The event has no valid {name}.", 400)
        fields[name] = value
    endpoint = body.get("ExactOnlineEndpoint")
    return WebhookEvent(
        topic=fields["Topic"].strip(),
        division=division,
        action=fields["Action"].strip(),
        key=fields["Key"].strip().lower(),
        created_on=fields["EventCreatedOn"].strip(),
        endpoint=endpoint[:1000] if isinstance(endpoint, str) else "",
    )


def verify(content: bytes, hash_code: str, secret: str) -> None:
    """WebhookRefused unless `hash_code` is the Content's HMAC under `secret` (a constant-time comparison)."""
    if not secret:
        raise WebhookRefused("No webhook secret is set for this division's Exact connection.", 401)
    if not hmac.compare_digest(sign(content, secret), hash_code.upper()):
        raise WebhookRefused("Wrong signature (HashCode): not signed with this division's webhook secret.", 401)
