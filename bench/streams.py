"""Each Exact stream read once (#13): what a round of every category costs in Exact API calls before and after,
what a filter change costs, and what landing a stream costs locally.

1. Rounds: the sandbox of `make demo-pro` (5,000 accounts, seed 1), the Pro settings, every enabled category once
   in the registry's order (round 1, initial), the demo's changes (include/demo/mutations.py), round 2
   (incremental) and round 3 (nothing changed). The calls of a round are counted twice: by the sandbox (its stats,
   reset before each round) and from `outsmart.import_log`. Once for this tree and once for the tree BEFORE the
   landing (a `git worktree` of `BEFORE`), each in its own child process with its own tree first on PYTHONPATH,
   its own fresh sandbox and its own fresh database. The sandbox's rate limits are raised so that no round waits
   for a minute window (the hook sleeps before a call that would be refused, so the count is the same either way).
2. Filters: relations with relation_types ["customer"], an unchanged run, widened, narrowed back; materials with
   one item group, all groups, one again. Each step's calls, and its target table against a fresh import with the
   same settings into an empty database (plus the rows that left the filter, which the product keeps).
3. Landing: N synthetic accounts through `Landing` with an in-memory Exact (no HTTP): landing, the read-back
   through `derive_pages`, a re-land where 1 % changed; seconds per 1,000 rows against the 1 s per call that
   Exact's 60 calls a minute allow (one call = up to 1,000 records).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from include.outsmart_import.target_db import conninfo_from_airflow_json

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "ae96de6"  # the commit before #13: each category read its own streams
PRO_SETTINGS = ROOT / "include/demo/settings_pro.json"
DAILY_BUDGET = 5000  # Exact's calls a day per division
TARGET_ROUND_2 = 20  # the target for the incremental round (from 38)

# One child per tree: it runs the rounds when the parent says "go" (the parent changes the sandbox in between).
# Only names that exist in both trees: run_category, check_runnable, the hook and its token store.
CHILD = r"""
import json, sys, time
from pathlib import Path
from include import local_airflow
local_airflow.configure(Path(sys.argv[1]))
import exact_online, include
from exact_online.hooks.exact_online import ExactOnlineHook
from exact_online.token_store import PostgresTokenStore
from include.outsmart_import.registry import CATEGORIES
from include.outsmart_import.runner import run_category
from include.outsmart_import.scheduling import check_runnable
from include.outsmart_import.settings import parse_settings
from include.outsmart_import.target_db import connector
settings = parse_settings(Path(sys.argv[2]).read_text())
hook = ExactOnlineHook(token_store=PostgresTokenStore(connector()))
connect = connector()
trees = [str(Path(m.__file__).resolve()) for m in (include, exact_online)]
for round_no in range(1, int(sys.argv[3]) + 1):
    print(f"READY {round_no}", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("stopped by the parent")
    runs = []
    for name, category in CATEGORIES.items():
        try:
            check_runnable(category, settings)
        except Exception:
            continue
        calls, t = hook.stats.api_calls, time.perf_counter()
        try:
            s = run_category(name, settings, hook, connect)
            runs.append({"category": name, "log_id": s.log_id, "status": s.status, "api_calls": s.api_calls})
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            runs.append({"category": name, "log_id": None, "status": "failed", "error": error,
                         "api_calls": hook.stats.api_calls - calls})
        runs[-1]["wall_s"] = round(time.perf_counter() - t, 2)
    print("ROUND " + json.dumps({"round": round_no, "runs": runs, "trees": trees}), flush=True)
"""


# ---- sandbox and databases -------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sandbox:
    """The sandbox in its own process, started from `tree` (the sandbox is the same in both trees)."""

    size: int
    seed: int = 1
    tree: Path = ROOT
    proc: subprocess.Popen | None = None
    url: str = ""

    def __enter__(self) -> Sandbox:
        port = _free_port()
        limits = ["--minutely-limit", "100000", "--daily-limit", "1000000"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "include.exact_sandbox", "--port", str(port), "--size", str(self.size)]
            + ["--seed", str(self.seed), *limits],
            cwd=self.tree,
            env={**os.environ, "PYTHONPATH": _pythonpath(self.tree)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/_sandbox/health", timeout=1)
                return self
            except requests.ConnectionError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("the sandbox did not start")

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def reset_stats(self) -> None:
        requests.post(self.url + "/_sandbox/reset-stats", timeout=30).raise_for_status()

    def calls(self) -> dict[str, int]:
        """API calls per endpoint since the last reset (token requests are not API calls)."""
        return requests.get(self.url + "/_sandbox/stats", timeout=30).json()["calls"]

    def records(self, entity: str) -> list[dict]:
        return requests.post(self.url + "/_sandbox/records", json={"entity": entity}, timeout=60).json()["records"]

    def exact_conn(self) -> str:
        from include.exact_sandbox.server import SandboxConfig

        cfg = SandboxConfig()
        return json.dumps(
            {
                "conn_type": "http",
                "host": self.url,
                "login": cfg.client_id,
                "password": cfg.client_secret,
                "extra": {"division": cfg.division, "refresh_token": cfg.initial_refresh_token},
            }
        )


def _pythonpath(tree: Path) -> str:
    return f"{tree}{os.pathsep}{tree / 'plugins'}"


def fresh_db(server_conn: dict, name: str) -> dict:
    """A new empty database on the bench's server; returns its Airflow connection JSON."""
    with psycopg.connect(conninfo_from_airflow_json(server_conn), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    return {**server_conn, "schema": name}


def drop_db(server_conn: dict, name: str) -> None:
    with psycopg.connect(conninfo_from_airflow_json(server_conn), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ---- 1. rounds, before and after -------------------------------------------------------------------------------------
def run_rounds(
    tree: Path, server_conn: dict, work: Path, *, label: str, size: int = 5000, seed: int = 1, settings=PRO_SETTINGS
) -> dict:
    """Round 1 (initial), the demo's changes, round 2 (incremental), round 3 (no change), with `tree`'s code."""
    from include.demo.mutations import apply_demo_mutations

    db = f"bench_rounds_{label}"
    conn = fresh_db(server_conn, db)
    rounds = []
    with Sandbox(size, seed, tree) as sandbox:
        env = {
            **os.environ,
            "PYTHONPATH": _pythonpath(tree),
            "AIRFLOW_CONN_OUTSMART_POSTGRES": json.dumps(conn),
            "AIRFLOW_CONN_EXACT_ONLINE_DEFAULT": sandbox.exact_conn(),
            "EXACT_IMPORT_RETRIES": "0",
        }
        errors = (work / f"rounds-{label}.stderr").open("w")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(work / f"rounds-{label}"), str(settings), "3"],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            for round_no in (1, 2, 3):
                _expect(child, f"READY {round_no}", errors.name)
                if round_no == 2:
                    apply_demo_mutations(sandbox.url)
                sandbox.reset_stats()
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
                done = json.loads(_expect(child, "ROUND ", errors.name))
                rounds.append({**done, "sandbox_calls": sandbox.calls()})
            child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
            errors.close()
    modules = {t for r in rounds for t in r.pop("trees")}
    if not all(Path(m).is_relative_to(tree.resolve()) for m in modules):
        raise RuntimeError(f"the {label} child ran code from {modules}, not from {tree}")
    result = {"tree": label, "rounds": [_round_result(r, _import_log(conn, r["runs"])) for r in rounds]}
    drop_db(server_conn, db)
    return result


def _expect(child: subprocess.Popen, prefix: str, stderr_file: str) -> str:
    """The child's next stdout line that starts with `prefix` (without it)."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"the child stopped before {prefix!r}: " + Path(stderr_file).read_text()[-3000:])


def _import_log(conn: dict, runs: list[dict]) -> dict[int, dict]:
    """The import log's rows of these runs, by id; `streams` and `derive` only where the tree has them."""
    ids = [r["log_id"] for r in runs if r["log_id"] is not None]
    with psycopg.connect(conninfo_from_airflow_json(conn)) as c:
        columns = {
            r[0]
            for r in c.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'outsmart' AND table_name = 'import_log'"
            ).fetchall()
        }
        extra = [x for x in ("streams", "derive") if x in columns]
        rows = c.execute(
            f"SELECT id, category, status, api_calls, fetched {''.join(', ' + x for x in extra)} "
            f"FROM outsmart.import_log WHERE id = ANY(%s)",
            (ids,),
        ).fetchall()
    keys = ["id", "category", "status", "api_calls", "fetched", *extra]
    return {r[0]: dict(zip(keys, r, strict=True)) for r in rows}


def _round_result(done: dict, logged: dict[int, dict]) -> dict:
    runs = []
    for run in done["runs"]:
        row = logged.get(run["log_id"], {})
        streams = row.get("streams")
        runs.append(
            {
                **run,
                "log_api_calls": row.get("api_calls"),
                "log_status": row.get("status"),
                "derive": row.get("derive"),
                "reads": None if streams is None else [s["stream"] for s in streams if s["action"] != "reused"],
                "reused": None if streams is None else [s["stream"] for s in streams if s["action"] == "reused"],
            }
        )
    return {
        "round": done["round"],
        "categories": len(runs),
        "failed": [r["category"] for r in runs if r["status"] not in ("success", "dry_run")],
        "sandbox_calls": sum(done["sandbox_calls"].values()),
        "log_calls": sum(r["log_api_calls"] or 0 for r in runs),
        "wall_s": round(sum(r["wall_s"] for r in runs), 2),
        "calls_by_endpoint": dict(sorted(done["sandbox_calls"].items())),
        "runs": runs,
    }


def compare_rounds(before: dict | None, after: dict) -> dict:
    """Calls per round side by side, and what an incremental and an unchanged round cost a day."""
    out: dict = {"rounds": [], "per_day": []}
    names = {1: "1 initial", 2: "2 incremental (demo's changes)", 3: "3 no change"}
    for i, r in enumerate(after["rounds"]):
        b = before["rounds"][i] if before else None
        out["rounds"].append(
            {
                "round": names[r["round"]],
                "before": b["sandbox_calls"] if b else None,
                "after": r["sandbox_calls"],
                "after_log": r["log_calls"],
                "before_log": b["log_calls"] if b else None,
                "after_s": r["wall_s"],
                "before_s": b["wall_s"] if b else None,
            }
        )
    for round_no, what in ((2, "incremental round"), (3, "unchanged round")):
        for tree in (before, after):
            if tree is None:
                continue
            calls = tree["rounds"][round_no - 1]["sandbox_calls"]
            for schedule, runs in (("hourly", 24), ("every 15 min", 96)):
                out["per_day"].append(
                    {
                        "tree": tree["tree"],
                        "round": what,
                        "schedule": schedule,
                        "calls_per_round": calls,
                        "calls_per_day": calls * runs,
                        "share_of_budget": round(calls * runs / DAILY_BUDGET, 3),
                    }
                )
    out["target_round_2"] = f"<= {TARGET_ROUND_2}: after {after['rounds'][1]['sandbox_calls']}"
    return out


# ---- 2. filter changes -----------------------------------------------------------------------------------------------
@dataclass
class FilterScenario:
    category: str
    key: str  # the filter setting
    steps: list[tuple[str, object]]  # (step, the filter's value); the first is the initial import
    base: dict = field(default_factory=dict)  # the category's other settings


def relations_scenario() -> FilterScenario:
    wide = ["customer", "supplier", "prospect"]
    return FilterScenario(
        "relations",
        "relation_types",
        [("initial", ["customer"]), ("unchanged", ["customer"]), ("widened", wide), ("narrowed", ["customer"])],
        {"include_inactive": False, "include_blocked": False},
    )


def materials_scenario(group: str) -> FilterScenario:
    return FilterScenario(
        "materials",
        "item_groups",
        [("initial", [group]), ("unchanged", [group]), ("widened", []), ("narrowed", [group])],
    )


def _settings(scenario: FilterScenario, value) -> object:
    from include.outsmart_import.settings import parse_settings

    cat = {"enabled": True, **scenario.base, scenario.key: value}
    return parse_settings({"categories": {scenario.category: cat}})


def _rows(conn: dict, category: str) -> dict[str, tuple]:
    """The category's live rows (every declared column), by merge key."""
    from include.outsmart_import.registry import CATEGORIES

    spec = CATEGORIES[category].table
    cols = ", ".join(f'"{c}"' for c in spec.column_names)
    with psycopg.connect(conninfo_from_airflow_json(conn)) as c:
        rows = c.execute(f"SELECT {cols} FROM outsmart.{spec.name} WHERE deleted_at IS NULL").fetchall()
    key = spec.column_names.index(spec.merge_key)
    return {str(r[key]): tuple(r) for r in rows}


def run_filter_scenario(scenario: FilterScenario, sandbox: Sandbox, server_conn: dict, hook) -> list[dict]:
    """Each step on one target (counting its calls), and a fresh import with the step's settings into an empty
    database to compare with: the target must hold exactly the fresh import's rows plus the rows imported before
    that no longer pass the filter (kept, as the product's rule says)."""
    from include.outsmart_import.runner import run_category

    target = fresh_db(server_conn, f"bench_filter_{scenario.category}")
    previous: dict[str, tuple] = {}
    steps = []
    for n, (step, value) in enumerate(scenario.steps):
        settings = _settings(scenario, value)
        sandbox.reset_stats()
        t = time.perf_counter()
        summary = run_category(scenario.category, settings, hook, _connector(target))
        wall = time.perf_counter() - t
        calls = sum(sandbox.calls().values())
        fresh = fresh_db(server_conn, f"bench_filter_fresh_{n}")
        run_category(scenario.category, settings, hook, _connector(fresh))
        got, expected = _rows(target, scenario.category), _rows(fresh, scenario.category)
        kept = {k: v for k, v in previous.items() if k not in expected}
        drop_db(server_conn, f"bench_filter_fresh_{n}")
        steps.append(
            {
                "category": scenario.category,
                "step": step,
                scenario.key: value,
                "api_calls": calls,
                "log_api_calls": summary.api_calls,
                "derive": summary.derive,
                "wall_s": round(wall, 2),
                "streams": summary.streams,
                "rows": len(got),
                "passing": len(expected),
                "kept_outside_filter": len(kept),
                "equals_fresh_import": got == {**expected, **kept},
            }
        )
        previous = got
    drop_db(server_conn, f"bench_filter_{scenario.category}")
    return steps


def _connector(conn: dict) -> Callable[[], psycopg.Connection]:
    conninfo = conninfo_from_airflow_json(conn)
    return lambda: psycopg.connect(conninfo)


def run_filters(server_conn: dict, *, size: int = 5000, seed: int = 1) -> dict:
    """Both scenarios against one fresh sandbox; the token chain lives in a database of its own."""
    from exact_online.hooks.exact_online import ExactOnlineHook
    from exact_online.token_store import PostgresTokenStore

    tokens = fresh_db(server_conn, "bench_filter_tokens")
    saved = os.environ.get("AIRFLOW_CONN_EXACT_ONLINE_DEFAULT")
    with Sandbox(size, seed) as sandbox:
        os.environ["AIRFLOW_CONN_EXACT_ONLINE_DEFAULT"] = sandbox.exact_conn()
        hook = ExactOnlineHook(token_store=PostgresTokenStore(_connector(tokens)))
        materials = [i for i in sandbox.records("items") if i["IsTime"] == 0]
        groups = sorted({i["ItemGroupCode"] for i in materials})
        # The group with the most materials: narrowing to it leaves the other groups' materials outside the filter.
        group = max(groups, key=lambda g: sum(1 for i in materials if i["ItemGroupCode"] == g))
        steps = []
        for scenario in (relations_scenario(), materials_scenario(group)):
            steps += run_filter_scenario(scenario, sandbox, server_conn, hook)
    if saved is None:
        os.environ.pop("AIRFLOW_CONN_EXACT_ONLINE_DEFAULT", None)
    else:
        os.environ["AIRFLOW_CONN_EXACT_ONLINE_DEFAULT"] = saved
    drop_db(server_conn, "bench_filter_tokens")
    return {"item_group": group, "item_groups": groups, "steps": steps, "verdict": filter_verdict(steps)}


def filter_verdict(steps: list[dict]) -> list[str]:
    """Per category: each filter change's calls against the unchanged run's, and the derive it logged."""
    out = []
    for category in dict.fromkeys(s["category"] for s in steps):
        by = {s["step"]: s for s in steps if s["category"] == category}
        base = by["unchanged"]["api_calls"]
        for step in ("widened", "narrowed"):
            s = by[step]
            out.append(
                f"{category} {step}: {s['api_calls']} calls vs {base} unchanged "
                f"({'met' if s['api_calls'] <= base else 'MISSED'}); derive {s['derive']!r}; "
                f"equals the fresh import: {s['equals_fresh_import']}"
            )
    return out


# ---- 3. landing cost -------------------------------------------------------------------------------------------------
@dataclass
class _Stats:
    api_calls: int = 0


@dataclass
class MemoryExact:
    """An Exact without HTTP: the hook's paging (1,000 records a call), filtered on Timestamp."""

    records: list[dict]
    page_size: int = 1000
    stats: _Stats = field(default_factory=_Stats)

    def _paged(self, rows: list[dict]) -> Iterator[list[dict]]:
        for i in range(0, max(len(rows), 1), self.page_size):
            self.stats.api_calls += 1
            yield rows[i : i + self.page_size]

    def sync(self, endpoint: str, select: list[str], since: int) -> Iterator[list[dict]]:
        return self._paged([r for r in self.records if r["Timestamp"] > since])

    def collection(self, endpoint: str, select: list[str]) -> Iterator[list[dict]]:
        return self._paged(self.records)

    def deleted(self, entity_type, since: int) -> Iterator[list[dict]]:
        return self._paged([])


def synthetic_accounts(n: int, select: tuple[str, ...], seed: int = 1) -> list[dict]:
    """N accounts as Exact's sync endpoint sends them (the sandbox's generator, encoded, with `__metadata`)."""
    from include.exact_sandbox.data import build_division
    from include.exact_sandbox.odata import encode_value

    div = build_division(3_000_001, seed=seed, size=n, now=dt.datetime.now(dt.UTC), accounts_only=True)
    out = []
    for acc in div.accounts.values():
        rec: dict = {
            "__metadata": {"uri": f"https://start.exactonline.nl/api/v1/3000001/sync/CRM/Accounts(guid'{acc['ID']}')"}
        }
        rec.update({name: encode_value(acc.get(name)) for name in select})
        out.append(rec)
    return out


def _change(records: list[dict], offset: int = 0, share: float = 0.01) -> int:
    """Every 1/share-th record (from `offset`) gets a new name and a higher Timestamp, as an edit in Exact would."""
    top = max(r["Timestamp"] for r in records)
    picked = records[offset :: round(1 / share)]
    for i, r in enumerate(picked, 1):
        r["Name"] = f"{r['Name']} *"
        r["Timestamp"] = top + i
    return len(picked)


def _landing_once(conn: dict, records: list[dict]) -> dict:
    """One round: land all, read back, re-land after 1 % changed (incremental: Exact sends the changed records),
    then after another 1 % changed a full re-read (Exact sends every record, 1 % differ)."""
    from include.outsmart_import.catalogue import STREAMS, all_streams
    from include.outsmart_import.landed_copy import derive_pages
    from include.outsmart_import.landing import LANDED, Landing

    streams = all_streams()
    stream = streams["sync/CRM/Accounts"]
    connect = _connector(conn)
    with connect() as c:
        c.execute(f"TRUNCATE {LANDED}, {STREAMS}")
    exact = MemoryExact([dict(r) for r in records])
    landing = Landing(exact, connect, None, streams)
    n = len(records)

    t = time.perf_counter()
    first = landing.refresh(stream, reuse_window=0)
    t_land = time.perf_counter() - t

    with connect() as c:
        size = c.execute(f"SELECT pg_total_relation_size('{LANDED}')").fetchone()
    with connect() as c, c.cursor() as cur:
        t = time.perf_counter()
        read_back, high = 0, 0
        for page in derive_pages(cur, stream.name, 0):
            read_back += len(page.records)
            high = page.high
        t_derive = time.perf_counter() - t

    changed = _change(exact.records)
    t = time.perf_counter()
    incr = landing.refresh(stream, reuse_window=0)
    t_incr = time.perf_counter() - t
    changed_again = _change(exact.records, offset=50)
    t = time.perf_counter()
    full = landing.refresh(stream, reuse_window=0, full_read=True)
    t_full = time.perf_counter() - t
    landed = (first.landed, read_back, incr.landed, full.landed)
    assert landed == (n, n, changed, changed_again), landed
    return {
        "land_s": t_land,
        "derive_s": t_derive,
        "reland_incremental_s": t_incr,
        "reland_full_s": t_full,
        "changed": changed,
        "high": high,
        "disk_bytes": size[0] if size else None,
    }


def run_landing(server_conn: dict, n: int, repeat: int = 3) -> dict:
    """Seconds per 1,000 rows (median of `repeat`), and that as a share of the 1 s a call may take."""
    from include.outsmart_import.catalogue import all_streams
    from include.outsmart_import.schema import ensure_schema

    conn = fresh_db(server_conn, "bench_landing")
    with psycopg.connect(conninfo_from_airflow_json(conn)) as c:
        ensure_schema(c)
    records = synthetic_accounts(n, all_streams()["sync/CRM/Accounts"].select)
    runs = [_landing_once(conn, records) for _ in range(repeat)]
    drop_db(server_conn, "bench_landing")
    changed = runs[0]["changed"]

    def per_1000(key: str, rows: int) -> float:
        return round(statistics.median(r[key] for r in runs) / rows * 1000, 4)

    out = {
        "rows": n,
        "runs": repeat,
        "bytes_per_record_json": round(sum(len(json.dumps(r)) for r in records[:1000]) / min(n, 1000)),
        # exact_landed (table, TOAST, indexes) right after the first landing, per landed row.
        "disk_bytes_per_row": round(runs[0]["disk_bytes"] / n),
        "land_s_per_1000": per_1000("land_s", n),
        "derive_s_per_1000": per_1000("derive_s", n),
        "reland_1pct_incremental_s_per_1000_changed": per_1000("reland_incremental_s", changed),
        "reland_full_read_1pct_changed_s_per_1000": per_1000("reland_full_s", n),
        "land_s": [round(r["land_s"], 3) for r in runs],
        "derive_s": [round(r["derive_s"], 3) for r in runs],
        "reland_incremental_s": [round(r["reland_incremental_s"], 3) for r in runs],
        "reland_full_s": [round(r["reland_full_s"], 3) for r in runs],
    }
    # Exact allows 60 calls a minute: 1 s per call, and a call brings up to 1,000 records.
    out["land_plus_derive_share_of_1s_call"] = round(out["land_s_per_1000"] + out["derive_s_per_1000"], 4)
    return out


# ---- all three -------------------------------------------------------------------------------------------------------
def before_tree(ref: str, work: Path) -> Path:
    """A `git worktree` of `ref` (detached) under `work`."""
    path = work / f"before-{ref}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), ref],
        check=True,
        capture_output=True,
        text=True,
    )
    return path


