"""Cold start of each function, from interpreter start to the first answered API Gateway event.

Candidate: each Taskwire function (functions.<name>.handler). Reference: the least Django + DRF +
Mangum function (bench/_reference_function.py). Every sample is a fresh interpreter running
bench/_cold_start_probe.py, which imports the module and answers one HTTP API v2 event for
GET /healthz; candidate and reference runs alternate so that machine noise hits both alike.

Phases: process = wall time of the subprocess, spawn to exit; import = importing the handler
module (Django set-up included); first event = handler(event, context) until the response.
Disk caches are warm (one uncounted warm-up run each by default), unlike a real Lambda cold start.
"""

import argparse
import json
import os
import platform
import sys
from functools import partial
from pathlib import Path

from bench import _procs, median, print_table, taking_turns, timed
from bench._cold_start_probe import HOST

PROBE = Path(__file__).resolve().parent / "_cold_start_probe.py"
FUNCTIONS = ("projects", "tasks", "comments", "auth")
REFERENCE = "reference"
PHASES = ("process", "import", "first event")
TIMEOUT_S = 120  # one cold start takes well under a second; this only stops a hung probe
HEADERS = ("function", "phase", "candidate median ms", "candidate min ms")
HEADERS += ("reference median ms", "reference min ms", "ratio")
# The whole environment of a probe: the shared settings in local mode, nothing inherited that
# could change them (the test suite's DJANGO_SETTINGS_MODULE, DATABASE_URL, ...).
ENV = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(_procs.REPO)}
ENV |= {"DJANGO_SETTINGS_MODULE": "common.infra.settings", "DEBUG": "true", "ALLOWED_HOSTS": HOST}

Sample = dict[str, float]  # the three timings of one cold start, in ms, by phase


def module_of(function: str) -> str:
    return "bench._reference_function" if function == REFERENCE else f"functions.{function}.handler"


def probe(function: str, *python_options: str) -> tuple[float, str, str]:
    """One probe run to its exit: (wall ms, stdout, stderr). Raises when it does not answer 200."""
    command = [sys.executable, *python_options, str(PROBE), module_of(function)]
    wall_ms, done = timed(_procs.run, command, ENV, TIMEOUT_S)
    return wall_ms, done.stdout, done.stderr


def cold_start(function: str) -> Sample:
    wall_ms, stdout, _ = probe(function)
    timings = json.loads(stdout.strip().splitlines()[-1])
    return dict(
        zip(PHASES, (wall_ms, timings["import_ms"], timings["first_event_ms"]), strict=True)
    )


def collect(repeat: int, warmup: int) -> dict[str, dict[str, list[Sample]]]:
    """function -> {"candidate": samples, "reference": samples}, each pair run back to back,
    the order of the pair alternating from one round (and function) to the next."""
    for _ in range(warmup):
        for function in (*FUNCTIONS, REFERENCE):
            cold_start(function)
    samples: dict[str, dict[str, list[Sample]]] = {
        f: {"candidate": [], "reference": []} for f in FUNCTIONS
    }
    for round_ in range(repeat):
        for index, function in enumerate(FUNCTIONS):
            pair = {
                "candidate": partial(cold_start, function),
                "reference": partial(cold_start, REFERENCE),
            }
            for side, taken in taking_turns(pair, 1, start=round_ + index).items():
                samples[function][side] += taken
    return samples


def importtime_top(function: str, count: int = 10) -> list[tuple[str, float, float]]:
    """The `count` imports of largest cumulative time in one cold start: (module, self ms,
    cumulative ms), from `python -X importtime` (which itself slows the imports a little)."""
    imports = []
    for line in probe(function, "-X", "importtime")[2].splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            self_us, cumulative_us, module = line.removeprefix("import time:").split("|")
            imports.append((module.strip(), int(self_us) / 1000, int(cumulative_us) / 1000))
    return sorted(imports, key=lambda row: row[2], reverse=True)[:count]


def run(args: argparse.Namespace) -> dict:
    """{"samples": collect(...), "importtime": importtime_top(...) or None}."""
    samples = collect(args.repeat, args.warmup)
    return {"samples": samples, "importtime": args.importtime and importtime_top(args.importtime)}


def table_rows(samples: dict[str, dict[str, list[Sample]]]) -> list[list[str]]:
    """One row per function and phase: medians, minimums and the ratio of the medians."""
    rows = []
    for function, sides in samples.items():
        for phase in PHASES:
            ours, theirs = ([s[phase] for s in sides[side]] for side in ("candidate", "reference"))
            values = (median(ours), min(ours), median(theirs), min(theirs))
            ratio = f"{median(ours) / median(theirs):.2f}"
            rows.append([function, phase, *(f"{value:.1f}" for value in values), ratio])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(f"cold_start: {args.repeat} runs of each, candidate and reference alternating, "
          f"{args.warmup} warm-up; Python {platform.python_version()}; {_procs.machine()}; "
          "ratio = candidate median / reference median")  # fmt: skip
    result = run(args)
    print_table(table_rows(result["samples"]), HEADERS)
    if result["importtime"]:
        rows = [[module, f"{own:.1f}", f"{cum:.1f}"] for module, own, cum in result["importtime"]]
        title = f"{module_of(args.importtime)}: top 10 imports by cumulative time (-X importtime)"
        print_table(rows, ("module", "self ms", "cumulative ms"), title)
    print(f"after the runs: {_procs.machine()}")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench cold_start", description=__doc__)
    add = parser.add_argument
    add("--repeat", type=int, default=7, help="measured runs of each (default 7)")
    add("--warmup", type=int, default=1, help="uncounted runs first (default 1)")
    add("--importtime", nargs="?", const="tasks", choices=(*FUNCTIONS, REFERENCE),
        help="also print the top 10 imports of one function (default tasks)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0")
    return args


if __name__ == "__main__":
    sys.exit(main())
