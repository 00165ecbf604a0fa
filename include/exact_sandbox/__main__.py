"""Run the sandbox: `python -m include.exact_sandbox --port 8765 --seed 1 --size 500`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time

from include.exact_sandbox.server import SandboxConfig, start_sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.exact_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--state-file",
        default=None,
        help="keep the division and its token chain here across restarts (saved on exit and every "
        "minute; without it every start is a new division)",
    )
    for f in dataclasses.fields(SandboxConfig):
        if f.name in ("day_seconds",):
            parser.add_argument("--day-seconds", type=float, default=None)
            continue
        if f.default_factory is not dataclasses.MISSING:  # the sandbox users: JSON, e.g. '{"me@x.nl": {...}}'
            parser.add_argument("--" + f.name.replace("_", "-"), type=json.loads, default=f.default_factory())
            continue
        if isinstance(f.default, bool):
            parser.add_argument("--" + f.name.replace("_", "-"), action="store_true")
            continue
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = parser.parse_args(argv)
    config = SandboxConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SandboxConfig)})
    server = start_sandbox(config, host=args.host, port=args.port)
    restored = bool(args.state_file) and server.state.load(args.state_file)
    print(
        f"Exact Online sandbox on {server.url} (division {config.division}, "
        f"{'restored from ' + args.state_file if restored else str(config.size) + ' accounts'})",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(60)  # a SIGKILL loses at most a minute of sandbox changes
            if args.state_file:
                server.state.save(args.state_file)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
        if args.state_file:
            server.state.save(args.state_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
