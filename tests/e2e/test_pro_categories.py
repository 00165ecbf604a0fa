"""The Pro categories end to end: licence gate, first load, incremental run, no-change run, headers/lines."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from include.outsmart_import import registry
from tests.helpers.e2e import ids, last_log, mutate, reset_stats, row_versions, run_dag, sandbox_stats, snapshot

PRO = [c.name for c in registry.PRO]
ALL_ON = {name: {"enabled": True} for name in PRO}


@pytest.mark.parametrize("name", PRO)
def test_standard_licence_skips_at_once_without_api_calls(
    dags, sandbox_factory, target_db, settings_var, capfd, caplog, name
):
    server = sandbox_factory(size=20)
    settings_var({"license": "standard", "categories": {name: {"enabled": True}}})
    _, states = run_dag(dags, name)
    assert states["check_settings"] == "skipped" and states[f"import_{name}"] == "skipped"
    assert f"Category '{name}' needs Exact Online Pro" in "".join(capfd.readouterr()) + caplog.text
    assert sandbox_stats(server)["calls"] == {} and sandbox_stats(server)["token_calls"] == {}


# (category, sandbox entity, key field, target table, lines entity, lines table)
SYNCED = [
    ("sales_orders", "sales_order_headers", "ID", "sales_orders", "sales_order_lines", "sales_order_lines"),
    (
        "goods_deliveries",
        "goods_deliveries",
        "EntryID",
        "goods_deliveries",
        "goods_delivery_lines",
        "goods_delivery_lines",
    ),
    ("quotations", "quotation_headers", "ID", "quotations", "quotation_lines", "quotation_lines"),
    ("shop_orders", "shop_orders", "ID", "shop_orders", None, None),
    ("project_planning", "project_planning", "ID", "project_planning", None, None),
    ("price_agreements", "sales_item_prices", "ID", "price_agreements", None, None),
]


@pytest.mark.parametrize(
    ("name", "entity", "key", "table", "line_entity", "line_table"), SYNCED, ids=[s[0] for s in SYNCED]
)
def test_synced_pro_category_first_incremental_and_no_change(
    dags, sandbox_factory, target_db, settings_var, name, entity, key, table, line_entity, line_table
):
    server = sandbox_factory(size=600, seed=41)
    settings_var({"license": "pro", "categories": {"relations": {"enabled": True}, **ALL_ON}})
    run_dag(dags, "relations")  # customer codes of orders and agreements are looked up in relations
    if name == "quotations":
        settings_var(
            {
                "license": "pro",
                "categories": {
                    "relations": {"enabled": True},
                    "materials": {"enabled": True},
                    "hour_types": {"enabled": True},
                    **ALL_ON,
                },
            }
        )
        run_dag(dags, "materials")
        run_dag(dags, "hour_types")
    run_dag(dags, name)
    div = server.state.division
    records = getattr(div, entity)
    if name == "price_agreements":
        expected = {i for i, p in records.items() if p["Account"] is not None}
    elif name == "quotations":
        default = {20, 25, 35, 40, 50, 60}
        expected = {i for i, q in records.items() if q["Status"] in default}
    else:
        expected = set(records)
    assert ids(target_db, table) == expected and expected
    if line_table:
        parent_field = {
            "sales_order_lines": "OrderID",
            "goods_delivery_lines": "EntryID",
            "quotation_lines": "QuotationID",
        }[line_table]
        header_values = {
            r[
                {"sales_order_lines": "OrderID", "goods_delivery_lines": "EntryID", "quotation_lines": "QuotationID"}[
                    line_table
                ]
            ]
            for i, r in records.items()
            if i in expected
        }
        lines = getattr(div, line_entity)
        expected_lines = {i for i, line in lines.items() if line[parent_field] in header_values}
        assert ids(target_db, line_table) == expected_lines and expected_lines
    first = last_log(target_db, name)
    assert first["status"] == "success" and first["rejected"] == 0

    # Incremental: change one loaded record, delete another (and, with lines, one line).
    loaded = sorted(expected)
    changed, gone = loaded[0], loaded[1]
    field = {
        "sales_orders": "Description",
        "goods_deliveries": "TrackingNumber",
        "quotations": "Description",
        "shop_orders": "Description",
        "project_planning": "Description",
        "price_agreements": "Price",
    }[name]
    value = 42.5 if field == "Price" else "Gewijzigd in Exact"
    mutate(server, entity=entity, op="update", records=[{key: changed, field: value}])
    mutate(server, entity=entity, op="delete", ids=[gone])
    changes = 2
    if line_table:
        line_id = sorted(expected_lines)[0]
        mutate(
            server,
            entity=line_entity,
            op="update",
            records=[
                {"ID": line_id, "Quantity" if line_table != "goods_delivery_lines" else "QuantityDelivered": 12345.0}
            ],
        )
        changes += 1
    reset_stats(server)
    before = {t: row_versions(target_db, t) for t in filter(None, [table, line_table])}
    run_dag(dags, name)
    log = last_log(target_db, name)
    assert (log["inserted"], log["updated"], log["deleted"]) == (0, changes - 1, 1), log
    calls = sandbox_stats(server)["calls"]
    # One page of changes per stream, and one page of sync/Deleted for every entity type (the lines' too).
    assert sum(calls.values()) == (3 if line_table else 2), calls
    after = {t: row_versions(target_db, t) for t in before}
    untouched = set(before[table]) - {changed, gone}
    assert all(after[table][i] == before[table][i] for i in untouched)
    snap = snapshot(target_db, *before)
    run_dag(dags, name)
    log = last_log(target_db, name)
    assert (log["fetched"], log["inserted"], log["updated"], log["deleted"]) == (0, 0, 0, 0)
    assert snapshot(target_db, *before) == snap


FULL_REFRESH = [("warehouses", "warehouses", "ID"), ("assembly_orders", "assembly_orders", "ID")]


def test_every_pro_category_has_its_end_to_end_test():
    assert sorted([s[0] for s in SYNCED] + [f[0] for f in FULL_REFRESH]) == sorted(PRO)
    assert {f[0] for f in FULL_REFRESH} == {c.name for c in registry.PRO if c.source.mode == "full"}


@pytest.mark.parametrize(("name", "entity", "key"), FULL_REFRESH, ids=[f[0] for f in FULL_REFRESH])
def test_full_refresh_pro_categories(dags, sandbox_factory, target_db, settings_var, name, entity, key):
    server = sandbox_factory(size=400, seed=42)
    settings_var({"license": "pro", "categories": ALL_ON})
    run_dag(dags, name)
    records = getattr(server.state.division, entity)
    assert ids(target_db, name) == set(records)
    first, second = sorted(records)[:2]
    field = "Description"
    mutate(server, entity=entity, op="update", records=[{key: first, field: "Nieuwe omschrijving"}])
    mutate(server, entity=entity, op="delete", ids=[second])
    run_dag(dags, name)
    log = last_log(target_db, name)
    assert (log["inserted"], log["updated"], log["deleted"]) == (0, 1, 1)
    assert ids(target_db, name) == set(records)
    snap = snapshot(target_db, name)
    run_dag(dags, name)
    assert last_log(target_db, name)["updated"] == 0 and snapshot(target_db, name) == snap


def test_sales_order_columns_and_lines_match_exact(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=300, seed=43)
    settings_var(
        {
            "license": "pro",
            "categories": {
                "relations": {
                    "enabled": True,
                    "relation_types": ["customer"],
                    "include_inactive": True,
                    "include_blocked": True,
                },
                "sales_orders": {"enabled": True, "statuses": ["open", "partial"]},
            },
        }
    )
    run_dag(dags, "relations")
    run_dag(dags, "sales_orders")
    div = server.state.division
    headers = {h["ID"]: h for h in div.sales_order_headers.values() if h["Status"] in (12, 20)}
    got = {
        r[0]: r[1:]
        for r in target_db.query(
            "SELECT exact_id::text, order_number, customer_code, status, amount, warehouse_code, order_date "
            "FROM outsmart.sales_orders"
        )
    }
    assert set(got) == set(headers)
    for i, h in headers.items():
        acc = div.accounts[h["OrderedBy"]]
        assert got[i] == (
            h["OrderNumber"],
            acc["Code"].strip(),
            {12: "open", 20: "partial"}[h["Status"]],
            Decimal(str(h["AmountDC"])).quantize(Decimal("0.0001")),
            h["WarehouseCode"],
            h["OrderDate"],
        )
    order_ids = {h["OrderID"] for h in headers.values()}
    lines = {line["ID"] for line in div.sales_order_lines.values() if line["OrderID"] in order_ids}
    assert ids(target_db, "sales_order_lines") == lines
    filtered = last_log(target_db, "sales_orders")["filtered_out"]
    skipped_lines = sum(1 for line in div.sales_order_lines.values() if line["OrderID"] not in order_ids)
    assert filtered == len(div.sales_order_headers) - len(headers) + skipped_lines


def test_line_without_header_is_set_aside_never_loaded_half(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=200, seed=44)
    settings_var({"license": "pro", "categories": {"sales_orders": {"enabled": True}}})
    div = server.state.division
    orphan = dict(next(iter(div.sales_order_lines.values())))
    orphan.update(
        {"ID": str(uuid.uuid4()), "OrderID": str(uuid.uuid4()), "OrderNumber": 99999, "Timestamp": div.next_timestamp()}
    )
    div.sales_order_lines[orphan["ID"]] = orphan  # a line whose order Exact does not have
    run_dag(dags, "sales_orders")
    log = last_log(target_db, "sales_orders")
    assert log["status"] == "success" and log["rejected"] == 1
    reason, key = target_db.query(
        "SELECT reason, record_key FROM outsmart.import_rejects WHERE category = 'sales_orders'"
    )[0]
    assert key == orphan["ID"] and "without its header" in reason
    assert orphan["ID"] not in ids(target_db, "sales_order_lines")
    assert len(ids(target_db, "sales_order_lines")) == len(div.sales_order_lines) - 1


def test_price_agreement_columns_match_exact(dags, sandbox_factory, target_db, settings_var):
    """#14 item 1: Exact returns only the `$select`ed fields, so a column whose field is not selected stays empty
    (item code, item description and account name did, before the `$select` was derived from the registry)."""
    server = sandbox_factory(size=300, seed=45)
    settings_var(
        {
            "license": "pro",
            "categories": {
                "relations": {"enabled": True, "include_inactive": True, "include_blocked": True},
                "price_agreements": {"enabled": True},
            },
        }
    )
    run_dag(dags, "relations")
    run_dag(dags, "price_agreements")
    div = server.state.division
    agreements = {i: p for i, p in div.sales_item_prices.items() if p["Account"] is not None}
    got = {
        r[0]: r[1:]
        for r in target_db.query(
            "SELECT exact_id::text, account_exact_id::text, account_code, account_name, item_code, item_description, "
            "price, currency, min_quantity, unit, start_date, end_date FROM outsmart.price_agreements"
        )
    }
    assert set(got) == set(agreements) and agreements
    for i, p in agreements.items():
        acc = div.accounts[p["Account"]]
        customer = acc["Code"].strip() if acc["Status"] == "C" else None  # only customers are relations here
        assert got[i] == (
            p["Account"],
            customer,
            p["AccountName"],
            p["ItemCode"],
            p["ItemDescription"],
            Decimal(str(p["Price"])).quantize(Decimal("0.0001")),
            p["Currency"],
            Decimal(str(p["Quantity"])).quantize(Decimal("0.0001")),
            p["Unit"],
            p["StartDate"],
            p["EndDate"],
        ), i
    assert all(r[2] and r[3] and r[4] for r in got.values())  # never empty
