"""CLI start-up: wall time of `berth --version` and `berth render` against `python -c pass`.

All three are measured in the same run, interleaved, so machine load affects them alike.
Goals on the 2-core CI machine: --version < 0.25 s, render of the seed example < 0.5 s.

    python benchmarks/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-tensorflow.yaml"
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "berth --version": [sys.executable, "-m", "berth", "--version"],
    "berth render seed-tensorflow": [sys.executable, "-m", "berth", "render", str(SEED)],
}
GOALS = {"berth --version": 0.25, "berth render seed-tensorflow": 0.5}


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    """Measure, print a table with ratios to the bare interpreter, and exit 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for cmd in CASES.values():  # warm the page cache and .pyc files
        _time(cmd)
    for _ in range(args.runs):
        for name, cmd in CASES.items():
            samples[name].append(_time(cmd))
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':32} {'median s':>9} {'min s':>7} {'x python':>9} {'goal s':>7}")
    missed = False
    for name, values in samples.items():
        med = statistics.median(values)
        goal = GOALS.get(name)
        mark = "" if goal is None else (" ok" if med < goal else " MISSED")
        missed |= goal is not None and med >= goal
        print(f"{name:32} {med:9.3f} {min(values):7.3f} {med / base:9.1f} {goal or '':>7}{mark}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