def remove_tree(path: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def _run_before(ref: str, server_conn: dict, work: Path) -> dict | None:
    """The rounds with the code of `ref`; None where there is no git history (e.g. in the Docker image)."""
    try:
        tree = before_tree(ref, Path(tempfile.mkdtemp(prefix="outsmart-before-", dir=work)))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"streams: cannot check out {ref}: {getattr(exc, 'stderr', None) or exc}", file=sys.stderr)
        return None
    try:
        return run_rounds(tree, server_conn, work, label="before")
    finally:
        remove_tree(tree)


def run_streams_benchmark(
    server_conn: dict,
    work: Path,
    *,
    parts: tuple[str, ...] = ("rounds", "filters", "landing"),
    before: str = BEFORE,
    landing_sizes: tuple[int, ...] = (10_000, 100_000),
) -> dict:
    out: dict = {"before_ref": before or None}
    if "rounds" in parts:
        after = run_rounds(ROOT, server_conn, work, label="after")
        before_result = None
        if before:
            before_result = _run_before(before, server_conn, work)
            if before_result is None:
                out["before_ref"] = f"{before}: no git checkout to take it from (not run)"
        out["rounds"] = {"before": before_result, "after": after, "compare": compare_rounds(before_result, after)}
    if "filters" in parts:
        out["filters"] = run_filters(server_conn)
    if "landing" in parts:
        out["landing"] = [run_landing(server_conn, n) for n in landing_sizes if n]
    return out


