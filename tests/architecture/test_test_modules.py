"""The tests' own layout (tests/README.md): what test modules share lives in
tests/helpers/ and tests/factories.py; no test module imports from another test module
or from a conftest (fixtures are used by name)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def _imported(path: Path, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        package = list(path.relative_to(ROOT).parent.parts)
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            module = ".".join([*base, node.module] if node.module else base)
            names = [f"{module}.{alias.name}" for alias in node.names]
            return [module, *names]
        return [node.module or "", *(f"{node.module}.{alias.name}" for alias in node.names)]
    return []


def test_no_test_module_imports_another_or_a_conftest():
    offending = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for module in _imported(path, node):
                parts = module.split(".")
                if parts[0] == "tests" and any(
                    part == "conftest" or part.startswith("test_") for part in parts[1:]
                ):
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}")
    assert offending == [], "import it from tests/helpers/ instead"
