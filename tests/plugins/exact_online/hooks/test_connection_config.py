"""ExactOnlineHook reads an "Exact Online" connection (type `exact_online`) as well as the older http one.

The Airflow 3 UI saves the type's fields under their plain names in the extra (`"division": 123`); the Airflow 2
UI saved them as `extra__exact_online__division`. Both must work, plain first, and a missing or malformed field
must stop the import with an error that names it and says what to do, without showing a secret.
"""

from __future__ import annotations

import json
import os

import pytest

from exact_online.exceptions import ExactApiError, ExactConfigError
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import MemoryTokenStore

LEGACY = "extra__exact_online__"
SECRET_TOKEN = "rt-very-secret-123"


def use_connection(
    monkeypatch, extra: dict, *, conn_type: str = "exact_online", host: str = "https://start.exactonline.nl"
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT",
        json.dumps(
            {
                "conn_type": conn_type,
                "host": host,
                "login": "client-id",
                "password": "client-secret",
                "extra": extra,
            }
        ),
    )
    return ExactOnlineHook(token_store=MemoryTokenStore())


def test_hook_declares_the_registered_type():
    assert (ExactOnlineHook.conn_type, ExactOnlineHook.hook_name) == ("exact_online", "Exact Online")


@pytest.mark.parametrize("conn_type", ["exact_online", "http"])
@pytest.mark.parametrize(
    "extra",
    [
        {"division": 123456, "refresh_token": SECRET_TOKEN},  # Airflow 3 UI, JSON, CLI
        {LEGACY + "division": 123456, LEGACY + "refresh_token": SECRET_TOKEN},  # Airflow 2 UI
        {"division": "123456", "refresh_token": SECRET_TOKEN},  # a division typed into the JSON as text
        {"division": None, "refresh_token": None, LEGACY + "division": 123456, LEGACY + "refresh_token": SECRET_TOKEN},
    ],
    ids=["plain", "legacy", "text-division", "empty-plain-falls-back"],
)
def test_both_spellings_are_read(monkeypatch, conn_type, extra):
    hook = use_connection(monkeypatch, extra, conn_type=conn_type)
    assert hook.division == 123456
    assert hook._seed_refresh_token() == SECRET_TOKEN
    assert hook.chain_key == "client-id/123456"


def test_plain_spelling_wins(monkeypatch):
    hook = use_connection(
        monkeypatch, {"division": 1, LEGACY + "division": 2, "max_attempts": 3, LEGACY + "max_attempts": 9}
    )
    assert hook.division == 1 and hook._option("max_attempts", 6) == 3


def test_no_extra_becomes_an_http_header(monkeypatch):
    hook = use_connection(
        monkeypatch,
        {
            LEGACY + "division": 123456,
            LEGACY + "refresh_token": SECRET_TOKEN,
            LEGACY + "timeout": 30,
            "X-Custom": "kept",
        },
    )
    session = hook.get_conn()
    assert not [k for k in session.headers if k.startswith("extra__")]
    assert SECRET_TOKEN not in json.dumps(dict(session.headers))
    # The extra configures the hook; unlike HttpHook's session, this one sends none of it, whatever its name.
    assert "X-Custom" not in session.headers
    assert hook._timeout() == 30.0


@pytest.mark.parametrize(
    ("host", "schema", "port", "base"),
    [
        ("https://start.exactonline.nl", "", None, "https://start.exactonline.nl"),
        ("https://start.exactonline.be/", "", None, "https://start.exactonline.be"),
        ("start.exactonline.nl", "", None, "https://start.exactonline.nl"),  # Exact speaks only https
        ("127.0.0.1", "http", 8089, "http://127.0.0.1:8089"),  # a plain http connection split into its fields
        ("http://127.0.0.1", "", 8089, "http://127.0.0.1:8089"),
    ],
)
def test_base_url_from_the_connection(monkeypatch, host, schema, port, base):
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT",
        json.dumps({"conn_type": "http", "host": host, "schema": schema, "port": port, "extra": {"division": 7}}),
    )
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    assert hook.api_base == base
    assert hook._url("crm/Accounts", {"$select": "ID"}) == f"{base}/api/v1/7/crm/Accounts?$select=ID"


