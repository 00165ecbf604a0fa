"""Materials, hour types, categories, employees and payment transactions end to end (dag.test, sandbox, Postgres)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.helpers.e2e import TODAY, last_log, mutate, reset_stats, row_versions, run_dag, sandbox_stats, snapshot


def standard_price(server, item_id):
    """The expected sales price, straight from the sandbox's price records: valid today, of nobody in particular
    (no account, project or employee), in the division's currency and the item's unit."""
    div = server.state.division
    rows = [
        p
        for p in div.sales_item_prices.values()
        if p["Item"] == item_id
        and p["Account"] is None
        and p.get("Project") is None
        and p.get("Employee") is None
        and p["Currency"] == div.currency
        and p["Unit"] == div.items[item_id]["Unit"]
        and (p["StartDate"] is None or p["StartDate"] <= TODAY)
        and (p["EndDate"] is None or p["EndDate"] >= TODAY)
    ]
    if not rows:
        return None
    rows.sort(key=lambda p: (p["Quantity"], -(p["StartDate"] or dt.date.min).toordinal(), -p["Timestamp"]))
    return Decimal(str(rows[0]["Price"])).quantize(Decimal("0.0001"))


def expected_items(server, *, time_items: bool, groups: list[str]):
    return {
        i["Code"]: i
        for i in server.state.division.items.values()
        if i["IsTime"] == (1 if time_items else 0) and (not groups or i["ItemGroupCode"] in groups)
    }


@pytest.mark.parametrize("groups", [[], ["ELEK", "SAN"], ["KLEIN"]], ids=["all-groups", "two-groups", "one-group"])
def test_materials_first_load_per_item_group_filter(dags, sandbox_factory, target_db, settings_var, groups):
    server = sandbox_factory(size=800, seed=31)
    settings_var({"categories": {"materials": {"enabled": True, "item_groups": groups}}})
    run_dag(dags, "materials")
    expected = expected_items(server, time_items=False, groups=groups)
    got = {
        r[0]: r
        for r in target_db.query(
            "SELECT code, description, category_code, unit, cost_price, sales_price, barcode, is_active, "
            "exact_id::text FROM outsmart.materials"
        )
    }
    assert set(got) == set(expected) and len(expected) > 0
    for code, item in expected.items():
        r = got[code]
        active = item["EndDate"] is None or item["EndDate"] >= TODAY
        assert r[1:5] == (
            item["Description"],
            item["ItemGroupCode"],
            item["Unit"],
            Decimal(str(item["CostPriceStandard"])).quantize(Decimal("0.0001")),
        )
        assert r[5] == standard_price(server, item["ID"]) is not None
        assert (r[6], r[7], r[8]) == (item["Barcode"], active, item["ID"])
    assert last_log(target_db, "materials")["filtered_out"] == len(server.state.division.items) - len(expected)


@pytest.mark.parametrize("groups", [[], ["UREN"], ["UREN", "REIS"]], ids=["all-groups", "one-group", "two-groups"])
def test_hour_types_first_load_per_item_group_filter(dags, sandbox_factory, target_db, settings_var, groups):
    server = sandbox_factory(size=300, seed=32)
    settings_var({"categories": {"hour_types": {"enabled": True, "item_groups": groups}}})
    run_dag(dags, "hour_types")
    expected = expected_items(server, time_items=True, groups=groups)
    got = {r[0]: r for r in target_db.query("SELECT code, name, category_code, sales_price FROM outsmart.hour_types")}
    assert set(got) == set(expected) and len(expected) > 0
    for code, item in expected.items():
        assert got[code][1:3] == (item["Description"], item["ItemGroupCode"])
        assert got[code][3] == standard_price(server, item["ID"])


def test_materials_incremental_item_and_price_changes(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=600, seed=33)
    settings_var({"categories": {"materials": {"enabled": True}}})
    run_dag(dags, "materials")
    before = row_versions(target_db, "materials")
    mats = list(expected_items(server, time_items=False, groups=[]).values())
    renamed, repriced, deleted = mats[0], mats[1], mats[2]
    price_row = next(
        p
        for p in server.state.division.sales_item_prices.values()
        if p["Item"] == repriced["ID"] and p["Account"] is None and p["EndDate"] is None
    )
    mutate(server, entity="items", op="update", records=[{"ID": renamed["ID"], "Description": "Koperen knie 22mm"}])
    mutate(server, entity="sales_item_prices", op="update", records=[{"ID": price_row["ID"], "Price": 123.45}])
    mutate(server, entity="items", op="delete", ids=[deleted["ID"]])
    mutate(
        server,
        entity="items",
        op="add",
        records=[
            {"Code": "MAT-NIEUW", "Description": "Nieuw artikel", "IsTime": 0, "ItemGroupCode": "ELEK", "EndDate": None}
        ],
    )
    reset_stats(server)
    run_dag(dags, "materials")
    log = last_log(target_db, "materials")
    assert (log["fetched"], log["inserted"], log["updated"], log["unchanged"], log["deleted"]) == (2, 1, 2, 0, 1)
    assert target_db.query("SELECT description, sales_price FROM outsmart.materials WHERE code = 'MAT-NIEUW'") == [
        ("Nieuw artikel", None)
    ]  # no standard price in Exact for it (yet)
    # One page per stream; sync/Deleted once for the items and the prices (it used to be read once per type).
    assert sandbox_stats(server)["calls"] == {
        "sync/Logistics/Items": 1,
        "sync/Deleted": 1,
        "sync/Logistics/SalesItemPrices": 1,
    }
    got = {
        r[0]: r
        for r in target_db.query(
            "SELECT exact_id::text, description, sales_price, deleted_at IS NOT NULL, xmin::text "
            "FROM outsmart.materials"
        )
    }
    assert got[renamed["ID"]][1] == "Koperen knie 22mm"
    assert got[repriced["ID"]][2] == Decimal("123.4500")
    assert got[deleted["ID"]][3] is True
    touched = {renamed["ID"], repriced["ID"], deleted["ID"]}
    assert len(got) == len(before) + 1
    assert all(got[i][4] == x for i, x in before.items() if i not in touched)
    snap = snapshot(target_db, "materials")
    run_dag(dags, "materials")
    log = last_log(target_db, "materials")
    assert (log["fetched"], log["inserted"], log["updated"], log["deleted"]) == (0, 0, 0, 0)
    assert snapshot(target_db, "materials") == snap


def test_standard_price_is_never_a_project_employee_foreign_currency_or_other_unit_price(
    dags, sandbox_factory, target_db, settings_var
):
    """#14 item 6: sales item prices without an account that are still not the item's standard sales price. Each
    starts a month ago, so the newest start would win if it counted (an employee's hourly rate became the monteur
    hour type's price). The division's currency is read from Exact once and kept."""
    server = sandbox_factory(size=300, seed=36)
    settings_var({"categories": {"materials": {"enabled": True}, "hour_types": {"enabled": True}}})
    run_dag(dags, "materials")
    run_dag(dags, "hour_types")
    div = server.state.division
    special = [
        p
        for p in div.sales_item_prices.values()
        if p["Account"] is None
        and (p["Project"] or p["Employee"] or p["Currency"] != "EUR" or p["Unit"] != div.items[p["Item"]]["Unit"])
    ]
    kinds = {
        ("project" if p["Project"] else "employee" if p["Employee"] else p["Currency"] + "/" + p["Unit"])
        for p in special
    }
    assert len(special) == 4 and {"project", "employee"} <= kinds
    got = {
        **dict(target_db.query("SELECT exact_id::text, sales_price FROM outsmart.materials")),
        **dict(target_db.query("SELECT exact_id::text, sales_price FROM outsmart.hour_types")),
    }
    for p in special:
        expected = standard_price(server, p["Item"])
        assert got[p["Item"]] == expected is not None and expected != Decimal(str(p["Price"])), p
    monteur = next(i for i in div.items.values() if i["Code"] == "UUR-MONTEUR")
    assert target_db.scalar("SELECT sales_price FROM outsmart.hour_types WHERE code = 'UUR-MONTEUR'") == (
        standard_price(server, monteur["ID"])
    )
    run_dag(dags, "materials")
    assert sandbox_stats(server)["calls"]["system/Divisions"] == 1  # three runs, one call: read once, kept
    assert target_db.query("SELECT currency FROM outsmart.exact_divisions") == [("EUR",)]


def test_categories_full_refresh_soft_deletes_what_disappears(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=50)
    settings_var({"categories": {"categories": {"enabled": True}}})
    run_dag(dags, "categories")
    groups = {g["Code"]: g for g in server.state.division.item_groups.values()}
    got = {r[0]: r[1:] for r in target_db.query("SELECT code, description, is_default FROM outsmart.categories")}
    assert got == {c: (g["Description"], g["IsDefault"]) for c, g in groups.items()}
    mutate(
        server,
        entity="item_groups",
        op="update",
        records=[{"ID": groups["SAN"]["ID"], "Description": "Sanitair & tegels"}],
    )
    mutate(server, entity="item_groups", op="delete", ids=[groups["OVERIG"]["ID"]])
    mutate(
        server, entity="item_groups", op="add", records=[{"Code": "DAK", "Description": "Dakwerk", "IsDefault": False}]
    )
    reset_stats(server)
    run_dag(dags, "categories")
    log = last_log(target_db, "categories")
    # Exact has no sync endpoint for item groups: the stream is read in full (8 groups, and the one that disappeared
    # becomes a tombstone), but the category takes in only what changed in the landed copy: 2 records, 1 deletion.
    assert (log["fetched"], log["inserted"], log["updated"], log["unchanged"], log["deleted"]) == (2, 1, 1, 0, 1)
    streams = target_db.scalar(
        "SELECT streams FROM outsmart.import_log WHERE category = 'categories' ORDER BY id DESC LIMIT 1"
    )
    assert streams == [
        {"stream": "logistics/ItemGroups", "action": "full_read", "api_calls": 1, "records": 8, "landed": 3}
    ]
    assert sandbox_stats(server)["calls"] == {"logistics/ItemGroups": 1}
    rows = dict(target_db.query("SELECT code, deleted_at IS NOT NULL FROM outsmart.categories"))
    assert rows["OVERIG"] is True and rows["SAN"] is False and rows["DAK"] is False
    snap = snapshot(target_db, "categories")
    run_dag(dags, "categories")
    assert last_log(target_db, "categories")["updated"] == 0 and snapshot(target_db, "categories") == snap


@pytest.mark.parametrize("include_inactive", [False, True])
def test_employees(dags, sandbox_factory, target_db, settings_var, include_inactive):
    server = sandbox_factory(size=1000, seed=34)
    settings_var({"categories": {"employees": {"enabled": True, "include_inactive": include_inactive}}})
    run_dag(dags, "employees")
    emps = server.state.division.employees.values()
    expected = {
        e["Code"]
        for e in emps
        if include_inactive or (e["IsActive"] and (e["EndDate"] is None or e["EndDate"] >= TODAY))
    }
    got = {
        r[0]: r
        for r in target_db.query(
            "SELECT code, first_name, last_name, full_name, email, is_active, exact_id::text FROM outsmart.employees"
        )
    }
    assert set(got) == expected and 0 < len(expected)
    assert include_inactive == (len(expected) == len(emps))
    e = next(iter(emps))
    if e["Code"] in got:
        assert got[e["Code"]][1] == e["FirstName"] and got[e["Code"]][3] == e["FullName"]
    # #14 item 7: the business phone and mobile, never the private Mobile or Phone.
    numbers = {r[0]: (r[1], r[2]) for r in target_db.query("SELECT code, phone, mobile FROM outsmart.employees")}
    assert numbers == {x["Code"]: (x["BusinessPhone"], x["BusinessMobile"]) for x in emps if x["Code"] in got}
    assert any(p is None and m for p, m in numbers.values())  # some have only a business mobile
    assert all(x["Mobile"] for x in emps)  # ...and a private one, which is not imported
    loaded = [x for x in emps if x["Code"] in got][:2]
    mutate(
        server, entity="employees", op="update", records=[{"ID": loaded[0]["ID"], "BusinessEmail": "nieuw@example.nl"}]
    )
    mutate(server, entity="employees", op="delete", ids=[loaded[1]["ID"]])
    mutate(
        server,
        entity="employees",
        op="add",
        records=[
            {
                "Code": "999",
                "FirstName": "Fleur",
                "MiddleName": None,
                "LastName": "Visser",
                "FullName": "Fleur Visser",
                "IsActive": True,
                "EndDate": None,
            }
        ],
    )
    run_dag(dags, "employees")
    log = last_log(target_db, "employees")
    assert (log["fetched"], log["inserted"], log["updated"], log["deleted"]) == (2, 1, 1, 1)
    assert target_db.query("SELECT full_name, is_active FROM outsmart.employees WHERE code = '999'") == [
        ("Fleur Visser", True)
    ]
    assert (
        target_db.scalar("SELECT email FROM outsmart.employees WHERE code = %s", (loaded[0]["Code"],))
        == "nieuw@example.nl"
    )
    snap = snapshot(target_db, "employees")
    run_dag(dags, "employees")
    assert last_log(target_db, "employees")["fetched"] == 0 and snapshot(target_db, "employees") == snap


@pytest.mark.parametrize("only_open", [False, True])
def test_payment_transactions(dags, sandbox_factory, target_db, settings_var, only_open):
    server = sandbox_factory(size=700, seed=35)
    settings_var({"categories": {"payment_transactions": {"enabled": True, "only_open": only_open}}})
    run_dag(dags, "payment_transactions")
    terms = server.state.division.payment_terms.values()
    expected = {t["ID"]: t for t in terms if t["LineType"] == 20 and (not only_open or not t["IsFullyPaid"])}
    got = {
        r[0]: r
        for r in target_db.query(
            "SELECT exact_id::text, invoice_number, account_code, amount, currency, is_fully_paid, status, due_date "
            "FROM outsmart.payment_transactions"
        )
    }
    assert set(got) == set(expected)
    assert any(t["IsFullyPaid"] for t in expected.values()) != only_open
    assert any(t["Status"] == 30 for t in expected.values())  # partly paid ones are there
    for i, t in expected.items():
        assert got[i][1:] == (
            t["InvoiceNumber"],
            t["AccountCode"].strip(),
            Decimal(str(t["AmountDC"])).quantize(Decimal("0.0001")),
            "EUR",
            t["IsFullyPaid"],
            {20: "open", 30: "selected", 50: "matched"}[t["Status"]],
            t["DueDate"],
        )
    open_one = next(t for t in expected.values() if not t["IsFullyPaid"])
    gone = next(t for t in expected.values() if t["ID"] != open_one["ID"])
    mutate(
        server, entity="payment_terms", op="update", records=[{"ID": open_one["ID"], "IsFullyPaid": True, "Status": 50}]
    )
    mutate(server, entity="payment_terms", op="delete", ids=[gone["ID"]])
    mutate(
        server,
        entity="payment_terms",
        op="add",
        records=[{"LineType": 20, "InvoiceNumber": 27000001, "IsFullyPaid": False, "Status": 20}],
    )
    run_dag(dags, "payment_transactions")
    log = last_log(target_db, "payment_transactions")
    # With only_open, a receivable that got paid no longer passes the filter, but it is updated, not dropped.
    assert (log["fetched"], log["inserted"], log["updated"], log["deleted"]) == (2, 1, 1, 1)
    assert target_db.scalar("SELECT count(*) FROM outsmart.payment_transactions WHERE invoice_number = 27000001") == 1
    assert target_db.query(
        "SELECT is_fully_paid, status FROM outsmart.payment_transactions WHERE exact_id = %s", (open_one["ID"],)
    ) == [(True, "matched")]
    snap = snapshot(target_db, "payment_transactions")
    run_dag(dags, "payment_transactions")
    assert last_log(target_db, "payment_transactions")["fetched"] == 0
    assert snapshot(target_db, "payment_transactions") == snap
