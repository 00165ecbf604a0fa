"""The Airflow plugin of the settings page: the only file of this package the plugins manager imports.

`fastapi_apps` mounts the page's app on the api-server under /exact-online-imports; `external_views` adds the menu
entry "Exact imports" that shows it inside the Airflow UI (an iframe at /plugin/exact-online-imports); the page
itself is titled "Exact Online imports".
The app itself is imported on the first request: other processes that load plugins (scheduler, dag-processor,
workers) do not pay for FastAPI routes they never serve.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

# The project root holds `include/`, the plugins folder the `exact_online_settings_page` package.
_PLUGINS = Path(__file__).resolve().parents[1]
for _p in (_PLUGINS.parent, _PLUGINS):
    if str(_p) not in sys.path:
        sys.path.append(str(_p))

URL_PREFIX = "/exact-online-imports"
# The left navigation cuts a label after about a dozen characters ("Exact Online imports" showed as "Exact Onli…"),
# so the menu entry has a short label; the page keeps its full title (static/index.html).
MENU_LABEL = "Exact imports"
PAGE_TITLE = "Exact Online imports"
# Where the UI shows the page (in an iframe): /plugin/<url_route>.
UI_ROUTE = "exact-online-imports"
CALLBACK_SUFFIX = "/oauth/callback"  # where Exact sends the browser back (app.py)


class LazySettingsApp:
    """An ASGI app that imports the real FastAPI app on its first request."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("path", "").rstrip("/").endswith(CALLBACK_SUFFIX):
            # Exact's redirect: its code and state must not reach Airflow's access line of this request (written
            # after it is answered), in whichever worker handles it. See access_log.py.
            from exact_online_settings_page.access_log import install

            install()
        if self._app is None:
            from exact_online_settings_page.app import app

            self._app = app
        await self._app(scope, receive, send)


class ExactOnlineSettingsPagePlugin(AirflowPlugin):
    name = "exact_online_settings_page"
    fastapi_apps = [{"app": LazySettingsApp(), "url_prefix": URL_PREFIX, "name": PAGE_TITLE}]
    external_views = [
        {
            "name": MENU_LABEL,
            "href": URL_PREFIX + "/",
            "url_route": UI_ROUTE,
            "destination": "nav",
            "nav_top_level": True,  # its own entry in the left navigation, not hidden under a menu
            "icon": URL_PREFIX + "/static/icon.svg",
        }
    ]
