"""The sandbox speaks Exact's protocol: checked with plain HTTP, as any Exact client would see it."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
import requests

from include.exact_sandbox import SandboxConfig, data, start_sandbox
from include.exact_sandbox.server import ENDPOINTS, FIELD_LIST_FOR, FIELDS
from tests.helpers.sandbox import stop_sandbox

DIV = 3_000_001
RATE_HEADERS = {
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Minutely-Limit",
    "X-RateLimit-Minutely-Remaining",
    "X-RateLimit-Minutely-Reset",
}


def token(server, refresh="sandbox-refresh-token-0", secret="sandbox-secret"):
    return requests.post(
        server.url + "/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "sandbox-client",
            "client_secret": secret,
        },
        timeout=5,
    )


def get(server, path, params=None, access=None):
    return requests.get(
        f"{server.url}/api/v1/{DIV}/{path}",
        params=params,
        headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
        timeout=10,
    )


def test_refresh_tokens_rotate_and_are_single_use(sandbox):
    s = sandbox(min_token_interval=0.2)
    first = token(s)
    body = first.json()
    assert first.status_code == 200 and body["expires_in"] == "600" and body["token_type"] == "bearer"
    assert body["refresh_token"] != "sandbox-refresh-token-0"
    reuse = token(s)
    assert reuse.status_code == 401
    assert reuse.json() == {"error": "unauthorized_client", "error_description": "Old refresh token used."}
    early = token(s, body["refresh_token"])
    assert early.status_code == 400 and early.headers["Reason"].startswith("TooEarlyToRefreshTokens")
    assert early.json()["error_description"] == "Rate limit exceeded: access_token not expired"
    time.sleep(0.25)  # waiting out the 0.2 s minimum refresh interval is the test: then the refresh is allowed
    assert token(s, body["refresh_token"]).status_code == 200
    assert token(s, secret="wrong").json()["error"] == "invalid_client"


def test_access_tokens_expire(sandbox):
    s = sandbox(access_token_lifetime=0.3)
    access = token(s).json()["access_token"]
    params = {"$select": "ID", "$filter": "Timestamp gt 1L"}
    assert get(s, "sync/CRM/Accounts", params, access).status_code == 200
    time.sleep(0.4)  # outliving the 0.3 s access token is the test
    r = get(s, "sync/CRM/Accounts", params, access)
    assert r.status_code == 401 and "access token expired" in r.headers["WWW-Authenticate"]


def test_sync_envelope_paging_dates_and_padding(sandbox):
    s = sandbox(size=2100)
    access = token(s).json()["access_token"]
    r = get(
        s, "sync/CRM/Accounts", {"$select": "ID,Code,Country,StartDate,Timestamp", "$filter": "Timestamp gt 1L"}, access
    )
    assert r.status_code == 200 and RATE_HEADERS <= set(r.headers)
    d = r.json()["d"]
    assert len(d["results"]) == 1000
    rec = d["results"][0]
    assert set(rec) == {"__metadata", "ID", "Code", "Country", "StartDate", "Timestamp"}
    assert rec["__metadata"]["uri"].startswith(s.url) and "guid'" in rec["__metadata"]["uri"]
    assert len(rec["Code"]) == 18 and rec["Code"] == rec["Code"].rjust(18) and rec["Code"].strip().isdigit()
    assert len(rec["Country"]) == 3
    assert re.fullmatch(r"/Date\(\d+\)/", rec["StartDate"])
    assert d["__next"].startswith(s.url + f"/api/v1/{DIV}/sync/CRM/Accounts?") and "$skiptoken=" in d["__next"]
    seen = [x["Timestamp"] for x in d["results"]]
    while "__next" in d:
        d = requests.get(d["__next"], headers={"Authorization": f"Bearer {access}"}, timeout=10).json()["d"]
        seen += [x["Timestamp"] for x in d["results"]]
    assert len(seen) == 2101 and seen == sorted(seen) and len(set(seen)) == 2101  # and the division's own account


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("sync/CRM/Accounts", {"$filter": "Timestamp gt 1L"}, "Please add a $select"),
        ("sync/CRM/Accounts", {"$select": "*", "$filter": "Timestamp gt 1L"}, "$select=* is not allowed"),
        ("sync/CRM/Accounts", {"$select": "ID,Salesprice"}, "The request is invalid."),
        ("sync/CRM/Accounts", {"$select": "ID", "$filter": "Name eq 'x'"}, "not supported for this resource"),
        ("crm/Accounts", {"$select": "ID"}, "mandatory filtering"),
        ("crm/Accounts", {"$select": "ID", "$filter": "Website eq 'x'"}, "mandatory filtering"),
        ("bulk/CRM/Accounts", {"$filter": "Blocked eq false"}, "Please add a $select"),
        ("sync/Deleted", {"$select": "ID", "$filter": "Modified gt datetime'2024-01-01'"}, "not supported"),
    ],
)
def test_protocol_errors_are_odata_400s(sandbox, path, params, message):
    s = sandbox(size=5)
    r = get(s, path, params, token(s).json()["access_token"])
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "" and err["message"]["lang"] == "" and message in err["message"]["value"]


def test_regular_and_bulk_paging(sandbox):
    s = sandbox(size=1500)
    access = token(s).json()["access_token"]
    r = get(s, "crm/Accounts", {"$select": "ID,Code", "$filter": "Blocked eq false"}, access).json()["d"]
    assert len(r["results"]) == 60 and "$skiptoken=guid'" in r["__next"]
    r = get(s, "bulk/CRM/Accounts", {"$select": "ID,Code", "$filter": "Blocked eq false"}, access).json()["d"]
    assert len(r["results"]) == 1000
    padded = get(s, "crm/Accounts", {"$select": "ID,Code", "$filter": "Code eq '1000'"}, access).json()["d"]
    trimmed = get(s, "crm/Accounts", {"$select": "ID,Code", "$filter": "trim(Code) eq '1000'"}, access).json()["d"]
    assert padded["results"] == [] and len(trimmed["results"]) == 1  # Exact's padded-code quirk


def test_rate_limits_and_429_headers(sandbox):
    s = sandbox(size=5, minutely_limit=3, daily_limit=5, minute_seconds=2.0)
    access = token(s).json()["access_token"]
    params = {"$select": "ID", "$filter": "Timestamp gt 1L"}
    # The windows are aligned to the clock: start the four calls at a window's start, so that a loaded machine
    # does not carry the third call into the next window (seen once with half-second windows).
    time.sleep(2.0 - time.time() % 2.0 + 0.02)
    remaining = [
        int(get(s, "sync/CRM/Accounts", params, access).headers["X-RateLimit-Minutely-Remaining"]) for _ in range(3)
    ]
    assert remaining == [2, 1, 0]
    r = get(s, "sync/CRM/Accounts", params, access)
    assert r.status_code == 429 and r.content == b""
    assert {h for h in RATE_HEADERS if h in r.headers} == {h for h in RATE_HEADERS if "Minutely" in h}
    reset_ms = int(r.headers["X-RateLimit-Minutely-Reset"])
    assert reset_ms > time.time() * 1000 and reset_ms % 2000 == 0
    time.sleep(max(reset_ms / 1000 - time.time(), 0) + 0.05)  # waiting out the window is the test: the budget resets
    assert get(s, "sync/CRM/Accounts", params, access).status_code == 200
    assert get(s, "sync/CRM/Accounts", params, access).status_code == 200  # 5th call of the day
    r = get(s, "sync/CRM/Accounts", params, access)
    assert r.status_code == 429 and r.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Minutely-Remaining" not in r.headers
    assert int(r.headers["X-RateLimit-Reset"]) % 86_400_000 == 0  # next midnight UTC


def test_mutations_show_up_in_sync_and_deleted(sandbox):
    s = sandbox(size=50)
    access = token(s).json()["access_token"]
    params = {"$select": "ID,Name,Timestamp", "$filter": "Timestamp gt 1L"}
    rows = get(s, "sync/CRM/Accounts", params, access).json()["d"]["results"]
    high = max(r["Timestamp"] for r in rows)
    ids = [r["ID"] for r in rows]
    requests.post(s.url + "/_sandbox/mutate", json={"op": "update", "records": [{"ID": ids[0], "Name": "Zoë's B.V."}]})
    requests.post(s.url + "/_sandbox/mutate", json={"op": "delete", "ids": [ids[1]]})
    changed = get(s, "sync/CRM/Accounts", {**params, "$filter": f"Timestamp gt {high}L"}, access).json()["d"]["results"]
    assert [(c["ID"], c["Name"]) for c in changed] == [(ids[0], "Zoë's B.V.")]
    deleted = get(
        s,
        "sync/Deleted",
        {"$select": "EntityKey,EntityType,Timestamp", "$filter": f"Timestamp gt {high}L and EntityType eq 2"},
        access,
    ).json()["d"]["results"]
    assert [(d["EntityKey"], d["EntityType"]) for d in deleted] == [(ids[1], 2)]
    assert (
        get(
            s, "sync/Deleted", {"$select": "EntityKey", "$filter": "Timestamp gt 1L and EntityType eq 9"}, access
        ).json()["d"]["results"]
        == []
    )


def test_generated_data_is_realistic(sandbox):
    s = sandbox(size=3000)
    accounts = list(s.state.division.accounts.values())
    assert {a["Status"] for a in accounts} == {"C", "P", "S", "A"}
    assert any(a["Blocked"] for a in accounts) and any(a["IsSupplier"] for a in accounts)
    today = dt.date(2026, 11, 24)
    assert any(a["EndDate"] and a["EndDate"] < today for a in accounts)
    names = " ".join(a["Name"] for a in accounts)
    assert "'" in names and any(ch in names for ch in "ëöüçÇÖ")
    assert {a["Country"].strip() for a in accounts} >= {"NL", "BE", "DE"}
    assert len({a["Code"] for a in accounts}) == 3001  # 3,000 generated and the division's own account
    # #14 item 5: Exact lists the administration itself among the accounts, Type 'D' (Status 'A'); the rest 'A'.
    own = [a for a in accounts if a["Type"] == "D"]
    assert len(own) == 1 and own[0]["Status"] == "A" and {a["Type"] for a in accounts} == {"A", "D"}


def test_faults_5xx_and_drops(sandbox):
    s = sandbox(size=5)
    access = token(s).json()["access_token"]
    requests.post(s.url + "/_sandbox/faults", json={"error_rate": 1.0})
    r = get(s, "sync/CRM/Accounts", {"$select": "ID", "$filter": "Timestamp gt 1L"}, access)
    assert r.status_code == 503 and r.json()["error"]["message"]["value"] == "Service Unavailable"
    requests.post(s.url + "/_sandbox/faults", json={"error_rate": 0.0, "drop_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        get(s, "sync/CRM/Accounts", {"$select": "ID", "$filter": "Timestamp gt 1L"}, access)


def test_me_has_no_division_and_no_rate_headers(sandbox):
    s = sandbox(size=5)
    r = requests.get(
        s.url + "/api/v1/current/Me", headers={"Authorization": "Bearer " + token(s).json()["access_token"]}
    )
    assert r.json()["d"]["results"][0]["CurrentDivision"] == DIV
    assert not RATE_HEADERS & set(r.headers)


@pytest.mark.parametrize(
    ("path", "select", "page"),
    [
        ("sync/Logistics/Items", "ID,Code,IsTime,ItemGroupCode,Timestamp", 1000),
        ("sync/Logistics/SalesItemPrices", "ID,Item,Account,Price,Timestamp", 1000),
        ("sync/Payroll/Employees", "ID,Code,FullName,Timestamp", 1000),
        ("sync/Cashflow/PaymentTerms", "ID,LineType,InvoiceNumber,Timestamp", 1000),
    ],
)
def test_standard_sync_endpoints_follow_the_sync_rules(sandbox, path, select, page):
    s = sandbox(size=2600, seed=4)
    access = token(s).json()["access_token"]
    assert get(s, path, {"$filter": "Timestamp gt 1L"}, access).status_code == 400  # $select required
    assert get(s, path, {"$select": "ID", "$filter": "Code eq 'x'"}, access).status_code == 400  # only Timestamp
    d = get(s, path, {"$select": select, "$filter": "Timestamp gt 1L"}, access).json()["d"]
    assert len(d["results"]) == min(
        page,
        len(
            getattr(
                s.state.division,
                {
                    "sync/Logistics/Items": "items",
                    "sync/Logistics/SalesItemPrices": "sales_item_prices",
                    "sync/Payroll/Employees": "employees",
                    "sync/Cashflow/PaymentTerms": "payment_terms",
                }[path],
            )
        ),
    )
    assert set(d["results"][0]) == {"__metadata", *select.split(",")}


def test_items_regular_endpoint_has_mandatory_filtering_and_item_groups_not(sandbox):
    s = sandbox(size=400)
    access = token(s).json()["access_token"]
    assert (
        "mandatory filtering"
        in get(s, "logistics/Items", {"$select": "ID"}, access).json()["error"]["message"]["value"]
    )
    r = get(s, "logistics/Items", {"$select": "ID,Code", "$filter": "Code eq 'UUR-MONTEUR'"}, access).json()["d"]
    assert [x["Code"] for x in r["results"]] == ["UUR-MONTEUR"]
    groups = get(s, "logistics/ItemGroups", {"$select": "ID,Code,Description,IsDefault"}, access).json()["d"]["results"]
    assert {g["Code"] for g in groups} >= {"MAT", "UREN"} and sum(g["IsDefault"] for g in groups) == 1


def test_standard_entities_are_realistic(sandbox):
    s = sandbox(size=1000)
    div = s.state.division
    items = div.items.values()
    assert {i["IsTime"] for i in items} == {0, 1}
    assert len({i["ItemGroupCode"] for i in items if i["IsTime"] == 0}) >= 4
    assert any(i["EndDate"] for i in items)  # inactive items
    assert any(not e["IsActive"] for e in div.employees.values())
    terms = list(div.payment_terms.values())
    assert {t["LineType"] for t in terms} == {20, 22}
    assert any(t["IsFullyPaid"] for t in terms) and any(t["Status"] == 30 for t in terms)
    assert any(p["Account"] is None for p in div.sales_item_prices.values())  # standard prices
    assert any(p["Account"] is not None for p in div.sales_item_prices.values())  # price agreements
    # #14 item 6: prices without an account that are not the standard price: a project's, an employee's, in USD,
    # for another unit than the item's.
    plain = [p for p in div.sales_item_prices.values() if p["Account"] is None]
    assert any(p["Project"] for p in plain) and any(p["Employee"] for p in plain)
    assert any(p["Currency"] == "USD" for p in plain) and div.currency == "EUR"
    assert any(p["Unit"] != div.items[p["Item"]]["Unit"] for p in plain)
    assert div.divisions[div.division]["Currency"] == "EUR"  # system/Divisions


def test_accounts_only_division_and_sampled_records(sandbox):
    # The large benchmark divisions generate only accounts; the control API samples them without dumping all.
    s = sandbox(size=300, accounts_only=True)
    assert len(s.state.division.accounts) == 300
    assert s.state.division.items == {} and s.state.division.employees == {}
    got = requests.post(
        s.url + "/_sandbox/records", json={"entity": "accounts", "every": 100, "fields": ["ID", "Name"]}, timeout=10
    ).json()["records"]
    assert len(got) == 3 and all(set(r) == {"ID", "Name"} for r in got)
    assert got[1]["ID"] == list(s.state.division.accounts)[100]


def test_state_file_keeps_division_and_token_chain_across_restarts(tmp_path):
    """`make airflow` restarts the sandbox with the rest: a real division keeps its data and its token chain."""
    first = start_sandbox(SandboxConfig(size=20))
    try:
        c = first.state.config
        reply = requests.post(
            first.url + "/api/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": c.initial_refresh_token,
                "client_id": c.client_id,
                "client_secret": c.client_secret,
            },
            timeout=5,
        ).json()
        requests.post(
            first.url + "/_sandbox/mutate",
            json={"entity": "accounts", "op": "add", "records": [{"Status": "C"}]},
            timeout=5,
        ).raise_for_status()
        accounts, rowversion = len(first.state.division.accounts), first.state.division.rowversion
        first.state.save(tmp_path / "sandbox.pickle")
    finally:
        stop_sandbox(first)
    second = start_sandbox(SandboxConfig(size=20))
    try:
        assert second.state.load(tmp_path / "sandbox.pickle")
        assert len(second.state.division.accounts) == accounts and second.state.division.rowversion == rowversion
        # the rotated refresh token still works, the initial one is "old", as in Exact
        assert second.state.refresh_token == reply["refresh_token"]
        assert c.initial_refresh_token in second.state.old_refresh_tokens
    finally:
        stop_sandbox(second)
    fresh = start_sandbox(SandboxConfig(size=20))
    try:
        assert fresh.state.load(tmp_path / "missing.pickle") is False  # first start: a new division
    finally:
        stop_sandbox(fresh)


# ---- #14 item 1: Exact returns only the fields in the $select ------------------------------------------------------
def _filter_for(spec) -> dict:
    """A $filter the endpoint accepts and that matches every record."""
    if spec.kind in ("sync", "deleted"):
        return {"$filter": "Timestamp gt 1L"}
    if spec.filter_fields:
        return {"$filter": "ID ne guid'00000000-0000-0000-0000-000000000000'"}
    return {}


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_every_endpoint_returns_only_the_selected_fields(sandbox, path):
    """Exact leaves out every field that is not in the `$select` (a field the import forgets to select is simply
    empty: price agreements' ItemCode, ItemDescription and AccountName were, before #12)."""
    s = sandbox(size=60, seed=3)
    spec, div = ENDPOINTS[path], s.state.division
    if spec.kind == "deleted":
        data.delete_record(div, "accounts", next(iter(div.accounts)), now=dt.datetime.now(dt.UTC))
        record = div.deleted[0]
    else:
        record = next(iter(getattr(div, spec.entity).values()))
    others = sorted(f for f in record if f != spec.key and f in FIELDS[FIELD_LIST_FOR.get(path, path)])
    select = [spec.key, others[0], others[-1]]
    assert len(others) > 2  # so something selectable is left out
    r = get(s, path, {"$select": ",".join(select), **_filter_for(spec)}, token(s).json()["access_token"])
    assert r.status_code == 200, r.text
    rows = r.json()["d"]["results"]
    assert rows and all(set(row) == {"__metadata", *select} for row in rows)


# ---- #14 item 8: numbers, booleans and the Timestamp as JSON text (a switch, off by default) -----------------------
def test_types_as_text_switch_writes_numbers_booleans_and_timestamp_as_text(sandbox):
    s = sandbox(size=40, seed=3)
    access = token(s).json()["access_token"]
    gone = next(iter(s.state.division.accounts))
    requests.post(s.url + "/_sandbox/mutate", json={"op": "delete", "ids": [gone]}, timeout=5).raise_for_status()
    asks = [
        ("sync/Logistics/Items", {"$select": "ID,IsTime,CostPriceStandard,Timestamp", "$filter": "Timestamp gt 1L"}),
        ("bulk/CRM/Accounts", {"$select": "ID,Blocked,IsSupplier", "$filter": "Blocked eq false"}),
        ("logistics/ItemGroups", {"$select": "ID,IsDefault"}),
        ("sync/Deleted", {"$select": "ID,EntityType,Timestamp", "$filter": "Timestamp gt 1L"}),
    ]

    def answers():
        out = [get(s, path, params, access).json()["d"]["results"] for path, params in asks]
        me = requests.get(s.url + "/api/v1/current/Me", headers={"Authorization": f"Bearer {access}"}, timeout=5)
        return [[{k: v for k, v in row.items() if k != "__metadata"} for row in rows] for rows in out] + [
            [{"CurrentDivision": me.json()["d"]["results"][0]["CurrentDivision"]}]
        ]

    native = answers()
    assert all(
        isinstance(v, (int, float, bool)) for rows in native for row in rows for k, v in row.items() if k != "ID"
    )
    assert requests.post(s.url + "/_sandbox/config", json={"types_as_text": True}, timeout=5).json()["types_as_text"]
    text = answers()
    assert all(isinstance(v, str) for rows in text for row in rows for v in row.values())
    spelled = {v for rows in text for row in rows for k, v in row.items() if k != "ID"}
    assert {"true", "false", "0", "1"} <= spelled and any(re.fullmatch(r"\d+\.\d{2}", v) for v in spelled)

    def plain(v):
        return v if not isinstance(v, str) or v.count("-") == 4 else json.loads(v)

    assert [[{k: plain(v) for k, v in row.items()} for row in rows] for rows in text] == native


LINES = "sync/SalesOrder/GoodsDeliveryLines"
LINE_SELECT = "ID,EntryID,StorageLocation,StorageLocationCode,QuantityDelivered,SalesOrderLineID,Timestamp"


def _sync_all(s, path, select, since, access) -> list[dict]:
    d = get(s, path, {"$select": select, "$filter": f"Timestamp gt {since}L"}, access).json()["d"]
    rows = d["results"]
    while "__next" in d:
        d = requests.get(d["__next"], headers={"Authorization": f"Bearer {access}"}, timeout=10).json()["d"]
        rows += d["results"]
    return rows


def test_split_delivery_lines_repeat_their_id_once_per_storage_location(sandbox):
    """Exact: a goods delivery line split over storage locations comes back as one row per location, all with the
    line's ID, each with its own StorageLocation and QuantityDelivered (exact-online-api.md §12)."""
    s = sandbox(size=300, split_delivery_lines=0.5)
    access = token(s).json()["access_token"]
    rows = _sync_all(s, LINES, LINE_SELECT, 1, access)
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["ID"], []).append(r)
    split = {i: rs for i, rs in by_id.items() if len(rs) > 1}
    assert split and len(split) < len(by_id)  # some lines split, most not
    order_lines = s.state.division.sales_order_lines
    for rs in split.values():
        assert len({r["StorageLocation"] for r in rs}) == len(rs) and all(r["StorageLocationCode"] for r in rs)
        # the locations' quantities add up to what the sales order line delivered
        assert (
            round(sum(r["QuantityDelivered"] for r in rs), 2)
            == order_lines[rs[0]["SalesOrderLineID"]]["QuantityDelivered"]
        )
    high = max(r["Timestamp"] for r in rows)
    line_id, rs = sorted(split.items())[0]
    mutate = s.url + "/_sandbox/mutate"
    # One location's quantity changes: the line's current rows come back, all of them.
    change = {"ID": line_id, "StorageLocation": rs[0]["StorageLocation"], "QuantityDelivered": 99.0}
    requests.post(mutate, json={"entity": "goods_delivery_lines", "op": "update", "records": [change]}, timeout=5)
    again = _sync_all(s, LINES, LINE_SELECT, high, access)
    assert sorted((r["StorageLocation"], r["ID"]) for r in again) == sorted((r["StorageLocation"], line_id) for r in rs)
    assert {r["StorageLocation"]: r["QuantityDelivered"] for r in again}[rs[0]["StorageLocation"]] == 99.0
    # A location disappears from the line: the remaining rows come back, and sync/Deleted says nothing.
    high = max(r["Timestamp"] for r in again)
    gone = f"{line_id}/{rs[-1]['StorageLocation']}"
    requests.post(mutate, json={"entity": "goods_delivery_lines", "op": "delete", "ids": [gone]}, timeout=5)
    remaining = _sync_all(s, LINES, LINE_SELECT, high, access)
    assert {r["StorageLocation"] for r in remaining} == {r["StorageLocation"] for r in rs[:-1]}
    assert _sync_all(s, "sync/Deleted", "EntityKey,EntityType,Timestamp", high, access) == []
    # The line itself is deleted: one sync/Deleted entry (type 17) with the line's ID, no row is left.
    high = max(r["Timestamp"] for r in remaining)
    requests.post(mutate, json={"entity": "goods_delivery_lines", "op": "delete", "ids": [line_id]}, timeout=5)
    deleted = _sync_all(s, "sync/Deleted", "EntityKey,EntityType,Timestamp", high, access)
    assert [(d["EntityKey"], d["EntityType"]) for d in deleted] == [(line_id, 17)]
    assert not [r for r in _sync_all(s, LINES, LINE_SELECT, 1, access) if r["ID"] == line_id]


