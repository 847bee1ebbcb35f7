"""The shape the README's "Architecture" promises, checked on the source itself.

import-linter (run by `make test`) keeps the layers one-way; these keep the habits it
cannot see: no project import hidden inside a function to dodge a cycle, and no module
grown past the size where it should be split by concept.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("core", "billing", "customers", "subscriptions", "webhooks", "backoffice", "config")
MAX_LINES = 600


def production_modules():
    for package in PROJECT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    return []


def test_no_project_import_hides_inside_a_function():
    """Only `AppConfig.ready()` imports inside a function: Django wants the models ready
    before signals and subscribers are wired."""
    hidden = []
    for path in production_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if function.name == "ready" and path.name == "apps.py":
                continue
            for node in ast.walk(function):
                for module in _imported(node):
                    if module.split(".")[0] in PROJECT:
                        hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}")
    assert hidden == []


def test_no_production_module_is_past_the_size_to_split():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in production_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_billing_holds_apps_not_modules():
    """billing/ is a namespace of apps (and the provider boundary): one concept each."""
    loose = sorted(
        path.name
        for path in (ROOT / "billing").glob("*.py")
        if path.name not in ("__init__.py", "apps.py")
    )
    assert loose == []


def test_no_import_cycle_between_project_modules():
    """Not between packages only (import-linter's contracts) but module by module, with
    imports inside functions counted: every strongly connected set is a single module."""
    import grimp

    graph = grimp.build_graph(*PROJECT)
    modules = {m for m in graph.modules if ".migrations" not in m}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    assert cycles == []
