"""A category added to the registry is on the settings page and served by the sandbox, with no other file changed.

A copy of the registry gets two entries, as a deployment with them would have: `suppliers` (the accounts the sandbox
already serves, with one filter) and `projects` (an Exact endpoint nothing in the project knows, with a filter of
status words). The settings page's API draws both with their switch and filters; the sandbox answers their endpoints
with records and knows their sync/Deleted types. Fast: the page's FastAPI app with TestClient (no Airflow stack,
auth replaced by a reader), the sandbox on a loopback port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
import requests
from pydantic import Field

from include.outsmart_import import registry
from include.outsmart_import.filters import CategorySettings
from include.outsmart_import.registry import Category, Filter, Source, TableSpec, _audit, code, date, status, text

ROOT = Path(__file__).resolve().parents[3]
DIV = 3_000_001
PROJECT_TYPE = {1: "campaign", 2: "fixed_price", 3: "time_and_material"}


# ---- the whole addition: two entries, their settings models and labels ------------------------------------------
class SuppliersSettings(CategorySettings):
    include_blocked: bool = False


class ProjectsSettings(CategorySettings):
    types: list[Literal["campaign", "fixed_price", "time_and_material"]] = Field(default_factory=lambda: ["campaign"])


SUPPLIERS = Category(
    name="suppliers",
    title="Suppliers (Exact accounts that are suppliers)",
    pro=False,
    source=Source("sync/CRM/Accounts", "sync", deleted_entity_type=2, rule_fields=("IsSupplier",)),
    table=TableSpec("suppliers", _audit(code("code", "Code", 50, required=True), text("name", "Name"))),
    settings=SuppliersSettings,
    short_title="Suppliers",
    dutch_title="Leveranciers",
    filters=(Filter("include_blocked", "Include blocked suppliers (Geblokkeerd)"),),
)
PROJECTS = Category(
    name="projects",
    title="Projects",
    pro=True,
    # The entity type is this entry's to declare: the sandbox must take whatever it says.
    source=Source("sync/Project/Projects", "sync", deleted_entity_type=27),
    table=TableSpec(
        "projects",
        _audit(
            code("code", "Code", required=True),
            text("description", "Description"),
            status("type", "Type", PROJECT_TYPE),
            date("start_date", "StartDate"),
        ),
    ),
    settings=ProjectsSettings,
    dutch_title="Projecten",
    filters=(Filter("types", "Project types (Projecttypen)"),),
)


@pytest.fixture
def registry_with_two_more(monkeypatch):
    assert "suppliers" not in registry.CATEGORIES and "projects" not in registry.CATEGORIES
    monkeypatch.setattr(registry, "CATEGORIES", {**registry.CATEGORIES, "suppliers": SUPPLIERS, "projects": PROJECTS})


def test_no_file_of_the_page_or_the_sandbox_knows_the_new_categories():
    for folder in ("plugins", "include/exact_sandbox", "dags"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".js", ".html", ".json"):
                content = path.read_text(encoding="utf-8")
                assert "suppliers" not in content and "Project/Projects" not in content, path


# ---- the settings page --------------------------------------------------------------------------------------------
@pytest.fixture
def page_client():
    from fastapi.testclient import TestClient

    from exact_online_settings_page.app import app, can_read

    app.dependency_overrides[can_read] = lambda: object()  # a logged-in reader; auth is tested with Airflow's own
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.pop(can_read)


def test_the_page_shows_their_switch_and_filters(registry_with_two_more, page_client):
    answer = page_client.get("/api/categories")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    shown = {c["name"]: c for c in answer.json()["categories"]}
    assert list(shown)[-2:] == ["suppliers", "projects"]  # the registry's order
    assert shown["suppliers"] == {
        "name": "suppliers",
        "title": "Suppliers",
        "long_title": "Suppliers (Exact accounts that are suppliers)",
        "dutch": "Leveranciers",
        "pro": False,
        "dag_id": "exact_online_import_suppliers",
        "filters": [
            {
                "key": "include_blocked",
                "widget": "checkbox",
                "label": "Include blocked suppliers (Geblokkeerd)",
                "dutch_label": "Include blocked suppliers (Geblokkeerd)",  # no Dutch label given: the English one
                "default": False,
                "choices": [],
            }
        ],
    }
    (types,) = shown["projects"]["filters"]
    assert shown["projects"]["pro"] is True and shown["projects"]["title"] == "Projects"
    assert types["widget"] == "checkboxes" and types["default"] == ["campaign"]
    # A word without a label in the registry's CHOICE_LABELS is shown as it is.
    assert [c["value"] for c in types["choices"]] == ["campaign", "fixed_price", "time_and_material"]
    assert answer.json()["counts"] == list(registry.MERGE_COUNTS)


def test_a_filter_the_page_could_not_show_is_an_error_in_the_entry():
    with pytest.raises(ValueError, match=r"'include_blocked'\] of SuppliersSettings have no Filter"):
        Category(**{**SUPPLIERS.__dict__, "filters": ()})
    with pytest.raises(ValueError, match=r"filters \['include_blcked'\] are not settings of SuppliersSettings"):
        Category(**{**SUPPLIERS.__dict__, "filters": (*SUPPLIERS.filters, Filter("include_blcked", "typo"))})

    class CodesSettings(CategorySettings):
        codes: list[str] = Field(default_factory=list)

    with pytest.raises(ValueError, match="neither a flag nor a list of words: name its widget"):
        Category(**{**SUPPLIERS.__dict__, "settings": CodesSettings, "filters": (Filter("codes", "Codes"),)})


# ---- the sandbox --------------------------------------------------------------------------------------------------
@pytest.fixture
def sandbox(registry_with_two_more):
    from include.exact_sandbox import SandboxConfig, start_sandbox
    from tests.helpers.sandbox import stop_sandbox

    server = start_sandbox(SandboxConfig(size=40))
    yield server
    stop_sandbox(server)


def _read(server, access: str, path: str, select: tuple[str, ...], **params) -> list[dict]:
    r = requests.get(
        f"{server.url}/api/v1/{DIV}/{path}",
        params={"$select": ",".join(select), **params},
        headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["d"]["results"]


def test_the_sandbox_serves_their_endpoints_and_knows_their_deletions(sandbox):
    from include.exact_sandbox.registry_sources import deleted_entity_types, synced_entities

    access = requests.post(
        sandbox.url + "/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "sandbox-refresh-token-0",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
        timeout=5,
    ).json()["access_token"]
    # suppliers: the `$select` derived from its entry, on the accounts the sandbox already has
    suppliers = _read(sandbox, access, "sync/CRM/Accounts", SUPPLIERS.source.select, **{"$filter": "Timestamp gt 1"})
    assert suppliers and any(a["IsSupplier"] for a in suppliers)
    # projects: an endpoint only the registry entry knows, records shaped by its columns
    projects = _read(sandbox, access, "sync/Project/Projects", PROJECTS.source.select, **{"$filter": "Timestamp gt 1"})
    assert len(projects) == 25
    first = projects[0]
    assert set(first) - {"__metadata"} == {"ID", "Code", "Description", "Type", "StartDate", "Timestamp"}
    assert first["__metadata"]["type"] == "Exact.Web.Api.Models.Sync.Project.Project"
    assert {p["Type"] for p in projects} <= set(PROJECT_TYPE) and first["StartDate"].startswith("/Date(")
    assert deleted_entity_types()["projects"] == 27 and "projects" in synced_entities()
    # a deletion lands in sync/Deleted with the entry's entity type
    gone = first["ID"]
    requests.post(
        sandbox.url + "/_sandbox/mutate", json={"entity": "projects", "op": "delete", "ids": [gone]}, timeout=5
    ).raise_for_status()
    deleted = _read(
        sandbox, access, "sync/Deleted", ("EntityKey", "EntityType", "Timestamp"), **{"$filter": "Timestamp gt 1"}
    )
    assert [(d["EntityKey"], d["EntityType"]) for d in deleted] == [(gone, 27)]
    # a division move regenerates their Timestamps, as every synced entity's
    high = max(p["Timestamp"] for p in projects)
    requests.post(sandbox.url + "/_sandbox/move-division", json={}, timeout=5).raise_for_status()
    assert max(r["Timestamp"] for r in sandbox.state.division.records("projects").values()) < high
