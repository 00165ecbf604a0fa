"""The "Exact Online" connection type as Airflow sees it once `make install` has installed the distribution.

ProvidersManager is a process-wide singleton that caches what it discovered, so it is asked in a fresh
subprocess: what it answers there is what an api-server answers after start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from exact_online.provider_info import COUNTRY_HOSTS, get_provider_info

PROBE = r"""
import json, warnings
warnings.simplefilter("ignore")
from airflow.providers_manager import ProvidersManager
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

pm = ProvidersManager()
provider = pm.providers.get("outsmart-exact-online")
widgets = {k: {"field_name": w.field_name, "field": w.field, "is_sensitive": w.is_sensitive,
               "hook_class_name": w.hook_class_name}
           for k, w in pm._connection_form_widgets_from_metadata.items() if k.startswith("extra__exact_online__")}
meta = [m.model_dump(mode="json") for m in HookMetaService.hook_meta_data() if m.connection_type == "exact_online"]
hook = pm.hooks["exact_online"]  # imports the hook class: its conn_type and hook_name must agree
print(json.dumps({
    "version": provider.version if provider else None,
    "behaviour": pm._field_behaviours_from_metadata.get("exact_online"),
    "widgets": widgets,
    "meta": meta,
    "hook": hook._asdict() if hook else None,
}))
"""


@pytest.fixture(scope="module")
def discovered():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_the_distribution_declares_the_provider_entry_point():
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "outsmart-exact-online"]
    assert [ep.value for ep in eps] == ["exact_online.provider_info:get_provider_info"], "run `make install`"
    assert get_provider_info()["package-name"] == "outsmart-exact-online"  # ProvidersManager demands equality


def test_providers_manager_lists_the_connection_type(discovered):
    found, stderr = discovered
    assert found["version"] is not None
    hook = found["hook"]
    assert hook["connection_type"] == "exact_online" and hook["hook_name"] == "Exact Online"
    assert hook["hook_class_name"] == "exact_online.hooks.exact_online.ExactOnlineHook"
    assert hook["connection_id_attribute_name"] == "exact_conn_id" and hook["connection_testable"]
    assert "Inconsistency" not in stderr  # the hook's conn_type matches the provider info
    assert "deprecated" not in stderr.lower()  # declarative metadata, no get_ui_field_behaviour()


def test_labels_placeholders_and_hidden_fields(discovered):
    behaviour = discovered[0]["behaviour"]
    assert behaviour["relabeling"] == {"host": "Base URL", "login": "Client ID", "password": "Client secret"}
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra", "description"}
    assert all(host in behaviour["placeholders"]["host"] for host in COUNTRY_HOSTS)

    # What the UI's connection form gets from GET /ui/connections/hook_meta.
    (meta,) = discovered[0]["meta"]
    std = meta["standard_fields"]
    assert meta["hook_name"] == "Exact Online"
    assert (std["host"]["title"], std["login"]["title"], std["password"]["title"]) == (
        "Base URL",
        "Client ID",
        "Client secret",
    )
    assert std["url_schema"]["hidden"] and std["port"]["hidden"] and std["description"]["hidden"]
    assert not std["host"]["hidden"] and not std["login"]["hidden"] and not std["password"]["hidden"]
    assert set(meta["extra_fields"]) == {"division", "refresh_token", "webhook_secret"}  # plain: the extra's keys


def test_division_and_refresh_token_fields(discovered):
    widgets = discovered[0]["widgets"]
    assert set(widgets) == {
        "extra__exact_online__division",
        "extra__exact_online__refresh_token",
        "extra__exact_online__webhook_secret",
    }
    division = widgets["extra__exact_online__division"]
    assert division["field"]["schema"]["title"] == "Division"
    assert division["field"]["schema"]["type"] == "integer"  # no "null": the form marks it required
    assert division["field"]["description"] and not division["is_sensitive"]
    token = widgets["extra__exact_online__refresh_token"]
    assert token["field"]["schema"]["title"] == "First refresh token"
    assert token["field"]["schema"]["format"] == "password" and token["is_sensitive"]
    assert token["field"]["value"] is None  # no default token, ever
