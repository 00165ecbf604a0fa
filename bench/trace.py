"""The statement trace of the import, before and after a change: proof that a refactor kept the behaviour.

    .venv/bin/python -m bench.trace --old <git-rev> [--new HEAD | --new <path>] [--size 300] [--keep]

For each of two trees (by default: `--old` checked out with `git worktree add` into a temp dir, and this working
tree; `--new HEAD` checks HEAD out the same way, `--new <path>` takes another tree as it is), each in its own child
process with that tree first on PYTHONPATH (as bench/streams.py does), its own fresh sandbox (same seed and size,
the Pro settings) and its own fresh embedded PostgreSQL (its own data dir and socket) logging every statement:

1. the 14 categories in the registry's order through `run_category`, in one process, one after the other, four
   rounds: 1 initial, 2 incremental after include/demo/mutations.py's changes, 3 full refresh, 4 no change;
   `today` is the same fixed date in both trees;
2. the statement log of the target database normalised into one text file per tree (`trace-old.txt`,
   `trace-new.txt` in the work dir), then diffed: `identical`, or the count of differing lines and a unified diff
   (its first 200 lines);
3. every table of schema `outsmart` compared row by row, and the runs' summaries (`RunSummary.as_dict`).

What the normalisation removes, and why (never statement text, table or column names, nor any other value):
- the log line's prefix is only the database and the session id (no time, no PID); sessions become `s1`, `s2`, ...
  in the order they first appear after each category's marker (`-- round N category`), so a statement that moves
  to another connection still shows as a difference;
- timestamps with a time of day, in statements and bind parameters (`<timestamp>`): in practice the database's
  clock handed back as a parameter (`noticed_at > $2`, `refreshed_at > $1`: the category's last derive); dates stay
  (`today` is fixed, the sandbox's dates too);
- `"age_seconds": <n>` in the import log's `streams` parameter (`<seconds>`): how long ago a reused stream was read.
Not normalised but made equal: the sandbox's clock (its records' Created/Modified, a mutation's Modified) counts
seconds from one start instant the parent picks, in both sandboxes, so both hold the same records (its seeded
generator does the rest); PYTHONHASHSEED is fixed in every child, because the import passes a Python set of GUIDs
as a parameter (`landed_children`), whose order otherwise changes from process to process; autovacuum is off in
both servers, because its ANALYZE at a moment of its own choosing can change a plan and with it the order of the
rows that set is built from (`new_header_keys`: SELECT DISTINCT without ORDER BY). Sequence values (ids,
landed_seq) are not touched: both databases are fresh, so they must match too.

Table contents: every table of schema `outsmart`, rows compared as sorted JSON lines; columns set from the
database's clock (CLOCK_COLUMNS: imported_at, landed_at, started_at, deleted_at, ...) as set or not set, and
`age_seconds` left out of `streams`. Summaries: `RunSummary.as_dict()` per category and round, minus `age_seconds`
(a summary has no other timing).

Both trees use this tree's Pro settings (include/demo/settings_pro.json), this tree's mutations and the same
`today`. The Exact token chain lives in a database of its own on the same server, so its statements (which depend
on the token's lifetime, not on the import) are not in the trace. The categories of a round run one after the
other in one child process, so the statement order is deterministic; every round is far shorter than the
settings' 5-minute stream reuse window, as it must be for the reuse decisions to be the same.

Exit code 0 when trace, tables and summaries are all equal, 1 otherwise. Takes 1.5-2.5 minutes at --size 300
on 2 shared cores (the two trees run one after the other). Not part of `make bench`. `--keep` keeps the work dir
(in /tmp: both traces, both raw server logs, the summaries, the children's stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import requests

from bench.streams import Sandbox, _expect, _free_port, _pythonpath, remove_tree
from include.outsmart_import.target_db import conninfo_from_airflow_json, start_embedded, stop_embedded

ROOT = Path(__file__).resolve().parents[1]
PRO_SETTINGS = ROOT / "include/demo/settings_pro.json"
DB = "outsmart_trace"  # the target database; the trace keeps only its statements
TOKENS_DB = "exact_tokens"  # the token chain's database, left out of the trace
ROUNDS = ((1, "initial", False), (2, "incremental", False), (3, "full refresh", True), (4, "no change", False))
# Set from the database's clock (DEFAULT now(), `= now()`): compared as set or not set.
CLOCK_COLUMNS = {
    "imported_at",
    "landed_at",
    "refreshed_at",
    "full_read_at",
    "started_at",
    "ended_at",
    "updated_at",
    "derived_at",
    "rejected_at",
    "noticed_at",
    "checked_at",
    "read_at",
    "deleted_at",
}
DIFF_LINES = 200
REUSE_WINDOW = 300  # the settings' reuse_window_seconds (its default; settings_pro.json leaves it)
# The order of a Python set of strings changes with the hash seed of the process, and the import passes one as a
# parameter (`landed_children`: the new headers' GUIDs in a LIKE ANY array): one seed for every child process.
HASH_SEED = "0"

# The sandbox with a fixed clock: `server.dt.datetime.now` counts seconds from argv[1], one per call (its start,
# each mutate request), so both sandboxes give their records the same Created/Modified. Everything else as
# `python -m include.exact_sandbox`.
SANDBOX = r"""
import datetime as real, itertools, sys, types
from include.exact_sandbox import server
base, ticks = real.datetime.fromisoformat(sys.argv[1]), itertools.count()
class Clock(real.datetime):
    @classmethod
    def now(cls, tz=None):
        return (base + real.timedelta(seconds=next(ticks))).astimezone(tz or real.UTC)
