"""Helpers for the Exact sandbox in tests."""

from __future__ import annotations

import socket
import threading


def stop_sandbox(server) -> None:
    """Stop a sandbox started with `start_sandbox`, without the half-second wait of a plain `shutdown()`.

    `shutdown()` returns once the serving loop has seen the request, which the loop checks when a connection
    arrives or every 0.5 s (socketserver's poll interval): so knock until it has stopped, then close the socket.
    """
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    while stopper.is_alive():
        try:
            socket.create_connection(server.server_address[:2], timeout=1).close()
        except OSError:
            pass
        stopper.join(0.02)
    server.server_close()
