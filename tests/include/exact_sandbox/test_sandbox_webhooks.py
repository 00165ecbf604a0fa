"""The sandbox sends webhooks as Exact does (include/exact_sandbox/webhooks.py), driven through the hook's
subscription calls: the subscription endpoint, the empty validation POST, signed events after a change, and the
configurable loss, duplicates and wrong secret. A small HTTP server stands in for the receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import MemoryTokenStore


class Callback(ThreadingHTTPServer):
    def __init__(self):
        self.bodies: list[bytes] = []

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                outer.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.bodies)


@pytest.fixture
def wired(sandbox_factory):
    server = sandbox_factory()
    requests.post(f"{server.url}/_sandbox/webhooks", json={"delay_seconds": 0, "validation_delay_seconds": 0})
    callback = Callback()
    yield server, ExactOnlineHook(token_store=MemoryTokenStore()), callback
    callback.shutdown()


def change_an_account(server) -> str:
    key = requests.post(f"{server.url}/_sandbox/records", json={"entity": "accounts", "every": 50}).json()
    account_id = key["records"][0]["ID"]
    requests.post(
        f"{server.url}/_sandbox/mutate", json={"entity": "accounts", "op": "update", "records": [{"ID": account_id}]}
    )
    return account_id


def test_subscribe_validate_then_signed_events(wired):
    server, hook, callback = wired
    created = hook.subscribe_webhook("Accounts", callback.url)
    assert created["Topic"] == "Accounts" and created["CallbackURL"] == callback.url
    assert callback.wait_for(1) == [b""]  # the validation POST: empty
    assert [s["Topic"] for s in hook.webhook_subscriptions()] == ["Accounts"]
    account_id = change_an_account(server)
    body = callback.wait_for(2)[1]
    content = body.split(b'{"Content":', 1)[1].rsplit(b',"HashCode":"', 1)[0]
    hash_code = body.rsplit(b'"HashCode":"', 1)[1][:-2].decode()
    secret = server.state.config.webhook_secret
    assert hash_code == hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()
    event = json.loads(content)
    assert (event["Topic"], event["Action"], event["Key"], event["Division"]) == (
        "Accounts",
        "Update",
        account_id,
        server.state.config.division,
    )
    # one per division and topic; deleted, it is gone and sends nothing more
    with pytest.raises(Exception, match="already exists"):
        hook.subscribe_webhook("Accounts", callback.url)
    hook.unsubscribe_webhook(created["ID"])
    assert hook.webhook_subscriptions() == []
    change_an_account(server)
    time.sleep(0.3)
    assert len(callback.bodies) == 2


def test_loss_duplicates_and_a_wrong_secret(wired):
    server, hook, callback = wired
    hook.subscribe_webhook("Accounts", callback.url)
    callback.wait_for(1)
    requests.post(f"{server.url}/_sandbox/webhooks", json={"loss_rate": 1.0})
    change_an_account(server)
    requests.post(f"{server.url}/_sandbox/webhooks", json={"loss_rate": 0.0, "duplicate_rate": 1.0})
    change_an_account(server)
    bodies = callback.wait_for(3)
    assert len(bodies) == 3 and bodies[1] == bodies[2]  # the lost one never came; the other came twice
    stats = requests.get(f"{server.url}/_sandbox/webhooks").json()
    assert (stats["stats"]["lost"], stats["stats"]["duplicated"]) == (1, 1)
    assert "secret" not in stats["settings"]
    requests.post(f"{server.url}/_sandbox/webhooks", json={"duplicate_rate": 0.0, "wrong_secret": True})
    change_an_account(server)
    body = callback.wait_for(4)[3]
    content = body.split(b'{"Content":', 1)[1].rsplit(b',"HashCode":"', 1)[0]
    secret = server.state.config.webhook_secret.encode()
    assert hmac.new(secret, content, hashlib.sha256).hexdigest().upper().encode() not in body


def test_a_burst_sends_one_event_per_record(wired):
    server, hook, callback = wired
    hook.subscribe_webhook("Items", callback.url)
    callback.wait_for(1)
    queued = requests.post(f"{server.url}/_sandbox/webhook-burst", json={"entity": "items", "count": 30}).json()
    assert queued == {"queued": 30}
    assert len(callback.wait_for(31)) == 31
