"""Load benchmark: our merge loader against the baselines users would otherwise pick, same data, same machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
import uuid

import pandas as pd
import psycopg

from include.outsmart_import.database import copy_frame
from include.outsmart_import.enrichment import MergeContext
from include.outsmart_import.merge import CategoryLoad
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.schema import ensure_schema
from include.outsmart_import.target_db import conninfo_from_airflow_json

REL = CATEGORIES["relations"]
COLS = REL.table.column_names
TRICKY = ["", 'D\'Hondt; "Sanitair" \\ B.V.', "regel\r\nnieuw", "tab\there", "Zoë Çelik", None]


def make_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "code": str(100000 + i),
                "name": f"Klant {i} {rng.choice(TRICKY) or ''}",
                "relation_type": rng.choice(["customer", "prospect"]),
                "is_supplier": rng.random() < 0.1,
                "is_blocked": rng.random() < 0.05,
                "is_active": rng.random() < 0.9,
                "email": rng.choice([f"info{i}@example.nl", "", None]),
                "phone": rng.choice(["010-1234567", None]),
                "address_line1": f"Kerkstraat {i % 300}",
                "postcode": "1011 AB",
                "city": rng.choice(["Ede", "'s-Hertogenbosch"]),
                "country": "NL",
                "vat_number": None,
                "coc_number": str(10000000 + i),
                "start_date": pd.Timestamp("2020-01-01").date(),
                "end_date": None,
                "address_line2": rng.choice(["Unit 4", None, None]),
                "address_line3": None,
                "website": rng.choice([f"www.klant{i}.nl", None]),
                "exact_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "exact_timestamp": 1000 + i,
                "passes_filter": True,
            }
        )
    df = pd.DataFrame(rows)
    # The dtypes the transform gives: text columns (from the registry's declaration) and the Exact ID as strings.
    for c in [col.name for col in REL.table.columns if col.sql_type == "text"] + ["exact_id"]:
        df[c] = df[c].astype("string")
    for c in ("is_supplier", "is_blocked", "is_active", "passes_filter"):
        df[c] = df[c].astype("boolean")
    df["exact_timestamp"] = df["exact_timestamp"].astype("Int64")
    return df


def changed(df: pd.DataFrame, share: float = 0.01) -> pd.DataFrame:
    out = df.copy()
    idx = out.sample(frac=share, random_state=7).index
    out.loc[idx, "name"] = out.loc[idx, "name"] + " (gewijzigd)"
    out.loc[idx, "exact_timestamp"] = out.loc[idx, "exact_timestamp"] + 10_000_000
    return out


class Db:
    def __init__(self, server_conn: dict, name: str):
        self.admin = conninfo_from_airflow_json(server_conn)
        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.execute(f"CREATE DATABASE {name}")
        self.json = {**server_conn, "schema": name}
        self.conninfo = conninfo_from_airflow_json(self.json)
        with psycopg.connect(self.conninfo) as c:
            ensure_schema(c)

    def connect(self):
        return psycopg.connect(self.conninfo)

    def digest(self) -> str:
        cols = ", ".join(COLS)
        with self.connect() as c:
            return c.execute(
                f"SELECT md5(coalesce(string_agg(ROW({cols})::text, E'\\n' ORDER BY code), '')) FROM outsmart.relations"
            ).fetchone()[0]

    def xmins(self) -> dict:
        with self.connect() as c:
            return dict(c.execute("SELECT code, xmin::text FROM outsmart.relations").fetchall())


def _raw_copy(db: Db, df: pd.DataFrame) -> None:
    with db.connect() as conn:
        with CategoryLoad(conn, REL) as load:  # its COPY writer (pyarrow CSV), straight into the target
            copy_frame(load.cur, "outsmart.relations", df, COLS)
            load.commit()


def _ours(db: Db, df: pd.DataFrame) -> None:
    with db.connect() as conn:
        with CategoryLoad(conn, REL) as load:
            load.stage(df)
            load.merge(full_derive=False, context=MergeContext(dt.date.today()))
            load.commit()


def _records(df: pd.DataFrame) -> list[tuple]:
    return list(df[COLS].astype(object).where(df[COLS].notna(), None).itertuples(index=False, name=None))


def _insert_rows(db: Db, df: pd.DataFrame) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook  # imported (warm) before timing starts

    os.environ["AIRFLOW_CONN_BENCH_TARGET"] = json.dumps(db.json)
    hook = PostgresHook(postgres_conn_id="bench_target")
    hook.insert_rows("outsmart.relations", _records(df), target_fields=COLS, replace=True, replace_index="code")


def _to_sql(db: Db, df: pd.DataFrame) -> None:
    from sqlalchemy import create_engine, text

    j = db.json
    engine = create_engine(f"postgresql+psycopg2://{j['login']}@/{j['schema']}?host={j['host']}&port={j['port']}")
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLS if c != "code")
    casts = {"exact_id": "uuid", "start_date": "date", "end_date": "date"}  # what stg_to_sql holds needs these casts
    select = ", ".join(f"{c}::{casts[c]}" if c in casts else c for c in COLS)
    with engine.begin() as conn:
        df[COLS].to_sql("stg_to_sql", conn, schema="public", if_exists="replace", index=False, chunksize=1000)
        conn.execute(
            text(
                f"INSERT INTO outsmart.relations ({', '.join(COLS)}) "
                f"SELECT {select} "
                f"FROM public.stg_to_sql ON CONFLICT (code) DO UPDATE SET {updates}"
            )
        )
    engine.dispose()


METHODS = [
    ("raw COPY -> empty target (limit)", _raw_copy, False),
    ("ours: CategoryLoad (stage + merge)", _ours, True),
    ("Airflow PostgresHook.insert_rows", _insert_rows, True),
    ("pandas to_sql -> staging -> merge", _to_sql, True),
]


def _timed(db: Db, fn, df: pd.DataFrame) -> float:
    t = time.perf_counter()
    fn(db, df)
    return time.perf_counter() - t


def run_load_benchmark(server_conn: dict, n: int, repeat: int | None = None, methods=None) -> list[dict]:
    """Each method on the same frames; `repeat` runs each (fresh database every time) and reports the median
    (default: 3 up to 100k rows, 1 above). The first method is the baseline of the ratios."""
    methods = methods or METHODS
    import statistics

    # Import every method's libraries before any clock starts: the benchmark times loading, not imports.
    import sqlalchemy  # noqa: F401
    from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

    repeat = repeat or (3 if n <= 100_000 else 1)
    # Warm every method's code path and the server once, untimed, so the first method measured pays no start-up.
    warm = make_frame(1000, seed=2)
    for i, (_, fn, _) in enumerate(methods):
        fn(Db(server_conn, f"warm_{i}"), warm)
    df1 = make_frame(n)
    df2 = changed(df1)
    ref1, ref2 = Db(server_conn, f"ref1_{n}"), Db(server_conn, f"ref2_{n}")
    _raw_copy(ref1, df1)
    _raw_copy(ref2, df2)
    expected1, expected2 = ref1.digest(), ref2.digest()
    out = []
    base = None
    for i, (label, fn, reload) in enumerate(methods):
        s1s, s2s, ok, rewritten = [], [], True, None
        for _ in range(repeat):
            db = Db(server_conn, f"b_{i}_{n}")
            s1s.append(_timed(db, fn, df1))
            ok = ok and db.digest() == expected1
            if reload:
                before = db.xmins()
                s2s.append(_timed(db, fn, df2))
                after = db.xmins()
                rewritten = sum(1 for k, v in after.items() if before.get(k) != v)
                ok = ok and db.digest() == expected2
        s1 = statistics.median(s1s)
        base = base or s1
        s2 = statistics.median(s2s) if s2s else None
        row = {
            "rows": n,
            "method": label,
            "runs": repeat,
            "initial_s": round(s1, 3),
            "initial_ratio": round(s1 / base, 2),
            "reload_s": round(s2, 3) if s2 is not None else None,
            "rewritten": rewritten,
            "correct": "yes" if ok else "NO",
        }
        print(row, flush=True)
        out.append(row)
    return out
