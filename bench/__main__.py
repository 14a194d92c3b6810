"""Runs one benchmark by name: `python -m bench NAME [options]` calls bench/NAME.py's main().

A benchmark is any module of this package not starting with `_` or `test_`; it defines
`main(argv: list[str]) -> int`. Without a name, or with an unknown one, lists them (exit code 2).
"""

import ast
import importlib
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def available() -> dict[str, str]:
    """Benchmark name -> first line of its docstring, read without importing the module."""
    names = {}
    for path in sorted(PACKAGE_DIR.glob("[!_]*.py")):
        if not path.name.startswith("test_"):
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            names[path.stem] = (docstring.splitlines() or [""])[0]
    return names


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in available():
        problem = (
            f"unknown benchmark: {argv[0]}" if argv and argv[0][0] != "-" else "no benchmark named"
        )
        print(f"{problem}\nusage: python -m bench NAME [options]\n\nbenchmarks:", file=sys.stderr)
        for name, summary in available().items():
            print(f"  {name:<16} {summary}", file=sys.stderr)
        return 2
    return importlib.import_module(f"bench.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
