"""`make airflow`'s start-up banner points the office at the settings page, not at the raw Variable."""

from __future__ import annotations

from types import SimpleNamespace

from include.airflow_stack import StackOptions
from include.airflow_stack.__main__ import _banner


def test_the_banner_names_the_settings_pages_menu_entry_and_url(tmp_path, capsys):
    from exact_online_settings_page.exact_online_settings_page_plugin import ExactOnlineSettingsPagePlugin

    stack = SimpleNamespace(
        options=StackOptions(state_dir=tmp_path, port=8099),
        passwords={"admin": "pw", "viewer": "pw2"},
        outsmart=True,
        log_dir=tmp_path / "logs",
    )
    _banner(stack)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    (view,) = ExactOnlineSettingsPagePlugin.external_views
    settings_line = next(line for line in out.splitlines() if line.strip().startswith("settings:"))
    assert f'"{view["name"]}" in the left navigation' in settings_line
    assert f"http://127.0.0.1:8099/plugin/{view['url_route']}" in settings_line
    assert "Admin -> Variables" not in settings_line