# ---- the printed tables ----------------------------------------------------------------------------------------------
def print_streams(streams: dict) -> None:
    if streams.get("rounds"):
        _print_rounds(streams["rounds"], streams.get("before_ref"))
    if streams.get("filters"):
        _print_filters(streams["filters"])
    if streams.get("landing"):
        _print_landing(streams["landing"])


def _dash(value) -> str:
    return "-" if value is None else str(value)


def _print_rounds(rounds: dict, before_ref: str | None) -> None:
    compare = rounds["compare"]
    print(
        f"\nStreams (#13): Exact API calls of a round of every enabled category (demo-pro sandbox, 5,000 accounts, "
        f"seed 1), before ({before_ref or 'not run'}) and after; counted by the sandbox (import log in brackets)"
    )
    head = f"{'round':<32} {'before':>14} {'after':>14} {'before s':>9} {'after s':>8}"
    print(head + "\n" + "-" * len(head))
    for r in compare["rounds"]:
        before = f"{_dash(r['before'])} ({_dash(r['before_log'])})"
        after = f"{r['after']} ({r['after_log']})"
        print(f"{r['round']:<32} {before:>14} {after:>14} {_dash(r['before_s']):>9} {r['after_s']:>8}")
    print(f"target for round 2: {compare['target_round_2']}")
    print(f"\nCalls a day (Exact's budget: {DAILY_BUDGET} a day per division)")
    head = f"{'tree':<7} {'round':<18} {'schedule':<13} {'calls/round':>11} {'calls/day':>9} {'of budget':>9}"
    print(head + "\n" + "-" * len(head))
    for d in compare["per_day"]:
        print(
            f"{d['tree']:<7} {d['round']:<18} {d['schedule']:<13} {d['calls_per_round']:>11} "
            f"{d['calls_per_day']:>9} {d['share_of_budget']:>9.1%}"
        )
    for tree in ("before", "after"):
        if rounds.get(tree):
            for r in rounds[tree]["rounds"]:
                calls = ", ".join(f"{k} {v}" for k, v in r["calls_by_endpoint"].items())
                failed = f"; FAILED: {r['failed']}" if r["failed"] else ""
                print(f"  {tree} round {r['round']}: {calls}{failed}")


