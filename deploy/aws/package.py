"""`python -m deploy.aws.package DIR` (make lambda-package): the Lambda functions' code folder.

DIR gets the packages the functions import (common, functions, realtime, scheduled; no tests)
and every pinned runtime dependency of requirements.txt as Linux x86_64 wheels for CPython
3.11 from PyPI, whatever machine builds it, so the folder is what Lambda's python3.11 runtime
runs. deploy/aws/template.yaml names it as every function's CodeUri; `sam deploy` zips and
uploads it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "functions", "realtime", "scheduled")
PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp")
PYTHON = ("--python-version", "3.11", "--abi", "cp311")
LEFT_OUT = shutil.ignore_patterns("tests", "__pycache__", "*.pyc")


def build(target: Path, *, quiet: bool = True) -> Path:
    """(Re)make `target` with the code and its pinned dependencies; return it."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    # requirements.txt is the whole pinned tree: nothing else is resolved, nothing is built.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            *(["--quiet"] if quiet else []),
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--only-binary=:all:",
            *PLATFORM,
            *PYTHON,
            "--target",
            str(target),
            "--requirement",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
    )
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=LEFT_OUT)
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.aws.package DIR", file=sys.stderr)
        return 2
    target = build(Path(argv[0]).resolve())
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"{target}: {size / 1e6:.0f} MB, handlers functions.<name>.handler.handler")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
