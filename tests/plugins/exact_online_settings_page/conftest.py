"""The api-server app and its TestClient of test_settings_page_api.py, for the other tests of the settings page
(test_connect_page.py) too."""

from tests.plugins.exact_online_settings_page.test_settings_page_api import airflow_app, client  # noqa: F401
