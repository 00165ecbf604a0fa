"""The page's "Exact webhooks" section (webhook_section.py) inside Airflow's real api-server app: what it says of the
relay's debounce, and that an unreachable Exact is said after seconds, not after an import's minute of retries.
The subscriptions themselves, the receiver and the relay are tested in tests/deployment/test_webhooks_deployment.py;
the section's refusals in each language in test_server_messages_language.py."""

from __future__ import annotations

import time

from tests.plugins.exact_online_settings_page.test_server_messages_language import NL
from tests.plugins.exact_online_settings_page.test_settings_page_api import PREFIX, auth


def webhooks(client, headers=None) -> dict:
    r = client.get(PREFIX + "/api/webhooks", headers={**auth("admin"), **(headers or {})})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_section_says_the_relays_debounce(client, sandbox, monkeypatch):
    """How long announcements of one stream are gathered: this api-server's configuration, which is the relay's; a
    value that is not seconds from 0 to 3600 is the default the relay uses too."""
    monkeypatch.setenv("AIRFLOW__EXACT_ONLINE__WEBHOOK_DEBOUNCE_SECONDS", "90")
    answer = webhooks(client, NL)
    assert answer["debounce_seconds"] == 90
    assert [(c["company"], c["error"]) for c in answer["companies"]] == [("default", None)]
    monkeypatch.setenv("AIRFLOW__EXACT_ONLINE__WEBHOOK_DEBOUNCE_SECONDS", "a minute")
    assert webhooks(client)["debounce_seconds"] == 60


def test_an_unreachable_exact_is_said_within_seconds(client):
    """The connection points at a closed port: an import's hook would try six times over about a minute; the page's
    tries twice (PAGE_MAX_ATTEMPTS), and the section shows the rest with Exact's error."""
    start = time.monotonic()
    (company,) = webhooks(client)["companies"]
    took = time.monotonic() - start
    print(f"\nunreachable Exact: the webhooks section answered in {took:.1f} s")
    assert took < 15, took  # before: 56 s
    assert company["company"] == "default" and "could not be reached" in company["error"], company
    assert all(t["state"] == "unknown" for t in company["topics"])
