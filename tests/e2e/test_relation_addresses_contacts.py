"""Relations with their addresses and contact persons (issue #14), end to end: dag.test, the sandbox, Postgres.

OutSmart plans work at an address and calls a contact person: both come with the relations, in the same
transaction, only for relations that pass the relations filter."""

from __future__ import annotations

from tests.helpers.e2e import mutate, reset_stats, run_dag, sandbox_stats

ADDRESS_TYPE = {1: "visit", 2: "postal", 3: "invoice", 4: "delivery"}


def relations(db) -> dict[str, str]:
    """{Exact ID: code} of the relations in OutSmart."""
    return dict(db.query("SELECT exact_id::text, code FROM outsmart.relations"))


def addresses(db) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in db.query(
            "SELECT exact_id::text, account_exact_id::text, relation_code, address_type, is_main, address_line1, "
            "postcode, city, deleted_at IS NULL, xmin::text FROM outsmart.relation_addresses"
        )
    }


def contacts(db) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in db.query(
            "SELECT exact_id::text, account_exact_id::text, relation_code, full_name, email, phone, mobile, "
            "is_main_contact, is_active, deleted_at IS NULL, xmin::text FROM outsmart.relation_contacts"
        )
    }


def related(db) -> dict:
    return db.scalar("SELECT related FROM outsmart.import_log ORDER BY id DESC LIMIT 1")


