"""The code's shape: lines per module and the longest functions, for a closing note's
before and after.

    python scripts/code_shape.py            # src/grubench
    python scripts/code_shape.py --top 15 --root src/grubench
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def functions(path: Path) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method in ``path``."""
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                found.append((child.end_lineno - child.lineno + 1, name))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="src/grubench")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    root = Path(args.root)
    modules = sorted(root.rglob("*.py"))
    sizes = sorted(((len(p.read_text().splitlines()), p) for p in modules), reverse=True)
    print(f"{len(modules)} modules, {sum(n for n, _ in sizes)} lines")
    print("\nlargest modules:")
    for lines, path in sizes[: args.top]:
        print(f"  {lines:5d}  {path.relative_to(root)}")
    longest = sorted(((n, f"{p.relative_to(root)}:{name}") for p in modules
                      for n, name in functions(p)), reverse=True)  # fmt: skip
    print("\nlongest functions:")
    for lines, name in longest[: args.top]:
        print(f"  {lines:5d}  {name}")


if __name__ == "__main__":
    main()
