"""The relations DAG end to end: real Airflow (dag.test), the Exact sandbox over HTTP, real PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from tests.helpers.e2e import TODAY, log_rows, mutate, reset_stats, run_dag, sandbox_stats


def expected_codes(server, relation_types=("customer",), include_inactive=False, include_blocked=False) -> set[str]:
    """What should be imported, computed straight from the sandbox's records (independently of the transform)."""
    status_of = {"customer": "C", "prospect": "P", "suspect": "S", "none": "A"}
    wanted = {status_of[t] for t in relation_types if t in status_of}
    out = set()
    for a in server.state.division.accounts.values():
        if a["Type"] == "D":  # the division's own account: never a relation
            continue
        type_ok = a["Status"] in wanted or ("supplier" in relation_types and a["IsSupplier"])
        active = (a["EndDate"] is None or a["EndDate"] >= TODAY) and (a["StartDate"] is None or a["StartDate"] <= TODAY)
        if type_ok and (include_inactive or active) and (include_blocked or not a["Blocked"]):
            out.add(a["Code"].strip())
    return out


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"relation_types": ["customer", "prospect"]},
        {"relation_types": ["suspect", "none"]},
        {"relation_types": ["supplier"]},
        {"include_inactive": True},
        {"include_blocked": True},
        {
            "relation_types": ["customer", "prospect", "suspect", "none", "supplier"],
            "include_inactive": True,
            "include_blocked": True,
        },
    ],
    ids=["default", "customer+prospect", "suspect+none", "supplier", "inactive", "blocked", "everything"],
)
def test_first_run_loads_exactly_the_accounts_that_pass(dags, sandbox_factory, target_db, settings_var, filters):
    server = sandbox_factory(size=1500, seed=11)
    settings_var({"categories": {"relations": {"enabled": True, **filters}}})
    run_dag(dags, "relations")
    codes = {r[0] for r in target_db.query("SELECT code FROM outsmart.relations")}
    expected = expected_codes(server, **filters)
    assert codes == expected and len(expected) > 0
    accounts = len(server.state.division.accounts)  # 1,500 generated, and the division's own account
    log = log_rows(target_db)[-1]
    assert log["status"] == "success" and log["fetched"] == accounts == 1501 and log["inserted"] == len(expected)
    assert log["filtered_out"] == accounts - len(expected) and log["rejected"] == 0


def test_columns_hold_trimmed_exact_values(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=300, seed=5)
    settings_var(
        {
            "categories": {
                "relations": {
                    "enabled": True,
                    "include_inactive": True,
                    "include_blocked": True,
                    "relation_types": ["customer", "prospect", "suspect", "none"],
                }
            }
        }
    )
    run_dag(dags, "relations")
    got = {
        r[0]: r
        for r in target_db.query(
            "SELECT exact_id::text, code, name, relation_type, is_blocked, is_active, email, phone, address_line1, "
            "postcode, city, country, vat_number, coc_number, exact_timestamp, deleted_at FROM outsmart.relations"
        )
    }
    assert len(got) == 300  # every generated account; not the division's own one (Type 'D')
    for a in server.state.division.accounts.values():
        if a["Type"] == "D":
            assert a["ID"] not in got
            continue
        r = got[a["ID"]]
        active = (a["EndDate"] is None or a["EndDate"] >= TODAY) and a["StartDate"] <= TODAY
        assert r[1:] == (
            a["Code"].strip(),
            a["Name"],
            {"C": "customer", "P": "prospect", "S": "suspect", "A": "none"}[a["Status"]],
            a["Blocked"],
            active,
            a["Email"],
            a["Phone"],
            a["AddressLine1"],
            a["Postcode"],
            a["City"],
            a["Country"].strip(),
            a["VATNumber"],
            a["ChamberOfCommerce"],
            a["Timestamp"],
            None,
        )