shim = types.ModuleType("datetime")
shim.__dict__.update(vars(real))
shim.datetime = Clock
server.dt = shim
from include.exact_sandbox.__main__ import main
raise SystemExit(main(sys.argv[2:]))
"""

# One child per tree: the four rounds, each when the parent says "go" (the parent changes the sandbox before round
# 2). Before each category a marker statement on a connection of its own delimits that category in the trace.
# Only names that exist in both trees: run_category (with today= and full_refresh=), check_runnable, the hook.
CHILD = r"""
import datetime as dt, json, sys, time
from pathlib import Path
from include import local_airflow
local_airflow.configure(Path(sys.argv[1]))
import psycopg
import exact_online, include
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import PostgresTokenStore
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.runner import run_category
from include.outsmart_import.scheduling import check_runnable
from include.outsmart_import.settings import parse_settings
from include.outsmart_import.target_db import connector
settings = parse_settings(Path(sys.argv[2]).read_text())
today = dt.date.fromisoformat(sys.argv[3])
hook = ExactOnlineHook(token_store=PostgresTokenStore(lambda: psycopg.connect(sys.argv[4])))
connect = connector()
marker = psycopg.connect(sys.argv[5], autocommit=True)
trees = [str(Path(m.__file__).resolve()) for m in (include, exact_online)]
for round_no, full in ((1, False), (2, False), (3, True), (4, False)):
    print(f"READY {round_no}", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("stopped by the parent")
    runs, started = [], time.monotonic()
    for name, category in CATEGORIES.items():
        try:
            check_runnable(category, settings)
        except Exception:
            continue
        marker.execute(f"SELECT 'trace: round {round_no} {name}'")
        try:
            runs.append(run_category(name, settings, hook, connect, full_refresh=full, today=today).as_dict())
        except Exception as exc:
            runs.append({"category": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]})
    seconds = time.monotonic() - started
    print("ROUND " + json.dumps({"round": round_no, "runs": runs, "trees": trees, "seconds": seconds}, default=str),
          flush=True)
"""


# ---- one tree --------------------------------------------------------------------------------------------------------
def start_postgres(data_dir: Path) -> dict:
    """A fresh embedded PostgreSQL in `data_dir` (its own socket) that logs every statement with only the database
    and the session id as prefix; with the target and the token databases. Returns the server's connection."""
    server = start_embedded(data_dir)
    with psycopg.connect(conninfo_from_airflow_json(server), autocommit=True) as c:
        c.execute("ALTER SYSTEM SET log_statement = 'all'")
        c.execute("ALTER SYSTEM SET log_line_prefix = '%d|%c|'")
        c.execute("ALTER SYSTEM SET log_min_duration_statement = -1")
        # Autovacuum's ANALYZE comes when it comes: new statistics can change a plan, and with it the order of rows
        # the import reads without ORDER BY (new_header_keys' SELECT DISTINCT). The import's own ANALYZE still runs.
        c.execute("ALTER SYSTEM SET autovacuum = off")
        c.execute("SELECT pg_reload_conf()")
        for name in (DB, TOKENS_DB):
            c.execute(f"CREATE DATABASE {name}")
    return server


