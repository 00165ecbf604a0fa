"""Run the sandbox: `python -m include.exact_sandbox --port 8765 --seed 1 --size 500`.

Several divisions (an accountant's companies): `--divisions 3` serves divisions 3000001, 3000002 and 3000003 (seeds
1, 2, 3), each with its own data and rate budget; `--divisions '[{"code": 3000002, "size": 50, "minutely_limit":
100}]'` adds (or sets) divisions one by one. Who reaches which: `--users '{"accountant@example.nl": {"password": "x",
"divisions": [3000001, 3000002], "initial_refresh_token": "rt-accountant"}}'` (no `divisions`: every division).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time

from include.exact_sandbox.server import SandboxConfig, start_sandbox


def _divisions_arg(text: str) -> int | list:
    """`--divisions`: how many divisions (a number), or the divisions themselves (a JSON list of DivisionSpecs)."""
    if text.strip().isdigit():
        return int(text)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(
            'give a number of divisions (e.g. 3) or a JSON list such as \'[{"code": 3000002, "size": 50}]\''
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.exact_sandbox", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--state-file",
        default=None,
        help="keep the divisions and their token chains here across restarts (saved on exit and every "
        "minute; without it every start is a new division)",
    )
    for f in dataclasses.fields(SandboxConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "day_seconds":
            parser.add_argument(flag, type=float, default=None)
        elif f.name == "divisions":
            parser.add_argument(flag, type=_divisions_arg, default=[], help=_divisions_arg.__doc__)
        elif f.default_factory is not dataclasses.MISSING:  # the sandbox users: JSON, e.g. '{"me@x.nl": {...}}'
            parser.add_argument(flag, type=json.loads, default=f.default_factory())
        elif isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default)
    return parser


def config_from(argv: list[str] | None = None) -> tuple[SandboxConfig, argparse.Namespace]:
    """The SandboxConfig the command line asks for (`--divisions N` is `--companies N`); exits with the reason if it
    makes no sense (e.g. a user reaching a division the sandbox does not serve)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if isinstance(args.divisions, int):
        args.companies, args.divisions = args.divisions, []
    try:
        config = SandboxConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SandboxConfig)})
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = config_from(argv)
    started = time.perf_counter()
    server = start_sandbox(config, host=args.host, port=args.port)
    restored = bool(args.state_file) and server.state.load(args.state_file)
    codes = server.state.division_codes()
    served = f"division {codes[0]}" if len(codes) == 1 else f"{len(codes)} divisions {codes[0]}..{codes[-1]}"
    print(
        f"Exact Online sandbox on {server.url} ({served}, "
        f"{'restored from ' + args.state_file if restored else str(config.size) + ' accounts'}; "
        f"started in {time.perf_counter() - started:.1f} s)",
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
