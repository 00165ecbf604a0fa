"""A 15th category is one registry entry plus its one rule: suppliers, over the accounts the sandbox already serves.

The test runs the real DAG file in its own process whose registry is a copy of ours with one entry added (as a
deployment with that entry would have it) and imports the new category end to end against the sandbox and
Postgres: the DAG, the settings key, the target table, the `$select`, the watermark, the merge all come from the
entry. No other file of the project knows about suppliers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from include.outsmart_import.registry import Category, Source, TableSpec, _audit, code, flag, text

pytestmark = pytest.mark.e2e


# ---- the whole addition: one entry and one rule -------------------------------------------------------------------
def only_suppliers(rows, settings, today):
    """The category's one rule: an account is imported only when it is a supplier."""
    rows.frame["passes_filter"] = rows.read(flag("is_supplier", "IsSupplier", False)).astype(bool)


SUPPLIERS = Category(
    name="suppliers",
    title="Suppliers (Exact accounts that are suppliers)",
    pro=False,
    source=Source("sync/CRM/Accounts", "sync", deleted_entity_type=2, rule_fields=("IsSupplier",)),
    table=TableSpec(
        "suppliers",
        _audit(
            code("code", "Code", 50, required=True),
            text("name", "Name", required=True),
            text("email", "Email"),
            text("city", "City"),
            code("vat_number", "VATNumber"),
        ),
    ),
    rules=only_suppliers,
    doc="Exact accounts with IsSupplier, whatever their relation type.",
)


# ---------------------------------------------------------------------------------------------------------------------
def _run_in_own_process(home: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, str(home)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def test_a_fifteenth_category_is_one_registry_entry(sandbox_factory, target_db, settings_var, tmp_path, figure):
    from include.outsmart_import.registry import CATEGORIES

    assert "suppliers" not in CATEGORIES  # the project itself does not have it
    server = sandbox_factory()
    settings_var({"schedule": "0 6 * * *", "categories": {"suppliers": {"enabled": True}}})
    accounts = server.state.division.accounts
    suppliers = {a["Code"].strip(): a for a in accounts.values() if a["IsSupplier"]}
    assert 0 < len(suppliers) < len(accounts)

    first = _run_in_own_process(tmp_path / "airflow")
    assert first["state"] == "success", first
    assert first["dag_count"] == len(CATEGORIES) + 1 and first["schedule"] == "0 6 * * *", first
    # sync/CRM/Accounts is announced by the Accounts topic, declared by relations: the new entry inherits it
    assert first["events"] == "AssetOrTimeSchedule", first
    assert first["select"] == ["ID", "Code", "Name", "Email", "City", "VATNumber", "IsSupplier", "Timestamp"]
    rows = dict(target_db.query("SELECT code, name FROM outsmart.suppliers WHERE deleted_at IS NULL"))
    assert rows == {c: a["Name"].strip() for c, a in suppliers.items()}
    assert target_db.scalar("SELECT count(*) FROM outsmart.relations") == 0  # only the enabled category ran

    # Exact changes one supplier and deletes another: the next run updates one row and soft-deletes one.
    renamed, gone = sorted(suppliers)[:2]
    for body in (
        {"op": "update", "records": [{"ID": suppliers[renamed]["ID"], "Name": "Leverancier BV (nieuw)"}]},
        {"op": "delete", "ids": [suppliers[gone]["ID"]]},
    ):
        requests.post(
            server.url + "/_sandbox/mutate", json={"entity": "accounts", **body}, timeout=10
        ).raise_for_status()
    second = _run_in_own_process(tmp_path / "airflow")
    assert second["state"] == "success", second
    log = target_db.query(
        "SELECT status, inserted, updated, deleted, watermark_before IS NOT NULL FROM outsmart.import_log "
        "WHERE category = 'suppliers' ORDER BY id"
    )
    assert log[0][:2] == ("success", len(suppliers)) and log[1] == ("success", 0, 1, 1, True), log
    assert (
        target_db.scalar("SELECT name FROM outsmart.suppliers WHERE code = %s", (renamed,)) == "Leverancier BV (nieuw)"
    )
    assert target_db.scalar("SELECT deleted_at IS NOT NULL FROM outsmart.suppliers WHERE code = %s", (gone,))
    figure(
        f"suppliers: one registry entry + one rule; run 1 inserted {log[0][1]} of {len(accounts)} accounts, "
        f"run 2 (incremental) updated 1, deleted 1"
    )


if __name__ == "__main__":
    # A deployment whose registry has the entry: the copy is made before anything else reads the registry.
    from include import local_airflow

    home = Path(sys.argv[1])
    local_airflow.configure(home)
    from include.outsmart_import import registry

    registry.CATEGORIES = {**registry.CATEGORIES, SUPPLIERS.name: SUPPLIERS}
    if not (home / "airflow.db").exists():
        local_airflow.init_db()
    dags = local_airflow.load_dags()
    dag = dags[SUPPLIERS.dag_id]
    dr = dag.test()
    print(
        "RESULT "
        + json.dumps(
            {
                "state": str(dr.state),
                "tasks": {ti.task_id: str(ti.state) for ti in dr.get_task_instances()},
                "dag_count": len(dags),
                # its cron; the stream it reads has a webhook topic (#22), so the cron OR its events
                "schedule": getattr(getattr(dag.timetable, "timetable", dag.timetable), "expression", None),
                "events": type(dag.timetable).__name__,
                "select": list(registry.CATEGORIES[SUPPLIERS.name].source.select),
            }
        ),
        flush=True,
    )