@contextlib.contextmanager
def sandbox_of(tree: Path, size: int, seed: int, clock: str) -> Iterator[Sandbox]:
    """The sandbox of `tree` with the fixed clock (SANDBOX), rate limits raised so that no call waits; stopped on
    leaving. (Not `with Sandbox(...)`: its __enter__ would start a second sandbox, without the fixed clock.)"""
    port = _free_port()
    args = ["--port", str(port), "--size", str(size), "--seed", str(seed)]
    args += ["--minutely-limit", "100000", "--daily-limit", "1000000"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, clock, *args],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": _pythonpath(tree), "PYTHONHASHSEED": HASH_SEED},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sandbox = Sandbox(size, seed, tree, proc, f"http://127.0.0.1:{port}")
        _wait_for(sandbox)
        yield sandbox
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_for(sandbox: Sandbox) -> None:
    assert sandbox.proc is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sandbox.proc.poll() is None:
        try:
            requests.get(sandbox.url + "/_sandbox/health", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"the sandbox of {sandbox.tree} did not start")


def run_tree(tree: Path, label: str, work: Path, args: argparse.Namespace) -> dict:
    """The four rounds with `tree`'s code against its own sandbox and database; the raw log, summaries, tables."""
    pgdata = work / f"pg-{label}"
    try:
        server = start_postgres(pgdata)
        target = conninfo_from_airflow_json({**server, "schema": DB})
        tokens = conninfo_from_airflow_json({**server, "schema": TOKENS_DB})
        with sandbox_of(tree, args.size, args.seed, args.clock) as sandbox:
            env = {
                **os.environ,
                "PYTHONPATH": _pythonpath(tree),
                "AIRFLOW_CONN_OUTSMART_POSTGRES": json.dumps({**server, "schema": DB}),
                "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT": sandbox.exact_conn(),
                "EXACT_IMPORT_RETRIES": "0",
                "PYTHONHASHSEED": HASH_SEED,
            }
            child = [sys.executable, "-c", CHILD, str(work / f"airflow-{label}"), str(PRO_SETTINGS), args.today]
            rounds = _drive(child + [tokens, target], tree, env, sandbox, work / f"child-{label}.stderr")
        _check_trees(rounds, tree, label)
        tables = dump_tables(target)
    finally:
        stop_embedded(pgdata)
    return {"log": (pgdata / "log").read_text(errors="replace"), "rounds": rounds, "tables": tables}


def _drive(cmd: list[str], tree: Path, env: dict, sandbox: Sandbox, stderr_path: Path) -> list[dict]:
    """Run the child round by round; the demo's changes go into the sandbox before round 2."""
    from include.demo.mutations import apply_demo_mutations

    rounds = []
    with stderr_path.open("w") as errors:
        child = subprocess.Popen(
            cmd, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            for round_no, _, _ in ROUNDS:
                _expect(child, f"READY {round_no}", str(stderr_path))
                if round_no == 2:
                    apply_demo_mutations(sandbox.url)
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
                rounds.append(json.loads(_expect(child, "ROUND ", str(stderr_path))))
            child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
    return rounds


def _check_trees(rounds: list[dict], tree: Path, label: str) -> None:
    """The child must have run `tree`'s code, not this tree's (PYTHONPATH order, an installed copy); a round as long
    as the stream reuse window makes a category re-read a stream another one read in that round."""
    for r in rounds:
        if (seconds := r.pop("seconds")) > REUSE_WINDOW / 2:
            print(f"warning: {label} round {r['round']} took {seconds:.0f} s: near the {REUSE_WINDOW} s reuse window")
    modules = {t for r in rounds for t in r.pop("trees")}
    if not all(Path(m).is_relative_to(tree.resolve()) for m in modules):
        raise RuntimeError(f"the {label} child ran code from {modules}, not from {tree}")


def dump_tables(conninfo: str) -> dict[str, list[str]]:
    """Every table of schema `outsmart`, each row as one sorted line of JSON: clock columns as set or not set."""
    out = {}
    with psycopg.connect(conninfo) as c:
        tables = c.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'outsmart' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        for (table,) in tables:
            columns = c.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'outsmart' "
                "AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            exprs = [f'"{n}" IS NOT NULL AS "{n}"' if n in CLOCK_COLUMNS else f'"{n}"' for (n,) in columns]
            rows = c.execute(f'SELECT to_jsonb(r) FROM (SELECT {", ".join(exprs)} FROM outsmart."{table}") r')
            out[table] = sorted(json.dumps(_without_ages(r[0]), sort_keys=True) for r in rows.fetchall())
    return out


def _without_ages(value):
    """`value` without `age_seconds` (how long ago a reused stream was read: wall-clock time) at any depth."""
    if isinstance(value, dict):
        return {k: _without_ages(v) for k, v in value.items() if k != "age_seconds"}
    if isinstance(value, list):
        return [_without_ages(v) for v in value]
    if isinstance(value, str) and value[:1] in "[{":
        try:  # the import log keeps `streams` as JSON text in some trees
            return json.dumps(_without_ages(json.loads(value)), sort_keys=True)
        except ValueError:
            return value
    return value


# ---- the trace -------------------------------------------------------------------------------------------------------
ENTRY = re.compile(r"^([^|\n]*)\|([^|\n]*)\|(.*)$")
MARKER = re.compile(r"^LOG:  (?:statement|execute [^:]*): SELECT 'trace: (round \d+ \w+)'$")
# A time of day with a date: the database's or the Python clock (now(), a last derive's time as a parameter).
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}(?::?\d{2})?|Z)?")
HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@$")
# How old a reused stream was, in the import log's `streams` (a parameter): wall-clock seconds.
AGE = re.compile(r'("age_seconds": )-?[0-9.]+')