def _print_filters(filters: dict) -> None:
    print(f"\nWhat a filter change costs (materials' one item group: {filters['item_group']})")
    head = (
        f"{'category':<10} {'step':<10} {'filter':<34} {'calls':>5} {'s':>5}  {'derive':<24} "
        f"{'rows':>5} {'passing':>7} {'kept':>5}  = fresh import"
    )
    print(head + "\n" + "-" * len(head))
    for s in filters["steps"]:
        value = s.get("relation_types", s.get("item_groups"))
        shown = ",".join(value) if value else "(all)"
        print(
            f"{s['category']:<10} {s['step']:<10} {shown:<34} {s['api_calls']:>5} {s['wall_s']:>5} "
            f" {s['derive']:<24} {s['rows']:>5} {s['passing']:>7} {s['kept_outside_filter']:>5}  "
            f"{'yes' if s['equals_fresh_import'] else 'NO'}"
        )
    for line in filters["verdict"]:
        print("  " + line)


def _print_landing(landing: list[dict]) -> None:
    print(
        "\nLanding cost, in-memory Exact (no HTTP), median of runs; seconds per 1,000 rows, and as a share of the 1 s "
        "a call of up to 1,000 records may take at 60 calls a minute"
    )
    head = (
        f"{'rows':>8} {'land':>7} {'derive':>7} {'land+derive':>11} {'1 % re-land (incr.)':>20} {'full re-read':>12} "
        f"{'disk B/row':>10}"
    )
    print(head + "\n" + "-" * len(head))
    for r in landing:
        both = r["land_plus_derive_share_of_1s_call"]
        incremental = r["reland_1pct_incremental_s_per_1000_changed"]
        full = r["reland_full_read_1pct_changed_s_per_1000"]
        print(
            f"{r['rows']:>8} {r['land_s_per_1000']:>7.4f} {r['derive_s_per_1000']:>7.4f} {both:>6.4f} {both:>4.1%} "
            f"{incremental:>20.4f} {full:>12.4f} {r['disk_bytes_per_row']:>10}"
        )
