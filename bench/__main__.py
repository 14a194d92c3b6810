"""Runs one benchmark by name: `python -m bench NAME [options]` calls bench/NAME.py's main().

A benchmark is any module of this package not starting with `_` or `test_`; it defines
`main(argv: list[str]) -> int`. Without a name, or with an unknown one, lists them (exit code 2).
"""

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def available() -> dict[str, str]:
    """Benchmark name -> first line of its docstring, read without importing the module."""
    names: dict[str, str] = {}
    for module in pkgutil.iter_modules([str(PACKAGE_DIR)]):
        if module.ispkg or module.name.startswith(("_", "test_")):
            continue
        source = (PACKAGE_DIR / f"{module.name}.py").read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(source)) or ""
        names[module.name] = docstring.splitlines()[0] if docstring else ""
    return dict(sorted(names.items()))


def usage(problem: str) -> int:
    """Print the problem and the benchmarks there are; the exit code of a usage error."""
    print(f"{problem}\nusage: python -m bench NAME [options]\n\nbenchmarks:", file=sys.stderr)
    for name, summary in available().items():
        print(f"  {name:<16} {summary}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        return usage("no benchmark named")
    name, options = argv[0], argv[1:]
    if name not in available():
        return usage(f"unknown benchmark: {name}")
    module = importlib.import_module(f"bench.{name}")
    return module.main(options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
