"""The domain package's shape: no import cycles, nothing from blueprints, a docstring everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SHARED.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in SHARED.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _import_time_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of ``shared`` that importing ``path`` imports at once (not lazy, not TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from pkg import mod`` depends on the module; ``from mod import name`` on mod.
                modules = {f"{node.module}.{alias.name}" for alias in node.names} & known.keys()
                found.update(modules or {node.module})
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found & known.keys()


def test_the_domain_package_has_no_import_cycles() -> None:
    known = _modules()
    graph = {name: _import_time_imports(path, known) - {name} for name, path in known.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def walk(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting[visiting.index(name) :], name])
        visiting.append(name)
        for target in sorted(graph[name]):
            walk(target)
        visiting.pop()
        done.add(name)

    for name in sorted(known):
        walk(name)


def test_the_domain_package_imports_nothing_from_blueprints_and_documents_every_module() -> None:
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{name} has no module docstring"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("blueprints"), f"{name} imports {node.module}"


def test_every_module_imports_first() -> None:
    """Each module imported on its own, before any other of ours, loads (a cycle would break it)."""
    import importlib
    import sys

    for name in sorted(_modules()):
        saved = {key: module for key, module in sys.modules.items() if key == "shared" or key.startswith("shared.")}
        for key in saved:
            del sys.modules[key]
        try:
            importlib.import_module(name)
        finally:
            for key in [k for k in sys.modules if k == "shared" or k.startswith("shared.")]:
                del sys.modules[key]
            sys.modules.update(saved)
