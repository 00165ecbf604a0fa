"""The Airflow plugin of Exact's webhook receiver: the only file of this package the plugins manager imports.

`fastapi_apps` mounts the receiver on the api-server under /exact-online-webhooks. Airflow applies no
authentication to a plugin's app (beyond.md §2.3): Exact cannot send any, so the receiver checks every event's
signature itself. The app is imported on the first request, so the scheduler, dag-processor and workers (which
load plugins too) neither import FastAPI routes nor start the relay.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

_PLUGINS = Path(__file__).resolve().parents[1]
for _p in (_PLUGINS.parent, _PLUGINS):
    if str(_p) not in sys.path:
        sys.path.append(str(_p))

URL_PREFIX = "/exact-online-webhooks"


class LazyReceiverApp:
    """An ASGI app that imports the receiver on its first request."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            from exact_online_webhooks.receiver import app

            self._app = app
        await self._app(scope, receive, send)


def _sweep_at_start() -> None:
    """In the api-server only: relay what a crash left in the inbox without waiting for Exact's next delivery (the
    relay thread then sweeps every 30 s). Other processes that load plugins start nothing."""
    import threading
    import time

    def start() -> None:
        time.sleep(5)  # let the api-server finish starting
        try:
            from exact_online_webhooks.receiver import RELAY

            RELAY.poke()
        except Exception:  # no OutSmart connection yet: the first delivery starts the relay instead
            pass

    threading.Thread(target=start, name="exact-webhook-relay-start", daemon=True).start()


if any(arg == "api-server" for arg in sys.argv[1:3]):
    _sweep_at_start()


class ExactOnlineWebhooksPlugin(AirflowPlugin):
    name = "exact_online_webhooks"
    fastapi_apps = [{"app": LazyReceiverApp(), "url_prefix": URL_PREFIX, "name": "Exact Online webhooks"}]
