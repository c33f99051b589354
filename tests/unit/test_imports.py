"""The import graph: no cycle among the project's modules (function-level imports included), no
function-level import of a project module to dodge one, nothing imports the command-line
assembler, and ``jobbench <read-only command> --help`` loads neither Celery, the runners nor
matplotlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("producer", "worker", "shared")
#: The command-line assembler (``producer/cli/__init__.py``): only its ``__main__`` imports it.
ASSEMBLER = "producer.cli"
#: Function-level imports of project modules that are deliberate, with why.
LAZY_ON_PURPOSE = {
    # The report draws charts: matplotlib loads when a report is drawn, not for --help.
    ("producer.cli.report", "producer.report"),
}


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


MODULES = project_modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> Iterator[tuple[str, bool, ast.stmt]]:
    """(imported project module, inside a function?, the statement) for each import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield target, id(node) in in_function, node  # type: ignore[misc]


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (at the top or in a function). A package
    importing its own submodules is no cycle, nor a submodule importing its package."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in imports_of(module):
            if not module.startswith(target + "."):
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_project_modules() -> None:
    assert len(MODULES) > 30
    assert cycles(graph()) == []


def test_no_function_level_import_of_a_project_module_except_on_purpose() -> None:
    lazy = {
        (module, target)
        for module in MODULES
        for target, in_function, _ in imports_of(module)
        if in_function
    }
    assert lazy <= LAZY_ON_PURPOSE, sorted(lazy - LAZY_ON_PURPOSE)


def test_nothing_imports_the_command_line_assembler() -> None:
    importers = sorted(
        module
        for module in MODULES
        for target, _, node in imports_of(module)
        if target == ASSEMBLER
        and not (isinstance(node, ast.ImportFrom) and node.module != ASSEMBLER)
        and module != f"{ASSEMBLER}.__main__"
    )
    assert importers == []


@pytest.mark.parametrize("command", ["verify", "report", "history", "compare"])
def test_help_of_a_command_reading_runs_loads_no_celery_runner_or_matplotlib(
    command: str,
) -> None:
    probe = (
        "import sys\n"
        "from producer.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = ('celery', 'kombu', 'matplotlib', 'producer.runners', 'producer.bench')\n"
        "print('LOADED:' + ' '.join(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "LOADED:", f"jobbench {command} --help imported {loaded}"
    assert f"usage: jobbench {command}" in done.stdout