def test_split_delivery_lines_are_off_by_default(sandbox):
    lines = sandbox(size=100).state.division.goods_delivery_lines
    assert lines and all(k == r["ID"] and r.get("StorageLocation") is None for k, r in lines.items())


def test_system_divisions_and_a_division_move_regenerate_every_timestamp(sandbox):
    """system/Divisions lists the licence's divisions with DivisionMoveDate; when Exact moves a division to another
    database its Timestamps are regenerated (small again), so `Timestamp gt <old watermark>` finds nothing."""
    s = sandbox(size=50)
    access = token(s).json()["access_token"]
    select = {"$select": "Code,Description,Currency,DivisionMoveDate"}
    every = get(s, "system/Divisions", select, access).json()["d"]["results"]
    assert {d["Code"] for d in every} == {DIV, DIV + 1} and all(d["DivisionMoveDate"] is None for d in every)
    ours = get(s, "system/Divisions", {**select, "$filter": f"Code eq {DIV}"}, access).json()["d"]["results"]
    assert [(d["Code"], d["Currency"]) for d in ours] == [(DIV, "EUR")]
    assert ours[0]["__metadata"]["uri"].endswith(f"/system/Divisions({DIV})")
    accounts = _sync_all(s, "sync/CRM/Accounts", "ID,Name,Timestamp", 1, access)
    high = max(a["Timestamp"] for a in accounts)
    moved = requests.post(s.url + "/_sandbox/move-division", json={}, timeout=5).json()
    assert moved["highest_timestamp"] < high
    ours = get(s, "system/Divisions", {**select, "$filter": f"Code eq {DIV}"}, access).json()["d"]["results"]
    assert re.fullmatch(r"/Date\(\d+\)/", ours[0]["DivisionMoveDate"])
    # The same records, in the same order, with small Timestamps: a change after the move stays below the watermark.
    again = _sync_all(s, "sync/CRM/Accounts", "ID,Name,Timestamp", 1, access)
    assert [a["ID"] for a in again] == [a["ID"] for a in accounts] and max(a["Timestamp"] for a in again) < high
    requests.post(s.url + "/_sandbox/mutate", json={"op": "update", "records": [{"ID": accounts[0]["ID"]}]}, timeout=5)
    assert _sync_all(s, "sync/CRM/Accounts", "ID,Name,Timestamp", high, access) == []


