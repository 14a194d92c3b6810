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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import print_table
from bench._cold_start_probe import HOST

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PROBE = BENCH_DIR / "_cold_start_probe.py"
FUNCTIONS = ("projects", "tasks", "comments", "auth")
REFERENCE = "reference"
PHASES = ("process", "import", "first event")
TIMEOUT_S = 120  # one cold start takes well under a second; this only stops a hung probe
HEADERS = (
    "function",
    "phase",
    "candidate median ms",
    "candidate min ms",
    "reference median ms",
    "reference min ms",
    "ratio",
)


# The three timings of one cold start, in milliseconds, by phase.
Sample = dict[str, float]


def module_of(function: str) -> str:
    """The module a probe imports for a function name, or for the reference."""
    if function == REFERENCE:
        return "bench._reference_function"
    return f"functions.{function}.handler"


def probe_env() -> dict[str, str]:
    """The whole environment of a probe: the shared settings in local mode, nothing inherited
    that could change them (the test suite's DJANGO_SETTINGS_MODULE, DATABASE_URL, ...)."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "common.settings",
        "DEBUG": "true",
        "ALLOWED_HOSTS": HOST,
    }


def run_probe(function: str, python_options: tuple[str, ...] = ()) -> tuple[float, str, str]:
    """Run one probe to its exit: (wall ms, stdout, stderr). Raises when it does not answer 200."""
    command = [sys.executable, *python_options, str(PROBE), module_of(function)]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO, env=probe_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"probe of {function} exited {done.returncode}:\n{done.stderr}")
    return wall_ms, done.stdout, done.stderr


def cold_start(function: str) -> Sample:
    """One measured cold start of a function (or of the reference)."""
    wall_ms, stdout, _ = run_probe(function)
    timings = json.loads(stdout.strip().splitlines()[-1])
    return {
        "process": wall_ms,
        "import": timings["import_ms"],
        "first event": timings["first_event_ms"],
    }


def collect(repeat: int, warmup: int) -> dict[str, tuple[list[Sample], list[Sample]]]:
    """function -> (candidate samples, reference samples), each pair run back to back, the
    order of the pair alternating from one round to the next."""
    for _ in range(warmup):
        for function in (*FUNCTIONS, REFERENCE):
            cold_start(function)
    samples: dict[str, tuple[list[Sample], list[Sample]]] = {f: ([], []) for f in FUNCTIONS}
    for round_ in range(repeat):
        for index, function in enumerate(FUNCTIONS):
            candidate, reference = samples[function]
            if (round_ + index) % 2 == 0:
                candidate.append(cold_start(function))
                reference.append(cold_start(REFERENCE))
            else:
                reference.append(cold_start(REFERENCE))
                candidate.append(cold_start(function))
    return samples


def table_rows(samples: dict[str, tuple[list[Sample], list[Sample]]]) -> list[list[str]]:
    """One row per function and phase: medians, minimums and the ratio of the medians."""
    rows = []
    for function, (candidate, reference) in samples.items():
        for phase in PHASES:
            ours = [sample[phase] for sample in candidate]
            theirs = [sample[phase] for sample in reference]
            ratio = statistics.median(ours) / statistics.median(theirs)
            rows.append(
                [
                    function,
                    phase,
                    f"{statistics.median(ours):.1f}",
                    f"{min(ours):.1f}",
                    f"{statistics.median(theirs):.1f}",
                    f"{min(theirs):.1f}",
                    f"{ratio:.2f}",
                ]
            )
    return rows


def importtime_top(function: str, count: int) -> list[tuple[str, float, float]]:
    """The `count` imports of largest cumulative time in one cold start: (module, self ms,
    cumulative ms), from `python -X importtime` (which itself slows the imports a little).

    Modules loaded through importlib.import_module (Django's apps, dotted paths in settings) get
    no line of their own: their time counts as self time of the module that triggered them."""
    _, _, stderr = run_probe(function, ("-X", "importtime"))
    imports = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, module = line.removeprefix("import time:").split("|")
        imports.append((module.strip(), int(self_us) / 1000, int(cumulative_us) / 1000))
    return sorted(imports, key=lambda row: row[2], reverse=True)[:count]


def print_importtime(function: str, count: int = 10) -> None:
    """Print the top imports of one cold start of a function, as a table."""
    top = importtime_top(function, count)
    print(f"\n{module_of(function)}: top {count} imports by cumulative time (-X importtime)")
    rows = [
        [module, f"{self_ms:.1f}", f"{cumulative_ms:.1f}"] for module, self_ms, cumulative_ms in top
    ]
    print_table(rows, ("module", "self ms", "cumulative ms"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench cold_start", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="measured runs of each (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs first (default 1)")
    parser.add_argument(
        "--importtime",
        nargs="?",
        const="tasks",
        choices=(*FUNCTIONS, REFERENCE),
        help="also print the top 10 imports of one function (default tasks)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"cold_start: {args.repeat} runs of each, candidate and reference alternating, "
        f"{args.warmup} warm-up; Python {platform.python_version()}; "
        "ratio = candidate median / reference median"
    )
    print_table(table_rows(collect(args.repeat, args.warmup)), HEADERS)
    if args.importtime:
        print_importtime(args.importtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
