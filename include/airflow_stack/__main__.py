"""`make airflow` (python -m include.airflow_stack): start the real Airflow and keep it running until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from include.airflow_stack import DEFAULT_STATE_DIR, Stack, StackError, StackOptions


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    celery_only = [flag for flag, dest in CELERY_ONLY.items() if getattr(args, dest) is not None]
    if args.executor != "celery" and celery_only:
        parser.error(f"{', '.join(celery_only)}: only with --executor celery")
    stack = Stack(_options(args))
    if args.clean_db is not None:
        stack.clean_metadata(args.clean_db)
        return 0
    return _run_until_stopped(stack)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make airflow", description=__doc__)
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where everything is kept (git-ignored)")
    p.add_argument("--port", type=int, default=8080, help="the UI and REST API port")
    p.add_argument("--sandbox-port", type=int, default=8765)
    p.add_argument("--sandbox-size", type=int, default=5000, help="accounts in a new sandbox division")
    p.add_argument(
        "--sandbox-divisions",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="divisions the sandbox serves (3000001, 3000002, ...), each with its own data and rate budget; "
        "exact_online_default names the first",
    )
    p.add_argument(
        "--companies",
        type=_at_least_one,
        default=1,
        help="companies to import (#21): 2..N get their own sandbox division and database on the first start",
    )
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="do not start the Exact sandbox (exact_online_default points at a real division)",
    )
    p.add_argument(
        "--settings",
        type=Path,
        default=StackOptions.settings_file,
        help="the settings Variable for the first start (later starts keep what was saved in the UI)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every component, e.g. AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=5",
    )
    p.add_argument(
        "--executor",
        choices=("local", "celery"),
        default="local",
        help="local: the scheduler runs the tasks (LocalExecutor); celery: Celery workers do (CeleryExecutor), "
        "through a Redis broker this also starts (the Debian package redis-server)",
    )
    p.add_argument(
        "--workers", type=int, help="celery: worker processes on this machine (default 2; 0: all on other machines)"
    )
    p.add_argument("--worker-concurrency", type=int, help="celery: tasks each worker runs at the same time (default 2)")
    p.add_argument("--redis-port", type=int, help="celery: the Redis broker's port on 127.0.0.1 (default 6379)")
    p.add_argument(
        "--clean-db",
        type=int,
        metavar="DAYS",
        default=None,
        help="instead of starting: remove Airflow run history older than DAYS from the metadata database",
    )
    return p


def _at_least_one(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def _options(args: argparse.Namespace) -> StackOptions:
    return StackOptions(
        state_dir=args.state_dir.resolve(),
        port=args.port,
        sandbox=not args.no_sandbox,
        sandbox_port=args.sandbox_port,
        sandbox_size=args.sandbox_size,
        sandbox_divisions=max(args.sandbox_divisions, args.companies),
        companies=args.companies,
        settings_file=args.settings,
        env=dict(kv.split("=", 1) for kv in args.env),
        executor=args.executor,
        **{dest: getattr(args, dest) for dest in CELERY_ONLY.values() if getattr(args, dest) is not None},
    )


# The options that only the CeleryExecutor uses (their defaults are StackOptions').
CELERY_ONLY = {"--workers": "workers", "--worker-concurrency": "worker_concurrency", "--redis-port": "redis_port"}


def _run_until_stopped(stack: Stack) -> int:
    """Start the stack, watch its processes until Ctrl-C or SIGTERM (or one fails), then stop all of it."""

    def stop_on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop_on_signal)
    # Also SIGINT, explicitly: a launcher started in the background of a script inherits SIGINT ignored, and
    # Python then keeps it ignored (no KeyboardInterrupt), so `kill -INT` would stop nothing.
    signal.signal(signal.SIGINT, stop_on_signal)
    status = 0
    try:
        stack.start()
        _banner(stack)
        while True:
            stack.check_processes()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nStopping every process started here ...", flush=True)
    except StackError as exc:
        print(f"\nmake airflow: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave half the stack running
        stack.stop()
        print("Stopped.", flush=True)
    return status


# The settings page as the UI shows it (plugins/exact_online_settings_page/exact_online_settings_page_plugin.py:
# MENU_LABEL and UI_ROUTE; a test holds the two in step). Written out, not imported: importing the plugin file here
# would import Airflow's plugins manager into the launcher, before the stack is even configured.
SETTINGS_MENU_LABEL = "Exact imports"
SETTINGS_PAGE_PATH = "/plugin/exact-online-imports"


def _exact_line(o: StackOptions) -> str:
    if not o.sandbox:
        return "connection exact_online_default"
    if o.sandbox_divisions == 1:
        return o.sandbox_url + " (the sandbox)"
    from include.exact_sandbox.server import SandboxConfig

    first = SandboxConfig().division
    return f"{o.sandbox_url} (the sandbox, {o.sandbox_divisions} divisions from {first}: GET /_sandbox/divisions)"


def _banner(stack: Stack) -> None:
    o = stack.options
    users = "\n".join(
        f"    {u:<7} {pw}   ({'everything' if u == 'admin' else 'read only'})" for u, pw in stack.passwords.items()
    )
    print(
        f"""
Airflow is running: {o.url}
  log in as (passwords are kept in {o.state_dir / "secrets.json"}):
{users}
  Exact Online: {_exact_line(o)}
  OutSmart database: connection outsmart_postgres ({"embedded, database outsmart" if stack.outsmart else ""})
  settings: the settings page, "{SETTINGS_MENU_LABEL}" in the left navigation: {o.url}{SETTINGS_PAGE_PATH}
  imports: the exact_online_import_* DAGs
  executor: {_executor_line(stack)}
  component logs: {stack.log_dir}; state: {o.state_dir}
Ctrl-C stops everything started here.
""",
        flush=True,
    )
    print("READY " + json.dumps({"url": o.url}), flush=True)


def _executor_line(stack: Stack) -> str:
    o = stack.options
    if o.executor != "celery":
        return "LocalExecutor (the scheduler runs the tasks)"
    from include.airflow_stack.celery_executor import broker_url

    return (
        f"CeleryExecutor, {o.workers} worker{'s' if o.workers != 1 else ''} of concurrency {o.worker_concurrency} "
        f"({', '.join(stack.worker_names) or 'none on this machine'}), broker {broker_url(o.redis_port)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
