"""The import core's modules import one way (#19): no cycle, not even through an import inside a function or under
TYPE_CHECKING; the merge knows nothing of Exact; the Exact provider knows nothing of OutSmart; the registry and what
it holds import no pandas, pyarrow or database driver at module level (Airflow parses the DAG file with them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORE = ROOT / "include" / "outsmart_import"


def _imports(path: Path) -> set[str]:
    """Every module an import statement in `path` names, wherever the statement is."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _core_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"}
    prefix = "include.outsmart_import."
    return {
        m: {i[len(prefix) :].split(".")[0] for i in _imports(CORE / f"{m}.py") if i.startswith(prefix)} & modules - {m}
        for m in modules
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                found.append([*stack[stack.index(v) :], v])
            elif v not in state:
                visit(v)
        state[u] = 2
        stack.pop()

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def test_the_import_core_has_no_import_cycle():
    graph = _core_graph()
    assert len(graph) >= 20, sorted(graph)
    assert _cycles(graph) == []
    print({m: sorted(d) for m, d in sorted(graph.items())})


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_merge_and_the_lower_layers_know_nothing_of_exact():
    graph = _core_graph()
    for module in ("merge", "staging", "database", "declarations", "enrichment", "import_log"):
        assert not graph[module] & {"catalogue", "landing", "landed_copy", "resync", "derive", "runner"}, module
        assert not any(i.startswith("exact_online") for i in _imports(CORE / f"{module}.py")), module


def test_the_exact_provider_knows_nothing_of_outsmart():
    for path in (ROOT / "plugins" / "exact_online").rglob("*.py"):
        assert not any(i.startswith("include") for i in _imports(path)), path


def test_the_registry_imports_no_pandas_pyarrow_or_driver():
    code = (
        "import sys; import include.outsmart_import.registry; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'psycopg', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
