"""Exact's webhook signature (beyond.md §1.5): upper-case hex HMAC-SHA256 of the raw Content text, keyed with the
app's webhook secret. The expected HashCode is computed here independently (hashlib, on the exact bytes), since the
reference has only a truncated real HashCode; the payload is the reference's real example (BankEntries/Update)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from exact_online.webhooks import (
    MAX_EVENT_BYTES,
    WebhookRefused,
    parse_content,
    sign,
    signed_content,
    verify,
)

SECRET = "my-webhook-secret"
CONTENT = (
    b'{"Topic":"BankEntries","ClientId":"2781096d-0000-4000-8000-000000000001","Division":3114772,'
    b'"Action":"Update","Key":"a79d86b2-0000-4000-8000-000000000002","ExactOnlineEndpoint":'
    b"\"https://start.exactonline.nl/api/v1/3114772/financialtransaction/BankEntries(guid'a79d86b2-0000-4000-8000-"
    b'000000000002\')","EventCreatedOn":"2023-01-17T22:56:23.087"}'
)


def _independent_hash(content: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()


def delivery(content: bytes = CONTENT, secret: str = SECRET, hash_code: str | None = None) -> bytes:
    return (
        b'{"Content":' + content + b',"HashCode":"' + (hash_code or _independent_hash(content, secret)).encode() + b'"}'
    )


def test_a_signed_event_verifies_and_parses():
    content, hash_code = signed_content(delivery())
    assert content == CONTENT and hash_code == _independent_hash(CONTENT, SECRET)
    assert sign(CONTENT, SECRET) == hash_code  # our signer agrees with hashlib
    verify(content, hash_code, SECRET)
    event = parse_content(content)
    assert (event.topic, event.division, event.action, event.key, event.created_on) == (
        "BankEntries",
        3114772,
        "Update",
        "a79d86b2-0000-4000-8000-000000000002",
        "2023-01-17T22:56:23.087",
    )


def test_the_raw_text_is_signed_not_a_reserialisation():
    """Exact's own spacing is what was signed: a body with spaces inside Content verifies on those bytes."""
    spaced = CONTENT.replace(b'"Division":', b'"Division": ')
    content, hash_code = signed_content(delivery(spaced))
    verify(content, hash_code, SECRET)
    with pytest.raises(WebhookRefused):
        verify(CONTENT, hash_code, SECRET)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (delivery(secret="the-client-secret"), 401),  # signed with another key
        (delivery(hash_code="0" * 64), 401),  # a made-up signature
        (delivery(CONTENT.replace(b"Update", b"Delete"), hash_code=_independent_hash(CONTENT, SECRET)), 401),  # altered
    ],
)
def test_a_wrong_signature_is_refused(body, status):
    content, hash_code = signed_content(body)
    with pytest.raises(WebhookRefused) as refused:
        verify(content, hash_code, SECRET)
    assert refused.value.status == status
    assert SECRET not in str(refused.value) and "Update" not in str(refused.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"Content":' + CONTENT + b"}",  # no HashCode
        CONTENT,  # the Content alone
        b"not json at all",
        b'{"Content":' + CONTENT + b',"HashCode":"ABC"}',  # not 64 hex
    ],
)
def test_an_unsigned_or_malformed_body_is_refused(body):
    with pytest.raises(WebhookRefused) as refused:
        signed_content(body)
    assert refused.value.status == 400


def test_no_secret_refuses_everything():
    content, hash_code = signed_content(delivery())
    with pytest.raises(WebhookRefused, match="No webhook secret"):
        verify(content, hash_code, "")


def test_a_body_over_the_limit_is_refused_unread():
    with pytest.raises(WebhookRefused) as refused:
        signed_content(b" " * (MAX_EVENT_BYTES + 1))
    assert refused.value.status == 413


@pytest.mark.parametrize("field", [b'"Division":3114772', b'"Topic":"BankEntries"', b'"Key":"a79d86b2'])
def test_an_event_without_its_fields_is_refused(field):
    broken = CONTENT.replace(field, field.split(b":")[0] + b":null" + (b',"x":"' if b"Key" in field else b""))
    with pytest.raises(WebhookRefused):
        parse_content(broken)
