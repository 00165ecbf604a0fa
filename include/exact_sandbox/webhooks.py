"""The sandbox's webhooks, sent as Exact sends them (reference: beyond.md §1).

- `GET/POST /api/v1/{division}/webhooks/WebhookSubscriptions` (and `DELETE …(guid'…')`): one subscription per
  division and topic (a second POST of the same topic is refused, as hookdeck's notes say Exact does); only this
  app's subscriptions are visible.
- About a second after a subscription is made, an empty POST to its CallbackURL; a subscription whose callback does
  not answer 2xx stays unvalidated and gets no events.
- After a change (`/_sandbox/mutate`), one event per changed record to each validated subscription of its topic:
  `{"Content": {...}, "HashCode": "<upper-case hex HMAC-SHA256 of the Content text>"}`, compact JSON, keyed with
  the webhook secret. Configurable (`/_sandbox/webhooks`, POST): `delay_seconds` (Exact: "within a few minutes"),
  `loss_rate` and `duplicate_rate` (events can be lost; duplicates are not ruled out), `wrong_secret` (sign with
  another key, as a forger or a misconfigured app would).
- `/_sandbox/webhook-burst`: `count` Update events of existing records of an entity at once (a mass edit in Exact).

The signature is computed here with hmac directly, not with the receiver's code: the sandbox plays Exact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field

from include.exact_sandbox.registry_sources import entity_of
from include.outsmart_import.registry import CATEGORIES

SUBSCRIPTIONS = "webhooks/WebhookSubscriptions"
SENDERS = 4  # deliveries in parallel, as Exact's many senders


def topic_of_entity() -> dict[str, str]:
    """Sandbox entity (accounts, sales_order_lines, …) → the webhook topic announcing its changes, from the registry."""
    out: dict[str, str] = {}
    for category in CATEGORIES.values():
        sources = [category.source, *(d.source for d in category.dependents)]
        for src in sources:
            if src.webhook_topic:
                out[entity_of(src.endpoint)] = src.webhook_topic
    return out


@dataclass
class WebhookSettings:
    secret: str = "sandbox-webhook-secret"
    delay_seconds: float = 1.0
    validation_delay_seconds: float = 0.5
    loss_rate: float = 0.0
    duplicate_rate: float = 0.0
    wrong_secret: bool = False
    # A delivery that got no answer or a 5xx is sent again (hookdeck: "Exact retries deliveries that don't get a
    # 2xx"; Exact documents no count or schedule): up to `retries` times, `retry_seconds` apart.
    retries: int = 5
    retry_seconds: float = 5.0
    seed: int = 11


@dataclass
class WebhookHub:
    """Subscriptions, and a queue of deliveries that SENDERS threads post when they are due."""

    client_id: str
    settings: WebhookSettings = field(default_factory=WebhookSettings)
    subscriptions: dict[str, dict] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._queue: list[tuple[float, int, str, bytes | None, str | None, int]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._rng = random.Random(self.settings.seed)
        self._topics = topic_of_entity()
        self._threads: list[threading.Thread] = []

    # ---- the subscription endpoint ---------------------------------------------------------------------------
    def handle(self, method: str, division: int, path: str, body: bytes, base: str) -> tuple[int, dict | None]:
        """The REST answer (status, body) to a call on webhooks/WebhookSubscriptions."""
        if method == "GET" and path == SUBSCRIPTIONS:
            rows = [self._row(s, base) for s in self.subscriptions.values() if s["Division"] == division]
            return 200, {"d": {"results": rows}}
        if method == "POST" and path == SUBSCRIPTIONS:
            return self._subscribe(division, body, base)
        if method == "DELETE" and path.startswith(SUBSCRIPTIONS + "(guid'") and path.endswith("')"):
            sub_id = path[len(SUBSCRIPTIONS) + 6 : -2].lower()
            sub = self.subscriptions.get(sub_id)
            if sub is None or sub["Division"] != division:
                return 404, _error("Subscription not found")
            del self.subscriptions[sub_id]
            return 204, None
        return 405, _error("Method not allowed")

    def _subscribe(self, division: int, body: bytes, base: str) -> tuple[int, dict | None]:
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return 400, _error("Invalid JSON")
        topic, callback = req.get("Topic"), req.get("CallbackURL")
        if not isinstance(topic, str) or not isinstance(callback, str) or not callback.startswith(("http", "https")):
            return 400, _error("Topic and CallbackURL are required")
        if any(s["Division"] == division and s["Topic"] == topic for s in self.subscriptions.values()):
            return 400, _error(f"A subscription for topic {topic} already exists")
        sub = {"ID": str(uuid.uuid4()), "Topic": topic, "CallbackURL": callback, "Division": division,
               "ClientID": self.client_id, "Created": time.time(), "validated": False}  # fmt: skip
        self.subscriptions[sub["ID"]] = sub
        self._enqueue(self.settings.validation_delay_seconds, callback, None, sub["ID"])
        return 201, {"d": self._row(sub, base)}

    @staticmethod
    def _row(sub: dict, base: str) -> dict:
        row = {k: v for k, v in sub.items() if k not in ("validated", "Created")}
        row["__metadata"] = {"uri": f"{base}/api/v1/{sub['Division']}/{SUBSCRIPTIONS}(guid'{sub['ID']}')"}
        row["Created"] = f"/Date({int(sub['Created'] * 1000)})/"
        return row

    # ---- events -----------------------------------------------------------------------------------------------
    def announce(self, division: int, entity: str, action: str, keys: list[str], base: str) -> int:
        """Events for changed records of `entity` (nothing if no topic covers it); how many were queued."""
        topic = self._topics.get(entity)
        if topic is None:
            return 0
        queued = 0
        for key in keys:
            record_key = str(key).split("/")[0]  # a split goods delivery line's row: the line's ID
            for sub in self.subscriptions.values():
                if sub["Division"] == division and sub["Topic"] == topic and sub["validated"]:
                    queued += self._event(sub, topic, action, record_key, entity, base)
        return queued

    def _event(self, sub: dict, topic: str, action: str, key: str, entity: str, base: str) -> int:
        if self._rng.random() < self.settings.loss_rate:
            self.stats["lost"] += 1
            return 0
        content = {
            "Topic": topic,
            "ClientId": self.client_id,
            "Division": sub["Division"],
            "Action": action,
            "Key": key,
            "ExactOnlineEndpoint": f"{base}/api/v1/{sub['Division']}/{entity}(guid'{key}')",
            "EventCreatedOn": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        }
        text = json.dumps(content, separators=(",", ":"))
        secret = "not-the-webhook-secret" if self.settings.wrong_secret else self.settings.secret
        hash_code = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
        body = ('{"Content":' + text + ',"HashCode":"' + hash_code + '"}').encode()
        copies = 2 if self._rng.random() < self.settings.duplicate_rate else 1
        self.stats["duplicated"] += copies - 1
        for _ in range(copies):
            self._enqueue(self.settings.delay_seconds, sub["CallbackURL"], body, None)
        return copies

    # ---- delivery ---------------------------------------------------------------------------------------------
    def _enqueue(self, delay: float, url: str, body: bytes | None, validates: str | None, tries: int = 0) -> None:
        with self._cond:
            heapq.heappush(self._queue, (time.time() + delay, next(self._seq), url, body, validates, tries))
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < SENDERS:
                t = threading.Thread(target=self._send_loop, name="sandbox-webhooks", daemon=True)
                t.start()
                self._threads.append(t)
            self._cond.notify()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0][0] > time.time():
                    self._cond.wait(None if not self._queue else max(self._queue[0][0] - time.time(), 0.01))
                _, _, url, body, validates, tries = heapq.heappop(self._queue)
            status = _post(url, body or b"")
            again = body is not None and (status == 0 or status >= 500) and tries < self.settings.retries
            if again:
                self._enqueue(self.settings.retry_seconds, url, body, None, tries + 1)
            with self._cond:
                self.stats[f"{'validation' if validates else 'event'}_{status}{'_retried' if again else ''}"] += 1
                if validates and 200 <= status < 300 and validates in self.subscriptions:
                    self.subscriptions[validates]["validated"] = True

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def view(self) -> dict:
        settings = asdict(self.settings)
        settings.pop("secret")
        subs = [{k: v for k, v in s.items()} for s in self.subscriptions.values()]
        return {"settings": settings, "stats": dict(self.stats), "pending": self.pending(), "subscriptions": subs}

    def configure(self, req: dict) -> str | None:
        """Change settings (POST /_sandbox/webhooks); an error text for an unknown key."""
        for k, v in req.items():
            if not hasattr(self.settings, k):
                return f"unknown webhook setting {k!r}"
            setattr(self.settings, k, v)
        self._rng = random.Random(self.settings.seed)
        return None


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0  # unreachable: Exact would retry later; the sandbox counts it


def _error(message: str) -> dict:
    return {"error": {"code": "", "message": {"lang": "", "value": message}}}