def test_a_division_of_the_consent_other_than_the_connections_keeps_the_consents_chain(monkeypatch):
    """#21: a company reaches another division through the same consent: its calls go to that division, its token
    chain is the consent's (one Exact user's chain serves every division they may open)."""
    use_connection(monkeypatch, {"division": 123456, "refresh_token": SECRET_TOKEN})
    hook = ExactOnlineHook(division=777, token_store=MemoryTokenStore())
    assert (hook.division, hook.consent_division, hook.chain_key) == (777, 123456, "client-id/123456")
    assert "/api/v1/777/crm/Accounts?" in hook._url("crm/Accounts", {"$select": "ID"})


def test_missing_host_names_the_field(monkeypatch):
    hook = use_connection(monkeypatch, {"division": 1}, host="")
    with pytest.raises(ExactConfigError, match="no host.*Base URL"):
        _ = hook.api_base


@pytest.mark.parametrize("extra", [{}, {"division": None}, {"division": ""}, {LEGACY + "division": None}])
def test_missing_division_names_the_field(monkeypatch, extra):
    hook = use_connection(monkeypatch, {**extra, "refresh_token": SECRET_TOKEN})
    with pytest.raises(ExactConfigError) as err:
        _ = hook.division  # the property raises
    text = str(err.value)
    assert "'exact_online_default'" in text and "'division'" in text and "Division" in text and "e.g. 123456" in text
    assert SECRET_TOKEN not in text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("division", "abc"),
        ("division", 12.5),
        ("division", 0),
        ("division", -3),
        ("division", True),
        ("division", [123]),
        (LEGACY + "division", "12a"),
    ],
)
def test_malformed_division_names_the_extra_it_came_from(monkeypatch, key, value):
    hook = use_connection(monkeypatch, {key: value})
    with pytest.raises(ExactConfigError) as err:
        _ = hook.division  # the property raises
    assert repr(key) in str(err.value) and "positive whole number" in str(err.value)


def test_missing_refresh_token_without_a_stored_chain(monkeypatch):
    hook = use_connection(monkeypatch, {"division": 123456, "refresh_token": None})
    with pytest.raises(ExactConfigError) as err:
        hook.get_access_token()  # no token chain in the (empty) store and none to start one
    text = str(err.value)
    assert "'refresh_token'" in text and "First refresh token" in text and "Authorise the app" in text
    assert "client-secret" not in text


def test_malformed_refresh_token_is_named_but_not_shown(monkeypatch):
    hook = use_connection(monkeypatch, {"division": 123456, LEGACY + "refresh_token": 98765432123})
    with pytest.raises(ExactConfigError) as err:
        hook.get_access_token()
    assert repr(LEGACY + "refresh_token") in str(err.value) and "98765432123" not in str(err.value)


def test_malformed_option_is_a_config_error(monkeypatch):
    hook = use_connection(monkeypatch, {"division": 1, "max_attempts": "many"})
    with pytest.raises(ExactConfigError, match="'max_attempts' must be a number"):
        hook._option("max_attempts", 6)


def test_config_errors_fail_fast_where_api_errors_do():
    # The import DAG turns ExactApiError into a failure without retries: a wrong connection is not transient.
    assert issubclass(ExactConfigError, ExactApiError)
    assert ExactConfigError("c", "x").status == 0


@pytest.mark.parametrize("spelling", ["plain", "legacy"])
def test_round_trip_with_an_exact_online_connection(sandbox_factory, monkeypatch, spelling):
    server = sandbox_factory(size=5)
    conn = json.loads(os.environ["AIRFLOW_CONN_EXACT_ONLINE_DEFAULT"])
    extra = conn["extra"]
    if spelling == "legacy":
        extra = {LEGACY + k if k in ("division", "refresh_token") else k: v for k, v in extra.items()}
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT", json.dumps({**conn, "conn_type": "exact_online", "extra": extra})
    )
    hook = ExactOnlineHook(token_store=MemoryTokenStore())
    assert hook.connection.conn_type == "exact_online"
    rows = [r for page in hook.sync("sync/CRM/Accounts", ["ID"], 1) for r in page]
    assert len(rows) == 6 and hook.division == server.state.config.division  # 5 and the division's own account
    assert hook.test_connection()[0]
