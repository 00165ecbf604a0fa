"""The webhook receiver (the api-server plugin's app) against a real Postgres inbox: Exact's validation POST, the
refusals (nothing recorded, nothing relayed), the inbox's deduplication, and the relay's crash safety. Airflow's
asset events are replaced by a recording function here; the deployment test fires real ones."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from exact_online_webhooks import receiver
from exact_online_webhooks.directory import Directory, Receiver
from exact_online_webhooks.relay import Relay, relay_once, relay_pass
from fastapi.testclient import TestClient

SECRET = "the-webhook-secret"
DIVISION = 3_000_001
PATH = "/events"


def event_body(topic="Accounts", key=None, action="Update", division=DIVISION, secret=SECRET, when=None) -> bytes:
    content = json.dumps(
        {
            "Topic": topic,
            "ClientId": "sandbox-client",
            "Division": division,
            "Action": action,
            "Key": key or str(uuid.uuid4()),
            "ExactOnlineEndpoint": "https://start.exactonline.nl/api/v1/3000001/crm/Accounts(guid'x')",
            "EventCreatedOn": when or "2026-12-07T10:00:00.123",
        },
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()
    return b'{"Content":' + content + b',"HashCode":"' + signature.encode() + b'"}'


class Recorder:
    def __init__(self, fail: bool = False):
        self.calls: list[dict] = []
        self.fail = fail

    def __call__(self, events: dict) -> int:
        if self.fail:
            raise RuntimeError("Airflow's database went away")
        self.calls.append(events)
        return len(events)


@pytest.fixture
def inbox(target_db, monkeypatch):
    monkeypatch.setattr(receiver, "INBOX_CONNECT", target_db.connect)
    monkeypatch.setattr(receiver, "DIRECTORY", Directory(lambda: [Receiver("default", DIVISION, "exact", SECRET)]))
    relay = Relay(target_db.connect)
    monkeypatch.setattr(relay, "poke", lambda: None)  # the tests relay by hand
    monkeypatch.setattr(receiver, "RELAY", relay)
    return target_db


@pytest.fixture
def client():
    return TestClient(receiver.app)


def rows(db) -> list[tuple]:
    if not db.scalar("SELECT to_regclass('exact_online.webhook_inbox') IS NOT NULL"):
        return []
    return db.query("SELECT company, topic, action, record_key, relayed_at FROM exact_online.webhook_inbox ORDER BY id")


def test_the_validation_post_is_answered_2xx_and_records_nothing(inbox, client):
    answer = client.post(PATH, content=b"")
    assert answer.status_code == 200
    assert rows(inbox) == []


def test_a_signed_event_is_recorded_before_the_answer(inbox, client):
    key = str(uuid.uuid4())
    answer = client.post(PATH, content=event_body(key=key))
    assert answer.status_code == 200 and answer.json()["recorded"] is True
    assert [r[:4] for r in rows(inbox)] == [("default", "Accounts", "Update", key)]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (event_body(secret="the-client-secret"), 401),  # forged: another key
        (event_body().replace(b'"HashCode":"', b'"HashCode":"0')[:-66] + b'"}', 400),  # broken envelope
        (event_body().split(b',"HashCode"')[0] + b"}", 400),  # unsigned
        (event_body(division=999), 403),  # a division no company has
        (b"{" + b" " * 5000 + b"}", 413),  # over the limit
    ],
)
def test_refused_deliveries_record_nothing(inbox, client, body, status):
    answer = client.post(PATH, content=body)
    assert answer.status_code == status, answer.text
    assert SECRET not in answer.text
    assert rows(inbox) == []


def test_a_topic_no_category_reads_is_acknowledged_but_not_recorded(inbox, client):
    answer = client.post(PATH, content=event_body(topic="BankEntries"))
    assert answer.status_code == 202
    assert rows(inbox) == []


def test_a_duplicate_is_one_row(inbox, client):
    body = event_body(key=str(uuid.uuid4()))
    first, second = client.post(PATH, content=body), client.post(PATH, content=body)
    assert (first.json()["recorded"], second.json()["recorded"]) == (True, False)
    assert second.status_code == 200  # Exact must not retry a duplicate
    assert len(rows(inbox)) == 1
    # another time of the same record is another change
    client.post(PATH, content=event_body(key=json.loads(body.split(b'"Content":')[1].split(b',"HashCode"')[0])["Key"],
                                         when="2026-12-07T10:05:00.000"))  # fmt: skip
    assert len(rows(inbox)) == 2


def test_the_relay_coalesces_a_burst_into_one_asset_event_per_stream(inbox, client):
    for _ in range(50):
        assert client.post(PATH, content=event_body()).status_code == 200
    client.post(PATH, content=event_body(topic="Quotations"))  # headers and lines share the topic
    recorder = Recorder()
    assert relay_once(inbox.connect, recorder) == 51
    (events,) = recorder.calls
    assert set(events) == {
        "exact-online://default/sync/CRM/Accounts",
        "exact-online://default/sync/CRM/QuotationHeaders",
        "exact-online://default/sync/CRM/QuotationLines",
    }
    accounts = events["exact-online://default/sync/CRM/Accounts"]
    assert (accounts["company"], accounts["events"], len(accounts["keys"])) == ("default", 50, 20)
    assert all(r[4] is not None for r in rows(inbox))
    assert relay_once(inbox.connect, recorder) == 0 and len(recorder.calls) == 1  # nothing twice


def test_a_relay_that_fails_leaves_the_events_for_the_next(inbox, client):
    client.post(PATH, content=event_body())
    with pytest.raises(RuntimeError):
        relay_once(inbox.connect, Recorder(fail=True))
    assert [r[4] for r in rows(inbox)] == [None]  # still unrelayed
    recorder = Recorder()
    assert relay_once(inbox.connect, recorder) == 1 and len(recorder.calls) == 1


def test_the_debounce_relays_a_topic_at_most_once_per_interval(inbox, client):
    client.post(PATH, content=event_body())
    recorder = Recorder()
    assert relay_once(inbox.connect, recorder, debounce=60) == 1  # the first event after a quiet interval: at once
    client.post(PATH, content=event_body())  # 2 more Accounts events within the interval: held back
    client.post(PATH, content=event_body())
    client.post(PATH, content=event_body(topic="Contacts"))  # another topic (its own Asset): not held
    held = relay_pass(inbox.connect, recorder, debounce=60)
    assert held.relayed == 1 and set(recorder.calls[-1]) == {"exact-online://default/sync/CRM/Contacts"}
    assert held.wait is not None and 50 < held.wait <= 60
    assert [r[4] is None for r in rows(inbox)] == [False, True, True, False]
    # the interval ends (the last relay of Accounts 61 s ago): the two held events go as one asset event
    inbox.query(
        "UPDATE exact_online.webhook_inbox SET relayed_at = now() - interval '61 seconds' "
        "WHERE topic = 'Accounts' AND relayed_at IS NOT NULL RETURNING id"
    )
    assert relay_once(inbox.connect, recorder, debounce=60) == 2
    assert recorder.calls[-1]["exact-online://default/sync/CRM/Accounts"]["events"] == 2
    assert len(recorder.calls) == 3


def test_the_directory_rereads_the_companies_after_its_ttl():
    now = [0.0]
    reads = []

    def read():
        reads.append(now[0])
        return [Receiver("default", DIVISION, "exact", SECRET)]

    directory = Directory(read, clock=lambda: now[0])
    assert directory.receiver_of(DIVISION).company == "default"
    assert directory.receiver_of(1) is None
    now[0] = 11.0
    directory.receiver_of(DIVISION)
    assert reads == [0.0, 11.0]
    assert SECRET not in repr(directory.receiver_of(DIVISION))