def test_incremental_run_updates_inserts_soft_deletes_and_leaves_the_rest(
    dags, sandbox_factory, target_db, settings_var
):
    server = sandbox_factory(size=2500, seed=21)
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations")
    first = {r[0]: r[1] for r in target_db.query("SELECT code, xmin::text FROM outsmart.relations")}
    loaded = [a for a in server.state.division.accounts.values() if a["Code"].strip() in first]
    to_rename, to_block, to_delete = loaded[:5], loaded[5:7], loaded[7:10]
    mutate(
        server,
        entity="accounts",
        op="update",
        records=[{"ID": a["ID"], "Name": a["Name"] + " (nieuw)"} for a in to_rename],
    )
    mutate(server, entity="accounts", op="update", records=[{"ID": a["ID"], "Blocked": True} for a in to_block])
    mutate(server, entity="accounts", op="add", records=[{"Status": "C", "Blocked": False, "EndDate": None}] * 4)
    mutate(server, entity="accounts", op="delete", ids=[a["ID"] for a in to_delete])
    reset_stats(server)

    run_dag(dags, "relations")
    log = log_rows(target_db)[-1]
    assert (log["fetched"], log["inserted"], log["updated"], log["deleted"]) == (11, 4, 7, 3)
    assert log["watermark_before"] < log["watermark_after"]
    # The Sync API: one page of changes per stream (the accounts, their addresses and contact persons) and one of
    # deletions, not a re-read of 2,500 accounts.
    calls = sandbox_stats(server)["calls"]
    assert calls == {"sync/CRM/Accounts": 1, "sync/CRM/Addresses": 1, "sync/CRM/Contacts": 1, "sync/Deleted": 1}
    after = {
        r[0]: r
        for r in target_db.query(
            "SELECT code, xmin::text, name, is_blocked, deleted_at IS NOT NULL FROM outsmart.relations"
        )
    }
    for a in to_rename:
        assert after[a["Code"].strip()][2].endswith(" (nieuw)")
    for a in to_block:
        assert after[a["Code"].strip()][3] is True  # no longer passes the filter: kept, flag updated
    for a in to_delete:
        assert after[a["Code"].strip()][4] is True  # soft delete
    touched = {a["Code"].strip() for a in to_rename + to_block + to_delete}
    untouched = set(first) - touched
    assert all(after[c][1] == first[c] for c in untouched)  # same row version: not rewritten
    assert len(after) == len(first) + 4
    assert after.keys() - first.keys() == expected_codes(server) - first.keys()

    snapshot = target_db.query("SELECT code, xmin::text, name, deleted_at FROM outsmart.relations ORDER BY code")
    run_dag(dags, "relations")
    log = log_rows(target_db)[-1]
    assert (log["fetched"], log["inserted"], log["updated"], log["deleted"]) == (0, 0, 0, 0)
    assert (
        target_db.query("SELECT code, xmin::text, name, deleted_at FROM outsmart.relations ORDER BY code") == snapshot
    )


def test_full_refresh_param_rereads_everything(dags, sandbox_factory, target_db, settings_var):
    server = sandbox_factory(size=1200, seed=3)
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations")
    reset_stats(server)
    run_dag(dags, "relations", full_refresh=True)
    log = log_rows(target_db)[-1]
    assert log["fetched"] == 1201 and log["inserted"] == 0 and log["updated"] == 0  # 1,200 and the division's
    assert sandbox_stats(server)["calls"]["sync/CRM/Accounts"] == 2


def test_dry_run_changes_nothing(dags, sandbox_factory, target_db, settings_var):
    sandbox_factory(size=400)
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations", dry_run=True)
    assert target_db.scalar("SELECT count(*) FROM outsmart.relations") == 0
    assert target_db.query("SELECT * FROM outsmart.import_state") == []
    log = log_rows(target_db)[-1]
    assert log["status"] == "dry_run" and log["inserted"] > 0


def test_bad_settings_fail_naming_the_key(dags, sandbox_factory, target_db, settings_var, capfd):
    server = sandbox_factory(size=10)
    settings_var({"categories": {"relations": {"enabled": True, "relation_types": ["klant"]}}})
    _, states = run_dag(dags, "relations", expect="failed")
    assert states["check_settings"] == "failed"
    out = capfd.readouterr()
    assert "categories.relations.relation_types[0]" in out.out + out.err
    assert sandbox_stats(server)["calls"] == {}