def log_entries(log: str) -> list[tuple[str, str, str]]:
    """(database, session, message) per log entry; an entry's continuation lines (tab-indented) joined to it."""
    entries: list[list[str]] = []
    for line in log.splitlines():
        if line.startswith("\t") and entries:
            entries[-1][2] += "\n" + line
        elif m := ENTRY.match(line):
            entries.append([m[1], m[2], m[3]])
    return [(d, s, t) for d, s, t in entries]


def normalise(log: str) -> list[str]:
    """The target database's statements, in order: sessions numbered per category, clock timestamps masked."""
    out: list[str] = []
    sessions: dict[str, str] = {}
    for db, session, text in log_entries(log):
        if db != DB:
            continue  # other databases: the token chain, CREATE DATABASE; background processes have none
        if m := MARKER.match(text):
            out.append(f"-- {m[1]}")
            sessions = {}  # numbered afresh per category: a difference stays local
            continue
        name = sessions.setdefault(session, f"s{len(sessions) + 1}")
        text = AGE.sub(r"\1<seconds>", TIMESTAMP.sub("<timestamp>", text))
        out.extend(f"{name}|{line}" for line in text.splitlines())
    return out


def trace_diff(old: list[str], new: list[str]) -> tuple[int, list[str]]:
    """The count of differing lines (removed + added) and the unified diff, each hunk's header followed by the
    category it is in (the old trace's last marker before it), as git shows a hunk's function."""
    diff = list(difflib.unified_diff(old, new, "old", "new", lineterm="", n=3))
    changed = sum(1 for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---")))
    markers = [(i, line) for i, line in enumerate(old, 1) if line.startswith("-- round ")]
    for n, line in enumerate(diff):
        if hunk := HUNK.match(line):
            where = [m for i, m in markers if i <= int(hunk[1])]
            diff[n] = f"{line} {where[-1][3:] if where else '(before the first category)'}"
    return changed, diff


# ---- tables and summaries --------------------------------------------------------------------------------------------
def compare_tables(old: dict[str, list[str]], new: dict[str, list[str]]) -> list[str]:
    """Per table that differs: its rows only in the old and only in the new tree (the first three of each)."""
    out = []
    for table in sorted(old.keys() | new.keys()):
        a, b = old.get(table), new.get(table)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"outsmart.{table}: only in the {'new' if a is None else 'old'} tree")
            continue
        only_old = sorted(set(a) - set(b))
        only_new = sorted(set(b) - set(a))
        out.append(f"outsmart.{table}: {len(a)} rows old, {len(b)} new; {len(only_old)} only old, {len(only_new)} new")
        out += [f"  - {r[:300]}" for r in only_old[:3]] + [f"  + {r[:300]}" for r in only_new[:3]]
    return out


