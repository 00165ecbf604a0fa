"""A bound on what a request may send to the settings page's write endpoints (Save, sync).

The whole settings Variable is a few kilobytes (every category's filters, at most 1,000 item-group codes), so
256 KB is far above any real Save; without a bound a 5 MB body was read, parsed and validated, and a 300,000-code
Variable was written that the page then never finished loading. A body over the limit is answered 413 before any
endpoint (or its auth) reads it; a body without Content-Length (chunked) is counted while it arrives and cut off.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MAX_BODY_BYTES = 256 * 1024
# Reading never changes anything, so only the methods that carry a body to an endpoint are bounded.
_BOUNDED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def too_large_message(limit: int = MAX_BODY_BYTES, lang: str = "en") -> str:
    from exact_online_settings_page.labels import label

    return label("too_large", lang, kb=limit // 1024)


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes on POST/PUT/PATCH/DELETE; the endpoint gets the body
    as it came (buffered: at most `limit` bytes)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BOUNDED_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        from exact_online_settings_page.labels import language_of

        # in the language the request asks for, as every answer of the app (app.py)
        accept_language = dict(scope.get("headers") or []).get(b"accept-language", b"").decode("latin-1")
        payload = json.dumps({"detail": too_large_message(self.limit, language_of(accept_language))}).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        # The rest of the body is not read: close the connection rather than leave it half-read.
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read above, handed on as one message; after it, the real channel (for the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
