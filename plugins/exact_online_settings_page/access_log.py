"""No authorization code or state in the api-server's access log (#20).

Exact sends the browser back to `…/exact-online-imports/oauth/callback?code=…&state=…`. Airflow 3.3 writes one access
line per request, with the query string, from its `HttpAccessLogMiddleware` (`airflow.api_fastapi.common.
http_access_log`, logger `http.access`; it goes through structlog, not through the stdlib `uvicorn.access` logger,
which Airflow silences). That middleware redacts only parameters whose *name* looks secret (password, token, …), so
the code and the state went into the log file as they were: the code is a credential for about 3 minutes, the state
the key to the open connect attempt.

The middleware wraps the whole api-server, outside this plugin's app, so the plugin cannot change what it sees. It
can change the event before it is rendered: `redact_callback_query` is a structlog processor that replaces every
value in the query of a callback path with `***`, except `error` (`access_denied`: what someone reading the log
needs). It looks at the event's `path`, not at the logger's name, so it holds for any logger that writes such a
line, and for any `/oauth/callback` of the api-server (another app's codes are no more fit for a log).

`install()` puts it first in structlog's processor chain, in place (loggers already made share that list). The
plugin calls it when a callback request comes in, before the request is handled, so it holds in whichever
api-server worker handles it and whatever configured structlog before; it is idempotent and costs a list scan.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog

CALLBACK_SUFFIX = "/oauth/callback"  # exact_connect.CALLBACK_PATH, under whatever prefix the app is mounted
KEPT = frozenset({"error"})  # not secret, and says what happened (access_denied)


def redacted_query(query: str) -> str:
    """`code=abc&state=xyz&error=access_denied` → `code=***&state=***&error=access_denied`. A query that does not
    parse is dropped whole: it could hold anything."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return "***"
    return urlencode([(k, v if k in KEPT else "***") for k, v in pairs], safe="*")


def redact_callback_query(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]):
    """The structlog processor: a callback path's query with its values redacted; every other event as it is."""
    path, query = event_dict.get("path"), event_dict.get("query")
    if isinstance(path, str) and path.rstrip("/").endswith(CALLBACK_SUFFIX) and query:
        event_dict["query"] = redacted_query(str(query))
    return event_dict


def install() -> None:
    """First in the chain of the structlog configuration in force (once)."""
    processors = structlog.get_config()["processors"]
    if redact_callback_query in processors:
        return
    if isinstance(processors, list):
        processors.insert(0, redact_callback_query)
    else:  # not Airflow's configuration (a tuple): a new chain, for the loggers made from now on
        structlog.configure(processors=[redact_callback_query, *processors])
