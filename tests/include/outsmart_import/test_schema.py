"""The target schema's migration (schema.py) against a real PostgreSQL: a database written before #19 is moved
forward in place (its marks renamed to their streams, the dead `*_deleted` marks gone, the division's currency
folded into one table), once and idempotently."""

from __future__ import annotations

import pytest

from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.schema import ensure_schema

# The tables as the version before #19 created them (its loader's BASE_DDL and exact_prices' DDL, verbatim where
# they differ from today's).
OLD_STATE = """
CREATE SCHEMA IF NOT EXISTS outsmart;
CREATE TABLE IF NOT EXISTS outsmart.import_state (
    category   text NOT NULL,
    stream     text NOT NULL,
    watermark  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, stream)
);
CREATE TABLE IF NOT EXISTS outsmart.exact_division (
    division integer PRIMARY KEY,
    currency text,
    read_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS outsmart.exact_divisions (
    division   bigint PRIMARY KEY,
    move_date  timestamptz,
    currency   text,
    checked_at timestamptz NOT NULL
);
INSERT INTO outsmart.import_state (category, stream, watermark) VALUES
    ('relations', 'sync', 41), ('relations', 'relation_addresses', 42), ('relations', 'relation_contacts', 43),
    ('relations', 'sync_deleted', 7), ('materials', 'sync', 51), ('materials', 'prices', 52),
    ('materials', 'prices_deleted', 8), ('sales_orders', 'sync', 61), ('sales_orders', 'lines', 62),
    ('sales_orders', 'lines_deleted', 9);
INSERT INTO outsmart.exact_division (division, currency) VALUES (3000001, 'EUR');
INSERT INTO outsmart.exact_divisions (division, move_date, currency, checked_at) VALUES (3000001, NULL, NULL, now());
"""


@pytest.fixture
def old_db(target_db):
    with target_db.connect() as conn:
        conn.execute(OLD_STATE)
        conn.commit()
    return target_db


def marks(db) -> dict:
    return {(c, s): v for c, s, v in db.query("SELECT category, stream, landed_seq FROM outsmart.import_state")}


def test_an_older_database_keeps_its_marks_under_the_streams_names(old_db):
    with old_db.connect() as conn:
        ensure_schema(conn)
    addresses, contacts = (d.source.endpoint for d in CATEGORIES["relations"].related)
    assert marks(old_db) == {
        ("relations", "sync/CRM/Accounts"): 41,
        ("relations", addresses): 42,
        ("relations", contacts): 43,
        ("materials", "sync/Logistics/Items"): 51,
        ("materials", "sync/Logistics/SalesItemPrices"): 52,
        ("sales_orders", "sync/SalesOrder/SalesOrderHeaders"): 61,
        ("sales_orders", "sync/SalesOrder/SalesOrderLines"): 62,
    }
    print(marks(old_db))


def test_the_divisions_currency_is_folded_into_one_table(old_db):
    with old_db.connect() as conn:
        ensure_schema(conn)
    assert old_db.query("SELECT division, currency FROM outsmart.exact_divisions") == [(3000001, "EUR")]
    assert old_db.scalar("SELECT to_regclass('outsmart.exact_division') IS NULL")


def test_the_upgrade_runs_once(old_db):
    with old_db.connect() as conn:
        ensure_schema(conn)
        before = marks(old_db)
        ensure_schema(conn)  # idempotent: nothing left to move
    assert marks(old_db) == before
    columns = {
        r[0]
        for r in old_db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'import_state'")
    }
    assert "watermark" not in columns and "landed_seq" in columns