def test_addresses_and_contacts_come_with_the_relations_that_pass(
    dags, sandbox_factory, target_db, settings_var, figure
):
    server = sandbox_factory(size=600, seed=51)
    div = server.state.division
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations")
    rels = relations(target_db)
    got_a, got_c = addresses(target_db), contacts(target_db)
    want_a = {i: a for i, a in div.addresses.items() if a["Account"] in rels}
    want_c = {i: c for i, c in div.contacts.items() if c["Account"] in rels}
    # Every address and contact of an imported relation, and none of the accounts the filter left out.
    assert set(got_a) == set(want_a) and set(got_c) == set(want_c) and want_a and want_c
    assert len(div.addresses) > len(want_a) and len(div.contacts) > len(want_c)
    for i, a in want_a.items():
        assert got_a[i][:8] == (
            a["Account"],
            rels[a["Account"]],
            ADDRESS_TYPE[a["Type"]],
            a["Main"],
            a["AddressLine1"],
            a["Postcode"],
            a["City"],
            True,
        )
    for i, c in want_c.items():
        active = c["EndDate"] is None or c["EndDate"] >= dt_today()
        assert got_c[i][:9] == (
            c["Account"],
            rels[c["Account"]],
            c["FullName"],
            c["Email"],
            c["Phone"],
            c["BusinessMobile"],
            c["IsMainContact"],
            active,
            True,
        )
    assert sum(1 for c in want_c.values() if c["BusinessMobile"] and not c["Phone"]) > 0  # reachable on mobile only
    first = related(target_db)
    assert first["relation_addresses"]["inserted"] == len(want_a)
    assert first["relation_addresses"]["filtered_out"] == len(div.addresses) - len(want_a)
    assert first["relation_contacts"]["inserted"] == len(want_c)
    # The relation itself has its other address lines and website too.
    acc = next(a for a in div.accounts.values() if a["ID"] in rels and a.get("AddressLine2"))
    assert target_db.query(
        "SELECT address_line2, website FROM outsmart.relations WHERE exact_id = %s", (acc["ID"],)
    ) == [(acc["AddressLine2"], acc.get("Website"))]

    # Incremental: an address changed, a contact added, another deleted.
    address = next(iter(want_a.values()))
    gone = next(iter(want_c.values()))
    owner = next(a for a in div.accounts.values() if a["ID"] in rels and a["ID"] != gone["Account"])
    mutate(server, entity="addresses", op="update", records=[{"ID": address["ID"], "City": "Zwolle"}])
    mutate(
        server,
        entity="contacts",
        op="add",
        records=[{"Account": owner["ID"], "FullName": "Fatima el Amrani", "IsMainContact": False, "EndDate": None}],
    )
    mutate(server, entity="contacts", op="delete", ids=[gone["ID"]])
    reset_stats(server)
    before_a, before_c = addresses(target_db), contacts(target_db)
    run_dag(dags, "relations")
    counts = related(target_db)
    assert (counts["relation_addresses"]["updated"], counts["relation_addresses"]["inserted"]) == (1, 0)
    assert (counts["relation_contacts"]["inserted"], counts["relation_contacts"]["deleted"]) == (1, 1)
    after_a, after_c = addresses(target_db), contacts(target_db)
    assert after_a[address["ID"]][6] == "Zwolle"
    assert after_c[gone["ID"]][8] is False  # soft-deleted
    added = [i for i in after_c if i not in before_c]
    assert len(added) == 1 and after_c[added[0]][1:3] == (rels[owner["ID"]], "Fatima el Amrani")
    # Nothing else was rewritten.
    assert all(after_a[i][-1] == v[-1] for i, v in before_a.items() if i != address["ID"])
    assert all(after_c[i][-1] == v[-1] for i, v in before_c.items() if i != gone["ID"])
    assert sandbox_stats(server)["calls"] == {
        "sync/CRM/Accounts": 1,
        "sync/CRM/Addresses": 1,
        "sync/CRM/Contacts": 1,
        "sync/Deleted": 1,
    }

    # No change: nothing rewritten.
    snap = (addresses(target_db), contacts(target_db))
    run_dag(dags, "relations")
    assert (addresses(target_db), contacts(target_db)) == snap
    assert all(c["inserted"] == c["updated"] == c["deleted"] == 0 for c in related(target_db).values())

    # A prospect that becomes a customer brings its addresses and contacts, which did not change in Exact; a
    # customer that is blocked (leaves the filter) keeps its own, as the relation itself is kept.
    prospect = next(
        a
        for a in div.accounts.values()
        if a["Status"] == "P"
        and not a["Blocked"]
        and a["EndDate"] is None
        and any(x["Account"] == a["ID"] for x in div.addresses.values())
        and any(x["Account"] == a["ID"] for x in div.contacts.values())
    )
    blocked = next(a for a in div.accounts.values() if a["ID"] in rels and a["ID"] != gone["Account"])
    mutate(server, entity="accounts", op="update", records=[{"ID": prospect["ID"], "Status": "C"}])
    mutate(server, entity="accounts", op="update", records=[{"ID": blocked["ID"], "Blocked": True}])
    run_dag(dags, "relations")
    now_a, now_c = addresses(target_db), contacts(target_db)
    assert {i for i, a in div.addresses.items() if a["Account"] == prospect["ID"]} <= set(now_a)
    assert {i for i, c in div.contacts.items() if c["Account"] == prospect["ID"]} <= set(now_c)
    kept = [v for v in now_a.values() if v[0] == blocked["ID"]]
    assert kept and all(v[7] for v in kept)  # still there, not deleted
    figure(
        f"600 accounts, {len(rels)} relations pass: {len(want_a)} of {len(div.addresses)} addresses and "
        f"{len(want_c)} of {len(div.contacts)} contacts loaded; incremental: 1 address updated, 1 contact added, "
        f"1 deleted, in 4 API calls; no-change run rewrote nothing; a prospect turned customer brought its "
        f"addresses and contacts"
    )


def test_addresses_and_contacts_can_be_switched_off(dags, sandbox_factory, target_db, settings_var):
    sandbox_factory(size=200, seed=52)
    settings_var({"categories": {"relations": {"enabled": True, "include_contacts": False}}})
    run_dag(dags, "relations")
    assert target_db.scalar("SELECT count(*) FROM outsmart.relation_addresses") > 0
    assert target_db.scalar("SELECT count(*) FROM outsmart.relation_contacts") == 0
    streams = target_db.scalar("SELECT streams FROM outsmart.import_log ORDER BY id DESC LIMIT 1")
    assert "sync/CRM/Contacts" not in {s["stream"] for s in streams}  # not even read from Exact
    # Switched on again: the contacts come in from Exact without touching the relations.
    settings_var({"categories": {"relations": {"enabled": True}}})
    run_dag(dags, "relations")
    assert target_db.scalar("SELECT count(*) FROM outsmart.relation_contacts") > 0
    assert target_db.scalar("SELECT derive FROM outsmart.import_log ORDER BY id DESC LIMIT 1") == (
        "full: settings changed"
    )


def dt_today():
    from tests.helpers.e2e import TODAY

    return TODAY