def summaries(rounds: list[dict]) -> list[str]:
    """One line of JSON per run and round (the summary as the runner returned it; no timings in it but the
    reused streams' age)."""
    return [
        json.dumps({"round": r["round"], **_without_ages(run)}, sort_keys=True, default=str)
        for r in rounds
        for run in r["runs"]
    ]


def compare_summaries(old: list[str], new: list[str]) -> list[str]:
    if old == new:
        return []
    return list(difflib.unified_diff(old, new, "old", "new", lineterm="", n=0))[:40]


# ---- main ------------------------------------------------------------------------------------------------------------
def checkout(rev: str, path: Path) -> Path:
    """A detached `git worktree` of `rev` at `path`."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), rev],
        check=True,
        capture_output=True,
        text=True,
    )
    return path


def report(work: Path, old: dict, new: dict) -> bool:
    """Write the traces, print the three comparisons; True when all three are equal."""
    traces = {}
    for label, result in (("old", old), ("new", new)):
        traces[label] = normalise(result["log"])
        (work / f"trace-{label}.txt").write_text("\n".join(traces[label]) + "\n")
        (work / f"summaries-{label}.jsonl").write_text("\n".join(summaries(result["rounds"])) + "\n")
    changed, diff = trace_diff(traces["old"], traces["new"])
    print(f"statement trace ({len(traces['old'])} lines old, {len(traces['new'])} new): ", end="")
    if not changed:
        print("identical")
    else:
        print(f"{changed} differing lines; the first {DIFF_LINES} lines of the diff:")
        print("\n".join(diff[:DIFF_LINES]))
    tables = compare_tables(old["tables"], new["tables"])
    print(f"tables of schema outsmart ({len(new['tables'])}): " + ("equal" if not tables else "DIFFERENT"))
    if tables:
        print("\n".join(tables))
    runs = compare_summaries(summaries(old["rounds"]), summaries(new["rounds"]))
    print(f"run summaries ({len(summaries(new['rounds']))} runs): " + ("equal" if not runs else "DIFFERENT"))
    if runs:
        print("\n".join(runs))
    failed = [s for s in summaries(new["rounds"]) + summaries(old["rounds"]) if '"status": "success"' not in s]
    for line in failed[:10]:
        print(f"not a success: {line[:400]}")
    return not (changed or tables or runs)


def _trees(args: argparse.Namespace, work: Path) -> tuple[Path, Path, list[Path]]:
    """(old, new, the worktrees made for them)."""
    try:
        made = [checkout(args.old, work / "tree-old")]
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"cannot check out {args.old}: {exc.stderr.strip()}") from None
    if args.new is None:
        new = ROOT
    elif Path(args.new).is_dir():
        new = Path(args.new).resolve()
    else:
        try:
            new = checkout(args.new, work / "tree-new")
        except subprocess.CalledProcessError as exc:
            remove_tree(made[0])
            raise SystemExit(f"cannot check out {args.new}: {exc.stderr.strip()}") from None
        made.append(new)
    return made[0], new, made


def main(argv: list[str] | None = None) -> int:
    from include.outsmart_import.transforms import today_in_amsterdam

    parser = argparse.ArgumentParser(
        prog="python -m bench.trace", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True, help="the git revision to compare with (checked out in a worktree)")
    parser.add_argument("--new", default=None, help="a tree's path or a git revision (default: this working tree)")
    parser.add_argument("--size", type=int, default=300, help="accounts in each sandbox")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (traces, logs, databases)")
    args = parser.parse_args(argv)
    # One fixed date for both trees' `today`, one start instant for both sandboxes' clocks.
    args.today = today_in_amsterdam().isoformat()
    args.clock = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    # Short: the embedded server's socket lives in its data dir, and a socket path has ~100 characters at most.
    work = Path(tempfile.mkdtemp(prefix="trace-", dir="/tmp"))
    started = time.perf_counter()
    old_tree, new_tree, made = _trees(args, work)
    try:
        print(f"old: {args.old} ({old_tree}); new: {args.new or 'the working tree'} ({new_tree}); work dir {work}")
        old = run_tree(old_tree, "old", work, args)
        new = run_tree(new_tree, "new", work, args)
        same = report(work, old, new)
    finally:
        for tree in made:
            remove_tree(tree)
    print(f"{time.perf_counter() - started:.0f} s" + (f"; traces and logs kept in {work}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