def test_a_division_move_regenerates_the_timestamps_of_every_synced_entity(sandbox):
    """Every stream the registry reads through a sync endpoint, not a hand-kept list: relations' addresses and
    contact persons kept their Timestamps when the list lacked them, so a watermark above them stayed valid."""
    from include.exact_sandbox.registry_sources import synced_entities

    s = sandbox(size=40)
    div = s.state.division
    entities = synced_entities()
    assert {"addresses", "contacts", "accounts", "items"} <= set(entities)
    before = {e: {k: r["Timestamp"] for k, r in div.records(e).items()} for e in entities}
    high = max(t for stamps in before.values() for t in stamps.values())
    requests.post(s.url + "/_sandbox/move-division", json={}, timeout=5).raise_for_status()
    for entity in entities:
        after = {k: r["Timestamp"] for k, r in div.records(entity).items()}
        assert after.keys() == before[entity].keys(), entity
        assert not after or max(after.values()) < high, entity  # every one regenerated, below the old watermark


def test_the_deletion_log_can_be_purged_as_exact_does_after_two_months(sandbox):
    s = sandbox(size=30)
    access = token(s).json()["access_token"]
    ids = sorted(s.state.division.accounts)[:2]
    requests.post(s.url + "/_sandbox/mutate", json={"op": "delete", "ids": ids}, timeout=5).raise_for_status()
    select = "EntityKey,EntityType,Timestamp"
    assert {d["EntityKey"] for d in _sync_all(s, "sync/Deleted", select, 1, access)} == set(ids)
    # By default only what is older than Exact's two months goes; 0 seconds: everything up to now.
    assert requests.post(s.url + "/_sandbox/purge-deleted", json={}, timeout=5).json() == {"purged": 0}
    assert requests.post(s.url + "/_sandbox/purge-deleted", json={"older_than_seconds": 0}, timeout=5).json() == {
        "purged": 2
    }
    assert _sync_all(s, "sync/Deleted", select, 1, access) == []
