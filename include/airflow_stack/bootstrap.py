"""Create what the imports need in a new Airflow, once: the two connections, the settings Variable, the pool.

Run by `make airflow` after `airflow db migrate`, in the deployment's environment. Outside a task the ORM is
allowed, and one process does all of it (each `airflow connections add` would cost ~9 s of start-up). Anything
that exists already is left as the users made it: this never overwrites an edited connection or setting.
"""

from __future__ import annotations

import json
import sys


def bootstrap(spec: dict) -> list[str]:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    created = []
    with create_session() as session:
        for conn in spec["connections"]:
            if session.scalar(select(Connection).where(Connection.conn_id == conn["conn_id"])) is None:
                session.add(Connection(**conn))
                created.append(f"connection {conn['conn_id']}")
        var = spec["variable"]
        if session.scalar(select(Variable).where(Variable.key == var["key"])) is None:
            session.add(
                Variable(
                    key=var["key"],
                    val=var["value"],
                    description="Exact Online imports: which categories, their filters, licence, schedule",
                )
            )
            created.append(f"variable {var['key']}")
        pool = spec["pool"]
        if session.scalar(select(Pool).where(Pool.pool == pool["name"])) is None:
            session.add(
                Pool(pool=pool["name"], slots=pool["slots"], description=pool["description"], include_deferred=False)
            )
            created.append(f"pool {pool['name']} ({pool['slots']} slot)")
    return created


if __name__ == "__main__":
    made = bootstrap(json.loads(sys.argv[1]))
    print("created: " + (", ".join(made) if made else "nothing (all there from an earlier start)"), flush=True)