def test_disabled_category_skips_without_calling_exact(dags, sandbox_factory, target_db, settings_var, capfd, caplog):
    server = sandbox_factory(size=10)
    settings_var({"categories": {"relations": {"enabled": False}}})
    _, states = run_dag(dags, "relations", expect=None)
    assert states["check_settings"] == "skipped" and states["import_relations"] == "skipped"
    assert "is disabled" in "".join(capfd.readouterr()) + caplog.text  # logged, so in the task log's main group
    assert sandbox_stats(server)["calls"] == {} and sandbox_stats(server)["token_calls"] == {}


def test_pro_category_without_pro_licence_is_skipped_not_failed(
    dags, sandbox_factory, target_db, settings_var, capfd, caplog
):
    # The schedule leaves unlicensed categories out; a manual trigger is told why, without turning the DAG red.
    server = sandbox_factory(size=10)
    settings_var({"license": "standard", "categories": {"sales_orders": {"enabled": True}}})
    _, states = run_dag(dags, "sales_orders")
    assert states["check_settings"] == "skipped"
    assert "needs Exact Online Pro" in "".join(capfd.readouterr()) + caplog.text
    assert sandbox_stats(server)["calls"] == {} and sandbox_stats(server)["token_calls"] == {}


def test_the_divisions_own_account_is_never_a_relation(dags, sandbox_factory, target_db, settings_var, monkeypatch):
    """#14 item 5: Exact lists the administration itself among the accounts (Type 'D', Status 'A'). Whatever the
    relation types, it is not imported; a row an older version imported (with relation_types "none") is kept and
    updated like any row that stops passing a filter: OutSmart may have work orders on it (internal jobs)."""
    from include.outsmart_import.registry import CATEGORIES

    server = sandbox_factory(size=200, seed=12)
    own = next(a for a in server.state.division.accounts.values() if a["Type"] == "D")
    assert own["Status"] == "A" and {a["Type"] for a in server.state.division.accounts.values()} == {"A", "D"}
    everything = ["customer", "prospect", "suspect", "none", "supplier"]
    settings_var(
        {
            "categories": {
                "relations": {
                    "enabled": True,
                    "relation_types": everything,
                    "include_inactive": True,
                    "include_blocked": True,
                }
            }
        }
    )
    run_dag(dags, "relations")
    assert own["Code"].strip() not in {r[0] for r in target_db.query("SELECT code FROM outsmart.relations")}
    assert log_rows(target_db)[-1]["filtered_out"] == 1

    # An older version, without the rule, imported it (into a fresh database: that is all it ever imported).
    with target_db.connect() as conn:
        conn.execute("DROP SCHEMA outsmart CASCADE")
    settings_var({"categories": {"relations": {"enabled": True, "relation_types": ["none"]}}})
    relations = CATEGORIES["relations"]

    def older_version(rows, settings, today):
        relations.rules(rows, settings, today)
        rows.frame["passes_filter"] |= (rows.field("Type") == "D").to_numpy()

    # The registry holds the rule itself: the older version is the same entry with the older rule.
    monkeypatch.setitem(CATEGORIES, "relations", dataclasses.replace(relations, rules=older_version))
    run_dag(dags, "relations")
    monkeypatch.setitem(CATEGORIES, "relations", relations)
    code = own["Code"].strip()
    assert target_db.query("SELECT name, deleted_at FROM outsmart.relations WHERE code = %s", (code,)) == [
        (own["Name"], None)
    ]
    mutate(server, entity="accounts", op="update", records=[{"ID": own["ID"], "Name": "Installatiebedrijf Nieuw B.V."}])
    run_dag(dags, "relations")
    run_dag(dags, "relations", full_refresh=True)  # a full refresh does not remove it either
    assert target_db.query("SELECT name, deleted_at FROM outsmart.relations WHERE code = %s", (code,)) == [
        ("Installatiebedrijf Nieuw B.V.", None)
    ]
