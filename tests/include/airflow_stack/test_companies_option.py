"""`make airflow AIRFLOW_ARGS="--companies 3"` (#21): what the first start creates for companies 2..N."""

from __future__ import annotations

import json

from include.airflow_stack import Stack, StackOptions
from include.airflow_stack.__main__ import _options, _parser
from include.outsmart_import.companies import companies_of
from include.outsmart_import.settings import parse_settings

SERVER = {"host": "/tmp/sock", "port": 5432, "login": "postgres", "password": "", "schema": "outsmart"}


def spec_for(tmp_path, companies: int) -> dict:
    stack = Stack(StackOptions(state_dir=tmp_path, companies=companies))
    stack.outsmart = SERVER  # what start() learns from the embedded server
    return stack._bootstrap_spec()


def test_three_companies_get_their_divisions_databases_and_a_pool_for_side_by_side_imports(tmp_path):
    spec = spec_for(tmp_path, 3)
    made = {c["conn_id"]: c for c in spec["connections"]}
    assert made["outsmart_company3"]["schema"] == "outsmart_company3" and made["outsmart_company3"]["port"] == 5432
    settings = parse_settings(spec["variable"]["value"])
    assert [(c.key, c.division, c.target_conn_id) for c in companies_of(settings)] == [
        ("default", None, "outsmart_postgres"),
        ("company2", 3_000_002, "outsmart_company2"),
        ("company3", 3_000_003, "outsmart_company3"),
    ]
    assert spec["pool"]["slots"] == 3
    args = _options(_parser().parse_args(["--companies", "3"]))
    assert (args.companies, args.sandbox_divisions) == (3, 3)  # the sandbox serves every company's division


def test_one_company_is_as_before(tmp_path):
    spec = spec_for(tmp_path, 1)
    assert [c["conn_id"] for c in spec["connections"]] == ["exact_online_default", "outsmart_postgres"]
    assert "companies" not in json.loads(spec["variable"]["value"]) and spec["pool"]["slots"] == 1
