"""The demo's changes in Exact between run 1 and run 2, through the sandbox's control API; `make demo` and
`make bench` (bench/streams.py) apply exactly these, so their second rounds see the same changes."""

from __future__ import annotations

import requests

DESCRIPTION = (
    "40 accounts edited, 12 customers added, 7 deleted; 5 items edited, 1 deleted, 1 sales price changed; "
    "10 invoices paid; 1 employee and 1 item group edited"
)


def apply_demo_mutations(url: str) -> str:
    """Edits, new customers, deletions, a price change, paid invoices, an employee and an item group, in the
    sandbox at `url`. Returns what changed, in words."""

    def records(entity: str) -> list[dict]:
        return requests.post(url + "/_sandbox/records", json={"entity": entity}, timeout=30).json()["records"]

    def mutate(body: dict) -> None:
        requests.post(url + "/_sandbox/mutate", json=body, timeout=30).raise_for_status()

    customers = [a for a in records("accounts") if a["Status"] == "C" and not a["Blocked"]]
    mutate({"entity": "accounts", "op": "update", "records": [{"ID": a["ID"]} for a in customers[:40]]})
    mutate({"entity": "accounts", "op": "add", "records": [{"Status": "C", "Blocked": False, "EndDate": None}] * 12})
    mutate({"entity": "accounts", "op": "delete", "ids": [a["ID"] for a in customers[40:47]]})
    items = [i for i in records("items") if i["IsTime"] == 0]
    mutate(
        {
            "entity": "items",
            "op": "update",
            "records": [{"ID": i["ID"], "Description": i["Description"] + " (nieuw)"} for i in items[:5]],
        }
    )
    mutate({"entity": "items", "op": "delete", "ids": [items[5]["ID"]]})
    price = next(p for p in records("sales_item_prices") if p["Item"] == items[6]["ID"] and p["EndDate"] is None)
    mutate({"entity": "sales_item_prices", "op": "update", "records": [{"ID": price["ID"], "Price": 99.95}]})
    open_terms = [t for t in records("payment_terms") if t["LineType"] == 20 and not t["IsFullyPaid"]]
    mutate(
        {
            "entity": "payment_terms",
            "op": "update",
            "records": [{"ID": t["ID"], "IsFullyPaid": True, "Status": 50} for t in open_terms[:10]],
        }
    )
    employee = next(iter(records("employees")))
    mutate({"entity": "employees", "op": "update", "records": [{"ID": employee["ID"], "BusinessPhone": "010-7654321"}]})
    group = next(g for g in records("item_groups") if g["Code"] == "OVERIG")
    mutate(
        {"entity": "item_groups", "op": "update", "records": [{"ID": group["ID"], "Description": "Overige artikelen"}]}
    )
    return DESCRIPTION
