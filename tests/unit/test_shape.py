"""The shape of the code, held: a few folders by role under `ingestd/`, no class over 350
lines, no function over 60 (the layers themselves: `lint-imports` in `make lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ingestd"
ROLES = {
    "contracts",
    "core",
    "runtime",
    "sources",
    "ledgers",
    "handlers",
    "postgres",
    "commands",
    "console",
}


def definitions() -> list[tuple[int, bool, str]]:
    """(lines, is a class, where) of every class and function in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
                found.append((size, isinstance(node, ast.ClassDef), where))
    return found


def test_the_package_is_folders_by_role() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert folders == ROLES
    assert modules == {"__init__.py", "__main__.py"}


def test_no_class_over_350_lines_and_no_function_over_60() -> None:
    found = definitions()
    assert len(found) > 500  # the walk still sees the code
    assert [w for size, is_class, w in found if is_class and size > 350] == []
    assert [w for size, is_class, w in found if not is_class and size > 60] == []
